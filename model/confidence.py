"""What a reading's confidence means, and when the answer is "not sure" or "not a digit".

A low top probability means the input is not one of 0-9 or is ambiguous
between two (a model trained with generated non-digits, --non-digits, pushes
them towards "every digit equally likely", which makes that sharper). The raw
probabilities are calibrated by temperature scaling (Guo et al., 2017),
fitted on held-out data after training: a reading shown at 95% is right
about 95% of the time.

Every model's sidecar records its own temperature and refusal threshold under
"calibration" (written by training.calibrate); a model without that entry
keeps its raw probabilities and the defaults below. Pure numpy: reading
digits stays free of TensorFlow.
"""

from __future__ import annotations

import dataclasses

import numpy as np

# For models whose sidecar has no calibration (trained before it existed): their raw
# probabilities, refused below this top probability.
DEFAULT_THRESHOLD = 0.6
# A refused reading whose two likeliest digits hold this much of the probability is an
# ambiguous digit ("not sure: 4 or 9"); spread wider, it is not a digit at all.
AMBIGUOUS_MASS = 0.85
# Two digits about equally likely are "not sure" even above the threshold: a claim needs its digit this far
# ahead of the runner-up (a Z-shaped 2 read 7 at 55% against 45% was claimed; issue 33). Its cost on real
# digits is measured in docs/reliability.md.
AMBIGUOUS_MARGIN = 0.15
# Shown in the app and in the README: what the percentage means.
MEANING = ("The percentage is calibrated: of all answers shown at 90%, about 90 in 100 are right. "
           "Below the model's threshold the app does not claim a digit: it says it is not sure, or that "
           "the drawing is not a digit, and shows its closest guess.")

DIGIT, NOT_SURE, NOT_A_DIGIT, EMPTY = "digit", "not_sure", "not_a_digit", "empty"
VERDICT_LABELS = {NOT_SURE: "Not sure", NOT_A_DIGIT: "Not a digit"}


@dataclasses.dataclass(frozen=True)
class Calibration:
    temperature: float = 1.0  # raw log-probabilities are divided by this
    threshold: float = DEFAULT_THRESHOLD  # a calibrated top probability below this is refused

    @classmethod
    def from_card(cls, entry: dict | None) -> Calibration:
        """From a model card's calibration record (None for a model trained before calibration)."""
        entry = entry or {}
        return cls(float(entry.get("temperature", 1.0)), float(entry.get("threshold", DEFAULT_THRESHOLD)))


def calibrated(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """Softmax probabilities (..., 10) -> the same after temperature scaling."""
    probabilities = np.asarray(probabilities, np.float64)
    if temperature == 1.0:
        return probabilities
    logits = np.log(np.clip(probabilities, 1e-30, 1.0)) / temperature
    logits -= logits.max(axis=-1, keepdims=True)
    scaled = np.exp(logits)
    return scaled / scaled.sum(axis=-1, keepdims=True)


def verdict(probabilities: np.ndarray, threshold: float, margin: float = AMBIGUOUS_MARGIN) -> str:
    """DIGIT, NOT_SURE or NOT_A_DIGIT for one reading's calibrated probabilities (`margin`: to weigh another
    "not sure" margin, bench/candidates.py)."""
    ordered = np.sort(probabilities)[::-1]
    if ordered[0] >= threshold and ordered[0] - ordered[1] >= margin:
        return DIGIT
    return NOT_SURE if ordered[0] + ordered[1] >= AMBIGUOUS_MASS else NOT_A_DIGIT


def refusal_reason(kind: str, probabilities: np.ndarray) -> str:
    """The sentence a user reads when no digit is claimed, with the figures that made it so."""
    order = np.argsort(probabilities)[::-1]
    first, second = order[0], order[1]
    if kind == NOT_SURE:
        return (f"not sure: it could be {first} or {second} "
                f"({probabilities[first]:.0%} against {probabilities[second]:.0%})")
    return f"not a digit: this does not look like any of 0-9 (the likeliest, {first}, has only {probabilities[first]:.0%})"


CALIBRATION_BINS = 15  # equal-width confidence bins, for the ECE and the reliability diagram


def confidence_bins(confidences: np.ndarray, bins: int = CALIBRATION_BINS) -> np.ndarray:
    """Which of `bins` equal-width bins over [0, 1] each confidence falls in."""
    return np.clip(np.digitize(confidences, np.linspace(0.0, 1.0, bins + 1)[1:-1]), 0, bins - 1)


def expected_calibration_error(confidences: np.ndarray, correct: np.ndarray, bins: int = CALIBRATION_BINS) -> float:
    """ECE: the gap between confidence and accuracy, averaged over equal-width confidence bins."""
    confidences, correct = np.asarray(confidences, np.float64), np.asarray(correct, np.float64)
    which = confidence_bins(confidences, bins)
    total = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            total += inside.mean() * abs(confidences[inside].mean() - correct[inside].mean())
    return float(total)
