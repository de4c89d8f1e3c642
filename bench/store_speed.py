"""The corrections store on SQLite and on PostgreSQL, in the same run: corrections stored per second, and what
every rerun of the app asks of the store (the sidebar's counts and latest samples), against reading a digit.

Both are real and durable: SQLite in WAL mode with synchronous=FULL (every commit fsynced), PostgreSQL a
throwaway local server (tests/postgres.py) with fsync on, over loopback TCP. Rounds alternate between the
backends, so a busy machine slows both alike. Reading a digit never touches the store (the model is cached);
it is timed in the same rounds as the baseline a rerun already pays. Bar (exit 1 above): the sidebar's
queries on PostgreSQL within READ_BAR_MS per rerun (median). Usage:

    .venv/bin/python bench/store_speed.py [--rounds 5] [--writes 200] [--stored 1000]

Writes bench/results/store_speed.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import write_results  # noqa: E402
from model.inference import Recognizer  # noqa: E402
from services.corrections import CorrectionStore  # noqa: E402
from tests.postgres import PostgresServer, server_programs  # noqa: E402

READ_BAR_MS = 50.0  # a rerun of the app takes ~30 ms of server time; the store must not double it


def _sample(rng: np.random.Generator) -> tuple:
    return (int(rng.integers(0, 10)), rng.integers(0, 256, (28, 28), dtype=np.uint8),
            rng.integers(0, 256, (280, 280), dtype=np.uint8), int(rng.integers(0, 10)), 0.9)


def _writes_per_second(store: CorrectionStore, count: int, rng: np.random.Generator) -> float:
    samples = [_sample(rng) for _ in range(count)]
    started = time.perf_counter()
    for sample in samples:
        store.add(*sample, "bench", "canvas")  # no session: the per-session limit is not what is timed
    return count / (time.perf_counter() - started)


def _sidebar_ms(store: CorrectionStore, repeats: int = 20) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        store.counts(), store.recent(12)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--writes", type=int, default=200, help="corrections stored per round and backend")
    parser.add_argument("--stored", type=int, default=1000, help="corrections in each store before timing reads")
    args = parser.parse_args()
    programs = server_programs()
    if programs is None:
        print("error: PostgreSQL is not installed (apt-get install postgresql)", file=sys.stderr)
        return 1
    rng = np.random.default_rng(0)
    recognizer = Recognizer()
    with np.load(ROOT / "tests" / "fixtures" / "mnist_test_sample.npz") as data:
        digit = data["x"][0]
    server = PostgresServer(programs, durable=True)
    try:
        server.start()
        with tempfile.TemporaryDirectory() as folder:
            stores = {"sqlite": CorrectionStore(Path(folder) / "c.sqlite3"),
                      "postgresql": CorrectionStore(server.new_database())}
            for store in stores.values():
                store.add_many([_sample(rng) for _ in range(args.stored)], "bench", "import")
            writes = {name: [] for name in stores}
            sidebar = {name: [] for name in stores}
            reading = []
            for round_ in range(args.rounds):
                for name, store in stores.items():
                    writes[name].append(_writes_per_second(store, args.writes, rng))
                    sidebar[name].append(_sidebar_ms(store))
                started = time.perf_counter()
                for _ in range(20):
                    recognizer.read(digit)
                reading.append((time.perf_counter() - started) / 20 * 1000)
                print(f"round {round_ + 1}: " + "  ".join(
                    f"{name} {writes[name][-1]:.0f} writes/s, sidebar {sidebar[name][-1]:.1f} ms" for name in stores)
                    + f"  reading {reading[-1]:.2f} ms")
    finally:
        server.close()
    medians = {name: {"writes_per_second": statistics.median(writes[name]),
                      "sidebar_ms": statistics.median(sidebar[name])} for name in writes}
    ratio = {"writes": medians["postgresql"]["writes_per_second"] / medians["sqlite"]["writes_per_second"],
             "sidebar": medians["postgresql"]["sidebar_ms"] / medians["sqlite"]["sidebar_ms"]}
    read_ms = statistics.median(reading)
    print("\nmedians: " + "; ".join(f"{n}: {m['writes_per_second']:.0f} corrections stored/s, sidebar queries "
                                      f"{m['sidebar_ms']:.1f} ms" for n, m in medians.items())
          + f"; reading a digit {read_ms:.2f} ms (never touches the store)")
    print(f"PostgreSQL / SQLite: writes {ratio['writes']:.2f}x, sidebar queries {ratio['sidebar']:.2f}x")
    missed = [f"{n} sidebar {m['sidebar_ms']:.1f} ms (wanted <= {READ_BAR_MS})" for n, m in medians.items()
              if m["sidebar_ms"] > READ_BAR_MS]
    print("MISSED: " + "; ".join(missed) if missed else "bar met")
    write_results("store_speed", {"rounds": args.rounds, "writes_per_round": args.writes, "stored": args.stored,
                                  "medians": medians, "ratio_postgresql_to_sqlite": ratio, "reading_ms": read_ms,
                                  "bar_sidebar_ms": READ_BAR_MS, "missed": missed})
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
