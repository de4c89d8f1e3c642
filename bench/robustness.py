"""Robustness: digits the way users give them, read through the prediction command.

Renders MNIST **test** digits as photos (paper colour, uneven light, shadows,
ink colour, size, position, rotation, blur, noise, JPEG, EXIF-sideways),
as canvas drawings in the three canvas styles, as whole numbers of 2-5
digits (drawn and photographed; and numbers written by UNIPEN's held-out
writers with their own pen strokes, on the canvas and on paper), and renders empty inputs (blank canvases,
blank paper, pure noise). Also reads the 1,797 digits of scikit-learn's
bundled UCI optdigits set: 8x8 scans from writers who are not MNIST's.

Every file goes through `python -m model.predict --json` (`--multi` for the
numbers), and, as the baseline, through what most demos do: the whole image
in grayscale, inverted when the paper is light, resized to 28x28, into the
same model. Usage:

    .venv/bin/python bench/robustness.py [--count 400] [--seed 0] [--model model/digits.keras]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import synth  # noqa: E402
from bench.report import project_relative, write_results  # noqa: E402
from model.artifacts import SHIPPED_MODEL  # noqa: E402
from model.confidence import NOT_A_DIGIT, NOT_SURE  # noqa: E402
from model.constants import INPUT_SIZE  # noqa: E402
from training.data import load_dataset  # noqa: E402

TARGETS = {"photo": 0.995, "canvas": 0.99, "optdigits": 0.98, "number": 0.97, "empty": 1.0}
SHARED = ROOT.parent / "shared" / "data"


def _group(kind: str) -> str:
    return next(name for name in TARGETS if kind.startswith(name))


def make_inputs(folder: Path, count: int, seed: int) -> list[dict]:
    """Write the benchmark's files; returns one {path, kind, expected, multi} per file."""
    rng = np.random.default_rng(seed)
    test = load_dataset("mnist").test
    order = iter(rng.permutation(len(test)))
    cases = []

    def save(kind, image, expected, multi=False, jpeg=False, exif_turn=False):
        path = folder / f"{kind}-{len(cases):05d}.{'jpg' if jpeg else 'png'}"
        path.write_bytes(synth.encode(image, rng, jpeg, exif_turn))
        cases.append({"path": str(path), "kind": kind, "expected": expected, "multi": multi})

    for _ in range(count):
        index = next(order)
        ink = synth.pen_ink(test.x[index], 200)
        save("photo", synth.photo(ink, rng), int(test.y[index]), jpeg=rng.random() < 0.6, exif_turn=rng.random() < 0.25)
    for style in synth.CANVAS_STYLES:
        for _ in range(count):
            index = next(order)
            save(f"canvas_{style}", synth.canvas([test.x[index]], rng, style), int(test.y[index]))
    for kind in synth.NUMBER_KINDS:
        for _ in range(count // 2):
            picks = [next(order) for _ in range(int(rng.integers(2, 6)))]
            number = "".join(str(int(test.y[i])) for i in picks)
            image = synth.written_number(kind, [test.x[i] for i in picks], rng)
            save(f"number_{kind}", image, number, multi=True, jpeg=kind == "photo" and rng.random() < 0.6)
    for kind, image, number in unipen_numbers(count // 2, rng):
        save(f"number_unipen_{kind}", image, number, multi=True, jpeg=kind == "paper" and rng.random() < 0.6)
    for number in range(count):
        kind = synth.EMPTY_KINDS[number % len(synth.EMPTY_KINDS)]
        save(f"empty_{kind}", synth.empty(kind, rng), None, jpeg=kind == "blank_paper" and rng.random() < 0.5)

    from sklearn.datasets import load_digits

    optdigits = load_digits()
    for image, label in zip(optdigits.images, optdigits.target):
        save("optdigits", synth.optdigits_upsampled(image), int(label))
    return cases


def unipen_numbers(count: int, rng: np.random.Generator):
    """`count` numbers of 2-5 digits, each written by one of UNIPEN's held-out writers (never trained on): their
    own digits side by side, half on the canvas and half on paper (training.render). Yields (kind, image, number)."""
    from training import render
    from training.sources import unipen

    drawings, indices, labels = unipen.digits_part(SHARED, held_out=True)
    with np.load(SHARED / "unipen" / unipen.DIGITS_FILE.name, allow_pickle=False) as arrays:
        writers = arrays["writer"][indices]
    by_writer = {writer: np.flatnonzero(writers == writer) for writer in np.unique(writers)}
    by_writer = {writer: members for writer, members in by_writer.items() if len(members) >= 5}
    names = sorted(by_writer)
    for number in range(count):
        members = by_writer[names[int(rng.integers(len(names)))]]
        picks = rng.choice(members, int(rng.integers(2, 6)), replace=False)
        strokes = [drawings.strokes(int(indices[pick])) for pick in picks]
        text = "".join(str(int(labels[pick])) for pick in picks)
        kind = "canvas" if number % 2 == 0 else "paper"
        image = render.number_on_canvas(strokes, rng) if kind == "canvas" else render.number_on_paper(strokes, rng)
        yield kind, image, text


def read_with_command(cases: list[dict], model: Path) -> tuple[dict, float]:
    """Run the prediction command on every file; returns results by path and the seconds it took."""
    results, started = {}, time.perf_counter()
    for multi in (False, True):
        paths = [c["path"] for c in cases if c["multi"] == multi]
        command = [sys.executable, "-m", "model.predict", "--json", "--model", str(model)]
        command += ["--multi"] if multi else []
        output = subprocess.run(command + paths, cwd=ROOT, capture_output=True, text=True)
        if output.returncode not in (0, 1):
            raise SystemExit(f"model.predict failed ({output.returncode}):\n{output.stderr[-2000:]}")
        for line in output.stdout.splitlines():
            result = json.loads(line)
            results[result["path"]] = result
    return results, time.perf_counter() - started


def baseline_reading(path: str, recognizer) -> str | None:
    """What most demos do: grayscale, invert light paper, resize the whole image to 28x28."""
    gray = np.asarray(Image.open(path).convert("L"), np.float32)
    if np.median(gray) > 127:
        gray = 255 - gray
    small = cv2.resize(gray, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_AREA)
    return str(int(np.argmax(recognizer.probabilities(small[None])[0])))


def outcome(case: dict, result: dict) -> tuple[bool, bool, bool]:
    """(right, refused, right without refusals) for one case's result from the prediction command.

    Refused is "not sure" or "not a digit" (for a number: a piece of it). "Right without refusals"
    takes every refused reading's closest digit as if it had been claimed: what refusing costs."""
    if "error" in result:
        return False, False, False
    if case["multi"]:
        refused = any(d["verdict"] in (NOT_SURE, NOT_A_DIGIT) for d in result["digits"])
        closest = "".join(str(_claimed_or_closest(d)) for d in result["digits"])
        return result["number"] == case["expected"], refused, closest == case["expected"]
    if case["expected"] is None:
        return result["digit"] is None, False, result["digit"] is None
    refused = result["verdict"] in (NOT_SURE, NOT_A_DIGIT)
    return result["digit"] == case["expected"], refused, _claimed_or_closest(result) == case["expected"]


def _claimed_or_closest(reading: dict) -> int | None:
    """A reading's digit, or for a refused one the closest digit it names (the prediction contract)."""
    return reading["digit"] if reading["digit"] is not None else (reading.get("closest") or {}).get("digit")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=400,
                        help="inputs per kind (numbers: half drawn, half photographed)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", type=Path, default=SHIPPED_MODEL)
    parser.add_argument("--keep", type=Path, default=None, help="write the inputs here and keep them")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "robustness.json")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as temporary:
        folder = args.keep or Path(temporary)
        folder.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        cases = make_inputs(folder, args.count, args.seed)
        (folder / "manifest.json").write_text(json.dumps(cases))
        print(f"rendered {len(cases)} inputs in {time.perf_counter() - started:.0f} s")
        results, seconds = read_with_command(cases, args.model)

        from model.inference import Recognizer

        recognizer = Recognizer(args.model)
        tally = defaultdict(lambda: defaultdict(int))
        misses = defaultdict(list)
        for case in cases:
            right, refused, unrefused = outcome(case, results[case["path"]])
            expected = case["expected"]
            base_right = expected is not None and baseline_reading(case["path"], recognizer) == str(expected)
            for key in {case["kind"], _group(case["kind"])}:
                tally[key]["n"] += 1
                tally[key]["right"] += right
                tally[key]["refused"] += refused
                tally[key]["without_refusals"] += unrefused
                tally[key]["baseline"] += base_right
            if not right:
                misses[case["kind"]].append({"path": Path(case["path"]).name, "expected": expected,
                                             "got": results[case["path"]]})

    print(f"\nprediction command: {len(cases)} files in {seconds:.1f} s ({len(cases) / seconds:.0f} files/s)\n")
    print(f"{'kind':34} {'n':>5} {'ours':>8} {'baseline':>9} {'refused':>9} {'unrefused':>10}  target")
    report = {}
    for key in sorted(tally, key=lambda k: (_group(k), k != _group(k), k)):
        t = tally[key]
        row = {"n": t["n"], "accuracy": t["right"] / t["n"], "baseline": t["baseline"] / t["n"],
               "refused": t["refused"] / t["n"], "without_refusals": t["without_refusals"] / t["n"]}
        report[key] = row
        is_group = key == _group(key)
        target = ""
        if is_group:
            target = f"≥ {TARGETS[key]:.1%}" + ("  ok" if row["accuracy"] >= TARGETS[key] else "  MISSED")
        name = key if is_group else f"  {key}"
        print(f"{name:34} {t['n']:5d} {row['accuracy']:8.2%} {row['baseline']:9.2%} {row['refused']:9.2%} "
              f"{row['without_refusals']:10.2%}  {target}")
    print("\n(empty: share given no digit. numbers: read exactly. unrefused: right if every refused reading's closest"
          " digit had been claimed, what refusing costs. baseline: whole image resized to 28x28,"
          " which gives one digit for a number and a digit for everything empty.)")
    write_results("robustness", {"seed": args.seed, "count": args.count, "model": project_relative(args.model),
                                 "files_per_second": len(cases) / seconds, "results": report,
                                 "misses": {k: v[:20] for k, v in misses.items()}}, args.output)
    return 0 if all(report[name]["accuracy"] >= target for name, target in TARGETS.items()) else 1


if __name__ == "__main__":
    sys.exit(main())
