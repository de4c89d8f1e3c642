"""Figures for humans: training curves, confusion matrices, worst mistakes."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _save(figure, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    figure.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(figure)
    tmp.replace(path)


def plot_curves(history: dict, path: Path) -> None:
    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(10, 4))
    epochs = np.arange(1, len(history["loss"]) + 1)
    for key, style in (("loss", "-"), ("val_loss", "--")):
        loss_axis.plot(epochs, history[key], style, label=key)
    for key, style in (("accuracy", "-"), ("val_accuracy", "--")):
        accuracy_axis.plot(epochs, history[key], style, label=key)
    loss_axis.set(xlabel="epoch", ylabel="loss", yscale="log", title="Loss")
    accuracy_axis.set(xlabel="epoch", ylabel="accuracy", title="Accuracy")
    for axis in (loss_axis, accuracy_axis):
        axis.grid(alpha=0.3)
        axis.legend()
    _save(figure, path)


def plot_confusion(matrix: np.ndarray, path: Path, title: str = "Confusion matrix") -> None:
    from sklearn.metrics import ConfusionMatrixDisplay

    figure, axis = plt.subplots(figsize=(7, 6))
    ConfusionMatrixDisplay(matrix, display_labels=list(range(10))).plot(ax=axis, cmap="Blues", colorbar=False,
                                                                        values_format="d")
    axis.set_title(title)
    _save(figure, path)


def plot_worst(images: np.ndarray, labels: np.ndarray, predicted: np.ndarray, confidence: np.ndarray,
               path: Path, columns: int = 8) -> None:
    """A grid of misclassified images, most confident mistakes first."""
    count = len(images)
    rows = max(1, int(np.ceil(count / columns)))
    figure, axes = plt.subplots(rows, columns, figsize=(columns * 1.4, rows * 1.6))
    for index, axis in enumerate(np.atleast_1d(axes).ravel()):
        axis.axis("off")
        if index < count:
            axis.imshow(images[index], cmap="gray", vmin=0, vmax=255)
            axis.set_title(f"{labels[index]}→{predicted[index]} {confidence[index]:.2f}", fontsize=8)
    figure.suptitle("Worst mistakes: true→predicted confidence")
    _save(figure, path)
