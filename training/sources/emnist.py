"""EMNIST Digits (Cohen et al., 2017): from its official files in --data-dir, or tensorflow-datasets (needs internet).

Its images are stored transposed and framed by bounding box; they are turned upright and framed the MNIST
way, so both sets look alike to the model.
"""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np

from model.preprocess import frame_digit
from training.sources.base import Split, check_split, verify_sha256
from training.sources.idx import read_idx
from training.sources.mnist import tfds_as_arrays

# The official EMNIST release is one zip; its gzip members carry CRC32s that
# gzip checks on every read, and we check the counts and shapes besides.
EMNIST_ZIP_SHA256 = "fb9bb67e33772a9cc0b895e4ecf36d2cf35be8b709693c3564cea2a019fcda8e"
EMNIST_DIGITS_FILES = {
    "train_images": "emnist-digits-train-images-idx3-ubyte.gz",
    "train_labels": "emnist-digits-train-labels-idx1-ubyte.gz",
    "test_images": "emnist-digits-test-images-idx3-ubyte.gz",
    "test_labels": "emnist-digits-test-labels-idx1-ubyte.gz",
}


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
    train = check_split(emnist_to_mnist_layout(read_idx(files["train_images"])), read_idx(files["train_labels"]), str(data_dir))
    test = check_split(emnist_to_mnist_layout(read_idx(files["test_images"])), read_idx(files["test_labels"]), str(data_dir))
    return train, test


def _emnist_from_tfds() -> tuple[Split, Split]:
    train, test = tfds_as_arrays("emnist/digits")
    return (
        Split(emnist_to_mnist_layout(train.x), train.y),
        Split(emnist_to_mnist_layout(test.x), test.y),
    )


def emnist_sources(data_dir: Path | None) -> list[tuple[str, Callable[[], tuple[Split, Split]]]]:
    return [
        (f"--data-dir ({data_dir}) with {EMNIST_DIGITS_FILES['train_images']} etc. or gzip.zip", lambda: _emnist_from_dir(data_dir)),
        ("tensorflow-datasets 'emnist/digits'", _emnist_from_tfds),
    ]


HOW_TO_PROVIDE = ("Download EMNIST from https://www.nist.gov/itl/products-and-services/emnist-dataset, put "
                  "gzip.zip or its emnist-digits-*-ubyte.gz files in a folder and pass --data-dir FOLDER, "
                  "or allow tensorflow-datasets to download 'emnist/digits'.")
