"""Does a fine-tune on a few corrections fix a style the model gets wrong, and at what cost?

The style: digits written like a calculator display (bench/synth.seven_segment).
The shipped model reads nearly all of those 6s as 5. The benchmark stores 50
of them as corrections (each with what the shipped model read), runs the real
command ``python -m training --fine-tune --feedback`` against the full MNIST
training set as replay, and measures, before and after, in the same run:

- held-out calculator 6s (other random draws, never stored);
- every calculator digit 0-9 (did fixing 6 break 5, or anything else?);
- the MNIST test set (from the sidecar: what the model already knew).

It runs once per feedback mode (oversample, weight); once with 63 corrections
and the default 20% held-out slice, to show the figures the sidecar records
for a store's own held-out corrections; and once where the writer also sent 5
samples of each other calculator digit (pressing Right, or correcting the
model where it was wrong), as a user writing in that style would. Usage:

    .venv/bin/python bench/feedback_finetune.py [--corrections 50] [--modes oversample,weight] [--only-mixed]

Writes bench/results/feedback_finetune.json.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import write_results  # noqa: E402
from bench.synth import seven_segment  # noqa: E402
from model.artifacts import SHIPPED_MODEL  # noqa: E402
from model.card import HOLDOUT_SPLIT, TEST_SPLIT, ModelCard  # noqa: E402
from model.inference import Recognizer  # noqa: E402
from services.corrections import CorrectionStore  # noqa: E402

STYLE_DIGIT = 6
HELD_OUT = 500
PER_DIGIT = 200


def fill_store(path: Path, recognizer: Recognizer, count: int, seed: int, others: int = 0) -> None:
    """`count` corrected 6s, and `others` truthfully labelled samples of every other calculator digit."""
    store = CorrectionStore(path)
    rng = np.random.default_rng(seed)
    labels = [STYLE_DIGIT] * count + [d for d in range(10) if d != STYLE_DIGIT for _ in range(others)]
    images = [seven_segment(label, rng) for label in labels]
    for label, image, reading in zip(labels, images, recognizer.read_many(images)):
        store.add(label, reading.model_input, image, reading.digit, reading.confidence, "shipped", "canvas")


def style_accuracy(recognizer: Recognizer, sets: dict[int, list[np.ndarray]]) -> dict[int, float]:
    return {digit: float(np.mean([r.digit == digit for r in recognizer.read_many(images)]))
            for digit, images in sets.items()}


def fine_tune(store: Path, output: Path, mode: str, holdout: float) -> tuple[ModelCard, float]:
    started = time.perf_counter()
    command = [sys.executable, "-m", "training", "--fine-tune", "--feedback", "--corrections", str(store),
               "--feedback-mode", mode, "--feedback-holdout", str(holdout), "--base-model", str(SHIPPED_MODEL),
               "--output", str(output)]
    subprocess.run(command, cwd=ROOT, check=True, env={**os.environ, "CI": "1"}, stdout=subprocess.DEVNULL)
    return ModelCard.read(output), time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corrections", type=int, default=50)
    parser.add_argument("--modes", default="oversample,weight")
    parser.add_argument("--only-mixed", action="store_true", help="run only the variant with the other digits too")
    args = parser.parse_args()

    shipped = Recognizer()
    rng = np.random.default_rng(100)
    sets = {digit: [seven_segment(digit, rng) for _ in range(HELD_OUT if digit == STYLE_DIGIT else PER_DIGIT)]
            for digit in range(10)}
    before = style_accuracy(shipped, sets)
    runs = []
    with tempfile.TemporaryDirectory() as work:
        plans = [(mode, args.corrections, 0, 0.0) for mode in args.modes.split(",")] + [("oversample", 63, 0, 0.2)]
        plans = ([] if args.only_mixed else plans) + [("oversample", args.corrections, 5, 0.0)]
        for mode, count, others, holdout in plans:
            name = f"{mode}-{count}-{others}"
            store = Path(work) / f"{name}.sqlite3"
            fill_store(store, shipped, count, seed=1, others=others)
            card, seconds = fine_tune(store, Path(work) / name / "digits.keras", mode, holdout)
            after = style_accuracy(Recognizer(Path(work) / name / "digits.keras"), sets)
            runs.append({"mode": mode, "stored": count + 9 * others, "other_digits_each": others,
                         "holdout_fraction": holdout,
                         "trained_on_corrections": card.corrections_used, "seconds": round(seconds, 1),
                         "calculator_digits_after": after,
                         "mnist_test": {"before": card.metric(TEST_SPLIT, "accuracy", before=True),
                                        "after": card.test_accuracy},
                         "store_holdout": {"count": card.data["feedback"]["holdout"],
                                           "before": card.metric(HOLDOUT_SPLIT, "accuracy", before=True),
                                           "after": card.accuracy(HOLDOUT_SPLIT)}})
            run = runs[-1]
            print(f"\n== {mode}, {count} calculator 6s + {others} of each other calculator digit stored "
                  f"({run['trained_on_corrections']} trained on, "
                  f"{run['store_holdout']['count']} held out by the store), fine-tune {seconds:.0f} s wall")
            print(f"  held-out calculator 6s ({HELD_OUT}): {before[STYLE_DIGIT]:.1%} -> {after[STYLE_DIGIT]:.1%}")
            print("  every calculator digit:  " + "  ".join(f"{d}: {before[d]:.0%}->{after[d]:.0%}" for d in range(10)))
            print(f"  MNIST test (10,000):     {run['mnist_test']['before']:.2%} -> {run['mnist_test']['after']:.2%}")
            if run["store_holdout"]["count"]:
                print(f"  store's held-out slice:  {run['store_holdout']['before']:.1%} -> {run['store_holdout']['after']:.1%}")
    results = {"style": "calculator (seven-segment) digits, bench/synth.seven_segment", "style_digit": STYLE_DIGIT,
               "calculator_digits_before": before, "runs": runs}
    write_results("feedback_finetune", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
