"""Corrections as training data: a stable held-out slice, and mixing them into a training set."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from services.corrections import CorrectionStore, Samples, default_store_path
from training.data import Split

FEEDBACK_MODES = ("oversample", "weight")
MIN_FOR_HOLDOUT = 10  # below this many corrections, every one is used for training: a figure from 1 or 2 means nothing
_HASH_MULTIPLIER = 2654435761  # Knuth's multiplicative hash: spreads consecutive ids evenly over [0, 1)


class NoCorrectionsError(ValueError):
    """Training was asked to use corrections, but there are none to train with."""


def held_out(ids: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Which samples are held out for evaluation. A sample's fate depends only on its id and the seed,
    so one held out once stays held out as the store grows, and before/after figures stay comparable."""
    keys = ((ids.astype(np.uint64) + np.uint64(seed * 7919)) * np.uint64(_HASH_MULTIPLIER)) % np.uint64(2**32)
    return keys.astype(np.float64) / 2**32 < fraction


def load_corrections(store: Path | None, holdout: float, seed: int) -> tuple[Split, Split, Samples]:
    """(train, held-out) splits of the stored corrections."""
    path = Path(store) if store else default_store_path()
    if not path.exists():
        raise NoCorrectionsError(f"There is no corrections store at {path}: send corrections from the app first, "
                                 "or point --corrections at a store.")
    samples = CorrectionStore(path).samples()
    held = held_out(samples.ids, holdout if len(samples) >= MIN_FOR_HOLDOUT else 0.0, seed)
    train = Split(samples.x[~held], samples.y[~held])
    if len(train) == 0:
        raise NoCorrectionsError(f"{path} holds {len(samples)} correction(s), all of them held out for evaluation: "
                                 "send more corrections or lower --feedback-holdout.")
    return train, Split(samples.x[held], samples.y[held]), samples


def mix(base: Split, corrections: Split, mode: str, factor: int) -> tuple[Split, np.ndarray | None]:
    """Add the corrections to a training set so that each counts like `factor` ordinary images:
    repeated `factor` times (oversample), or once with sample weight `factor` (weight)."""
    if mode == "oversample":
        x = np.concatenate([base.x, np.repeat(corrections.x, factor, axis=0)])
        y = np.concatenate([base.y, np.repeat(corrections.y, factor)])
        return Split(x, y), None
    if mode == "weight":
        weights = np.concatenate([np.ones(len(base), np.float32), np.full(len(corrections), factor, np.float32)])
        return Split(np.concatenate([base.x, corrections.x]), np.concatenate([base.y, corrections.y])), weights
    raise ValueError(f"feedback mode must be one of {FEEDBACK_MODES}, got {mode!r}.")


def replay_subset(train: Split, size: int, seed: int) -> Split:
    """A seeded random part of the original training data, mixed into a fine-tune so the model
    keeps what it knew (without it, a few corrections would pull every answer their way)."""
    if size >= len(train):
        return train
    chosen = np.sort(np.random.default_rng(seed).choice(len(train), size, replace=False))
    return Split(train.x[chosen], train.y[chosen])
