"""Training speed: does the input pipeline keep up, how long is an epoch, what does bfloat16 do.

In process, on MNIST with the default configuration (deep CNN, batch 256,
augmentation on):
1. **Input pipeline**: the median training step fed by the real tf.data
   pipeline (shuffle, batch, augmentation) against the same step fed one
   cached in-memory batch, measured in the same run; and how fast the pipeline
   alone produces batches.
Then as the user runs it, ``python -m training --epochs N`` in a subprocess:
2. **Epoch time** of the default architecture (median over the run's epochs),
   with the process's peak RSS;
3. **Mixed precision**: the same run with ``--mixed-precision`` (bfloat16);
   epoch time and MNIST test accuracy beside the float32 run.
Usage:

    .venv/bin/python bench/training_speed.py [--steps 40] [--epochs 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import write_results  # noqa: E402


def step_times(model, data, steps: int) -> np.ndarray:
    import keras

    class Timer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds = []

        def on_train_batch_begin(self, batch, logs=None):
            self._start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.seconds.append(time.perf_counter() - self._start)

    timer = Timer()
    model.fit(data, epochs=1, steps_per_epoch=steps, callbacks=[timer], verbose=0)
    return np.array(timer.seconds[5:])  # the first steps include tracing and warm-up


def pipeline_check(steps: int) -> dict:
    from model.tf_runtime import tensorflow

    tensorflow()  # quietly, before Keras
    from model.architectures import build_model
    from training.augment import build_augmenter
    from training.config import TrainConfig
    from training.data import load_datasets
    from training.splits import make_datasets
    from training.train import _tf_pipeline

    config = TrainConfig()
    train_split, _, _ = make_datasets(load_datasets(config.data, config.data_dir, config.cache_dir), config)
    augmenter = build_augmenter(config.rotation_degrees, config.shift, config.zoom, config.stroke, config.seed,
                                elastic=config.elastic, blur=config.blur)
    real = _tf_pipeline(train_split, config, augmenter, shuffle=True).repeat()
    cached = real.take(1).cache().repeat()
    model = build_model(config.architecture)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    results = {}
    for name, data in (("cached batch", cached), ("real pipeline", real), ("cached batch, again", cached)):
        results[name] = float(np.median(step_times(model, data, steps + 5)))
    iterator = iter(real)
    next(iterator)
    start = time.perf_counter()
    for _ in range(steps):
        next(iterator)
    results["pipeline alone, per batch"] = (time.perf_counter() - start) / steps
    results["steps_per_epoch"] = int(np.ceil(len(train_split) / config.batch_size))
    return results


def training_run(epochs: int, mixed: bool, work: Path) -> dict:
    output = work / ("bf16" if mixed else "fp32") / "digits.keras"
    command = [sys.executable, "-m", "training", "--epochs", str(epochs), "--output", str(output)]
    command += ["--mixed-precision"] if mixed else []
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "CI": "1"}, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(command)} failed")
    from model.card import ModelCard

    card = ModelCard.read(output)
    return {"wall_seconds": time.perf_counter() - start, "epoch_seconds_median": card.epoch_seconds_median,
            "test_accuracy": card.test_accuracy,
            "peak_rss_mb": usage.ru_maxrss / 1024}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=40, help="timed steps per feeding")
    parser.add_argument("--epochs", type=int, default=3, help="epochs of each training run")
    args = parser.parse_args()

    pipeline = pipeline_check(args.steps)
    cached = (pipeline["cached batch"] + pipeline["cached batch, again"]) / 2
    real = pipeline["real pipeline"]
    print(f"Training step, deep CNN, batch 256, {os.cpu_count()} CPUs (median of {args.steps} steps)")
    print(f"  fed one cached in-memory batch: {cached * 1e3:6.0f} ms   (before {pipeline['cached batch'] * 1e3:.0f}, "
          f"after {pipeline['cached batch, again'] * 1e3:.0f})")
    print(f"  fed the real tf.data pipeline:  {real * 1e3:6.0f} ms   ({real / cached:.2f}x the cached step)")
    print(f"  the pipeline alone makes a batch in {pipeline['pipeline alone, per batch'] * 1e3:.0f} ms "
          f"({pipeline['pipeline alone, per batch'] / real:.0%} of a step)\n")

    with tempfile.TemporaryDirectory() as work:
        runs = {name: training_run(args.epochs, mixed, Path(work)) for name, mixed in (("float32", False),
                                                                                      ("bfloat16", True))}
    print(f"python -m training --epochs {args.epochs} ({pipeline['steps_per_epoch']} steps per epoch)")
    print(f"{'precision':<12}{'epoch (median)':>16}{'MNIST test':>12}{'peak RSS':>11}{'wall':>9}")
    for name, run in runs.items():
        print(f"{name:<12}{run['epoch_seconds_median']:>14.1f} s{run['test_accuracy']:>12.2%}"
              f"{run['peak_rss_mb']:>8.0f} MB{run['wall_seconds']:>8.0f} s")
    ratio = runs["bfloat16"]["epoch_seconds_median"] / runs["float32"]["epoch_seconds_median"]
    print(f"bfloat16 epochs take {ratio:.2f}x the float32 time")
    results = {"pipeline_step_seconds": pipeline,
               "epochs": args.epochs, "runs": runs, "bf16_epoch_ratio": ratio,
               "this_process_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    write_results("training_speed", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
