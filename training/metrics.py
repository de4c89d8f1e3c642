"""How well a model reads an evaluation set: the one place its figures are computed.

Training (training.train) and the evaluate command (training.evaluate) both call
`evaluate`, with the model passed in as a function from (N, 28, 28) images to
(N, 10) probabilities: a Keras model while training, the LiteRT recognizer after.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from model.card import Metrics
from model.constants import INPUT_SIZE, NUM_CLASSES
from training.data import Split

Probabilities = Callable[[np.ndarray], np.ndarray]
BATCH = 1024


def _batches(data, batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(images, labels) batches of a Split in memory or of a tf.data stream of (image, label)."""
    if isinstance(data, Split):
        for start in range(0, len(data), batch_size):
            yield data.x[start : start + batch_size], data.y[start : start + batch_size]
    else:
        for images, labels in data.batch(batch_size).as_numpy_iterator():
            yield images.reshape(-1, INPUT_SIZE, INPUT_SIZE), labels


def outputs(probabilities: Probabilities, data, batch_size: int = BATCH) -> tuple[np.ndarray, np.ndarray]:
    """The labels of an evaluation set and the model's probabilities for it."""
    labels, predicted = [], []
    for images, batch_labels in _batches(data, batch_size):
        labels.append(np.asarray(batch_labels))
        predicted.append(np.asarray(probabilities(images)))
    if not labels:
        return np.zeros(0, np.int64), np.zeros((0, NUM_CLASSES), np.float32)
    return np.concatenate(labels), np.concatenate(predicted)


def summarize(labels: np.ndarray, probabilities: np.ndarray) -> Metrics:
    """Accuracy, mean loss, error count and confusion matrix of one set's answers."""
    from sklearn.metrics import confusion_matrix

    predicted = probabilities.argmax(axis=1)
    losses = -np.log(np.clip(probabilities[np.arange(len(labels)), labels], 1e-12, 1.0))
    return Metrics(accuracy=float((predicted == labels).mean()), loss=float(losses.mean()),
                   errors=int((predicted != labels).sum()), count=len(labels),
                   confident_errors=float(((predicted != labels) & (probabilities.max(axis=1) >= 0.9)).mean()),
                   confusion_matrix=confusion_matrix(labels, predicted, labels=list(range(NUM_CLASSES))).tolist())


def evaluate(probabilities: Probabilities, data) -> Metrics:
    """The figures of one evaluation set: a Split in memory or a stream of (image, label)."""
    return summarize(*outputs(probabilities, data))


def evaluate_all(probabilities: Probabilities, sets: dict) -> dict[str, Metrics]:
    """The figures of every non-empty evaluation set, by name."""
    return {name: evaluate(probabilities, data) for name, data in sets.items()
            if not isinstance(data, Split) or len(data)}


def per_class(labels: np.ndarray, predicted: np.ndarray) -> dict[str, dict]:
    """Precision, recall, F1 and support of each digit."""
    from sklearn.metrics import classification_report

    report = classification_report(labels, predicted, labels=list(range(NUM_CLASSES)), digits=4, output_dict=True,
                                   zero_division=0)
    return {str(d): {k: round(float(report[str(d)][k]), 5) for k in ("precision", "recall", "f1-score", "support")}
            for d in range(NUM_CLASSES)}


def report_text(labels: np.ndarray, predicted: np.ndarray) -> str:
    from sklearn.metrics import classification_report

    return classification_report(labels, predicted, labels=list(range(NUM_CLASSES)), digits=4, zero_division=0)
