"""Handwritten digit recognizer: draw, upload or photograph a digit and see what the model reads.

Run with `bash run.sh app` (or `streamlit run app.py`). This file only wires
widgets to functions in model/ and training/.
"""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st
from streamlit_drawable_canvas import st_canvas

from model.architectures import ARCHITECTURES
from model.artifacts import ModelFileError
from model.images import ACCEPTED_EXTENSIONS, ImageDecodeError, decode_image
from model.annotate import draw_readings
from model.inference import NumberReading, Reading, Recognizer
from model.registry import PROMOTION_MARGIN, SHIPPED_VERSION, ModelVersion, Registry, worse_by
from training.data import DATASETS
from training.jobs import PRESETS, JobState, TrainingAlreadyRunning, TrainingJobs

CANVAS_SIZE = 280  # 10x MNIST's 28 px, so a mouse can draw comfortably
ZOOM = 5  # the 28x28 model input is shown at 140x140, nearest-neighbour
READ_MODES = ("Auto", "One digit", "Whole number")


@st.cache_resource(show_spinner="Loading the model…")
def load_recognizer(model_path: str, sha256: str) -> Recognizer:
    """One model per process and version; sha256 is part of the key so a promotion reloads."""
    return Recognizer(model_path)


@st.cache_resource
def training_jobs() -> TrainingJobs:
    return TrainingJobs()


def active_recognizer(registry: Registry) -> tuple[Recognizer, ModelVersion]:
    active = registry.active()
    try:
        return load_recognizer(str(active.path), active.info.get("model_sha256", "")), active
    except ModelFileError as error:
        st.warning(f"The active model could not be loaded ({error}). Using the shipped model instead.")
        shipped = registry.get(SHIPPED_VERSION)
        return load_recognizer(str(shipped.path), shipped.info.get("model_sha256", "")), shipped


# --------------------------------------------------------------------------- main area


def read_mode() -> str:
    return st.radio("Read", READ_MODES, horizontal=True, key="read_mode",
                    help="Auto reads one digit, or a whole number when the ink holds several digits.")


def read(recognizer: Recognizer, image: np.ndarray | None, mode: str) -> Reading | NumberReading | None:
    if image is None:
        return None
    if mode == "One digit":
        return recognizer.read(image)
    if mode == "Whole number":
        return recognizer.read_number(image)
    return recognizer.read_auto(image)


def canvas_input() -> np.ndarray | None:
    pen = st.slider("Pen width", min_value=4, max_value=40, value=18, key="pen_width")
    drawing = st_canvas(stroke_width=pen, stroke_color="#FFFFFF", background_color="#000000",
                        width=CANVAS_SIZE, height=CANVAS_SIZE, drawing_mode="freedraw",
                        update_streamlit=True, return_image_data=True, key="canvas")
    st.caption("Draw a digit, or a number. Clear and undo are in the canvas toolbar.")
    return drawing.image_data


@st.fragment
def draw_panel(recognizer: Recognizer, mode: str) -> None:
    """Canvas and result together: a stroke reruns only this part of the page."""
    canvas_column, result_column = st.columns([1, 2])
    with canvas_column:
        drawing = canvas_input()
    with result_column:
        show_result(read(recognizer, drawing, mode), drawing, "Draw a digit on the black canvas.")


def upload_input() -> tuple[bytes, str] | None:
    upload = st.file_uploader("Upload a photo or scan of a digit or a number", type=list(ACCEPTED_EXTENSIONS),
                              key="upload")
    return (upload.getvalue(), upload.name) if upload is not None else None


def camera_input() -> tuple[bytes, str] | None:
    photo = st.camera_input("Take a photo of a digit on paper", key="camera")
    return (photo.getvalue(), "camera photo") if photo is not None else None


def decoded(file: tuple[bytes, str] | None) -> np.ndarray | None:
    if file is None:
        return None
    data, name = file
    try:
        return decode_image(data, name)
    except ImageDecodeError as error:
        st.error(str(error))
        return None


def probability_chart(reading: Reading) -> alt.Chart:
    table = pd.DataFrame({"digit": [str(d) for d in range(10)], "probability": reading.probabilities})
    table["pick"] = np.where(table["digit"] == str(reading.digit), "prediction", "other")
    return alt.Chart(table).mark_bar().encode(
        x=alt.X("digit:N", sort=None, axis=alt.Axis(labelAngle=0)),
        y=alt.Y("probability:Q", scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("pick:N", scale=alt.Scale(domain=["prediction", "other"], range=["#e4572e", "#9db4c0"]),
                        legend=None),
        tooltip=["digit", alt.Tooltip("probability:Q", format=".2%")],
    ).properties(height=220)


def show_reading(reading: Reading) -> None:
    digit_column, seen_column = st.columns(2)
    with digit_column:
        st.metric("Prediction", reading.digit)
        st.write(f"Confidence: **{reading.confidence:.1%}**")
        if reading.uncertain:
            (first, p1), (second, p2) = reading.top(2)
            st.warning(f"Not sure: {first} ({p1:.0%}) or {second} ({p2:.0%}).")
    with seen_column:
        st.image(zoomed(reading.model_input), caption="What the model saw (28x28)", width=28 * ZOOM, clamp=True)
    st.altair_chart(probability_chart(reading), width="stretch")


def show_number(number: NumberReading, image: np.ndarray) -> None:
    st.metric("Number", number.number)
    unsure = [f"digit {place} ({d.top(2)[0][0]} or {d.top(2)[1][0]})"
              for place, d in enumerate(number.digits, start=1) if d.uncertain]
    if unsure:
        st.warning("Not sure about " + ", ".join(unsure) + ".")
    st.image(draw_readings(image, number.digits), caption="Each digit as read", width="stretch")
    st.image([zoomed(d.model_input) for d in number.digits], width=28 * 3,
             caption=[f"{d.digit} ({d.confidence:.0%})" for d in number.digits], clamp=True)
    st.caption("What the model saw (28x28 each)")


def show_result(result: Reading | NumberReading | None, image: np.ndarray | None, empty_hint: str) -> None:
    if result is None:
        st.info(empty_hint)
    elif isinstance(result, NumberReading) and result.number is not None:
        show_number(result, image)
    elif isinstance(result, NumberReading) or result.digit is None:
        st.info(f"Nothing to read: {result.reason}. {empty_hint}")
    else:
        show_reading(result)


def zoomed(model_input: np.ndarray) -> np.ndarray:
    return np.kron(model_input, np.ones((ZOOM, ZOOM), np.uint8))


# --------------------------------------------------------------------------- sidebar


def model_summary(active: ModelVersion) -> None:
    info = active.info
    st.subheader("Active model")
    accuracy = f"{active.test_accuracy:.2%}" if active.test_accuracy is not None else "not measured"
    st.markdown(
        f"**{active.version}** · {info.get('architecture', '?')} CNN  \n"
        f"MNIST test accuracy: **{accuracy}**  \n"
        f"Trained {info.get('created', '?')[:16].replace('T', ' ')} on {active.trained_on}"
    )


def retrain_controls() -> dict | None:
    """The retrain form; returns the chosen settings when Start is clicked."""
    st.subheader("Retrain")
    preset = st.radio("Preset", list(PRESETS), format_func=lambda p: PRESETS[p]["label"], key="train_preset")
    data = st.multiselect("Data", DATASETS, default=["mnist"], key="train_data",
                          help="EMNIST Digits needs its files (see README) or internet access.")
    architecture = st.selectbox("Architecture", sorted(ARCHITECTURES), key=f"train_architecture_{preset}",
                                index=sorted(ARCHITECTURES).index(PRESETS[preset]["architecture"]))
    epochs = st.number_input("Epochs", min_value=1, max_value=200, value=PRESETS[preset]["epochs"],
                             key=f"train_epochs_{preset}")
    if st.button("Start training", key="train_start", type="primary"):
        return {"preset": preset, "data": tuple(data) or ("mnist",), "architecture": architecture, "epochs": int(epochs)}
    return None


def training_progress(state: JobState, jobs: TrainingJobs) -> None:
    progress = state.progress
    epoch, epochs = progress.get("epoch", 0), progress.get("epochs") or 1
    batch, steps = progress.get("batch", 0), progress.get("steps") or 1
    done = ((max(epoch, 1) - 1) + batch / steps) / epochs
    st.progress(min(done, 1.0), text=f"{state.status.capitalize()}: epoch {epoch}/{epochs}, batch {batch}/{steps}")
    logs = progress.get("logs", {})
    if logs:
        st.caption(f"loss {logs.get('loss', float('nan')):.4f} · accuracy {logs.get('accuracy', float('nan')):.4f}")
    history = pd.DataFrame(progress.get("history", {}))
    if len(history):
        history.index = history.index + 1
        st.line_chart(history[[c for c in ("loss", "val_loss") if c in history]], height=150)
        st.line_chart(history[[c for c in ("accuracy", "val_accuracy") if c in history]], height=150)
    if st.button("Cancel training", key="train_cancel"):
        jobs.cancel()
        st.rerun()


def finished_model(state: JobState, jobs: TrainingJobs, registry: Registry, active: ModelVersion) -> None:
    candidate = state.sidecar()
    new_accuracy = candidate["metrics"].get("test_mnist", {}).get("accuracy")
    st.success(f"Training finished: {candidate['epochs_run']} epochs in {candidate['training_seconds']:.0f} s.")
    st.table(pd.DataFrame({
        "active": [active.version, f"{active.test_accuracy:.2%}" if active.test_accuracy else "?", active.info.get("architecture")],
        "new": [candidate["version"], f"{new_accuracy:.2%}" if new_accuracy else "?", candidate["architecture"]],
    }, index=["version", "MNIST test accuracy", "architecture"]))
    shortfall = worse_by(candidate, active)
    confirmed = True
    if shortfall > PROMOTION_MARGIN:
        st.warning(f"The new model is {shortfall:.2%} less accurate than the active one.")
        confirmed = st.checkbox("Promote it anyway", key="promote_anyway")
    promote_column, keep_column = st.columns(2)
    if promote_column.button("Promote", key="train_promote", disabled=not confirmed, type="primary"):
        registry.activate(registry.add(state.model_path).version)
        jobs.resolve("promoted")
        st.rerun(scope="app")
    if keep_column.button("Keep current", key="train_keep"):
        registry.add(state.model_path)  # kept as a version, not activated
        jobs.resolve("kept")
        st.rerun(scope="app")


def training_panel(jobs: TrainingJobs, registry: Registry, active: ModelVersion, was_running: bool) -> None:
    state = jobs.state()
    if was_running and (state is None or not state.running):
        st.rerun(scope="app")  # training ended: redraw the whole page and stop the timer
    if state is None or state.resolved:
        return
    if state.running:
        training_progress(state, jobs)
    elif state.status == "done":
        finished_model(state, jobs, registry, active)
    else:
        st.error(f"Training {state.status}: {state.message}")
        if st.button("Dismiss", key="train_dismiss"):
            jobs.resolve("dismissed")
            st.rerun(scope="app")


def versions_panel(registry: Registry, active: ModelVersion) -> None:
    with st.expander("Model versions"):
        versions = registry.versions()
        labels = {v.version: f"{v.version} · {v.test_accuracy:.2%}" if v.test_accuracy else v.version for v in versions}
        chosen = st.selectbox("Version", list(labels), format_func=labels.get, key="version_choice",
                              index=list(labels).index(active.version) if active.version in labels else 0)
        if st.button("Activate", key="version_activate", disabled=chosen == active.version):
            registry.activate(chosen)
            st.rerun()
        if st.button("Roll back to the previous model", key="version_rollback"):
            try:
                registry.rollback()
                st.rerun()
            except ValueError as error:
                st.warning(str(error))


# --------------------------------------------------------------------------- page

st.set_page_config(page_title="Digit recognizer", page_icon="✍️", layout="wide")
registry = Registry()
jobs = training_jobs()
recognizer, active = active_recognizer(registry)

with st.sidebar:
    model_summary(active)
    versions_panel(registry, active)
    settings = retrain_controls()
    if settings is not None:
        try:
            jobs.start(**settings)
        except TrainingAlreadyRunning as error:
            st.warning(str(error))
    job = jobs.state()
    running = job is not None and job.running
    # Refresh the progress every second while training runs, without rerunning the page.
    st.fragment(run_every=1.0 if running else None)(training_panel)(jobs, registry, active, running)

st.title("Handwritten digit recognizer")
mode = read_mode()
draw_tab, upload_tab, camera_tab = st.tabs(["Draw", "Upload", "Camera"])
with draw_tab:
    draw_panel(recognizer, mode)
with upload_tab:
    image = decoded(upload_input())
    show_result(read(recognizer, image, mode), image,
                "Upload a PNG, JPEG, WebP, BMP, GIF or TIFF image of a digit or a number.")
with camera_tab:
    image = decoded(camera_input())
    show_result(read(recognizer, image, mode), image, "Hold a digit or a number written on paper up to the camera.")
