"""MNIST test accuracy through the prediction command, the way a user's files go.

Saves the 10,000 MNIST test images as 28x28 PNG files, runs
`python -m model.predict --json` on all of them in one process, and compares
with the model's accuracy on the raw arrays (what training.evaluate reports),
measured in the same run. Usage:

    .venv/bin/python bench/mnist_png_accuracy.py [--model model/digits.keras] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import project_relative, write_results  # noqa: E402
from model.artifacts import SHIPPED_MODEL  # noqa: E402
from training.data import load_dataset  # noqa: E402

READ_RIGHT, REFUSED_AT_MOST = 0.9955, 0.003  # issue 32: 0.1 point below issue 14's, for a reader of every writer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=SHIPPED_MODEL)
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()
    test = load_dataset("mnist").test
    x, y = test.x[: args.limit], test.y[: args.limit]

    from model.inference import Recognizer

    raw = Recognizer(args.model).probabilities(x).argmax(axis=1)
    raw_accuracy = float((raw == y).mean())

    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for index, image in enumerate(x):
            path = Path(folder) / f"{index:05d}-label{y[index]}.png"
            Image.fromarray(image).save(path)
            paths.append(str(path))
        started = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "model.predict", "--json", "--model", str(args.model), *paths],
                                capture_output=True, text=True, cwd=ROOT)
        seconds = time.perf_counter() - started
    if result.returncode != 0:
        print(result.stderr[-2000:], file=sys.stderr)
        return 1
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["path"] for line in lines] == paths, "outputs must come in input order"
    predicted = np.array([-1 if line["digit"] is None else line["digit"] for line in lines])
    refused = np.array([line["verdict"] in ("not_sure", "not_a_digit") for line in lines])
    confident_wrong = np.array([line["digit"] is not None and line["digit"] != label and line["confidence"] >= 0.9
                                for line, label in zip(lines, y)])
    png_accuracy = float((predicted == y).mean())
    report = {
        "model": project_relative(args.model),
        "images": int(len(y)),
        "accuracy_raw_arrays": round(raw_accuracy, 5),
        "accuracy_png_through_predict": round(png_accuracy, 5),
        "refused": round(float(refused.mean()), 5),
        "wrong_with_90_percent_confidence": round(float(confident_wrong.mean()), 5),
        "no_digit": int((predicted == -1).sum()),
        "disagreements_with_raw": int((predicted != raw).sum()),
        "predict_seconds": round(seconds, 1),
        "images_per_second": round(len(y) / seconds, 1),
    }
    print(json.dumps(report, indent=2))
    write_results("mnist_png_accuracy", report)
    met = png_accuracy >= READ_RIGHT and report["refused"] <= REFUSED_AT_MOST
    print(f"read right {png_accuracy:.2%} (wanted >= {READ_RIGHT:.2%}), refused {report['refused']:.2%} "
          f"(wanted <= {REFUSED_AT_MOST:.2%}): {'ok' if met else 'MISSED'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
