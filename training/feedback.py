"""Corrections as training data: a stable held-out slice, and mixing them into a training set."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from model.constants import NOT_A_DIGIT
from services.corrections import Samples, default_store_path, existing_store
from training.data import Split

log = logging.getLogger(__name__)
FEEDBACK_MODES = ("oversample", "weight")
MIN_FOR_HOLDOUT = 10  # below this many corrections, every one is used for training: a figure from 1 or 2 means nothing
_HASH_MULTIPLIER = 2654435761  # Knuth's multiplicative hash: spreads consecutive ids evenly over [0, 1)


class NoCorrectionsError(ValueError):
    """Training was asked to use corrections, but there are none to train with."""


class ReplayError(ValueError):
    """A fine-tune would not replay what its base model learned from, and so would forget it."""


def held_out(ids: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Which samples are held out for evaluation. A sample's fate depends only on its id and the seed,
    so one held out once stays held out as the store grows, and before/after figures stay comparable."""
    keys = ((ids.astype(np.uint64) + np.uint64(seed * 7919)) * np.uint64(_HASH_MULTIPLIER)) % np.uint64(2**32)
    return keys.astype(np.float64) / 2**32 < fraction


def load_corrections(store: Path | None, holdout: float, seed: int,
                     not_a_digit: bool = False) -> tuple[Split, Split, Samples]:
    """(train, held-out) splits of the stored corrections.

    A "not a digit" correction teaches a model that learns non-digits (`not_a_digit`: the gate, trained with
    --non-digits); a reader learns only digits, so it leaves them out. Only digits are held out: a held-out
    figure is of reading, and "not a digit" has no digit to read."""
    found = existing_store(store)
    if found is None:
        raise NoCorrectionsError(f"There is no corrections store at {store or default_store_path()}: send "
                                 "corrections from the app first, or point --corrections at a store.")
    samples = found.samples()
    digits = samples.y != NOT_A_DIGIT
    if not not_a_digit and not digits.all():
        log.info("Left out %d 'not a digit' corrections: they teach the gate (docs/reliability.md), "
                 "not a reader", int((~digits).sum()))
    held = held_out(samples.ids, holdout if digits.sum() >= MIN_FOR_HOLDOUT else 0.0, seed) & digits
    trained = ~held & (digits | not_a_digit)
    if not trained.any():
        only = " (all of them 'not a digit', which teach the gate: fine-tune it as docs/reliability.md says)" \
            if len(samples) and not digits.any() and not not_a_digit else ""
        raise NoCorrectionsError(f"{found} holds {len(samples)} correction(s){only}, none to train this model with "
                                 "once the held-out ones are set aside: send more corrections or lower "
                                 "--feedback-holdout.")
    return Split(samples.x[trained], samples.y[trained]), Split(samples.x[held], samples.y[held]), samples


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
