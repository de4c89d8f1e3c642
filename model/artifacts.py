"""Model files on disk: the native .keras file and its JSON sidecar.

``digits.keras`` sits beside ``digits.json`` (version, data, config, metrics,
library versions, the model file's SHA-256), ``digits.history.json``, and the
curves and confusion-matrix PNGs. Loading checks the SHA-256 and uses Keras's
safe mode, so a corrupt or tampered file is refused with a clear message.
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


def read_sidecar(model_path: Path) -> dict:
    path = sidecar_path(model_path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelFileError(f"{path} is missing: every model needs its sidecar. Retrain with `python -m training`.") from None
    except json.JSONDecodeError as error:
        raise ModelFileError(f"{path} is not valid JSON ({error}). Restore it or retrain.") from None


def verify_model_file(model_path: Path) -> dict:
    """Check that a .keras file exists and matches its sidecar; returns the sidecar."""
    model_path = Path(model_path)
    if model_path.suffix != ".keras":
        raise ModelFileError(f"{model_path}: expected a native Keras model file ending in .keras.")
    if not model_path.exists():
        raise ModelFileError(f"{model_path} does not exist. Train one with `python -m training --output {model_path}`.")
    info = read_sidecar(model_path)
    expected, actual = info.get("model_sha256"), file_sha256(model_path)
    if expected != actual:
        raise ModelFileError(
            f"{model_path} has SHA-256 {actual}, but its sidecar expects {expected}: the file is corrupt "
            "or was replaced. Restore it from version control or retrain."
        )
    return info


def read_lite_export(model_path: Path, info: dict) -> bytes | None:
    """The model's LiteRT export (<name>.tflite), if there is one and it matches the sidecar's SHA-256."""
    path = companion_path(model_path, "tflite")
    expected = info.get("tflite_sha256")
    if not expected or not path.exists():
        return None
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != expected:
        return None  # a damaged export is not fatal: the model is converted again from the .keras file
    return data


def load_model(model_path: Path = SHIPPED_MODEL, verify: bool = True):
    """Load a .keras model in safe mode, after checking it against its sidecar."""
    model_path = Path(model_path)
    if verify:
        verify_model_file(model_path)
    elif not model_path.exists():
        raise ModelFileError(f"{model_path} does not exist.")
    from model.tf_runtime import tensorflow

    tensorflow()
    import keras

    try:
        return keras.saving.load_model(model_path, compile=False, safe_mode=True)
    except Exception as error:  # Keras raises many types for a broken archive
        raise ModelFileError(f"{model_path} could not be loaded as a Keras model: {error}") from error
