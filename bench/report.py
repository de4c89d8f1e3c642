"""Where benchmarks put their figures, all the same way: bench/results/<name>.json.

Every results file starts with the same envelope: which bench wrote it, the date and time (UTC), the
machine (CPU count and model, Python) and the command that ran; then the bench's own figures.
The README's and docs' tables that quote a bench are generated from these files (bench/quote.py).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def project_relative(path: Path | str) -> str:
    """A path as results name it: relative to the project when inside it (the same on every checkout)."""
    resolved, root = Path(path).resolve(), Path(__file__).resolve().parents[1]
    return str(resolved.relative_to(root)) if resolved.is_relative_to(root) else str(path)


def envelope(name: str) -> dict:
    now = dt.datetime.now(dt.timezone.utc)
    return {"bench": name, "date": now.strftime("%Y-%m-%d"), "time": now.isoformat(timespec="seconds"),
            "cpus": os.cpu_count(), "cpu": cpu_model(), "python": platform.python_version(),
            "command": " ".join([project_relative(sys.argv[0]), *sys.argv[1:]])}


def write_results(name: str, results: dict, path: Path | None = None) -> Path:
    """Write a bench's figures with the common envelope; returns the file's path."""
    path = Path(path) if path else RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**envelope(name), **results}, indent=2) + "\n")
    print(f"wrote {path}")
    return path
