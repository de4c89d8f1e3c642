"""Helpers to drive the real app in Debian's Chromium with Playwright."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

from services.jobs import TrainingJobs
from training.strokes import strokes_from_image

ROOT = Path(__file__).resolve().parents[1]
# A phone-sized page with touch, as the phone tests and benches open it.
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


# Records every WebSocket frame the page sends or receives, with its size, on the page's own clock.
WEBSOCKET_TAP = """(() => {
    window.__frames = [];
    const Native = window.WebSocket;
    const size = d => typeof d === 'string' ? d.length : (d.byteLength ?? d.size ?? 0);
    window.WebSocket = function (...args) {
        const socket = new Native(...args);
        socket.addEventListener('message', e => window.__frames.push(
            {dir: 'in', t: performance.now(), bytes: size(e.data)}));
        const send = socket.send.bind(socket);
        socket.send = d => { window.__frames.push({dir: 'out', t: performance.now(), bytes: size(d)}); send(d); };
        return socket;
    };
    window.WebSocket.prototype = Native.prototype;
    Object.assign(window.WebSocket, {CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3});
})();"""


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running_app(env_overrides: dict[str, str], timeout: float = 90, script: Path = ROOT / "app.py",
                launcher: tuple[str, ...] = ("-m", "streamlit"), started: dict | None = None):
    """Start `streamlit run app.py` on a free localhost port; yield its URL.

    `launcher` replaces `-m streamlit` (e.g. a script that wraps Streamlit's CLI); `started`, if
    given, receives the server's pid and the perf_counter time just before it was started.
    """
    port = free_port()
    env = {**os.environ, **env_overrides}
    command = [sys.executable, *launcher, "run", str(script), "--server.port", str(port),
               "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    log_dir = Path(env_overrides.get("DIGITS_DATA_DIR", "/tmp"))
    log_dir.mkdir(parents=True, exist_ok=True)
    log = open(log_dir / "streamlit.log", "w")
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    if started is not None:
        started.update(pid=process.pid, time=start)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the app did not start: see {log.name}")
                time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
        if "DIGITS_DATA_DIR" in env_overrides:  # a retrain outlives the app (by design): stop it with the app here
            TrainingJobs(Path(env_overrides["DIGITS_DATA_DIR"]) / "runs").cancel()


def launch_browser(playwright):
    return playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)


def wait_for_idle(page, timeout: float = 30) -> None:
    """Wait until Streamlit has finished the rerun that the last input started."""
    page.wait_for_timeout(300)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout * 1000)


def prediction(scope, label: str = "Prediction") -> str | None:
    """The value of the metric labelled `label` ('Prediction', 'Number') in scope (a page or a locator), if shown."""
    metric = scope.locator('[data-testid="stMetric"]:visible').filter(has_text=label)
    if metric.count() == 0:
        return None
    return metric.first.locator('[data-testid="stMetricValue"]').inner_text().strip()


def draw_strokes(page, strokes, scale: float = 10.0, offset: tuple[float, float] = (0, 0)) -> None:
    """Draw polylines of 28x28-grid points with the mouse on the canvas (Fabric's upper canvas)."""
    canvas = page.locator("canvas.upper-canvas").first
    canvas.wait_for(state="visible")
    for stroke in strokes:
        box = canvas.bounding_box()  # each time: a rerun between strokes may have moved the canvas
        points = [(box["x"] + offset[0] + (x + 0.5) * scale, box["y"] + offset[1] + (y + 0.5) * scale)
                  for x, y in _smooth(stroke)]
        page.mouse.move(*points[0])
        page.mouse.down()
        for point in points[1:]:
            page.mouse.move(*point, steps=2)
        page.mouse.up()
        page.wait_for_timeout(150)


def draw_digit(page, image: np.ndarray, scale: float = 10.0, offset: tuple[float, float] = (0, 0)) -> None:
    """Redraw a 28x28 digit's skeleton with the mouse."""
    draw_strokes(page, strokes_from_image(image), scale, offset)


def touch_strokes(page, cdp, strokes, scale: float = 10.0) -> None:
    """Draw polylines of 28x28-grid points with a finger: touch events through the DevTools protocol
    (`cdp` from context.new_cdp_session(page)), as a phone's touch screen sends them."""
    canvas = page.locator("canvas.upper-canvas").first
    for stroke in strokes:
        box = canvas.bounding_box()  # each time: a rerun between strokes may have moved the canvas
        points = [(box["x"] + (x + 0.5) * scale, box["y"] + (y + 0.5) * scale) for x, y in _smooth(stroke)]
        for kind, (x, y) in zip(["touchStart"] + ["touchMove"] * (len(points) - 1), points):
            cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": [{"x": x, "y": y}]})
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
        page.wait_for_timeout(150)


def ink_pixels(page) -> int:
    """How many pixels of the canvas hold ink (the app draws white on black)."""
    return page.locator("canvas.dc-canvas.lower-canvas").first.evaluate(  # not the background canvas under it
        """c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                  let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] > 128) n++; return n; }""")


def _smooth(stroke: list[tuple[int, int]]) -> list[tuple[float, float]]:
    """A moving average takes the stair-steps out of the pixel skeleton, as a hand would."""
    points = np.array(stroke, dtype=float)
    if len(points) < 5:
        return [tuple(p) for p in points]
    kernel = np.ones(3) / 3
    smooth = np.column_stack([np.convolve(np.pad(points[:, i], 1, mode="edge"), kernel, "valid") for i in (0, 1)])
    smooth[0], smooth[-1] = points[0], points[-1]
    return [tuple(p) for p in smooth]


def wait_for_prediction(page, timeout: float = 30, settle: float = 1.0, label: str = "Prediction") -> str:
    """The Prediction (or Number) metric's value once it has stayed the same for `settle` seconds.

    Each stroke triggers a rerun, and Streamlit shows its running indicator only
    for runs that take a while, so the value is watched until it stops changing.
    """
    deadline = time.monotonic() + timeout
    value, since = None, time.monotonic()
    while time.monotonic() < deadline:
        current = prediction(page, label)
        if current != value:
            value, since = current, time.monotonic()
        elif value is not None and time.monotonic() - since >= settle:
            return value
        page.wait_for_timeout(100)
    raise TimeoutError(f"no settled prediction within {timeout} s (last seen: {value})")


def wait_for_canvas(page, timeout: float = 60) -> None:
    """Wait until the app's canvas can be drawn on and each stroke is sent at pen-up: the pen-up sender's
    script (ui.inputs.SEND_ON_PEN_UP_JS) loads beside the canvas, not with it."""
    page.locator("canvas.upper-canvas").first.wait_for(timeout=timeout * 1000)
    page.wait_for_function("() => window.__digitsQuickSend !== undefined", timeout=timeout * 1000)


def clear_canvas(page, tap: bool = False, timeout: float = 30) -> None:
    """Press Clear (with a finger when `tap`) and wait until the answer has gone with the drawing."""
    button = page.locator(".st-key-canvas_clear button")
    (button.tap if tap else button.click)()
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stMetric\"]')", timeout=timeout * 1000)
