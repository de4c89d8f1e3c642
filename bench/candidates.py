"""Candidate networks side by side: every reader with every gate, on `bench/trust.py`'s sets, in one run.

Each set is drawn and preprocessed once (bench/trust.py's sets, same seeds), then read by every reader
(and by the mean of the readers' calibrated probabilities, a two-network ensemble) with every gate and
with none, for each "not sure" margin given. Prints and writes read right / refused / wrong at >= 90% per
set and combination: what decides whether a retrained network ships (issue 32). Usage:

    .venv/bin/python bench/candidates.py --reader shipped=model/digits.keras --reader new=runs/r/digits.keras \
        --gate shipped=model/digits.gate.keras --gate new=runs/g/digits.gate.keras [--sets usps_canvas,...] \
        [--cache /tmp/candidate-sets.npz]

--cache keeps the prepared sets for the next run (drawing them takes about 10 minutes); it is used only while
the files that draw and preprocess them are unchanged (SET_MAKERS), and made again otherwise.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import sys
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import trust  # noqa: E402
from bench.report import write_results  # noqa: E402
from model.confidence import AMBIGUOUS_MARGIN, DIGIT, calibrated, verdict  # noqa: E402
from model.gate import Gate  # noqa: E402
from model.inference import Recognizer, _batch  # noqa: E402
from model.preprocess import preprocess  # noqa: E402

DEFAULT_SETS = ("usps_photo", "usps_canvas", "omniglot_canvas", "generated_non_digits", "continental", "mnist_test",
                "unipen_canvas", "unipen_paper", "unipen_others_canvas", "quickdraw_canvas")
# The files whose code draws and preprocesses the sets: a cache made by other versions of them is not used.
SET_MAKERS = ("bench/trust.py", "bench/synth.py", "bench/styles.py", "model/preprocess.py", "training/render.py",
              "training/strokes.py", "training/glyphs.py")
ENSEMBLE_THRESHOLD = 0.5  # the mean of calibrated readers has no calibration of its own yet


def named(text: str) -> tuple[str, Path]:
    name, _, path = text.partition("=")
    if not path or not Path(path).exists():
        raise argparse.ArgumentTypeError(f"expected NAME=PATH to an existing .keras file, got {text!r}")
    return name, Path(path)


def threshold_of(text: str) -> tuple[str, float]:
    name, _, value = text.partition("=")
    try:
        threshold = float(value)
    except ValueError:
        threshold = None
    if not name or threshold is None or not 0.0 <= threshold <= 1.0:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE with a threshold between 0 and 1, got {text!r}")
    return name, threshold


class Prepared(NamedTuple):
    """A set's model inputs as one batch, their truths (-1: not a digit), how many inputs there were, and the
    place of each one that had ink (those without are left out, and count as refused)."""

    batch: np.ndarray
    truths: np.ndarray
    total: int
    kept: np.ndarray


def prepared(cases) -> Prepared:
    inputs, truths, kept, total = [], [], [], 0
    for place, (image, truth) in enumerate(cases):
        total += 1
        framed = preprocess(image).image
        if framed is not None:
            inputs.append(framed)
            truths.append(-1 if truth is None else truth)
            kept.append(place)
    return Prepared(_batch(np.stack(inputs)), np.array(truths), total, np.array(kept))


def makers_digest(seed: int = trust.SEED) -> str:
    return hashlib.sha256(b"".join((ROOT / name).read_bytes() for name in SET_MAKERS) + str(seed).encode()).hexdigest()


def prepared_sets(wanted, cache: Path | None, seed: int = trust.SEED) -> dict[str, Prepared]:
    """name -> each wanted set Prepared, from the cache when the same code drew it with the same seed (else drawn,
    and cached)."""
    digest = makers_digest(seed)
    if cache is not None and cache.exists():
        with np.load(cache) as stored:
            if str(stored["digest"]) == digest and all(f"{name}/{part}" in stored for name in wanted
                                                       for part in Prepared._fields):
                print(f"prepared sets from {cache}")
                return {name: Prepared(stored[f"{name}/batch"], stored[f"{name}/truths"],
                                       int(stored[f"{name}/total"]), stored[f"{name}/kept"]) for name in wanted}
        print(f"{cache} was made by other code or holds other sets: drawing them again")
    sets = trust.build_sets(seed, None)
    unknown = set(wanted) - set(sets)
    if unknown:
        raise SystemExit(f"unknown sets {sorted(unknown)}; bench/trust.py has {sorted(sets)}")
    made = {}
    for name, cases in sets.items():  # each set has a stream of its own (trust.stream): any subset draws alike
        if name in wanted:
            started = time.perf_counter()
            made[name] = prepared(cases)
            print(f"{name}: drawn and preprocessed in {time.perf_counter() - started:.0f} s", flush=True)
    if cache is not None:
        arrays = {f"{name}/{part}": np.asarray(value) for name, sets in made.items()
                  for part, value in sets._asdict().items()}
        np.savez(cache, digest=np.array(digest), **arrays)
    return made


def scored(probabilities: np.ndarray, threshold: float, likeness: np.ndarray | None, gate: Gate | None,
           truths: np.ndarray, total: int, margin: float) -> dict:
    """The app's rule (model.confidence.verdict, then the gate's word, as model.inference applies them) on every
    reading. Inputs with no ink count as refused."""
    claimed = np.array([verdict(p, threshold, margin) == DIGIT for p in probabilities], bool)
    if gate is not None:
        claimed &= np.array([gate.admits(value) for value in likeness], bool)
    top = probabilities.argmax(axis=1)
    right = (claimed & (top == truths)).sum() + (~claimed & (truths == -1)).sum()
    confident_wrong = (claimed & (top != truths) & (probabilities.max(axis=1) >= trust.CONFIDENT)).sum()
    refused = (~claimed).sum() + total - len(truths)
    return {"right": float(right / total), "refused": float(refused / total),
            "wrong_confident": float(confident_wrong / total)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reader", type=named, action="append", required=True, help="NAME=PATH, repeatable")
    parser.add_argument("--gate", type=named, action="append", default=[], help="NAME=PATH, repeatable")
    parser.add_argument("--gate-threshold", type=threshold_of, action="append", default=[],
                        help="NAME=VALUE: read the gate NAME at this threshold instead of its card's (to weigh "
                             "another refusal budget without calibrating again), repeatable")
    parser.add_argument("--sets", default=",".join(DEFAULT_SETS), help="bench/trust.py's set names, comma-separated")
    parser.add_argument("--margins", default=f"0,{AMBIGUOUS_MARGIN}", help="'not sure' margins to try")
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--cache", type=Path, default=None, help="an .npz to keep the prepared sets in")
    args = parser.parse_args()
    wanted = args.sets.split(",")
    readers = {name: Recognizer(path, gate=False) for name, path in args.reader}
    gates = {"none": None, **{name: Gate(path) for name, path in args.gate}}
    for name, threshold in args.gate_threshold:
        if name not in gates or gates[name] is None:
            parser.error(f"--gate-threshold {name}={threshold}: there is no --gate named {name!r}")
        gates[name].calibration = dataclasses.replace(gates[name].calibration, threshold=threshold)
    margins = [float(m) for m in args.margins.split(",")]
    results = {}
    for name, (batch, truths, total, _) in prepared_sets(wanted, args.cache).items():
        started = time.perf_counter()
        read = {reader: (calibrated(r.probabilities(batch[..., 0]), r.calibration.temperature),
                         r.calibration.threshold) for reader, r in readers.items()}
        if len(readers) == 2:
            (first, _), (second, _) = read.values()
            read["mean of " + " and ".join(readers)] = ((first + second) / 2, ENSEMBLE_THRESHOLD)
        rows = {}
        for gate_name, gate in gates.items():
            likeness = gate.likeness(batch) if gate else None
            for reader, (probabilities, threshold) in read.items():
                for margin in margins:
                    rows[f"{reader} + gate {gate_name}, margin {margin:g}"] = scored(
                        probabilities, threshold, likeness, gate, truths, total, margin)
        results[name] = {"n": total, "rows": rows}
        print(f"{name} (n={total}, {time.perf_counter() - started:.0f} s)")
        for label, row in rows.items():
            print(f"  {label:58s} {row['right']:7.2%} {row['refused']:7.2%} {row['wrong_confident']:7.2%}")
    write_results("candidates", {"readers": {n: str(p) for n, p in args.reader},
                                 "gates": {n: str(p) for n, p in args.gate}, "sets": results}, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
