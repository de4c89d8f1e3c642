"""Users teach the gate: does a fine-tune on 50 "not a digit" corrections of one doodle refuse it, at what cost?

The doodle: a heart drawn on the canvas (bench/styles.DOODLES, its own pen, not the training generator's),
which the shipped gate admits as a digit half the time. The benchmark stores 50 of them as a user would
(Wrong → "not a digit": label NOT_A_DIGIT, with what the model read), runs the gate's fine-tune that a user's
"Fine-tune" starts (training.teach_gate.gate_config: the recipe in the gate's card, so it replays the gate's
training data, digits of every writer and the non-digits, at the teaching rate) as a command, puts the new
gate beside the same reader, and measures before and after, in the same run, with the same renderings:

- held-out hearts (other random draws, never stored): refused;
- the other doodles of bench/styles.DOODLES, the Omniglot drawings (both ways) and the generated non-digits
  of bench/trust.py: refused (does it spread, and is nothing lost?);
- USPS (shared; never trained on) as photos and as canvas strokes, MNIST test, held-out ARDIS:
  read right and refused, as bench/trust.py reads them.

Bars (exit 1 when one is missed): ≥ 90 % of the held-out hearts refused after; USPS and MNIST refusals at
most 0.1 points above before. Usage:

    .venv/bin/python bench/gate_feedback.py [--doodle heart] [--corrections 50] [--data-dir ../shared/data]
        [--usps-limit N] [--output F]

Writes bench/results/gate_feedback.json (another doodle: gate_feedback_DOODLE.json).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import styles, trust  # noqa: E402
from bench.report import RESULTS, write_results  # noqa: E402
from model.artifacts import SHIPPED_MODEL, atomic_write_json  # noqa: E402
from model.constants import NOT_A_DIGIT  # noqa: E402
from model.gate import gate_path  # noqa: E402
from model.inference import Recognizer  # noqa: E402
from services.corrections import CorrectionStore  # noqa: E402
from training.config import TrainConfig  # noqa: E402
from training.teach_gate import gate_config  # noqa: E402

HELD_OUT = 500  # fresh drawings of the taught doodle
PER_DOODLE = 200  # of every other doodle
DIGIT_SETS = ("usps_photo", "usps_canvas", "mnist_test", "ardis_heldout")
NON_DIGIT_SETS = ("omniglot_canvas", "omniglot_photo", "generated_non_digits")  # what the gate refused before
DOODLE_REFUSED_MIN = 0.90
REFUSAL_RISE_MAX = 0.001  # USPS and MNIST: at most 0.1 points more refused than before
STORE_SEED, MEASURE_SEED = 1, 100


def fill_store(path: Path, recognizer: Recognizer, doodle: str, count: int) -> None:
    """`count` drawings of the doodle, stored as the app stores "Wrong → not a digit"."""
    rng = np.random.default_rng(STORE_SEED)
    images = [styles.doodle(doodle, rng) for _ in range(count)]
    store = CorrectionStore(path)
    for image, reading in zip(images, recognizer.read_many(images)):
        store.add(NOT_A_DIGIT, reading.model_input, image, reading.closest, reading.confidence, "shipped", "canvas")


def fine_tune_gate(store: Path, reader: Path, work: Path, data_dir: Path | None) -> tuple[Path, float]:
    """The gate's fine-tune a user's "Fine-tune" starts (training.teach_gate: the gate card's own recipe, at the
    teaching rate), run as a command, writing the new gate beside a copy of the reader; returns that reader's
    path and the fine-tune's wall time."""
    output = work / "digits.keras"
    work.mkdir(parents=True)
    for companion in reader.parent.glob(f"{reader.stem}.*"):  # the reader's own set, not its gate
        if not companion.name.startswith(gate_path(reader).stem):
            shutil.copy2(companion, work / companion.name.replace(reader.stem, output.stem, 1))
    users_fine_tune = TrainConfig(fine_tune=True, feedback=True, corrections=store, base_model=reader,
                                  output=output, data_dir=data_dir)
    config_file = work / "gate-config.json"
    atomic_write_json(config_file, gate_config(users_fine_tune, reader).to_json())
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "training", "--config", str(config_file)],
                   cwd=ROOT, check=True, env={**os.environ, "CI": "1"}, stdout=subprocess.DEVNULL)
    return output, time.perf_counter() - started


def read_both(recognizers: dict[str, Recognizer], cases, chunk: int = 256) -> dict[str, dict]:
    """trust.score of one set for each recognizer, every chunk rendered once and read by all of them."""
    readings = {name: [] for name in recognizers}
    expected, batch = [], []

    def flush():
        for name, recognizer in recognizers.items():
            readings[name] += recognizer.read_many(batch)
        batch.clear()

    for image, truth in cases:
        batch.append(image)
        expected.append(truth)
        if len(batch) == chunk:
            flush()
    flush()
    return {name: trust.score(readings[name], expected)[0] for name in recognizers}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--doodle", default="heart", choices=sorted(styles.DOODLES))
    parser.add_argument("--corrections", type=int, default=50)
    parser.add_argument("--model", type=Path, default=SHIPPED_MODEL, help="the reader whose gate is taught")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="the folder of the gate recipe's datasets (default: the app's data folder)")
    parser.add_argument("--usps-limit", type=int, default=None, help="read only the first N USPS digits")
    parser.add_argument("--output", type=Path, default=None,
                        help="default: bench/results/gate_feedback.json for the heart, gate_feedback_DOODLE.json else")
    args = parser.parse_args()

    before = Recognizer(args.model)
    if before.gate is None:
        print(f"error: {args.model} has no gate beside it ({gate_path(args.model)}): nothing to teach.",
              file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as work:
        fill_store(Path(work) / "corrections.sqlite3", before, args.doodle, args.corrections)
        tuned, seconds = fine_tune_gate(Path(work) / "corrections.sqlite3", args.model, Path(work) / "tuned",
                                        args.data_dir)
        after = Recognizer(tuned)
        both = {"before": before, "after": after}
        rng = np.random.default_rng(MEASURE_SEED)
        doodles = {name: read_both(both, ((styles.doodle(name, rng), None)
                                          for _ in range(HELD_OUT if name == args.doodle else PER_DOODLE)))
                   for name in styles.DOODLES}
        sets = trust.build_sets(trust.SEED, args.usps_limit)
        digits = {name: read_both(both, sets[name]) for name in DIGIT_SETS}
        non_digits = {name: read_both(both, sets[name]) for name in NON_DIGIT_SETS}
        thresholds = {"before": before.gate.threshold, "after": after.gate.threshold}

    print(f"fine-tune on {args.corrections} '{args.doodle}' corrections: {seconds:.0f} s wall; gate threshold "
          f"{thresholds['before']:.3f} -> {thresholds['after']:.3f}")
    print(f"{'set':16} {'n':>6}  {'refused before -> after':>24}  {'right before -> after':>22}")
    for name, row in {**doodles, **non_digits, **digits}.items():
        b, a = row["before"], row["after"]
        print(f"{name + (' (taught)' if name == args.doodle else ''):16} {b['n']:6d}  "
              f"{b['refused']:10.2%} -> {a['refused']:7.2%}   {b['right']:9.2%} -> {a['right']:7.2%}")
    missed = []
    taught = doodles[args.doodle]["after"]["refused"]
    if taught < DOODLE_REFUSED_MIN:
        missed.append(f"{args.doodle} refused {taught:.2%} after (wanted >= {DOODLE_REFUSED_MIN:.0%})")
    for name in ("usps_photo", "usps_canvas", "mnist_test"):
        rise = digits[name]["after"]["refused"] - digits[name]["before"]["refused"]
        if rise > REFUSAL_RISE_MAX:
            missed.append(f"{name} refused {rise * 100:+.2f} points (wanted at most +{REFUSAL_RISE_MAX * 100:.1f})")
    print("\n" + ("MISSED: " + "; ".join(missed) if missed else "every bar met"))
    write_results("gate_feedback", {
        "doodle": args.doodle, "corrections": args.corrections, "fine_tune_seconds": round(seconds, 1),
        "thresholds": thresholds, "doodles": doodles, "non_digits": non_digits, "digits": digits,
        "missed": missed,
        "bars": {"doodle_refused_min": DOODLE_REFUSED_MIN, "refusal_rise_max": REFUSAL_RISE_MAX}},
        args.output or RESULTS / ("gate_feedback.json" if args.doodle == "heart"
                                  else f"gate_feedback_{args.doodle}.json"))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
