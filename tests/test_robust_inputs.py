"""Inputs the way users give them: drawn, photographed, sideways, numbers, and nothing at all.

Rendered by the benchmark's own generators (bench/synth.py) from the MNIST
test sample in tests/fixtures, with fixed seeds.
"""

import io

import numpy as np
import pytest
from PIL import Image

from bench import synth
from model.annotate import DISPLAY_MAX_SIDE, draw_readings
from model.images import decode_image
from model.inference import NumberReading, Reading
from model.preprocess import NO_INK, NOISE, paper_is_light, preprocess
from model.segment import best_spans, candidate_spans


@pytest.mark.parametrize("style", synth.CANVAS_STYLES)
def test_canvas_drawings_in_every_style_are_read(recognizer, mnist_sample, style):
    x, y = mnist_sample
    rng = np.random.default_rng(1)
    readings = [recognizer.read(synth.canvas([x[i]], rng, style)) for i in range(0, 50, 2)]
    right = sum(r.digit == y[i] for r, i in zip(readings, range(0, 50, 2)))
    assert right >= 24  # of 25


def test_photos_are_read_including_sideways_ones_with_exif(recognizer, mnist_sample):
    x, y = mnist_sample
    rng = np.random.default_rng(2)
    right = 0
    for i in range(0, 50, 2):
        data = synth.encode(synth.photo(synth.pen_ink(x[i], 200), rng), rng, jpeg=True, exif_turn=i % 4 == 0)
        right += recognizer.read(decode_image(data, "photo.jpg")).digit == y[i]
    assert right >= 24  # of 25


def test_exif_turned_photo_decodes_upright():
    rng = np.random.default_rng(3)
    upright = np.zeros((40, 60), np.uint8)
    upright[5:10, 5:20] = 255  # a mark near the top-left corner
    for _ in range(6):
        decoded = decode_image(synth.encode(upright, rng, jpeg=False, exif_turn=True), "turned.png")
        assert decoded.shape[:2] == upright.shape
        assert decoded[..., 0][5:10, 5:20].mean() > 200 if decoded.ndim == 3 else decoded[5:10, 5:20].mean() > 200


@pytest.mark.parametrize("kind", synth.EMPTY_KINDS)
def test_empty_inputs_give_no_digit(recognizer, kind):
    rng = np.random.default_rng(4)
    for _ in range(3):
        reading = recognizer.read(synth.empty(kind, rng))
        assert reading.digit is None and reading.reason in (NO_INK, NOISE)


def test_polarity_holds_on_grey_paper_under_a_gradient(mnist_sample):
    x, y = mnist_sample
    ink = synth.pen_ink(x[3], 150) * 0.35  # faint grey ink
    paper = np.linspace(0.55, 0.25, 400)[:, None] * np.ones((1, 500))  # dark, and darker at the bottom
    image = paper.copy()
    image[120 : 120 + ink.shape[0], 200 : 200 + ink.shape[1]] *= 1 - ink
    assert paper_is_light(image.astype(np.float32))
    assert paper_is_light(255 - np.kron(x[3], np.ones((4, 4), np.uint8)).astype(np.float32) / 255)
    assert not paper_is_light(np.kron(x[3], np.ones((4, 4), np.uint8)).astype(np.float32) / 255)


def test_numbers_drawn_and_photographed_are_read_exactly(recognizer, mnist_sample):
    x, y = mnist_sample
    rng = np.random.default_rng(5)
    right = total = 0
    for trial in range(12):
        picks = rng.choice(50, size=int(rng.integers(2, 6)), replace=False)
        expected = "".join(str(y[i]) for i in picks)
        if trial % 2:
            image = synth.canvas([x[i] for i in picks], rng, synth.CANVAS_STYLES[trial % 3])
        else:
            image = synth.photo(synth.number_ink([x[i] for i in picks], 120, rng), rng)
        result = recognizer.read_number(image)
        right += result.number == expected
        total += 1
        assert [d.box[0] for d in result.digits] == sorted(d.box[0] for d in result.digits)
    assert right >= total - 1


def test_a_fragment_joins_its_digit_and_touching_pieces_rejoin():
    def piece(left, right, top, bottom):
        mask = np.zeros((100, 300), bool)
        mask[top:bottom, left:right] = True
        return mask

    # A tall piece, then a short bar just right of it (a 7's bar), then another digit.
    pieces = [piece(10, 40, 20, 80), piece(42, 70, 20, 26), piece(100, 140, 20, 80)]
    candidates = candidate_spans(pieces)
    spans = {(c.start, c.stop): c.penalty for c in candidates}
    assert spans[(1, 2)] > 1.0  # the bar alone is penalised as a fragment
    assert (0, 2) in spans and (1, 3) not in spans  # it may join its neighbour, not across the gap
    confident = {(0, 1): 0.99, (1, 2): 0.99, (2, 3): 0.99, (0, 2): 0.9}
    chosen = best_spans(candidates, [confident.get((c.start, c.stop), 0.5) for c in candidates], len(pieces))
    assert [(candidates[i].start, candidates[i].stop) for i in chosen] == [(0, 2), (2, 3)]
    # Two confident digits apart stay two even when their union reads as well as each.
    apart = [piece(10, 30, 20, 80), piece(40, 60, 20, 80)]
    candidates = candidate_spans(apart)
    assert [(c.start, c.stop) for c in candidates] == [(0, 1), (1, 2), (0, 2)]
    chosen = best_spans(candidates, [0.99, 0.99, 0.99], 2)
    assert [(candidates[i].start, candidates[i].stop) for i in chosen] == [(0, 1), (1, 2)]


def test_a_long_thin_bar_is_one_fragment_not_touching_digits():
    from model.segment import digit_regions

    mask = np.zeros((100, 300), bool)
    mask[20:80, 10:50] = True  # a digit-sized blob
    mask[20:26, 60:160] = True  # a bar far wider than tall: cut like touching digits if it were tall
    assert len(digit_regions(mask)) == 2


def test_read_auto_gives_a_digit_or_a_number(recognizer, mnist_sample):
    x, y = mnist_sample
    single = recognizer.read_auto(np.pad(x[7], 20))
    assert isinstance(single, Reading) and single.digit == y[7]
    pair = np.hstack([np.pad(x[7], 20), np.pad(x[9], 20)])
    number = recognizer.read_auto(pair)
    assert isinstance(number, NumberReading) and number.number == f"{y[7]}{y[9]}"
    blank = recognizer.read_auto(np.zeros((80, 80), np.uint8))
    assert isinstance(blank, Reading) and blank.digit is None and blank.reason == NO_INK


def test_boxes_are_drawn_over_each_digit(recognizer, mnist_sample):
    x, y = mnist_sample
    photo = 255 - np.kron(np.hstack([x[7], x[9], x[11]]), np.ones((20, 20), np.uint8))  # 560 x 1680
    number = recognizer.read_number(photo)
    picture = draw_readings(photo, number.digits)
    assert picture.dtype == np.uint8 and picture.shape[2] == 3 and max(picture.shape[:2]) == DISPLAY_MAX_SIDE
    reddish = (picture[..., 0] > 180) & (picture[..., 1] < 140) & (picture[..., 2] < 100)
    scale = DISPLAY_MAX_SIDE / photo.shape[1]
    for digit in number.digits:
        x0, y0, w, h = (round(v * scale) for v in digit.box)
        assert reddish[max(0, y0 - 2) : y0 + h + 3, max(0, x0 - 2) : x0 + 3].any()  # the box's left edge


def test_png_round_trip_of_a_canvas_keeps_transparency(recognizer, mnist_sample):
    x, y = mnist_sample
    rgba = synth.canvas([x[1]], np.random.default_rng(6), "black_on_transparent")
    buffer = io.BytesIO()
    Image.fromarray(rgba).save(buffer, "PNG")
    assert recognizer.read(decode_image(buffer.getvalue(), "drawing.png")).digit == y[1]
    assert preprocess(rgba).image is not None
