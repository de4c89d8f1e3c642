"""What every data source gives and how it fails: Splits of 28x28 images, and errors that say how to fix them.

Every source of training.sources returns a (train, test) pair of Splits; training.data caches and combines
them. A source that cannot be had raises one of the errors below, or FileNotFoundError, with a message that
names the file and where to get it.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np

from model.artifacts import file_sha256
from model.constants import INPUT_SIZE, NOT_A_DIGIT

DIGITS = "digits"  # a source of digits, labelled 0-9: the reader learns them, the gate takes them as digits
NOT_DIGITS = "not digits"  # a source of things that are not digits, labelled NOT_A_DIGIT: the gate's negatives


class DataUnavailableError(RuntimeError):
    """No source could provide a dataset; the message lists what was tried."""


class ChecksumError(ValueError):
    """A file's SHA-256 is not the one its source is known to have."""


class FormatError(ValueError):
    """A file is there but not in the layout its set publishes."""


@dataclasses.dataclass(frozen=True)
class Split:
    x: np.ndarray  # (N, 28, 28) uint8, white on black
    y: np.ndarray  # (N,) uint8: a digit 0-9, or NOT_A_DIGIT

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


def concatenate(splits: list[Split]) -> Split:
    """Several Splits as one, in order."""
    return Split(np.concatenate([s.x for s in splits]), np.concatenate([s.y for s in splits]))


def verify_sha256(path: Path, expected: str) -> None:
    actual = file_sha256(path)
    if actual != expected:
        raise ChecksumError(
            f"{path} has SHA-256 {actual}, expected {expected}. The file is corrupt or not the "
            "published one: delete it and let it be fetched again, or replace it with the original."
        )


def bytes_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_split(x: np.ndarray, y: np.ndarray, where: str, not_a_digit: bool = False) -> Split:
    """A Split after checking its shapes, type and labels (0-9; also NOT_A_DIGIT when `not_a_digit`)."""
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim == 2 and x.shape[1] == INPUT_SIZE * INPUT_SIZE:
        x = x.reshape(-1, INPUT_SIZE, INPUT_SIZE)
    if x.ndim != 3 or x.shape[1:] != (INPUT_SIZE, INPUT_SIZE) or len(x) != len(y):
        raise ValueError(f"{where}: expected (N, 28, 28) images with N labels, got {x.shape} and {y.shape}.")
    if x.dtype != np.uint8:
        raise ValueError(f"{where}: expected uint8 images, got {x.dtype}.")
    highest = NOT_A_DIGIT if not_a_digit else 9
    if len(y) and (y.min() < 0 or y.max() > highest):
        raise ValueError(f"{where}: labels must be digits 0-9{' or NOT_A_DIGIT' if not_a_digit else ''}, "
                         f"got range {y.min()}..{y.max()}.")
    return Split(np.ascontiguousarray(x), y.astype(np.uint8))


def find_file(data_dir: Path | None, subfolder: str, name: str, where: str) -> Path:
    """The file `name` (or `name`.gz) in data_dir or its `subfolder`; a clear error naming it and `where` to get it."""
    if data_dir is None:
        raise FileNotFoundError(f"no --data-dir given: {where}")
    folders = [Path(data_dir), Path(data_dir) / subfolder]
    for folder in folders:
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    raise FileNotFoundError(f"{name} is not in {' or '.join(map(str, folders))}: {where}")


def held_out_groups(groups: np.ndarray, strata: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A mask of the items to hold out, whole groups at a time (a writer, a category): `fraction` of the groups
    of every stratum (a contributor, a kind), shuffled with `seed`. No group is on both sides."""
    rng = np.random.default_rng(seed)
    held_groups: list = []
    group_stratum = {}
    for group, stratum in zip(groups.tolist(), strata.tolist()):
        group_stratum.setdefault(group, stratum)
    by_stratum: dict = {}
    for group, stratum in sorted(group_stratum.items()):
        by_stratum.setdefault(stratum, []).append(group)
    for stratum in sorted(by_stratum):
        members = rng.permutation(np.array(by_stratum[stratum]))
        held_groups += members[: int(round(fraction * len(members)))].tolist()
    return np.isin(groups, np.array(held_groups))
