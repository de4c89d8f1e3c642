"""Split the ink of a whole number into digits: connected components, merged and split.

Pure numpy/OpenCV. A digit drawn in pieces (a 5's detached top, a 4 in two
strokes) is several components stacked over the same columns: those merge.
Digits that touch form one component much wider than a digit: it is cut
at the emptiest columns near where equal-width digits would meet.
"""

from __future__ import annotations

import cv2
import numpy as np

# Components overlapping horizontally by this share of the narrower one are one digit.
STACKED_OVERLAP = 0.3
# A group wider than this many times its height holds touching digits.
TOUCHING_ASPECT = 1.25
# Expected width of one digit relative to the group's height, to count touching digits.
DIGIT_ASPECT = 0.75


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
    pieces = [piece for group in groups for piece in _split_touching(group)]
    return sorted(pieces, key=lambda r: _columns(r)[0])
