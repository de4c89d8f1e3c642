"""Batch throughput of the prediction command on photos, and where the time goes.

Writes N photos (JPEG, 240-1600 px, of the test fixture's MNIST test digits on
paper; bench/synth.photo) and then, in the same run:
1. runs ``python -m model.predict --json`` on all of them, as a user would:
   wall time from process start to the last answer, images per second;
2. times each stage in process on the same files: reading and decoding
   (Pillow), preprocessing (OpenCV), the model (LiteRT, in batches of 256),
   and the process start (the command on one file: imports, model load);
3. the baseline: the same images read the common way, one by one, with the
   Keras model's ``model.predict`` (on the first 200 files);
4. the hostile corpus (tests/hostile_corpus.py: a 30000x30000 bomb, truncated
   and fake files, transparent paper...) through the command, against as many
   good photos through the command: bad input must not cost much more than good
   (target: at most HOSTILE_RATIO times).
Usage:

    .venv/bin/python bench/cli_throughput.py [--count 1000]
"""

from __future__ import annotations

import argparse
import json
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
from bench.synth import encode, pen_ink, photo  # noqa: E402

BASELINE_FILES = 200
HOSTILE_RATIO = 5.0


def command_seconds(paths: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "model.predict", "--json", *paths], cwd=ROOT, check=False,
                   capture_output=True)
    return time.perf_counter() - start


def hostile_against_good(folder: Path, good: list[str]) -> dict:
    """The hostile corpus and as many good photos, each through the command, alternately, 3 times."""
    from tests.hostile_corpus import build

    with np.load(ROOT / "tests" / "fixtures" / "mnist_test_sample.npz") as data:
        x, y = data["x"], data["y"]
    digits = {int(label): x[np.flatnonzero(y == label)[0]] for label in (3, 4, 7)}
    hostile = [str(folder / "hostile" / name) for name in build(folder / "hostile", digits)]
    good = good[:len(hostile)]
    runs = [(command_seconds(hostile), command_seconds(good)) for _ in range(3)]
    bad_seconds, good_seconds = (float(np.median(times)) for times in zip(*runs))
    return {"files": len(hostile), "hostile_seconds": bad_seconds, "good_seconds": good_seconds,
            "ratio": bad_seconds / good_seconds, "target_ratio": HOSTILE_RATIO}


def write_photos(folder: Path, count: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    with np.load(ROOT / "tests" / "fixtures" / "mnist_test_sample.npz") as data:
        x, y = data["x"], data["y"]
    rng = np.random.default_rng(seed)
    paths, labels = [], []
    for i in range(count):
        digit = i % len(x)
        image = photo(pen_ink(x[digit], int(rng.integers(40, 200))), rng)
        path = folder / f"{i:05d}.jpg"
        path.write_bytes(encode(image, rng, jpeg=True))
        paths.append(str(path))
        labels.append(int(y[digit]))
    return paths, np.array(labels)


def stage_times(paths: list[str]) -> dict:
    """Seconds spent in each stage for all files: start-up as a command on one file, the rest in process."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "model.predict", paths[0]], cwd=ROOT, check=True, capture_output=True)
    startup = time.perf_counter() - start
    from model.images import read_image
    from model.inference import Recognizer

    recognizer = Recognizer()
    from model.preprocess import preprocess

    start = time.perf_counter()
    images = [read_image(p) for p in paths]
    decode = time.perf_counter() - start
    start = time.perf_counter()
    prepared = [preprocess(image) for image in images]
    preprocessing = time.perf_counter() - start
    inputs = np.stack([p.image for p in prepared if p.image is not None])
    start = time.perf_counter()
    for first in range(0, len(inputs), 256):
        recognizer.probabilities(inputs[first : first + 256])
    model = time.perf_counter() - start
    return {"startup": startup, "decode": decode, "preprocess": preprocessing, "model": model}


def baseline(paths: list[str]) -> float:
    """Seconds per image, reading files one by one with Keras's model.predict."""
    from model.images import read_image
    from model.inference import Recognizer
    from model.preprocess import preprocess

    model = Recognizer().model
    model.predict(np.zeros((1, 28, 28, 1), np.float32), verbose=0)  # warm up
    start = time.perf_counter()
    for path in paths:
        model.predict(preprocess(read_image(path)).image.astype(np.float32)[None, ..., None], verbose=0)
    return (time.perf_counter() - start) / len(paths)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        paths, labels = write_photos(Path(folder), args.count)
        megabytes = sum(os.path.getsize(p) for p in paths) / 2**20
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "model.predict", "--json", *paths], cwd=ROOT, check=False,
                              capture_output=True, text=True)
        wall = time.perf_counter() - start
        answers = [json.loads(line) for line in done.stdout.splitlines()]
        accuracy = float(np.mean([a.get("digit") == label for a, label in zip(answers, labels)]))
        stages = stage_times(paths)
        per_image_baseline = baseline(paths[:BASELINE_FILES])
        hostile = hostile_against_good(Path(folder), paths)

    ours = args.count / wall
    theirs = 1 / per_image_baseline
    print(f"{args.count} JPEG photos ({megabytes:.0f} MB, 240-1600 px), {os.cpu_count()} CPUs\n")
    print(f"python -m model.predict --json: {wall:.1f} s wall, {ours:.0f} images/s, accuracy {accuracy:.1%}")
    print(f"baseline, one by one with model.predict: {theirs:.0f} images/s (on {BASELINE_FILES} files); "
          f"the command is {ours / theirs:.1f}x faster, start-up included\n")
    total = sum(stages.values())
    print(f"{'stage (in process)':<22}{'seconds':>9}{'ms/image':>10}{'share':>8}")
    for name, seconds in stages.items():
        per_image = "" if name == "startup" else f"{seconds / args.count * 1e3:>10.2f}"
        print(f"{name:<22}{seconds:>9.2f}{per_image:>10}{seconds / total:>8.0%}")
    print(f"\nhostile corpus ({hostile['files']} files) through the command: {hostile['hostile_seconds']:.1f} s; "
          f"as many good photos: {hostile['good_seconds']:.1f} s (medians of 3); ratio {hostile['ratio']:.2f} "
          f"(target <= {HOSTILE_RATIO})")
    results = {"count": args.count, "hostile_corpus": hostile,
               "megabytes": round(megabytes, 1), "wall_seconds": wall, "images_per_second": ours,
               "accuracy": accuracy, "baseline_images_per_second": theirs, "stages_seconds": stages}
    write_results("cli_throughput", results)
    return 0 if done.returncode == 0 and hostile["ratio"] <= HOSTILE_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
