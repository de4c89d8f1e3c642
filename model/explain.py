"""Why this digit: which ink pushed the model towards its answer, and which towards the runner-up.

Occlusion sensitivity (Zeiler & Fergus, 2014): erase the ink under a small
square, read the image again, and see how much the choice between the answer
and the runner-up, p(answer) / (p(answer) + p(runner-up)), moves. Ink whose
erasure moves it towards the runner-up pushed towards the answer, and the other
way round. The pairwise choice, not the log-odds, because it saturates: erasing
any part of a confident 7 cuts its log-odds a little, but only erasing the bar
makes it a 1 (measured on 7s and 1s that differ only by the bar: 89-94% of the
push on the bar's rows with the choice, 59-73% with the log-odds). It needs only forward passes, so it runs on the LiteRT fast path
(one batch of about 25 28x28 images) without TensorFlow or gradients.
bench/why.py measures how faithful the map is (deleting the ink it ranks first
must cut the lead faster than deleting ink at random) and bench/app_speed.py
its cost per stroke. Pure numpy/OpenCV.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import cv2
import numpy as np

from model.constants import INPUT_SIZE, PIXEL_MAX
from model.preprocess import working_gray

PATCH = 5  # the erased square, in model-input pixels: a little more than a stroke's width
STRIDE = 3  # 2 is as faithful (bench/why.py: 0.63 against 0.64) at twice the readings
# Squares that hold less ink than this are not erased: they only graze a stroke, and skipping them
# saves a third of the readings (37 -> 24 on MNIST) for the same faithfulness (0.645 against 0.642).
MIN_INK = 8
TINY = 1e-30  # probabilities are clipped here before the log (float32 reaches 1e-38): a certain answer has a finite lead
SHOWN_MAX_SIDE = 560  # the overlay on a photo is drawn at most this large: it is shown, not read
TOWARDS_ANSWER = (228, 87, 46)  # the chart's colour of the prediction
TOWARDS_RIVAL = (39, 110, 241)


@dataclasses.dataclass(frozen=True)
class Explanation:
    """How much each pixel of the 28x28 input pushed towards `answer` (> 0) or `rival` (< 0)."""

    answer: int
    rival: int
    heat: np.ndarray  # (28, 28) float32: how far erasing the ink moves the choice (0..1); zero off the ink

    def share_towards_answer(self, region: np.ndarray) -> float:
        """The part of all the push towards the answer that comes from `region` (a 28x28 bool mask)."""
        positive = np.clip(self.heat, 0, None)
        total = float(positive.sum())
        return float(positive[region].sum()) / total if total > 0 else 0.0


def _patch_corners(ink: np.ndarray) -> list[tuple[int, int]]:
    starts = range(0, INPUT_SIZE - PATCH + 1, STRIDE)
    return [(top, left) for top in starts for left in starts
            if np.count_nonzero(ink[top : top + PATCH, left : left + PATCH]) >= MIN_INK]


def lead(probabilities: np.ndarray, answer: int, rival: int) -> np.ndarray:
    """log p(answer) - log p(rival) for each row of an (N, 10) array."""
    clipped = np.clip(probabilities, TINY, 1.0)
    return np.log(clipped[:, answer]) - np.log(clipped[:, rival])


def choice(probabilities: np.ndarray, answer: int, rival: int) -> np.ndarray:
    """p(answer) / (p(answer) + p(rival)) for each row, computed from the lead so it stays exact near 1."""
    return 1.0 / (1.0 + np.exp(-lead(probabilities, answer, rival).astype(np.float64)))


def explain(model_input: np.ndarray, probabilities: Callable[[np.ndarray], np.ndarray],
            answer: int | None = None, rival: int | None = None) -> Explanation:
    """The occlusion map of a 28x28 uint8 input; `probabilities` maps (N, 28, 28) uint8 to (N, 10).

    `answer` and `rival` default to the model's first and second choice."""
    image = np.asarray(model_input, np.uint8)
    if image.shape != (INPUT_SIZE, INPUT_SIZE):
        raise ValueError(f"Expected a {INPUT_SIZE}x{INPUT_SIZE} model input, got shape {image.shape}.")
    ink = image > 0
    corners = _patch_corners(ink)
    batch = np.repeat(image[None], len(corners) + 1, axis=0)
    for index, (top, left) in enumerate(corners, start=1):
        batch[index, top : top + PATCH, left : left + PATCH] = 0
    predicted = np.asarray(probabilities(batch))
    order = np.argsort(predicted[0])[::-1]
    answer = int(order[0]) if answer is None else answer
    rival = int(order[1] if order[0] == answer else order[0]) if rival is None else rival
    drops = choice(predicted[:1], answer, rival)[0] - choice(predicted[1:], answer, rival)
    total = np.zeros((INPUT_SIZE, INPUT_SIZE))
    covered = np.zeros((INPUT_SIZE, INPUT_SIZE))
    for drop, (top, left) in zip(drops, corners):
        total[top : top + PATCH, left : left + PATCH] += drop
        covered[top : top + PATCH, left : left + PATCH] += 1
    heat = np.divide(total, covered, out=np.zeros_like(total), where=covered > 0)
    heat *= image / PIXEL_MAX  # only ink can push; faint ink pushes less
    return Explanation(answer, rival, heat.astype(np.float32))


def heat_in_image(explanation: Explanation, model_input: np.ndarray, box: tuple[int, int, int, int],
                  shape: tuple[int, int]) -> np.ndarray:
    """The map moved from the 28x28 input back onto the image it came from.

    The input's ink box is the image's ink `box` (x, y, w, h), scaled and shifted (model.preprocess
    frames the ink that way); `shape` is the image's (height, width)."""
    rows = np.flatnonzero(np.asarray(model_input).max(axis=1) > 0)
    cols = np.flatnonzero(np.asarray(model_input).max(axis=0) > 0)
    placed = np.zeros(shape[:2], np.float32)
    x, y, w, h = box
    w, h = min(w, shape[1] - x), min(h, shape[0] - y)
    if rows.size == 0 or w <= 0 or h <= 0:
        return placed
    crop = explanation.heat[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    placed[y : y + h, x : x + w] = cv2.resize(crop, (w, h), interpolation=cv2.INTER_LINEAR)
    return placed


def overlay_on_image(image: np.ndarray, pieces: list[tuple[Explanation, np.ndarray, tuple[int, int, int, int]]],
                     max_side: int = SHOWN_MAX_SIDE) -> np.ndarray:
    """The maps of one or more readings (explanation, model input, ink box) over the image they were read
    from (any array model.preprocess takes), shrunk to at most `max_side`. Returns RGB uint8."""
    # shrunk before anything else: a phone photo is 12 megapixels, the picture shown 0.3
    gray, scale = working_gray(image, max_side)
    heat = np.zeros(gray.shape, np.float32)
    for explanation, model_input, box in pieces:
        scaled = tuple(int(v * scale) for v in box)
        heat += heat_in_image(explanation, model_input, scaled, gray.shape)
    return overlay(np.clip(gray * PIXEL_MAX + 0.5, 0, PIXEL_MAX).astype(np.uint8), heat)


def overlay(picture: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """A picture (gray or RGB(A), uint8) dimmed to gray, with the push towards the answer in the chart's
    orange and towards the runner-up in blue, stronger where it pushes more. Returns RGB uint8."""
    picture = np.asarray(picture)
    if picture.ndim == 3:
        picture = cv2.cvtColor(picture, cv2.COLOR_RGBA2GRAY if picture.shape[2] == 4 else cv2.COLOR_RGB2GRAY)
    if heat.shape != picture.shape:
        heat = cv2.resize(heat, (picture.shape[1], picture.shape[0]), interpolation=cv2.INTER_NEAREST)
    base = np.repeat((picture.astype(np.float32) * 0.5 + 64)[..., None], 3, axis=2)
    strongest = float(np.abs(heat).max())
    if strongest > 0:
        for sign, colour in ((1, TOWARDS_ANSWER), (-1, TOWARDS_RIVAL)):
            weight = np.clip(sign * heat / strongest, 0, 1)[..., None] ** 0.5  # faint pushes stay visible
            base = base * (1 - weight) + np.array(colour, np.float32) * weight
    return np.clip(base, 0, 255).astype(np.uint8)
