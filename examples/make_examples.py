"""Write the app's example gallery: five inputs to try with one click, and gallery.json listing them.

Each is a file a user could have uploaded; the app sends it through the same
pipeline as an upload. Deterministic (fixed seeds). Run from the repository root:

    .venv/bin/python examples/make_examples.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import styles, synth  # noqa: E402

HERE = Path(__file__).resolve().parent


def _png(image: np.ndarray, name: str) -> str:
    Image.fromarray(image).save(HERE / name, optimize=True)
    return name


def _jpeg(image: np.ndarray, name: str) -> str:
    Image.fromarray(image).save(HERE / name, quality=88)
    return name


def main() -> None:
    with np.load(ROOT / "tests" / "fixtures" / "mnist_test_sample.npz") as data:
        x, y = data["x"], data["y"]
    eye = [[(40, 140), (140, 80), (240, 140), (140, 200), (40, 140)],
           [(140 + 30 * np.cos(u), 140 + 30 * np.sin(u)) for u in np.linspace(0, 2 * np.pi, 60)]]
    continental_one = [np.array(stroke) * 180 + 50 for stroke in styles.CONTINENTAL[1][0]]
    first = {digit: int(np.flatnonzero(y == digit)[0]) for digit in range(10)}
    number = [x[first[digit]] for digit in (2, 0, 2, 6)]
    gallery = [
        {"caption": "An MNIST digit (7)", "file": _png(x[first[7]], "mnist-digit.png")},
        {"caption": "A photo of a 4 on paper",
         "file": _jpeg(synth.photo(synth.pen_ink(x[first[4]], 160), np.random.default_rng(1), sides=(420, 520)), "photo-on-paper.jpg")},
        {"caption": "A number on paper (2026)",
         "file": _jpeg(synth.photo(synth.number_ink(number, 110, np.random.default_rng(2)), np.random.default_rng(9),
                                       sides=(420, 520)), "number-2026.jpg")},
        {"caption": "A continental 1",
         "file": _png(synth.canvas_style(styles.canvas_drawing(continental_one, 16), "black_on_white"),
                      "continental-one.png")},
        {"caption": "Not a digit (an eye)",
         "file": _png(synth.canvas_style(styles.canvas_drawing(eye, 12), "black_on_white"), "not-a-digit.png")},
    ]
    (HERE / "gallery.json").write_text(json.dumps(gallery, indent=2) + "\n")
    print(f"wrote {len(gallery)} examples and gallery.json to {HERE}")


if __name__ == "__main__":
    main()
