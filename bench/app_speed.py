"""The app in Debian's Chromium: cold start, server time per canvas stroke, peak memory.

- **Cold start**: from starting the server process to the first prediction
  shown in the browser (open the page, Upload tab, upload a photo). Baseline
  in the same run: the same steps against a minimal Streamlit app (an
  uploader and a metric; bench/blank_app.py), i.e. what Streamlit itself costs.
- **Server time per stroke**: digits drawn with the mouse, stroke by stroke;
  each stroke reruns the canvas fragment, and bench/serve_timed.py records
  how long each run takes on the server. Full-page runs are shown beside it.
  Then the same digits with "Why this digit?" on (model/explain.py: a batch
  of occluded copies through the model, and the map drawn twice): what it
  adds to a stroke's median (target: at most WHY_TARGET_MS), and the ratio.
- **Peak memory**: the server's peak RSS (VmHWM) after serving all of that.
Usage:

    .venv/bin/python bench/app_speed.py [--starts 3] [--digits 20]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.browser import (clear_canvas, draw_digit, launch_browser, prediction, running_app,  # noqa: E402
                          wait_for_canvas, wait_for_idle)
from bench.report import write_results  # noqa: E402

TIMED_LAUNCHER = (str(ROOT / "bench" / "serve_timed.py"),)
WHY_TARGET_MS = 50.0


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def first_prediction(browser, script: Path, photo: Path, data_dir: Path, has_tabs: bool) -> tuple[float, float]:
    """Seconds from server start to the first prediction in the page, and the server's peak RSS."""
    started: dict = {}
    with running_app({"DIGITS_DATA_DIR": str(data_dir)}, script=script, started=started) as url:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        if has_tabs:
            page.get_by_role("tab", name="Upload").click(timeout=60000)
        page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(photo), timeout=60000)
        while prediction(page) is None:
            page.wait_for_timeout(20)
        seconds = time.perf_counter() - started["time"]
        page.close()
        return seconds, peak_rss_mb(started["pid"])


def stroke_times(browser, digits: np.ndarray, data_dir: Path, why: bool = False) -> tuple[list[dict], float]:
    log = data_dir / "runs.jsonl"
    server: dict = {}
    env = {"DIGITS_DATA_DIR": str(data_dir), "DIGITS_RUN_TIMES": str(log)}
    with running_app(env, launcher=TIMED_LAUNCHER, started=server) as url:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        wait_for_canvas(page)
        wait_for_idle(page)
        if why:  # the toggle shows once there is a reading: draw one digit, switch it on, clear
            draw_digit(page, digits[0])
            wait_for_idle(page)
            page.get_by_text("Why this digit?").first.click()
            page.get_by_text("On your input").first.wait_for(timeout=60000)
            clear_canvas(page)
            wait_for_idle(page)
            log.write_text("")  # only the strokes below are timed
        clearing = []  # (start, end) of each clear: its runs are not strokes
        for digit in digits:
            draw_digit(page, digit)
            wait_for_idle(page)
            cleared = time.time()
            clear_canvas(page)
            wait_for_idle(page)
            page.wait_for_timeout(500)
            clearing.append((cleared, time.time()))
        page.wait_for_timeout(1000)
        rss = peak_rss_mb(server["pid"])
        page.close()
    runs = [json.loads(line) for line in log.read_text().splitlines()]
    return [r for r in runs if not any(start <= r["ended"] <= end for start, end in clearing)], rss


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--starts", type=int, default=3, help="cold starts of each app")
    parser.add_argument("--digits", type=int, default=20, help="digits drawn for the stroke timing")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with np.load(ROOT / "tests" / "fixtures" / "mnist_test_sample.npz") as data:
        x = data["x"]
    with tempfile.TemporaryDirectory() as work, sync_playwright() as playwright:
        work = Path(work)
        photo = work / "digit.jpg"
        Image.fromarray(np.kron(255 - x[3], np.ones((10, 10), np.uint8))).convert("RGB").save(photo, quality=90)
        browser = launch_browser(playwright)
        cold = {"app": [], "blank Streamlit app (baseline)": []}
        rss = {}
        for attempt in range(args.starts):
            for name, script, tabs in (("app", ROOT / "app.py", True),
                                       ("blank Streamlit app (baseline)", ROOT / "bench" / "blank_app.py", False)):
                seconds, peak = first_prediction(browser, script, photo, work / f"{name[:5]}-{attempt}", tabs)
                cold[name].append(seconds)
                rss[name] = peak
        runs, serving_rss = stroke_times(browser, x[: args.digits], work / "strokes")
        why_runs, _ = stroke_times(browser, x[: args.digits], work / "strokes-why", why=True)
        browser.close()

    app, blank = np.median(cold["app"]), np.median(cold["blank Streamlit app (baseline)"])
    print(f"Cold start to the first prediction in the browser ({args.starts} starts each, {os.cpu_count()} CPUs)")
    for name, values in cold.items():
        print(f"  {name:<34} median {np.median(values):5.2f} s   ({', '.join(f'{v:.2f}' for v in values)})")
    print(f"  the app costs {app - blank:.2f} s more than Streamlit alone ({app / blank:.2f}x)\n")
    fragment = np.array([r["seconds"] for r in runs if r["fragment"]]) * 1e3
    full = np.array([r["seconds"] for r in runs if not r["fragment"]]) * 1e3
    print(f"Server time per run, {args.digits} digits drawn with the mouse then cleared")
    print(f"  canvas stroke (fragment rerun): n={len(fragment)}, p50 {np.median(fragment):.1f} ms, "
          f"p95 {np.percentile(fragment, 95):.1f} ms, max {fragment.max():.1f} ms")
    if len(full):
        print(f"  whole page (first load):        n={len(full)}, p50 {np.median(full):.1f} ms")
    why = np.array([r["seconds"] for r in why_runs if r["fragment"]]) * 1e3
    why_ratio = float(np.median(why) / np.median(fragment))
    why_added = float(np.median(why) - np.median(fragment))
    print(f"  with \"Why this digit?\" on:     n={len(why)}, p50 {np.median(why):.1f} ms, "
          f"p95 {np.percentile(why, 95):.1f} ms: {why_added:+.1f} ms, {why_ratio:.2f}x the stroke without it "
          f"(target: at most {WHY_TARGET_MS:.0f} ms added)")
    print(f"\nPeak RSS of the server: {serving_rss:.0f} MB after serving the strokes "
          f"({rss['app']:.0f} MB after one upload; blank Streamlit app {rss['blank Streamlit app (baseline)']:.0f} MB)")
    results = {"cold_start_seconds": cold,
               "stroke_ms": {"n": len(fragment), "p50": float(np.median(fragment)),
                             "p95": float(np.percentile(fragment, 95)), "max": float(fragment.max())},
               "full_page_ms_p50": float(np.median(full)) if len(full) else None,
               "stroke_with_why_ms": {"n": len(why), "p50": float(np.median(why)),
                                      "p95": float(np.percentile(why, 95)), "over_without": why_ratio,
                                      "added_ms_p50": why_added, "target_added_ms": WHY_TARGET_MS},
               "peak_rss_mb": {"serving_strokes": serving_rss, **rss}}
    write_results("app_speed", results)
    return 0 if why_added <= WHY_TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
