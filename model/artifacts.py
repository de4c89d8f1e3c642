"""Model files on disk: the native .keras file and its JSON sidecar.

``digits.keras`` sits beside ``digits.json`` (its model card, model.card),
``digits.tflite``, ``digits.history.json``, and the curves and confusion-matrix
PNGs. This module names those files and writes them atomically; model.loading
opens a model after checking it against its card.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
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
