"""How faithful is the "why this digit" map (model/explain.py), and what does it cost?

Deletion test (Petsiuk et al., RISE, 2018): erase the input's ink pixel by
pixel, in the order the map ranks them (strongest push towards the answer
first), and follow the choice between the answer and the runner-up,
p(answer) / (p(answer) + p(runner-up)). A faithful map makes it fall fast: the
area under that curve is small. The baseline is the same erasure in a random
order, in the same run, on the same digits; the target is a clearly smaller area
(at most DELETION_TARGET of the random order's, median over digits) and a smaller
one on at least BEATS_RANDOM_TARGET of the digits. Measured on 150 digits when the
method was chosen (map/random, lower is better; squares every 2 px): the choice
with 5 px squares 0.62, 4 px 0.65, 3 px 0.71; the log-odds with 5 px squares 0.74.
Squares every 3 px instead of 2: 0.64 at half the readings; every 4 px: 0.67-0.79;
every 3 px skipping squares with fewer than 8 ink pixels: 0.645 with a third fewer
readings again (the shipped setting).
Cost: one map against one plain reading, medians, same run. Usage:

    .venv/bin/python bench/why.py [--count 300]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import write_results  # noqa: E402
from model.explain import choice, explain  # noqa: E402
from model.inference import Recognizer  # noqa: E402
from training.data import load_dataset  # noqa: E402

STEPS = 20
DELETION_TARGET = 0.75
BEATS_RANDOM_TARGET = 0.8


def deletion_curve(recognizer: Recognizer, image: np.ndarray, order: np.ndarray, answer: int, rival: int) -> float:
    """Area under the choice as the ink is erased in `order` (flat pixel indices), STEPS steps."""
    batch = np.repeat(image[None], STEPS + 1, axis=0).reshape(STEPS + 1, -1)
    for step in range(1, STEPS + 1):
        batch[step, order[: round(len(order) * step / STEPS)]] = 0
    values = choice(recognizer.probabilities(batch.reshape(-1, *image.shape)), answer, rival)
    return float(np.mean(values))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    recognizer = Recognizer()
    test = load_dataset("mnist").test
    rng = np.random.default_rng(args.seed)
    picks = rng.choice(len(test.x), args.count, replace=False)
    ours, random, map_seconds, read_seconds = [], [], [], []
    for index in picks:
        image = test.x[index]
        start = time.perf_counter()
        recognizer.read(image)
        read_seconds.append(time.perf_counter() - start)
        start = time.perf_counter()
        explanation = explain(image, recognizer.probabilities)
        map_seconds.append(time.perf_counter() - start)
        ink = np.flatnonzero(image.ravel() > 0)
        ranked = ink[np.argsort(-explanation.heat.ravel()[ink], kind="stable")]
        ours.append(deletion_curve(recognizer, image, ranked, explanation.answer, explanation.rival))
        random.append(deletion_curve(recognizer, image, rng.permutation(ink), explanation.answer, explanation.rival))
    ours, random = np.array(ours), np.array(random)
    ratio = float(np.median(ours / np.maximum(random, 1e-9)))
    results = {
        "digits": args.count,
        "deletion_area_map_median": float(np.median(ours)),
        "deletion_area_random_median": float(np.median(random)),
        "map_over_random_median": ratio,
        "map_better_than_random_share": float(np.mean(ours < random)),
        "target_ratio": DELETION_TARGET,
        "target_beats_random_share": BEATS_RANDOM_TARGET,
        "map_ms_median": float(np.median(map_seconds) * 1e3),
        "read_ms_median": float(np.median(read_seconds) * 1e3),
        "map_over_read": float(np.median(map_seconds) / np.median(read_seconds)),
    }
    print(f"{args.count} MNIST test digits. Deletion area (lower = more faithful): map {results['deletion_area_map_median']:.3f}, "
          f"random order {results['deletion_area_random_median']:.3f}; map/random median {ratio:.2f} "
          f"(target <= {DELETION_TARGET}); the map beats random on {results['map_better_than_random_share']:.0%} of digits "
          f"(target >= {BEATS_RANDOM_TARGET:.0%}).")
    print(f"Cost: one map {results['map_ms_median']:.1f} ms, one plain reading {results['read_ms_median']:.1f} ms "
          f"(medians, same run): {results['map_over_read']:.1f}x.")
    write_results("why", results)
    return 0 if ratio <= DELETION_TARGET and results["map_better_than_random_share"] >= BEATS_RANDOM_TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
