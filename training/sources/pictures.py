"""Sets of digit pictures by writers MNIST never met (ARDIS, optdigits-orig): reading their files, framing, held-out part.

Every picture goes through the app's own pipeline (model.preprocess.preprocess): a picture becomes exactly
what the app would make of the same picture. Neither set comes with a test split of other writers, so a part
of each is held out: shuffled with a fixed seed and stratified by digit (HELD_OUT of every digit). It is the
set's ``test`` split, used to choose and to report, never to train.
"""

from __future__ import annotations

import gzip
import logging
from pathlib import Path

import numpy as np

from model.constants import INPUT_SIZE
from model.preprocess import preprocess
from training.sources.base import ChecksumError, FormatError, Split, bytes_sha256

log = logging.getLogger(__name__)

HELD_OUT = 0.2  # of every digit of every source
HOLDOUT_SEED = 20261204


def read_checked(path: Path, expected: str | None, where: str) -> bytes:
    """The file's content, uncompressed (plain or .gz), checked against `expected` SHA-256 when given."""
    try:
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError) as error:
        raise FormatError(f"{path} cannot be read ({error}): {where}") from None
    if expected and bytes_sha256(data) != expected:
        raise ChecksumError(f"{path} does not have the published SHA-256 ({expected}): it is damaged or not the "
                            f"official file. {where}")
    return data


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
