"""Training with corrections: the held-out slice, mixing, and a fine-tune that learns a style it got wrong."""

import json

import numpy as np
import pytest

from bench.synth import seven_segment
from model.artifacts import SHIPPED_MODEL
from model.card import ModelCard
from services.corrections import CorrectionStore
from training.data import Dataset, Split, save_cache
from training.feedback import NoCorrectionsError, held_out, load_corrections, mix

STYLE_DIGIT = 6  # a calculator-style 6: the shipped model reads it as 5
CORRECTIONS = 50
TAUGHT_DOODLE = "heart"  # the shipped gate admits about half of them (bench/gate_feedback.py)


def test_the_held_out_slice_is_stable_as_the_store_grows():
    first = held_out(np.arange(1, 1001), 0.2, seed=42)
    grown = held_out(np.arange(1, 3001), 0.2, seed=42)
    assert np.array_equal(first, grown[:1000])
    assert 0.17 < grown.mean() < 0.23
    assert not np.array_equal(first, held_out(np.arange(1, 1001), 0.2, seed=7))


def test_corrections_are_oversampled_or_weighted():
    base = Split(np.zeros((100, 28, 28), np.uint8), np.zeros(100, np.uint8))
    corrections = Split(np.full((3, 28, 28), 255, np.uint8), np.full(3, 6, np.uint8))
    oversampled, weights = mix(base, corrections, "oversample", 20)
    assert len(oversampled) == 160 and weights is None and (oversampled.y == 6).sum() == 60
    weighted, weights = mix(base, corrections, "weight", 20)
    assert len(weighted) == 103 and weights.tolist() == [1.0] * 100 + [20.0] * 3


def test_too_few_corrections_are_all_used_and_none_is_an_error(tmp_path):
    with pytest.raises(NoCorrectionsError, match="no corrections store"):
        load_corrections(tmp_path / "missing.sqlite3", 0.2, 42)
    store = CorrectionStore(tmp_path / "c.sqlite3")
    for i in range(3):
        store.add(6, np.zeros((28, 28), np.uint8), np.zeros((5, 5), np.uint8), 5, 0.9, "shipped", "canvas")
    train, held, _ = load_corrections(store.path, 0.5, 42)
    assert (len(train), len(held)) == (3, 0)


def _style(recognizer, count, seed):
    """`count` calculator-style 6s as the app would store them: the 28x28 input and what the model read."""
    rng = np.random.default_rng(seed)
    images = [seven_segment(STYLE_DIGIT, rng) for _ in range(count)]
    return images, recognizer.read_many(images)


def _accuracy(recognizer, images, digit):
    return float(np.mean([r.digit == digit for r in recognizer.read_many(images)]))


def _replay_data(mnist_sample):
    """A small stand-in for MNIST: the fixture's digits, shifted by up to 2 px."""
    x, y = mnist_sample
    rng = np.random.default_rng(0)
    shifted = np.stack([np.roll(x[i % len(x)], tuple(rng.integers(-2, 3, 2)), axis=(0, 1)) for i in range(1500)])
    return Dataset("mnist", "fixture digits, shifted", Split(shifted, np.array([y[i % len(y)] for i in range(1500)])),
                   Split(x, y))


def test_a_fine_tune_on_50_corrections_learns_a_style_the_model_got_wrong(tmp_path, recognizer, mnist_sample):
    from model.inference import Recognizer
    from training.config import TrainConfig
    from training.train import train

    store = CorrectionStore(tmp_path / "c.sqlite3")
    images, readings = _style(recognizer, CORRECTIONS, seed=1)
    for image, reading in zip(images, readings):
        store.add(STYLE_DIGIT, reading.model_input, image, reading.digit, reading.confidence, "shipped", "canvas")
    held_out_images, _ = _style(recognizer, 200, seed=2)  # other samples of the same style, never trained on
    other_fives = [seven_segment(5, np.random.default_rng(3)) for _ in range(100)]  # what the 6s were misread as

    config = TrainConfig(feedback=True, fine_tune=True, corrections=store.path, feedback_holdout=0.0,
                         base_model=SHIPPED_MODEL, output=tmp_path / "tuned.keras", validation_size=300)
    card = train(config, datasets=[_replay_data(mnist_sample)])
    tuned = Recognizer(tmp_path / "tuned.keras")

    before, after = _accuracy(recognizer, held_out_images, STYLE_DIGIT), _accuracy(tuned, held_out_images, STYLE_DIGIT)
    fives_before, fives_after = _accuracy(recognizer, other_fives, 5), _accuracy(tuned, other_fives, 5)
    x, y = mnist_sample
    mnist_before = float((recognizer.probabilities(x).argmax(1) == y).mean())
    mnist_after = float((tuned.probabilities(x).argmax(1) == y).mean())
    print(f"\nheld-out calculator 6s: {before:.1%} -> {after:.1%}; calculator 5s: {fives_before:.1%} -> "
          f"{fives_after:.1%}; MNIST sample: {mnist_before:.1%} -> {mnist_after:.1%}")
    assert card.corrections_used == CORRECTIONS and card.fine_tuned_from
    assert before <= 0.1 and after >= 0.8  # the style is learnt...
    assert fives_after >= fives_before - 0.1  # ...without turning the real 5s into 6s
    assert mnist_after >= mnist_before - 0.04  # and what it knew is kept (at most 2 of these 50 lost)


def test_the_training_command_reports_before_and_after_and_registers(tmp_path, monkeypatch, recognizer, mnist_sample,
                                                                    capsys):
    from model.registry import Registry
    from training.__main__ import main

    monkeypatch.setenv("DIGITS_DATA_DIR", str(tmp_path / "data"))
    save_cache(_replay_data(mnist_sample), tmp_path / "cache")
    store = CorrectionStore(tmp_path / "data" / "corrections.sqlite3")
    images, readings = _style(recognizer, 30, seed=4)
    for image, reading in zip(images, readings):
        store.add(STYLE_DIGIT, reading.model_input, image, reading.digit, reading.confidence, "shipped", "canvas")

    common = ["--cache-dir", str(tmp_path / "cache"), "--output", str(tmp_path / "out" / "digits.keras"),
              "--validation-size", "300"]
    assert main(["--fine-tune", "--feedback", "--fine-tune-epochs", "1", "--register", *common]) == 0
    printed = capsys.readouterr().out
    assert "feedback_holdout" in printed and "before:" in printed
    card = ModelCard.read(tmp_path / "out" / "digits.keras")
    feedback = card.data["feedback"]
    assert feedback["train"] + feedback["holdout"] == 30 and feedback["holdout"] > 0
    assert card.before_version == "shipped"
    assert card.metrics_before["feedback_holdout"].count == feedback["holdout"]
    assert len(card.metrics["test_mnist"].confusion_matrix) == 10
    assert [v.version for v in Registry().versions()] == [card.version, "shipped"]
    assert Registry().active().version == "shipped"  # registered, not activated
    json.dumps(card.to_json())

    store.path.unlink()  # (a new output: training never writes over the model above)
    assert main(["--fine-tune", "--feedback", *common[:2], "--output", str(tmp_path / "out2" / "digits.keras"),
                 *common[4:]]) == 1
    assert "no corrections store" in capsys.readouterr().err


def _not_a_digit_store(path, digits: int, others: int):
    from model.constants import NOT_A_DIGIT

    store = CorrectionStore(path)
    for i in range(digits + others):
        label = i % 10 if i < digits else NOT_A_DIGIT
        store.add(label, np.full((28, 28), i, np.uint8), np.zeros((5, 5), np.uint8), 1, 0.9, "shipped", "canvas")
    return store


def test_not_a_digit_corrections_teach_a_gate_and_are_never_held_out(tmp_path):
    from model.constants import NOT_A_DIGIT

    store = _not_a_digit_store(tmp_path / "c.sqlite3", digits=40, others=6)
    reader_train, reader_held, _ = load_corrections(store.path, 0.25, 42)
    gate_train, gate_held, _ = load_corrections(store.path, 0.25, 42, not_a_digit=True)
    assert NOT_A_DIGIT not in reader_train.y and len(reader_train) + len(reader_held) == 40
    assert (gate_train.y == NOT_A_DIGIT).sum() == 6 and NOT_A_DIGIT not in gate_held.y
    assert np.array_equal(reader_held.x, gate_held.x)  # the same digits held out for either model

    only = _not_a_digit_store(tmp_path / "only.sqlite3", digits=0, others=3)
    with pytest.raises(NoCorrectionsError, match="teach the gate"):
        load_corrections(only.path, 0.2, 42)
    assert len(load_corrections(only.path, 0.2, 42, not_a_digit=True)[0]) == 3


def test_a_fine_tune_with_not_a_digit_corrections_teaches_the_gate_beside_the_reader(tmp_path, monkeypatch,
                                                                                   recognizer, mnist_sample):
    """A heart, which the shipped gate admits as a digit about half the time, corrected 50 times as "not a digit"
    (with a few digits), is refused after the fine-tune: the reader learns the digits, its gate the hearts,
    replaying the gate's own recipe; the registered version carries the taught gate; the digits stay admitted."""
    from bench.styles import doodle
    from model.constants import NOT_A_DIGIT
    from model.gate import gate_path
    from model.inference import Recognizer
    from model.registry import Registry
    from training.config import TrainConfig
    from training.feedback import ReplayError
    from training.train import train

    monkeypatch.setenv("DIGITS_DATA_DIR", str(tmp_path / "data"))
    store = CorrectionStore(tmp_path / "c.sqlite3")
    rng = np.random.default_rng(1)
    hearts = [doodle(TAUGHT_DOODLE, rng) for _ in range(CORRECTIONS)]
    for image, reading in zip(hearts, recognizer.read_many(hearts)):
        store.add(NOT_A_DIGIT, reading.model_input, image, reading.closest, reading.confidence, "shipped", "canvas")
    images, readings = _style(recognizer, 10, seed=5)
    for image, reading in zip(images, readings):
        store.add(STYLE_DIGIT, reading.model_input, image, reading.digit, reading.confidence, "shipped", "canvas")
    held_out_hearts = [doodle(TAUGHT_DOODLE, rng) for _ in range(100)]  # other drawings, never stored

    common = dict(feedback=True, fine_tune=True, corrections=store.path, validation_size=300, feedback_holdout=0.0)
    with pytest.raises(ReplayError, match="forget"):  # the gate without its own negatives would unlearn them
        train(TrainConfig(**common, base_model=gate_path(SHIPPED_MODEL), output=tmp_path / "forgot.keras"),
              datasets=[_replay_data(mnist_sample)])
    output = tmp_path / "taught" / "digits.keras"
    card = train(TrainConfig(**common, base_model=SHIPPED_MODEL, output=output, register=True),
                 datasets=[_replay_data(mnist_sample)])
    gate_card = ModelCard.read(gate_path(output))
    taught = Recognizer(Registry().get(card.version).path)

    def refused(reader, images):
        return float(np.mean([r.verdict == "not_a_digit" for r in reader.read_many(images)]))

    x, _ = mnist_sample
    print(f"\nheld-out hearts refused: {refused(recognizer, held_out_hearts):.0%} -> "
          f"{refused(taught, held_out_hearts):.0%}"
          f"; MNIST sample refused: {refused(recognizer, list(x)):.0%} -> {refused(taught, list(x)):.0%}")
    assert card.corrections_used == 10  # the reader learns the digits only...
    assert gate_card.corrections_used == CORRECTIONS + 10 and gate_card.config["non_digits"] > 0  # ...its gate both
    assert taught.gate.card.version == gate_card.version != recognizer.gate.card.version
    assert ModelCard.read(gate_path(SHIPPED_MODEL)).config["blend_base"] > 0  # the recipe's blend is not replayed
    assert gate_card.config["blend_base"] == 0
    assert refused(recognizer, held_out_hearts) <= 0.5 and refused(taught, held_out_hearts) >= 0.8
    assert refused(taught, list(x)) <= 0.02  # at most 1 of the 50 digits
