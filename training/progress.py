"""Training progress: a small JSON file another process can show, and each epoch's time.

The app runs training in a worker process and reads this file to draw the
progress bar and curves; a reloaded page or another session reads the same.
"""

from __future__ import annotations

import time
from pathlib import Path

import keras

from model.artifacts import atomic_write_json

CURVES = ("loss", "accuracy", "val_loss", "val_accuracy")


class ProgressFile(keras.callbacks.Callback):
    """Writes epoch, batch, latest loss/accuracy and per-epoch curves, at most every `interval` s."""

    def __init__(self, path: Path, interval: float = 0.5):
        super().__init__()
        self.path = Path(path)
        self.interval = interval
        self._last_write = 0.0
        self.state: dict = {}

    def _write(self, force: bool = False) -> None:
        now = time.time()
        if force or now - self._last_write >= self.interval:
            self.state["updated"] = now
            atomic_write_json(self.path, self.state)
            self._last_write = now

    def on_train_begin(self, logs=None):
        self.state = {"status": "training", "epoch": 0, "epochs": self.params.get("epochs"),
                      "batch": 0, "steps": self.params.get("steps"), "logs": {},
                      "history": {key: [] for key in CURVES}, "started": time.time()}
        self._write(force=True)

    def on_epoch_begin(self, epoch, logs=None):
        self.state.update(epoch=epoch + 1, batch=0)
        self._write(force=True)

    def on_train_batch_end(self, batch, logs=None):
        self.state["batch"] = batch + 1
        self.state["logs"] = {k: float(v) for k, v in (logs or {}).items() if k in CURVES}
        self._write()

    def on_epoch_end(self, epoch, logs=None):
        for key in CURVES:
            if logs and key in logs:
                self.state["history"][key].append(float(logs[key]))
        self._write(force=True)

    def on_train_end(self, logs=None):
        self.state["status"] = "evaluating"
        self._write(force=True)


class EpochTimer(keras.callbacks.Callback):
    """Records each epoch's wall time."""

    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)
