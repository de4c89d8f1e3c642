"""One prediction, in process: preprocessing plus the model, for one canvas drawing at a time.

Compares, on the same inputs in the same run, the ways to run the model on one image:
- ``model.predict`` (the common way; the baseline);
- ``model.predict_on_batch``;
- the Keras model called directly, and a compiled ``tf.function`` with a fixed input signature;
- the LiteRT export (what the app and the CLI use: ``Recognizer``).
Each is timed as preprocessing + model, per call; medians and p95 are printed
with two ratios: against ``model.predict`` (what most demos call, with 40-70 ms
of per-call overhead), and against the fastest TensorFlow path measured in the
same run (``predict_on_batch`` or the ``tf.function``), which is the fair one.
Also the largest probability difference from ``model.predict`` over all inputs.
With ``--previous OTHER.keras`` it also times the other model's ``Recognizer.read``
in alternating rounds with ours, on the same drawings, and reports the ratio of
the medians (a retrained model must stay within MAX_SLOWDOWN of the one it replaces).
Usage:

    .venv/bin/python bench/latency.py [--model model/digits.keras] [--previous OTHER.keras] [--inputs 200]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import project_relative, write_results  # noqa: E402
from bench.synth import canvas  # noqa: E402
from model.artifacts import SHIPPED_MODEL  # noqa: E402
from model.inference import Recognizer  # noqa: E402
from model.preprocess import preprocess  # noqa: E402


def drawings(count: int, seed: int = 0) -> list[np.ndarray]:
    """Canvas drawings (RGBA, 280x280) of the test fixture's MNIST test digits."""
    with np.load(ROOT / "tests" / "fixtures" / "mnist_test_sample.npz") as data:
        x = data["x"]
    rng = np.random.default_rng(seed)
    return [canvas([x[i % len(x)]], rng, "white_on_black", size=280) for i in range(count)]


# The TensorFlow ways to run the model on one image that are not model.predict's per-call overhead.
TENSORFLOW_PATHS = ("model.predict_on_batch", "tf.function, fixed signature")
OURS = "LiteRT export (Recognizer.read)"
MAX_SLOWDOWN = 1.2  # a new model's p50 against the model it replaces, same run
GATE_MAX_SLOWDOWN = 1.3  # reading with the gate against the reader alone, same run


def compared_with_previous(ours: Recognizer, previous: Recognizer, images: list, rounds: int = 10,
                           max_ratio: float = MAX_SLOWDOWN) -> dict:
    """p50 of one Recognizer.read for both models, timed in alternating rounds so that a busy machine
    slows both alike; the ratio is ours over the previous model's."""
    times = {"ours": [], "previous": []}
    for round_index in range(rounds):
        order = [("ours", ours), ("previous", previous)]
        for name, recognizer in order if round_index % 2 == 0 else order[::-1]:
            seconds, _ = timed(recognizer.read, images, len(images))
            times[name].extend(seconds)
    p50 = {name: float(np.median(seconds) * 1e3) for name, seconds in times.items()}
    return {"ours_p50_ms": p50["ours"], "previous_p50_ms": p50["previous"], "ratio": p50["ours"] / p50["previous"],
            "calls_each": len(times["ours"]), "max_ratio": max_ratio, "met": p50["ours"] / p50["previous"] <= max_ratio}


def timed(function, inputs: list, calls: int) -> tuple[np.ndarray, list]:
    """Per-call seconds and the results, after two warm-up calls."""
    for item in inputs[:2]:
        function(item)
    seconds, results = [], []
    for i in range(calls):
        item = inputs[i % len(inputs)]
        start = time.perf_counter()
        results.append(function(item))
        seconds.append(time.perf_counter() - start)
    return np.array(seconds), results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inputs", type=int, default=200, help="distinct drawings, each read once per method")
    parser.add_argument("--baseline-calls", type=int, default=100, help="calls of the slow model.predict")
    parser.add_argument("--check", type=int, default=1000, help="inputs for the probability comparison")
    parser.add_argument("--model", type=Path, default=SHIPPED_MODEL)
    parser.add_argument("--previous", type=Path, default=None,
                        help="the model this one replaces: both timed in the same run, alternating")
    args = parser.parse_args()

    recognizer = Recognizer(args.model)
    images = drawings(args.inputs)
    model = recognizer.model  # Keras, for the alternatives
    import tensorflow as tf

    compiled = tf.function(model, input_signature=[tf.TensorSpec((1, 28, 28, 1), tf.float32)], reduce_retracing=True)

    def batch(image):
        return preprocess(image).image.astype(np.float32)[None, ..., None]

    methods = {
        "model.predict (baseline)": lambda im: model.predict(batch(im), verbose=0)[0],
        "model.predict_on_batch": lambda im: np.asarray(model.predict_on_batch(batch(im)))[0],
        "model(x) eager call": lambda im: model(batch(im), training=False).numpy()[0],
        "tf.function, fixed signature": lambda im: compiled(tf.constant(batch(im))).numpy()[0],
        "LiteRT export (Recognizer.read)": lambda im: np.array(recognizer.read(im).probabilities),
        "preprocessing alone": lambda im: batch(im),
    }
    rows = {}
    for name, function in methods.items():
        calls = args.baseline_calls if name.startswith("model.predict (") else args.inputs
        seconds, _ = timed(function, images, calls)
        rows[name] = {"p50_ms": float(np.median(seconds) * 1e3), "p95_ms": float(np.percentile(seconds, 95) * 1e3),
                      "calls": calls}
    base = rows["model.predict (baseline)"]["p50_ms"]
    fastest_tf = min(TENSORFLOW_PATHS, key=lambda name: rows[name]["p50_ms"])
    print(f"One prediction (preprocessing + model), {os.cpu_count()} CPUs, {args.inputs} canvas drawings\n")
    print(f"{'method':<34}{'p50 ms':>9}{'p95 ms':>9}{'vs model.predict':>18}{'vs fastest TF':>15}")
    for name, row in rows.items():
        row["speedup_vs_baseline"] = base / row["p50_ms"]
        row["speedup_vs_fastest_tensorflow"] = rows[fastest_tf]["p50_ms"] / row["p50_ms"]
        print(f"{name:<34}{row['p50_ms']:>9.2f}{row['p95_ms']:>9.2f}{row['speedup_vs_baseline']:>17.1f}x"
              f"{row['speedup_vs_fastest_tensorflow']:>14.2f}x")
    print(f"\nfastest TensorFlow path: {fastest_tf}")

    # Same answers: the export against Keras on many model inputs (drawings and noise).
    inputs = np.stack([preprocess(im).image for im in images])
    noise = np.random.default_rng(1).integers(0, 256, (max(0, args.check - len(inputs)), 28, 28), dtype=np.uint8)
    inputs = np.concatenate([inputs, noise])
    difference = float(np.abs(recognizer.probabilities(inputs)
                              - model.predict(inputs.astype(np.float32)[..., None], batch_size=256, verbose=0)).max())
    print(f"\nlargest probability difference, LiteRT vs model.predict, {len(inputs)} inputs: {difference:.1e}")
    results = {"methods": rows, "fastest_tensorflow": fastest_tf, "ours": OURS,
               "speedup_vs_model_predict": rows[OURS]["speedup_vs_baseline"],
               "speedup_vs_fastest_tensorflow": rows[OURS]["speedup_vs_fastest_tensorflow"],
               "max_probability_difference": difference, "compared_inputs": len(inputs),
               "model": project_relative(args.model)}
    if args.previous is not None:
        versus = compared_with_previous(recognizer, Recognizer(args.previous), images)
        versus["previous"] = project_relative(args.previous)
        print(f"\nthis model vs the previous one ({versus['previous']}), {versus['calls_each']} calls each, "
              f"alternating: p50 {versus['ours_p50_ms']:.3f} vs {versus['previous_p50_ms']:.3f} ms, "
              f"ratio {versus['ratio']:.2f} "
              f"({'ok' if versus['ratio'] <= MAX_SLOWDOWN else 'MISSED'}: at most {MAX_SLOWDOWN})")
        results["versus_previous"] = versus
    if recognizer.gate is not None:  # what the gate costs: the same model read with and without it
        gated = compared_with_previous(recognizer, Recognizer(args.model, gate=False), images,
                                       max_ratio=GATE_MAX_SLOWDOWN)
        print(f"\nwith the gate vs the reader alone, {gated['calls_each']} calls each, alternating: "
              f"p50 {gated['ours_p50_ms']:.3f} vs {gated['previous_p50_ms']:.3f} ms, ratio {gated['ratio']:.2f} "
              f"({'ok' if gated['met'] else 'MISSED'}: at most {GATE_MAX_SLOWDOWN})")
        results["gate_versus_reader_alone"] = gated
    write_results("latency", results)
    return 0 if all(results[k]["met"] for k in ("versus_previous", "gate_versus_reader_alone") if k in results) else 1


if __name__ == "__main__":
    sys.exit(main())
