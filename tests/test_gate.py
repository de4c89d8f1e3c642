"""The gate beside the reader (model.gate): its verdict comes first, its score is reported, and a reader
without one reads as before."""

import hashlib
import json
import shutil

import numpy as np
import pytest

from bench import styles, synth
from model.artifacts import SHIPPED_MODEL, ModelFileError, companion_path, file_sha256
from model.card import ModelCard
from model.confidence import DIGIT, NOT_A_DIGIT
from model.gate import gate_path
from model.inference import Recognizer
from model.predict import number_json, reading_json

GATE_VERSION = "20990101-gate"


def _reader_copy(folder):
    """The shipped reader's set (model, card, LiteRT export), copied where a gate can be put beside it."""
    folder.mkdir(exist_ok=True)
    for kind in ("keras", "json", "tflite"):
        shutil.copy(companion_path(SHIPPED_MODEL, kind), folder / f"digits.{kind}")
    return folder / "digits.keras"


def _write_gate(reader, sureness: float, threshold: float = 0.5):
    """A gate whose digit-likeness is `sureness` for every input (a softmax of constant logits), with its card
    and LiteRT export, beside `reader`."""
    import keras

    from model.lite import convert

    logits = np.zeros(10, np.float32)
    logits[0] = np.log(sureness * 9 / (1 - sureness)) if sureness > 0.1 else 0.0  # p0 = sureness
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Flatten()(keras.layers.Rescaling(1 / 255)(inputs))
    outputs = keras.layers.Dense(10, activation="softmax", kernel_initializer="zeros",
                                 bias_initializer=keras.initializers.Constant(logits))(x)
    model = keras.Model(inputs, outputs)
    path = gate_path(reader)
    model.save(path)
    lite = convert(model)
    companion_path(path, "tflite").write_bytes(lite)
    ModelCard(version=GATE_VERSION, architecture="test gate", model_sha256=file_sha256(path),
              tflite_sha256=hashlib.sha256(lite).hexdigest(),
              calibration={"temperature": 1.0, "threshold": threshold}).write(path)
    return path


@pytest.fixture(scope="module")
def reader_alone():
    return Recognizer(SHIPPED_MODEL, gate=False)


def test_a_gate_that_finds_nothing_digit_like_refuses_every_reading_with_its_own_reason(tmp_path, mnist_sample):
    x, _ = mnist_sample
    reader = _reader_copy(tmp_path / "m")
    _write_gate(reader, sureness=0.1, threshold=0.5)
    readings = Recognizer(reader).read_many(list(x[:10]))
    assert all(r.verdict == NOT_A_DIGIT and r.digit is None for r in readings)
    assert all("does not look like a handwritten digit" in r.reason for r in readings)
    printed = reading_json("a.png", readings[0])
    assert printed["verdict"] == NOT_A_DIGIT and printed["digit_likeness"] == pytest.approx(0.1, abs=1e-4)
    assert printed["closest"]["digit"] == readings[0].closest  # the reader's guess is still shown


def test_a_gate_that_admits_leaves_the_readers_answers_and_reports_its_score(tmp_path, mnist_sample, reader_alone):
    x, _ = mnist_sample
    reader = _reader_copy(tmp_path / "m")
    _write_gate(reader, sureness=0.99, threshold=0.5)
    gated = Recognizer(reader).read_many(list(x))
    alone = reader_alone.read_many(list(x))
    assert [(r.digit, r.verdict) for r in gated] == [(r.digit, r.verdict) for r in alone]
    assert all(r.digit_likeness == pytest.approx(0.99, abs=1e-4) for r in gated)
    assert json.loads(json.dumps(reading_json("a.png", gated[0])))["digit_likeness"] == pytest.approx(0.99, abs=1e-4)


def test_without_a_gate_nothing_changes_and_no_score_is_printed(mnist_sample, reader_alone):
    x, y = mnist_sample
    reading = reader_alone.read(x[0])
    assert reading.verdict == DIGIT and reading.digit == y[0] and reading.digit_likeness is None
    assert "digit_likeness" not in reading_json("a.png", reading)
    assert reader_alone.gate is None


def test_a_piece_the_gate_refuses_refuses_the_number(tmp_path, mnist_sample):
    x, _ = mnist_sample
    reader = _reader_copy(tmp_path / "m")
    _write_gate(reader, sureness=0.1, threshold=0.5)
    number = Recognizer(reader).read_number(np.hstack([x[0], x[7]]))
    assert number.number is None and "is not a digit" in number.reason
    assert all("digit_likeness" in piece for piece in number_json("n.png", number)["digits"])


def test_a_damaged_gate_is_not_used_silently(tmp_path):
    reader = _reader_copy(tmp_path / "m")
    path = _write_gate(reader, sureness=0.99)
    path.write_bytes(path.read_bytes() + b"tampered")
    with pytest.raises(ModelFileError, match="SHA-256"):
        Recognizer(reader)


def test_a_registered_version_keeps_its_gate(tmp_path):
    from model.registry import Registry

    reader = _reader_copy(tmp_path / "m")
    _write_gate(reader, sureness=0.99)
    version = Registry(tmp_path / "registry").add(reader)
    assert Recognizer(version.path).gate.card.version == GATE_VERSION


def test_a_retrained_reader_without_a_gate_keeps_the_gate_of_the_model_it_replaces(tmp_path):
    from model.registry import Registry

    active = _reader_copy(tmp_path / "active")
    _write_gate(active, sureness=0.99)
    retrained = _reader_copy(tmp_path / "retrained")
    card = ModelCard.read(retrained)
    card.replace(version="20990102-000000").write(retrained)
    registry = Registry(tmp_path / "registry")
    assert Recognizer(registry.add(retrained).path).gate is None  # nothing to take it from
    registry.delete("20990102-000000")
    version = registry.add(retrained, gate_from=active)
    assert Recognizer(version.path).gate.card.version == GATE_VERSION
    assert sorted(p.name for p in version.path.parent.glob("digits.gate.*")) == [
        "digits.gate.json", "digits.gate.keras", "digits.gate.tflite"]


def test_the_gate_recipe_is_a_training_config_that_teaches_non_digits():
    from training.config import parse_config

    config, _ = parse_config(["--config", "training/recipes/gate.json", "--output", "x/digits.gate.keras"])
    assert config.non_digits > 0 and config.generated_digits > 0 and "mnist" in config.data
    assert config.refusal_held_out == "validation+generated"  # a threshold its fine-tunes do not knock over


# Issue 14's table as drawn on the canvas, read by the shipped reader and gate. The S is still read as a 5 at
# 98% digit-likeness (real writers' 5s include S-like curves; issue 23 is open for it): strict, so that the
# day it is refused this test says to drop the mark.
TABLE_STILL_CLAIMED = {"S": "issue 23: the shipped gate takes this S for a 5"}


@pytest.mark.parametrize("shape", [
    pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=TABLE_STILL_CLAIMED[name]))
    if name in TABLE_STILL_CLAIMED else name
    for name in styles.ISSUE_TABLE])
def test_the_shapes_of_issue_14s_table_drawn_on_the_canvas_are_not_read_as_digits(recognizer, shape):
    drawing = styles.canvas_drawing(styles.ISSUE_TABLE[shape], pen=14)
    readings = recognizer.read_many([synth.canvas_style(drawing, style) for style in synth.CANVAS_STYLES])
    assert all(r.digit is None and r.refused for r in readings), [(r.verdict, r.closest, r.confidence,
                                                                    r.digit_likeness) for r in readings]
