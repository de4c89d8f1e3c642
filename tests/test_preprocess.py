import cv2
import numpy as np
import pytest

from model.preprocess import deskew, frame_digit, ink_map, preprocess, to_gray


def _centre_of_mass(image):
    ys, xs = np.indices(image.shape)
    mass = image.astype(float)
    return (ys * mass).sum() / mass.sum(), (xs * mass).sum() / mass.sum()


def _extent(image):
    rows = np.flatnonzero(image.max(axis=1))
    cols = np.flatnonzero(image.max(axis=0))
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


def test_mnist_images_come_back_unchanged_from_framing(mnist_sample):
    x, _ = mnist_sample
    for image in x:
        assert np.array_equal(frame_digit(image), image)


def test_mnist_images_are_barely_changed_by_the_whole_pipeline(mnist_sample):
    x, _ = mnist_sample
    out = np.stack([preprocess(image).image for image in x])
    difference = np.abs(out.astype(int) - x.astype(int))
    assert difference.mean() < 1.0  # out of 255
    assert np.all(_centre_of_mass_distance(out, x) <= 1.0)


def _centre_of_mass_distance(a, b):
    return np.array([np.hypot(*np.subtract(_centre_of_mass(p), _centre_of_mass(q))) for p, q in zip(a, b)])


def _draw_seven(size, box, thickness, ink=255, background=0):
    """A '7' drawn with strokes inside box=(x, y, w, h) of a size x size canvas."""
    canvas = np.full((size, size), background, np.uint8)
    x, y, w, h = box
    cv2.line(canvas, (x, y), (x + w, y), ink, thickness)
    cv2.line(canvas, (x + w, y), (x + w // 3, y + h), ink, thickness)
    return canvas


@pytest.mark.parametrize("box", [(20, 20, 60, 90), (300, 320, 60, 90), (10, 10, 300, 360)])
def test_any_size_and_position_is_framed_like_mnist(box):
    canvas = _draw_seven(400, box, thickness=12)
    result = preprocess(canvas)
    assert result.image is not None and result.image.shape == (28, 28) and result.image.dtype == np.uint8
    assert max(_extent(result.image)) in (19, 20, 21)
    cy, cx = _centre_of_mass(result.image)
    assert abs(cy - 14) <= 1 and abs(cx - 14) <= 1
    x, y, w, h = result.box
    assert abs(x - box[0]) <= 12 and abs(y - box[1]) <= 12


def test_polarity_does_not_matter():
    white_on_black = _draw_seven(200, (50, 40, 80, 120), 10)
    black_on_white = 255 - white_on_black
    a, b = preprocess(white_on_black).image, preprocess(black_on_white).image
    assert np.abs(a.astype(int) - b.astype(int)).mean() < 2


@pytest.mark.parametrize("size", [50, 200])
def test_ink_map_inverts_light_paper(size):
    paper = np.full((size, size), 0.9, np.float32)
    paper[20:30, 20:30] = 0.1
    ink = ink_map(paper)
    assert ink[25, 25] > 0.8 and ink[0, 0] < 0.05


@pytest.mark.parametrize("ink_rgb", [(0, 0, 0), (255, 255, 255)])
def test_transparent_backgrounds_keep_the_strokes(ink_rgb):
    strokes = _draw_seven(200, (50, 40, 80, 120), 10)
    rgba = np.zeros((200, 200, 4), np.uint8)
    rgba[..., :3] = ink_rgb
    rgba[..., 3] = strokes  # ink only where drawn; transparent elsewhere
    reference = preprocess(strokes).image
    result = preprocess(rgba).image
    assert result is not None
    assert np.abs(result.astype(int) - reference.astype(int)).mean() < 2


def test_uneven_lighting_is_flattened():
    size = 300
    gradient = np.linspace(120, 250, size, dtype=np.float32)[None, :].repeat(size, axis=0)  # a shadow on the left
    strokes = _draw_seven(size, (90, 60, 110, 170), 14).astype(np.float32) / 255
    photo = (gradient * (1 - 0.7 * strokes)).astype(np.uint8)  # dark ink on unevenly lit paper
    result = preprocess(photo).image
    reference = preprocess(_draw_seven(size, (90, 60, 110, 170), 14)).image
    assert result is not None
    assert _similarity(result, reference) > 0.8



def test_a_fat_marker_digit_filling_a_photo_keeps_solid_strokes():
    # Strokes 15% of the photo's side: a paper estimate narrower than the strokes follows the ink and leaves
    # only their outlines (photographed USPS digits came out hollow, and the gate refused them).
    size, box, thickness = 240, (40, 30, 150, 180), 36
    strokes = _draw_seven(size, box, thickness).astype(np.float32) / 255
    paper = np.full((size, size), 225, np.float32) + np.random.default_rng(0).normal(0, 4, (size, size))
    photo = np.clip(paper * (1 - 0.8 * strokes), 0, 255).astype(np.uint8)  # noise: a photo, not a canvas
    result = preprocess(photo).image
    assert result is not None
    assert _similarity(result, preprocess(_draw_seven(size, box, thickness)).image) > 0.97


@pytest.mark.parametrize("depth, softness", [(0.3, 0.02), (0.45, 0.02), (0.45, 0.05)])
def test_the_edge_of_a_shadow_across_blank_paper_is_no_ink(depth, softness):
    size = 400
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    light = 1 - depth / (1 + np.exp(-(0.8 * xs + 0.6 * ys - 0.5 * size) / (softness * size)))
    paper = 210 * light + np.random.default_rng(0).normal(0, 3, (size, size))
    assert preprocess(np.clip(paper, 0, 255).astype(np.uint8)).image is None

def _similarity(a, b):
    """Correlation of the two images, blurred so that a 1-px offset does not count."""
    a, b = (cv2.GaussianBlur(i.astype(np.float32), (5, 5), 1.0).ravel() for i in (a, b))
    return float(np.corrcoef(a, b)[0, 1])


@pytest.mark.parametrize("image", [
    np.zeros((280, 280), np.uint8),
    np.full((280, 280, 4), 0, np.uint8),
    np.full((100, 100, 3), 255, np.uint8),
    np.full((28, 28), 200, np.uint8),
])
def test_blank_inputs_have_nothing_to_read(image):
    result = preprocess(image)
    assert result.image is None and "no ink" in result.reason


def test_gray_conversion_handles_every_layout():
    gray = np.full((4, 5), 128, np.uint8)
    assert to_gray(gray).shape == (4, 5)
    assert to_gray(gray[..., None]).shape == (4, 5)
    assert to_gray(np.stack([gray] * 3, axis=-1)).shape == (4, 5)
    sixteen = np.full((4, 5), 65535, np.uint16)
    assert np.allclose(to_gray(sixteen), 1.0)
    with pytest.raises(ValueError, match="Expected"):
        to_gray(np.zeros((4, 5, 2)))


def test_huge_images_are_processed_in_bounded_size():
    big = np.zeros((6000, 4000), np.uint8)
    cv2.line(big, (1000, 1000), (3000, 1000), 255, 120)
    cv2.line(big, (3000, 1000), (1800, 5000), 255, 120)
    result = preprocess(big)
    assert result.image is not None
    assert result.box[0] == pytest.approx(940, abs=40) and result.box[2] == pytest.approx(2120, abs=60)


def test_empty_array():
    assert preprocess(np.zeros((0, 0), np.uint8)).image is None


def test_a_large_upload_is_shrunk_before_it_is_made_grey():
    """A 40-megapixel RGBA upload is 160 MB as uint8; as float32 it was four times that, on every rerun."""
    import tracemalloc

    from model.annotate import readable_copy
    from model.preprocess import find_ink

    image = np.full((2000, 5000, 4), 255, np.uint8)  # 10 MP of white paper, opaque
    image[800:1200, 2300:2500, :3] = 0  # a dark bar of ink
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        found = find_ink(image)
        _, peak_reading = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        readable_copy(image)
        _, peak_showing = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert not isinstance(found, str) and found.box()[2] > 150
    assert peak_reading < image.nbytes / 4 and peak_showing < image.nbytes / 4, (peak_reading, peak_showing)


@pytest.mark.parametrize("lean", [-6, 6])
def test_deskew_stands_a_slanted_stroke_upright_and_keeps_the_mnist_frame(lean):
    slanted = np.zeros((28, 28), np.uint8)
    cv2.line(slanted, (14 - lean, 24), (14 + lean, 4), 255, 2)
    upright = deskew(frame_digit(slanted))

    def slant(image):
        moments = cv2.moments(image.astype(np.float32))
        return moments["mu11"] / moments["mu02"]

    assert abs(slant(upright)) < 0.1 < abs(slant(frame_digit(slanted)))
    assert upright.shape == (28, 28) and upright.dtype == np.uint8
    rows, cols = np.flatnonzero(upright.max(axis=1)), np.flatnonzero(upright.max(axis=0))
    assert rows[-1] - rows[0] + 1 == 20 and cols[-1] - cols[0] + 1 < 8  # a bar 20 tall, no longer leaning


def test_deskew_leaves_an_upright_bar_and_a_blank_frame_as_they_were():
    blank = np.zeros((28, 28), np.uint8)
    assert np.array_equal(deskew(blank), blank)
    bar = np.zeros((28, 28), np.uint8)
    bar[4:24, 13:15] = 128  # grey ink stays grey: no saturation
    assert np.array_equal(deskew(bar), frame_digit(bar))
