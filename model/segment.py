"""Split the ink of a whole number into digits: connected components, merged and split.

Pure numpy/OpenCV. A digit drawn in pieces (a 5's detached top, a 4 in two
strokes) is often several components stacked over the same columns: those
merge. Digits that touch form one component much wider than a digit: it is
cut at the emptiest columns near where equal-width digits would meet.

Pieces side by side can still be one digit (a 4 whose two strokes do not
meet, a 0 whose pen skipped): `candidate_spans` lists which runs of
neighbouring pieces could form one digit by their shape, and `best_spans`
picks the reading the classifier is most sure of, the way over-segmenting
handwriting readers do.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import cv2
import numpy as np

# Components overlapping horizontally by this share of the narrower one are one digit.
STACKED_OVERLAP = 0.3
# A group wider than this many times its height holds touching digits.
TOUCHING_ASPECT = 1.25
# Expected width of one digit relative to the group's height, to count touching digits.
DIGIT_ASPECT = 0.75
# Neighbouring pieces may form one digit when together they are at most this
# wide (relative to their height), no gap between them is wider than
# JOIN_GAP of that height, and at most JOIN_PIECES of them. Pieces cut from
# one component (no gap) may be up to CUT_ASPECT wide (a wide, leaning 0 is
# cut like two touching digits), and a fragment may join whatever is next to
# it (a 7's long bar sticks out); the classifier then decides.
JOIN_ASPECT = 1.1
CUT_ASPECT = 2.0  # a wide 2 or 5 whose base or bar runs on is cut in two and must rejoin
JOIN_GAP = 0.2
JOIN_PIECES = 4
# Joining pieces apart must win by this much log-probability (two digits stay
# two unless the joined reading is clearly better); pieces cut from one
# connected stroke get a bonus instead: the cut was only a guess from its width.
JOIN_MARGIN = 0.1
CUT_BONUS = 0.25
# Every digit is about as tall as the number: a piece under this share of the
# tallest is a fragment (a 5's bar, a 7's broken stem), read alone only if
# nothing can take it in.
FRAGMENT_HEIGHT = 0.45
FRAGMENT_PENALTY = 8.0
# A piece whose longer side is under this share of the tallest piece's height is a speck (a dot, a
# touch of the pen), not a digit: framed alone, it fills the box and reads as a 0 or a 1.
SPECK_SIZE = 0.2


def _components(mask: np.ndarray) -> list[np.ndarray]:
    count, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    return [labels == label for label in range(1, count)]


def _columns(region: np.ndarray) -> tuple[int, int]:
    cols = np.flatnonzero(region.any(axis=0))
    return int(cols[0]), int(cols[-1])


def _merge_stacked(regions: list[np.ndarray]) -> list[np.ndarray]:
    groups: list[np.ndarray] = []
    for region in sorted(regions, key=lambda r: _columns(r)[0]):
        left, right = _columns(region)
        for index, group in enumerate(groups):
            g_left, g_right = _columns(group)
            overlap = min(right, g_right) - max(left, g_left) + 1
            if overlap >= STACKED_OVERLAP * min(right - left + 1, g_right - g_left + 1):
                groups[index] = group | region
                break
        else:
            groups.append(region)
    return groups


def _split_touching(region: np.ndarray) -> list[np.ndarray]:
    rows = np.flatnonzero(region.any(axis=1))
    left, right = _columns(region)
    height, width = rows[-1] - rows[0] + 1, right - left + 1
    if width <= TOUCHING_ASPECT * height:
        return [region]
    count = max(2, round(width / (DIGIT_ASPECT * height)))
    profile = region[:, left : right + 1].sum(axis=0).astype(float)
    cuts, window = [], max(1, width // (3 * count))
    for index in range(1, count):
        expected = round(index * width / count)
        lo, hi = max(1, expected - window), min(width - 1, expected + window)
        cuts.append(left + lo + int(np.argmin(profile[lo:hi])))
    pieces = []
    for start, stop in zip([left] + cuts, cuts + [right + 1]):
        piece = np.zeros_like(region)
        piece[:, start:stop] = region[:, start:stop]
        if piece.any():
            pieces.append(piece)
    return pieces


def digit_regions(mask: np.ndarray) -> list[np.ndarray]:
    """Boolean masks, one per digit, ordered left to right."""
    groups = _merge_stacked(_components(mask))
    # Only groups as tall as digits can be touching digits: a long thin bar is one fragment.
    heights = [_height(group) for group in groups]
    tallest = max(heights, default=1)
    pieces = [piece for group, height in zip(groups, heights)
              if not _is_speck(group, tallest)
              for piece in (_split_touching(group) if height >= FRAGMENT_HEIGHT * tallest else [group])]
    return sorted(pieces, key=lambda r: _columns(r)[0])


def _is_speck(region: np.ndarray, tallest: int) -> bool:
    left, right = _columns(region)
    return max(_height(region), right - left + 1) < SPECK_SIZE * tallest


class Candidate(NamedTuple):
    """A run of neighbouring pieces, pieces[start:stop], that could be one digit."""

    start: int
    stop: int
    penalty: float  # subtracted from the run's log-probability
    region: np.ndarray  # the union of its pieces


def _height(region: np.ndarray) -> int:
    rows = np.flatnonzero(region.any(axis=1))
    return int(rows[-1] - rows[0] + 1)


def _join_penalty(region: np.ndarray, touching: bool) -> float:
    """Pieces cut from one stroke rejoin with a bonus; pieces that touch, at no cost; pieces apart pay a margin."""
    if not touching:
        return JOIN_MARGIN
    count, _ = cv2.connectedComponents(region.astype(np.uint8), connectivity=8)
    return -CUT_BONUS if count == 2 else 0.0  # background + one component: they were cut apart


def candidate_spans(pieces: list[np.ndarray]) -> list[Candidate]:
    """Runs of pieces that could be one digit by their shape, each with a shape penalty.

    Every single piece is a candidate; one much shorter than the tallest is
    penalised as a fragment.
    """
    heights = [_height(piece) for piece in pieces]
    fragment = [height < FRAGMENT_HEIGHT * max(heights, default=1) for height in heights]
    candidates = [Candidate(i, i + 1, FRAGMENT_PENALTY if fragment[i] else 0.0, piece)
                  for i, piece in enumerate(pieces)]
    for i in range(len(pieces)):
        for j in range(i + 2, min(len(pieces), i + JOIN_PIECES) + 1):
            region = np.logical_or.reduce(pieces[i:j])
            height = _height(region)
            left, right = _columns(region)
            gaps = [_columns(b)[0] - _columns(a)[1] - 1 for a, b in zip(pieces[i : j - 1], pieces[i + 1 : j])]
            aspect = (right - left + 1) / height
            if max(gaps) > JOIN_GAP * height:
                continue
            touching = max(gaps) <= 0
            if any(fragment[i:j]) or aspect <= (CUT_ASPECT if touching else JOIN_ASPECT):
                candidates.append(Candidate(i, j, _join_penalty(region, touching), region))
    return candidates


def best_spans(candidates: list[Candidate], confidences: list[float], count: int) -> list[int]:
    """Indices of the candidates that cover all `count` pieces in order with the most probable reading.

    Score: the sum of each run's log-probability less its shape penalty
    (dynamic programming over the pieces, left to right).
    """
    best: list[tuple[float, list[int]]] = [(0.0, [])] + [(-math.inf, [])] * count
    for end in range(1, count + 1):
        for index, (candidate, confidence) in enumerate(zip(candidates, confidences)):
            if candidate.stop != end or best[candidate.start][0] == -math.inf:
                continue
            score = best[candidate.start][0] + math.log(max(confidence, 1e-9)) - candidate.penalty
            if score > best[end][0]:
                best[end] = (score, best[candidate.start][1] + [index])
    return best[count][1]
