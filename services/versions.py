"""python -m services.versions: list, compare, activate, roll back and delete model versions.

Every model the app trains (and every ``python -m training --register`` run)
is kept in the registry with its sidecar; the active one is what every app
session and ``python -m model.predict`` use. Changing it takes effect for
running apps on their next interaction. See model/registry.py for the layout.
"""

from __future__ import annotations

import argparse
import json
import sys

from model.artifacts import ModelFileError
from model.card import COMPARED, HEADLINE, TEST_SPLIT, figure_label, is_percent
from model.registry import ModelVersion, Registry
from services.model_store import open_registry

CONFUSION_WIDTH = 5


def summary(version: ModelVersion, active: str) -> dict:
    """One version in a line of facts: what `list` prints and the app's table shows.

    Its figures are the card's HEADLINE ones."""
    card = version.card
    return {
        "version": version.version,
        "active": version.version == active,
        "created": card.created,
        "architecture": card.architecture,
        "trained_on": card.trained_on,
        "fine_tuned_from": card.fine_tuned_from,
        "corrections": card.corrections_used,
        **card.headline(),
    }


def metric_rows(versions: list[ModelVersion]) -> list[tuple[str, str, list]]:
    """Metrics of several versions, as (label, Metrics field, one value per version in the order given), for
    side-by-side tables; MNIST test first, the rest by name."""
    splits = sorted({split for v in versions for split in v.card.metrics}, key=lambda s: (s != TEST_SPLIT, s))
    rows = []
    for split in splits:
        for name in COMPARED:
            values = [v.card.metric(split, name) for v in versions]
            if any(value is not None for value in values):
                rows.append((figure_label(split, name), name, values))
    return rows


def _format(value, metric: str) -> str:
    if value is None:
        return "-"
    if is_percent(metric):
        return f"{value:.4%}"
    return f"{value:.1f}" if isinstance(value, float) else str(value)


def _confusion_lines(matrix: list[list[int]] | None) -> list[str]:
    if matrix is None:
        return ["(no confusion matrix recorded)"]
    header = "t\\p " + "".join(f"{p:>{CONFUSION_WIDTH}}" for p in range(len(matrix)))
    return [header] + [f"{t:>3} " + "".join(f"{n:>{CONFUSION_WIDTH}}" for n in row) for t, row in enumerate(matrix)]


def print_comparison(registry: Registry, names: list[str]) -> None:
    versions = [registry.get(name) for name in names]
    width = max(28, *(len(n) + 2 for n in names))
    rows = metric_rows(versions)
    labels = max([32] + [len(label) + 2 for label, _, _ in rows])
    print(f"{'':<{labels}}" + "".join(f"{n:>{width}}" for n in names))
    for label, metric, values in rows:
        print(f"{label:<{labels}}" + "".join(f"{_format(v, metric):>{width}}" for v in values))
    print("\nMNIST test confusion matrices (rows: true digit, columns: predicted)")
    blocks = [_confusion_lines(registry.confusion(name)) for name in names]
    block_width = max(len(line) for block in blocks for line in block) + 4
    print("".join(f"{name:<{block_width}}" for name in names))
    for lines in zip(*(block + [""] * (11 - len(block)) for block in blocks)):
        print("".join(f"{line:<{block_width}}" for line in lines))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training.models", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="every version, newest first; * marks the active one")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    compare = commands.add_parser("compare", help="metrics and confusion matrices side by side")
    compare.add_argument("versions", nargs="+", help="two or more versions (see `list`)")
    activate = commands.add_parser("activate", help="make a version the one every session uses")
    activate.add_argument("version")
    commands.add_parser("rollback", help="re-activate the version that was active before the current one")
    delete = commands.add_parser("delete", help="remove a version for good (not the active or shipped one)")
    delete.add_argument("version")
    return parser


def main(argv=None, registry: Registry | None = None) -> int:
    args = build_parser().parse_args(argv)
    registry = registry or open_registry()
    try:
        if args.command == "list":
            active = registry.active().version
            rows = [summary(v, active) for v in registry.versions()]
            if args.json:
                print(json.dumps(rows, indent=2))
            else:
                width = max(len(figure.label) for figure in HEADLINE) + 2
                print(f"  {'version':<18}" + "".join(f"{figure.label:>{width}}" for figure in HEADLINE)
                      + f"  {'architecture':<14}trained on")
                for row in rows:
                    print(f"{'*' if row['active'] else ' '} {row['version']:<18}"
                          + "".join(f"{_format(row[f.key], f.metric):>{width}}" for f in HEADLINE)
                          + f"  {row['architecture']:<14}{row['trained_on']}"
                          + (f", fine-tuned from {row['fine_tuned_from']}" if row["fine_tuned_from"] else ""))
        elif args.command == "compare":
            print_comparison(registry, args.versions)
        elif args.command == "activate":
            print(f"Active: {registry.activate(args.version).version}")
        elif args.command == "rollback":
            print(f"Rolled back; active: {registry.rollback().version}")
        else:
            registry.delete(args.version)
            print(f"Deleted {args.version}")
    except (ModelFileError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
