"""Train the CNN from a TrainConfig and write the model with its sidecar."""

from __future__ import annotations

import contextlib
import dataclasses
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
from training.calibrate import calibrate, held_out_sets  # noqa: E402
from training.config import TrainConfig  # noqa: E402
from training.corrections import default_store_path  # noqa: E402
from training.data import Dataset, Split, load_datasets  # noqa: E402
from training.distribute import (WorkerLostError, backup_callback, backup_dir_for,  # noqa: E402
                                  is_chief, make_strategy, prepare_backup, replicas, scaled_learning_rate,
                                  sharded_options)
from training.feedback import load_corrections, mix, replay_subset  # noqa: E402
from training.glyphs import NON_DIGIT_LABEL, generated_digits, generated_non_digits  # noqa: E402
from training.progress import ProgressFile  # noqa: E402
from training.reports import plot_curves  # noqa: E402
from training.shards import ShardError, ShardSet  # noqa: E402

log = logging.getLogger(__name__)

GENERATED_PER_TRAINING_SET = 55_000  # --generated-digits and --non-digits are counts for this many real images


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


def _tf_pipeline(source, config: TrainConfig, augmenter=None, shuffle: bool = False,
                 weights: np.ndarray | None = None, batch_size: int | None = None):
    """Batches of (float32 image, label[, weight]) from a Split in memory or a stream of examples.

    `batch_size` is the global batch (all replicas); the input is sharded by element (DATA), so
    every worker must shuffle with the same seed, which it does.
    """
    if isinstance(source, Split):
        arrays = (source.x[..., None], source.y) if weights is None else (source.x[..., None], source.y, weights)
        data, buffer = tf.data.Dataset.from_tensor_slices(arrays), len(source)
    else:  # streamed: a buffer, not the whole set, is shuffled
        data, buffer = source, config.shuffle_buffer
    if shuffle:
        data = data.shuffle(buffer, seed=config.seed, reshuffle_each_iteration=True)
    data = data.batch(batch_size or config.batch_size)
    data = data.map(lambda x, y, *rest: (tf.cast(x, tf.float32), training_targets(y), *rest),
                    num_parallel_calls=tf.data.AUTOTUNE)
    if augmenter is not None:
        data = data.map(lambda x, *rest: (augmenter(x, training=True), *rest), num_parallel_calls=tf.data.AUTOTUNE)
    return data.prefetch(tf.data.AUTOTUNE).with_options(sharded_options(tf))


def training_targets(labels):
    """Labels -> the distributions the model learns: one-hot for a digit, uniform for NON_DIGIT_LABEL.

    Outlier exposure (Hendrycks et al., 2019): a non-digit teaches "no digit is likelier than
    another", so the model's top probability stays low on things that are not digits.
    """
    labels = tf.cast(labels, tf.int32)
    one_hot = tf.one_hot(tf.minimum(labels, NUM_CLASSES - 1), NUM_CLASSES)
    uniform = tf.fill(tf.shape(one_hot), 1.0 / NUM_CLASSES)
    return tf.where((labels == NON_DIGIT_LABEL)[:, None], uniform, one_hot)


def with_generated(train: Split, config: TrainConfig) -> Split:
    """The training split plus generated styled digits and non-digits (training.glyphs), seeded.

    The configured counts are for a training set of MNIST's size; a smaller one (a fine-tune's
    replay, a test's toy data) gets proportionally fewer, and --limit caps them for smoke runs."""
    share = min(1.0, len(train) / GENERATED_PER_TRAINING_SET)
    counts = [round(count * share) for count in (config.generated_digits, config.non_digits)]
    if config.limit is not None:
        counts = [min(count, config.limit) for count in counts]
    rng = np.random.default_rng(config.seed)
    digits, digit_labels = generated_digits(counts[0], rng)
    others = generated_non_digits(counts[1], rng, (train.x, train.y))
    x = np.concatenate([train.x, digits.reshape(-1, INPUT_SIZE, INPUT_SIZE), others.reshape(-1, INPUT_SIZE, INPUT_SIZE)])
    y = np.concatenate([train.y, digit_labels, np.full(len(others), NON_DIGIT_LABEL, np.uint8)])
    log.info("Generated %d styled digits and %d non-digits", counts[0], counts[1])
    return Split(x, y)


def _peak_learning_rate(config: TrainConfig, replica_count: int) -> float:
    """The configured rate, raised with the number of replicas (--lr-scaling)."""
    rate = config.fine_tune_learning_rate if config.fine_tune else config.learning_rate
    return scaled_learning_rate(rate, replica_count, config.lr_scaling)


def _learning_rate(config: TrainConfig, steps_per_epoch: int, replica_count: int = 1):
    """The schedule, in steps of the global batch, peaking at _peak_learning_rate."""
    peak = _peak_learning_rate(config, replica_count)
    if config.fine_tune:  # small steps from a trained model: no warm-up, decaying to a tenth
        return keras.optimizers.schedules.CosineDecay(
            peak, decay_steps=config.fine_tune_epochs * steps_per_epoch, alpha=0.1)
    total = config.epochs * steps_per_epoch
    warmup = min(config.warmup_epochs * steps_per_epoch, total // 2)
    if config.lr_schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(
            peak / 10, decay_steps=max(1, total - warmup), alpha=0.01, warmup_target=peak, warmup_steps=warmup)
    if config.lr_schedule == "exponential":
        return keras.optimizers.schedules.ExponentialDecay(peak, steps_per_epoch, decay_rate=0.9)
    return peak


class EpochTimer(keras.callbacks.Callback):
    """Records each epoch's wall time."""

    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def _scores(labels: np.ndarray, predicted: np.ndarray, losses: np.ndarray) -> dict:
    from sklearn.metrics import confusion_matrix

    return {"accuracy": float((predicted == labels).mean()), "loss": float(losses.mean()),
            "errors": int((predicted != labels).sum()), "count": len(labels),
            "confusion_matrix": confusion_matrix(labels, predicted, labels=list(range(NUM_CLASSES))).tolist()}


def evaluate_split(model, split: Split, batch_size: int = 1024) -> dict:
    probabilities = model.predict(split.x[..., None].astype(np.float32), batch_size=batch_size, verbose=0)
    losses = -np.log(np.clip(probabilities[np.arange(len(split)), split.y], 1e-12, 1.0))
    return _scores(split.y, probabilities.argmax(axis=1), losses)


def evaluate_stream(model, examples, batch_size: int = 1024) -> dict:
    """Like evaluate_split, for a tf.data stream of (image, label): only labels and answers are kept."""
    labels, predicted, losses = [], [], []
    for x, y in examples.batch(batch_size).as_numpy_iterator():
        probabilities = np.asarray(model.predict_on_batch(x.astype(np.float32)))
        labels.append(y)
        predicted.append(probabilities.argmax(axis=1))
        losses.append(-np.log(np.clip(probabilities[np.arange(len(y)), y], 1e-12, 1.0)))
    return _scores(*(np.concatenate(part) for part in (labels, predicted, losses)))


def _probabilities(model, images: np.ndarray) -> np.ndarray:
    return model.predict(images[..., None].astype(np.float32), batch_size=1024, verbose=0)


def _arrays(data) -> tuple[np.ndarray, np.ndarray]:
    """A Split's arrays, or a stream of (image, label) gathered into arrays (a validation set is small)."""
    if isinstance(data, Split):
        return data.x, data.y
    pairs = list(data.as_numpy_iterator())
    return np.stack([x for x, _ in pairs]).reshape(-1, INPUT_SIZE, INPUT_SIZE), np.array([y for _, y in pairs])


def evaluate(model, data) -> dict:
    """Metrics of one evaluation set: a Split in memory or a stream of examples."""
    return evaluate_split(model, data) if isinstance(data, Split) else evaluate_stream(model, data)


def evaluate_all(model, splits: dict) -> dict:
    return {name: evaluate(model, data) for name, data in splits.items()
            if not isinstance(data, Split) or len(data)}


def _base_model(config: TrainConfig) -> tuple[str, Path]:
    """The model to fine-tune or compare with: --base-model, else the active one in the registry."""
    if config.base_model is not None:
        return read_sidecar(config.base_model).get("version", str(config.base_model)), Path(config.base_model)
    active = Registry().active()
    return active.version, active.path


@dataclasses.dataclass(frozen=True)
class TrainingInputs:
    """What training reads: Splits in memory, or streams of (image, label) from shards."""

    train: object  # Split | tf.data.Dataset
    train_count: int
    validation: object
    validation_count: int
    evaluation: dict  # name -> Split | tf.data.Dataset
    datasets: list[dict]  # what each dataset is and where it came from
    weights: np.ndarray | None = None
    feedback: dict | None = None


def _training_data(config: TrainConfig, datasets: list[Dataset]) -> TrainingInputs:
    """Training, validation and evaluation splits, with the corrections mixed in when asked."""
    train_split, validation, tests = make_datasets(datasets, config)
    evaluation = {("test_mnist" if name == "mnist" else f"test_{name}"): split for name, split in tests.items()}
    if config.fine_tune:
        train_split = replay_subset(train_split, config.replay, config.seed)
    train_split = with_generated(train_split, config)
    weights, feedback = None, None
    if config.feedback:
        corrections, held, samples = load_corrections(config.corrections, config.feedback_holdout, config.seed)
        train_split, weights = mix(train_split, corrections, config.feedback_mode, config.feedback_factor)
        evaluation["feedback_holdout"] = held
        feedback = {"store": str(config.corrections or default_store_path()), "stored": len(samples),
                    "train": len(corrections), "holdout": len(held), "mode": config.feedback_mode,
                    "factor": config.feedback_factor}
    return TrainingInputs(train_split, len(train_split), validation, len(validation), evaluation,
                          [d.describe() for d in datasets], weights, feedback)


def _streamed_data(config: TrainConfig) -> TrainingInputs:
    """The same from TFRecord shards: nothing is loaded whole, --limit takes the first images."""
    shards = ShardSet.open(config.shards)

    def limited(data):
        return data.take(config.limit) if config.limit else data

    def count(split):
        return min(shards.count(split), config.limit or shards.count(split))

    train_data, train_count = limited(shards.dataset("train")), count("train")
    validation, validation_count = limited(shards.dataset("validation", interleave=False)), count("validation")
    evaluation = {("test_mnist" if name == "mnist" else f"test_{name}"): limited(
        shards.dataset("test", name, interleave=False)) for name in shards.names if shards.count("test", name)}
    if not train_count or not validation_count:
        raise ShardError(f"{config.shards} has no training or no validation images: write the shards again.")
    return TrainingInputs(train_data, train_count, validation, validation_count, evaluation, shards.describe())


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


def _fingerprint(config: TrainConfig, replica_count: int) -> dict:
    """What a backup must have been made with to be resumed: everything that shapes the training."""
    ignored = {"output", "progress_file", "register", "backup_dir", "data_dir", "cache_dir"}
    return {"replicas": replica_count, **{k: v for k, v in config.to_json().items() if k not in ignored}}


def _local_copy(model):
    """The trained weights in a model outside the strategy: evaluating and saving it needs no other worker."""
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    copy.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return copy


# A peer that dies makes the collectives of the others fail with one of these.
_PEER_LOST = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.CancelledError,
              tf.errors.AbortedError)


def train(config: TrainConfig, extra_callbacks=(), datasets: list[Dataset] | None = None, strategy=None) -> dict:
    """Train (or fine-tune), evaluate and save atomically. Returns the sidecar that was written.

    Under --strategy multiworker every worker calls this; only the chief evaluates and writes,
    the others return {"chief": False, ...}. `strategy`: made by make_strategy(config.strategy) before
    TensorFlow started (the command line does so); made here if not given.
    """
    started = time.perf_counter()
    if strategy is None:
        strategy = make_strategy(config.strategy, config.cpu_devices)
    chief, replica_count = is_chief(strategy), replicas(strategy)
    global_batch = config.batch_size * replica_count
    keras.utils.set_random_seed(config.seed)
    if config.shards is not None:
        inputs = _streamed_data(config)
    else:
        if datasets is None:
            datasets = load_datasets(config.data, config.data_dir, config.cache_dir)
        inputs = _training_data(config, datasets)
    data_seconds = time.perf_counter() - started
    feedback = inputs.feedback
    log.info("Training on %d images (%s), validating on %d; %d replica(s), global batch %d%s",
             inputs.train_count, f"{feedback['train']} corrections x{config.feedback_factor}" if feedback
             else "no corrections", inputs.validation_count, replica_count, global_batch,
             "" if chief else "; this worker is not the chief and writes nothing")

    extra = {}
    base_version, base_path = _base_model(config) if config.fine_tune or config.feedback else (None, None)
    if chief and base_path is not None:
        extra["metrics_before"] = {"version": base_version, **evaluate_all(load_model(base_path), inputs.evaluation)}
        log.info("Before (%s): %s", base_version,
                 {k: round(v["accuracy"], 5) for k, v in extra["metrics_before"].items() if k != "version"})
    steps = int(np.ceil(inputs.train_count / global_batch))
    with strategy.scope():  # variables, optimizer slots and metrics live on every replica
        if config.fine_tune:
            model = load_model(base_path)
            extra["fine_tuned_from"] = base_version
            extra["architecture"] = read_sidecar(base_path).get("architecture", "?")
        else:
            with _precision(config.mixed_precision):
                model = build_model(config.architecture)
        model.compile(optimizer=keras.optimizers.Adam(_learning_rate(config, steps, replica_count)),
                      loss="categorical_crossentropy", metrics=["accuracy"])  # targets: training_targets()
    if feedback:
        extra["feedback"] = feedback

    augmenter = build_augmenter(config.rotation_degrees, config.shift, config.zoom, config.stroke, config.seed,
                                elastic=config.elastic, blur=config.blur, aspect=config.aspect)
    train_data = _tf_pipeline(inputs.train, config, augmenter, shuffle=True, weights=inputs.weights,
                              batch_size=global_batch)
    validation_data = _tf_pipeline(inputs.validation, config, batch_size=global_batch)

    output = Path(config.output)
    backup = backup_callback(prepare_backup(backup_dir_for(output, config.backup_dir),
                                            _fingerprint(config, replica_count), chief), chief,
                             cluster_strategy=strategy if config.strategy == "multiworker" else None)
    timer = EpochTimer()
    callbacks = [backup, timer, *extra_callbacks]
    if not config.fine_tune:  # a fine-tune keeps its last weights: the validation set has no corrections to judge by
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience,
                                                       restore_best_weights=True, verbose=1))
    if config.progress_file and chief:
        callbacks.append(ProgressFile(config.progress_file))
    try:
        history = model.fit(train_data, validation_data=validation_data,
                            epochs=config.fine_tune_epochs if config.fine_tune else config.epochs,
                            callbacks=callbacks, shuffle=False,  # the pipeline shuffles
                            verbose=2 if os.environ.get("CI") else 1)
    except _PEER_LOST as error:
        if config.strategy != "multiworker":
            raise
        raise WorkerLostError(
            f"Another worker of the cluster stopped responding ({type(error).__name__}), so this one stops too. "
            f"Restart the workers that stopped (a cluster manager does it for you): they resume from the last "
            f"backup in {backup.backup_dir}.") from None
    train_seconds = time.perf_counter() - started - data_seconds
    distribution = {"strategy": config.strategy, "replicas": replica_count, "global_batch_size": global_batch,
                    "peak_learning_rate": _peak_learning_rate(config, replica_count),
                    "resumed_at_epoch": backup.resumed_epoch + 1 if backup.resumed_epoch else None}
    if not chief:
        return {"chief": False, "epochs_run": len(timer.seconds), "distribution": distribution}
    extra["distribution"] = distribution
    history = backup.full_history or history.history  # all epochs, also those before a restart
    if config.strategy != "none":
        model = _local_copy(model)

    output.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{output.stem}-run-", dir=output.parent))
    try:
        metrics = {"validation": evaluate(model, inputs.validation),
                   **evaluate_all(model, inputs.evaluation)}
        if "test_mnist" in metrics and len(inputs.datasets) > 1:
            metrics["test_mnist"]["note"] = ("trained with EMNIST, which shares NIST writers with MNIST: "
                                             "the MNIST test figure may be optimistic")
        diagram = work / companion_path(output, "reliability.png").name
        extra["calibration"] = calibrate(lambda x: _probabilities(model, x),
                                         held_out_sets(*_arrays(inputs.validation), config.seed), diagram)
        sidecar = _save(model, output, work, config, inputs, history, timer.seconds, train_seconds,
                        data_seconds, metrics, extra)
        os.replace(diagram, companion_path(output, "reliability.png"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    plot_curves(history, companion_path(output, "curves.png"))
    log.info("Saved %s: %s", output, {k: round(v["accuracy"], 5) for k, v in metrics.items()})
    if config.register:
        log.info("Registered as version %s (not active)", Registry().add(output).version)
    return sidecar


def _save(model, output: Path, work: Path, config: TrainConfig, inputs: TrainingInputs, history: dict,
          epoch_seconds: list[float], train_seconds: float, data_seconds: float, metrics: dict, extra: dict) -> dict:
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
            "datasets": inputs.datasets,
            "train": inputs.train_count,
            "validation": inputs.validation_count,
        },
        "config": config.to_json(),
        "epochs_run": len(history["loss"]),
        "best_epoch": int(np.argmin(history["val_loss"])) + 1,
        "training_seconds": round(train_seconds, 1),
        "data_loading_seconds": round(data_seconds, 1),
        "epoch_seconds_median": round(float(np.median(epoch_seconds)), 2) if epoch_seconds else None,
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
