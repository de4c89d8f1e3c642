"""Digits of writers MNIST never met: ARDIS (Swedish church records) and optdigits-orig (UCI, Turkish writers).

Both are read from the official files in a folder the user names (``--data-dir``, or its ``ardis/`` and
``optdigits-orig/`` subfolders), plain or gzip-compressed; nothing is downloaded. Files whose checksum is
known are checked against it; every file is checked for its layout, counts and labels, and a missing or
malformed one is a clear error naming the file and where to get it.

Every image goes through the app's own pipeline (model.preprocess.preprocess): an ARDIS digit or a
32x32 bitmap that fills its box becomes exactly what the app would make of the same picture.

Neither set comes with a test split of other writers, so a part of each is held out: shuffled with a
fixed seed and stratified by digit (HELD_OUT of every digit). It is the set's ``test`` split, used to
choose and to report, never to train.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
from pathlib import Path

import numpy as np

from model.constants import INPUT_SIZE, NUM_CLASSES
from model.preprocess import preprocess
from training.data import ChecksumError, Split

log = logging.getLogger(__name__)

OTHER_WRITERS = ("ardis", "optdigits")  # the dataset names these sources go by (training.data.DATASETS)
HELD_OUT = 0.2  # of every digit of every source
HOLDOUT_SEED = 20261204

ARDIS_IMAGES, ARDIS_LABELS = "ARDIS_train_2828.csv", "ARDIS_train_labels.csv"
OPTDIGITS_FILES = ("optdigits-orig.tra", "optdigits-orig.tes")
# SHA-256 of the uncompressed official files (the UCI copies of optdigits-orig begin with a longer text
# header than the shared copy, so theirs are not known: those are checked by their layout alone).
KNOWN_SHA256 = {
    ARDIS_IMAGES: "4f5d3896305ada7d4c56c9b754d7b075c009de6ba834ba4445333f2434baf024",
    ARDIS_LABELS: "de9f1835bee385791bb246ecd99feb3e7d4191621c305ff05791b38e689dd31d",
    "optdigits-orig.tra": "6f1012a107d37856f83cb332b26d54738647c1d197278f8ff74c5f55312124ca",
    "optdigits-orig.tes": "29b0ea16767a56815aa39b608520aa18d4acc087b9db85847f4c79addb7d09d3",
}
WHERE = {
    "ardis": "ARDIS Dataset IV (ARDIS_DATASET_IV.rar, https://ardisdataset.github.io/ARDIS/): unpack "
             f"{ARDIS_IMAGES} and {ARDIS_LABELS} (plain or .gz) into the folder you pass as --data-dir",
    "optdigits": "UCI Optical Recognition of Handwritten Digits (https://archive.ics.uci.edu/dataset/80): put "
                 "optdigits-orig.tra and optdigits-orig.tes (plain or .gz, UCI's layout or the 'count, then "
                 "bitmaps' one) in the folder you pass as --data-dir",
}
SUBFOLDER = {"ardis": "ardis", "optdigits": "optdigits-orig"}


class FormatError(ValueError):
    """A file is there but not in the layout its set publishes."""


def _find(data_dir: Path | None, dataset: str, name: str) -> Path:
    """The file `name` (or `name`.gz) in data_dir or its subfolder for the set."""
    if data_dir is None:
        raise FileNotFoundError(f"no --data-dir given: {WHERE[dataset]}")
    folders = [Path(data_dir), Path(data_dir) / SUBFOLDER[dataset]]
    for folder in folders:
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    raise FileNotFoundError(f"{name} (or {name}.gz) is not in {' or '.join(map(str, folders))}: {WHERE[dataset]}")


def _read(path: Path, dataset: str) -> bytes:
    """The file's content, uncompressed, checked against its known SHA-256 when it has one."""
    try:
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError) as error:
        raise FormatError(f"{path} cannot be read ({error}): {WHERE[dataset]}") from None
    expected = KNOWN_SHA256.get(path.name.removesuffix(".gz"))
    layout_known = dataset == "ardis" or data[:1].isdigit()  # the shared optdigits layout starts with its count
    if expected and layout_known and hashlib.sha256(data).hexdigest() != expected:
        raise ChecksumError(f"{path} does not have the published SHA-256 ({expected}): it is damaged or not the "
                            f"official file. {WHERE[dataset]}")
    return data


def read_ardis(data_dir: Path | None) -> tuple[np.ndarray, np.ndarray]:
    """ARDIS IV's training files -> (N, 28, 28) uint8 as stored (light ink on black) and (N,) uint8 labels."""
    images_path, labels_path = _find(data_dir, "ardis", ARDIS_IMAGES), _find(data_dir, "ardis", ARDIS_LABELS)
    try:
        pixels = np.loadtxt(_read(images_path, "ardis").decode("ascii").splitlines(), dtype=np.float32, ndmin=2)
        one_hot = np.loadtxt(_read(labels_path, "ardis").decode("ascii").splitlines(), dtype=np.float32, ndmin=2)
    except (ValueError, UnicodeDecodeError) as error:
        raise FormatError(f"{images_path} or {labels_path} is not ARDIS's CSV layout ({error}): "
                          f"{WHERE['ardis']}") from None
    if pixels.shape[1:] != (INPUT_SIZE * INPUT_SIZE,) or pixels.min() < 0 or pixels.max() > 255:
        raise FormatError(f"{images_path}: expected 784 values 0-255 a line, got {pixels.shape[1]} a line")
    if one_hot.shape != (len(pixels), NUM_CLASSES) or not np.all(one_hot.sum(axis=1) == 1):
        raise FormatError(f"{labels_path}: expected one one-hot line of 10 values per image ({len(pixels)})")
    return np.rint(pixels).astype(np.uint8).reshape(-1, INPUT_SIZE, INPUT_SIZE), one_hot.argmax(axis=1).astype(np.uint8)


def parse_optdigits(text: str, where: str) -> tuple[np.ndarray, np.ndarray]:
    """optdigits-orig's text -> (N, 32, 32) bool bitmaps (True: ink) and (N,) uint8 labels.

    Either layout: the shared one (a first line with the count) or UCI's (a text header); then, per digit,
    32 lines of 32 '0'/'1' and a line with its label."""
    lines = [line.rstrip("\r") for line in text.splitlines()]
    is_row = [len(line) == 32 and set(line) <= {"0", "1"} for line in lines]
    if True not in is_row:
        raise FormatError(f"{where} holds no 32x32 bitmap: {WHERE['optdigits']}")
    start = is_row.index(True)
    bitmaps, labels = [], []
    position = start
    while position < len(lines):
        if not lines[position].strip():
            position += 1
            continue
        block, label = lines[position:position + 32], lines[position + 32:position + 33]
        if len(block) < 32 or not all(is_row[position:position + 32]) or not label or \
                not label[0].strip().isdigit() or int(label[0]) >= NUM_CLASSES:
            raise FormatError(f"{where}, line {position + 1}: expected 32 lines of 32 '0'/'1' and a digit 0-9")
        bitmaps.append(np.array([[c == "1" for c in row] for row in block], bool))
        labels.append(int(label[0]))
        position += 33
    if lines[0].strip().isdigit() and start == 1 and int(lines[0]) != len(bitmaps):
        raise FormatError(f"{where} announces {int(lines[0])} digits and holds {len(bitmaps)}")
    return np.stack(bitmaps), np.array(labels, np.uint8)


def read_optdigits(data_dir: Path | None) -> tuple[np.ndarray, np.ndarray]:
    """Both optdigits-orig files (the 30 training writers) -> bitmaps and labels."""
    parts = []
    for name in OPTDIGITS_FILES:
        path = _find(data_dir, "optdigits", name)
        try:
            text = _read(path, "optdigits").decode("ascii")
        except UnicodeDecodeError:
            raise FormatError(f"{path} is not text: {WHERE['optdigits']}") from None
        parts.append(parse_optdigits(text, str(path)))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def framed(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each picture through the app's pipeline -> (M, 28, 28) model inputs and the mask of those kept
    (a picture with no ink the app would read is dropped)."""
    inputs = [preprocess(image).image for image in images]
    kept = np.array([image is not None for image in inputs], bool)
    frames = [image for image in inputs if image is not None]
    if not frames:
        return np.zeros((0, INPUT_SIZE, INPUT_SIZE), np.uint8), kept
    return np.stack(frames), kept


def held_out_split(count_by_label: np.ndarray, fraction: float = HELD_OUT, seed: int = HOLDOUT_SEED) -> np.ndarray:
    """A mask of the items to hold out: shuffled with `seed`, `fraction` of every label (stratified)."""
    rng = np.random.default_rng(seed)
    held = np.zeros(len(count_by_label), bool)
    for label in np.unique(count_by_label):
        members = rng.permutation(np.flatnonzero(count_by_label == label))
        held[members[: int(round(fraction * len(members)))]] = True
    return held


def splits(images: np.ndarray, labels: np.ndarray, name: str) -> tuple[Split, Split]:
    """Framed training and held-out Splits of one source."""
    x, kept = framed(images)
    y = labels[kept]
    if (~kept).any():
        log.info("%s: %d of %d pictures have no ink the app would read; left out", name, int((~kept).sum()),
                 len(kept))
    held = held_out_split(y)
    return Split(x[~held], y[~held]), Split(x[held], y[held])


def held_out_pictures(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The pictures (as read, before framing) and labels of exactly the part `splits` holds out: for a bench
    that gives them to the app the way a user would (a photo, a canvas)."""
    _, kept = framed(images)
    held = held_out_split(labels[kept])
    return images[kept][held], labels[kept][held]


def ardis_from_dir(data_dir: Path | None) -> tuple[Split, Split]:
    return splits(*read_ardis(data_dir), "ardis")


def optdigits_from_dir(data_dir: Path | None) -> tuple[Split, Split]:
    bitmaps, labels = read_optdigits(data_dir)
    return splits(bitmaps.astype(np.uint8) * 255, labels, "optdigits")  # white ink on black, as 0/255
