"""UNIPEN: pen strokes of 227 writers on tablets (Guyon et al., ICPR 1994; train_r01_v07, CC BY 4.0).

Two sources of the same writers:
- ``unipen``: their digits, for the reader (and the gate's digits);
- ``unipen-others``: their letters and symbols that are not written like a digit, for the gate's "not a
  digit". Look-alike classes (O, l, Z, S, b, q, brackets, slashes ...) and bar-like ink (`line_like`) are left
  out: they read as digits, and teaching them as "not a digit" would teach the gate to refuse real digits.

Held out by writer: HELD_OUT of the writers of every contributor (the company or university that collected
them), the same writers in every file, so no held-out writer's letters are learnt either.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from model.constants import NOT_A_DIGIT
from training.sources.base import FormatError, Split, concatenate, find_file, held_out_groups, verify_sha256
from training.sources.pen import (HELD_OUT, HOLDOUT_SEED, RENDERS_PER_DIGIT, RENDERS_PER_OTHER, Drawings, PenFile,
                                  rendered_splits)

WHERE = ("UNIPEN train_r01_v07 (Zenodo 10.5281/zenodo.1195803, CC BY 4.0), as the project's shared data holds "
         "it: put unipen-digits.npz, unipen-upper.npz, unipen-lower.npz, unipen-symbols.npz and "
         "unipen-writers.json in a folder (or its unipen/ subfolder) and pass --data-dir FOLDER")
SUBFOLDER = "unipen"
DIGITS_FILE = PenFile("unipen-digits.npz", SUBFOLDER,
                      "dd415b326173802601861979975e8c5278807cd16e71aedfd7e54b3dd3006dba", WHERE)
OTHER_FILES = (
    PenFile("unipen-upper.npz", SUBFOLDER, "5b898ebe6bd3225a977d295f20ea4a57de9b8ca1d4de1edcbf212d3e20d166be", WHERE),
    PenFile("unipen-lower.npz", SUBFOLDER, "d8004750cd13a2d3b51bf36d0b9200411becc600e9d957558b79fe7e52dea3f3", WHERE),
    PenFile("unipen-symbols.npz", SUBFOLDER, "aebe86c06fd993bd4fe0cfc6d2a496c3251127c6f5a08dc8eb498ddcb081a0e7", WHERE),
)
WRITERS_FILE, WRITERS_SHA256 = "unipen-writers.json", "a0ded5ccc89b9020c1b862df65ab6fd6412691768c3cf3d12e3f3a5037c84f34"


def writers(data_dir: Path | None) -> list[str]:
    """Every writer, "contributor/writer", in the order the files' `writer` indexes them."""
    path = find_file(data_dir, SUBFOLDER, WRITERS_FILE, WHERE)
    verify_sha256(path, WRITERS_SHA256)
    try:
        names = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise FormatError(f"{path} is not a JSON list of writers ({error}): {WHERE}") from None
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise FormatError(f"{path}: expected a JSON list of \"contributor/writer\" names: {WHERE}")
    return names


def held_out_writers(names: list[str]) -> np.ndarray:
    """The indices of the held-out writers: HELD_OUT of every contributor's, seeded."""
    indices = np.arange(len(names))
    contributors = np.array([name.split("/")[0] for name in names])
    return indices[held_out_groups(indices, contributors, HELD_OUT, HOLDOUT_SEED)]


def _held_out_mask(arrays: dict, held: np.ndarray, path: str) -> np.ndarray:
    if "writer" not in arrays:
        raise FormatError(f"{path} has no `writer` array: {WHERE}")
    return np.isin(arrays["writer"], held)


def _digit_sides(data_dir: Path | None) -> tuple[Drawings, np.ndarray, np.ndarray]:
    """The digits' drawings, labels, and the mask of those of held-out writers."""
    arrays = DIGITS_FILE.read(data_dir)
    labels = arrays["labels"].astype(np.uint8)
    if labels.max(initial=0) > 9:
        raise FormatError(f"{DIGITS_FILE.name}: labels must be digits 0-9: {WHERE}")
    held = _held_out_mask(arrays, held_out_writers(writers(data_dir)), DIGITS_FILE.name)
    return Drawings(arrays), labels, held


def _other_sides(data_dir: Path | None) -> list[tuple[str, Drawings, np.ndarray, np.ndarray]]:
    """Per file of letters and symbols: its name, drawings, the mask of those that may be taught as "not a digit"
    (neither a look-alike nor a bar), and the mask of those of held-out writers."""
    held_writers = held_out_writers(writers(data_dir))
    sides = []
    for pen_file in OTHER_FILES:
        arrays = pen_file.read(data_dir)
        if "lookalike" not in arrays or "line_like" not in arrays:
            raise FormatError(f"{pen_file.name} lacks its `lookalike` and `line_like` flags: {WHERE}")
        usable = ~arrays["lookalike"] & ~arrays["line_like"]
        sides.append((pen_file.name, Drawings(arrays), usable, _held_out_mask(arrays, held_writers, pen_file.name)))
    return sides


def digits_part(data_dir: Path | None, held_out: bool) -> tuple[Drawings, np.ndarray, np.ndarray]:
    """The digits of the training writers (held_out False) or of the held-out ones: drawings, their indices and
    labels (for a bench that draws them its own way)."""
    drawings, labels, held = _digit_sides(data_dir)
    chosen = np.flatnonzero(held if held_out else ~held)
    return drawings, chosen, labels[chosen]


def others_part(data_dir: Path | None, held_out: bool) -> list[tuple[Drawings, np.ndarray]]:
    """Per file of letters and symbols: the drawings and the indices of those that may count as "not a digit",
    of the training writers (held_out False) or of the held-out ones."""
    return [(drawings, np.flatnonzero(usable & (held if held_out else ~held)))
            for _, drawings, usable, held in _other_sides(data_dir)]


def digits(data_dir: Path | None) -> tuple[Split, Split]:
    drawings, labels, held = _digit_sides(data_dir)
    return rendered_splits(drawings, ~held, held, labels, "unipen", RENDERS_PER_DIGIT)


def others(data_dir: Path | None) -> tuple[Split, Split]:
    trains, tests = [], []
    for name, drawings, usable, held in _other_sides(data_dir):
        labels = np.full(len(drawings), NOT_A_DIGIT, np.uint8)
        train, test = rendered_splits(drawings, usable & ~held, usable & held, labels, f"unipen-others ({name})",
                                      RENDERS_PER_OTHER)
        trains.append(train)
        tests.append(test)
    return concatenate(trains), concatenate(tests)
