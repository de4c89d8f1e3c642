"""What reading an image gives: a digit (or the reason there is none), or a whole number."""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np

from model.confidence import EMPTY, NOT_A_DIGIT, NOT_SURE


@dataclasses.dataclass(frozen=True)
class Reading:
    """One input's result: a digit with its probabilities, or the reason there is none.

    A refused reading (verdict NOT_SURE or NOT_A_DIGIT) has no digit but keeps its
    probabilities, its closest digit and that digit's confidence; an EMPTY one has none of them.
    """

    digit: int | None
    confidence: float | None = None  # calibrated probability of `closest`
    probabilities: tuple[float, ...] | None = None  # calibrated, 0-9
    reason: str | None = None
    model_input: np.ndarray | None = None  # the 28x28 image the model saw
    box: tuple[int, int, int, int] | None = None
    verdict: str = EMPTY
    closest: int | None = None  # the likeliest digit, claimed or not
    digit_likeness: float | None = None  # the gate's score (model.gate); None without a gate

    @property
    def refused(self) -> bool:
        return self.verdict in (NOT_SURE, NOT_A_DIGIT)

    def top(self, count: int = 2) -> list[tuple[int, float]]:
        if self.probabilities is None:
            return []
        order = np.argsort(self.probabilities)[::-1][:count]
        return [(int(i), float(self.probabilities[i])) for i in order]


class NumberReading(NamedTuple):
    """A whole number read digit by digit, left to right, or the reason there is none.

    When a piece is refused, `number` is None, `reason` names the piece's box and `digits` still
    holds every piece's reading."""

    number: str | None
    digits: list[Reading]
    reason: str | None = None
