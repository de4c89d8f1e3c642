import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from model.architectures import ARCHITECTURES, build_model
from model.artifacts import ModelFileError, companion_path, file_sha256, sidecar_path
from model.card import ModelCard
from model.loading import load_model
from training.config import TrainConfig, build_parser, config_from_args
from training.data import Dataset, Split


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_architectures_take_28x28x1_and_scale_once(name):
    import keras

    model = build_model(name)
    assert model.input_shape == (None, 28, 28, 1) and model.output_shape == (None, 10)
    rescaling = [layer for layer in model.layers if isinstance(layer, keras.layers.Rescaling)]
    assert len(rescaling) == 1 and rescaling[0].scale == pytest.approx(1 / 255)
    probabilities = model(np.zeros((2, 28, 28, 1), np.float32)).numpy()
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_unknown_architecture():
    with pytest.raises(ValueError, match="expected one of"):
        build_model("resnet9000")


def test_augmentation_is_active_only_in_training():
    from training.augment import build_augmenter

    augmenter = build_augmenter(15, 0.1, 0.1, 0.5, seed=1)
    images = np.zeros((4, 28, 28, 1), np.float32)
    images[:, 8:20, 12:16] = 255
    assert np.array_equal(augmenter(images, training=False), images)
    changed = np.asarray(augmenter(images, training=True))
    assert not np.array_equal(changed, images)
    assert changed.min() >= 0 and changed.max() <= 255.01


def test_distortion_without_change_is_the_identity_and_elastic_moves_strokes():
    from training.augment import RandomDistortion

    images = np.zeros((3, 28, 28, 1), np.float32)
    images[:, 6:22, 12:15] = 255
    still = RandomDistortion(0.0, 0.0, 0.0, 0.0, elastic=0.0, seed=1)
    assert np.allclose(still(images, training=True), images, atol=1e-3)  # one resampling, exact on the grid
    wobbly = np.asarray(RandomDistortion(0.0, 0.0, 0.0, 0.0, elastic=3.0, seed=1)(images, training=True))
    assert not np.allclose(wobbly, images, atol=1.0)
    assert abs(wobbly.sum() / images.sum() - 1) < 0.1  # moved, not erased
    assert not np.allclose(wobbly[0], wobbly[1], atol=1.0)  # a field of its own per image


def test_blur_softens_edges_and_keeps_full_ink():
    from training.augment import RandomBlur

    images = np.zeros((8, 28, 28, 1), np.float32)
    images[:, 6:22, 12:15] = 255
    blurred = np.asarray(RandomBlur(1.0, seed=3)(images, training=True))
    assert np.allclose(blurred.max(axis=(1, 2, 3)), 255, atol=0.5)  # preprocessing makes the strongest ink white
    assert (blurred[:, 6:22, 11] > 1).any()  # ink spread beside the stroke
    assert np.array_equal(RandomBlur(1.0)(images, training=False), images)


def test_augmenter_runs_in_tf_data_with_a_partial_last_batch():
    from model.tf_runtime import tensorflow
    from training.augment import build_augmenter

    tf = tensorflow()
    augmenter = build_augmenter(10, 0.1, 0.1, 0.4, seed=1, elastic=2.0, blur=0.6)
    images = np.zeros((10, 28, 28, 1), np.float32)
    images[:, 6:22, 12:15] = 255
    batches = tf.data.Dataset.from_tensor_slices(images).batch(4).map(lambda b: augmenter(b, training=True))
    shapes = [tuple(batch.shape) for batch in batches]
    assert shapes == [(4, 28, 28, 1), (4, 28, 28, 1), (2, 28, 28, 1)]


def test_cli_help_shows_defaults():
    text = build_parser().format_help()
    for option in ("--architecture", "--data", "--epochs", "--batch-size", "--learning-rate", "--lr-schedule",
                   "--seed", "--output", "--limit"):
        assert option in text
    assert "(default: 40)" in text and "(default: deep)" in text


def test_cli_builds_the_frozen_config():
    config = config_from_args(build_parser().parse_args(["--data", "mnist,emnist", "--epochs", "3", "--limit", "100"]))
    assert config.data == ("mnist", "emnist") and config.epochs == 3 and config.limit == 100
    with pytest.raises(Exception):
        config.epochs = 5  # frozen


@pytest.mark.parametrize("changes, message", [
    ({"architecture": "vgg"}, "architecture"),
    ({"data": ("svhn",)}, "data"),
    ({"epochs": 0}, "epochs"),
    ({"output": "model.h5"}, ".keras"),
])
def test_invalid_configs_are_refused(changes, message):
    from pathlib import Path

    if "output" in changes:
        changes["output"] = Path(changes["output"])
    with pytest.raises(ValueError, match=message):
        TrainConfig(**changes)


def test_label_smoothing_is_an_option_of_the_command_and_reaches_the_loss():
    import tensorflow as tf

    from training.train import Base, _compiled_model

    assert "--label-smoothing" in build_parser().format_help()
    assert config_from_args(build_parser().parse_args(["--label-smoothing", "0.1"])).label_smoothing == 0.1
    with pytest.raises(ValueError, match="label_smoothing"):
        TrainConfig(label_smoothing=1.5)
    config = TrainConfig(architecture="compact", label_smoothing=0.1)
    model = _compiled_model(config, tf.distribute.get_strategy(), Base(), train_count=100, replica_count=1)
    assert model.loss.get_config()["label_smoothing"] == pytest.approx(0.1)


def test_every_option_is_on_the_command_line_with_its_default_and_help():
    import dataclasses

    assert config_from_args(build_parser().parse_args([])) == TrainConfig()
    text = " ".join(build_parser().format_help().split())
    for field in dataclasses.fields(TrainConfig):
        assert "--" + field.name.replace("_", "-") in text and " ".join(field.metadata["help"].split())[:30] in text


def test_a_config_file_gives_the_defaults_and_flags_override_it(tmp_path):
    from training.config import parse_config

    saved = TrainConfig(architecture="compact", epochs=7, data=("mnist", "emnist"), output=tmp_path / "m.keras")
    path = tmp_path / "config.json"
    path.write_text(json.dumps(saved.to_json()))
    config, _ = parse_config(["--config", str(path), "--epochs", "2"])
    assert config == TrainConfig(architecture="compact", epochs=2, data=("mnist", "emnist"), output=tmp_path / "m.keras")
    assert parse_config(["--config", str(path)])[0] == saved
    path.write_text("{not json")
    with pytest.raises(ValueError, match="could not be read as JSON"):
        parse_config(["--config", str(path)])


def test_bad_cli_values_exit_with_a_message():
    result = subprocess.run([sys.executable, "-m", "training", "--data", "svhn"], capture_output=True, text=True)
    assert result.returncode == 2 and "data must name datasets" in result.stderr and "Traceback" not in result.stderr


def _toy_dataset(count=240, seed=0):
    """Bars whose position encodes the label: learnable in one epoch."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, count).astype(np.uint8)
    x = np.zeros((count, 28, 28), np.uint8)
    for image, label in zip(x, y):
        image[4:24, 2 + 2 * label : 4 + 2 * label] = 255
    return Split(x, y)


def _train_toy(tmp_path, **changes):
    from training.train import train

    config = TrainConfig(architecture="compact", epochs=2, batch_size=32, validation_size=40,
                         output=tmp_path / "toy.keras", seed=1, **changes)
    dataset = Dataset("mnist", "toy", _toy_dataset(), _toy_dataset(60, seed=1))
    return config, train(config, datasets=[dataset])


@pytest.fixture(scope="module")
def toy_model(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("toy")
    return _train_toy(tmp_path)


def test_training_writes_model_sidecar_history_and_curves(toy_model):
    config, card = toy_model
    output = config.output
    assert output.exists() and sidecar_path(output).exists()
    assert ModelCard.read(output) == card
    on_disk = json.loads(sidecar_path(output).read_text())
    assert on_disk == card.to_json()
    for key in ("version", "created", "data", "config", "epochs_run", "metrics", "libraries", "model_sha256",
                "training_seconds", "epoch_seconds_median"):
        assert key in on_disk
    assert on_disk["model_sha256"] == file_sha256(output)
    assert on_disk["data"]["train"] == 200 and on_disk["data"]["validation"] == 40
    assert set(on_disk["metrics"]) == {"validation", "test_mnist"}
    assert on_disk["libraries"]["keras"].startswith("3.")
    history = json.loads(companion_path(output, "history.json").read_text())
    assert len(history["loss"]) == on_disk["epochs_run"] == 2
    assert companion_path(output, "curves.png").stat().st_size > 1000
    assert not list(output.parent.glob(".toy-run-*")), "temporary files are cleaned up"


def test_training_calibrates_and_can_add_generated_digits_and_non_digits(toy_model, tmp_path):
    _, plain = toy_model
    calibration = plain.calibration
    assert calibration["temperature"] > 0 and 0 < calibration["threshold"] < 1 and 0 <= calibration["ece"] <= 1
    assert companion_path(toy_model[0].output, "reliability.png").stat().st_size > 1000
    # 1,000 and 2,000 per 55,000 real images: the 200 toy images get 4 and 7 more.
    config, card = _train_toy(tmp_path, generated_digits=1000, non_digits=2000, aspect=0.3)
    assert card.data["train"] == 200 + 4 + 7
    assert set(card.calibration["refused"]) == {"mnist", "generated", "non_digits"}
    assert card.config["non_digits"] == 2000 and card.metrics["test_mnist"].count == 60


def test_saved_model_loads_in_safe_mode_and_checks_its_sha(toy_model, tmp_path):
    config, _ = toy_model
    model = load_model(config.output)
    assert model.output_shape == (None, 10)
    broken = tmp_path / "broken.keras"
    broken.write_bytes(config.output.read_bytes()[:5000])
    sidecar_path(broken).write_text(sidecar_path(config.output).read_text())
    with pytest.raises(ModelFileError, match="SHA-256"):
        load_model(broken)
    with pytest.raises(ModelFileError, match="does not exist"):
        load_model(tmp_path / "missing.keras")


def test_failed_training_leaves_the_previous_model_untouched(toy_model, tmp_path):
    import keras

    from training.train import train

    config, _ = toy_model
    before = (config.output.read_bytes(), sidecar_path(config.output).read_text())
    toy = Dataset("mnist", "toy", _toy_dataset(), _toy_dataset(60))

    class Boom(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise RuntimeError("power cut")

    # Over an existing model: refused before any training, the model untouched.
    with pytest.raises(ModelFileError, match="already exists"):
        train(config, datasets=[toy])
    # A run that dies, beside it: nothing at its own output, nothing left over, the model beside it untouched.
    beside = dataclasses.replace(config, output=config.output.with_name("beside.keras"))
    with pytest.raises(RuntimeError, match="power cut"):
        train(beside, extra_callbacks=[Boom()], datasets=[toy])
    assert (config.output.read_bytes(), sidecar_path(config.output).read_text()) == before
    assert not list(config.output.parent.glob("beside.*")) and not list(config.output.parent.glob(".*-run-*"))


def test_evaluation_writes_report_figures_and_json(toy_model, tmp_path):
    from model.inference import Recognizer
    from training.evaluate import comparison_table, evaluate, write_outputs

    config, _ = toy_model
    test = _toy_dataset(80, seed=3)
    result = evaluate(Recognizer(config.output), test)
    assert 0.0 <= result.metrics.accuracy <= 1.0 and result.metrics.count == 80
    assert np.array(result.metrics.confusion_matrix).sum() == 80
    written = write_outputs(config.output, result, test, tmp_path)
    saved = json.loads(written["evaluation.json"].read_text())
    assert saved["accuracy"] == result.metrics.accuracy and "per_class" in saved
    assert written["confusion.png"].stat().st_size > 1000 and written["worst.png"].stat().st_size > 1000
    assert "F1 9" in comparison_table(["a", "b"], [result, result])


def test_fast_path_matches_keras_on_1000_inputs(recognizer, mnist_sample):
    """The LiteRT path gives the same probabilities as the Keras model (within 1e-5)."""
    x, _ = mnist_sample
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, size=(950, 28, 28), dtype=np.uint8)
    images = np.concatenate([x, noise])
    keras_probabilities = recognizer.model.predict(images.astype(np.float32)[..., None], batch_size=250, verbose=0)
    assert np.abs(recognizer.probabilities(images) - keras_probabilities).max() < 1e-5
    one_by_one = np.concatenate([recognizer.probabilities(image[None]) for image in images[:20]])
    assert np.abs(one_by_one - keras_probabilities[:20]).max() < 1e-5


def test_training_exports_the_fast_path_and_a_damaged_export_is_rebuilt(toy_model, tmp_path):
    import shutil

    from model.inference import Recognizer

    config, card = toy_model
    export = companion_path(config.output, "tflite")
    assert card.tflite_sha256 == file_sha256(export)
    images = _toy_dataset(50, seed=5).x
    exported = Recognizer(config.output)
    assert exported._keras is None  # read with the export alone: Keras was not needed
    keras_probabilities = exported.model.predict(images.astype(np.float32)[..., None], verbose=0)
    assert np.abs(exported.probabilities(images) - keras_probabilities).max() < 1e-5

    for name in ("toy.keras", "toy.json"):
        shutil.copy(config.output.parent / name, tmp_path / name)
    (tmp_path / "toy.tflite").write_bytes(export.read_bytes()[:1000])  # damaged: converted again from .keras
    rebuilt = Recognizer(tmp_path / "toy.keras")
    assert rebuilt._keras is not None
    assert np.abs(rebuilt.probabilities(images) - keras_probabilities).max() < 1e-5

    # A process that only reads digits never imports TensorFlow.
    code = ("import sys; from model.inference import Recognizer; Recognizer(); "
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    imported = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).resolve().parents[1])
    assert imported.stdout.split() == ["False", "False"]


def test_mixed_precision_trains_exports_and_restores_the_policy(tmp_path):
    import keras

    from model.inference import Recognizer

    config, card = _train_toy(tmp_path, mixed_precision=True)
    assert keras.mixed_precision.global_policy().name == "float32"  # the process is left as it was
    assert card.config["mixed_precision"] and card.tflite_sha256
    recognizer = Recognizer(config.output)
    images = _toy_dataset(50, seed=6).x
    keras_probabilities = recognizer.model.predict(images.astype(np.float32)[..., None], verbose=0)
    exported = recognizer.probabilities(images)
    # The export computes in float32, the Keras model in bfloat16, which keeps 8 bits of mantissa
    # (0.4% relative error per operation): the same model gives the same answers, to about 1e-2.
    assert np.abs(exported - keras_probabilities).max() < 2e-2
    assert np.array_equal(exported.argmax(axis=1), keras_probabilities.argmax(axis=1))
    assert card.metrics["test_mnist"].accuracy > 0.5


def test_a_bare_training_command_writes_a_new_folder_never_the_shipped_model(monkeypatch, tmp_path):
    from model.artifacts import SHIPPED_MODEL

    monkeypatch.setenv("DIGITS_DATA_DIR", str(tmp_path))
    config = config_from_args(build_parser().parse_args([]))
    assert config.output is None
    first, second = config.with_output().output, config.with_output().output
    assert first != second and first.parent.parent == second.parent.parent == tmp_path / "trained"
    assert first.name == "digits.keras" and not first.exists()
    assert SHIPPED_MODEL not in (first, second)
    assert TrainConfig(output=tmp_path / "x.keras").with_output().output == tmp_path / "x.keras"


def test_the_whole_set_is_published_at_once_and_never_over_a_model(tmp_path, monkeypatch):
    import os

    from model.artifacts import publish_set, staging_folder

    def write_set(work, name="digits", content=b"new"):
        for kind in ("keras", "tflite", "history.json", "json"):
            (work / f"{name}.{kind}").write_bytes(content)

    # A new folder: the staging folder becomes it, in one rename.
    fresh = tmp_path / "fresh" / "digits.keras"
    renames = []
    real_rename = os.rename
    monkeypatch.setattr(os, "rename", lambda a, b: (renames.append((a, b)), real_rename(a, b)))
    with staging_folder(fresh) as work:
        assert work.parent == tmp_path and not fresh.parent.exists()
        write_set(work)
        publish_set(work, fresh)
    assert len(renames) == 1 and sorted(p.name for p in fresh.parent.iterdir()) == [
        "digits.history.json", "digits.json", "digits.keras", "digits.tflite"]
    assert [p.name for p in tmp_path.iterdir()] == ["fresh"]  # no staging folder left

    # An existing folder: file by file, the card last (readers go by it).
    moves = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (moves.append(Path(b).name), real_replace(a, b)))
    other = fresh.with_name("other.keras")
    with staging_folder(other) as work:
        assert work.parent == fresh.parent
        write_set(work, "other")
        publish_set(work, other)
    assert moves[-1] == "other.json" and len(moves) == 4

    # Over a model that is there: refused, the model untouched.
    with staging_folder(fresh) as work:
        write_set(work, content=b"newer")
        with pytest.raises(ModelFileError, match="already exists"):
            publish_set(work, fresh)
    assert fresh.read_bytes() == b"new" and not list(fresh.parent.glob(".digits-run-*"))


def test_a_fat_pen_thickens_strokes_beyond_one_dilation_and_stays_off_by_default():
    from training.augment import RandomStrokeWidth

    images = np.zeros((256, 28, 28, 1), np.float32)
    images[:, 6:22, 13:15] = 255  # a 2 px stroke
    ink = lambda batch: (np.asarray(batch) > 127).sum(axis=(1, 2, 3))  # noqa: E731
    plain = ink(RandomStrokeWidth(0.4, seed=3)(images, training=True))
    fat = ink(RandomStrokeWidth(0.4, seed=3, fat_pen=2.0, fat_share=0.5)(images, training=True))
    one_dilation = 18 * 4  # rows 5..22, columns 12..15
    assert plain.max() <= one_dilation  # as before: at most one 3x3 dilation
    assert (fat > one_dilation).sum() >= 16  # a good share drawn wider than that (about 30 expected)
    assert (fat <= plain.max()).sum() >= 100  # most keep the usual pens
    assert np.array_equal(RandomStrokeWidth(0.4, fat_pen=2.0)(images, training=False), images)


def test_a_reader_trained_on_deskewed_digits_reads_them_deskewed(stand_in_model):
    """--deskew (issue 32's slant normalisation) is recorded in the card, and the reader's inputs are straightened
    the same way at reading time; a reader without it reads the frame as given."""
    import cv2

    from model.inference import Recognizer
    from model.preprocess import deskew, frame_digit

    slanted = np.zeros((3, 28, 28), np.uint8)
    for image, lean in zip(slanted, (-6, 0, 5)):
        cv2.line(image, (14 - lean, 24), (14 + lean, 4), 255, 2)
        cv2.line(image, (14, 8), (20, 8), 255, 2)
    framed = np.stack([frame_digit(image) for image in slanted])
    plain = Recognizer(stand_in_model, gate=False)
    card = json.loads(sidecar_path(stand_in_model).read_text())
    sidecar_path(stand_in_model).write_text(json.dumps({**card, "config": {"deskew": True}}))
    straightening = Recognizer(stand_in_model, gate=False)

    assert not plain.deskews and straightening.deskews
    expected = plain.probabilities(np.stack([deskew(image) for image in framed]))
    np.testing.assert_allclose(straightening.probabilities(framed), expected, atol=1e-6)
    assert not np.allclose(plain.probabilities(framed), expected, atol=1e-4)
    read = straightening.read_many(list(255 - slanted))  # as a user's picture: dark ink on white
    np.testing.assert_allclose([r.probabilities for r in read], expected, atol=1e-5)
