"""Whole numbers: segmentation into digits and `python -m model.predict --multi`."""

import io
import json

import cv2
import numpy as np
import pytest
from PIL import Image

from model.predict import run
from model.preprocess import find_ink
from model.segment import candidate_spans, digit_regions


def _number(x, indices, gap):
    """MNIST test digits side by side; a negative gap makes neighbours touch."""
    width = 28 * len(indices) + gap * (len(indices) - 1)
    canvas = np.zeros((28, width), np.uint8)
    for position, index in enumerate(indices):
        left = position * (28 + gap)
        canvas[:, left : left + 28] = np.maximum(canvas[:, left : left + 28], x[index])
    return np.pad(canvas, 16)


def _as_photo(image, zoom=4):
    return 255 - np.kron(image, np.ones((zoom, zoom), np.uint8))  # dark ink on paper


@pytest.mark.parametrize("indices, gap", [
    ([5, 10, 15], 4),  # 1 2 3, apart
    ([0, 27, 33, 44, 49], 2),  # 0 5 6 8 9
    ([12, 3], -6),  # 2 0, touching
    ([40, 21, 36], -4),  # 8 4 7, touching
])
def test_numbers_are_read_digit_by_digit_left_to_right(recognizer, mnist_sample, indices, gap):
    x, y = mnist_sample
    number, digits, reason = recognizer.read_number(_as_photo(_number(x, indices, gap)))
    assert reason is None and number == "".join(str(y[i]) for i in indices)
    lefts = [d.box[0] for d in digits]
    assert lefts == sorted(lefts)


def test_a_digit_in_two_pieces_stays_one_digit(mnist_sample):
    x, y = mnist_sample
    four = x[20].copy()  # a 4
    assert y[20] == 4
    rows = np.flatnonzero(four.max(axis=1))
    four[rows[0] + 8 : rows[0] + 10] = 0  # cut it in two across
    mask = find_ink(np.kron(four, np.ones((4, 4), np.uint8))).mask
    assert len(digit_regions(mask)) == 1


def test_a_dot_between_digits_is_not_read_as_a_digit(recognizer, mnist_sample):
    x, y = mnist_sample
    number = _number(x, [5, 10, 15], 8)  # 1 2 3
    number[30:33, 46:49] = 255  # a touch of the pen between the 1 and the 2, 3 px across
    assert recognizer.read_number(_as_photo(number)).number == "123"  # framed alone, it read as a 0


def test_a_wide_digit_cut_in_two_can_rejoin():
    """A 2 whose base runs on and turns up is wider than two digits' guess: it is cut, and the
    reading that takes both halves as one digit must be on offer (the classifier then decides)."""
    mask = np.zeros((140, 260), np.uint8)
    stroke = np.array([(30, 45), (60, 20), (100, 25), (110, 55), (40, 120), (200, 120), (222, 62)], np.int32)
    cv2.polylines(mask, [stroke], False, 255, 8)
    pieces = digit_regions(mask > 0)
    assert len(pieces) == 2
    assert (0, 2) in [(candidate.start, candidate.stop) for candidate in candidate_spans(pieces)]


def test_blank_image_has_no_number(recognizer):
    number, digits, reason = recognizer.read_number(np.full((100, 300), 240, np.uint8))
    assert number is None and digits == [] and "no ink" in reason


def test_a_one_digit_number_is_the_whole_drawing_read_as_one_digit_marks_segmentation_leaves_out_included():
    """Issue 33, item 3: a smiley whose eye segmentation drops as too small to be a digit was read as the number
    0 while one-digit mode, which sees every mark, said "not a digit". The stand-in reader claims a 0 for the
    ring alone and refuses anything wider, as the gate refuses the face."""
    from model.confidence import DIGIT, NOT_A_DIGIT
    from model.number import read_number
    from model.readings import Reading

    face = np.zeros((200, 200), np.uint8)
    cv2.circle(face, (120, 100), 40, 255, 8)  # the ring: 88 px tall
    face[60:72, 52:64] = 255  # an eye outside it: 12 px, under segmentation's speck size, over the ink's
    ring_width = 88

    def stand_in(prepared):
        return [Reading(0, 0.99, verdict=DIGIT, closest=0, box=p.box) if p.box[2] <= ring_width + 2 else
                Reading(None, 0.99, reason="not a digit", verdict=NOT_A_DIGIT, closest=0, box=p.box)
                for p in prepared]

    assert len(digit_regions(find_ink(face).mask)) == 1  # segmentation sees the ring alone
    number, digits, reason = read_number(face, stand_in)
    assert number is None and digits[0].verdict == NOT_A_DIGIT and "not a digit" in reason
    ring_only = face.copy()
    ring_only[60:72, 52:64] = 0
    assert read_number(ring_only, stand_in).number == "0"


def test_multi_command_output(recognizer, mnist_sample, tmp_path):
    x, y = mnist_sample
    path = tmp_path / "number.png"
    Image.fromarray(_as_photo(_number(x, [5, 10, 15, 20], 3))).save(path)
    blank = tmp_path / "blank.png"
    Image.fromarray(np.zeros((50, 80), np.uint8)).save(blank)
    out = io.StringIO()
    assert run([str(path), str(blank)], recognizer, True, out, multi=True) == 0
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["path"] == str(path) and first["number"] == "1234"
    assert [d["digit"] for d in first["digits"]] == [1, 2, 3, 4]
    for digit in first["digits"]:
        gated = {"digit_likeness"} if recognizer.gate else set()  # the gate's score, when the model has one
        assert set(digit) == {"digit", "verdict", "confidence", "box"} | gated and len(digit["box"]) == 4
        assert digit["verdict"] == "digit" and 0 < digit["confidence"] <= 1
        assert all(0 <= digit[key] <= 1 for key in gated)
    assert second == {"path": str(blank), "number": None, "digits": [], "reason": second["reason"]} and second["reason"]
