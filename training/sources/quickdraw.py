"""Quick, Draw!: doodles people drew in 20 seconds in a browser game (Google Creative Lab; CC BY 4.0).

``quickdraw``, for the gate's "not a digit": the drawings with strokes (about 26 of each of 193 categories),
rendered like every pen stroke but RENDERS_PER_DOODLE times each, and at most BITMAPS_PER_CATEGORY of each of the bitmaps' 13 categories, framed
by the app's preprocess. Many categories and few of each: a large count of a few kinds taught the gate less
(issue 32's trial). Look-alike categories (circle, line, moon, donut ...; the bitmaps' circle and square) and
bar-like drawings never count as "not a digit".

Held out by category: HELD_OUT of the categories, seeded and stratified by the file they come from, the
same names held out in both files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from model.constants import INPUT_SIZE, NOT_A_DIGIT
from model.preprocess import preprocess
from training.sources.base import FormatError, Split, check_split, concatenate, find_file, held_out_groups, verify_sha256
from training.sources.pen import HELD_OUT, HOLDOUT_SEED, RENDERS_PER_DOODLE, Drawings, PenFile, rendered_splits

WHERE = ("Quick, Draw! (https://github.com/googlecreativelab/quickdraw-dataset, CC BY 4.0), as the project's shared "
         "data holds it: put quickdraw-strokes.npz and quickdraw-bitmaps.npz in a folder (or its quickdraw/ "
         "subfolder) and pass --data-dir FOLDER")
SUBFOLDER = "quickdraw"
STROKES = PenFile("quickdraw-strokes.npz", SUBFOLDER,
                  "b1ba1229a865fa0e5931d9c0635ae27a7ad29f2f1a353aa84c7befddfc8545ac", WHERE)
BITMAPS, BITMAPS_SHA256 = "quickdraw-bitmaps.npz", "f9c929fcefe7da88a0229450cac92bc6f2f570b278cde4196571df6e722fee15"
BITMAP_LOOKALIKES = ("circle", "square")
BITMAPS_PER_CATEGORY = 400
BITMAP_SEED = 20261208


def _bitmaps(data_dir: Path | None) -> dict[str, np.ndarray]:
    path = find_file(data_dir, SUBFOLDER, BITMAPS, WHERE)
    verify_sha256(path, BITMAPS_SHA256)
    with np.load(path, allow_pickle=False) as arrays:
        loaded = {key: arrays[key] for key in ("images", "labels", "classes") if key in arrays.files}
    if len(loaded) < 3 or loaded["images"].shape[1:] != (INPUT_SIZE, INPUT_SIZE):
        raise FormatError(f"{path}: expected 28x28 `images`, `labels` and `classes`: {WHERE}")
    return loaded


def held_out_categories(stroke_classes: np.ndarray, bitmap_classes: np.ndarray) -> set[str]:
    """The held-out category names: HELD_OUT of those of each file (a name in both counts with the bitmaps)."""
    names = sorted(set(stroke_classes.tolist()) | set(bitmap_classes.tolist()))
    in_bitmaps = np.isin(names, bitmap_classes)
    held = held_out_groups(np.arange(len(names)), in_bitmaps, HELD_OUT, HOLDOUT_SEED)
    return {name for name, out in zip(names, held) if out}


def _stroke_sides(data_dir: Path | None) -> tuple[Drawings, np.ndarray, np.ndarray, set[str]]:
    strokes = STROKES.read(data_dir)
    bitmaps = _bitmaps(data_dir)
    if "lookalike" not in strokes or "line_like" not in strokes:
        raise FormatError(f"{STROKES.name} lacks its `lookalike` and `line_like` flags: {WHERE}")
    held_names = held_out_categories(strokes["classes"], bitmaps["classes"])
    category = strokes["classes"][strokes["labels"]]
    usable = ~strokes["lookalike"] & ~strokes["line_like"]
    return Drawings(strokes), usable, np.isin(category, sorted(held_names)), held_names


def strokes_part(data_dir: Path | None, held_out: bool) -> tuple[Drawings, np.ndarray]:
    """The drawings with strokes that may count as "not a digit", of the training or the held-out categories."""
    drawings, usable, held, _ = _stroke_sides(data_dir)
    return drawings, np.flatnonzero(usable & (held if held_out else ~held))


def bitmap_indices(data_dir: Path | None, held_out: bool) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Category -> the indices of up to BITMAPS_PER_CATEGORY of its bitmaps (a seeded choice), for each
    non-look-alike category, training or held out; and every bitmap (as stored: ink 255 on 0, filling the frame)."""
    _, _, _, held_names = _stroke_sides(data_dir)
    bitmaps = _bitmaps(data_dir)
    rng = np.random.default_rng(BITMAP_SEED)
    chosen = {}
    for label, name in enumerate(bitmaps["classes"].tolist()):
        if name in BITMAP_LOOKALIKES or (name in held_names) != held_out:
            continue
        members = np.flatnonzero(bitmaps["labels"] == label)
        chosen[name] = np.sort(rng.permutation(members)[:BITMAPS_PER_CATEGORY])
    return chosen, bitmaps


def bitmaps_part(data_dir: Path | None, held_out: bool) -> np.ndarray:
    """The chosen bitmaps (bitmap_indices) of the training or the held-out categories."""
    chosen, bitmaps = bitmap_indices(data_dir, held_out)
    if not chosen:
        return np.zeros((0, INPUT_SIZE, INPUT_SIZE), np.uint8)
    return bitmaps["images"][np.concatenate(list(chosen.values()))]


def _framed(images: np.ndarray) -> Split:
    frames = [frame for frame in (preprocess(image).image for image in images) if frame is not None]
    x = np.stack(frames) if frames else np.zeros((0, INPUT_SIZE, INPUT_SIZE), np.uint8)
    return check_split(x, np.full(len(x), NOT_A_DIGIT, np.uint8), BITMAPS, not_a_digit=True)


def doodles(data_dir: Path | None) -> tuple[Split, Split]:
    drawings, usable, held, _ = _stroke_sides(data_dir)
    labels = np.full(len(drawings), NOT_A_DIGIT, np.uint8)
    train, test = rendered_splits(drawings, usable & ~held, usable & held, labels, "quickdraw", RENDERS_PER_DOODLE)
    return (concatenate([train, _framed(bitmaps_part(data_dir, False))]),
            concatenate([test, _framed(bitmaps_part(data_dir, True))]))
