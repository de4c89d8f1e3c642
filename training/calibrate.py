"""Calibrate a trained model's confidence and choose its refusal threshold, from held-out data.

Temperature scaling (Guo et al., 2017): one number T divides the model's
log-probabilities, fitted to minimise the negative log-likelihood on digits
the model never trained on (the validation split and held-out generated
digits). Then the refusal threshold: the highest calibrated top probability
that refuses at most REFUSAL_BUDGET of those held-out MNIST digits; what it
refuses of held-out generated non-digits is recorded beside it. Both go into
the sidecar under "calibration" (model.confidence reads them), with the
expected calibration error before and after, and a reliability diagram PNG.

    python -m training.calibrate --model model/digits.keras   # re-fit an existing model, rewrite its sidecar
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path

import numpy as np

from model.confidence import (CALIBRATION_BINS, DIGIT, calibrated, confidence_bins, expected_calibration_error,
                              verdict)
from training.config import EACH_COLLECTION, THRESHOLD_ON, WITH_WRITERS, WRITERS_POOLED, TrainConfig

log = logging.getLogger(__name__)

# Share of held-out MNIST digits the threshold may refuse. The acceptance allows 0.3% on MNIST
# test and 0.5% on other writers: half of the first leaves room for writers the model has not seen.
REFUSAL_BUDGET = 0.0015
HELD_OUT = 2000  # generated digits and non-digits each, from a seed training never uses
POOLED = "threshold_generated"  # the held-out set of those generated digits
WRITERS = "threshold_writers"  # the held-out digits of other writers, with "validation+writers"
COLLECTION = WRITERS + ":"  # with "each-collection", one set per collection: threshold_writers:test_unipen...
TEMPERATURES = np.exp(np.linspace(np.log(0.3), np.log(5.0), 200))


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The temperature with the lowest negative log-likelihood (a 1-D search: no optimiser to tune)."""
    def nll(temperature):
        scaled = calibrated(probabilities, temperature)
        return -np.mean(np.log(np.clip(scaled[np.arange(len(labels)), labels], 1e-12, 1.0)))

    return float(min(TEMPERATURES, key=nll))


def choose_threshold(top: np.ndarray, budget: float = REFUSAL_BUDGET, weights: np.ndarray | None = None) -> float:
    """The highest threshold on the top probability that refuses at most `budget` of these digits, each
    counting by its weight when `weights` (summing to 1) are given."""
    if not len(top):
        return 0.5
    if weights is None:
        return float(np.sort(top)[int(np.floor(budget * len(top)))])
    order = np.argsort(top, kind="stable")
    refused_below = np.concatenate([[0.0], np.cumsum(weights[order])[:-1]])  # weight under each candidate
    return float(top[order][np.flatnonzero(refused_below <= budget + 1e-12)[-1]])


def reliability_diagram(confidences: np.ndarray, correct: np.ndarray, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bins = CALIBRATION_BINS
    edges = np.linspace(0, 1, bins + 1)
    which = confidence_bins(confidences, bins)
    used = [b for b in range(bins) if (which == b).any()]
    figure, axis = plt.subplots(figsize=(4.5, 4.5), dpi=100)
    axis.plot([0, 1], [0, 1], "--", color="grey", label="perfectly calibrated")
    axis.bar([(edges[b] + edges[b + 1]) / 2 for b in used], [correct[which == b].mean() for b in used],
             width=1 / bins, edgecolor="black", alpha=0.7, label="share right")
    for b in used:
        axis.annotate(str(int((which == b).sum())), ((edges[b] + edges[b + 1]) / 2, 0.02), ha="center", fontsize=6)
    axis.set(xlabel="confidence shown", ylabel="share right", xlim=(0, 1), ylim=(0, 1))
    axis.set_title(title, fontsize=9)
    axis.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def held_out_sets(validation_x: np.ndarray, validation_y: np.ndarray, seed: int,
                  threshold_on: str = "validation", writers: dict | None = None) -> dict:
    """The validation digits, and generated digits and non-digits the training never drew; with
    "validation+generated", also the generated digits the threshold is chosen on (THRESHOLD_ON); with
    "validation+writers", the held-out digits of other writers (`writers`: test split name -> (x, y)) instead, in
    one pool; with "each-collection", the same, one set per collection (COLLECTION + its name)."""
    from training.glyphs import generated_digits, generated_non_digits

    rng = np.random.default_rng(seed + 7_777)
    digits, labels = generated_digits(HELD_OUT, rng)
    sets = {"mnist": (validation_x, validation_y.astype(int)), "generated": (digits, labels.astype(int)),
            "non_digits": (generated_non_digits(HELD_OUT, rng, (validation_x, validation_y)), None)}
    if THRESHOLD_ON[threshold_on]:  # drawn after the others, which stay what they were
        more, more_labels = generated_digits(THRESHOLD_ON[threshold_on], rng)
        sets[POOLED] = (more, more_labels.astype(int))
    if threshold_on in WITH_WRITERS and not writers:
        raise ValueError(f"--refusal-held-out {threshold_on} needs a set of real digits besides MNIST "
                         "(--data unipen, ardis, optdigits or chars74k): there are no other writers to pool")
    if threshold_on == WRITERS_POOLED:
        sets[WRITERS] = (np.concatenate([x for x, _ in writers.values()]),
                        np.concatenate([y for _, y in writers.values()]).astype(int))
    if threshold_on == EACH_COLLECTION:
        sets.update({COLLECTION + name: (x, y.astype(int)) for name, (x, y) in writers.items()})
    return sets


def other_writers(tests: dict) -> dict:
    """The test splits (name -> (x, y)) of the real digit sets other than MNIST's: the writers a threshold on
    "validation+writers" is chosen on. MNIST's (and EMNIST's, its writers) test split stays for reporting."""
    return {name: pair for name, pair in tests.items() if not name.endswith(("mnist", "emnist"))}


def calibrate(predict, sets: dict, budget: float = REFUSAL_BUDGET, diagram: Path | None = None) -> dict:
    """Fit the temperature (on the validation and generated digits) and the threshold (refusing at most `budget`
    of the validation digits, and of the POOLED or WRITERS ones when the sets have them; with one set per
    COLLECTION, at most `budget` of them on average, each collection and the validation digits weighing alike);
    `predict` maps (N, 28, 28) uint8 to (N, 10) probabilities."""
    raw = {name: predict(x) for name, (x, _) in sets.items()}
    collections = [name for name in sets if name.startswith(COLLECTION)]
    threshold_sets = ["mnist"] + [name for name in (POOLED, WRITERS) if name in sets] + collections
    digit_sets = [name for name, (_, y) in sets.items() if y is not None and name not in threshold_sets[1:]]
    probabilities = np.concatenate([raw[n] for n in digit_sets])
    labels = np.concatenate([sets[n][1] for n in digit_sets])
    temperature = fit_temperature(probabilities, labels)
    scaled = {name: calibrated(p, temperature) for name, p in raw.items()}
    weights = (np.concatenate([np.full(len(sets[n][0]), 1 / (len(sets[n][0]) * len(threshold_sets)))
                               for n in threshold_sets]) if collections else None)
    threshold = choose_threshold(np.concatenate([scaled[n].max(axis=1) for n in threshold_sets]), budget, weights)
    before = calibrated(probabilities, 1.0)
    after = np.concatenate([scaled[n] for n in digit_sets])
    result = {
        "method": "temperature scaling",
        "temperature": round(temperature, 4),
        "threshold": round(threshold, 4),
        "refusal_budget": budget,
        "threshold_on": {n: len(sets[n][0]) for n in threshold_sets},
        "fitted_on": {n: len(sets[n][0]) for n in sets},
        "ece_before": round(expected_calibration_error(before.max(1), before.argmax(1) == labels), 5),
        "ece": round(expected_calibration_error(after.max(1), after.argmax(1) == labels), 5),
        "refused": {n: round(float(np.mean([verdict(p, threshold) != DIGIT for p in scaled[n]])), 5) for n in sets},
    }
    if diagram is not None:
        reliability_diagram(after.max(1), after.argmax(1) == labels, diagram,
                            f"held-out digits, T={temperature:.2f}: ECE {result['ece_before']:.2%} -> {result['ece']:.2%}")
        result["reliability_diagram"] = diagram.name
    log.info("Calibration: T=%.3f, threshold %.3f, ECE %.4f -> %.4f, refused %s", temperature, threshold,
             result["ece_before"], result["ece"], result["refused"])
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.calibrate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=Path("model") / "digits.keras")
    parser.add_argument("--refusal-budget", type=float, default=None,
                        help="share of held-out digits the threshold may refuse (default: the model's own config's)")
    parser.add_argument("--refusal-held-out", choices=tuple(THRESHOLD_ON), default=None,
                        help="the held-out digits the threshold is chosen on (default: the model's own config's)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from model.artifacts import companion_path
    from model.card import ModelCard
    from model.inference import Recognizer
    from training.data import load_datasets
    from training.splits import make_datasets

    card = ModelCard.read(args.model)
    config = TrainConfig.from_json(card.config)
    # The model's own validation split (of every dataset it trained on, as training made it): never its training data.
    datasets = load_datasets(config.data, config.data_dir, config.cache_dir, config.missing_data)
    _, validation, tests = make_datasets(datasets, config)
    recognizer = Recognizer(args.model, gate=False)
    budget = config.refusal_budget if args.refusal_budget is None else args.refusal_budget
    threshold_on = config.refusal_held_out if args.refusal_held_out is None else args.refusal_held_out
    writers = other_writers({name: (split.x, split.y) for name, split in tests.items()})
    sets = held_out_sets(validation.x, validation.y, config.seed, threshold_on, writers)
    calibration = calibrate(recognizer.probabilities, sets, budget, companion_path(args.model, "reliability.png"))
    # the card's config is what a fine-tune replays: it calibrates by the same rule
    config = dataclasses.replace(config, refusal_budget=budget, refusal_held_out=threshold_on)
    card.replace(calibration=calibration, config=config.to_json()).write(args.model)
    print(f"Calibrated {args.model}: temperature {calibration['temperature']}, "
          f"threshold {calibration['threshold']}, ECE {calibration['ece']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
