"""Generated handwriting: digits in the styles MNIST lacks, and things that are not digits.

Everything here is drawn the same way: strokes (polylines in a unit box)
jittered, slanted, squeezed or stretched, traced with a round pen from a
hairline to a fat marker, sometimes scanned small and enlarged, then made
into a 28x28 input by the app's own `preprocess`. Digits and non-digits share that pen
and framing, so the only thing that tells them apart is their shape: a model
trained on them cannot learn "drawn by this generator" as a cue for "not a
digit" (a trap measured in issue 14: negatives rendered unlike the digits
taught a model to refuse real digits of other writers).

Digit styles MNIST barely has: the continental 1 (long up-stroke, flag, base),
the open-top 4, the curled-tail 9, the crossed 7 and 0, flat-topped 3s,
looped 2s. Non-digits: letters and symbols (OpenCV's single-stroke Hershey
fonts, minus those that look like a digit), shapes, doodles, scribbles,
characters made of random strokes, and hard negatives made from MNIST digits
(mirrored, turned, two overlapping).

Pure numpy/OpenCV; every function takes a numpy Generator, so a seed fixes the set.
"""

from __future__ import annotations

import functools
from pathlib import Path

import cv2
import numpy as np

from model.constants import INPUT_SIZE, NOT_A_DIGIT
from model.preprocess import frame_digit, preprocess
from training.strokes import strokes_from_image

NON_DIGIT_LABEL = NOT_A_DIGIT  # a generated non-digit is trained towards "no digit is likely"
CANVAS = 96  # strokes are drawn at this size before framing
Stroke = list[tuple[float, float]]


def _arc(cx, cy, rx, ry, start, stop, points=24) -> Stroke:
    """Points along an ellipse, angles in degrees, 0 = right, 90 = down (image coordinates)."""
    angles = np.radians(np.linspace(start, stop, points))
    return [(cx + rx * np.cos(a), cy + ry * np.sin(a)) for a in angles]


# Each digit's styles: a list of strokes in a unit box (x right, y down). The continental and
# other non-MNIST styles the issue names are among them.
DIGIT_STYLES: dict[int, list[list[Stroke]]] = {
    0: [[_arc(0.5, 0.5, 0.42, 0.5, -90, 275)],
        [_arc(0.5, 0.5, 0.42, 0.5, -60, 300)],
        [_arc(0.5, 0.5, 0.42, 0.5, -90, 270), [(0.85, 0.1), (0.15, 0.9)]]],  # slashed zero
    1: [[[(0.55, 0.0), (0.5, 1.0)]],
        [[(0.3, 0.2), (0.6, 0.0), (0.6, 1.0)]],  # flag
        [[(0.3, 0.2), (0.6, 0.0), (0.6, 1.0)], [(0.3, 1.0), (0.9, 1.0)]],  # flag and base
        [[(0.05, 0.42), (0.65, 0.0), (0.62, 1.0)]],  # continental: long up-stroke
        [[(0.15, 0.35), (0.65, 0.0), (0.62, 1.0)], [(0.35, 1.0), (0.85, 1.0)]]],
    2: [[_arc(0.5, 0.3, 0.38, 0.3, 200, 360) + [(0.85, 0.35), (0.1, 1.0), (0.95, 1.0)]],
        [_arc(0.5, 0.3, 0.38, 0.3, 190, 370) + [(0.2, 0.95)] + _arc(0.3, 0.88, 0.1, 0.1, 270, 10, 8)
         + [(0.95, 1.0)]],  # looped base
        [_arc(0.5, 0.32, 0.38, 0.32, 180, 380) + [(0.1, 1.0), (0.95, 0.95)]]],
    3: [[_arc(0.48, 0.27, 0.36, 0.27, 200, 450) + _arc(0.48, 0.73, 0.42, 0.27, 270, 520)],
        [[(0.1, 0.0), (0.85, 0.0), (0.4, 0.42)] + _arc(0.48, 0.7, 0.4, 0.3, 270, 520)],  # flat top
        [_arc(0.5, 0.25, 0.35, 0.25, 210, 440) + [(0.4, 0.5)] + _arc(0.5, 0.74, 0.4, 0.26, 260, 510)]],
    4: [[[(0.72, 1.0), (0.72, 0.0), (0.05, 0.68), (0.95, 0.68)]],
        [[(0.25, 0.0), (0.1, 0.6), (0.95, 0.6)], [(0.72, 0.15), (0.72, 1.0)]],  # open top
        [[(0.2, 0.0), (0.15, 0.55), (0.85, 0.55)], [(0.8, 0.0), (0.75, 1.0)]],  # open, parallel strokes
        [[(0.3, 0.0), (0.05, 0.62), (0.95, 0.62)], [(0.68, 0.25), (0.68, 1.0)]]],
    5: [[[(0.9, 0.0), (0.2, 0.0)], [(0.2, 0.0), (0.15, 0.45)] + _arc(0.5, 0.7, 0.4, 0.3, 210, 500)[:-6]],
        [[(0.85, 0.02), (0.25, 0.0), (0.18, 0.45)] + _arc(0.5, 0.7, 0.4, 0.3, 215, 480)]],
    6: [[[(0.75, 0.0)] + _arc(0.55, 0.65, 0.42, 0.62, 250, 180, 8)[1:] + _arc(0.5, 0.72, 0.35, 0.28, 180, 540)],
        [[(0.8, 0.05), (0.3, 0.4), (0.12, 0.72)] + _arc(0.5, 0.75, 0.38, 0.25, 180, 530)]],
    7: [[[(0.05, 0.0), (0.9, 0.0), (0.35, 1.0)]],
        [[(0.05, 0.0), (0.9, 0.0), (0.35, 1.0)], [(0.35, 0.5), (0.85, 0.5)]],  # continental: crossed
        [[(0.05, 0.15), (0.05, 0.0), (0.9, 0.0), (0.45, 1.0)], [(0.4, 0.52), (0.9, 0.48)]],
        [[(0.05, 0.05), (0.92, 0.0), (0.6, 0.45), (0.45, 1.0)]]],
    8: [[_arc(0.5, 0.25, 0.3, 0.25, 90, 450), _arc(0.5, 0.73, 0.38, 0.27, -90, 270)],
        [_arc(0.5, 0.25, 0.32, 0.25, 45, 315) + _arc(0.5, 0.74, 0.4, 0.26, -100, 230)[::-1]]],
    9: [[_arc(0.45, 0.28, 0.36, 0.28, 0, 360), [(0.82, 0.28), (0.75, 1.0)]],
        [_arc(0.45, 0.28, 0.36, 0.28, 0, 360), [(0.82, 0.28), (0.8, 0.78)] + _arc(0.55, 0.78, 0.25, 0.2, 0, 150)],
        [_arc(0.45, 0.28, 0.36, 0.28, 10, 370) + [(0.78, 0.7)] + _arc(0.5, 0.72, 0.28, 0.26, 0, 160)],  # curled tail
        [_arc(0.45, 0.3, 0.36, 0.3, 0, 360), [(0.82, 0.3), (0.55, 1.0)]]],
}

# Letters and symbols that are not digits. Left out: those written like one (O o D Q for 0,
# I l i j | / for 1, Z z for 2, b G for 6, q g for 9, B for 8) and marks too small to frame.
NON_DIGIT_CHARACTERS = (
    "ACEFHKMNPRSTUVWXYacdefhkmnprtuvwxy" + "?!@#$%&*+=<>{}[]~^"
)
HERSHEY_FONTS = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX,
                 cv2.FONT_HERSHEY_TRIPLEX, cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, cv2.FONT_HERSHEY_SCRIPT_COMPLEX)


def _star() -> list[Stroke]:
    """A pentagram in one stroke: every second corner of a pentagon."""
    angles = np.radians(np.arange(6) * 144 - 90)
    return [[(0.5 + 0.5 * np.cos(a), 0.5 + 0.5 * np.sin(a)) for a in angles]]


# No plain square or circle: with a fat pen either is a 0 (a calculator's 0 is a rectangle).
SHAPES: dict[str, list[Stroke]] = {
    "dash": [[(0.0, 0.5), (1.0, 0.5)]],
    "plus": [[(0.5, 0.0), (0.5, 1.0)], [(0.0, 0.5), (1.0, 0.5)]],
    "cross": [[(0.0, 0.0), (1.0, 1.0)], [(1.0, 0.0), (0.0, 1.0)]],
    "triangle": [[(0.5, 0.0), (1.0, 0.9), (0.0, 0.9), (0.5, 0.0)]],
    "star": _star(),
    "heart": [_arc(0.28, 0.3, 0.25, 0.22, 150, 360) + [(0.5, 1.0)], _arc(0.72, 0.3, 0.25, 0.22, 30, -180)[::-1]
              + [(0.5, 1.0)]],
    "arrow": [[(0.0, 0.5), (1.0, 0.5)], [(0.7, 0.2), (1.0, 0.5), (0.7, 0.8)]],
    "smiley": [_arc(0.5, 0.5, 0.5, 0.5, 0, 360), _arc(0.5, 0.5, 0.28, 0.25, 20, 160), [(0.33, 0.3), (0.34, 0.36)],
               [(0.66, 0.3), (0.67, 0.36)]],
    "spiral": [[(0.5 + 0.45 * t * np.cos(9 * t), 0.5 + 0.45 * t * np.sin(9 * t)) for t in np.linspace(0.05, 1, 40)]],
    "zigzag": [[(0.0, 0.2), (0.25, 0.8), (0.5, 0.2), (0.75, 0.8), (1.0, 0.2)]],
    "wave": [[(t, 0.5 + 0.3 * np.sin(t * 4 * np.pi)) for t in np.linspace(0, 1, 30)]],
    "check": [[(0.0, 0.55), (0.35, 1.0), (1.0, 0.0)]],
    "hash": [[(0.3, 0.0), (0.25, 1.0)], [(0.75, 0.0), (0.7, 1.0)], [(0.0, 0.33), (1.0, 0.33)],
             [(0.0, 0.67), (1.0, 0.67)]],
    "grid": [[(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0), (0.0, 0.0)], [(0.5, 0.0), (0.5, 1.0)],
             [(0.0, 0.5), (1.0, 0.5)]],
    "house": [[(0.0, 1.0), (0.0, 0.4), (0.5, 0.0), (1.0, 0.4), (1.0, 1.0), (0.0, 1.0)]],
    "lightning": [[(0.6, 0.0), (0.2, 0.55), (0.7, 0.45), (0.3, 1.0)]],
    "crescent": [_arc(0.5, 0.5, 0.5, 0.5, 60, 300) + _arc(0.75, 0.5, 0.35, 0.42, 240, 120, 16)],
    # What people draw to try the app: letters like digits, a question mark, faces.
    "question": [_arc(0.5, 0.25, 0.3, 0.25, 180, 400) + [(0.5, 0.55), (0.5, 0.75)], [(0.5, 0.93), (0.5, 0.97)]],
    "letter_s": [_arc(0.5, 0.27, 0.32, 0.27, -30, -270, 16) + _arc(0.5, 0.73, 0.34, 0.27, -90, 150, 16)],
    "letter_a": [[(0.0, 1.0), (0.5, 0.0), (1.0, 1.0)], [(0.22, 0.6), (0.78, 0.6)]],
    "frown": [_arc(0.5, 0.5, 0.5, 0.5, 0, 360), _arc(0.5, 0.85, 0.25, 0.2, 200, 340), [(0.33, 0.3), (0.34, 0.36)],
              [(0.66, 0.3), (0.67, 0.36)]],
    "face": [_arc(0.5, 0.5, 0.5, 0.5, 0, 360), [(0.25, 0.35), (0.4, 0.35)], [(0.6, 0.35), (0.75, 0.35)],
             [(0.5, 0.45), (0.45, 0.6), (0.55, 0.6)], [(0.3, 0.75), (0.7, 0.75)]],
    "sun": [_arc(0.5, 0.5, 0.25, 0.25, 0, 360)] + [[(0.5 + 0.32 * np.cos(a), 0.5 + 0.32 * np.sin(a)),
                                                    (0.5 + 0.5 * np.cos(a), 0.5 + 0.5 * np.sin(a))]
                                                   for a in np.linspace(0, 2 * np.pi, 8, endpoint=False)],
}


# --------------------------------------------------------------------------- the pen


def _smooth(points: np.ndarray, per_segment: int = 6) -> np.ndarray:
    """Dense points along a polyline: corners stay corners, arcs given as many points stay round."""
    if len(points) < 2:
        return points
    steps = np.linspace(0.0, 1.0, per_segment, endpoint=False)
    dense = [a + (b - a) * t for a, b in zip(points[:-1], points[1:]) for t in steps]
    return np.array(dense + [points[-1]])


def _jitter_strokes(strokes: list[Stroke], rng: np.random.Generator, amount: float) -> list[np.ndarray]:
    """Each control point moved a little, the whole glyph slanted, turned, squeezed or stretched."""
    angle = np.radians(rng.uniform(-12, 12))
    slant = rng.uniform(-0.35, 0.35)
    aspect = np.exp(rng.uniform(np.log(0.45), np.log(1.6)))  # width relative to height
    wobble = rng.normal(0, amount, (2, 3))  # a smooth, low-frequency displacement field
    out = []
    for stroke in strokes:
        points = np.asarray(stroke, np.float64)
        points = points + rng.normal(0, amount * 0.5, points.shape)
        x, y = points[:, 0] - 0.5, points[:, 1] - 0.5
        x = x + wobble[0, 0] * np.sin(np.pi * y * 2 + wobble[0, 1] * 9) + slant * -y
        y = y + wobble[1, 0] * np.sin(np.pi * x * 2 + wobble[1, 1] * 9)
        x = x * aspect
        turned = np.stack([x * np.cos(angle) - y * np.sin(angle), x * np.sin(angle) + y * np.cos(angle)], axis=1)
        out.append(_smooth(turned))
    return out


def draw(strokes: list[np.ndarray], rng: np.random.Generator, pen: float | None = None,
         size: int = CANVAS) -> np.ndarray:
    """Trace strokes (centred on 0, about one unit tall) with a round pen: white on black uint8.

    `pen` is the pen width as a share of the glyph's height; random (hairline to fat marker) if None.
    """
    every = np.concatenate(strokes)
    low, high = every.min(axis=0), every.max(axis=0)
    extent = max(float((high - low).max()), 1e-3)
    if pen is None:
        pen = float(np.exp(rng.uniform(np.log(0.03), np.log(0.3))))
    thickness = max(1, int(round(pen * size * 0.7)))
    scale = (size * 0.7) / extent
    offset = size / 2 - (low + high) / 2 * scale
    image = np.zeros((size, size), np.uint8)
    polylines = [np.round((s * scale + offset) * 16).astype(np.int32) for s in strokes]
    cv2.polylines(image, polylines, False, 255, thickness, cv2.LINE_AA, shift=4)
    return image


def model_input(drawing: np.ndarray) -> np.ndarray:
    """A drawing as the app's own preprocessing makes it into a 28x28 input: the same threshold, the
    same specks dropped (a smiley's small eyes, a question mark's dot), the same framing."""
    # With a wide margin most of the canvas is paper, as on the app's canvas, even for a fat pen.
    prepared = preprocess(np.pad(drawing, max(drawing.shape) // 2))
    return prepared.image if prepared.image is not None else frame_digit(drawing)


def degrade(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sometimes scanned small (8-16 px tall) and enlarged, or blurred like a photo."""
    roll = rng.random()
    if roll < 0.2:
        rows, cols = np.flatnonzero(image.max(axis=1)), np.flatnonzero(image.max(axis=0))
        if rows.size:
            crop = image[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
            target = int(rng.integers(8, 17))
            factor = target / crop.shape[0]
            small = cv2.resize(crop, (max(1, round(crop.shape[1] * factor)), target), interpolation=cv2.INTER_AREA)
            scanned = image.copy()  # the margins stay: they are the paper
            scanned[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1] = cv2.resize(
                small, (crop.shape[1], crop.shape[0]), interpolation=cv2.INTER_LINEAR)
            return scanned
    elif roll < 0.35:
        return cv2.GaussianBlur(image, (0, 0), rng.uniform(0.8, 2.0))
    return image


def drawing(strokes: list[Stroke], rng: np.random.Generator, jitter: float = 0.04, size: int = CANVAS,
            pen: float | None = None) -> np.ndarray:
    """Strokes in a unit box, jittered and drawn with a random (or the given) pen: white on black uint8."""
    return draw(_jitter_strokes(strokes, rng, jitter), rng, pen, size)


# --------------------------------------------------------------------------- digits


def styled_digit(digit: int, rng: np.random.Generator) -> np.ndarray:
    styles = DIGIT_STYLES[digit]
    return model_input(degrade(drawing(styles[int(rng.integers(len(styles)))], rng), rng))


def hershey(text: str, rng: np.random.Generator) -> np.ndarray:
    """One character in a single-stroke Hershey font, drawn with a random pen: white on black uint8."""
    font = HERSHEY_FONTS[int(rng.integers(len(HERSHEY_FONTS)))] | (cv2.FONT_ITALIC if rng.random() < 0.3 else 0)
    thickness = int(rng.integers(1, 9))
    image = np.zeros((CANVAS * 2, CANVAS * 2), np.uint8)
    cv2.putText(image, text, (CANVAS // 2, int(CANVAS * 1.4)), font, 2.5, 255, thickness, cv2.LINE_AA)
    matrix = cv2.getRotationMatrix2D((CANVAS, CANVAS), rng.uniform(-12, 12), 1.0)
    matrix[0, 1] += rng.uniform(-0.3, 0.3)  # slant
    matrix[0] *= np.exp(rng.uniform(np.log(0.6), np.log(1.4)))  # squeeze or stretch
    return cv2.warpAffine(image, matrix, image.shape[::-1], flags=cv2.INTER_LINEAR)


def generated_digits(count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """`count` digits in balanced classes: template styles (continental among them), printed digits of
    several fonts traced by hand, and Hershey fonts."""
    labels = np.arange(count) % 10
    images = []
    for digit in labels:
        roll = rng.random()
        if roll < 0.6:
            images.append(styled_digit(int(digit), rng))
        elif roll < 0.8:
            images.append(model_input(degrade(font_digit(int(digit), rng), rng)))
        else:
            images.append(model_input(degrade(hershey(str(digit), rng), rng)))
    return np.stack(images) if images else np.zeros((0, INPUT_SIZE, INPUT_SIZE), np.uint8), labels.astype(np.uint8)


# --------------------------------------------------------------------------- non-digits


def _random_strokes(rng: np.random.Generator) -> list[Stroke]:
    """A made-up character: 1-4 strokes of straight segments and curves, as an unknown alphabet has."""
    strokes = []
    for _ in range(int(rng.integers(1, 5))):
        points = [tuple(rng.uniform(0, 1, 2))]
        for _ in range(int(rng.integers(1, 5))):
            if rng.random() < 0.4:  # a curve
                cx, cy = rng.uniform(0.2, 0.8, 2)
                radius = rng.uniform(0.15, 0.45)
                start = rng.uniform(0, 360)
                points += _arc(cx, cy, radius, radius * rng.uniform(0.6, 1.4), start,
                               start + rng.choice([-1, 1]) * rng.uniform(90, 300), 10)
            else:
                points.append(tuple(rng.uniform(0, 1, 2)))
        strokes.append(points)
    return strokes


def _scribble(rng: np.random.Generator) -> list[Stroke]:
    """A random continuous scribble, as someone testing the app draws."""
    count = int(rng.integers(6, 16))
    points = np.cumsum(rng.normal(0, 0.35, (count, 2)), axis=0)
    dense = []
    for a, b, c in zip(points[:-2], points[1:-1], points[2:]):  # corner-cutting: a smooth line through them
        for t in np.linspace(0, 1, 6, endpoint=False):
            dense.append(tuple((1 - t) ** 2 * (a + b) / 2 + 2 * (1 - t) * t * b + t**2 * (b + c) / 2))
    return [dense]


def _mnist_hard_negative(images: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An MNIST digit made into something that is not one: mirrored, turned on its side, or two overlapping.

    Only digits that stay digits are left alone: 0, 1 and 8 mirrored; 0 and 8 turned."""
    kind = rng.random()
    if kind < 0.3:
        index = int(rng.choice(np.flatnonzero(np.isin(labels, (2, 3, 4, 5, 6, 7, 9)))))
        return images[index][:, ::-1]
    if kind < 0.6:
        index = int(rng.choice(np.flatnonzero(np.isin(labels, (1, 2, 3, 4, 5, 6, 7, 9)))))
        return np.rot90(images[index], int(rng.choice([1, 3])))
    first, second = rng.choice(len(images), 2, replace=False)
    shift = int(rng.integers(6, 14)) * int(rng.choice([-1, 1]))
    other = np.roll(images[second], (int(rng.integers(-4, 5)), shift), axis=(0, 1))
    return np.maximum(images[first], other)


NON_DIGIT_KINDS = ("character", "script", "shape", "shape", "made_up", "scribble", "mnist_altered")


# A non-digit narrower than this (width / height) is drawn again: a lone upright stroke is a 1.
MIN_NON_DIGIT_ASPECT = 0.45
NON_DIGIT_ATTEMPTS = 1000  # a kind that passes does so within a few; all blank is a caller's mistake


def _aspect(image: np.ndarray) -> float:
    rows, cols = np.flatnonzero(image.max(axis=1) > 64), np.flatnonzero(image.max(axis=0) > 64)
    return (cols[-1] - cols[0] + 1) / (rows[-1] - rows[0] + 1) if rows.size else 0.0


def non_digit(kind: str, rng: np.random.Generator, mnist: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """One generated non-digit of a kind, as a 28x28 model input (never a lone upright stroke)."""
    for _ in range(NON_DIGIT_ATTEMPTS):
        image = model_input(degrade(non_digit_drawing(kind, rng, mnist), rng))
        if _aspect(image) >= MIN_NON_DIGIT_ASPECT:
            return image
    raise ValueError(f"No {kind!r} non-digit could be drawn in {NON_DIGIT_ATTEMPTS} attempts: every one came out "
                     "blank or a lone upright stroke. For 'mnist_altered', check that the MNIST images given have "
                     "ink (bright on black, like the dataset).")


def non_digit_drawing(kind: str, rng: np.random.Generator, mnist: tuple[np.ndarray, np.ndarray] | None = None,
                      size: int = CANVAS) -> np.ndarray:
    """One generated non-digit of a kind, drawn white on black (MNIST-made ones stay 28x28)."""
    if kind == "character":
        text = NON_DIGIT_CHARACTERS[int(rng.integers(len(NON_DIGIT_CHARACTERS)))]
        return hershey(text, rng)
    if kind == "script":
        return script_character(rng, size)
    if kind == "shape":
        names = sorted(SHAPES)
        return drawing(SHAPES[names[int(rng.integers(len(names)))]], rng, size=size)
    if kind == "made_up":
        return drawing(_random_strokes(rng), rng, jitter=0.02, size=size)
    if kind == "scribble":
        return drawing(_scribble(rng), rng, jitter=0.0, size=size)
    if kind == "mnist_altered":
        if mnist is None:
            raise ValueError("mnist_altered needs MNIST images to alter")
        return _mnist_hard_negative(*mnist, rng)
    raise ValueError(f"Unknown non-digit kind {kind!r}; expected one of {NON_DIGIT_KINDS}.")


def generated_non_digits(count: int, rng: np.random.Generator,
                         mnist: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """`count` non-digits, the kinds in turn (MNIST-made ones only when MNIST images are given)."""
    kinds = [k for k in NON_DIGIT_KINDS if mnist is not None or k != "mnist_altered"]
    images = [non_digit(kinds[i % len(kinds)], rng, mnist) for i in range(count)]
    return np.stack(images) if images else np.zeros((0, INPUT_SIZE, INPUT_SIZE), np.uint8)



# --------------------------------------------------------------------------- characters of other scripts

# Characters of other scripts, from the DejaVu Sans font that matplotlib ships: each is thinned to its
# centre lines and traced again with the same random pen as every generated digit, so that it reads as
# handwriting, not print. The scripts of Omniglot's evaluation alphabets, which bench/trust.py measures
# on, are left out, and so is everything written like a digit.
SCRIPTS = ("LATIN", "GREEK", "ARMENIAN", "GEORGIAN", "HEBREW", "ARABIC", "CANADIAN", "TIFINAGH", "NKO", "LISU",
           "LAO", "OGHAM", "RUNIC", "CHEROKEE")
SKIPPED_WORDS = {"DIGIT", "NUMBER", "NUMERAL", "FRACTION", "ROMAN", "VULGAR", "SUPERSCRIPT", "SUBSCRIPT",
                 "CIRCLED", "PARENTHESIZED", "COMBINING", "MODIFIER", "BRAILLE", "DOMINO", "BOX", "BLOCK",
                 "SPACE", "MARK", "TONE", "PUNCTUATION", "ISOLATED", "FINAL", "INITIAL", "MEDIAL", "LIGATURE",
                 "SMALL", "POINT", "SIGN", "ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT",
                 "NINE"}  # "SMALL CAPITAL" letters are capitals again; number words name digit look-alikes
# Base letters written like a digit: O o Q D for 0, I l i j J for 1, Z z for 2, S s for 5, b G for 6,
# B for 8, q g for 9, and their look-alikes in other scripts.
LOOKALIKE_BASES = set("OoQDIlijJZzSsbGBqgΟοΙιςζξδσՕօՍսցզվհբგვჳბȜȝƷʒƸϐ") | {"\u0131", "\u0237"}


DIGIT_FONTS = ("DejaVuSans.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSerif.ttf", "DejaVuSerif-Italic.ttf",
               "DejaVuSansMono.ttf", "STIXGeneral.ttf", "STIXGeneralItalic.ttf", "cmr10.ttf")


def _font_path(name: str) -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name


def _centre_lines(character: str, font) -> tuple[np.ndarray, ...] | None:
    """A printed character's centre lines as strokes in a unit box, or None if it is too small or a lone stroke."""
    from PIL import Image, ImageDraw

    picture = Image.new("L", (64, 64))
    ImageDraw.Draw(picture).text((32, 32), character, fill=255, font=font, anchor="mm")
    ink = np.asarray(picture)
    rows, cols = np.flatnonzero(ink.max(axis=1) > 100), np.flatnonzero(ink.max(axis=0) > 100)
    if rows.size < 12:
        return None
    lines = [np.asarray(line, np.float64) for line in strokes_from_image(ink, threshold=100) if len(line) >= 3]
    extent = max(rows[-1] - rows[0], cols[-1] - cols[0])
    return tuple((line - (cols[0], rows[0])) / extent for line in lines) or None


@functools.cache
def _font_digits() -> tuple[tuple[int, tuple[np.ndarray, ...]], ...]:
    """(digit, centre lines) of 0-9 printed in several fonts: traced by hand, they are digits too."""
    from PIL import ImageFont

    found = []
    for name in DIGIT_FONTS:
        font = ImageFont.truetype(str(_font_path(name)), 40)
        for digit in range(10):
            lines = _centre_lines(str(digit), font)
            if lines:
                found.append((digit, lines))
    return tuple(found)


def _traced(lines: tuple[np.ndarray, ...], rng: np.random.Generator, size: int = CANVAS) -> np.ndarray:
    """Centre lines traced again by hand: a dozen points per line, jittered, with a random pen."""
    return drawing([[tuple(point) for point in line[:: max(1, len(line) // 12)]] + [tuple(line[-1])]
                    for line in lines], rng, jitter=0.025, size=size)


def font_digit(digit: int, rng: np.random.Generator) -> np.ndarray:
    choices = [lines for d, lines in _font_digits() if d == digit]
    return _traced(choices[int(rng.integers(len(choices)))], rng)


@functools.cache
def _script_characters() -> tuple[tuple[str, tuple[np.ndarray, ...]], ...]:
    """(character, strokes in a unit box) of every usable character of SCRIPTS in the font."""
    import unicodedata

    from matplotlib.ft2font import FT2Font
    from PIL import ImageFont

    path = _font_path("DejaVuSans.ttf")
    font = ImageFont.truetype(str(path), 40)
    chosen = []
    for code in sorted(FT2Font(str(path)).get_charmap()):
        character = chr(code)
        name = unicodedata.name(character, "")
        base = unicodedata.normalize("NFD", character)[0]
        if (not name or name.split()[0] not in SCRIPTS or set(name.split()) & SKIPPED_WORDS
                or base in LOOKALIKE_BASES or unicodedata.category(character).startswith("M")):
            continue
        lines = _centre_lines(character, font)
        if lines is None:
            continue
        every = np.concatenate(lines)
        width, height = np.ptp(every[:, 0]), np.ptp(every[:, 1])
        if width < MIN_NON_DIGIT_ASPECT * height:
            continue  # a lone upright stroke is a 1
        mask = np.zeros((64, 64), np.uint8)
        cv2.polylines(mask, [np.round(line * 40 + 12).astype(np.int32) for line in lines], False, 255, 4)
        if not _is_ring(mask > 0):  # a single loop is a 0
            chosen.append((character, lines))
    return tuple(chosen)


def _is_ring(mask: np.ndarray) -> bool:
    """One piece of ink around one large hole: written like a 0."""
    contours, hierarchy = cv2.findContours(mask.astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if hierarchy is None:
        return False
    outer = [i for i, h in enumerate(hierarchy[0]) if h[3] < 0]
    holes = [i for i, h in enumerate(hierarchy[0]) if h[3] >= 0]
    if len(outer) != 1 or len(holes) != 1:
        return False
    return cv2.contourArea(contours[holes[0]]) > 0.2 * cv2.contourArea(contours[outer[0]])


def script_character(rng: np.random.Generator, size: int = CANVAS) -> np.ndarray:
    """A character of another script, traced by hand with a random pen: white on black uint8."""
    characters = _script_characters()
    return _traced(characters[int(rng.integers(len(characters)))][1], rng, size)
