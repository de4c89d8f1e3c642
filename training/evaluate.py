"""python -m training.evaluate [MODEL] [--compare OTHER]: test-set metrics and figures.

Writes, beside each model (or in --output-dir): <name>.evaluation.json,
<name>.confusion.png and <name>.worst.png; prints a classification report.
With --compare, prints both models side by side.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path

import numpy as np

from model.artifacts import SHIPPED_MODEL, ModelFileError, atomic_write_json, companion_path
from model.card import Metrics
from training import metrics
from training.data import DEFAULT_CACHE_DIR, DataUnavailableError, Split, load_dataset

WORST_COUNT = 32


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """One model on the test set: its figures (training.metrics), per digit, and every answer."""

    metrics: Metrics
    per_class: dict[str, dict]
    report_text: str
    predicted: np.ndarray
    confidence: np.ndarray


def evaluate(recognizer, test: Split) -> Evaluation:
    """Accuracy, per-class precision/recall/F1 and the confusion matrix of one model."""
    labels, probabilities = metrics.outputs(recognizer.probabilities, test, batch_size=2048)
    predicted = probabilities.argmax(axis=1)
    return Evaluation(metrics.summarize(labels, probabilities), metrics.per_class(labels, predicted),
                      metrics.report_text(labels, predicted), predicted, probabilities.max(axis=1))


def write_outputs(model_path: Path, result: Evaluation, test: Split, output_dir: Path | None) -> dict[str, Path]:
    from training.reports import plot_confusion, plot_worst

    base = (output_dir / model_path.name) if output_dir else model_path
    paths = {kind: companion_path(base, kind) for kind in ("evaluation.json", "confusion.png", "worst.png")}
    figures = result.metrics
    wrong = np.flatnonzero(result.predicted != test.y)
    worst = wrong[np.argsort(-result.confidence[wrong])][:WORST_COUNT]
    plot_confusion(np.array(figures.confusion_matrix), paths["confusion.png"],
                   f"{model_path.name}: accuracy {figures.accuracy:.4%} on {figures.count} test images")
    plot_worst(test.x[worst], test.y[worst], result.predicted[worst], result.confidence[worst], paths["worst.png"])
    atomic_write_json(paths["evaluation.json"], {
        "model": str(model_path), "dataset": "mnist test", "accuracy": figures.accuracy, "errors": figures.errors,
        "count": figures.count, "per_class": result.per_class, "confusion_matrix": figures.confusion_matrix})
    return paths


def comparison_table(names: list[str], results: list[Evaluation]) -> str:
    header = f"{'':>10}" + "".join(f"{name[-24:]:>26}" for name in names)
    lines = [header, f"{'accuracy':>10}" + "".join(f"{r.metrics.accuracy:>26.4%}" for r in results),
             f"{'errors':>10}" + "".join(f"{r.metrics.errors:>26d}" for r in results)]
    for digit in range(10):
        lines.append(f"{'F1 ' + str(digit):>10}" + "".join(f"{r.per_class[str(digit)]['f1-score']:>26.4f}" for r in results))
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", nargs="?", type=Path, default=SHIPPED_MODEL, help=f"model to evaluate (default: {SHIPPED_MODEL})")
    parser.add_argument("--compare", type=Path, help="a second model to show side by side")
    parser.add_argument("--output-dir", type=Path, help="where to write the figures and JSON (default: beside each model)")
    parser.add_argument("--limit", type=int, help="evaluate on the first N test images only")
    parser.add_argument("--data-dir", type=Path, help="folder with mnist.npz or the IDX files")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from model.inference import Recognizer

    try:
        test = load_dataset("mnist", args.data_dir, args.cache_dir).test
        if args.limit:
            test = Split(test.x[: args.limit], test.y[: args.limit])
        models = [args.model] + ([args.compare] if args.compare else [])
        results = []
        for path in models:
            result = evaluate(Recognizer(path), test)
            written = write_outputs(path, result, test, args.output_dir)
            print(f"== {path}: accuracy {result.metrics.accuracy:.4%} ({result.metrics.errors} errors in "
                  f"{result.metrics.count})")
            print(result.report_text)
            print("wrote " + ", ".join(str(p) for p in written.values()))
            results.append(result)
    except (ModelFileError, DataUnavailableError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if len(results) == 2:
        print(comparison_table([str(m) for m in models], results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
