"""Read digits with a trained model: preprocessing plus a compiled forward pass."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import NamedTuple

import numpy as np

from model.artifacts import (
    SHIPPED_MODEL,
    load_model,
    read_lite_export,
    verify_model_file,
)
from model.confidence import DIGIT, EMPTY, NOT_A_DIGIT, NOT_SURE, Calibration, calibrated, refusal_reason, verdict
from model.constants import INPUT_SIZE, NUM_CLASSES
from model.lite import LiteModel, convert
from model.preprocess import Preprocessed, preprocess, preprocess_number
from model.segment import best_spans


@dataclasses.dataclass(frozen=True)
class Reading:
    """One input's result: a digit with its probabilities, or the reason there is none.

    A refused reading (verdict NOT_SURE or NOT_A_DIGIT) has no digit but keeps its
    probabilities, its closest digit and that digit's confidence; an EMPTY one has none of them.
    """

    digit: int | None
    confidence: float | None = None  # calibrated probability of `closest`
    probabilities: tuple[float, ...] | None = None  # calibrated, 0-9
    reason: str | None = None
    model_input: np.ndarray | None = None  # the 28x28 image the model saw
    box: tuple[int, int, int, int] | None = None
    verdict: str = EMPTY
    closest: int | None = None  # the likeliest digit, claimed or not

    @property
    def refused(self) -> bool:
        return self.verdict in (NOT_SURE, NOT_A_DIGIT)

    def top(self, count: int = 2) -> list[tuple[int, float]]:
        if self.probabilities is None:
            return []
        order = np.argsort(self.probabilities)[::-1][:count]
        return [(int(i), float(self.probabilities[i])) for i in order]


class NumberReading(NamedTuple):
    """A whole number read digit by digit, left to right, or the reason there is none.

    When a piece is refused, `number` is None, `reason` names the piece's box and `digits` still
    holds every piece's reading."""

    number: str | None
    digits: list[Reading]
    reason: str | None = None


class Recognizer:
    """A loaded model with its fast path. Create once per process; safe to share between threads."""

    def __init__(self, model_path: Path = SHIPPED_MODEL):
        self.model_path = Path(model_path)
        self.info = verify_model_file(self.model_path)  # the file exists and matches its sidecar
        exported = read_lite_export(self.model_path, self.info)
        self._keras = None
        if exported is None:  # no export beside the model: convert it now (needs TensorFlow, seconds)
            self._keras = load_model(self.model_path, verify=False)
            exported = convert(self._keras)
        self._forward = LiteModel(exported)
        self.calibration = Calibration.from_sidecar(self.info)

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
        return self._forward(np.ascontiguousarray(images, dtype=np.float32)[..., None])

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
        """Read every digit of a whole number, left to right."""
        candidates = preprocess_number(image)
        if isinstance(candidates, str):
            return NumberReading(None, [], candidates)
        readings = self._read_prepared(candidates.inputs)
        chosen = best_spans(candidates.candidates, [r.confidence for r in readings], candidates.count)
        digits = [readings[index] for index in chosen]
        refused = [d for d in digits if d.refused]
        if refused:
            piece = refused[0]
            x, y, w, h = piece.box
            (first, _), (second, _) = piece.top(2)
            what = "is not a digit" if piece.verdict == NOT_A_DIGIT else f"could be {first} or {second}"
            return NumberReading(None, digits, f"the piece at x={x}, y={y} ({w}x{h} px) {what}")
        return NumberReading("".join(str(d.digit) for d in digits), digits)

    def _read_prepared(self, prepared: list[Preprocessed]) -> list[Reading]:
        inputs = [p.image for p in prepared if p.image is not None]
        probabilities = iter(self.probabilities(np.stack(inputs)) if inputs else [])
        readings = []
        for p in prepared:
            if p.image is None:
                readings.append(Reading(None, reason=p.reason))
                continue
            probs = calibrated(next(probabilities), self.calibration.temperature)
            closest = int(np.argmax(probs))
            kind = verdict(probs, self.calibration.threshold)
            readings.append(Reading(closest if kind == DIGIT else None, float(probs[closest]),
                                    tuple(float(v) for v in probs), None if kind == DIGIT else refusal_reason(kind, probs),
                                    p.image, p.box, kind, closest))
        return readings
