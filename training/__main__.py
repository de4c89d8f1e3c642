"""python -m training: train the digit CNN. See --help for every option and its default."""

from __future__ import annotations

import logging
import sys

from model.artifacts import ModelFileError
from training.config import build_parser, config_from_args
from training.data import DataUnavailableError
from training.feedback import NoCorrectionsError


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = config_from_args(args)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    from training.train import train

    try:
        sidecar = train(config)
    except (DataUnavailableError, NoCorrectionsError, ModelFileError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Interrupted: the previous model, if any, is untouched.", file=sys.stderr)
        return 130
    metrics, before = sidecar["metrics"], sidecar.get("metrics_before", {})
    print(f"Saved {config.output} (version {sidecar['version']}) in {sidecar['training_seconds']:.0f} s, "
          f"{sidecar['epochs_run']} epochs" + (", added to the registry" if config.register else ""))
    for name, result in metrics.items():
        was = before.get(name, {}).get("accuracy")
        print(f"  {name:<18} accuracy {result['accuracy']:.4f}" + (f"  (before: {was:.4f}, {before['version']})"
                                                                   if was is not None else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
