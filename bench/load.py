"""Many browser sessions at once, while the sidebar retrains: how many answers per minute, how long each takes.

Each session is a Chromium page on the real app: even-numbered ones clear the
canvas and draw a digit with the mouse, odd-numbered ones upload a photo; one
session starts a long retrain first, which runs throughout. Every answer is
checked (the digit shown must be the one drawn or photographed).

The baseline, measured in the same run on the same machine: ONE session doing
the same, with no retrain. A busy or slow machine moves both; their ratio is
the figure (target: the loaded app answers at least LOAD_TARGET times as many
inputs per minute as one idle session; the driver draws on one page at a time,
so more sessions are not expected to answer more). tests/test_load.py runs the
loaded case for correctness alone. Usage:

    .venv/bin/python bench/load.py [--sessions 20] [--seconds 120]
"""

from __future__ import annotations

import argparse
import dataclasses
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
from services.jobs import TrainingJobs  # noqa: E402

ANSWER_TIMEOUT = 120.0  # an answer not shown by then is counted as wrong
DRAWN = [0, 7, 12, 16, 21, 27, 33, 36, 42, 47]  # fixture digits that read right when traced with the mouse
LOAD_TARGET = 0.5


@dataclasses.dataclass
class LoadRun:
    sessions: int
    seconds: float
    times: list[float]  # seconds from sending each input to its right answer on the page
    served: set[int]  # the sessions that got at least one right answer
    wrong: list[tuple]  # (expected, shown) of each input not answered right by the end
    errors: int  # Streamlit exceptions shown on any page
    training_ran: bool  # the retrain was still running at the end (when one was started)
    training_finished: bool  # it had ended on its own by then, its model kept (early stopping on a fast machine)
    training_failed: bool

    @property
    def answers_per_minute(self) -> float:
        return len(self.times) * 60.0 / self.seconds


def write_app_data(folder: Path, x: np.ndarray, y: np.ndarray) -> tuple[dict, list[tuple[Path, int]]]:
    """A data folder for the app (a cached training set for the retrain) and a photo of each digit.

    The training set is large enough (30,000 images) for the retrain to outlast a two-minute run on
    two busy cores: early stopping ends it after about 25 epochs, since it holds only 50 distinct digits."""
    from training.data import Dataset, Split, save_cache

    save_cache(Dataset("mnist", "load-test digits", Split(np.concatenate([x] * 600), np.concatenate([y] * 600)),
                       Split(x, y)), folder / "cache")
    photos = []
    for i in range(len(x)):
        path = folder / f"photo-{i:02d}.jpg"
        Image.fromarray(np.kron(255 - x[i], np.ones((8, 8), np.uint8))).convert("RGB").save(path, quality=90)
        photos.append((path, int(y[i])))
    return {"DIGITS_DATA_DIR": str(folder), "DIGITS_CACHE_DIR": str(folder / "cache")}, photos


def _collect(pending: list, times: list, served: set, wrong: list, final: bool = False) -> list:
    """Check every page still waiting for its answer; returns those still waiting."""
    waiting = []
    for page, session, label, sent in pending:
        value = prediction(page)
        if value == str(label):
            times.append(time.perf_counter() - sent)
            served.add(session)
        elif final and time.perf_counter() - sent > ANSWER_TIMEOUT:
            wrong.append((label, value))
        else:
            waiting.append((page, session, label, sent))
    return waiting


def serve_sessions(browser, url: str, x: np.ndarray, y: np.ndarray, photos: list, sessions: int, seconds: float,
                   retrain: bool, runs_dir: Path | None = None) -> LoadRun:
    """Drive `sessions` pages for `seconds`, optionally while a retrain runs; every answer is checked.

    `runs_dir`: the app's training jobs (<data dir>/runs), to wait on the retrain's end after cancelling it."""
    pages = []
    for index in range(sessions):
        page = browser.new_context(viewport={"width": 1300, "height": 900}).new_page()
        page.goto(url)
        wait_for_canvas(page, timeout=120)
        if index % 2:
            page.get_by_role("tab", name="Upload").click()
        pages.append(page)
    sidebar = pages[0].locator('[data-testid="stSidebar"]')
    if retrain:  # one session starts a long retrain from the sidebar; it runs for the whole measurement
        epochs = sidebar.get_by_label("Epochs", exact=True)
        epochs.fill("200")
        epochs.press("Enter")
        wait_for_idle(pages[0])
        sidebar.get_by_role("button", name="Start training").click()
        sidebar.get_by_text("Training: epoch").wait_for(timeout=120000)

    rng = np.random.default_rng(0)
    times, wrong, served = [], [], set()
    start = time.monotonic()
    end, round_number, pending = start + seconds, 0, []
    while time.monotonic() < end:
        pending = _collect(pending, times, served, wrong)
        if len(pending) == len(pages):  # every session is waiting for its answer
            pages[0].wait_for_timeout(50)
            continue
        for index, page in enumerate(pages):
            if any(waiting is page for waiting, _, _, _ in pending):
                continue  # this session has not answered its last input yet
            if index % 2:  # upload a photo of a random digit
                path, label = photos[int(rng.integers(len(photos)))]
                if prediction(page) == str(label):
                    continue  # the same digit again could not be told apart from the last answer
                page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(path))
            else:  # clear, then draw a digit with the mouse
                pick = DRAWN[(round_number + index) % len(DRAWN)]
                if prediction(page) is not None:
                    clear_canvas(page, timeout=ANSWER_TIMEOUT)
                draw_digit(page, x[pick])
                label = int(y[pick])
            pending.append((page, index, label, time.perf_counter()))
            pending = _collect(pending, times, served, wrong)
        round_number += 1
    measured = time.monotonic() - start
    deadline = time.monotonic() + ANSWER_TIMEOUT + 5
    while pending and time.monotonic() < deadline:
        pending = _collect(pending, times, served, wrong, final=True)
        pages[0].wait_for_timeout(100)
    wrong += [(label, prediction(page)) for page, _, label, _ in pending]
    training_ran = sidebar.get_by_text("Training: epoch").count() > 0
    training_finished = sidebar.get_by_text("Training finished").count() > 0
    training_failed = sidebar.get_by_text("Training failed").count() > 0
    if retrain:
        stop_retrain(sidebar, runs_dir)
    errors = sum(page.locator('[data-testid="stException"]').count() for page in pages)
    for page in pages:
        page.context.close()
    return LoadRun(sessions, measured, times, served, wrong, errors, training_ran, training_finished, training_failed)


def stop_retrain(sidebar, runs_dir: Path | None, hang_guard: float = 900) -> None:
    """Cancel the retrain from the sidebar, then wait on the job's own state, not on a text within a minute:
    a retrain that already finished, and a cancel that takes long to show on a busy machine, are both fine."""
    from playwright.sync_api import Error as PlaywrightError

    cancel = sidebar.get_by_role("button", name="Cancel training")
    try:
        if cancel.count():
            cancel.click(timeout=30000)
    except PlaywrightError:  # gone meanwhile: the retrain ended on its own
        pass
    if runs_dir is not None:
        state = TrainingJobs(runs_dir).wait(timeout=hang_guard, poll=1.0)
        if state is not None and state.running:  # pragma: no cover - wait() raises instead
            raise RuntimeError("the retrain did not stop")


def _summary(run: LoadRun) -> str:
    times = np.array(run.times) if run.times else np.array([np.nan])
    return (f"{run.sessions} session(s): {len(run.times)} answers in {run.seconds:.0f} s = "
            f"{run.answers_per_minute:.1f}/min; seconds to answer p50 {np.median(times):.2f}, "
            f"p95 {np.percentile(times, 95):.2f}; wrong {len(run.wrong)}, errors {run.errors}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=120)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    from bench.report import write_results

    with np.load(ROOT / "tests" / "fixtures" / "mnist_test_sample.npz") as data:
        x, y = data["x"], data["y"]
    with tempfile.TemporaryDirectory() as folder, sync_playwright() as playwright:
        env, photos = write_app_data(Path(folder), x, y)
        browser = launch_browser(playwright)
        with running_app(env) as url:
            alone = serve_sessions(browser, url, x, y, photos, 1, args.seconds, retrain=False)
        with running_app(env) as url:
            loaded = serve_sessions(browser, url, x, y, photos, args.sessions, args.seconds, retrain=True,
                                    runs_dir=Path(env["DIGITS_DATA_DIR"]) / "runs")
        browser.close()
    ratio = loaded.answers_per_minute / max(alone.answers_per_minute, 1e-9)
    print("baseline, one session, no retrain: " + _summary(alone))
    print("during a retrain:                  " + _summary(loaded))
    print(f"answers per minute, loaded / baseline: {ratio:.2f} (target >= {LOAD_TARGET}); "
          f"retrain still running at the end: {loaded.training_ran}")
    results = {name: {"sessions": run.sessions, "seconds": run.seconds, "answers": len(run.times),
                      "answers_per_minute": run.answers_per_minute,
                      "answer_seconds_p50": float(np.median(run.times)) if run.times else None,
                      "answer_seconds_p95": float(np.percentile(run.times, 95)) if run.times else None,
                      "wrong": len(run.wrong), "errors": run.errors}
               for name, run in (("baseline_one_session", alone), ("loaded_during_retrain", loaded))}
    write_results("load", {**results, "loaded_over_baseline": ratio, "target": LOAD_TARGET})
    correct = not (alone.wrong or loaded.wrong or alone.errors or loaded.errors or loaded.training_failed)
    return 0 if correct and ratio >= LOAD_TARGET and loaded.training_ran else 1


if __name__ == "__main__":
    sys.exit(main())
