"""Distributed training on this machine: what each --strategy costs and reads, against one device.

Every run is ``python -m training`` as a user runs it, on the real MNIST (compact CNN, the
same epochs and seed), with its wall time, median epoch, MNIST test accuracy and peak RSS:
  1. --strategy none, data in memory: the baseline;
  2. --strategy none, streamed from TFRecord shards (written first by python -m training.shards,
     itself timed, with its peak RSS);
  3. --strategy mirrored --cpu-devices 2: two replicas on the CPU's two logical devices;
  4. --strategy multiworker: two worker processes on 127.0.0.1 (TF_CONFIG), streamed shards.
On one 2-core machine the replicas share the same cores, so 3 and 4 show the overhead of the
machinery (all-reduce every step, gRPC between processes), not a speed-up: that needs more
GPUs or machines. Usage:

    .venv/bin/python bench/distributed.py [--epochs 2] [--batch-size 256]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import write_results  # noqa: E402
from model.card import ModelCard  # noqa: E402


def _wait(process) -> tuple[int, float]:
    _, status, usage = os.wait4(process.pid, 0)
    return os.waitstatus_to_exitcode(status), usage.ru_maxrss / 1024


def free_ports(count: int) -> list[int]:
    """Ports free on 127.0.0.1 now, all different (the sockets are held until every one is chosen)."""
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def tf_config(ports: list[int], index: int) -> str:
    """TF_CONFIG of worker `index` in a cluster of one worker per port on this machine."""
    return json.dumps({"cluster": {"worker": [f"127.0.0.1:{port}" for port in ports]},
                       "task": {"type": "worker", "index": index}})


def run(name: str, args: list[str], work: Path, workers: int = 1) -> dict:
    output = work / name / "digits.keras"
    command = [sys.executable, "-m", "training", *args, "--output", str(output)]
    ports = free_ports(workers)
    start = time.perf_counter()
    processes = []
    for index in range(workers):
        env = {**os.environ, "CI": "1"}
        if workers > 1:
            env["TF_CONFIG"] = tf_config(ports, index)
        log = open(work / f"{name}-{index}.log", "w")
        processes.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))
    outcomes = [_wait(process) for process in processes]
    wall = time.perf_counter() - start
    if any(code != 0 for code, _ in outcomes):
        raise RuntimeError(f"{name} failed; see {work}/{name}-*.log:\n" + (work / f"{name}-0.log").read_text()[-3000:])
    card = ModelCard.read(output)
    return {"wall_seconds": round(wall, 1), "epoch_seconds_median": card.epoch_seconds_median,
            "test_accuracy": card.test_accuracy,
            "replicas": card.distribution["replicas"],
            "global_batch_size": card.distribution["global_batch_size"],
            "peak_rss_mb_per_process": [round(rss) for _, rss in outcomes]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=256, help="per replica")
    args = parser.parse_args()
    common = ["--architecture", "compact", "--epochs", str(args.epochs), "--batch-size", str(args.batch_size)]

    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        start = time.perf_counter()
        writer = subprocess.Popen([sys.executable, "-m", "training.shards", "--data", "mnist", "--out",
                                   str(work / "shards")], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        code, writer_rss = _wait(writer)
        if code != 0:
            raise RuntimeError("python -m training.shards failed")
        shards = {"seconds": round(time.perf_counter() - start, 1), "peak_rss_mb": round(writer_rss),
                  "megabytes": round(sum(p.stat().st_size for p in (work / "shards").glob("*.tfrecord")) / 1e6, 1)}
        runs = {
            "none, in memory": run("memory", common, work),
            "none, streamed shards": run("stream", [*common, "--shards", str(work / "shards")], work),
            "mirrored, 2 CPU devices": run("mirrored", [*common, "--strategy", "mirrored", "--cpu-devices", "2"], work),
            "multiworker, 2 processes": run("cluster", [*common, "--strategy", "multiworker", "--shards",
                                                        str(work / "shards")], work, workers=2),
        }
    baseline = runs["none, in memory"]
    print(f"Shards of MNIST written in {shards['seconds']} s ({shards['megabytes']} MB, peak RSS "
          f"{shards['peak_rss_mb']} MB)")
    print(f"python -m training {' '.join(common)} on MNIST, {os.cpu_count()} CPUs")
    print(f"{'run':<28}{'replicas':>9}{'batch':>7}{'epoch (median)':>16}{'vs baseline':>13}{'MNIST test':>12}"
          f"{'peak RSS':>14}")
    for name, result in runs.items():
        result["epoch_ratio"] = round(result["epoch_seconds_median"] / baseline["epoch_seconds_median"], 2)
        rss = "+".join(str(r) for r in result["peak_rss_mb_per_process"])
        print(f"{name:<28}{result['replicas']:>9}{result['global_batch_size']:>7}"
              f"{result['epoch_seconds_median']:>14.1f} s{result['epoch_ratio']:>12.2f}x"
              f"{result['test_accuracy']:>12.2%}{rss:>11} MB")
    write_results("distributed", {"command": common, "shards": shards, "runs": runs})
    return 0


if __name__ == "__main__":
    sys.exit(main())
