"""Digits drawn with the mouse in a real browser: how many does the app read right?

Takes MNIST *test* digits (never training ones), turns each into pen strokes
(its skeleton), draws them with Playwright's mouse on the app's canvas in
Debian's Chromium, and reads the Prediction metric. Also reports the server
time per stroke. Usage:

    .venv/bin/python bench/browser_canvas.py [--count 50] [--seed 0] [--pen 18]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import write_results  # noqa: E402
from bench.browser import (clear_canvas, draw_strokes, launch_browser, running_app,  # noqa: E402
                           wait_for_canvas, wait_for_idle, wait_for_prediction)
from training.strokes import strokes_from_image  # noqa: E402
from training.data import load_dataset  # noqa: E402


WATCH_FIRST_RESULT = """() => {
    window.__stamp = {};
    document.addEventListener('mouseup', () => { window.__stamp.up = performance.now(); }, {capture: true, once: true});
    const observer = new MutationObserver(() => {
        if (document.querySelector('[data-testid="stMetric"]')) {
            window.__stamp.shown = performance.now();
            observer.disconnect();
        }
    });
    observer.observe(document.body, {childList: true, subtree: true});
}"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scale", type=float, default=10.0, help="canvas pixels per MNIST pixel")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    test = load_dataset("mnist").test
    picks = np.random.default_rng(args.seed).choice(len(test), size=args.count, replace=False)
    rows = []
    with tempfile.TemporaryDirectory() as data, running_app({"DIGITS_DATA_DIR": data}) as url, \
            sync_playwright() as playwright:
        browser = launch_browser(playwright)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        wait_for_canvas(page)
        for index in picks:
            strokes = strokes_from_image(test.x[index])
            # The canvas is empty, so the metric appears only once the first stroke has been read:
            # the time from releasing the mouse to that is what a user waits for. Both moments
            # are stamped inside the page, so Playwright's polling does not blur them.
            page.evaluate(WATCH_FIRST_RESULT)
            draw_strokes(page, strokes[:1], scale=args.scale)
            page.wait_for_function("() => window.__stamp.shown !== undefined", timeout=30000)
            latency = page.evaluate("() => (window.__stamp.shown - window.__stamp.up) / 1000")
            draw_strokes(page, strokes[1:], scale=args.scale)
            wait_for_idle(page)
            read = wait_for_prediction(page)
            rows.append({"index": int(index), "label": int(test.y[index]), "read": read,
                         "stroke_to_result_seconds": round(latency, 3)})
            clear_canvas(page)
            wait_for_idle(page)
        browser.close()
    correct = sum(str(r["label"]) == r["read"] for r in rows)
    wrong = [r for r in rows if str(r["label"]) != r["read"]]
    latencies = [r["stroke_to_result_seconds"] for r in rows]
    results = {"digits": len(rows), "correct": correct, "accuracy": round(correct / len(rows), 4), "wrong": wrong,
               "stroke_to_result_seconds": {"median": float(np.median(latencies)),
                                            "p95": float(np.percentile(latencies, 95)), "all": latencies}}
    print(json.dumps(results, indent=2))
    write_results("browser_canvas", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
