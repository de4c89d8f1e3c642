"""Load: the command line reading 5,000 images from 4 processes at once."""

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
PROCESSES, IMAGES = 4, 5000


def test_four_processes_read_5000_images_at_once(tmp_path, mnist_sample):
    x, y = mnist_sample
    rng = np.random.default_rng(0)
    paths, labels = [], []
    for i in range(IMAGES):
        digit = np.kron(x[i % len(x)], np.ones((int(rng.integers(1, 4)),) * 2, np.uint8))
        if i % 2:
            digit = 255 - digit  # dark ink on white paper
        path = tmp_path / f"{i:04d}.png"
        Image.fromarray(digit).save(path)
        paths.append(str(path))
        labels.append(int(y[i % len(x)]))
    chunks = [paths[i::PROCESSES] for i in range(PROCESSES)]
    start = time.perf_counter()
    workers = [subprocess.Popen([sys.executable, "-m", "model.predict", "--json", *chunk], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for chunk in chunks]
    outputs = [worker.communicate(timeout=600) for worker in workers]
    seconds = time.perf_counter() - start
    assert [worker.returncode for worker in workers] == [0] * PROCESSES
    assert all("Traceback" not in err for _, err in outputs)
    read = {}
    for out, _ in outputs:
        for line in out.splitlines():
            result = json.loads(line)
            read[result["path"]] = result["digit"]
    assert len(read) == IMAGES and set(read) == set(paths)  # every image answered once, none lost or mixed up
    accuracy = np.mean([read[path] == label for path, label in zip(paths, labels)])
    print(f"\n{IMAGES} images, {PROCESSES} processes at once: {seconds:.1f} s, {IMAGES / seconds:.0f} images/s, "
          f"accuracy {accuracy:.2%}")
    assert accuracy > 0.99


# ------------------------------------------------------------------ 20 browser sessions during a retrain

from bench.browser import (  # noqa: E402
    chromium_path,
    clear_canvas,
    draw_digit,
    launch_browser,
    prediction,
    running_app,
    wait_for_idle,
)

SESSIONS, SECONDS = 20, 120
ANSWER_TIMEOUT = 120.0  # an answer not shown by then is counted as wrong
DRAWN = [0, 7, 12, 16, 21, 27, 33, 36, 42, 47]  # fixture digits that read right when traced with the mouse


def _collect(pending: list, times: list, wrong: list, final: bool = False) -> list:
    """Check every page still waiting for its answer; returns those still waiting.

    An answer counts when the page shows the expected digit (its time is taken then), or, once
    the page is idle with some other digit after the input was sent, as wrong."""
    waiting = []
    for page, label, sent in pending:
        value = prediction(page)
        if value == str(label):
            times.append(time.perf_counter() - sent)
        elif final and time.perf_counter() - sent > ANSWER_TIMEOUT:
            wrong.append((label, value))
        else:
            waiting.append((page, label, sent))
    return waiting


def test_twenty_sessions_draw_and_upload_for_two_minutes_during_a_retrain(tmp_path, mnist_sample):
    import os

    import pytest

    if chromium_path() is None:
        if os.environ.get("REQUIRE_BROWSER"):
            raise RuntimeError("REQUIRE_BROWSER is set but no Chromium was found: apt-get install chromium")
        pytest.skip("Chromium is not installed")
    from playwright.sync_api import sync_playwright

    from training.data import Dataset, Split, save_cache

    x, y = mnist_sample
    data = tmp_path / "data"
    save_cache(Dataset("mnist", "load-test digits", Split(np.concatenate([x] * 200), np.concatenate([y] * 200)),
                       Split(x, y)), data / "cache")
    photos = []
    for i in range(len(x)):
        path = tmp_path / f"photo-{i:02d}.jpg"
        Image.fromarray(np.kron(255 - x[i], np.ones((8, 8), np.uint8))).convert("RGB").save(path, quality=90)
        photos.append((path, int(y[i])))
    times, wrong = [], []
    env = {"DIGITS_DATA_DIR": str(data), "DIGITS_CACHE_DIR": str(data / "cache")}
    with running_app(env) as url, sync_playwright() as playwright:
        browser = launch_browser(playwright)
        pages = []
        for index in range(SESSIONS):
            page = browser.new_context(viewport={"width": 1300, "height": 900}).new_page()
            page.goto(url)
            page.locator("canvas.upper-canvas").first.wait_for(timeout=120000)
            if index % 2:
                page.get_by_role("tab", name="Upload").click()
            pages.append(page)
        # One session starts a long retrain from the sidebar; it runs for the whole test.
        sidebar = pages[0].locator('[data-testid="stSidebar"]')
        epochs = sidebar.get_by_label("Epochs", exact=True)
        epochs.fill("200")
        epochs.press("Enter")
        wait_for_idle(pages[0])
        sidebar.get_by_role("button", name="Start training").click()
        sidebar.get_by_text("Training: epoch").wait_for(timeout=120000)

        rng = np.random.default_rng(0)
        end, round_number, pending = time.monotonic() + SECONDS, 0, []
        while time.monotonic() < end:
            for index, page in enumerate(pages):
                if any(waiting is page for waiting, _, _ in pending):
                    continue  # this session has not answered its last input yet
                if index % 2:  # upload a photo of a random digit
                    path, label = photos[int(rng.integers(len(photos)))]
                    if prediction(page) == str(label):
                        continue  # the same digit again could not be told apart from the last answer
                    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(path))
                else:  # clear, then draw a digit with the mouse
                    pick = DRAWN[(round_number + index) % len(DRAWN)]
                    if prediction(page) is not None:
                        clear_canvas(page)
                        page.wait_for_function("() => !document.querySelector('[data-testid=\"stMetric\"]')",
                                               timeout=ANSWER_TIMEOUT * 1000)
                    draw_digit(page, x[pick])
                    label = int(y[pick])
                pending.append((page, label, time.perf_counter()))
                pending = _collect(pending, times, wrong)
            round_number += 1
        deadline = time.monotonic() + ANSWER_TIMEOUT + 5
        while pending and time.monotonic() < deadline:
            pending = _collect(pending, times, wrong, final=True)
            pages[0].wait_for_timeout(100)
        wrong += [(label, prediction(page)) for page, label, _ in pending]
        training_still_running = sidebar.get_by_text("Training: epoch").count() > 0
        training_failed = sidebar.get_by_text("Training failed").count() > 0
        errors = sum(page.locator('[data-testid="stException"]').count() for page in pages)
        browser.close()
    times = np.array(times)
    print(f"\n{SESSIONS} sessions, {SECONDS} s, {round_number} rounds, {len(times)} answers: "
          f"p50 {np.median(times):.2f} s, p95 {np.percentile(times, 95):.2f} s, max {times.max():.2f} s; "
          f"wrong {len(wrong)} {wrong[:5]}, errors {errors}; "
          f"training still running at the end: {training_still_running}")
    assert errors == 0
    assert wrong == []  # every input sent got its right answer: one unanswered by the end is listed here too
    # Every session was served (no throughput is asked: a busy machine answers fewer, issue 15).
    assert len(times) >= SESSIONS and not training_failed
