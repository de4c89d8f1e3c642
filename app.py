"""Handwritten digit recognizer: draw, upload or photograph a digit and see what the model reads.

Run with `bash run.sh app` (or `streamlit run app.py`). This file only wires
widgets to functions in model/ and training/.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import sqlite3
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import streamlit as st
from streamlit_drawable_canvas import st_canvas

from model.annotate import draw_readings
from model.architectures import ARCHITECTURES
from model.artifacts import ModelFileError
from model.images import ACCEPTED_EXTENSIONS, ImageDecodeError, decode_image, encode_png
from model.confidence import EMPTY, MEANING, VERDICT_LABELS
from model.explain import explain, overlay, overlay_on_image
from model.inference import NumberReading, Reading, Recognizer
from model.predict import number_json, reading_json
from model.registry import PROMOTION_MARGIN, SHIPPED_VERSION, ModelVersion, Registry, worse_by
from training.corrections import RAW_MAX_SIDE, CorrectionStore
from training.config import TrainConfig
from training.data import DATASETS
from training.feedback import FEEDBACK_MODES
from training.jobs import PRESETS, JobState, TrainingAlreadyRunning, TrainingJobs
from training.models import metric_rows, summary

CANVAS_SIZE = 280  # 10x MNIST's 28 px, so a mouse can draw comfortably
PEN_WIDTH = 18
EXAMPLES = Path(__file__).resolve().parent / "examples"  # the gallery, written by examples/make_examples.py
ZOOM = 5  # the 28x28 model input is shown at 140x140, nearest-neighbour
WHY_WIDTH = 200  # the "why" map over the user's own input
READ_MODES = ("Auto", "One digit", "Whole number")
RECENT_CORRECTIONS = 24
TRAINING_DEFAULTS = TrainConfig()


class FeedbackTarget(NamedTuple):
    """Where a user's "right"/"wrong" goes: the store, the model that answered, and the input's source."""

    store: CorrectionStore
    model_version: str
    source: str  # canvas | upload | camera; also keeps each tab's feedback widgets apart


@st.cache_resource(show_spinner="Loading the model…")
def load_recognizer(model_path: str, sha256: str) -> Recognizer:
    """One model per process and version; sha256 is part of the key so a promotion reloads."""
    return Recognizer(model_path)


@st.cache_resource
def training_jobs() -> TrainingJobs:
    return TrainingJobs()


@st.cache_resource
def correction_store() -> CorrectionStore:
    return CorrectionStore()


def admin_token() -> str | None:
    """ADMIN_TOKEN from the environment, else from .streamlit/secrets.toml; None when neither sets it."""
    token = os.environ.get("ADMIN_TOKEN")
    if not token:
        try:
            token = st.secrets.get("ADMIN_TOKEN")
        except FileNotFoundError:  # no secrets file: that is the usual local setup
            token = None
    return token or None


def active_recognizer(registry: Registry) -> tuple[Recognizer, ModelVersion]:
    """The active model; if its file is damaged, the last good one before it (and say so)."""
    problems = []
    for version in registry.active_and_fallbacks():
        try:
            recognizer = load_recognizer(str(version.path), version.info.get("model_sha256", ""))
        except ModelFileError as error:
            problems.append(f"{version.version}: {error}")
            continue
        if problems:
            st.warning(f"Using {version.version}, the last model that loads, because: " + " ".join(problems))
        return recognizer, version
    st.error("No model could be loaded: " + " ".join(problems) + " Reinstall the app or retrain.")
    st.stop()


# --------------------------------------------------------------------------- main area

# On a phone the columns stack: a smaller title and less padding keep the canvas and the answer
# under it on one screen. Nothing changes above Streamlit's own phone breakpoint (640 px).
PHONE_STYLE = """<style>
@media (max-width: 640px) {
  [data-testid="stMainBlockContainer"] { padding-top: 4rem; padding-bottom: 2rem; }
  [data-testid="stMainBlockContainer"] h1 { font-size: 1.5rem; padding: 0 0 0.25rem 0; }
  [data-testid="stMainBlockContainer"] [data-testid="stMetricValue"] { font-size: 1.8rem; }
}
</style>"""


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


def _edit_canvas(undo: bool) -> None:
    """Undo the last stroke, or clear: the canvas redraws from `initial_drawing`, which must change to be
    reloaded, hence the count. (The canvas's own toolbar shows on hover only: a touch screen has none.)"""
    edit = st.session_state.get("canvas_edit", {"objects": [], "edit": 0})
    objects = st.session_state.get("canvas_objects", []) if undo else []
    st.session_state["canvas_edit"] = {"objects": objects[:-1] if undo else [], "edit": edit["edit"] + 1}


def canvas_input() -> np.ndarray | None:
    pen = st.session_state.get("pen_width", PEN_WIDTH)
    drawing = st_canvas(stroke_width=pen, stroke_color="#FFFFFF", background_color="#000000",
                        width=CANVAS_SIZE, height=CANVAS_SIZE, drawing_mode="freedraw", update_streamlit=True,
                        return_image_data=True, initial_drawing=st.session_state.get("canvas_edit"), key="canvas")
    st.session_state["canvas_objects"] = (drawing.json_data or {}).get("objects", [])
    with st.container(horizontal=True, key="canvas_tools"):
        st.button("Undo", key="canvas_undo", icon=":material/undo:", on_click=_edit_canvas, args=(True,))
        st.button("Clear", key="canvas_clear", icon=":material/delete:", on_click=_edit_canvas, args=(False,))
    return drawing.image_data


@st.fragment
def draw_panel(recognizer: Recognizer, mode: str, target: FeedbackTarget) -> None:
    """Canvas, answer and details: a stroke reruns only this part of the page.

    The answer sits right under the canvas, so on a phone (where the columns stack) it is on
    screen after every stroke; the details follow."""
    canvas_column, details_column = st.columns([1, 2])
    with canvas_column:
        drawing = canvas_input()
        result = read(recognizer, drawing, mode)
        show_answer(result, "Draw a digit on the black canvas.")
        st.slider("Pen width", min_value=4, max_value=40, value=PEN_WIDTH, key="pen_width")
    with details_column:
        show_details(result, drawing, recognizer, "canvas", "canvas", target)


def upload_input() -> tuple[bytes, str] | None:
    upload = st.file_uploader("Upload a photo or scan of a digit or a number", type=list(ACCEPTED_EXTENSIONS),
                              key="upload")
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


def _choose_example(file: str) -> None:
    st.session_state["example"] = file


def example_input() -> tuple[bytes, str] | None:
    """The gallery: one click sends an example file down the upload's path."""
    with st.container(horizontal=True, key="examples_gallery"):
        for index, example in enumerate(example_gallery()):
            with st.container(width=120, horizontal_alignment="center"):
                st.image(example["thumbnail"], width=96)
                st.button(example["caption"], key=f"example_{index}", width="stretch",
                          on_click=_choose_example, args=(example["file"],))
    chosen = st.session_state.get("example")
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


def probability_chart(reading: Reading) -> dict:
    """A Vega-Lite bar chart of the ten probabilities, the winner highlighted.

    A plain spec rather than Altair: Altair validates its schema on every
    rerun, a third of a canvas stroke's server time."""
    values = [{"digit": str(d), "probability": p, "pick": "prediction" if d == reading.closest else "other"}
              for d, p in enumerate(reading.probabilities)]
    return {
        "data": {"values": values},
        "mark": "bar",
        "height": 220,
        "encoding": {
            "x": {"field": "digit", "type": "nominal", "sort": None, "axis": {"labelAngle": 0}},
            "y": {"field": "probability", "type": "quantitative", "scale": {"domain": [0, 1]}},
            "color": {"field": "pick", "type": "nominal", "legend": None,
                      "scale": {"domain": ["prediction", "other"], "range": ["#e4572e", "#9db4c0"]}},
            "tooltip": [{"field": "digit"}, {"field": "probability", "format": ".2%"}],
        },
    }


def show_answer(result: Reading | NumberReading | None, empty_hint: str) -> None:
    """The digit (or number) and how sure the model is: the first thing a user looks for."""
    if result is None:
        st.info(empty_hint)
    elif isinstance(result, NumberReading):
        if result.number is None:  # a piece is not a digit, or not surely one: no number is claimed
            st.metric("Number", "Not read", help=MEANING)
            st.warning(result.reason.capitalize() + ".")
            st.caption("Closest guess: " + "".join(str(d.closest) for d in result.digits))
        else:
            st.metric("Number", result.number, help=MEANING)
    elif result.verdict == EMPTY:
        st.info(f"Nothing to read: {result.reason}. {empty_hint}")
    elif result.refused:
        st.metric("Prediction", VERDICT_LABELS[result.verdict], help=MEANING)
        st.warning(result.reason.capitalize() + ".")
        st.caption(f"Closest guess: {result.closest} ({result.confidence:.0%})")
    else:
        st.metric("Prediction", result.digit, help=MEANING)
        st.write(f"Confidence: **{result.confidence:.1%}**")


def show_details(result: Reading | NumberReading | None, image: np.ndarray | None, recognizer: Recognizer,
                 name: str, tab: str, target: FeedbackTarget | None) -> None:
    """What the model saw, the chart, why, downloads and feedback; nothing when there is no reading.

    `name` is the input's (the file's) name, `tab` keeps each tab's widgets apart."""
    readings = result.digits if isinstance(result, NumberReading) else [result]
    nothing = result is None or not readings or readings[0].verdict == EMPTY
    # Shown (disabled) even with nothing to explain: a widget that is not drawn forgets its value,
    # and the choice must outlive a cleared canvas.
    why = st.toggle("Why this digit?", key=f"why_{tab}", disabled=nothing,
                    help="Erases the ink bit by bit and watches the answer: orange ink pushed the model towards "
                         "its answer, blue ink towards the runner-up.")
    if nothing:
        return
    if isinstance(result, NumberReading):
        st.image(draw_readings(image, result.digits), caption="Each digit as read", width="stretch")
        st.image([zoomed(d.model_input) for d in result.digits], width=28 * 3, clamp=True,
                 caption=[f"{d.closest if d.digit is None else d.digit} ({d.confidence:.0%})" for d in result.digits])
        st.caption("What the model saw (28x28 each)")
    else:
        st.image(zoomed(result.model_input), caption="What the model saw (28x28)", width=28 * ZOOM, clamp=True)
    if why:
        why_view(readings, image, recognizer)
    if isinstance(result, Reading):
        st.vega_lite_chart(probability_chart(result), width="stretch")
    downloads(result, readings, name, tab)
    if target is not None:
        feedback_buttons(readings, image, target)


def why_view(readings: list[Reading], image: np.ndarray, recognizer: Recognizer) -> None:
    explanations = [explain(r.model_input, recognizer.probabilities, r.closest) for r in readings]
    with st.container(horizontal=True):
        # JPEG: a quarter of PNG's encoding time per stroke, and these are pictures, not data.
        st.image([overlay(zoomed(r.model_input), e.heat) for r, e in zip(readings, explanations)],
                 width=28 * ZOOM if len(readings) == 1 else 28 * 3, output_format="JPEG",
                 caption=[f"{e.answer} rather than {e.rival}" for e in explanations])
        st.image(overlay_on_image(image, [(e, r.model_input, r.box) for r, e in zip(readings, explanations)]),
                 caption="On your input", width=WHY_WIDTH, output_format="JPEG")
    st.caption(":orange[Orange]: ink that pushed the model towards its answer. :blue[Blue]: ink that pushed it "
               "towards the runner-up.")


def downloads(result: Reading | NumberReading, readings: list[Reading], name: str, tab: str) -> None:
    """Take the result away: the 28x28 input(s) as PNG and the reading as `model.predict --json` prints it."""
    printed = number_json(name, result) if isinstance(result, NumberReading) else reading_json(name, result)
    stem = Path(name).stem
    with st.container(horizontal=True, key=f"downloads_{tab}"):
        st.download_button("28x28 input (PNG)", encode_png(np.hstack([r.model_input for r in readings])),
                           file_name=f"{stem}-28x28.png", mime="image/png", key=f"download_png_{tab}",
                           icon=":material/download:", on_click="ignore")
        st.download_button("Reading (JSON)", json.dumps(printed), file_name=f"{stem}-reading.json",
                           mime="application/json", key=f"download_json_{tab}", icon=":material/download:",
                           on_click="ignore")


def _fingerprint(readings: list[Reading]) -> str:
    return hashlib.sha1(b"".join(r.model_input.tobytes() for r in readings)).hexdigest()


def _save_feedback(target: FeedbackTarget, readings: list[Reading], labels: list[int], raw: np.ndarray) -> None:
    raw_png = encode_png(raw, RAW_MAX_SIDE)  # once, shared by every digit of a number
    try:
        ids = target.store.add_many([(label, r.model_input, raw_png, r.closest, r.confidence)
                                     for r, label in zip(readings, labels)], target.model_version, target.source)
    except sqlite3.Error as error:
        st.session_state[f"feedback_{target.source}_error"] = (
            f"The correction could not be stored ({error}). Nothing was saved; please try again.")
        return
    st.session_state.setdefault("feedback_saved", {})[_fingerprint(readings)] = (ids, labels)
    st.session_state["feedback_changed"] = True


def _picked(target: FeedbackTarget, readings: list[Reading], raw: np.ndarray, key: str) -> None:
    """A digit (or a number) was picked as the right answer: check it, store it, clear the field."""
    value = st.session_state.get(key)
    text = "" if value is None else str(value).strip()  # the digit 0 is an answer, not a blank
    st.session_state[key] = None if len(readings) == 1 else ""
    if not text:
        return
    if not text.isdigit() or len(text) != len(readings):
        st.session_state[f"feedback_{target.source}_error"] = (f"Type the {len(readings)} digits of the number, "
                                                               f"e.g. {'1234567890'[:len(readings)]}.")
        return
    _save_feedback(target, readings, [int(c) for c in text], raw)


def _undo_feedback(target: FeedbackTarget, fingerprint: str) -> None:
    ids, _ = st.session_state["feedback_saved"].pop(fingerprint)
    for correction_id in ids:
        target.store.delete(correction_id)
    st.session_state["feedback_changed"] = True


def feedback_buttons(readings: list[Reading], raw: np.ndarray, target: FeedbackTarget) -> None:
    """"Right", or "Wrong" and the right answer: either way the sample is stored for retraining."""
    if st.session_state.pop("feedback_changed", False):
        st.rerun(scope="app")  # the click reran only the canvas fragment; the sidebar's counts must follow
    fingerprint, key = _fingerprint(readings), f"feedback_{target.source}"
    saved = st.session_state.get("feedback_saved", {}).get(fingerprint)
    if saved:
        st.success(f"Saved as {''.join(map(str, saved[1]))}. Thank you: retraining with corrections learns from it.")
        st.button("Undo", key=f"{key}_undo", on_click=_undo_feedback, args=(target, fingerprint))
        return
    predicted = [r.closest for r in readings]
    right, wrong = st.columns([1, 3], vertical_alignment="bottom")
    if not any(r.refused for r in readings):  # nothing to confirm when no digit was claimed
        right.button("Right", key=f"{key}_right", icon=":material/check:", on_click=_save_feedback,
                     args=(target, readings, predicted, raw))
    with wrong:
        if len(readings) == 1:
            st.pills("Wrong → pick the digit", list(range(10)), key=f"{key}_digit", on_change=_picked,
                     args=(target, readings, raw, f"{key}_digit"))
        else:
            st.text_input("Wrong → type the number", key=f"{key}_number", placeholder="".join(map(str, predicted)),
                          on_change=_picked, args=(target, readings, raw, f"{key}_number"))
    error = st.session_state.pop(f"{key}_error", None)
    if error:
        st.error(error)


def zoomed(model_input: np.ndarray, zoom: int = ZOOM) -> np.ndarray:
    return np.kron(model_input, np.ones((zoom, zoom), np.uint8))


# --------------------------------------------------------------------------- sidebar


def admin_gate(token: str | None) -> bool:
    """Whether this session may retrain, switch models and delete data."""
    if token is None:
        st.caption("Open local tool: no ADMIN_TOKEN is set, so anyone who can open this page can retrain, "
                   "switch models and delete corrections.")
        return True
    entered = st.text_input("Admin token", type="password", key="admin_token",
                            help="Needed to retrain, switch models and delete data; reading digits and sending "
                                 "corrections need nothing.")
    unlocked = hmac.compare_digest(entered.encode(), token.encode())
    if entered and not unlocked:
        st.error("That admin token is not right.")
    elif not unlocked:
        st.caption("Locked: enter the admin token to retrain, switch models or delete data.")
    return unlocked


def model_summary(active: ModelVersion) -> None:
    info = active.info
    st.subheader("Active model")
    accuracy = f"{active.test_accuracy:.2%}" if active.test_accuracy is not None else "not measured"
    origin = f", fine-tuned from {info['fine_tuned_from']}" if info.get("fine_tuned_from") else ""
    st.markdown(
        f"**{active.version}** · {info.get('architecture', '?')} CNN  \n"
        f"MNIST test accuracy: **{accuracy}**  \n"
        f"Trained {info.get('created', '?')[:16].replace('T', ' ')} on {active.trained_on}{origin}"
    )


def corrections_panel(store: CorrectionStore, admin: bool) -> int:
    """Counts, recent samples, delete and export; returns how many samples are stored."""
    counts = store.counts()
    total = sum(counts["corrected"]) + sum(counts["confirmed"])
    with st.expander(f"Corrections ({total} stored)"):
        if not total:
            st.caption("None yet. After a prediction, press Right or pick the right digit: samples are stored "
                       "here and used when you retrain with corrections.")
            return total
        st.bar_chart(pd.DataFrame(counts, index=[str(d) for d in range(10)]), height=160,
                     x_label="true digit", y_label="samples")
        recent = store.recent(RECENT_CORRECTIONS)
        st.image([zoomed(c.model_input, 2) for c in recent], width=56, clamp=True,
                 caption=[f"#{c.id}: {c.label}" + ("" if c.confirmed else f" (read {c.predicted})") for c in recent])
        chosen = st.selectbox("A bad one", [c.id for c in recent], key="correction_choice",
                              format_func=lambda i: f"#{i}")
        # Every admin action checks `admin` itself too: a disabled button is only a hint to the browser.
        if st.button("Delete it", key="correction_delete", disabled=not admin) and admin:
            store.delete(chosen)
            st.rerun()
        st.download_button("Export all as .npz", data=store.export_npz if admin else b"", file_name="corrections.npz",
                           mime="application/octet-stream", key="corrections_export", disabled=not admin)
    return total


def retrain_controls(corrections: int) -> dict | None:
    """The retrain form; returns the chosen settings when Start is clicked."""
    st.subheader("Retrain")
    preset = st.radio("Preset", list(PRESETS), format_func=lambda p: PRESETS[p]["label"], key="train_preset")
    data = st.multiselect("Data", DATASETS, default=["mnist"], key="train_data",
                          help="EMNIST Digits needs its files (see README) or internet access.")
    if preset == "finetune":
        architecture, feedback = None, True
        st.caption(f"Starts from the active model and learns the {corrections} stored corrections, "
                   "replaying 20,000 training images so it keeps what it knew.")
    else:
        architecture = st.selectbox("Architecture", sorted(ARCHITECTURES), key=f"train_architecture_{preset}",
                                    index=sorted(ARCHITECTURES).index(PRESETS[preset]["architecture"]))
        feedback = st.checkbox(f"Include the {corrections} stored corrections", key="train_feedback",
                               disabled=corrections == 0)
    mode, factor = TRAINING_DEFAULTS.feedback_mode, TRAINING_DEFAULTS.feedback_factor
    if feedback and corrections:
        mode = st.radio("Corrections are", FEEDBACK_MODES, horizontal=True, key="train_feedback_mode",
                        format_func={"oversample": "repeated", "weight": "weighted"}.get)
        factor = st.number_input("Each counts like this many training images", min_value=1, max_value=1000,
                                 value=factor, key="train_feedback_factor")
    epochs = st.number_input("Epochs", min_value=1, max_value=200, value=PRESETS[preset]["epochs"],
                             key=f"train_epochs_{preset}")
    if st.button("Start training", key="train_start", type="primary", disabled=feedback and corrections == 0):
        return {"preset": preset, "data": tuple(data) or ("mnist",), "architecture": architecture,
                "epochs": int(epochs), "feedback": feedback and corrections > 0, "feedback_mode": mode,
                "feedback_factor": int(factor)}
    return None


def training_progress(state: JobState, jobs: TrainingJobs, admin: bool) -> None:
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
    if st.button("Cancel training", key="train_cancel", disabled=not admin) and admin:
        jobs.cancel()
        st.rerun()


def _percent(value: float | None) -> str:
    return f"{value:.2%}" if value is not None else "—"  # not "-": tables render markdown, and that is a bullet


def finished_model(state: JobState, jobs: TrainingJobs, registry: Registry, active: ModelVersion, admin: bool) -> None:
    candidate = state.sidecar()
    before = candidate.get("metrics_before", {})
    st.success(f"Training finished: {candidate['epochs_run']} epochs in {candidate['training_seconds']:.0f} s. "
               f"Kept as version {candidate['version']}.")
    rows = {"MNIST test accuracy": "test_mnist", "held-out corrections": "feedback_holdout"}
    st.table(pd.DataFrame({
        f"before ({before.get('version', active.version)})":
            [_percent(before.get(k, {}).get("accuracy", active.test_accuracy if k == "test_mnist" else None))
             for k in rows.values()],
        "new": [_percent(candidate["metrics"].get(k, {}).get("accuracy")) for k in rows.values()],
    }, index=list(rows)))
    shortfall = worse_by(candidate, active)
    confirmed = True
    if shortfall > PROMOTION_MARGIN:
        st.warning(f"The new model is {shortfall:.2%} less accurate than the active one on the MNIST test set.")
        confirmed = st.checkbox("Promote it anyway", key="promote_anyway", disabled=not admin)
    promote_column, keep_column = st.columns(2)
    promote = promote_column.button("Promote", key="train_promote", disabled=not (confirmed and admin), type="primary")
    if promote and confirmed and admin:
        registry.activate(registry.add(state.model_path).version)
        jobs.resolve("promoted")
        st.rerun(scope="app")
    if keep_column.button("Keep current", key="train_keep", disabled=not admin) and admin:
        registry.add(state.model_path)  # kept as an inactive version
        jobs.resolve("kept")
        st.rerun(scope="app")


def training_panel(jobs: TrainingJobs, registry: Registry, active: ModelVersion, was_running: bool,
                   admin: bool) -> None:
    state = jobs.state()
    if was_running and (state is None or not state.running):
        st.rerun(scope="app")  # training ended: redraw the whole page and stop the timer
    if state is None or state.resolved:
        return
    if state.running:
        training_progress(state, jobs, admin)
    elif state.status == "done":
        finished_model(state, jobs, registry, active, admin)
    else:
        st.error(f"Training {state.status}: {state.message}")
        if st.button("Dismiss", key="train_dismiss"):
            jobs.resolve("dismissed")
            st.rerun(scope="app")


@st.dialog("Compare model versions", width="large")
def compare_versions(registry: Registry, names: list[str]) -> None:
    versions = [registry.get(name) for name in names]
    st.dataframe(pd.DataFrame(metric_rows(versions), index=names).T, width="stretch")
    st.caption("MNIST test confusion matrices: rows are the true digit, columns what the model read.")
    for column, name in zip(st.columns(len(names)), names):
        matrix = registry.confusion(name)
        column.markdown(f"**{name}**")
        if matrix is None:
            column.caption("No confusion matrix recorded.")
        else:
            column.dataframe(pd.DataFrame(matrix).style.background_gradient(cmap="Blues", axis=None), height=400)


def versions_panel(registry: Registry, active: ModelVersion, admin: bool) -> None:
    with st.expander("Model versions"):
        versions = registry.versions()
        rows = [summary(v, active.version) for v in versions]
        table = pd.DataFrame({"MNIST test": [_percent(r["test_accuracy"]) for r in rows],
                              "corrections held out": [_percent(r["corrections_holdout_accuracy"]) for r in rows]},
                             index=[("● " if r["active"] else "") + r["version"] for r in rows])
        st.container(key="versions_table").table(table)
        names = [v.version for v in versions]
        chosen = st.selectbox("Version", names, key="version_choice",
                              index=names.index(active.version) if active.version in names else 0)
        activate_column, delete_column = st.columns(2)
        try:
            if activate_column.button("Activate", key="version_activate",
                                      disabled=not admin or chosen == active.version) and admin:
                registry.activate(chosen)
                st.rerun()
            if delete_column.button("Delete", key="version_delete",
                                    disabled=not admin or chosen in (active.version, SHIPPED_VERSION)) and admin:
                registry.delete(chosen)
                st.rerun()
            if st.button("Roll back to the previous model", key="version_rollback", disabled=not admin) and admin:
                registry.rollback()
                st.rerun()
        except (ValueError, ModelFileError) as error:  # e.g. nothing to roll back to, or deleted meanwhile
            st.warning(str(error))
        compared = st.multiselect("Compare", names, default=names[:2], max_selections=3, key="version_compare")
        if st.button("Compare side by side", key="version_compare_open", disabled=len(compared) < 2):
            compare_versions(registry, compared)


# --------------------------------------------------------------------------- page

st.set_page_config(page_title="Digit recognizer", page_icon=":material/draw:", layout="wide")
# This script and Streamlit's event loop (which sends each result to the browser) share the GIL. With
# the default 5 ms switch interval, every numpy or OpenCV call that releases it can wait 5 ms to get it
# back while the loop is busy: a stroke's server time doubled. A shorter interval bounds that wait.
sys.setswitchinterval(0.0005)
registry = Registry()
jobs = training_jobs()
store = correction_store()
recognizer, active = active_recognizer(registry)

with st.sidebar:
    admin = admin_gate(admin_token())
    model_summary(active)
    versions_panel(registry, active, admin)
    stored = corrections_panel(store, admin)
    settings = retrain_controls(stored) if admin else None
    if settings is not None:
        try:
            jobs.start(**settings)
        except TrainingAlreadyRunning as error:
            st.warning(str(error))
    job = jobs.state()
    running = job is not None and job.running
    # Refresh the progress every second while training runs, without rerunning the page.
    st.fragment(run_every=1.0 if running else None)(training_panel)(jobs, registry, active, running, admin)

st.session_state.pop("feedback_changed", None)  # a full run shows every change; only a fragment run must ask for one
st.html(PHONE_STYLE)
st.title("Handwritten digit recognizer")
mode = read_mode()
draw_tab, upload_tab, camera_tab, examples_tab = st.tabs(["Draw", "Upload", "Camera", "Examples"])
with draw_tab:
    draw_panel(recognizer, mode, FeedbackTarget(store, active.version, "canvas"))
for tab, name, pick, hint, feedback in (
        (upload_tab, "upload", upload_input, "Upload a PNG, JPEG, WebP, BMP, GIF or TIFF image of a digit or a number.",
         True),
        (camera_tab, "camera", camera_input, "Hold a digit or a number written on paper up to the camera.", True),
        (examples_tab, "examples", example_input, "Pick an example: each goes through the same steps as an upload.",
         False)):  # an example is no user's handwriting: nothing to learn from it
    with tab:
        file = pick()
        image = decoded(file)
        result = read(recognizer, image, mode)
        show_answer(result, hint)
        show_details(result, image, recognizer, file[1] if file else name, name,
                     FeedbackTarget(store, active.version, name) if feedback else None)
