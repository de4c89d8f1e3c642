"""From lifting the pen to the answer on screen, in Chromium, against the floor Streamlit itself sets.

In one run, one browser:

- **floor**: a bare Streamlit page (bench/floor_app.py): a click on a button -> a metric shown.
- **canvas floor**: the app's canvas alone (bench/canvas_floor_app.py): one stroke -> a metric, nothing read.
  What the canvas and Streamlit take per stroke whatever the app does; not one of the issue's bars.
- **digit**: the app after *Clear*: one vertical stroke, mouse-up -> the Prediction metric shows a digit.
- **number**: three strokes drawn, then a fourth: its mouse-up -> the Number metric shows four digits.
- **why**: the digit again with "Why this digit?" on.

Each on a desktop page with the mouse and on a 390x844 phone page with touch. Every moment is stamped inside
the page (performance.now), so Playwright's polling does not blur them. Where the time goes, per round:
the page's WebSocket frames (the canvas's value going out; every message of the rerun coming back, counted
with its bytes), the moment the answer's element enters the page, the next painted frame, and the
server's own time for the script run (bench/serve_timed.py). Medians and p90 over the rounds; the answer
is judged against the floor measured in the same run (TARGETS), and the bench exits 1 if a target is missed.

    .venv/bin/python bench/answer_latency.py [--rounds 15] [--warmup 3]
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

from bench.browser import (  # noqa: E402
    PHONE,
    WEBSOCKET_TAP,
    clear_canvas,
    draw_strokes,
    launch_browser,
    running_app,
    touch_strokes,
    wait_for_canvas,
    wait_for_idle,
)
from bench.report import write_results  # noqa: E402

TIMED_LAUNCHER = (str(ROOT / "bench" / "serve_timed.py"),)
DESKTOP = {"viewport": {"width": 1400, "height": 1000}}
DEVICES = ("desktop", "phone")
# Issue 24's bars, as ratios to the floor of the same run (p50 unless named).
TARGETS = {"digit_p50": 1.6, "digit_p90": 2.2, "why_p50": 2.2, "number_vs_digit_p50": 1.3}


# Stamps the input's end and the moment an answer matching `pattern` is in the page, then the frame after.
WATCH = """([label, pattern, release]) => {
    const stamp = window.__stamp = {};
    window.__frames.length = 0;
    const answer = new RegExp(pattern);
    document.addEventListener(release, () => { stamp.up = performance.now(); }, {capture: true, once: true});
    const shown = () => Array.from(document.querySelectorAll('[data-testid="stMetric"]')).some(m =>
        m.innerText.includes(label) && answer.test(
            (m.querySelector('[data-testid="stMetricValue"]') || {}).innerText?.trim() ?? ''));
    const observer = new MutationObserver(() => {
        if (stamp.up === undefined || !shown()) return;
        stamp.shown = performance.now();
        observer.disconnect();
        requestAnimationFrame(() => setTimeout(() => { stamp.painted = performance.now(); }));
    });
    observer.observe(document.body, {childList: true, subtree: true, characterData: true});
}"""
FRAMES = "() => ({stamp: window.__stamp, frames: window.__frames})"

ONE = [[(14, 5), (14, 23)]]  # a vertical stroke: a 1 on any model
FOUR_ONES = [[(x, 8), (x, 20)] for x in (4, 10, 16, 22)]  # four of them, a number


def percentile(values, q):
    return round(float(np.percentile(values, q)), 4) if values else None


class Stage:
    """A page (desktop with the mouse, or phone with touch) and how a finger or a mouse acts on it."""

    def __init__(self, browser, url: str, phone: bool, canvas: bool = False):
        self.context = browser.new_context(**(PHONE if phone else DESKTOP))
        self.context.add_init_script(WEBSOCKET_TAP)
        self.page = self.context.new_page()
        self.phone = phone
        self.cdp = self.context.new_cdp_session(self.page) if phone else None
        self.page.goto(url)
        if canvas:  # a page with the app's canvas: ready to draw on, and settled
            wait_for_canvas(self.page)
            wait_for_idle(self.page)

    @property
    def release(self) -> str:
        return "touchend" if self.phone else "mouseup"

    def strokes(self, strokes) -> None:
        if self.phone:
            touch_strokes(self.page, self.cdp, strokes)
        else:
            draw_strokes(self.page, strokes)

    def press(self, selector: str) -> None:
        button = self.page.locator(selector)
        (button.tap if self.phone else button.click)()

    def close(self) -> None:
        self.context.close()


def timed(stage: Stage, act, label: str, pattern: str, server_log: Path | None) -> dict:
    """One round: the time from the input's end to the answer, and where it went."""
    page = stage.page
    before = server_log.read_text().count("\n") if server_log and server_log.exists() else 0
    page.evaluate(WATCH, [label, pattern, stage.release])
    act()
    page.wait_for_function("() => window.__stamp.painted !== undefined", timeout=60000)
    wait_for_idle(page)
    seen = page.evaluate(FRAMES)
    stamp, frames = seen["stamp"], [f for f in seen["frames"] if f["t"] >= seen["stamp"]["up"]]
    sent = next((f["t"] for f in frames if f["dir"] == "out"), stamp["up"])
    incoming = [f for f in frames if f["dir"] == "in"]
    before_answer = [f for f in incoming if f["t"] <= stamp["shown"]]
    ms = lambda a, b: round(b - a, 1)  # noqa: E731
    row = {"answer_ms": ms(stamp["up"], stamp["shown"]), "painted_ms": ms(stamp["up"], stamp["painted"]),
           "input_sent_ms": ms(stamp["up"], sent),
           "answer_message_ms": ms(stamp["up"], before_answer[-1]["t"]) if before_answer else None,
           "rerun_end_ms": ms(stamp["up"], incoming[-1]["t"]) if incoming else None,
           "messages_before_answer": len(before_answer), "bytes_before_answer": sum(f["bytes"] for f in before_answer),
           "messages": len(incoming), "bytes": sum(f["bytes"] for f in incoming),
           "sent_bytes": sum(f["bytes"] for f in frames if f["dir"] == "out")}
    if server_log is not None:
        runs = [json.loads(line) for line in server_log.read_text().splitlines()[before:]]
        row["server_ms"] = round(1000 * sum(r["seconds"] for r in runs), 1)
        row["server_runs"] = len(runs)
    return row


def floor_rounds(stage: Stage, rounds: int) -> list[dict]:
    page = stage.page
    page.locator(".st-key-read button").wait_for(timeout=60000)
    rows = []
    for _ in range(rounds):
        stage.press(".st-key-hide button")
        page.locator('[data-testid="stMetric"]').wait_for(state="detached", timeout=30000)
        wait_for_idle(page)
        rows.append(timed(stage, lambda: stage.press(".st-key-read button"), "Prediction", r"^\d$", None))
    return rows


def clear(stage: Stage) -> None:
    clear_canvas(stage.page, tap=stage.phone)
    wait_for_idle(stage.page)


def digit_rounds(stage: Stage, rounds: int, log: Path | None) -> list[dict]:
    rows = []
    for _ in range(rounds):
        clear(stage)
        rows.append(timed(stage, lambda: stage.strokes(ONE), "Prediction", r"^\d$", log))
    return rows


def number_rounds(stage: Stage, rounds: int, log: Path) -> list[dict]:
    rows = []
    for _ in range(rounds):
        clear(stage)
        stage.strokes(FOUR_ONES[:3])
        wait_for_idle(stage.page)
        stage.page.wait_for_timeout(500)  # the canvas's last update is in
        rows.append(timed(stage, lambda: stage.strokes(FOUR_ONES[3:]), "Number", r"^\d{4}$", log))
    return rows


def switch_why_on(stage: Stage) -> None:
    """The toggle is live once there is a reading; it keeps its value through *Clear*."""
    stage.strokes(ONE)
    wait_for_idle(stage.page)
    toggle = stage.page.locator(".st-key-why_canvas label").first
    (toggle.tap if stage.phone else toggle.click)()
    stage.page.get_by_text("On your input").first.wait_for(timeout=60000)


def summary(rows: list[dict], warmup: int) -> dict:
    kept = rows[warmup:]
    result = {"rounds": len(kept)}
    for key in kept[0]:
        values = [r[key] for r in kept if r[key] is not None]
        result[key] = {"p50": percentile(values, 50), "p90": percentile(values, 90)}
    result["all_answer_ms"] = [r["answer_ms"] for r in kept]
    return result


def judged(figures: dict) -> dict:
    floor = figures["floor"]["answer_ms"]["p50"]
    ratios = {"digit_p50": figures["digit"]["answer_ms"]["p50"] / floor,
              "digit_p90": figures["digit"]["answer_ms"]["p90"] / floor,
              "why_p50": figures["why"]["answer_ms"]["p50"] / floor,
              "number_vs_digit_p50": figures["number"]["answer_ms"]["p50"] / figures["digit"]["answer_ms"]["p50"]}
    return {name: {"ratio": round(value, 2), "target": TARGETS[name], "met": value <= TARGETS[name]}
            for name, value in ratios.items()}


def canvas_share(figures: dict) -> dict:
    """How much of the floor's ratio the canvas alone takes, and what the app adds on top of it (p50)."""
    canvas = figures["canvas_floor"]["answer_ms"]["p50"]
    return {"canvas_floor_vs_floor": round(canvas / figures["floor"]["answer_ms"]["p50"], 2),
            "digit_vs_canvas_floor": round(figures["digit"]["answer_ms"]["p50"] / canvas, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15, help="measured rounds of each kind, after the warm-up")
    parser.add_argument("--warmup", type=int, default=3, help="rounds of each kind run first and not counted")
    parser.add_argument("--devices", nargs="+", choices=DEVICES, default=list(DEVICES),
                        help="desktop: a 1400x1000 page and the mouse; phone: a 390x844 page and touch")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    rounds = args.rounds + args.warmup
    results = {"rounds": args.rounds, "warmup": args.warmup}
    with tempfile.TemporaryDirectory() as data, sync_playwright() as playwright:
        log = Path(data) / "runs.jsonl"
        browser = launch_browser(playwright)
        env = {"DIGITS_DATA_DIR": data, "DIGITS_RUN_TIMES": str(log)}
        with running_app({}, script=ROOT / "bench" / "floor_app.py") as floor_url, \
                running_app({"DIGITS_DATA_DIR": str(Path(data) / "canvas")},
                            script=ROOT / "bench" / "canvas_floor_app.py") as canvas_floor_url, \
                running_app(env, launcher=TIMED_LAUNCHER) as app_url:
            for device in args.devices:
                phone = device == "phone"
                figures = {}
                stage = Stage(browser, floor_url, phone)
                figures["floor"] = summary(floor_rounds(stage, rounds), args.warmup)
                stage.close()
                stage = Stage(browser, canvas_floor_url, phone, canvas=True)
                figures["canvas_floor"] = summary(digit_rounds(stage, rounds, None), args.warmup)
                stage.close()
                stage = Stage(browser, app_url, phone, canvas=True)
                figures["digit"] = summary(digit_rounds(stage, rounds, log), args.warmup)
                figures["number"] = summary(number_rounds(stage, rounds, log), args.warmup)
                switch_why_on(stage)
                figures["why"] = summary(digit_rounds(stage, rounds, log), args.warmup)
                stage.close()
                figures["targets"] = judged(figures)
                figures["canvas"] = canvas_share(figures)
                results[device] = figures
        browser.close()
    missed = [f"{device} {name}: {t['ratio']}x the floor (wanted <= {t['target']}x)"
              for device in args.devices for name, t in results[device]["targets"].items() if not t["met"]]
    for device in args.devices:
        print(f"{device}:")
        for kind in ("floor", "canvas_floor", "digit", "number", "why"):
            f = results[device][kind]
            print(f"  {kind:7s} answer p50 {f['answer_ms']['p50']:7.1f} ms  p90 {f['answer_ms']['p90']:7.1f} ms"
                  + (f"  sent {f['input_sent_ms']['p50']} ms, server {f.get('server_ms', {}).get('p50')} ms, "
                     f"{f['messages']['p50']:.0f} messages ({f['bytes']['p50'] / 1000:.1f} kB), "
                     f"{f['messages_before_answer']['p50']:.0f} before the answer ({f['answer_message_ms']['p50']} ms),"
                     f" painted {f['painted_ms']['p50']} ms, rerun ends {f['rerun_end_ms']['p50']} ms"
                     if kind not in ("floor", "canvas_floor") else ""))
        for name, t in results[device]["targets"].items():
            print(f"  {name}: {t['ratio']}x (wanted <= {t['target']}x) {'ok' if t['met'] else 'MISSED'}")
        print("  the canvas alone: {canvas_floor_vs_floor}x the floor; the app {digit_vs_canvas_floor}x the canvas "
              "alone".format(**results[device]["canvas"]))
    results["missed"] = missed
    write_results("answer_latency", results)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
