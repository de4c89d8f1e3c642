"""Open a model file after checking it against its card.

Loading checks the file's SHA-256 against the card and uses Keras's safe mode,
so a corrupt or tampered file is refused with a clear message, not loaded.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from model.artifacts import SHIPPED_MODEL, ModelFileError, companion_path, file_sha256
from model.card import ModelCard


def verify_model_file(model_path: Path) -> ModelCard:
    """Check that a .keras file exists and matches its card; returns the card."""
    model_path = Path(model_path)
    if model_path.suffix != ".keras":
        raise ModelFileError(f"{model_path}: expected a native Keras model file ending in .keras.")
    if not model_path.exists():
        raise ModelFileError(f"{model_path} does not exist. Train one with `python -m training --output {model_path}`.")
    card = ModelCard.read(model_path)
    actual = file_sha256(model_path)
    if card.model_sha256 != actual:
        raise ModelFileError(
            f"{model_path} has SHA-256 {actual}, but its sidecar expects {card.model_sha256}: the file is corrupt "
            "or was replaced. Restore it from version control or retrain."
        )
    return card


def read_lite_export(model_path: Path, card: ModelCard) -> bytes | None:
    """The model's LiteRT export (<name>.tflite), if there is one and it matches the card's SHA-256."""
    path = companion_path(model_path, "tflite")
    if not card.tflite_sha256 or not path.exists():
        return None
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != card.tflite_sha256:
        return None  # a damaged export is not fatal: the model is converted again from the .keras file
    return data


def load_model(model_path: Path = SHIPPED_MODEL, verify: bool = True):
    """Load a .keras model in safe mode, after checking it against its card."""
    model_path = Path(model_path)
    if verify:
        verify_model_file(model_path)
    elif not model_path.exists():
        raise ModelFileError(f"{model_path} does not exist.")
    from model.tf_runtime import keras_module

    keras = keras_module()
    try:
        return keras.saving.load_model(model_path, compile=False, safe_mode=True)
    except Exception as error:  # Keras raises many types for a broken archive
        raise ModelFileError(f"{model_path} could not be loaded as a Keras model: {error}") from error


def open_fast_path(model_path: Path):
    """A model's card and its LiteRT fast path, both checked; and the Keras model when the export was missing
    and had to be made from it (needs TensorFlow, seconds), else None."""
    from model.lite import LiteModel, convert

    card = verify_model_file(model_path)  # the file exists and matches its card
    exported = read_lite_export(model_path, card)
    keras_model = None
    if exported is None:
        keras_model = load_model(model_path, verify=False)
        exported = convert(keras_model)
    return card, LiteModel(exported), keras_model
