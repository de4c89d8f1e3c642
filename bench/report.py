"""Where benchmarks put their figures: bench/results/<name>.json, dated, with the machine's CPU count."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def write_results(name: str, results: dict) -> Path:
    path = RESULTS / f"{name}.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count(), **results}, indent=2) + "\n")
    print(f"wrote {path}")
    return path
