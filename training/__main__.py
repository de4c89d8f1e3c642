"""python -m training: train the digit CNN. See --help for every option and its default."""

from __future__ import annotations

import logging
import sys

from model.artifacts import ModelFileError
from training.config import build_parser, config_from_args
from training.data import DataUnavailableError
from training.distribute import EXIT_WORKER_LOST, DistributeError, WorkerLostError, make_strategy
from training.feedback import NoCorrectionsError
from training.shards import ShardError


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = config_from_args(args)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        # Before TensorFlow starts (importing training.train starts it): devices and cluster are set at start-up.
        strategy = make_strategy(config.strategy, config.cpu_devices)
        from training.train import train

        sidecar = train(config, strategy=strategy)
    except WorkerLostError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_WORKER_LOST
    except (DataUnavailableError, NoCorrectionsError, ModelFileError, DistributeError, ShardError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Interrupted: the previous model, if any, is untouched. Run the same command again to resume "
              "from the last finished epoch.", file=sys.stderr)
        return 130
    if sidecar.get("chief") is False:
        print(f"Worker finished {sidecar['epochs_run']} epochs; the chief evaluates and saves the model.")
        return 0
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
