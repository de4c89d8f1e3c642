"""python -m training: train the digit CNN. See --help for every option and its default."""

from __future__ import annotations

import logging
import sys

from training.config import build_parser, config_from_args
from training.data import DataUnavailableError


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
    except DataUnavailableError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Interrupted: the previous model, if any, is untouched.", file=sys.stderr)
        return 130
    metrics = sidecar["metrics"]
    print(f"Saved {config.output} (version {sidecar['version']}) in {sidecar['training_seconds']:.0f} s, "
          f"{sidecar['epochs_run']} epochs; " + ", ".join(f"{k} accuracy {v['accuracy']:.4f}" for k, v in metrics.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
