"""Read a whole number: the one place its pipeline runs, start to end.

Find the ink (model.preprocess), split it into pieces and list every run of
neighbouring pieces that could be one digit (model.segment), read all of them
in one batch (the `read` function passed in), and keep the reading the model
is most sure of (model.segment.best_spans). A number with a refused piece is
not claimed: the reason names that piece's box. A number of one digit is the
whole drawing, every mark included, read as one digit, as the one-digit mode
reads it: segmentation leaves out marks too small to be digits (a smiley's eye),
and what is left of a smiley is a 0 (issue 33).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from model.confidence import NOT_A_DIGIT
from model.preprocess import Preprocessed, find_ink, frame_region
from model.readings import NumberReading, Reading
from model.segment import best_spans, candidate_spans, digit_regions


def read_number(image: np.ndarray, read: Callable[[list[Preprocessed]], list[Reading]]) -> NumberReading:
    """Every digit of a whole number, left to right, or the reason there is no number."""
    found = find_ink(image)
    if isinstance(found, str):
        return NumberReading(None, [], found)
    pieces = digit_regions(found.mask)
    candidates = candidate_spans(pieces)
    whole, *readings = read([frame_region(found, found.mask)] + [frame_region(found, c.region) for c in candidates])
    chosen = best_spans(candidates, [reading.confidence for reading in readings], len(pieces))
    digits = [readings[index] for index in chosen]
    if len(digits) == 1:
        digits = [whole]
    refused = [digit for digit in digits if digit.refused]
    if refused:
        return NumberReading(None, digits, f"the piece at {_where(refused[0])} {_why(refused[0])}")
    return NumberReading("".join(str(digit.digit) for digit in digits), digits)


def _where(piece: Reading) -> str:
    x, y, w, h = piece.box
    return f"x={x}, y={y} ({w}x{h} px)"


def _why(piece: Reading) -> str:
    if piece.verdict == NOT_A_DIGIT:
        return "is not a digit"
    (first, _), (second, _) = piece.top(2)
    return f"could be {first} or {second}"
