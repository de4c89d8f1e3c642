"""The canvas's floor for bench/answer_latency.py: the least any page with the app's canvas can do per stroke.

The app's own canvas (the same component, size, pen-up sender, Undo and Clear, in a fragment, with the
same interpreter setting) and a metric that appears once there is ink: the canvas's value is received
and decoded, but nothing is read. What the app takes beyond this is the reading and the details.
"""

import sys
from pathlib import Path

import streamlit as st
from streamlit_drawable_canvas import st_canvas

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ui.inputs import canvas_input  # noqa: E402
from ui.resources import tune_interpreter  # noqa: E402

tune_interpreter()


@st.fragment
def panel() -> None:
    drawing = canvas_input(st_canvas)
    if drawing is not None and drawing[..., :3].any():
        st.metric("Prediction", 1)


panel()
