"""Train the CNN from a TrainConfig and write the model with its sidecar."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from model.tf_runtime import tensorflow

tf = tensorflow()  # before Keras, so that TensorFlow starts quietly
import keras  # noqa: E402

from model.architectures import build_model  # noqa: E402
from model.artifacts import (atomic_write_bytes, atomic_write_json, companion_path, file_sha256,  # noqa: E402
                             load_model, read_sidecar, sidecar_path)
from model.constants import INPUT_SIZE, NUM_CLASSES  # noqa: E402
from model.lite import convert  # noqa: E402
from model.registry import Registry  # noqa: E402
from training.augment import build_augmenter  # noqa: E402
from training.config import TrainConfig  # noqa: E402
from training.corrections import default_store_path  # noqa: E402
from training.data import Dataset, Split, load_datasets  # noqa: E402
from training.feedback import load_corrections, mix, replay_subset  # noqa: E402
from training.progress import ProgressFile  # noqa: E402
from training.reports import plot_curves  # noqa: E402

log = logging.getLogger(__name__)


def library_versions() -> dict:
    import cv2

    return {"python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__,
            "numpy": np.__version__, "opencv": cv2.__version__}


def split_validation(train: Split, size: int, seed: int) -> tuple[Split, Split]:
    """Hold out `size` training images (a seeded random choice) for early stopping."""
    order = np.random.default_rng(seed).permutation(len(train))
    size = min(size, len(train) // 5)
    held, kept = order[:size], order[size:]
    return Split(train.x[kept], train.y[kept]), Split(train.x[held], train.y[held])


def _limit(split: Split, limit: int | None) -> Split:
    return split if limit is None else Split(split.x[:limit], split.y[:limit])


def make_datasets(datasets: list[Dataset], config: TrainConfig):
    """Combine the datasets, hold out validation data, limit for smoke runs."""
    train = Split(np.concatenate([d.train.x for d in datasets]), np.concatenate([d.train.y for d in datasets]))
    train, validation = split_validation(train, config.validation_size, config.seed)
    tests = {d.name: _limit(d.test, config.limit) for d in datasets}
    return _limit(train, config.limit), _limit(validation, config.limit), tests


def _tf_pipeline(split: Split, config: TrainConfig, augmenter=None, shuffle: bool = False,
                 weights: np.ndarray | None = None):
    arrays = (split.x[..., None], split.y) if weights is None else (split.x[..., None], split.y, weights)
    data = tf.data.Dataset.from_tensor_slices(arrays)
    if shuffle:
        data = data.shuffle(len(split), seed=config.seed, reshuffle_each_iteration=True)
    data = data.batch(config.batch_size)
    data = data.map(lambda x, *rest: (tf.cast(x, tf.float32), *rest), num_parallel_calls=tf.data.AUTOTUNE)
    if augmenter is not None:
        data = data.map(lambda x, *rest: (augmenter(x, training=True), *rest), num_parallel_calls=tf.data.AUTOTUNE)
    return data.prefetch(tf.data.AUTOTUNE)


def _learning_rate(config: TrainConfig, steps_per_epoch: int):
    if config.fine_tune:  # small steps from a trained model: no warm-up, decaying to a tenth
        return keras.optimizers.schedules.CosineDecay(
            config.fine_tune_learning_rate, decay_steps=config.fine_tune_epochs * steps_per_epoch, alpha=0.1)
    total = config.epochs * steps_per_epoch
    warmup = min(config.warmup_epochs * steps_per_epoch, total // 2)
    if config.lr_schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(
            config.learning_rate / 10, decay_steps=max(1, total - warmup), alpha=0.01,
            warmup_target=config.learning_rate, warmup_steps=warmup)
    if config.lr_schedule == "exponential":
        return keras.optimizers.schedules.ExponentialDecay(config.learning_rate, steps_per_epoch, decay_rate=0.9)
    return config.learning_rate


class EpochTimer(keras.callbacks.Callback):
    """Records each epoch's wall time."""

    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def evaluate_split(model, split: Split, batch_size: int = 1024) -> dict:
    from sklearn.metrics import confusion_matrix

    probabilities = model.predict(split.x[..., None].astype(np.float32), batch_size=batch_size, verbose=0)
    predicted = probabilities.argmax(axis=1)
    losses = -np.log(np.clip(probabilities[np.arange(len(split)), split.y], 1e-12, 1.0))
    return {"accuracy": float((predicted == split.y).mean()), "loss": float(losses.mean()),
            "errors": int((predicted != split.y).sum()), "count": len(split),
            "confusion_matrix": confusion_matrix(split.y, predicted, labels=list(range(NUM_CLASSES))).tolist()}


def evaluate_all(model, splits: dict[str, Split]) -> dict:
    return {name: evaluate_split(model, split) for name, split in splits.items() if len(split)}


def _base_model(config: TrainConfig) -> tuple[str, Path]:
    """The model to fine-tune or compare with: --base-model, else the active one in the registry."""
    if config.base_model is not None:
        return read_sidecar(config.base_model).get("version", str(config.base_model)), Path(config.base_model)
    active = Registry().active()
    return active.version, active.path


def _training_data(config: TrainConfig, datasets: list[Dataset]):
    """Training, validation and evaluation splits, with the corrections mixed in when asked."""
    train_split, validation, tests = make_datasets(datasets, config)
    evaluation = {("test_mnist" if name == "mnist" else f"test_{name}"): split for name, split in tests.items()}
    if config.fine_tune:
        train_split = replay_subset(train_split, config.replay, config.seed)
    weights, feedback = None, None
    if config.feedback:
        corrections, held, samples = load_corrections(config.corrections, config.feedback_holdout, config.seed)
        train_split, weights = mix(train_split, corrections, config.feedback_mode, config.feedback_factor)
        evaluation["feedback_holdout"] = held
        feedback = {"store": str(config.corrections or default_store_path()), "stored": len(samples),
                    "train": len(corrections), "holdout": len(held), "mode": config.feedback_mode,
                    "factor": config.feedback_factor}
    return train_split, weights, validation, evaluation, feedback


def cpu_has_bfloat16() -> bool:
    """Whether the CPU computes in bfloat16 natively (AVX-512 BF16 or AMX); elsewhere it is emulated, and slow."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


@contextlib.contextmanager
def _precision(mixed: bool):
    """Layers built inside compute in bfloat16 (weights stay float32), if asked; the policy is restored after.

    Only the model is built this way: the augmentation layers run in tf.data and stay float32."""
    previous = keras.mixed_precision.global_policy()
    if mixed:
        if not cpu_has_bfloat16():
            log.warning("This CPU has no native bfloat16 (AVX-512 BF16 or AMX): mixed precision will be emulated "
                        "and probably slower than float32. Drop --mixed-precision unless a GPU does the work.")
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def train(config: TrainConfig, extra_callbacks=(), datasets: list[Dataset] | None = None) -> dict:
    """Train (or fine-tune), evaluate and save atomically. Returns the sidecar that was written."""
    started = time.perf_counter()
    keras.utils.set_random_seed(config.seed)
    if datasets is None:
        datasets = load_datasets(config.data, config.data_dir, config.cache_dir)
    train_split, weights, validation, evaluation, feedback = _training_data(config, datasets)
    data_seconds = time.perf_counter() - started
    log.info("Training on %d images (%s), validating on %d; evaluating on %s", len(train_split),
             f"{feedback['train']} corrections x{config.feedback_factor}" if feedback else "no corrections",
             len(validation), {name: len(split) for name, split in evaluation.items()})

    extra = {}
    if config.fine_tune or config.feedback:
        base_version, base_path = _base_model(config)
        base = load_model(base_path)
        extra["metrics_before"] = {"version": base_version, **evaluate_all(base, evaluation)}
        log.info("Before (%s): %s", base_version,
                 {k: round(v["accuracy"], 5) for k, v in extra["metrics_before"].items() if k != "version"})
    if config.fine_tune:
        model = base
        extra["fine_tuned_from"] = base_version
        extra["architecture"] = read_sidecar(base_path).get("architecture", "?")
    else:
        with _precision(config.mixed_precision):
            model = build_model(config.architecture)
    if feedback:
        extra["feedback"] = feedback

    augmenter = build_augmenter(config.rotation_degrees, config.shift, config.zoom, config.stroke, config.seed,
                                elastic=config.elastic, blur=config.blur)
    train_data = _tf_pipeline(train_split, config, augmenter, shuffle=True, weights=weights)
    validation_data = _tf_pipeline(validation, config)
    steps = int(np.ceil(len(train_split) / config.batch_size))
    model.compile(optimizer=keras.optimizers.Adam(_learning_rate(config, steps)),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])

    output = Path(config.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{output.stem}-run-", dir=output.parent))
    timer = EpochTimer()
    callbacks = [
        keras.callbacks.ModelCheckpoint(work / "checkpoint.keras", monitor="val_loss", save_best_only=True),
        timer,
        *extra_callbacks,
    ]
    if not config.fine_tune:  # a fine-tune keeps its last weights: the validation set has no corrections to judge by
        callbacks.insert(0, keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience,
                                                          restore_best_weights=True, verbose=1))
    if config.progress_file:
        callbacks.append(ProgressFile(config.progress_file))
    try:
        history = model.fit(train_data, validation_data=validation_data,
                            epochs=config.fine_tune_epochs if config.fine_tune else config.epochs,
                            callbacks=callbacks, shuffle=False,  # the pipeline shuffles
                            verbose=2 if os.environ.get("CI") else 1)
        train_seconds = time.perf_counter() - started - data_seconds
        metrics = {"validation": evaluate_split(model, validation), **evaluate_all(model, evaluation)}
        if "test_mnist" in metrics and len(datasets) > 1:
            metrics["test_mnist"]["note"] = ("trained with EMNIST, which shares NIST writers with MNIST: "
                                             "the MNIST test figure may be optimistic")
        sidecar = _save(model, output, work, config, datasets, train_split, validation, history.history,
                        timer.seconds, train_seconds, data_seconds, metrics, extra)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    plot_curves(history.history, companion_path(output, "curves.png"))
    log.info("Saved %s: %s", output, {k: round(v["accuracy"], 5) for k, v in metrics.items()})
    if config.register:
        log.info("Registered as version %s (not active)", Registry().add(output).version)
    return sidecar


def _save(model, output: Path, work: Path, config: TrainConfig, datasets, train_split, validation,
          history: dict, epoch_seconds: list[float], train_seconds: float, data_seconds: float,
          metrics: dict, extra: dict) -> dict:
    """Write model, history and sidecar; the model is renamed into place last but one.

    A run that dies before the renames leaves the previous model untouched.
    """
    staged = work / output.name
    model.save(staged)
    lite_export = convert(model)  # the fast path the app and the CLI read with, without TensorFlow
    now = dt.datetime.now(dt.timezone.utc)
    sidecar = {
        "format": 1,
        "version": now.strftime("%Y%m%d-%H%M%S"),
        "created": now.isoformat(timespec="seconds"),
        "architecture": config.architecture,
        "input_shape": [INPUT_SIZE, INPUT_SIZE, 1],
        "parameters": int(model.count_params()),
        "data": {
            "datasets": [d.describe() for d in datasets],
            "train": len(train_split),
            "validation": len(validation),
        },
        "config": config.to_json(),
        "epochs_run": len(epoch_seconds),
        "best_epoch": int(np.argmin(history["val_loss"])) + 1,
        "training_seconds": round(train_seconds, 1),
        "data_loading_seconds": round(data_seconds, 1),
        "epoch_seconds_median": round(float(np.median(epoch_seconds)), 2),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "metrics": metrics,
        "libraries": library_versions(),
        "model_sha256": file_sha256(staged),
        "tflite_sha256": hashlib.sha256(lite_export).hexdigest(),
    }
    sidecar.update(extra)  # fine-tune origin, corrections used, the base model's metrics
    if "feedback" in extra:
        sidecar["data"]["feedback"] = sidecar.pop("feedback")
    history_json = {key: [float(v) for v in values] for key, values in history.items()}
    atomic_write_json(companion_path(output, "history.json"), history_json)
    atomic_write_bytes(companion_path(output, "tflite"), lite_export)
    os.replace(staged, output)
    atomic_write_json(sidecar_path(output), sidecar)
    return sidecar
