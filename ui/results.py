"""What the model read and why: the answer, what it saw, its probabilities, the why map and the downloads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import streamlit as st

from model.annotate import draw_readings
from model.confidence import EMPTY, MEANING, VERDICT_LABELS
from model.explain import explain, overlay, overlay_on_image
from model.images import encode_png
from model.inference import NumberReading, Reading, Recognizer
from model.preprocess import NO_INK
from model.predict import number_json, reading_json
from ui.feedback import FeedbackTarget, feedback_buttons

ZOOM = 5  # the 28x28 model input is shown at 140x140, nearest-neighbour
WHY_WIDTH = 200  # the "why" map over the user's own input
READ_MODES = ("Auto", "One digit", "Whole number")
ANSWER_COLOUR, OTHER_COLOUR = "#e4572e", "#9db4c0"
IF_A_DIGIT = "Not an answer: how it would split if it were a digit"


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


def _readings(result: Reading | NumberReading | None) -> list[Reading]:
    """The readings a result holds (a number's digits), or none when nothing was read."""
    readings = result.digits if isinstance(result, NumberReading) else [result]
    return [] if result is None or not readings or readings[0].verdict == EMPTY else readings


def _sentence(reason: str) -> str:
    return reason[0].upper() + reason[1:] + "."


def blank(result: Reading | NumberReading | None) -> bool:
    """No ink at all: on the canvas that is a fresh (or cleared) canvas, not a photo without contrast."""
    return result is not None and result.reason == NO_INK and not (isinstance(result, NumberReading) and result.digits)


def probability_chart(reading: Reading) -> dict:
    """A Vega-Lite bar chart of the ten probabilities, the answer highlighted. A refusal has no answer: its
    bars are all pale, under a title that says what they are (issue 33: one full orange bar beside
    "Not a digit" read as an answer).

    A plain spec rather than Altair: Altair validates its schema on every
    rerun, a third of a canvas stroke's server time."""
    claimed = not reading.refused
    values = [{"digit": str(d), "probability": p, "pick": "prediction" if claimed and d == reading.closest else "other"}
              for d, p in enumerate(reading.probabilities)]
    return {
        "data": {"values": values},
        "mark": {"type": "bar", "opacity": 1.0 if claimed else 0.45},
        "height": 220,
        "title": {"text": "Probability of each digit" if claimed else IF_A_DIGIT, "fontSize": 13,
                  "fontWeight": "normal"},
        "encoding": {
            "x": {"field": "digit", "type": "nominal", "sort": None, "axis": {"labelAngle": 0}},
            "y": {"field": "probability", "type": "quantitative", "scale": {"domain": [0, 1]}},
            "color": ({"field": "pick", "type": "nominal", "legend": None,
                       "scale": {"domain": ["prediction", "other"], "range": [ANSWER_COLOUR, OTHER_COLOUR]}}
                      if claimed else {"value": OTHER_COLOUR}),
            "tooltip": [{"field": "digit"}, {"field": "probability", "format": ".2%"}],
        },
    }


def if_a_digit(reading: Reading) -> str:
    """A refused reading's guess, as what it is: the likeliest digit if it were one, not an answer."""
    return (f"If it were a digit, the likeliest would be {reading.closest} "
            f"({reading.confidence:.0%} of the reader's probability, which only splits among 0-9).")


def show_answer(result: Reading | NumberReading | None, empty_hint: str) -> None:
    """The digit (or number) and how sure the model is: the first thing a user looks for."""
    if result is None:
        st.info(empty_hint)
    elif isinstance(result, NumberReading):
        if not result.digits:  # a blank canvas or page: nothing was read, so there is no guess to name
            st.info(f"Nothing to read: {result.reason}. {empty_hint}")
        elif result.number is None:  # a piece is not a digit, or not surely one: no number is claimed
            st.metric("Number", "Not read", help=MEANING)
            st.warning(_sentence(result.reason))
            st.caption("If every piece were a digit, the likeliest reading: "
                       + "".join(str(d.closest) for d in result.digits))
        else:
            st.metric("Number", result.number, help=MEANING)
    elif result.verdict == EMPTY:
        st.info(f"Nothing to read: {result.reason}. {empty_hint}")
    elif result.refused:
        st.metric("Prediction", VERDICT_LABELS[result.verdict], help=MEANING)
        st.warning(_sentence(result.reason))
        st.caption(if_a_digit(result))
    else:
        st.metric("Prediction", result.digit, help=MEANING)
        st.write(f"Confidence: **{result.confidence:.1%}**")


def show_details(result: Reading | NumberReading | None, image: np.ndarray | None, recognizer: Recognizer,
                 name: str, tab: str) -> None:
    """What the model saw, the chart, why and downloads; nothing when there is no reading.

    `name` is the input's (the file's) name, `tab` keeps each tab's widgets apart."""
    readings = _readings(result)
    nothing = not readings
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


def show_feedback(result: Reading | NumberReading | None, image: np.ndarray | None,
                  target: FeedbackTarget | None) -> None:
    """Right / Wrong, right under the answer (issue 33: below the details they were out of sight)."""
    readings = _readings(result)
    if target is not None and readings:
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


def zoomed(model_input: np.ndarray, zoom: int = ZOOM) -> np.ndarray:
    return np.kron(model_input, np.ones((zoom, zoom), np.uint8))
