"""Hand-written test inputs, written apart from the training generator (training.glyphs).

A model trained on one generator reads that generator's output better than
anything else; so the continental digits measured here come from templates
of their own, fat pens and small scans are made from MNIST *test* digits, and
the issue's table of non-digits is drawn stroke by stroke as a user did.
"""

from __future__ import annotations

import cv2
import numpy as np

from bench import synth
from training import render

SIZE = 280  # the app's canvas


def _ring(cx, cy, rx, ry, start=0, stop=360, points=40):
    angles = np.radians(np.linspace(start, stop, points))
    return [(cx + rx * np.cos(a), cy + ry * np.sin(a)) for a in angles]


def _scribble() -> list:
    rng = np.random.default_rng(7)
    points = [(140, 140)]
    for _ in range(14):
        x, y = points[-1]
        points.append((float(np.clip(x + rng.normal(0, 60), 50, 230)), float(np.clip(y + rng.normal(0, 60), 50, 230))))
    return [points]


# The shapes of the issue's table, in canvas pixels, as they were drawn.
ISSUE_TABLE = {
    "dash": [[(70, 140), (210, 142)]],
    "capital A": [[(75, 230), (140, 50), (205, 230)], [(100, 165), (180, 165)]],
    "S": [[(200, 75), (170, 52), (125, 50), (88, 72), (85, 110), (115, 135), (165, 150), (198, 180), (195, 220),
           (155, 240), (110, 238), (80, 215)]],
    "x": [[(80, 80), (200, 200)], [(200, 80), (80, 200)]],
    "+": [[(140, 60), (140, 220)], [(60, 140), (220, 140)]],
    "?": [[(90, 95), (105, 62), (145, 48), (185, 65), (195, 100), (175, 125), (145, 145), (140, 185)],
          [(140, 222), (141, 224)]],
    "smiley": [_ring(140, 140, 95, 95), [(110, 105), (111, 112)], [(170, 105), (171, 112)],
               _ring(140, 145, 55, 45, 20, 160, 20)],
    "random scribble": _scribble(),
}


def canvas_drawing(strokes: list, pen: int, size: int = SIZE) -> np.ndarray:
    """Strokes in canvas pixels drawn with a round pen: an ink mask (255 = stroke), by the one renderer."""
    return render.draw([np.asarray(stroke, np.float64) for stroke in strokes], (size, size), pen)


# Continental styles, in a unit box (x right, y down).
CONTINENTAL = {
    1: [[[(0.2, 0.38), (0.62, 0.02), (0.58, 1.0)]],  # long up-stroke
        [[(0.35, 0.18), (0.6, 0.0), (0.6, 1.0)], [(0.38, 1.0), (0.82, 1.0)]]],  # flag and base
    4: [[[(0.3, 0.02), (0.12, 0.58), (0.92, 0.58)], [(0.7, 0.3), (0.66, 1.0)]]],  # open top
    7: [[[(0.08, 0.05), (0.88, 0.02), (0.42, 0.98)], [(0.38, 0.55), (0.82, 0.52)]]],  # crossed
    9: [[_ring(0.45, 0.27, 0.33, 0.26) + [(0.78, 0.3), (0.75, 0.82), (0.62, 0.97), (0.42, 0.97), (0.3, 0.88)]]],
}


def _star_outline() -> list:
    corners = [np.radians(i * 36 - 90) for i in range(11)]
    return [[(0.5 + (0.5 if i % 2 == 0 else 0.2) * np.cos(a), 0.5 + (0.5 if i % 2 == 0 else 0.2) * np.sin(a))
             for i, a in enumerate(corners)]]


# Doodles people draw to try the app, in a unit box (x right, y down): drawn by bench/styles' own pen, not by
# training.glyphs (whose star, house and heart the gate was trained on).
DOODLES = {
    "star": _star_outline(),
    "house": [[(0.1, 1.0), (0.1, 0.45), (0.5, 0.05), (0.9, 0.45), (0.9, 1.0), (0.1, 1.0)],
              [(0.4, 1.0), (0.4, 0.7), (0.6, 0.7), (0.6, 1.0)]],
    "heart": [[(0.5, 0.3)] + _ring(0.27, 0.3, 0.23, 0.22, 0, -180, 20) + [(0.5, 0.98)],
              [(0.5, 0.3)] + _ring(0.73, 0.3, 0.23, 0.22, 180, 360, 20) + [(0.5, 0.98)]],
    "eye": [[(0.0, 0.5), (0.5, 0.2), (1.0, 0.5), (0.5, 0.8), (0.0, 0.5)], _ring(0.5, 0.5, 0.12, 0.12)],
    "umbrella": [_ring(0.5, 0.45, 0.45, 0.4, 180, 360), [(0.05, 0.45), (0.95, 0.45)],
                 [(0.5, 0.45), (0.5, 0.92)] + _ring(0.42, 0.92, 0.08, 0.07, 0, 180, 10)],
    "cloud": [_ring(0.3, 0.55, 0.2, 0.2, 90, 270, 16) + _ring(0.5, 0.4, 0.22, 0.22, 180, 360, 16)
              + _ring(0.72, 0.55, 0.2, 0.2, 270, 450, 16) + [(0.3, 0.75)]],
    "tree": [[(0.5, 0.0), (0.1, 0.6), (0.9, 0.6), (0.5, 0.0)], [(0.45, 0.6), (0.45, 1.0), (0.55, 1.0), (0.55, 0.6)]],
    "cat": [_ring(0.5, 0.55, 0.4, 0.4), [(0.15, 0.35), (0.2, 0.0), (0.4, 0.18)],
            [(0.6, 0.18), (0.8, 0.0), (0.85, 0.35)]],
}


def _jittered(strokes: list, rng: np.random.Generator) -> list:
    """A template as one writer draws it: turned, slanted, narrower or wider, unsteady."""
    angle, slant = np.radians(rng.uniform(-10, 10)), rng.uniform(-0.25, 0.25)
    aspect = rng.uniform(0.6, 1.3)
    out = []
    for stroke in strokes:
        p = np.array(stroke, np.float64) + rng.normal(0, 0.015, (len(stroke), 2)) - 0.5
        x = (p[:, 0] - slant * p[:, 1]) * aspect
        y = p[:, 1]
        out.append(np.stack([x * np.cos(angle) - y * np.sin(angle), x * np.sin(angle) + y * np.cos(angle)], 1))
    return out


def _template_canvas(strokes: list, rng: np.random.Generator) -> np.ndarray:
    height = SIZE * rng.uniform(0.35, 0.75)
    centre = rng.uniform(0.4, 0.6, 2) * SIZE
    pen = max(2, round(height * rng.uniform(0.04, 0.14)))
    placed = [s * height + centre for s in _jittered(strokes, rng)]
    return synth.canvas_style(canvas_drawing(placed, pen), synth.CANVAS_STYLES[int(rng.integers(3))])


def _small_scan(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A digit scanned 8-16 px tall and enlarged, dark on light paper: gray uint8."""
    crop = digit[np.ix_(digit.max(axis=1) > 0, digit.max(axis=0) > 0)]
    tall = int(rng.integers(8, 17))
    small = cv2.resize(crop, (max(2, round(crop.shape[1] * tall / crop.shape[0])), tall), interpolation=cv2.INTER_AREA)
    small = np.pad(small, tall // 2)
    big = cv2.resize(small, None, fx=8, fy=8, interpolation=cv2.INTER_CUBIC)
    return (255 - np.clip(big, 0, 255)).astype(np.uint8)


def doodle(name: str, rng: np.random.Generator) -> np.ndarray:
    """One of DOODLES as a user draws it on the canvas."""
    return _template_canvas(DOODLES[name], rng)


def continental_set(rng: np.random.Generator, count: int) -> tuple[list[np.ndarray], list[int]]:
    """Continental 1, 4, 7, 9; MNIST test digits redrawn with a fat marker; MNIST test digits scanned small."""
    from training.data import load_dataset

    test = load_dataset("mnist").test
    images, labels = [], []
    order = iter(rng.permutation(len(test)))
    for index in range(count):
        kind = index % 5
        if kind < 2:
            digit = list(CONTINENTAL)[int(rng.integers(len(CONTINENTAL)))]
            variants = CONTINENTAL[digit]
            images.append(_template_canvas(variants[int(rng.integers(len(variants)))], rng))
        else:
            pick = next(order)
            digit = int(test.y[pick])
            if kind < 4:
                images.append(synth.redraw(test.x[pick], rng, synth.CANVAS_STYLES[int(rng.integers(3))],
                                           pen_share=rng.uniform(0.18, 0.3)))
            else:
                images.append(_small_scan(test.x[pick], rng))
        labels.append(digit)
    return images, labels


def generated_non_digit_canvases(rng: np.random.Generator, count: int) -> list[np.ndarray]:
    """Our generator's non-digits (training.glyphs, from a seed it was not trained with) on the canvas."""
    from training.data import load_dataset
    from training.glyphs import NON_DIGIT_KINDS, non_digit_drawing

    test = load_dataset("mnist").test
    images = []
    for index in range(count):
        kind = NON_DIGIT_KINDS[index % len(NON_DIGIT_KINDS)]
        drawing = non_digit_drawing(kind, rng, (test.x, test.y))
        if drawing.shape[0] < 64:  # an altered MNIST digit: drawn again with the mouse
            images.append(synth.redraw(drawing, rng, synth.CANVAS_STYLES[int(rng.integers(3))]))
            continue
        size = int(rng.integers(200, 600))
        mask = cv2.resize(drawing, (size, size), interpolation=cv2.INTER_LINEAR)
        images.append(synth.canvas_style(mask, synth.CANVAS_STYLES[int(rng.integers(3))]))
    return images
