"""Datasets as TFRecord shards: written as streams (EMNIST never whole in memory), read back exactly."""

import gzip
import json
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from training.sources.emnist import emnist_to_mnist_layout
from training.sources.idx import write_idx
from training.shards import SPLITS, ShardError, ShardSet, stream_arrays, stream_idx, write_shards

ROOT = Path(__file__).resolve().parents[1]


def _digits(count, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (count, 28, 28), dtype=np.uint8), rng.integers(0, 10, count).astype(np.uint8)


def _read_all(shards: ShardSet, split: str, name=None):
    pairs = list(shards.dataset(split, name, interleave=False).as_numpy_iterator())
    return np.stack([x[..., 0] for x, _ in pairs]), np.array([y for _, y in pairs])


def test_shards_round_trip_every_image_and_label_and_hold_out_every_nth(tmp_path):
    x, y = _digits(230)
    tx, ty = _digits(40, seed=1)
    index = write_shards(tmp_path, {"mnist": ({"train": stream_arrays(x, y), "test": stream_arrays(tx, ty)}, "toy")},
                         per_shard=50, validation_every=10)
    entry = index["datasets"][0]
    assert (entry["train"]["count"], entry["validation"]["count"], entry["test"]["count"]) == (207, 23, 40)
    assert [f["count"] for f in entry["train"]["files"]] == [50, 50, 50, 50, 7]

    shards = ShardSet.open(tmp_path)
    held = np.arange(230) % 10 == 9
    for split, (want_x, want_y) in {"train": (x[~held], y[~held]), "validation": (x[held], y[held]),
                                    "test": (tx, ty)}.items():
        got_x, got_y = _read_all(shards, split)
        np.testing.assert_array_equal(got_x, want_x)
        np.testing.assert_array_equal(got_y, want_y)
    assert shards.describe() == [{"name": "mnist", "source": f"shards in {tmp_path} from toy", "train": 230, "test": 40}]
    # Interleaved reading (training) yields the same examples, in another order, the same each time.
    first = [int(v) for _, v in shards.dataset("train").as_numpy_iterator()]
    assert sorted(first) == sorted(int(v) for v in y[~held])
    assert first == [int(v) for _, v in shards.dataset("train").as_numpy_iterator()]
    assert int(shards.dataset("train").cardinality()) == 207


def test_writing_streams_memory_stays_flat_however_many_images(tmp_path):
    """Python's peak while writing 2,000 and 20,000 images (15.7 MB of pixels) is the same: nothing is collected."""
    def generated(count):
        rng = np.random.default_rng(0)
        for _ in range(count):
            yield rng.integers(0, 256, (28, 28), dtype=np.uint8), int(rng.integers(0, 10))

    write_shards(tmp_path / "warm", {"mnist": ({"train": generated(100)}, "warm-up")})  # imports and TF start-up
    peaks = {}
    for count in (2000, 20000):
        tracemalloc.start()
        try:
            write_shards(tmp_path / str(count), {"mnist": ({"train": generated(count)}, "generated")}, per_shard=5000)
            peaks[count] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        shards = ShardSet.open(tmp_path / str(count))
        assert shards.count("train") + shards.count("validation") == count
    print(f"peak Python memory while writing shards: {peaks}")
    assert peaks[20000] < 1.25 * peaks[2000] + 250_000 and peaks[20000] < 4_000_000, peaks


def test_emnist_idx_files_stream_record_by_record_in_mnist_layout(tmp_path):
    x, y = _digits(30, seed=2)
    write_idx(tmp_path / "images.gz", x)
    write_idx(tmp_path / "labels.gz", y)
    streamed = list(stream_idx(tmp_path / "images.gz", tmp_path / "labels.gz", transposed=True))
    np.testing.assert_array_equal(np.stack([image for image, _ in streamed]), emnist_to_mnist_layout(x))
    assert [label for _, label in streamed] == list(y)

    whole = gzip.decompress((tmp_path / "images.gz").read_bytes())
    (tmp_path / "short.gz").write_bytes(gzip.compress(whole[:-100]))
    with pytest.raises(ShardError, match="truncated"):
        list(stream_idx(tmp_path / "short.gz", tmp_path / "labels.gz"))


def test_emnist_streams_from_tensorflow_datasets_offline(tmp_path):
    """tfds.load without batch_size=-1 reads TFDS's own TFRecord files one example at a time (mocked: no network)."""
    import tensorflow_datasets as tfds

    from training.shards import emnist_streams

    with tfds.testing.mock_data(num_examples=24):
        streams, source = emnist_streams(data_dir=None)
        index = write_shards(tmp_path, {"emnist": (streams, source)}, validation_every=4)
    entry = index["datasets"][0]
    assert source == "tensorflow-datasets 'emnist/digits'"
    assert (entry["train"]["count"], entry["validation"]["count"], entry["test"]["count"]) == (18, 6, 24)
    images, labels = _read_all(ShardSet.open(tmp_path), "test", "emnist")
    assert images.shape == (24, 28, 28) and labels.max() <= 9


def test_damaged_or_missing_shards_are_clear_errors(tmp_path):
    with pytest.raises(ShardError, match="python -m training.shards"):
        ShardSet.open(tmp_path)
    x, y = _digits(20)
    write_shards(tmp_path, {"mnist": ({"train": stream_arrays(x, y), "test": stream_arrays(x, y)}, "toy")})
    shard = next(tmp_path.glob("train-*.tfrecord"))
    data = bytearray(shard.read_bytes())
    data[100] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(ShardError, match="SHA-256"):
        ShardSet.open(tmp_path)
    shard.unlink()
    with pytest.raises(ShardError, match="missing"):
        ShardSet.open(tmp_path)
    index = json.loads((tmp_path / "index.json").read_text())
    assert set(index["datasets"][0]) >= set(SPLITS)


def test_cli_writes_shards_and_training_refuses_a_folder_without_them(tmp_path):
    from training.data import Dataset, Split, save_cache

    x, y = _digits(60)
    save_cache(Dataset("mnist", "toy", Split(x, y), Split(x[:20], y[:20])), tmp_path / "cache")
    result = subprocess.run([sys.executable, "-m", "training.shards", "--data", "mnist", "--out", str(tmp_path / "s"),
                             "--cache-dir", str(tmp_path / "cache"), "--validation-every", "6"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "mnist: train 50 in 1 files, validation 10 in 1 files, test 20 in 1 files" in result.stdout
    result = subprocess.run([sys.executable, "-m", "training", "--shards", str(tmp_path / "nothing"), "--epochs", "1",
                             "--output", str(tmp_path / "m.keras")], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 1 and "has no index.json" in result.stderr and "Traceback" not in result.stderr
