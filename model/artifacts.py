"""Model files on disk: the native .keras file and its JSON sidecar.

``digits.keras`` sits beside ``digits.json`` (its model card, model.card),
``digits.tflite``, ``digits.history.json``, and the curves and confusion-matrix
PNGs. This module names those files and writes them atomically; model.loading
opens a model after checking it against its card.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

SHIPPED_MODEL = Path(__file__).resolve().parent / "digits.keras"


class ModelFileError(RuntimeError):
    """The model file is missing, corrupt, or does not match its sidecar."""


def sidecar_path(model_path: Path) -> Path:
    return Path(model_path).with_suffix(".json")


def companion_path(model_path: Path, kind: str) -> Path:
    """e.g. companion_path('m/digits.keras', 'curves.png') -> 'm/digits.curves.png'."""
    model_path = Path(model_path)
    return model_path.with_name(f"{model_path.stem}.{kind}")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, then rename over the target."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False) as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
        tmp = handle.name
    os.chmod(tmp, 0o644)  # temporary files are private; the result is an ordinary file
    os.replace(tmp, path)


def atomic_write_json(path: Path, payload: dict) -> None:
    atomic_write_bytes(path, (json.dumps(payload, indent=2, sort_keys=False) + "\n").encode())


@contextlib.contextmanager
def staging_folder(model_path: Path) -> Iterator[Path]:
    """A private folder, on the model's file system, to write a model's whole set in before publish_set.

    It sits inside the model's folder when that exists, else beside it (so that it can become that folder);
    whatever is left of it is removed on the way out."""
    model_path = Path(model_path)
    folder = model_path.parent
    if folder.exists():
        work = tempfile.mkdtemp(prefix=f".{model_path.stem}-run-", dir=folder)
    else:
        folder.parent.mkdir(parents=True, exist_ok=True)
        work = tempfile.mkdtemp(prefix=f".{folder.name}.staging-", dir=folder.parent)
    try:
        yield Path(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def publish_set(work: Path, model_path: Path) -> None:
    """Move a complete model set from `work` (staging_folder) to `model_path` and its companions.

    When the model's folder does not exist yet, the staging folder becomes it: one rename. Otherwise the
    files move in one by one, the card last, and only if no model of that name is there: readers go by the
    card, so they see no model or the whole new one, never new weights with an old card."""
    work, model_path = Path(work), Path(model_path)
    folder = model_path.parent
    if work.parent != folder:
        with contextlib.suppress(OSError):  # the folder appeared meanwhile: move file by file below
            os.rename(work, folder)  # atomic; fails rather than replace a folder that has files
            return
    if model_path.exists():
        raise ModelFileError(f"{model_path} already exists: a new model is never written over another in place. "
                             "Name a new output.")
    card = sidecar_path(model_path).name
    names = sorted(path.name for path in work.iterdir())
    for name in sorted(names, key=lambda n: n == card):  # the card last
        os.replace(work / name, folder / name)
