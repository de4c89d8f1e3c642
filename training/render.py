"""Pen strokes drawn the way users hand them in: on the app's canvas, or in ink on paper, photographed.

The one renderer of strokes. Training renders the real people's pen strokes of UNIPEN, Quick, Draw! and
Chars74K with it (training.sources), a fresh augmented copy per render; the benches and the tests draw with it
too, so what is measured is drawn as what is learnt.

- **On the canvas** (`on_canvas`): a round pen of the app's widths (model.constants.PEN_WIDTH and the slider's
  PEN_WIDTHS) on a CANVAS_SIZE canvas, the drawing at the sizes and places people draw (a third to nine tenths
  of the canvas, anywhere on it), exported as the canvas exports it (one of CANVAS_STYLES).
- **On paper** (`on_paper`): dark ink of a pen's width on paper of some colour, in uneven light, photographed
  at a random size, blurred and noisy (`photo`).
Either is then framed by the app's own `preprocess` (`model_input`), exactly as an upload or a canvas is.

Strokes are a list of (P, 2) float arrays, x right and y down, in any units: each drawing is scaled to fit.
Augmentation (`jitter`) turns, shears and squeezes a drawing and shakes its points a little before it is drawn.
Pure numpy/OpenCV; every function takes a numpy Generator, so a seed fixes what is drawn.
"""

from __future__ import annotations

import cv2
import numpy as np

from model.constants import CANVAS_SIZE, PEN_WIDTH, PEN_WIDTHS
from model.preprocess import preprocess

Strokes = list[np.ndarray]
CANVAS_STYLES = ("white_on_black", "black_on_white", "black_on_transparent")
WHERE = ("canvas", "paper")
PAPERS = ((250, 250, 248), (245, 238, 215), (225, 228, 232), (236, 240, 250), (205, 200, 190))
INKS = ((25, 25, 30), (30, 45, 150), (70, 70, 75), (110, 110, 115), (120, 20, 25))
# Share of renders with the app's default pen; the rest take a width from the slider's range.
DEFAULT_PEN_SHARE = 0.6
SUBPIXEL = 4  # cv2 draws at 1/16 px with shift=4


def strokes_of(points: np.ndarray, point_offsets: np.ndarray, stroke_offsets: np.ndarray, index: int) -> Strokes:
    """Sample `index`'s strokes from the shared data's layout (../shared/data/README.md): stroke s is
    points[point_offsets[s]:point_offsets[s+1]], sample i is strokes stroke_offsets[i] to stroke_offsets[i+1]."""
    first, last = int(stroke_offsets[index]), int(stroke_offsets[index + 1])
    return [np.asarray(points[point_offsets[s]:point_offsets[s + 1]], np.float64) for s in range(first, last)
            if point_offsets[s + 1] > point_offsets[s]]


def _bounds(strokes: Strokes) -> tuple[np.ndarray, np.ndarray]:
    every = np.concatenate(strokes)
    return every.min(axis=0), every.max(axis=0)


def jitter(strokes: Strokes, rng: np.random.Generator, degrees: float = 8.0, shear: float = 0.15,
           squeeze: float = 0.12, drift: float = 0.02) -> Strokes:
    """The drawing turned (+-degrees), sheared, squeezed or stretched sideways, each stroke moved by about
    `drift` of its size (a bar placed a little higher, a loop a little wider): the same writer on another day.
    Points are not shaken one by one: a tablet's dense points would turn into a jagged line."""
    low, high = _bounds(strokes)
    size = float(max(high - low)) or 1.0
    centre = (low + high) / 2
    angle = np.radians(rng.uniform(-degrees, degrees))
    turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    slant = np.array([[1.0, rng.uniform(-shear, shear)], [0.0, 1.0]])
    stretch = np.diag([np.exp(rng.uniform(-squeeze, squeeze)), 1.0])
    matrix = turn @ slant @ stretch
    return [(stroke - centre) @ matrix.T + centre + rng.normal(0, drift * size, 2) for stroke in strokes]


def _placed(strokes: Strokes, longest: float, left: float, top: float) -> tuple[Strokes, float]:
    """The strokes scaled so the drawing's longer side is `longest`, its box at (left, top)."""
    low, high = _bounds(strokes)
    scale = longest / max(float(max(high - low)), 1e-6)
    return [(stroke - low) * scale + (left, top) for stroke in strokes], scale


def draw(strokes: Strokes, shape: tuple[int, int], pen: int) -> np.ndarray:
    """Strokes (already in pixels) traced with a round, anti-aliased pen: an ink mask (255 = ink).
    A stroke of one point is a dot, as a pen tap makes."""
    mask = np.zeros(shape, np.uint8)
    lines = [np.round(stroke * (1 << SUBPIXEL)).astype(np.int32) for stroke in strokes]
    cv2.polylines(mask, [line for line in lines if len(line) > 1], False, 255, max(1, pen), cv2.LINE_AA,
                  shift=SUBPIXEL)
    for line in lines:
        if len(line) == 1:
            cv2.circle(mask, tuple(int(v) for v in line[0]), max(1, pen // 2) << SUBPIXEL, 255, -1, cv2.LINE_AA,
                       shift=SUBPIXEL)
    return mask


def canvas_pen(rng: np.random.Generator) -> int:
    """A pen width of the app's canvas: the default most often, else one the slider offers."""
    if rng.random() < DEFAULT_PEN_SHARE:
        return PEN_WIDTH
    return int(rng.integers(PEN_WIDTHS[0] + 2, PEN_WIDTHS[1] - 7))


def canvas_style(mask: np.ndarray, style: str) -> np.ndarray:
    """An ink mask (255 = stroke) as the canvas exports it in one of the three styles: RGBA uint8."""
    rgba = np.zeros(mask.shape + (4,), np.uint8)
    if style == "white_on_black":
        rgba[..., :3] = mask[..., None]
        rgba[..., 3] = 255
    elif style == "black_on_white":
        rgba[..., :3] = 255 - mask[..., None]
        rgba[..., 3] = 255
    elif style == "black_on_transparent":
        rgba[..., 3] = mask
    else:
        raise ValueError(f"Unknown canvas style {style!r}; expected one of {CANVAS_STYLES}.")
    return rgba


def on_canvas(strokes: Strokes, rng: np.random.Generator, pen: int | None = None, style: str | None = None,
              size: int = CANVAS_SIZE) -> np.ndarray:
    """The drawing on the app's canvas: RGBA uint8 of `size` px, a round pen of the app's widths, the drawing's
    longer side a third to nine tenths of the canvas (at least four pen widths), anywhere on it."""
    pen = canvas_pen(rng) if pen is None else pen
    longest = min(max(size * rng.uniform(0.35, 0.9), 4.0 * pen), size - pen - 2)
    placed, _ = _placed(strokes, longest, 0.0, 0.0)
    low, high = _bounds(placed)
    room = np.maximum(size - (high - low) - pen - 2, 0.0)
    offset = pen / 2 + 1 + rng.uniform(0, 1, 2) * room - low
    style = style or CANVAS_STYLES[int(rng.integers(len(CANVAS_STYLES)))]
    return canvas_style(draw([stroke + offset for stroke in placed], (size, size), pen), style)


def ink_drawing(strokes: Strokes, height: int, pen_share: float) -> np.ndarray:
    """The drawing in ink, `height` px tall with a pen of `pen_share` of that: float32 ink in [0, 1], cropped."""
    pen = max(1, round(height * pen_share))
    placed, _ = _placed(strokes, height, pen, pen)
    low, high = _bounds(placed)
    shape = (int(np.ceil(high[1])) + pen + 1, int(np.ceil(high[0])) + pen + 1)
    return draw(placed, shape, pen).astype(np.float32) / 255.0


def _rotate(ink: np.ndarray, degrees: float) -> np.ndarray:
    pad = max(ink.shape) // 3
    ink = np.pad(ink, pad)
    centre = (ink.shape[1] / 2, ink.shape[0] / 2)
    turned = cv2.warpAffine(ink, cv2.getRotationMatrix2D(centre, degrees, 1.0), ink.shape[::-1], flags=cv2.INTER_LINEAR)
    rows, cols = np.flatnonzero(turned.max(axis=1) > 0.02), np.flatnonzero(turned.max(axis=0) > 0.02)
    if rows.size == 0:  # no ink: blank paper
        return ink
    return turned[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _lighting(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A light gradient across the page, sometimes with a soft shadow edge."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    along = (np.cos(angle) * xs / width + np.sin(angle) * ys / height)
    along = (along - along.min()) / max(float(np.ptp(along)), 1e-6)
    light = 1.0 - rng.uniform(0.0, 0.5) * along
    if rng.random() < 0.4:
        angle = rng.uniform(0, 2 * np.pi)
        edge = (np.cos(angle) * (xs - width * rng.uniform(0.2, 0.8))
                + np.sin(angle) * (ys - height * rng.uniform(0.2, 0.8)))
        softness = max(height, width) * rng.uniform(0.02, 0.15)
        light *= 1.0 - rng.uniform(0.2, 0.45) / (1.0 + np.exp(-edge / softness))
    return light


def photo(ink: np.ndarray, rng: np.random.Generator, sides: tuple[int, int] = (240, 1600)) -> np.ndarray:
    """Dark ink on paper, photographed: RGB uint8 of a random size (shorter side in `sides`), the ink anywhere.
    `ink`: float in [0, 1] (or uint8), bright where the ink is."""
    ink = np.asarray(ink, np.float32)
    if ink.max(initial=0) > 1.0:
        ink = ink / 255.0
    ink = _rotate(ink, rng.uniform(-10, 10))
    side = int(rng.integers(*sides))
    aspect = rng.uniform(0.6, 1.6)
    height, width = int(side), int(side * aspect)
    fill = rng.uniform(0.15, 0.7)  # share of the shorter side the ink takes
    scale = min(fill * min(height, width) / ink.shape[0], 0.9 * width / ink.shape[1])
    ink = cv2.resize(ink, (max(1, round(ink.shape[1] * scale)), max(1, round(ink.shape[0] * scale))),
                     interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    top = int(rng.integers(0, height - ink.shape[0] + 1))
    left = int(rng.integers(0, width - ink.shape[1] + 1))
    alpha = np.zeros((height, width), np.float32)
    alpha[top : top + ink.shape[0], left : left + ink.shape[1]] = ink * rng.uniform(0.75, 1.0)
    paper = np.array(PAPERS[rng.integers(len(PAPERS))], np.float32) * rng.uniform(0.75, 1.0)
    pen = np.array(INKS[rng.integers(len(INKS))], np.float32)
    image = paper * (1 - alpha[..., None]) + pen * alpha[..., None]
    image *= _lighting(height, width, rng)[..., None]
    sigma = rng.uniform(0, 1.5) * max(1.0, min(height, width) / 400)
    if sigma > 0.3:
        image = cv2.GaussianBlur(image, (0, 0), sigma)
    image += rng.normal(0, rng.uniform(1, 8), image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def on_paper(strokes: Strokes, rng: np.random.Generator, sides: tuple[int, int] = (240, 720)) -> np.ndarray:
    """The drawing in dark ink on paper, photographed: RGB uint8 (a ballpoint to a felt tip)."""
    return photo(ink_drawing(strokes, 120, rng.uniform(0.03, 0.12)), rng, sides)


def side_by_side(drawings: list[Strokes], rng: np.random.Generator) -> Strokes:
    """Several drawings written as one number: each scaled to about the same height, left to right with gaps
    and a wavering baseline, as one writer writes a number."""
    placed, left = [], 0.0
    for strokes in drawings:
        low, high = _bounds(strokes)
        height = 100.0 * rng.uniform(0.85, 1.1)
        scale = height / max(float(high[1] - low[1]), 1e-6)
        scale = min(scale, 100.0 / max(float(high[0] - low[0]), 1e-6) * 1.2)  # a dash-like 1 stays a stroke
        top = rng.uniform(0, 12)
        placed += [(stroke - low) * scale + (left, top) for stroke in strokes]
        left += float(high[0] - low[0]) * scale + 100.0 * rng.uniform(0.3, 0.55)
    return placed


def number_on_canvas(drawings: list[Strokes], rng: np.random.Generator, size: int = CANVAS_SIZE) -> np.ndarray:
    """Several drawings written side by side on the canvas, with a pen narrow enough for their size (RGBA)."""
    number = side_by_side(drawings, rng)
    low, high = _bounds(number)
    longest = size * rng.uniform(0.6, 0.95)
    digit_height = longest * float(high[1] - low[1]) / float(max(high - low)) / 1.1
    pen = int(np.clip(round(digit_height * rng.uniform(0.06, 0.14)), PEN_WIDTHS[0], PEN_WIDTH))
    return on_canvas(number, rng, pen=pen, size=size)


def number_on_paper(drawings: list[Strokes], rng: np.random.Generator, sides: tuple[int, int] = (240, 720)) -> np.ndarray:
    """Several drawings written side by side in ink on paper, photographed (RGB)."""
    number = side_by_side(drawings, rng)
    low, high = _bounds(number)
    longest = 120 * float(max(high - low)) / float(high[1] - low[1])  # digits about 120 px tall, as on_paper draws
    return photo(ink_drawing(number, round(longest), 120 / longest * rng.uniform(0.03, 0.12)), rng, sides)


def rendered(strokes: Strokes, rng: np.random.Generator, where: str, augment: bool = True,
             paper_sides: tuple[int, int] = (240, 720)) -> np.ndarray:
    """The drawing as a user would hand it in `where` ("canvas" or "paper"), jittered when `augment`."""
    if where not in WHERE:
        raise ValueError(f"Unknown place to draw {where!r}; expected one of {WHERE}.")
    strokes = jitter(strokes, rng) if augment else strokes
    return on_canvas(strokes, rng) if where == "canvas" else on_paper(strokes, rng, paper_sides)


def model_input(strokes: Strokes, rng: np.random.Generator, where: str, augment: bool = True,
                paper_sides: tuple[int, int] = (160, 400)) -> np.ndarray | None:
    """The 28x28 input the app would make of the drawing (None: the app would find no ink in it)."""
    return preprocess(rendered(strokes, rng, where, augment, paper_sides)).image
