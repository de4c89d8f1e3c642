"""The data a training run sees: the datasets combined into training, validation and test splits.

Shared by training (training.train) and recalibration (training.calibrate), which must hold out exactly the
validation images the model was trained without.
"""

from __future__ import annotations

import numpy as np

from training.config import TrainConfig
from training.sources import MNIST, OTHER_WRITERS, RENDERED, kind_of
from training.sources.base import DIGITS, Dataset, Split, concatenate


def validation_order(count: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Which training images to keep and which `size` (a seeded random choice) to hold out for early stopping."""
    order = np.random.default_rng(seed).permutation(count)
    size = min(size, count // 5)
    return order[size:], order[:size]


def _limit(split: Split, limit: int | None, seed: int) -> Split:
    """At most `limit` images, a seeded sample in the split's order: every source keeps its share (the first
    `limit` would be MNIST's alone), so a limited run is a small copy of the full one."""
    if limit is None or len(split.y) <= limit:
        return split
    chosen = np.sort(np.random.default_rng(seed).permutation(len(split.y))[:limit])
    return Split(split.x[chosen], split.y[chosen])


def _repeat_of(name: str, config: TrainConfig) -> int:
    """How many times each training image of this set is seen per epoch."""
    if name in OTHER_WRITERS:
        return config.other_writers_repeat
    return config.mnist_repeat if name == MNIST else 1


def make_datasets(datasets: list[Dataset], config: TrainConfig):
    """Combine the datasets, hold out validation data, limit for smoke runs.

    The validation images are drawn from the sets of distinct pictures (MNIST, ARDIS, optdigits-orig): a set of
    pen strokes gives several renders of each drawing, which would sit on both sides, so its training images all
    go to training (its held-out writers are its test split). The few digits of other writers are repeated
    (config.other_writers_repeat), and MNIST's when asked (config.mnist_repeat), after the validation split, so
    none is in both. A test split is measured only for sets of digits; the held-out non-digits are the benches'
    (bench/trust.py)."""
    pooled = [d for d in datasets if d.name not in RENDERED]
    rendered = [d for d in datasets if d.name in RENDERED]
    train = concatenate([d.train for d in pooled])
    repeat = np.concatenate([np.full(len(d.train), _repeat_of(d.name, config)) for d in pooled])
    kept, held = validation_order(len(train), config.validation_size, config.seed)
    kept = np.repeat(kept, repeat[kept])
    train, validation = Split(train.x[kept], train.y[kept]), Split(train.x[held], train.y[held])
    train = concatenate([train, *(d.train for d in rendered)])
    tests = {d.name: _limit(d.test, config.limit, config.seed) for d in datasets if kind_of(d.name) == DIGITS}
    return (_limit(train, config.limit, config.seed), _limit(validation, config.limit, config.seed), tests)
