"""python -m training: train the digit CNN. See --help for every option and its default."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time

from model.artifacts import ModelFileError
from services.jobs import PARENT_VARIABLE
from training.config import parse_config
from training.data import DataUnavailableError
from training.distribute import EXIT_WORKER_LOST, DistributeError, WorkerLostError, make_strategy
from training.feedback import NoCorrectionsError, ReplayError
from training.shards import ShardError

EXIT_SERVER_GONE = 3  # the app server that started this worker is gone


def _end_with_parent() -> None:
    """A worker started by an app server ends when that server is gone (killed, its machine lost): its run is
    then marked failed (services.job_lease), and nothing trains on that nobody watches or can cancel."""
    parent = os.environ.get(PARENT_VARIABLE)
    if not parent:
        return

    def watch():
        while os.getppid() == int(parent):
            time.sleep(1.0)
        print("error: the app server that started this training is gone; stopping.", file=sys.stderr, flush=True)
        os._exit(EXIT_SERVER_GONE)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def main(argv=None) -> int:
    _end_with_parent()
    try:
        config, args = parse_config(argv)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        # Before TensorFlow starts (train() starts it): devices and cluster are set at start-up.
        strategy = make_strategy(config.strategy, config.cpu_devices)
    except DistributeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    try:
        config = config.with_output()  # a new folder of its own when --output is not given
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        from training.train import train

        card = train(config, strategy=strategy)
    except WorkerLostError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_WORKER_LOST
    except (DataUnavailableError, NoCorrectionsError, ReplayError, ModelFileError, DistributeError,
            ShardError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Interrupted: the previous model, if any, is untouched. Run the same command again to resume "
              "from the last finished epoch.", file=sys.stderr)
        return 130
    if not card.version:  # a worker of a cluster: the chief saves
        print(f"Worker finished {card.epochs_run} epochs; the chief evaluates and saves the model.")
        return 0
    print(f"Saved {config.output} (version {card.version}) in {card.training_seconds:.0f} s, "
          f"{card.epochs_run} epochs" + (", added to the registry" if config.register else ""))
    for name, figures in card.metrics.items():
        was = card.metric(name, "accuracy", before=True)
        print(f"  {name:<18} accuracy {figures.accuracy:.4f}"
              + (f"  (before: {was:.4f}, {card.before_version})" if was is not None else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
