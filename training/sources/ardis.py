"""ARDIS Dataset IV: digits of Swedish church records, 1895-1970 (Kusetogullari et al., Neural Computing and
Applications, 2020). Read from its official files in a folder the user names (plain or gzip-compressed),
checked against their published SHA-256 and their layout; framed and held out by training.sources.pictures."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from model.constants import INPUT_SIZE, NUM_CLASSES
from training.sources.base import FormatError, Split, find_file
from training.sources.pictures import read_checked, splits

IMAGES, LABELS = "ARDIS_train_2828.csv", "ARDIS_train_labels.csv"
SHA256 = {  # of the uncompressed official files
    IMAGES: "4f5d3896305ada7d4c56c9b754d7b075c009de6ba834ba4445333f2434baf024",
    LABELS: "de9f1835bee385791bb246ecd99feb3e7d4191621c305ff05791b38e689dd31d",
}
WHERE = ("ARDIS Dataset IV (ARDIS_DATASET_IV.rar, https://ardisdataset.github.io/ARDIS/): unpack "
         f"{IMAGES} and {LABELS} (plain or .gz) into the folder you pass as --data-dir (or its ardis/ subfolder)")
SUBFOLDER = "ardis"


def read_ardis(data_dir: Path | None) -> tuple[np.ndarray, np.ndarray]:
    """ARDIS IV's training files -> (N, 28, 28) uint8 as stored (light ink on black) and (N,) uint8 labels."""
    images_path = find_file(data_dir, SUBFOLDER, IMAGES, WHERE)
    labels_path = find_file(data_dir, SUBFOLDER, LABELS, WHERE)
    try:
        pixels = np.loadtxt(read_checked(images_path, SHA256.get(IMAGES), WHERE).decode("ascii").splitlines(),
                            dtype=np.float32, ndmin=2)
        one_hot = np.loadtxt(read_checked(labels_path, SHA256.get(LABELS), WHERE).decode("ascii").splitlines(),
                             dtype=np.float32, ndmin=2)
    except (ValueError, UnicodeDecodeError) as error:
        raise FormatError(f"{images_path} or {labels_path} is not ARDIS's CSV layout ({error}): {WHERE}") from None
    if pixels.shape[1:] != (INPUT_SIZE * INPUT_SIZE,) or pixels.min() < 0 or pixels.max() > 255:
        raise FormatError(f"{images_path}: expected 784 values 0-255 a line, got {pixels.shape[1]} a line")
    if one_hot.shape != (len(pixels), NUM_CLASSES) or not np.all(one_hot.sum(axis=1) == 1):
        raise FormatError(f"{labels_path}: expected one one-hot line of 10 values per image ({len(pixels)})")
    return np.rint(pixels).astype(np.uint8).reshape(-1, INPUT_SIZE, INPUT_SIZE), one_hot.argmax(axis=1).astype(np.uint8)


def ardis(data_dir: Path | None) -> tuple[Split, Split]:
    return splits(*read_ardis(data_dir), "ardis")
