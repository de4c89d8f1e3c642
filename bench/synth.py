"""Render MNIST test digits the way users hand them in: photos, canvas drawings, numbers, nothing.

Pure numpy/OpenCV/Pillow; every function takes a numpy Generator, so a seed
fixes the whole benchmark. Only MNIST **test** images go in: the model never
saw them, in any form, during training.
"""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image

from training.render import CANVAS_STYLES, canvas_style, draw, photo  # noqa: F401  (the one renderer)
from training.strokes import thin

EXIF_ORIENTATION = 0x0112
# Orientation tag -> how the stored pixels are turned from upright (np.rot90 turns).
EXIF_ROTATIONS = {6: 1, 8: 3, 3: 2}


def _digit_crop(digit: np.ndarray) -> np.ndarray:
    """The ink of a 28x28 digit, cropped, as float in [0, 1]."""
    rows, cols = np.flatnonzero(digit.max(axis=1)), np.flatnonzero(digit.max(axis=0))
    return digit[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].astype(np.float32) / 255.0


def pen_ink(digit: np.ndarray, height: int) -> np.ndarray:
    """A digit enlarged to `height` px with sharp edges, as a pen on paper makes them."""
    crop = _digit_crop(digit)
    scale = height / crop.shape[0]
    size = (max(1, round(crop.shape[1] * scale)), max(1, height))
    big = cv2.resize(crop, size, interpolation=cv2.INTER_CUBIC)
    return np.clip((big - 0.25) / 0.35, 0.0, 1.0)  # MNIST's soft rim becomes a pen's edge


def number_ink(digits: list[np.ndarray], height: int, rng: np.random.Generator) -> np.ndarray:
    """Several digits written side by side, with gaps and a wavering baseline."""
    pieces = [pen_ink(d, max(8, round(height * rng.uniform(0.85, 1.1)))) for d in digits]
    gaps = [round(height * rng.uniform(0.08, 0.4)) for _ in pieces[1:]] + [0]
    width = sum(p.shape[1] for p in pieces) + sum(gaps)
    tall = max(p.shape[0] for p in pieces) + height // 5
    ink = np.zeros((tall, width), np.float32)
    x = 0
    for piece, gap in zip(pieces, gaps):
        y = int(rng.integers(0, tall - piece.shape[0] + 1))
        window = ink[y : y + piece.shape[0], x : x + piece.shape[1]]
        np.maximum(window, piece, out=window)
        x += piece.shape[1] + gap
    return ink


def canvas(digits: list[np.ndarray], rng: np.random.Generator, style: str, size: int | None = None) -> np.ndarray:
    """Digits redrawn with a uniform round pen on a browser canvas: RGBA uint8.

    One digit, or several side by side for a number. Each digit is enlarged,
    thinned to its centre line (Zhang-Suen) and traced with a round pen: size,
    position and pen width are random, the same pen for the whole number.
    """
    size = size or int(rng.integers(200, 700))
    count = len(digits)
    height = min(size * rng.uniform(0.25, 0.85), 0.8 * size / (count * 1.4))
    pen = max(2, round(height * rng.uniform(0.05, 0.16)))
    lines = [thin(pen_ink(digit, max(8, round(height))) > 0.5) for digit in digits]
    gaps = [round(height * rng.uniform(0.15, 0.4)) + pen for _ in lines]
    span = sum(line.shape[1] for line in lines) + sum(gaps[:-1])
    x = int(rng.uniform(pen, max(pen + 1, size - span - pen)))
    top = int(rng.uniform(pen, max(pen + 1, size - height * 1.1 - pen)))
    centre = np.zeros((size, size), np.uint8)
    for line, gap in zip(lines, gaps):
        y = min(size - line.shape[0], top + int(rng.uniform(0, 0.1) * height))
        width = min(line.shape[1], size - x)
        centre[y : y + line.shape[0], x : x + width] |= line[:, :width].astype(np.uint8)
        x += line.shape[1] + gap
    brush = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (pen, pen))
    mask = cv2.dilate(centre * 255, brush)
    return canvas_style(cv2.GaussianBlur(mask, (3, 3), 0.7), style)  # the canvas anti-aliases its strokes


def empty(kind: str, rng: np.random.Generator) -> np.ndarray:
    """Something with no digit in it: blank canvases, blank paper, pure noise."""
    size = int(rng.integers(64, 900))
    if kind in CANVAS_STYLES:
        return canvas_style(np.zeros((size, size), np.uint8), kind)
    if kind == "blank_paper":
        return photo(np.zeros((4, 4), np.float32), rng)
    if kind == "uniform_noise":
        return rng.integers(0, 256, (size, size), dtype=np.uint8)
    if kind == "gaussian_noise":
        return np.clip(rng.normal(rng.uniform(60, 200), rng.uniform(10, 60), (size, size, 3)), 0, 255).astype(np.uint8)
    if kind == "salt_and_pepper":
        image = np.full((size, size), 255, np.uint8)
        image[rng.random((size, size)) < rng.uniform(0.01, 0.2)] = 0
        return image
    raise ValueError(f"Unknown empty kind {kind!r}.")


EMPTY_KINDS = CANVAS_STYLES + ("blank_paper", "uniform_noise", "gaussian_noise", "salt_and_pepper")


def encode(image: np.ndarray, rng: np.random.Generator, jpeg: bool, exif_turn: bool = False) -> bytes:
    """The image as a user's file: PNG, or JPEG at a random quality, optionally stored sideways with EXIF."""
    picture = Image.fromarray(image)
    exif = Image.Exif()
    if exif_turn:
        orientation = int(rng.choice(list(EXIF_ROTATIONS)))
        picture = Image.fromarray(np.ascontiguousarray(np.rot90(image, EXIF_ROTATIONS[orientation])))
        exif[EXIF_ORIENTATION] = orientation
    buffer = io.BytesIO()
    if jpeg:
        picture.convert("RGB").save(buffer, "JPEG", quality=int(rng.integers(40, 96)), exif=exif)
    else:
        picture.save(buffer, "PNG", exif=exif)
    return buffer.getvalue()


# Which of the seven segments (a top, b upper right, c lower right, d bottom, e lower left,
# f upper left, g middle) each digit lights up.
SEVEN_SEGMENTS = {0: "abcdef", 1: "bc", 2: "abged", 3: "abgcd", 4: "fgbc", 5: "afgcd", 6: "afgedc", 7: "abc",
                  8: "abcdefg", 9: "abcdfg"}
_SEGMENT_ENDS = {"a": ("tl", "tr"), "b": ("tr", "mr"), "c": ("mr", "br"), "d": ("bl", "br"), "e": ("ml", "bl"),
                 "f": ("tl", "ml"), "g": ("ml", "mr")}


def seven_segment(digit: int, rng: np.random.Generator, size: int = 200) -> np.ndarray:
    """A digit written like a calculator display (white on black, uint8): a real writing style
    that MNIST barely has. The shipped model reads most of its 6s as 5 and its 3s as 7."""
    height = size * 0.7
    width = height * rng.uniform(0.45, 0.6)
    left, top = size / 2 - width / 2, size / 2 - height / 2
    corners = {"tl": (left, top), "tr": (left + width, top), "ml": (left, top + height / 2),
               "mr": (left + width, top + height / 2), "bl": (left, top + height), "br": (left + width, top + height)}
    gap, slant, thickness = height * rng.uniform(0.02, 0.06), rng.uniform(-0.15, 0.25), int(rng.integers(8, 16))
    image = np.zeros((size, size), np.uint8)
    for segment in SEVEN_SEGMENTS[digit]:
        start, end = (np.array(corners[c]) for c in _SEGMENT_ENDS[segment])
        along = (end - start) / np.linalg.norm(end - start)
        ends = [start + along * gap + rng.normal(0, 2, 2), end - along * gap + rng.normal(0, 2, 2)]
        x0, y0, x1, y1 = (int(v) for p in ends for v in (p[0] + slant * (size / 2 - p[1]), p[1]))
        cv2.line(image, (x0, y0), (x1, y1), 255, thickness, cv2.LINE_AA)
    return image


def redraw(ink: np.ndarray, rng: np.random.Generator, style: str, size: int | None = None,
           pen_share: float | None = None) -> np.ndarray:
    """Any drawing (bright ink on black) traced again on a browser canvas: RGBA uint8.

    Its centre lines (Zhang-Suen, at ~48 px: fast, and as smooth as a mouse stroke) are
    walked into polylines and drawn with a round pen of random width, at a random size
    and place, as a user would draw the same shape with the mouse or a finger.
    `pen_share`: the pen's width as a share of the drawing's height (a fat marker: 0.2-0.3).
    """
    from training.strokes import strokes_from_image

    crop = _digit_crop(np.asarray(ink))
    work = 48 / crop.shape[0]
    small = cv2.resize(crop, (max(2, round(crop.shape[1] * work)), 48), interpolation=cv2.INTER_AREA)
    lines = strokes_from_image(np.pad((small * 255).astype(np.uint8), 2), threshold=100)
    size = size or int(rng.integers(200, 700))
    height = size * rng.uniform(0.3, 0.8)
    scale = height / 52
    width = small.shape[1] * scale
    left = rng.uniform(0, max(1.0, size - width))
    top = rng.uniform(0, max(1.0, size - height))
    pen = max(2, round(height * (pen_share if pen_share is not None else rng.uniform(0.04, 0.16))))
    mask = draw([np.array(line, np.float64) * scale + (left, top) for line in lines], (size, size), pen)
    return canvas_style(mask, style)


def optdigits_upsampled(counts: np.ndarray) -> np.ndarray:
    """One of scikit-learn's 8x8 optdigits (counts 0-16 of 4x4 blocks of a 32x32 bitmap) back at 32x32, uint8,
    bright ink on black: how bench/robustness.py and bench/trust.py both give them to the app."""
    big = cv2.resize((counts * 255 / 16).astype(np.float32), (32, 32), interpolation=cv2.INTER_CUBIC)
    return np.clip(big, 0, 255).astype(np.uint8)


NUMBER_KINDS = ("canvas", "photo")


def written_number(kind: str, digits: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Digits written side by side as a number: drawn on the canvas (a random canvas style) or
    photographed on paper; how bench/robustness.py and bench/number_losses.py both make them."""
    if kind == "canvas":
        return canvas(digits, rng, CANVAS_STYLES[int(rng.integers(3))])
    return photo(number_ink(digits, 120, rng), rng)
