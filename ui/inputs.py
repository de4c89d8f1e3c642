"""Where an image comes from: the canvas (with Undo and Clear), an upload, the camera, the gallery."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import streamlit as st

from model.constants import CANVAS_SIZE, PEN_WIDTH, PEN_WIDTHS
from model.images import ACCEPTED_EXTENSIONS, MAX_FILE_BYTES, MAX_PIXELS, ImageDecodeError, decode_image, encode_png
from model.inference import Recognizer
from ui import state
from ui.feedback import FeedbackTarget
from ui.results import blank, read, show_answer, show_details, show_feedback

# The canvas component sends a drawing 200 ms after the pen lifts (a debounce in its own script, not an
# option), which was four fifths of the wait for an answer (bench/answer_latency.py). This presses its own
# "Update the app with this drawing" button the moment a stroke ends instead: the same value, sent at once.
# It counts what it sent in window.__digitsQuickSend, so a browser test sees that it still finds the button.
SEND_ON_PEN_UP_JS = """
export default function () {
  if (window.__digitsQuickSend) return;
  const quick = window.__digitsQuickSend = {sent: 0, canvas: null};
  const label = 'button[aria-label="Update the app with this drawing"]';
  document.addEventListener('pointerdown', event => {
    quick.canvas = event.composedPath().find(node => node.classList?.contains('upper-canvas')) || null;
  });
  const send = () => {
    const canvas = quick.canvas;
    quick.canvas = null;
    if (!canvas) return;
    let node = canvas, button = null;
    while (node && !(button = node.querySelector?.(label))) node = node.parentNode;
    if (button) { button.click(); quick.sent += 1; }
  };
  // The canvas (Fabric.js) ends a stroke on the document's mouseup or touchend, after pointerup: the
  // window hears them last. A stroke the browser cancels has ended too: send what is on the canvas.
  for (const end of ['mouseup', 'touchend', 'touchcancel', 'pointercancel']) window.addEventListener(end, send);
}
"""
send_on_pen_up = st.components.v2.component("digits_send_on_pen_up", js=SEND_ON_PEN_UP_JS, isolate_styles=False)
# The browser draws a rerun's elements once all of them have arrived; a short pause after the answer lets it
# draw the answer first, the details a moment later (docs/speed.md: the answer ~12 ms sooner, painted ~30 ms).
ANSWER_FIRST_PAUSE = 0.015
UPLOAD_LIMITS = f"Up to {MAX_FILE_BYTES // 2**20} MB and {MAX_PIXELS / 1e6:.0f} megapixels."
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"  # the gallery, written by examples/make_examples.py


def _edit_canvas(undo: bool) -> None:
    """Undo the last stroke, or clear: the canvas redraws from `initial_drawing`, which must change to be
    reloaded, hence the count. (The canvas's own toolbar shows on hover only: a touch screen has none.)"""
    state.request_canvas_edit(state.canvas_objects()[:-1] if undo else [])


def canvas_input(st_canvas) -> np.ndarray | None:
    """The drawing, as RGBA. `st_canvas`: the canvas component (app.py passes it in; tests a stand-in)."""
    pen = state.pen_width(PEN_WIDTH)
    with st.container(key="canvas_frame"):  # app.py's style leaves room above it for its hover toolbar
        drawing = st_canvas(stroke_width=pen, stroke_color="#FFFFFF", background_color="#000000",
                            width=CANVAS_SIZE, height=CANVAS_SIZE, drawing_mode="freedraw", update_streamlit=True,
                            return_image_data=True, initial_drawing=state.canvas_edit(), key="canvas")
    state.remember_canvas_objects((drawing.json_data or {}).get("objects", []))
    with st.container(horizontal=True, key="canvas_tools"):
        st.button("Undo", key="canvas_undo", icon=":material/undo:", on_click=_edit_canvas, args=(True,))
        st.button("Clear", key="canvas_clear", icon=":material/delete:", on_click=_edit_canvas, args=(False,))
        send_on_pen_up(key="canvas_send_on_pen_up", width="content", height="content")
    return drawing.image_data


@st.fragment
def draw_panel(st_canvas, recognizer: Recognizer, mode: str, target: FeedbackTarget,
               active: tuple[str, Callable[[], str]]) -> None:
    """Canvas, answer and details: a stroke reruns only this part of the page.

    The answer sits right under the canvas, so on a phone (where the columns stack) it is on
    screen after every stroke; the details follow. `active`: the active version this page was drawn with,
    and how to read it now: when another session or server promoted one meanwhile, the whole page reruns,
    so that this stroke is read by the new model and the sidebar says so."""
    drawn_with, active_now = active
    if active_now() != drawn_with:
        st.rerun(scope="app")
    canvas_column, details_column = st.columns([1, 2])
    with canvas_column:
        drawing = canvas_input(st_canvas)
        result = read(recognizer, drawing, mode)
        if blank(result):  # cleared: ask for a digit as on a fresh page, not in a photo's words
            result = None
        show_answer(result, "Draw a digit on the black canvas.")
        if result is not None:
            time.sleep(ANSWER_FIRST_PAUSE)
        show_feedback(result, drawing, target)
        st.slider("Pen width", min_value=PEN_WIDTHS[0], max_value=PEN_WIDTHS[1], value=PEN_WIDTH, key=state.PEN_WIDTH)
    with details_column:
        show_details(result, drawing, recognizer, "canvas", "canvas")


def upload_input() -> tuple[bytes, str] | None:
    upload = st.file_uploader("Upload a photo or scan of a digit or a number", type=list(ACCEPTED_EXTENSIONS),
                              key="upload", help=f"{UPLOAD_LIMITS} A larger photo is refused, saying why.")
    st.caption(UPLOAD_LIMITS)
    return (upload.getvalue(), upload.name) if upload is not None else None


def camera_input() -> tuple[bytes, str] | None:
    photo = st.camera_input("Take a photo of a digit on paper", key="camera")
    return (photo.getvalue(), "camera photo") if photo is not None else None


@st.cache_data
def example_gallery() -> list[dict]:
    """The gallery's entries, each with a small thumbnail: decoding the photos on every run cost 13 ms."""
    gallery = json.loads((EXAMPLES / "gallery.json").read_text())
    return [{**example, "thumbnail": encode_png(decode_image((EXAMPLES / example["file"]).read_bytes()), 96)}
            for example in gallery]


def example_input() -> tuple[bytes, str] | None:
    """The gallery: one click sends an example file down the upload's path."""
    with st.container(horizontal=True, key="examples_gallery"):
        for index, example in enumerate(example_gallery()):
            with st.container(width=120, horizontal_alignment="center"):
                st.image(example["thumbnail"], width=96)
                st.button(example["caption"], key=f"example_{index}", width="stretch",
                          on_click=state.choose_example, args=(example["file"],))
    chosen = state.example()
    return ((EXAMPLES / chosen).read_bytes(), chosen) if chosen else None


def decoded(file: tuple[bytes, str] | None) -> np.ndarray | None:
    if file is None:
        return None
    data, name = file
    try:
        return decode_image(data, name)
    except ImageDecodeError as error:
        st.error(str(error))
        return None
