"""Sets of real pen strokes (UNIPEN, Chars74K, Quick, Draw!): their shared file layout, held-out groups, renders.

The shared layout (../shared/data/README.md): `stroke_points` (P x 2, x right and y down), `stroke_point_offsets`
(stroke s is points[o[s]:o[s+1]]) and `sample_stroke_offsets` (sample i is strokes o[i] to o[i+1]), beside
`labels`, `classes` and what each set adds (`writer`, `lookalike`, `line_like` ...).

Strokes are data: a training split is the drawings rendered afresh by training.render, RENDERS_PER_DIGIT
(or RENDERS_PER_OTHER) times each, every render jittered and drawn with another pen, on the canvas or on paper
in proportion CANVAS_SHARE. A held-out split is rendered once, on the canvas, from its own seed: the reports
measure the same pictures every time.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np

from model.constants import INPUT_SIZE, NOT_A_DIGIT
from training.render import model_input, strokes_of
from training.sources.base import FormatError, Split, check_split, find_file, verify_sha256

log = logging.getLogger(__name__)

HELD_OUT = 0.2  # of the writers (or categories) of every stratum
HOLDOUT_SEED = 20261206
RENDER_SEED = 20261207  # training renders; held-out renders take RENDER_SEED + 1
RENDERS_PER_DIGIT = 4  # each training digit drawn this many times, each time jittered and with another pen
RENDERS_PER_OTHER = 1  # each training non-digit: there are many, of many kinds
# Each training doodle: about 20 of each of 150 categories, too few once drawn for the gate to learn doodles from
# (drawn once, the gate's held-out categories refused did not move: 72.4 -> 71.5%, docs/reliability.md)
RENDERS_PER_DOODLE = 8
CANVAS_SHARE = 0.7  # of the renders; the rest are ink on paper, photographed
# Names a cache of renders: change it when the renders change (v3: preprocessing's wider paper-light kernel and
# higher contrast floor frame photographed renders differently).
RENDER_TAG = f"r{RENDERS_PER_DIGIT}x{RENDERS_PER_OTHER}x{RENDERS_PER_DOODLE}-v3"
STROKE_ARRAYS = ("stroke_points", "stroke_point_offsets", "sample_stroke_offsets", "labels", "classes")
# Letters written like a digit (the UNIPEN README's list; Chars74K has no flags of its own): never "not a digit".
LOOKALIKE_LETTERS = frozenset("OoDQIliJjZzSsbGTtBgqay")


@dataclasses.dataclass(frozen=True)
class PenFile:
    """One .npz of pen strokes: its name, its folder under --data-dir, its published SHA-256, where to get it."""

    name: str
    subfolder: str
    sha256: str
    where: str

    def read(self, data_dir: Path | None) -> dict[str, np.ndarray]:
        path = find_file(data_dir, self.subfolder, self.name, self.where)
        verify_sha256(path, self.sha256)
        try:
            with np.load(path, allow_pickle=False) as arrays:
                loaded = {key: arrays[key] for key in arrays.files}
        except (OSError, ValueError) as error:
            raise FormatError(f"{path} cannot be read as an .npz ({error}): {self.where}") from None
        missing = [key for key in STROKE_ARRAYS if key not in loaded]
        offsets = loaded.get("sample_stroke_offsets")
        if missing or offsets is None or len(offsets) != len(loaded["labels"]) + 1:
            raise FormatError(f"{path} lacks the stroke layout ({', '.join(missing) or 'offsets per sample'}): "
                              f"{self.where}")
        return loaded


class Drawings:
    """The drawings of one file as strokes, by index."""

    def __init__(self, arrays: dict[str, np.ndarray]):
        self.points = arrays["stroke_points"]
        self.point_offsets = arrays["stroke_point_offsets"]
        self.stroke_offsets = arrays["sample_stroke_offsets"]

    def __len__(self) -> int:
        return len(self.stroke_offsets) - 1

    def strokes(self, index: int):
        return strokes_of(self.points, self.point_offsets, self.stroke_offsets, index)


def render(drawings: Drawings, indices: np.ndarray, labels: np.ndarray, renders: int, seed: int,
           canvas_share: float = CANVAS_SHARE, where: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Each drawing rendered `renders` times -> (M, 28, 28) uint8 model inputs and their labels. A render the app
    would find no ink in (a dot, a tiny mark) is left out, as the app would give no answer for it."""
    rng = np.random.default_rng(seed)
    images, kept = [], []
    for index, label in zip(indices.tolist(), labels.tolist()):
        strokes = drawings.strokes(index)
        if not strokes:
            continue
        for _ in range(renders):
            place = where or ("canvas" if rng.random() < canvas_share else "paper")
            image = model_input(strokes, rng, place)
            if image is not None:
                images.append(image)
                kept.append(label)
    if not images:
        return np.zeros((0, INPUT_SIZE, INPUT_SIZE), np.uint8), np.zeros(0, np.uint8)
    return np.stack(images), np.array(kept, np.uint8)


def rendered_splits(drawings: Drawings, train: np.ndarray, test: np.ndarray, labels: np.ndarray, where: str,
                    renders: int) -> tuple[Split, Split]:
    """The training drawings rendered `renders` times each (canvas and paper), the held-out ones once on the
    canvas; labels are digits, or NOT_A_DIGIT for a source of other things."""
    not_digits = bool(len(labels)) and int(labels.max()) == NOT_A_DIGIT
    x_train, y_train = render(drawings, np.flatnonzero(train), labels[train], renders, RENDER_SEED)
    x_test, y_test = render(drawings, np.flatnonzero(test), labels[test], 1, RENDER_SEED + 1, where="canvas")
    log.info("%s: %d training drawings rendered %d times -> %d images; %d held out", where, int(train.sum()),
             renders, len(y_train), len(y_test))
    return (check_split(x_train, y_train, where, not_a_digit=not_digits),
            check_split(x_test, y_test, where, not_a_digit=not_digits))
