"""optdigits-orig: the 32x32 bitmaps of the 30 training writers of UCI's Optical Recognition of Handwritten
Digits (Alpaydin and Kaynak, 1995), Turkish writers. Read from its official files in a folder the user names
(plain or gzip-compressed; the shared layout or UCI's), checked; framed and held out by
training.sources.pictures. scikit-learn's 8x8 digits are the *other* 13 writers: kept for measuring."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from model.constants import NUM_CLASSES
from training.sources.base import ChecksumError, FormatError, Split, bytes_sha256, find_file
from training.sources.pictures import read_checked, splits

FILES = ("optdigits-orig.tra", "optdigits-orig.tes")
# SHA-256 of the uncompressed files in the shared layout ("count, then bitmaps"); UCI's copies begin with a
# longer text header, so theirs are not known: those are checked by their layout alone.
SHA256 = {
    "optdigits-orig.tra": "6f1012a107d37856f83cb332b26d54738647c1d197278f8ff74c5f55312124ca",
    "optdigits-orig.tes": "29b0ea16767a56815aa39b608520aa18d4acc087b9db85847f4c79addb7d09d3",
}
WHERE = ("UCI Optical Recognition of Handwritten Digits (https://archive.ics.uci.edu/dataset/80): put "
         "optdigits-orig.tra and optdigits-orig.tes (plain or .gz, UCI's layout or the 'count, then bitmaps' one) "
         "in the folder you pass as --data-dir (or its optdigits-orig/ subfolder)")
SUBFOLDER = "optdigits-orig"


def parse_optdigits(text: str, where: str) -> tuple[np.ndarray, np.ndarray]:
    """optdigits-orig's text -> (N, 32, 32) bool bitmaps (True: ink) and (N,) uint8 labels.

    Either layout: the shared one (a first line with the count) or UCI's (a text header); then, per digit,
    32 lines of 32 '0'/'1' and a line with its label."""
    lines = [line.rstrip("\r") for line in text.splitlines()]
    is_row = [len(line) == 32 and set(line) <= {"0", "1"} for line in lines]
    if True not in is_row:
        raise FormatError(f"{where} holds no 32x32 bitmap: {WHERE}")
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
    for name in FILES:
        path = find_file(data_dir, SUBFOLDER, name, WHERE)
        data = read_checked(path, None, WHERE)
        expected = SHA256.get(name)
        if expected and data[:1].isdigit() and bytes_sha256(data) != expected:  # the shared layout starts with its count
            raise ChecksumError(f"{path} does not have the published SHA-256 ({expected}): it is damaged or "
                                f"not the official file. {WHERE}")
        try:
            text = data.decode("ascii")
        except UnicodeDecodeError:
            raise FormatError(f"{path} is not text: {WHERE}") from None
        parts.append(parse_optdigits(text, str(path)))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def optdigits(data_dir: Path | None) -> tuple[Split, Split]:
    bitmaps, labels = read_optdigits(data_dir)
    return splits(bitmaps.astype(np.uint8) * 255, labels, "optdigits")  # white ink on black, as 0/255
