"""Trust beyond MNIST: "not a digit", "not sure", and confidence that means what it says."""

import io
import json

import numpy as np
import pytest
from PIL import Image

from bench import styles, synth
from model.confidence import (DIGIT, NOT_A_DIGIT, NOT_SURE, Calibration, calibrated, expected_calibration_error,
                              refusal_reason, verdict)


# --------------------------------------------------------------------------- pure functions


def test_temperature_one_changes_nothing_and_a_higher_one_softens():
    probabilities = np.array([[0.7, 0.2, 0.1] + [0.0] * 7])
    assert np.allclose(calibrated(probabilities, 1.0), probabilities)
    softer = calibrated(probabilities, 2.0)
    assert np.isclose(softer.sum(), 1.0) and softer[0, 0] < 0.7 and softer.argmax() == 0
    sharper = calibrated(probabilities, 0.5)
    assert sharper[0, 0] > 0.7


def test_verdict_tells_a_sure_digit_an_ambiguous_one_and_a_non_digit_apart():
    sure = np.array([0.95, 0.05] + [0.0] * 8)
    ambiguous = np.array([0.5, 0.45, 0.05] + [0.0] * 7)
    spread = np.full(10, 0.1)
    assert verdict(sure, 0.6) == DIGIT
    assert verdict(ambiguous, 0.6) == NOT_SURE
    assert refusal_reason(NOT_SURE, ambiguous) == "not sure: it could be 0 or 1 (50% against 45%)"
    assert verdict(spread, 0.6) == NOT_A_DIGIT and refusal_reason(NOT_A_DIGIT, spread).startswith("not a digit")


def test_two_digits_about_equally_likely_are_not_sure_even_above_the_threshold():
    """Issue 33, item 2: a Z-shaped 2 read 7 at 54.9% against 45% was claimed as a 7."""
    z_shaped_two = np.array([0, 0, 0.45, 0, 0, 0, 0, 0.549, 0, 0.001])
    assert verdict(z_shaped_two, 0.5) == NOT_SURE
    assert refusal_reason(NOT_SURE, z_shaped_two) == "not sure: it could be 7 or 2 (55% against 45%)"
    assert verdict(np.array([0, 0, 0.25, 0, 0, 0, 0, 0.75, 0, 0]), 0.5) == DIGIT  # clearly ahead: claimed


def test_calibration_is_read_from_the_card_with_defaults_for_old_models():
    assert Calibration.from_card(None) == Calibration()
    assert Calibration.from_card({"temperature": 1.5, "threshold": 0.4}) == Calibration(1.5, 0.4)


def test_expected_calibration_error_is_zero_when_confidence_matches_accuracy_and_large_when_not():
    rng = np.random.default_rng(0)
    confidences = rng.uniform(0.5, 1.0, 200_000)
    honest = rng.random(200_000) < confidences
    assert expected_calibration_error(confidences, honest) < 0.01
    assert expected_calibration_error(np.full(1000, 0.99), np.arange(1000) < 700) == pytest.approx(0.29)


def test_fitted_temperature_undoes_a_known_overconfidence():
    from training.calibrate import fit_temperature

    rng = np.random.default_rng(1)
    logits = rng.normal(0, 2.0, (20_000, 10))
    truth = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    labels = np.array([rng.choice(10, p=p) for p in truth])
    overconfident = calibrated(truth, 1 / 2.5)  # as if the logits had been multiplied by 2.5
    assert fit_temperature(overconfident, labels) == pytest.approx(2.5, rel=0.1)


def test_threshold_refuses_at_most_the_budget():
    from training.calibrate import choose_threshold

    top = np.linspace(0.0, 1.0, 10_001)[1:]
    threshold = choose_threshold(top, budget=0.01)
    assert np.mean(top < threshold) <= 0.01 and np.mean(top < threshold) > 0.009


def _honest_probabilities(tops: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities with these top values on random digits, and labels drawn from them (calibrated: T near 1)."""
    probabilities = np.tile(((1 - tops) / 9)[:, None], (1, 10))
    probabilities[np.arange(len(tops)), rng.integers(0, 10, len(tops))] = tops
    return probabilities, (probabilities.cumsum(1) > rng.random((len(tops), 1))).argmax(1)


@pytest.mark.parametrize("rule", ["validation", "validation+generated"])
def test_a_threshold_pooled_with_generated_digits_is_not_set_by_one_validation_digit(rule):
    """A gate refuses almost none of its validation digits: at a small budget its threshold chosen on them alone
    was the lowest one's score, and a fine-tune that moved that one digit moved the threshold."""
    from training.calibrate import calibrate

    chosen = []
    for lowest in (0.3, 0.05):  # one validation digit's top probability, before and after a fine-tune
        rng = np.random.default_rng(5)
        tops = {"mnist": np.r_[lowest, rng.uniform(0.97, 1.0, 4999)], "generated": rng.uniform(0.6, 1.0, 2000),
                "non_digits": rng.uniform(0.1, 0.5, 2000)}
        if rule == "validation+generated":
            tops["threshold_generated"] = rng.uniform(0.5, 1.0, 20000)
        made = {name: _honest_probabilities(top, rng) for name, top in tops.items()}
        sets = {name: (np.full(len(top), name), None if name == "non_digits" else made[name][1])
                for name, top in tops.items()}
        calibration = calibrate(lambda names: made[names[0]][0], sets, budget=0.0001)
        chosen.append(calibration["threshold"])
    assert set(calibration["threshold_on"]) == {"mnist"} | ({"threshold_generated"} if "+" in rule else set())
    if rule == "validation":
        assert chosen[0] - chosen[1] > 0.1  # the one digit set it
    else:
        assert abs(chosen[0] - chosen[1]) < 0.01 and chosen[0] > 0.45  # a dozen generated digits deep


def test_the_threshold_digits_are_drawn_after_the_other_held_out_sets(monkeypatch):
    from training import calibrate

    monkeypatch.setattr(calibrate, "HELD_OUT", 20)  # small sets: the rule is what is tested
    monkeypatch.setitem(calibrate.THRESHOLD_ON, "validation+generated", 30)
    from training.glyphs import generated_digits

    validation = generated_digits(20, np.random.default_rng(2))  # with ink: MNIST-made non-digits alter them
    plain = calibrate.held_out_sets(*validation, seed=3)
    pooled = calibrate.held_out_sets(*validation, seed=3, threshold_on="validation+generated")
    assert "threshold_generated" not in plain and len(pooled["threshold_generated"][0]) == 30
    assert all(np.array_equal(plain[name][0], pooled[name][0]) for name in plain)  # the others are unchanged


def test_a_threshold_on_validation_and_writers_pools_the_other_real_writers_not_mnists_test(monkeypatch):
    """Issue 32: a gate taught real doodles scores a few generated digits "like nothing", so a threshold pooled
    with them fell to the floor; "validation+writers" pools the held-out writers of the other real digit sets."""
    from training import calibrate

    monkeypatch.setattr(calibrate, "HELD_OUT", 20)
    from training.glyphs import generated_digits

    validation = generated_digits(20, np.random.default_rng(2))
    unipen, ardis, mnist_test = (generated_digits(n, np.random.default_rng(n)) for n in (12, 7, 9))
    writers = calibrate.other_writers({"test_unipen": unipen, "test_ardis": ardis, "test_mnist": mnist_test})
    assert set(writers) == {"test_unipen", "test_ardis"}  # MNIST's test split stays for reporting
    pooled = calibrate.held_out_sets(*validation, seed=3, threshold_on="validation+writers", writers=writers)
    assert np.array_equal(pooled[calibrate.WRITERS][0], np.concatenate([unipen[0], ardis[0]]))
    with pytest.raises(ValueError, match="no other writers"):
        calibrate.held_out_sets(*validation, seed=3, threshold_on="validation+writers", writers={})


def test_a_threshold_on_each_collection_bounds_the_mean_share_refused_so_a_small_collection_counts(monkeypatch):
    """Issue 32: pooled, MNIST's 5,000 validation digits set a gate's threshold, and writers from elsewhere were
    refused five times as often; with each collection weighing alike, a collection the gate finds hard moves it."""
    from training import calibrate

    monkeypatch.setattr(calibrate, "HELD_OUT", 20)
    from training.glyphs import generated_digits

    validation = generated_digits(20, np.random.default_rng(2))
    unipen, ardis = (generated_digits(n, np.random.default_rng(n)) for n in (12, 7))
    writers = {"test_unipen": unipen, "test_ardis": ardis}
    sets = calibrate.held_out_sets(*validation, seed=3, threshold_on="each-collection", writers=writers)
    assert calibrate.WRITERS not in sets and np.array_equal(sets[calibrate.COLLECTION + "test_ardis"][0], ardis[0])

    # 1,000 validation digits all sure; a collection of 100 with 4 it finds doubtful; a budget of 1%
    def predict(x):  # each "image" holds its top probability; the other nine share the rest
        return np.c_[x[:, 0], np.tile((1 - x[:, :1]) / 9, 9)]

    mnist = (np.full((1000, 1), 0.99), np.zeros(1000, int))
    hard = (np.r_[np.full(4, 0.3), np.full(96, 0.98)][:, None], np.zeros(100, int))
    pooled = calibrate.calibrate(predict, {"mnist": mnist, calibrate.WRITERS: hard}, budget=0.01)
    alike = calibrate.calibrate(predict, {"mnist": mnist, calibrate.COLLECTION + "hard": hard}, budget=0.01)
    assert pooled["refused"][calibrate.WRITERS] == 0.04  # 4 of the pool's 1,100 are under its 1%
    assert alike["refused"][calibrate.COLLECTION + "hard"] == 0.0  # 4% and 0% would be 2% on average
    assert alike["threshold"] < pooled["threshold"]
    assert set(alike["threshold_on"]) == {"mnist", calibrate.COLLECTION + "hard"}


def test_a_rule_that_needs_other_writers_falls_back_only_when_their_sets_were_skipped(caplog):
    from training.config import TrainConfig
    from training.train import threshold_rule

    writers = {"test_unipen": (np.zeros((2, 28, 28), np.uint8), np.array([1, 2]))}
    taught = TrainConfig(refusal_held_out="each-collection", missing_data="skip")
    assert threshold_rule(taught, writers) == "each-collection"
    assert threshold_rule(taught, {}) == "validation+generated"  # a user's machine with MNIST alone
    assert "--data-dir" in caplog.text
    asked = TrainConfig(refusal_held_out="each-collection")  # asked for by name: held_out_sets says what is missing
    assert threshold_rule(asked, {}) == "each-collection"
    assert threshold_rule(TrainConfig(refusal_held_out="validation", missing_data="skip"), {}) == "validation"


def test_a_weighted_threshold_is_the_plain_one_when_every_digit_weighs_alike():
    from training.calibrate import choose_threshold

    top = np.random.default_rng(0).uniform(0, 1, 997)
    for budget in (0.0, 0.0015, 0.003, 0.05, 0.5):
        assert choose_threshold(top, budget, np.full(len(top), 1 / len(top))) == choose_threshold(top, budget)
    # two collections weighing alike: 1% of the first (10 of 1,000) is 0.5% of the two
    top = np.r_[np.full(10, 0.1), np.full(990, 0.9), np.full(10, 0.95)]
    weights = np.r_[np.full(1000, 0.5 / 1000), np.full(10, 0.5 / 10)]
    assert choose_threshold(top, 0.005, weights) == 0.9  # the ten may be refused
    assert choose_threshold(top, 0.004, weights) == 0.1  # they may not
    assert choose_threshold(top, 0.005) == 0.1  # pooled, 10 of 1,010 is more than 0.5%


# --------------------------------------------------------------------------- generated data


def test_non_digits_made_from_blank_images_fail_with_a_message_instead_of_looping():
    from training.glyphs import non_digit

    blank = (np.zeros((5, 28, 28), np.uint8), np.arange(5))
    with pytest.raises(ValueError, match="have ink"):
        non_digit("mnist_altered", np.random.default_rng(0), blank)


def test_generated_data_is_seeded_balanced_and_framed():
    from training.glyphs import generated_digits, generated_non_digits

    first, labels = generated_digits(50, np.random.default_rng(3))
    again, _ = generated_digits(50, np.random.default_rng(3))
    assert first.shape == (50, 28, 28) and first.dtype == np.uint8 and np.array_equal(first, again)
    assert np.bincount(labels, minlength=10).tolist() == [5] * 10
    others = generated_non_digits(40, np.random.default_rng(4))
    assert others.shape == (40, 28, 28) and all(image.max() > 128 for image in others)


def test_no_generated_non_digit_is_a_lone_upright_stroke():
    from training.glyphs import MIN_NON_DIGIT_ASPECT, NON_DIGIT_KINDS, _aspect, non_digit

    rng = np.random.default_rng(5)
    mnist = (np.zeros((10, 28, 28), np.uint8), np.arange(10))
    mnist[0][:, 4:24, 12:16] = 255  # every "MNIST digit" here is an upright bar: turned, it is a dash
    for kind in NON_DIGIT_KINDS:
        for _ in range(20):
            assert _aspect(non_digit(kind, rng, mnist)) >= MIN_NON_DIGIT_ASPECT


def test_non_digits_are_trained_towards_every_digit_equally_likely():
    from training.train import training_targets

    targets = np.asarray(training_targets(np.array([3, 10], np.uint8)))
    assert targets[0].tolist() == [0, 0, 0, 1, 0, 0, 0, 0, 0, 0]
    assert np.allclose(targets[1], 0.1)


# --------------------------------------------------------------------------- the shipped model


def test_mnist_digits_on_the_canvas_are_still_read(recognizer, mnist_sample):
    x, y = mnist_sample
    readings = recognizer.read_many([synth.canvas_style(np.kron(image, np.ones((10, 10), np.uint8)), "white_on_black")
                                     for image in x])
    assert sum(r.digit == label for r, label in zip(readings, y)) >= 49


def _png(array) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _refusing(stand_in_model):
    """A real model that claims nothing: untrained, every top probability is far below its threshold.
    The contract of a refusal is tested with it; what the shipped model refuses is measured in bench/trust.py."""
    from model.inference import Recognizer

    return Recognizer(stand_in_model)


def test_the_command_says_no_digit_with_the_closest_guess(stand_in_model, tmp_path):
    from model.predict import run

    recognizer = _refusing(stand_in_model)
    path = tmp_path / "a.png"
    path.write_bytes(_png(synth.canvas_style(styles.canvas_drawing(styles.ISSUE_TABLE["capital A"], pen=14),
                                             "black_on_white")))
    out = io.StringIO()
    assert run([str(path)], recognizer, True, out) == 0
    result = json.loads(out.getvalue())
    assert result["digit"] is None and result["verdict"] in (NOT_A_DIGIT, NOT_SURE)
    assert result["reason"].startswith("not a digit" if result["verdict"] == NOT_A_DIGIT else "not sure")
    assert set(result) == {"path", "digit", "verdict", "reason", "closest", "probabilities"}
    assert result["closest"]["digit"] == int(np.argmax(result["probabilities"]))
    assert result["closest"]["confidence"] == pytest.approx(max(result["probabilities"]), abs=1e-6)
    out = io.StringIO()
    run([str(path)], recognizer, False, out)
    assert f"no digit ({result['reason']}; closest guess {result['closest']['digit']}" in out.getvalue()


def test_a_number_with_a_refused_piece_is_not_claimed_and_the_piece_is_named(stand_in_model, mnist_sample, tmp_path):
    from model.predict import run

    x, _ = mnist_sample
    strip = np.zeros((170, 420), np.uint8)
    strip[:168, 20:188] = np.kron(x[5], np.ones((6, 6), np.uint8))
    strip[:168, 230:398] = np.kron(x[10], np.ones((6, 6), np.uint8))
    path = tmp_path / "number.png"
    path.write_bytes(_png(255 - strip))
    out = io.StringIO()
    run([str(path)], _refusing(stand_in_model), True, out, multi=True)
    result = json.loads(out.getvalue())
    assert result["number"] is None and len(result["digits"]) == 2, result
    first = result["digits"][0]
    x0, y0, w, h = first["box"]
    assert f"the piece at x={x0}, y={y0} ({w}x{h} px)" in result["reason"] and 20 <= x0 < 188  # the first digit
    assert all(d["digit"] is None and d["verdict"] in (NOT_A_DIGIT, NOT_SURE) and "closest" in d
               for d in result["digits"])


def test_each_benchmark_set_draws_the_same_whichever_sets_are_drawn_before_it():
    """bench/candidates.py and bench/gate_sources.py draw a few of trust.py's sets. With one stream shared by all,
    a set came out differently when a set before it was skipped, so two runs' figures were not comparable: the
    shipped gate refused 72.6% of the held-out doodles in one run and 76.8% in another."""
    from itertools import islice

    from bench.trust import SEED, SHARED, build_sets

    if not (SHARED / "usps").exists() or not (SHARED / "quickdraw").exists():
        pytest.skip(f"{SHARED} is not here")

    def first(sets, name, count=3):
        return [image for image, _ in islice(sets[name], count)]

    alone = build_sets(SEED, usps_limit=6)
    after_others = build_sets(SEED, usps_limit=6)
    first(after_others, "usps_photo", 6)  # the set before it in trust.py's order, drawn first
    first(after_others, "omniglot_canvas")
    for name in ("usps_canvas", "quickdraw_canvas"):
        drawn_alone, drawn_later = first(alone, name), first(after_others, name)
        assert all(np.array_equal(a, b) for a, b in zip(drawn_alone, drawn_later)), name
    another_seed = first(build_sets(SEED + 1, usps_limit=6), "usps_canvas")
    assert not all(np.array_equal(a, b) for a, b in zip(first(build_sets(SEED, 6), "usps_canvas"), another_seed))


def test_gate_figures_over_several_drawings_are_their_mean_with_the_lowest_and_highest():
    from pathlib import Path

    from bench.gate_sources import draw_cache, summary

    def drawing(doodles_refused: float, threshold: float) -> dict:
        refused = {"usps_canvas": 0.0075, "quickdraw_canvas": doodles_refused}
        return {"refused_at_own_threshold": refused,
                "at 0.75% of USPS refused": {"threshold": threshold, "refused": refused,
                                             "doodle_categories_refused": {"spoon": doodles_refused / 2}}}

    row = summary([drawing(0.722, 0.2), drawing(0.768, 0.3), drawing(0.749, 0.1)])
    point = row["at 0.75% of USPS refused"]
    assert point["refused"] == {"usps_canvas": 0.0075, "quickdraw_canvas": pytest.approx(0.7463, abs=1e-4)}
    assert point["range"]["quickdraw_canvas"] == [0.722, 0.768]
    assert point["threshold"] == pytest.approx(0.2)
    assert point["doodle_categories_refused"]["spoon"] == pytest.approx(0.3732, abs=1e-4)
    assert "range" not in summary([drawing(0.722, 0.2)])["at 0.75% of USPS refused"]  # one drawing: no spread
    assert draw_cache(Path("/tmp/sets.npz"), 0) == Path("/tmp/sets.npz")
    assert draw_cache(Path("/tmp/sets.npz"), 2) == Path("/tmp/sets-draw2.npz")
    assert draw_cache(None, 2) is None


def test_a_gate_threshold_to_weigh_is_a_name_and_a_value_between_0_and_1():
    import argparse

    from bench.candidates import threshold_of

    assert threshold_of("new-gate=0.1223") == ("new-gate", 0.1223)
    for bad in ("new-gate", "new-gate=", "new-gate=high", "new-gate=1.5", "=0.2"):
        with pytest.raises(argparse.ArgumentTypeError, match="NAME=VALUE"):
            threshold_of(bad)
