"""The "why this digit" map (model/explain.py): occlusion sensitivity on the fast path."""

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from model.constants import INPUT_SIZE
from model.explain import Explanation, explain, heat_in_image, overlay, overlay_on_image

ROOT = Path(__file__).resolve().parents[1]


def _seven_and_one(top: tuple, bottom: tuple, bar_left: int, thickness: int) -> tuple[np.ndarray, np.ndarray]:
    """A 1 drawn as one slanted stroke, and the same stroke with a bar on top: a 7."""
    one = np.zeros((INPUT_SIZE, INPUT_SIZE), np.uint8)
    cv2.line(one, top, bottom, 255, thickness, cv2.LINE_AA)
    seven = one.copy()
    cv2.line(seven, (bar_left, top[1]), top, 255, thickness, cv2.LINE_AA)
    return seven, one


@pytest.mark.parametrize("top, bottom, bar_left, thickness", [((18, 5), (11, 23), 8, 2), ((16, 4), (14, 24), 7, 2),
                                                               ((19, 4), (10, 24), 9, 3)])
def test_the_map_of_a_7_against_a_1_puts_most_of_its_weight_on_the_bar(top, bottom, bar_left, thickness):
    from model.inference import Recognizer

    recognizer = Recognizer()
    seven, one = _seven_and_one(top, bottom, bar_left, thickness)
    probabilities = recognizer.probabilities(np.stack([seven, one]))
    assert probabilities[0].argmax() == 7 and probabilities[1].argmax() == 1  # the model agrees they are 7 and 1
    explanation = explain(seven, recognizer.probabilities, answer=7, rival=1)
    bar_only = (seven > 0) & (one == 0)
    bar_rows = np.zeros_like(bar_only)
    bar_rows[: np.flatnonzero(bar_only.any(axis=1))[-1] + 1] = True  # the bar and the stroke where it joins
    bar = bar_rows & (seven > 0)
    assert bar.sum() < 0.45 * (seven > 0).sum()  # the bar is the smaller part of the ink...
    assert explanation.share_towards_answer(bar) > 0.75  # ...and holds most of the push towards 7


def _region_model(region: np.ndarray, full: float):
    """A stand-in model: the more ink in `region` (up to `full` pixels of it), the likelier a 3; else an 8."""
    def probabilities(batch: np.ndarray) -> np.ndarray:
        evidence = np.minimum(batch[:, region].sum(axis=1) / (255.0 * full), 1.0)
        out = np.full((len(batch), 10), 1e-4)
        out[:, 3] = 0.05 + evidence
        out[:, 8] = 0.05 + (1 - evidence)
        return out / out.sum(axis=1, keepdims=True)
    return probabilities


def test_only_the_ink_the_model_looks_at_is_marked_and_the_runner_up_is_the_second_choice():
    image = np.zeros((INPUT_SIZE, INPUT_SIZE), np.uint8)
    image[4:24, 6:9] = 255  # a stroke on the left
    image[4:24, 18:21] = 255  # and one on the right
    region = np.zeros_like(image, dtype=bool)
    region[:, 14:] = True
    explanation = explain(image, _region_model(region, full=60))
    assert (explanation.answer, explanation.rival) == (3, 8)
    assert explanation.heat[4:24, 18:21].min() > 0  # the right stroke pushed towards 3
    assert np.abs(explanation.heat[:, :12]).max() < 1e-6  # the left one did nothing
    assert np.all(explanation.heat[image == 0] == 0)  # only ink is ever marked
    # Asked the other way round, the same ink pushes towards the runner-up.
    reverse = explain(image, _region_model(region, full=60), answer=8, rival=3)
    assert reverse.heat[4:24, 18:21].max() < 0


def test_the_map_goes_back_onto_the_drawing_at_the_ink_box_and_is_drawn_in_colour():
    heat = np.zeros((INPUT_SIZE, INPUT_SIZE), np.float32)
    model_input = np.zeros((INPUT_SIZE, INPUT_SIZE), np.uint8)
    model_input[4:24, 10:18] = 255
    heat[4:8, 10:18] = 1.0  # the top of the ink pushed
    explanation = Explanation(7, 1, heat)
    placed = heat_in_image(explanation, model_input, (100, 50, 40, 100), (280, 280))
    rows = np.flatnonzero(placed.max(axis=1) > 0.5)
    cols = np.flatnonzero(placed.max(axis=0) > 0.5)
    assert 50 <= rows.min() and rows.max() <= 75  # the top quarter of the box
    assert cols.min() >= 100 and cols.max() < 140
    drawing = np.zeros((280, 280, 4), np.uint8)
    drawing[..., 3] = 255
    shown = overlay_on_image(drawing, [(explanation, model_input, (100, 50, 40, 100))])
    assert shown.shape == (280, 280, 3) and shown.dtype == np.uint8
    red, _, blue = shown[60, 120].astype(int)
    assert red > blue + 80  # orange where it pushed towards the answer
    assert overlay(model_input, -heat)[5, 12, 2] > overlay(model_input, -heat)[5, 12, 0]  # blue towards the rival


def test_a_huge_photo_is_shown_small_and_a_wrong_input_is_refused():
    photo = np.full((3000, 4000, 3), 230, np.uint8)
    explanation = Explanation(1, 7, np.zeros((INPUT_SIZE, INPUT_SIZE), np.float32))
    assert max(overlay_on_image(photo, [(explanation, np.zeros((28, 28), np.uint8), (0, 0, 10, 10))]).shape) <= 560
    with pytest.raises(ValueError, match="28x28"):
        explain(np.zeros((32, 32), np.uint8), lambda batch: np.ones((len(batch), 10)) / 10)


def test_explaining_a_reading_needs_no_tensorflow():
    code = ("import sys, numpy as np; from model.inference import Recognizer; from model.explain import explain; "
            "r = Recognizer(); image = np.zeros((28, 28), np.uint8); image[5:23, 13:16] = 255; "
            "e = explain(r.read(image).model_input, r.probabilities); "
            "print(e.answer, 'tensorflow' in sys.modules, 'keras' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert done.stdout.split() == ["1", "False", "False"]
