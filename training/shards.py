"""Datasets as TFRecord shards, written and read as streams: data larger than memory.

``python -m training.shards --data mnist,emnist --out DIR`` writes each dataset's images,
framed like MNIST, into files of ``--per-shard`` examples, one example at a time: EMNIST
streams from tensorflow-datasets' own TFRecord shards or, given ``--data-dir``, from its
gzip IDX files; neither is loaded whole. Every ``--validation-every``-th training image goes
to the validation split (held out for early stopping). ``index.json`` lists the files with
their counts and SHA-256.

``python -m training --shards DIR`` then streams them through tf.data (interleaved files,
a shuffle buffer), which tf.distribute shards across workers element by element.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from model.artifacts import atomic_write_json, file_sha256
from model.constants import INPUT_SIZE

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
INDEX = "index.json"
IMAGE_BYTES = INPUT_SIZE * INPUT_SIZE

Example = tuple[np.ndarray, int]  # (28x28 uint8, white on black; label 0-9)


class ShardError(ValueError):
    """Shards missing, damaged or not what the index says; the message says how to fix it."""


# --------------------------------------------------------------------------- streaming sources


def stream_idx(images_path: Path, labels_path: Path, transposed: bool = False) -> Iterator[Example]:
    """Examples from a pair of (gzip) IDX files, read one record at a time."""
    from model.preprocess import frame_digit
    from training.sources.idx import open_idx, read_idx_header

    with open_idx(images_path) as images, open_idx(labels_path) as labels:
        shape, (count,) = read_idx_header(images, images_path), read_idx_header(labels, labels_path)
        if shape[0] != count or shape[1:] != (INPUT_SIZE, INPUT_SIZE):
            raise ShardError(f"{images_path} holds {shape}, {labels_path} {count} labels: expected N 28x28 images "
                             "and N labels.")
        for _ in range(count):
            raw, label = images.read(IMAGE_BYTES), labels.read(1)
            if len(raw) < IMAGE_BYTES or not label:
                raise ShardError(f"{images_path} or {labels_path} ends early: the file is truncated.")
            image = np.frombuffer(raw, np.uint8).reshape(INPUT_SIZE, INPUT_SIZE)
            # EMNIST stores images transposed and framed by bounding box: make them look like MNIST.
            yield (frame_digit(image.T) if transposed else image), label[0]


def stream_tfds(name: str, split: str, transposed: bool = False) -> Iterator[Example]:
    """Examples from tensorflow-datasets, streamed from its TFRecord files (downloaded once by TFDS)."""
    import tensorflow_datasets as tfds

    from model.preprocess import frame_digit

    for image, label in tfds.as_numpy(tfds.load(name, split=split, as_supervised=True, shuffle_files=False)):
        image = image[..., 0]
        yield (frame_digit(image.T) if transposed else image), int(label)


def stream_arrays(x: np.ndarray, y: np.ndarray) -> Iterator[Example]:
    for image, label in zip(x, y):
        yield image, int(label)


def emnist_streams(data_dir: Path | None) -> tuple[dict[str, Iterator[Example]], str]:
    """EMNIST Digits train and test as streams: IDX files in data_dir if there, else TFDS."""
    from training.sources.emnist import EMNIST_DIGITS_FILES

    if data_dir is not None and all((Path(data_dir) / name).exists() for name in EMNIST_DIGITS_FILES.values()):
        files = {key: Path(data_dir) / name for key, name in EMNIST_DIGITS_FILES.items()}
        return {split: stream_idx(files[f"{split}_images"], files[f"{split}_labels"], transposed=True)
                for split in ("train", "test")}, f"IDX files in {data_dir}"
    return {split: stream_tfds("emnist/digits", split, transposed=True) for split in ("train", "test")}, \
        "tensorflow-datasets 'emnist/digits'"


def mnist_streams(data_dir: Path | None, cache_dir: Path) -> tuple[dict[str, Iterator[Example]], str]:
    """MNIST is small (47 MB): it comes from training.data's sources, then streams from memory."""
    from training.data import load_dataset

    dataset = load_dataset("mnist", data_dir, cache_dir)
    return {"train": stream_arrays(dataset.train.x, dataset.train.y),
            "test": stream_arrays(dataset.test.x, dataset.test.y)}, dataset.source


# --------------------------------------------------------------------------- writing


def _example_bytes(tf, image: np.ndarray, label: int) -> bytes:
    image = np.asarray(image)
    if image.shape != (INPUT_SIZE, INPUT_SIZE) or image.dtype != np.uint8 or not 0 <= int(label) <= 9:
        raise ShardError(f"an example must be a 28x28 uint8 image with a label 0-9, got {image.shape} "
                         f"{image.dtype} and {label}")
    features = tf.train.Features(feature={
        "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[image.tobytes()])),
        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(label)])),
    })
    return tf.train.Example(features=features).SerializeToString()


class _ShardWriter:
    """Writes `<split>-<name>-NNNNN.tfrecord` files of at most `per_shard` examples, each renamed into place."""

    def __init__(self, tf, directory: Path, split: str, name: str, per_shard: int):
        self.tf, self.directory, self.split, self.name, self.per_shard = tf, directory, split, name, per_shard
        self.files: list[dict] = []
        self._writer = None
        self._count = 0

    def add(self, record: bytes) -> None:
        if self._writer is None:
            self._path = self.directory / f"{self.split}-{self.name}-{len(self.files):05d}.tfrecord"
            self._writer = self.tf.io.TFRecordWriter(str(self._path) + ".partial")
        self._writer.write(record)
        self._count += 1
        if self._count == self.per_shard:
            self.close()

    def close(self) -> None:
        if self._writer is None:
            return
        self._writer.close()
        os.replace(str(self._path) + ".partial", self._path)
        self.files.append({"file": self._path.name, "count": self._count, "sha256": file_sha256(self._path)})
        self._writer, self._count = None, 0

    @property
    def count(self) -> int:
        return sum(f["count"] for f in self.files)


def write_dataset(directory: Path, name: str, streams: dict[str, Iterable[Example]], source: str,
                  per_shard: int = 10000, validation_every: int = 50) -> dict:
    """Stream a dataset's train and test examples into shards; returns its entry for the index."""
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob(f"*-{name}-*.tfrecord*"):
        stale.unlink()
    from model.tf_runtime import tensorflow

    tf = tensorflow()
    writers = {split: _ShardWriter(tf, directory, split, name, per_shard) for split in SPLITS}
    for split, examples in streams.items():
        for position, (image, label) in enumerate(examples):
            target = "validation" if split == "train" and position % validation_every == validation_every - 1 else split
            writers[target].add(_example_bytes(tf, image, label))
            if (position + 1) % 50000 == 0:
                log.info("%s %s: %d images written", name, split, position + 1)
    for writer in writers.values():
        writer.close()
    return {"name": name, "source": source, **{split: {"count": w.count, "files": w.files}
                                              for split, w in writers.items()}}


def write_shards(directory: Path, datasets: dict[str, tuple[dict[str, Iterable[Example]], str]],
                 per_shard: int = 10000, validation_every: int = 50) -> dict:
    """Write every dataset's shards, then the index (last, so a half-written set is never used)."""
    directory = Path(directory)
    index_path = directory / INDEX
    index_path.unlink(missing_ok=True)
    entries = [write_dataset(directory, name, streams, source, per_shard, validation_every)
               for name, (streams, source) in datasets.items()]
    index = {"format": 1, "image_shape": [INPUT_SIZE, INPUT_SIZE], "validation_every": validation_every,
             "datasets": entries}
    atomic_write_json(index_path, index)
    return index


# --------------------------------------------------------------------------- reading


@dataclasses.dataclass(frozen=True)
class ShardSet:
    directory: Path
    index: dict

    @classmethod
    def open(cls, directory: Path, verify: bool = True) -> "ShardSet":
        import json

        directory = Path(directory)
        try:
            index = json.loads((directory / INDEX).read_text())
        except FileNotFoundError:
            raise ShardError(f"{directory} has no {INDEX}: write the shards first with "
                             f"python -m training.shards --out {directory}") from None
        except (OSError, json.JSONDecodeError) as error:
            raise ShardError(f"{directory / INDEX} is unreadable ({error}): write the shards again.") from None
        shard_set = cls(directory, index)
        for entry in index.get("datasets", []):
            for split in SPLITS:
                for shard in entry[split]["files"]:
                    path = directory / shard["file"]
                    if not path.exists():
                        raise ShardError(f"{path} is listed in {INDEX} but missing: write the shards again.")
                    if verify and file_sha256(path) != shard["sha256"]:
                        raise ShardError(f"{path} does not match its SHA-256 in {INDEX}: the file is damaged; "
                                         "write the shards again.")
        return shard_set

    @property
    def names(self) -> list[str]:
        return [entry["name"] for entry in self.index["datasets"]]

    def _entries(self, name: str | None):
        return [e for e in self.index["datasets"] if name is None or e["name"] == name]

    def count(self, split: str, name: str | None = None) -> int:
        return sum(e[split]["count"] for e in self._entries(name))

    def files(self, split: str, name: str | None = None) -> list[str]:
        return [str(self.directory / f["file"]) for e in self._entries(name) for f in e[split]["files"]]

    def describe(self) -> list[dict]:
        return [{"name": e["name"], "source": f"shards in {self.directory} from {e['source']}",
                 "train": e["train"]["count"] + e["validation"]["count"], "test": e["test"]["count"]}
                for e in self.index["datasets"]]

    def dataset(self, split: str, name: str | None = None, interleave: bool = True):
        """A tf.data.Dataset of (28x28x1 uint8 image, uint8 label), read from the files as a stream."""
        import tensorflow as tf

        files = self.files(split, name)
        if not files:
            raise ShardError(f"{self.directory} holds no {split} shards" + (f" of {name}" if name else "") + ".")
        features = {"image": tf.io.FixedLenFeature([], tf.string), "label": tf.io.FixedLenFeature([], tf.int64)}

        def parse(record):
            example = tf.io.parse_single_example(record, features)
            image = tf.reshape(tf.io.decode_raw(example["image"], tf.uint8), (INPUT_SIZE, INPUT_SIZE, 1))
            return image, tf.cast(example["label"], tf.uint8)

        if interleave:  # several files at once, so a shuffle buffer mixes datasets and writers
            records = tf.data.Dataset.from_tensor_slices(files).interleave(
                tf.data.TFRecordDataset, cycle_length=min(len(files), 8), num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True)  # every worker must see one order: sharding keeps every n-th element
        else:
            records = tf.data.TFRecordDataset(files)
        # The index knows the count: Keras then knows an epoch's steps without reading one to the end.
        return records.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).apply(
            tf.data.experimental.assert_cardinality(self.count(split, name)))


# --------------------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    from training.data import DATASETS, DEFAULT_CACHE_DIR

    parser = argparse.ArgumentParser(
        prog="python -m training.shards",
        description="Write datasets as TFRecord shards, streaming (EMNIST is never loaded whole), "
                    "for python -m training --shards DIR.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data", default="mnist", help=f"comma-separated datasets: {', '.join(DATASETS)}")
    parser.add_argument("--out", type=Path, required=True, help="folder for the shards and index.json")
    parser.add_argument("--per-shard", type=int, default=10000, help="examples per file")
    parser.add_argument("--validation-every", type=int, default=50,
                        help="every N-th training image goes to the validation split (2%% at 50)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="folder with mnist.npz or the IDX files, and EMNIST's emnist-digits-*-ubyte.gz")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR, help="training.data's cache (MNIST)")
    return parser


def main(argv=None) -> int:
    from training.data import DATASETS, DataUnavailableError

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    names = [part.strip() for part in args.data.split(",") if part.strip()]
    unknown = [name for name in names if name not in DATASETS]
    if not names or unknown or args.per_shard < 1 or args.validation_every < 2:
        print(f"error: --data must name datasets from {DATASETS}, --per-shard be at least 1 and "
              "--validation-every at least 2", file=sys.stderr)
        return 2
    from model.tf_runtime import tensorflow

    tensorflow()  # quietly, before TFDS or the writers start it
    try:
        sources = {name: (mnist_streams(args.data_dir, args.cache_dir) if name == "mnist"
                          else emnist_streams(args.data_dir)) for name in names}
        index = write_shards(args.out, sources, args.per_shard, args.validation_every)
    except (DataUnavailableError, ShardError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except Exception as error:  # TFDS reports a missing download in many ways
        print(f"error: could not stream the data ({type(error).__name__}: {error}). For EMNIST, put the "
              "emnist-digits-*-ubyte.gz files in a folder and pass --data-dir, or let tensorflow-datasets "
              "download 'emnist/digits'.", file=sys.stderr)
        return 1
    for entry in index["datasets"]:
        print(f"{entry['name']}: " + ", ".join(f"{split} {entry[split]['count']} in {len(entry[split]['files'])} files"
                                               for split in SPLITS))
    print(f"Wrote {args.out / INDEX}; train with: python -m training --shards {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
