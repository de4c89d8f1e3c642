"""Handwritten digit recognizer: draw, upload or photograph a digit and see what the model reads.

Run with `bash run.sh app` (or `streamlit run app.py`). This page only lays out
the parts in ui/, top to bottom: the sidebar (admin, model, versions,
corrections, retraining), then the four ways to give the model an image.
"""

from __future__ import annotations

import streamlit as st
from streamlit_drawable_canvas import st_canvas

from services.jobs import TrainingJobError
from ui import state
from ui.admin import admin_gate, corrections_panel, model_summary, versions_panel
from ui.feedback import FeedbackTarget
from ui.inputs import camera_input, decoded, draw_panel, example_input, upload_input
from ui.resources import (active_recognizer, admin_setting, model_registry, open_correction_store, token_guard,
                          training_jobs, tune_interpreter)
from ui.results import read, read_mode, show_answer, show_details, show_feedback
from ui.retrain import retrain_controls, training_panel

# On a phone the columns stack: a smaller title and less padding keep the canvas and the answer
# under it on one screen. Nothing changes above Streamlit's own phone breakpoint (640 px).
PHONE_STYLE = """<style>
/* the canvas's hover toolbar sits above it: room for it, so that it never covers the tab labels */
.st-key-canvas_frame { padding-top: 2.5rem; }
@media (max-width: 640px) {
  [data-testid="stMainBlockContainer"] { padding-top: 4rem; padding-bottom: 2rem; }
  [data-testid="stMainBlockContainer"] h1 { font-size: 1.5rem; padding: 0 0 0.25rem 0; }
  [data-testid="stMainBlockContainer"] [data-testid="stMetricValue"] { font-size: 1.8rem; }
}
</style>"""
# The tabs that read a file: (name, input, hint, whether a right/wrong is stored, whether it is drawn only while
# shown). An example is no user's handwriting: nothing to learn from it. Every element on the page delays each
# stroke's answer, so a tab that loses nothing when not drawn (the gallery) is drawn only while shown; the upload
# and the camera would lose their pictures.
FILE_TABS = (
    ("upload", upload_input, "Upload a PNG, JPEG, WebP, BMP, GIF or TIFF image of a digit or a number.", True, False),
    ("camera", camera_input, "Hold a digit or a number written on paper up to the camera.", True, False),
    ("examples", example_input, "Pick an example: each goes through the same steps as an upload.", False, True),
)

st.set_page_config(page_title="Digit recognizer", page_icon=":material/draw:", layout="wide")
tune_interpreter()
registry = model_registry()
jobs = training_jobs()
store = open_correction_store()
recognizer, active = active_recognizer(registry)

with st.sidebar:
    admin = admin_gate(admin_setting(), token_guard())
    job = jobs.state()
    running = job is not None and job.running
    # A run's progress and its result sit at the top, in view; refreshed every second while it trains,
    # without rerunning the page.
    st.fragment(run_every=1.0 if running else None)(training_panel)(jobs, registry, active, running, admin)
    model_summary(active, recognizer.gate)
    versions_panel(registry, active, admin)
    stored = corrections_panel(store, admin)
    config = retrain_controls(stored, running) if admin else None
    if config is not None:
        try:
            jobs.start(config)
        except TrainingJobError as error:  # already running, or the worker could not start
            st.warning(str(error))
        else:
            st.rerun()  # to draw its progress at the top

state.take_feedback_change()  # a full run shows every change; only a fragment run must ask for one
st.html(PHONE_STYLE)
st.title("Handwritten digit recognizer")
mode = read_mode()
draw_tab, *file_tabs = st.tabs(["Draw", "Upload", "Camera", "Examples"], key=state.INPUT_TAB, on_change="rerun")
with draw_tab:
    # the pointer, not active.version: when the active version could not be loaded, a fallback reads
    draw_panel(st_canvas, recognizer, mode, FeedbackTarget(store, active.version, "canvas"),
               (registry.active_version(), registry.active_version))
for tab, (name, pick, hint, learns, only_while_shown) in zip(file_tabs, FILE_TABS):
    with tab:
        if only_while_shown and not tab.open:
            continue
        # The answer and Right / Wrong beside the input, in view as on the canvas (below it on a phone).
        input_column, answer_column = st.columns(2)
        with input_column:
            file = pick()
        with answer_column:
            image = decoded(file)
            result = read(recognizer, image, mode)
            show_answer(result, hint)
            show_feedback(result, image, FeedbackTarget(store, active.version, name) if learns else None)
            show_details(result, image, recognizer, file[1] if file else name, name)
