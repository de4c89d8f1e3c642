"""Blend a finished fine-tune with its base model at several shares, each measured and calibrated as training does.

A fine-tune with --blend-base does this in one run; this tries several shares on one fine-tune without training
again. Each blend is written as a model of its own, with a card whose config is the fine-tune's with its
blend_base: ``python -m training --config`` with that config trains it again from scratch.

    python -m training.blend --fine-tuned runs/r5/digits.keras --share 0.3 --share 0.5 --output-dir runs/b5
    # -> runs/b5/blend-0.3/digits.keras, runs/b5/blend-0.5/digits.keras
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path

from model.artifacts import ModelFileError, companion_path
from model.card import ModelCard
from training.config import TrainConfig
from training.data import DataUnavailableError
from training.weights import BlendError, blend_with_base

log = logging.getLogger(__name__)


def blend_output(output_dir: Path, share: float, name: str) -> Path:
    return Path(output_dir) / f"blend-{share:g}" / name


def blend(fine_tuned: Path, shares: list[float], output_dir: Path, datasets=None) -> list[ModelCard]:
    """Write one model per share: the fine-tune blended with its base, measured on the fine-tune's own
    held-out sets (the same seeded splits) and calibrated again. `datasets`: loaded as its card names them
    unless given."""
    from model.loading import load_model
    from training.train import Timings, base_of, evaluate_and_save, training_inputs

    card = ModelCard.read(fine_tuned)
    config = TrainConfig.from_json(card.config or {})
    if not config.fine_tune or config.base_model is None:
        raise BlendError(f"{fine_tuned} is not a fine-tune of a named base model (its card says fine_tune "
                         f"{config.fine_tune}, base_model {config.base_model}): there is nothing to blend it with.")
    # every blend's config checked (a share of 1 or more is refused) before the minutes of loading the data
    blends = [dataclasses.replace(config, blend_base=share, output=blend_output(output_dir, share, fine_tuned.name))
              for share in shares]
    for blended in blends:
        if Path(blended.output).exists():
            raise ModelFileError(f"{blended.output} already exists: name another --output-dir.")
    inputs = training_inputs(config, datasets)
    base = base_of(config, inputs, chief=True)
    history = json.loads(companion_path(fine_tuned, "history.json").read_text())
    epochs = card.epochs_run or len(history.get("loss", [])) or 1
    timings = Timings(card.data_loading_seconds or 0.0, card.training_seconds or 0.0,
                      [card.epoch_seconds_median or 0.0] * epochs)
    cards = []
    for blended in blends:
        model = load_model(fine_tuned)
        blend_with_base(model, config.base_model, blended.blend_base)
        cards.append(evaluate_and_save(model, blended, inputs, history, timings,
                                       ModelCard(distribution=card.distribution, **base.card_fields)))
        log.info("Blend %g: %s", blended.blend_base, {k: round(m.accuracy, 5) for k, m in cards[-1].metrics.items()})
    return cards


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.blend", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fine-tuned", type=Path, required=True, help="a .keras fine-tune (its card names its base)")
    parser.add_argument("--share", type=float, action="append", required=True,
                        help="the base model's share of every weight, from 0 to below 1 (repeat for several blends)")
    parser.add_argument("--output-dir", type=Path, required=True, help="each blend goes to DIR/blend-SHARE/")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cards = blend(args.fine_tuned, args.share, args.output_dir)
    except (ModelFileError, DataUnavailableError, ValueError) as error:  # BlendError is a ValueError
        print(f"error: {error}", file=sys.stderr)
        return 1
    for share, card in zip(args.share, cards):
        print(f"{blend_output(args.output_dir, share, args.fine_tuned.name)} (version {card.version}): "
              + ", ".join(f"{name} {figures.accuracy:.4f}" for name, figures in card.metrics.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
