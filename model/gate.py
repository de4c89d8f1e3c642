"""The gate: a second small network beside the reader that says whether an input is a digit at all.

One small network could not both read MNIST at 99.7% and refuse most things that are not digits (issue 14).
So the reader says which digit, and the gate, trained with generated non-digits taught as "no digit is
likely" (outlier exposure: `python -m training --non-digits 20000 ...`, docs/reliability.md), says whether
to believe there is one. Its score, the **digit-likeness**, is its calibrated top probability; below the
threshold its own card records (training.calibrate) the verdict is "not a digit", whatever the reader says.

The gate ships beside the reader as its own model set: ``digits.keras`` has ``digits.gate.keras`` with its
card (``digits.gate.json``) and LiteRT export (``digits.gate.tflite``). A model without one reads as
before, with the reader alone. Pure numpy and LiteRT: no TensorFlow to read.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from model.artifacts import companion_path
from model.confidence import Calibration, calibrated
from model.loading import open_fast_path

GATE_KIND = "gate.keras"  # digits.keras -> digits.gate.keras


def gate_path(reader_path: Path) -> Path:
    """Where a reader's gate lives, if it has one."""
    return companion_path(reader_path, GATE_KIND)


class Gate:
    """A loaded gate: digit-likeness scores for a batch of model inputs, and the threshold it refuses below."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.card, self._forward, _ = open_fast_path(self.path)
        self.calibration = Calibration.from_card(self.card.calibration)

    @classmethod
    def beside(cls, reader_path: Path) -> Gate | None:
        """The reader's gate, or None when it has none (the reader alone decides, as before gates)."""
        path = gate_path(reader_path)
        return cls(path) if path.exists() else None

    @property
    def threshold(self) -> float:
        return self.calibration.threshold

    def likeness(self, batch: np.ndarray) -> np.ndarray:
        """(N, 28, 28, 1) float32 model inputs -> (N,) digit-likeness in [0, 1]."""
        return calibrated(self._forward(batch), self.calibration.temperature).max(axis=-1)

    def admits(self, likeness: float) -> bool:
        return likeness >= self.threshold


def gate_reason(likeness: float, threshold: float) -> str:
    return (f"not a digit: it does not look like a handwritten digit (digit-likeness {likeness:.0%}; "
            f"a digit scores at least {threshold:.0%})")
