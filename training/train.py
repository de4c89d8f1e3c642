"""Train the CNN from a TrainConfig and write the model with its card.

The pipeline, in the order `train` runs it: load the data (`training_inputs`), measure
the base model when fine-tuning, build and compile the model, fit it with the
callbacks (backup, timer, early stopping, progress), then evaluate, calibrate and
save it atomically with its card. TensorFlow starts when `train` runs, not when
this module is imported: the command line sets devices up before that.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import logging
import os
import platform
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from model.architectures import build_model
from model.artifacts import (ModelFileError, atomic_write_bytes, atomic_write_json, companion_path, file_sha256,
                             publish_set, staging_folder)
from model.card import HOLDOUT_SPLIT, TEST_SPLIT, ModelCard
from model.constants import INPUT_SIZE, NUM_CLASSES
from model.lite import convert
from model.loading import load_model
from model.preprocess import deskew_all
from model.registry import new_name
from model.tf_runtime import keras_module, tensorflow
from services.database import database_url, describe
from services.model_store import open_registry
from training import metrics
from training.calibrate import calibrate, held_out_sets, other_writers
from training.config import WITH_WRITERS, TrainConfig
from training.data import DataUnavailableError, Dataset, Split, load_datasets
from training.distribute import (WorkerLostError, backup_callback, backup_dir_for, is_chief, make_strategy,
                                 prepare_backup, replicas, scaled_learning_rate, sharded_options)
from training.feedback import NoCorrectionsError, ReplayError, load_corrections, mix, replay_subset
from training.glyphs import NON_DIGIT_LABEL, generated_digits, generated_non_digits
from training.reports import plot_curves
from training.shards import ShardError, ShardSet
from training.splits import make_datasets
from training.teach_gate import gate_config
from training.weights import blend_with_base

log = logging.getLogger(__name__)

GENERATED_PER_TRAINING_SET = 55_000  # --generated-digits and --non-digits are counts for this many real images


def library_versions() -> dict:
    import cv2

    tf, keras = tensorflow(), keras_module()
    return {"python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__,
            "numpy": np.__version__, "opencv": cv2.__version__}


def _tf_pipeline(source, config: TrainConfig, augmenter=None, shuffle: bool = False,
                 weights: np.ndarray | None = None, batch_size: int | None = None):
    """Batches of (float32 image, label[, weight]) from a Split in memory or a stream of examples.

    `batch_size` is the global batch (all replicas); the input is sharded by element (DATA), so
    every worker must shuffle with the same seed, which it does.
    """
    tf = tensorflow()
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
    tf = tensorflow()
    labels = tf.cast(labels, tf.int32)
    one_hot = tf.one_hot(tf.minimum(labels, NUM_CLASSES - 1), NUM_CLASSES)
    uniform = tf.fill(tf.shape(one_hot), 1.0 / NUM_CLASSES)
    return tf.where((labels == NON_DIGIT_LABEL)[:, None], uniform, one_hot)


def with_generated(train: Split, config: TrainConfig) -> Split:
    """The training split plus generated styled digits and non-digits (training.glyphs), seeded.

    The configured counts are for a training set of MNIST's size; a smaller one (a fine-tune's
    replay, a test's toy data) gets proportionally fewer, and --limit caps them for smoke runs."""
    share = min(1.0, int((train.y < NUM_CLASSES).sum()) / GENERATED_PER_TRAINING_SET)
    counts = [round(count * share) for count in (config.generated_digits, config.non_digits)]
    if config.limit is not None:
        counts = [min(count, config.limit) for count in counts]
    rng = np.random.default_rng(config.seed)
    digits, digit_labels = generated_digits(counts[0], rng)
    digit = train.y < NUM_CLASSES  # the altered-digit kinds are made from digits, never from a real non-digit
    others = generated_non_digits(counts[1], rng, (train.x[digit], train.y[digit]))
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
    keras = keras_module()
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


def keras_probabilities(model):
    """A Keras model as a function from (N, 28, 28) images to probabilities, for training.metrics."""
    return lambda images: np.asarray(model.predict_on_batch(images[..., None].astype(np.float32)))


def _arrays(data) -> tuple[np.ndarray, np.ndarray]:
    """A Split's arrays, or a stream of (image, label) gathered into arrays (a validation set is small)."""
    if isinstance(data, Split):
        return data.x, data.y
    pairs = list(data.as_numpy_iterator())
    return np.stack([x for x, _ in pairs]).reshape(-1, INPUT_SIZE, INPUT_SIZE), np.array([y for _, y in pairs])


def _base_model(config: TrainConfig) -> tuple[str, Path, ModelCard]:
    """The model to fine-tune or compare with: --base-model, else the active one in the registry."""
    if config.base_model is not None:
        card = ModelCard.read(config.base_model)
        return card.version, Path(config.base_model), card
    active = open_registry().active()
    return active.version, active.path, active.card


def _test_set(dataset: str) -> str:
    """The name a dataset's test split is measured under in the card: test_mnist, test_emnist, test_ardis (for
    ARDIS and optdigits, their held-out part)."""
    return TEST_SPLIT if dataset == "mnist" else f"test_{dataset}"


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


def deskewed(split: Split) -> Split:
    """Every image of a split with its slant taken out (--deskew), as the model will read."""
    return Split(deskew_all(split.x), split.y)


def _training_data(config: TrainConfig, datasets: list[Dataset]) -> TrainingInputs:
    """Training, validation and evaluation splits, with the corrections mixed in when asked."""
    train_split, validation, tests = make_datasets(datasets, config)
    evaluation = {_test_set(name): split for name, split in tests.items()}
    if config.fine_tune:
        train_split = replay_subset(train_split, config.replay, config.seed)
    train_split = with_generated(train_split, config)
    if config.deskew:
        train_split, validation = deskewed(train_split), deskewed(validation)
        evaluation = {name: deskewed(split) for name, split in evaluation.items()}
    weights, feedback = None, None
    if config.feedback:
        corrections, held, samples = load_corrections(config.corrections, config.feedback_holdout, config.seed,
                                                      not_a_digit=config.non_digits > 0)
        train_split, weights = mix(train_split, corrections, config.feedback_mode, config.feedback_factor)
        evaluation[HOLDOUT_SPLIT] = held
        feedback = {"store": str(config.corrections or describe(database_url())), "stored": len(samples),
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
    evaluation = {_test_set(name): limited(shards.dataset("test", name, interleave=False))
                  for name in shards.names if shards.count("test", name)}
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
    keras = keras_module()
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
    keras = keras_module()
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    copy.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return copy


def _peer_lost_errors() -> tuple[type[Exception], ...]:
    """What the collectives of the other workers fail with when a peer dies."""
    errors = tensorflow().errors
    return errors.UnavailableError, errors.DeadlineExceededError, errors.CancelledError, errors.AbortedError


class Timings(NamedTuple):
    data_seconds: float
    train_seconds: float
    epoch_seconds: list[float]


def train(config: TrainConfig, extra_callbacks=(), datasets: list[Dataset] | None = None,
          strategy=None) -> ModelCard:
    """Train (or fine-tune), evaluate and save atomically. Returns the card that was written.

    Under --strategy multiworker every worker calls this; only the chief evaluates and writes, the
    others return an unsaved card of what they did (no version). `strategy`: made by
    make_strategy(config.strategy) before TensorFlow started (the command line does so); made here if not given.
    """
    started = time.perf_counter()
    config = config.with_output()
    if Path(config.output).exists():  # before the hours of training, not after
        raise ModelFileError(f"{config.output} already exists: training never writes over a model in place, "
                             "where a reader could see new weights with the old card. Name a new --output "
                             "(or leave it out: a new folder under $DIGITS_DATA_DIR/trained/).")
    if config.fine_tune:  # before loading the data
        _check_replay(config, _base_model(config)[2])
    keras = keras_module()
    strategy = strategy or make_strategy(config.strategy, config.cpu_devices)
    chief, replica_count = is_chief(strategy), replicas(strategy)
    keras.utils.set_random_seed(config.seed)
    inputs = training_inputs(config, datasets)
    data_seconds = time.perf_counter() - started
    log.info("Training on %d images (%s), validating on %d; %d replica(s), global batch %d%s",
             inputs.train_count, f"{inputs.feedback['train']} corrections x{config.feedback_factor}"
             if inputs.feedback else "no corrections", inputs.validation_count, replica_count,
             config.batch_size * replica_count, "" if chief else "; this worker is not the chief and writes nothing")

    base = base_of(config, inputs, chief)
    model = _compiled_model(config, strategy, base, inputs.train_count, replica_count)
    history, epoch_seconds, resumed_epoch = _fit(model, config, inputs, strategy, chief, replica_count,
                                                 extra_callbacks)
    timings = Timings(data_seconds, time.perf_counter() - started - data_seconds, epoch_seconds)
    distribution = {"strategy": config.strategy, "replicas": replica_count,
                    "global_batch_size": config.batch_size * replica_count,
                    "peak_learning_rate": _peak_learning_rate(config, replica_count),
                    "resumed_at_epoch": resumed_epoch + 1 if resumed_epoch else None}
    if not chief:
        return ModelCard(epochs_run=len(epoch_seconds), distribution=distribution)
    if config.strategy != "none":
        model = _local_copy(model)
    if config.blend_base:
        blend_with_base(model, base.path, config.blend_base)
    card = evaluate_and_save(model, config, inputs, history, timings,
                             ModelCard(distribution=distribution, **base.card_fields))
    log.info("Saved %s: %s", config.output, {k: round(m.accuracy, 5) for k, m in card.metrics.items()})
    taught = gate_config(config, base.path) if base.path else None
    if taught is not None:  # users said "not a digit": the gate learns it, and goes beside the new reader
        log.info("Teaching the gate the 'not a digit' corrections: fine-tuning %s", taught.base_model)
        try:
            train(taught, datasets=datasets, strategy=strategy)
        except (DataUnavailableError, NoCorrectionsError, ModelFileError) as error:  # the reader is kept all the same
            log.warning("The gate was not taught (%s); the new reader keeps the active model's gate.", error)
    if config.register:  # a reader without a gate of its own keeps the active model's
        registry = open_registry()
        log.info("Registered as version %s (not active)",
                 registry.add(config.output, gate_from=registry.active().path).version)
    return card


def training_inputs(config: TrainConfig, datasets: list[Dataset] | None = None) -> TrainingInputs:
    """The data to train on: streamed from shards, or the datasets (loaded unless given) with what is mixed in."""
    if config.shards is not None:
        return _streamed_data(config)
    if datasets is None:
        datasets = load_datasets(config.data, config.data_dir, config.cache_dir, config.missing_data)
    return _training_data(config, datasets)


@dataclasses.dataclass(frozen=True)
class Base:
    """The model a fine-tune starts from, or training with corrections is compared with (None: none)."""

    path: Path | None = None
    card_fields: dict = dataclasses.field(default_factory=dict)  # what the new card records of it


def base_of(config: TrainConfig, inputs: TrainingInputs, chief: bool) -> Base:
    if not (config.fine_tune or config.feedback):
        return Base()
    version, path, card = _base_model(config)
    fields = {}
    if chief:  # the base model's figures on the same sets, to compare with
        fields["metrics_before"] = metrics.evaluate_all(keras_probabilities(load_model(path)), inputs.evaluation)
        fields["before_version"] = version
        log.info("Before (%s): %s", version, {k: round(m.accuracy, 5) for k, m in fields["metrics_before"].items()})
    if config.fine_tune:
        fields.update(fine_tuned_from=version, architecture=card.architecture)
    return Base(path, fields)


def _check_replay(config: TrainConfig, base: ModelCard) -> None:
    """A fine-tune replays what its base model learned from: one that learned "not a digit" (a gate) and is
    fine-tuned without non-digits would forget it, and admit everything."""
    learned = base.config or {}
    if learned.get("non_digits", 0) > 0 and config.non_digits == 0:
        raise ReplayError(
            f"The base model {base.version} learned 'not a digit' from {learned['non_digits']:,} generated non-digits, "
            "and this fine-tune has none (--non-digits 0): it would forget them. Fine-tune it with the recipe it was "
            "trained with, e.g. --config training/recipes/gate.json.")
    if tuple(learned.get("data", config.data)) != tuple(config.data):
        log.warning("The base model learned from %s; this fine-tune replays %s.", ",".join(learned["data"]),
                    ",".join(config.data))


def _compiled_model(config: TrainConfig, strategy, base: Base, train_count: int, replica_count: int):
    """A new model (or the base model, to fine-tune), compiled inside the strategy's scope."""
    keras = keras_module()
    steps = int(np.ceil(train_count / (config.batch_size * replica_count)))
    with strategy.scope():  # variables, optimizer slots and metrics live on every replica
        if config.fine_tune:
            model = load_model(base.path)
        else:
            with _precision(config.mixed_precision):
                model = build_model(config.architecture)
        model.compile(optimizer=keras.optimizers.Adam(_learning_rate(config, steps, replica_count)),
                      loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
                      metrics=["accuracy"])  # targets: training_targets()
    return model


def _fit(model, config: TrainConfig, inputs: TrainingInputs, strategy, chief: bool, replica_count: int,
         extra_callbacks) -> tuple[dict, list[float], int | None]:
    """Fit with backups to resume from; returns the history of every epoch, their times, and where it resumed."""
    keras = keras_module()
    from training.augment import build_augmenter
    from training.progress import EpochTimer, ProgressFile

    global_batch = config.batch_size * replica_count
    augmenter = build_augmenter(config.rotation_degrees, config.shift, config.zoom, config.stroke, config.seed,
                                elastic=config.elastic, blur=config.blur, aspect=config.aspect,
                                fat_pen=config.fat_pen)
    train_data = _tf_pipeline(inputs.train, config, augmenter, shuffle=True, weights=inputs.weights,
                              batch_size=global_batch)
    validation_data = _tf_pipeline(inputs.validation, config, batch_size=global_batch)
    backup = backup_callback(prepare_backup(backup_dir_for(Path(config.output), config.backup_dir),
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
    except _peer_lost_errors() as error:
        if config.strategy != "multiworker":
            raise
        raise WorkerLostError(
            f"Another worker of the cluster stopped responding ({type(error).__name__}), so this one stops too. "
            f"Restart the workers that stopped (a cluster manager does it for you): they resume from the last "
            f"backup in {backup.backup_dir}.") from None
    # the history of every epoch, also those before a restart
    return backup.full_history or history.history, timer.seconds, backup.resumed_epoch


def threshold_rule(config: TrainConfig, writers: dict) -> str:
    """The held-out digits the refusal threshold is chosen on: the config's, or, when the other writers' sets were
    skipped (--missing-data skip, as a gate taught by users' corrections replays its recipe with the sets the
    machine has) and none is left, validation+generated, which needs none of them, said in the log."""
    if config.refusal_held_out in WITH_WRITERS and not writers and config.missing_data == "skip":
        log.warning("No other writers' digits to choose the refusal threshold on (--refusal-held-out %s): it is "
                    "chosen on the validation split and generated digits instead (validation+generated). Pass "
                    "--data-dir with the sets the model was trained on to keep its rule.", config.refusal_held_out)
        return "validation+generated"
    return config.refusal_held_out


def evaluate_and_save(model, config: TrainConfig, inputs: TrainingInputs, history: dict, timings: Timings,
                      card: ModelCard) -> ModelCard:
    """Measure, calibrate and write the model's whole set (model, card, LiteRT export, history, curves, reliability
    diagram) to a staging folder, then publish it at config.output in one step (model.artifacts.publish_set):
    a run that dies before leaves nothing at the output, and a reader never sees new weights with an old card."""
    output = Path(config.output)
    with staging_folder(output) as work:
        probabilities = keras_probabilities(model)
        figures = {"validation": metrics.evaluate(probabilities, inputs.validation),
                   **metrics.evaluate_all(probabilities, inputs.evaluation)}
        if TEST_SPLIT in figures and any(d["name"] == "emnist" for d in inputs.datasets):
            figures[TEST_SPLIT] = dataclasses.replace(
                figures[TEST_SPLIT], note="trained with EMNIST, which shares NIST writers with MNIST: "
                                          "the MNIST test figure may be optimistic")
        staged = work / output.name
        writers = other_writers({name: _arrays(split) for name, split in inputs.evaluation.items()
                                 if name != HOLDOUT_SPLIT})
        held_out = held_out_sets(*_arrays(inputs.validation), config.seed, threshold_rule(config, writers), writers)
        calibration = calibrate(probabilities, held_out, config.refusal_budget,
                                companion_path(staged, "reliability.png"))
        model.save(staged)
        lite_export = convert(model)  # the fast path the app and the CLI read with, without TensorFlow
        now = dt.datetime.now(dt.timezone.utc)
        card = card.replace(
            version=new_name(now), created=now.isoformat(timespec="seconds"),
            architecture=card.architecture if config.fine_tune else config.architecture,
            parameters=int(model.count_params()),
            data={"datasets": inputs.datasets, "train": inputs.train_count, "validation": inputs.validation_count,
                  **({"feedback": inputs.feedback} if inputs.feedback else {})},
            config=config.to_json(), epochs_run=len(history["loss"]),
            best_epoch=int(np.argmin(history["val_loss"])) + 1,
            training_seconds=round(timings.train_seconds, 1), data_loading_seconds=round(timings.data_seconds, 1),
            epoch_seconds_median=round(float(np.median(timings.epoch_seconds)), 2) if timings.epoch_seconds else None,
            machine={"cpus": os.cpu_count(), "platform": platform.platform()}, metrics=figures,
            libraries=library_versions(), model_sha256=file_sha256(staged),
            tflite_sha256=hashlib.sha256(lite_export).hexdigest(), calibration=calibration)
        atomic_write_json(companion_path(staged, "history.json"),
                          {key: [float(v) for v in values] for key, values in history.items()})
        atomic_write_bytes(companion_path(staged, "tflite"), lite_export)
        plot_curves(history, companion_path(staged, "curves.png"))
        card.write(staged)
        publish_set(work, output)
    return card
