"""Read digits with a trained model: preprocessing plus a compiled forward pass."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from model.artifacts import SHIPPED_MODEL
from model.confidence import DIGIT, NOT_A_DIGIT, Calibration, calibrated, refusal_reason, verdict
from model.constants import INPUT_SIZE, NUM_CLASSES
from model.gate import Gate, gate_reason
from model.loading import load_model, open_fast_path
from model.number import read_number
from model.preprocess import Preprocessed, deskew_all, preprocess
from model.readings import NumberReading, Reading


class Recognizer:
    """A loaded model with its fast path. Create once per process; safe to share between threads."""

    def __init__(self, model_path: Path = SHIPPED_MODEL, gate: bool = True):
        """`gate`: use the gate beside the reader, if it has one (False: the reader alone, to compare)."""
        self.model_path = Path(model_path)
        self.card, self._forward, self._keras = open_fast_path(self.model_path)
        self.calibration = Calibration.from_card(self.card.calibration)
        self.gate = Gate.beside(self.model_path) if gate else None
        # a reader trained on slant-normalised digits (training --deskew) reads them so; the gate never was
        self.deskews = bool(self.card.config.get("deskew"))

    @property
    def model(self):
        """The Keras model, loaded on first use: reading digits does not need it."""
        if self._keras is None:
            self._keras = load_model(self.model_path, verify=False)
        return self._keras

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """(N, 28, 28) uint8 model inputs -> (N, 10) probabilities."""
        images = np.asarray(images)
        if images.ndim != 3 or images.shape[1:] != (INPUT_SIZE, INPUT_SIZE):
            raise ValueError(f"Expected (N, {INPUT_SIZE}, {INPUT_SIZE}) images, got {images.shape}.")
        if len(images) == 0:
            return np.zeros((0, NUM_CLASSES), np.float32)
        return self._forward(self._reader_input(_batch(images)))

    def _reader_input(self, batch: np.ndarray) -> np.ndarray:
        """The batch as the reader takes it: deskewed when it was trained so (the gate takes it as it is)."""
        return _batch(deskew_all(batch[..., 0])) if self.deskews else batch

    def read(self, image: np.ndarray) -> Reading:
        return self.read_many([image])[0]

    def read_many(self, images: list[np.ndarray]) -> list[Reading]:
        """Preprocess each image and read all the non-blank ones in one batch."""
        return self._read_prepared([preprocess(image) for image in images])

    def read_auto(self, image: np.ndarray) -> Reading | NumberReading:
        """One digit, or a whole number when the ink holds several."""
        number = self.read_number(image)
        if not number.digits:
            return Reading(None, reason=number.reason)
        return number.digits[0] if len(number.digits) == 1 else number

    def read_number(self, image: np.ndarray) -> NumberReading:
        """Read every digit of a whole number, left to right (model.number)."""
        return read_number(image, self._read_prepared)

    def _read_prepared(self, prepared: list[Preprocessed]) -> list[Reading]:
        inputs = [p.image for p in prepared if p.image is not None]
        batch = _batch(np.stack(inputs)) if inputs else None
        probabilities = iter(self._forward(self._reader_input(batch)) if inputs else [])
        likeness = iter(self.gate.likeness(batch) if inputs and self.gate else [])
        readings = []
        for p in prepared:
            if p.image is None:
                readings.append(Reading(None, reason=p.reason))
                continue
            probs = calibrated(next(probabilities), self.calibration.temperature)
            closest = int(np.argmax(probs))
            kind = verdict(probs, self.calibration.threshold)
            reason = None if kind == DIGIT else refusal_reason(kind, probs)
            digit_likeness = float(next(likeness)) if self.gate else None
            if self.gate and not self.gate.admits(digit_likeness):  # the gate's word comes first
                kind, reason = NOT_A_DIGIT, gate_reason(digit_likeness, self.gate.threshold)
            readings.append(Reading(closest if kind == DIGIT else None, float(probs[closest]),
                                    tuple(float(v) for v in probs), reason, p.image, p.box, kind, closest,
                                    digit_likeness))
        return readings


def _batch(images: np.ndarray) -> np.ndarray:
    """(N, 28, 28) model inputs -> the (N, 28, 28, 1) float32 batch both networks take."""
    return np.ascontiguousarray(images, dtype=np.float32)[..., None]
