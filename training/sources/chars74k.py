"""Chars74K, its "EnglishHnd" part: 55 writers on a tablet PC (de Campos, Babu and Varma, VISAPP 2009).

- ``chars74k``: the 550 digits, for the reader (and the gate's digits);
- ``chars74k-letters``: the 2,860 letters minus those written like a digit (pen.LOOKALIKE_LETTERS: the set has
  no flags of its own), for the gate's "not a digit".
Held out by writer: HELD_OUT of the 55, seeded, the same writers for both.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from model.constants import NOT_A_DIGIT
from training.sources.base import FormatError, Split, held_out_groups
from training.sources.pen import (HELD_OUT, HOLDOUT_SEED, LOOKALIKE_LETTERS, RENDERS_PER_DIGIT, RENDERS_PER_OTHER,
                                  Drawings, PenFile, rendered_splits)

WHERE = ("Chars74K EnglishHnd (https://teodecampos.github.io/chars74k/), its pen strokes as the project's shared "
         "data holds them: put chars74k-pen.npz in a folder (or its chars74k-pen/ subfolder) and pass --data-dir FOLDER")
FILE = PenFile("chars74k-pen.npz", "chars74k-pen", "63d53f510885c97e2c27ddacb0ab89bb1fe8e47e4c6699644aaed7ffff704a3d",
               WHERE)


def _sides(data_dir: Path | None) -> tuple[Drawings, np.ndarray, np.ndarray, np.ndarray]:
    """The drawings, each one's character, whether it is a digit, and the mask of held-out writers."""
    arrays = FILE.read(data_dir)
    if "writer" not in arrays:
        raise FormatError(f"{FILE.name} has no `writer` array: {WHERE}")
    characters = arrays["classes"][arrays["labels"]]
    is_digit = np.char.isdigit(characters)
    writer = arrays["writer"].astype(np.int64)
    held = held_out_groups(writer, np.zeros_like(writer), HELD_OUT, HOLDOUT_SEED)
    return Drawings(arrays), characters, is_digit, held


def digits_part(data_dir: Path | None, held_out: bool) -> tuple[Drawings, np.ndarray, np.ndarray]:
    """The digits of the training writers (held_out False) or the held-out ones: drawings, indices, labels."""
    drawings, characters, is_digit, held = _sides(data_dir)
    chosen = np.flatnonzero(is_digit & (held if held_out else ~held))
    return drawings, chosen, characters[chosen].astype(np.uint8)


def letters_part(data_dir: Path | None, held_out: bool) -> tuple[Drawings, np.ndarray]:
    """The letters that may count as "not a digit", of the training writers or the held-out ones."""
    drawings, characters, is_digit, held = _sides(data_dir)
    usable = ~is_digit & ~np.isin(characters, sorted(LOOKALIKE_LETTERS))
    return drawings, np.flatnonzero(usable & (held if held_out else ~held))


def digits(data_dir: Path | None) -> tuple[Split, Split]:
    drawings, characters, is_digit, held = _sides(data_dir)
    labels = np.where(is_digit, characters, "0").astype(np.uint8)
    return rendered_splits(drawings, is_digit & ~held, is_digit & held, labels, "chars74k", RENDERS_PER_DIGIT)


def letters(data_dir: Path | None) -> tuple[Split, Split]:
    drawings, characters, is_digit, held = _sides(data_dir)
    usable = ~is_digit & ~np.isin(characters, sorted(LOOKALIKE_LETTERS))
    labels = np.full(len(drawings), NOT_A_DIGIT, np.uint8)
    return rendered_splits(drawings, usable & ~held, usable & held, labels, "chars74k-letters", RENDERS_PER_OTHER)
