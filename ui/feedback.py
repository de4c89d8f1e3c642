"""Right or wrong: a user's answer about a reading, stored as a correction to learn from."""

from __future__ import annotations

import hashlib
from typing import NamedTuple

import numpy as np
import streamlit as st

from model.confidence import DIGIT
from model.confidence import NOT_A_DIGIT as NOT_A_DIGIT_VERDICT
from model.constants import NOT_A_DIGIT
from model.images import encode_png
from model.inference import Reading
from services.corrections import RAW_MAX_SIDE, CorrectionLimitError, CorrectionStore, label_name
from services.database import STORE_ERRORS, store_problem
from ui import state


class FeedbackTarget(NamedTuple):
    """Where a user's "right"/"wrong" goes: the store, the model that answered, and the input's source."""

    store: CorrectionStore | None  # None: the store cannot be reached now (ui.resources says why)
    model_version: str
    source: str  # canvas | upload | camera; also keeps each tab's feedback widgets apart


def _fingerprint(readings: list[Reading]) -> str:
    return hashlib.sha1(b"".join(r.model_input.tobytes() for r in readings)).hexdigest()


def _answered(reading: Reading) -> int:
    """What the app answered, as a label: the digit it read, or NOT_A_DIGIT when it said so. (The stored
    `predicted` stays the reader's closest digit: the store keeps digits there.)"""
    return NOT_A_DIGIT if reading.verdict == NOT_A_DIGIT_VERDICT else reading.closest


def _save_feedback(target: FeedbackTarget, readings: list[Reading], labels: list[int], raw: np.ndarray) -> None:
    raw_png = encode_png(raw, RAW_MAX_SIDE)  # once, shared by every digit of a number
    try:
        ids = target.store.add_many([(label, r.model_input, raw_png, r.closest, r.confidence)
                                     for r, label in zip(readings, labels)], target.model_version, target.source,
                                    state.session_id())
    except CorrectionLimitError as error:  # too many from this session, or the store is full: it says which
        state.report_feedback_error(target.source, str(error))
        return
    except STORE_ERRORS as error:  # the database is down or restarting: say so, keep nothing half-stored
        state.report_feedback_error(target.source, f"The correction could not be stored ({store_problem(error)}). "
                                                   "Nothing was saved; please try again in a moment.")
        return
    state.saved_feedback()[_fingerprint(readings)] = (ids, labels)
    state.mark_feedback_changed()


def _picked(target: FeedbackTarget, readings: list[Reading], raw: np.ndarray, key: str) -> None:
    """A digit, "not a digit" (or a number) was picked as the right answer: check it, store it, clear the field."""
    value = st.session_state.get(key)
    st.session_state[key] = None if len(readings) == 1 else ""
    if value == NOT_A_DIGIT and len(readings) == 1:
        _save_feedback(target, readings, [NOT_A_DIGIT], raw)
        return
    text = "" if value is None else str(value).strip()  # the digit 0 is an answer, not a blank
    if not text:
        return
    if not text.isdigit() or len(text) != len(readings):
        state.report_feedback_error(target.source, f"Type the {len(readings)} digits of the number, "
                                                   f"e.g. {'1234567890'[:len(readings)]}.")
        return
    _save_feedback(target, readings, [int(c) for c in text], raw)


def _undo_feedback(target: FeedbackTarget, fingerprint: str) -> None:
    ids, _ = state.saved_feedback()[fingerprint]
    try:
        for correction_id in ids:
            target.store.delete(correction_id)
    except STORE_ERRORS as error:  # still saved: Undo stays, to be pressed again
        state.report_feedback_error(target.source, f"Undo did not reach the store ({store_problem(error)}); "
                                                   "the correction is still saved. Please try again in a moment.")
        return
    state.saved_feedback().pop(fingerprint)
    state.mark_feedback_changed()


def feedback_buttons(readings: list[Reading], raw: np.ndarray, target: FeedbackTarget) -> None:
    """"Right", or "Wrong" and the right answer (a digit, or "not a digit" for one drawing): either way the
    sample is stored for retraining."""
    if state.take_feedback_change():
        st.rerun(scope="app")  # the click reran only the canvas fragment; the sidebar's counts must follow
    if target.store is None:
        st.caption("Right / Wrong are off: the corrections store cannot be reached now (see the sidebar).")
        return
    fingerprint, key = _fingerprint(readings), f"feedback_{target.source}"
    saved = state.saved_feedback().get(fingerprint)
    if saved:
        st.success(f"Saved as {''.join(map(label_name, saved[1]))}. Thank you: retraining with corrections "
                   "learns from it.")
        st.button("Undo", key=f"{key}_undo", on_click=_undo_feedback, args=(target, fingerprint))
        return
    predicted = [r.closest for r in readings]
    right, wrong = st.columns([1, 3], vertical_alignment="bottom")
    # Every digit claimed, or one drawing said to be no digit, can be confirmed; "not sure" claimed nothing.
    if all(r.verdict == DIGIT for r in readings) or (len(readings) == 1 and readings[0].verdict == NOT_A_DIGIT_VERDICT):
        right.button("Right", key=f"{key}_right", icon=":material/check:", on_click=_save_feedback,
                     args=(target, readings, [_answered(r) for r in readings], raw),
                     help="Stored as \"not a digit\" for the gate to learn from." if readings[0].refused else None)
    with wrong:
        if len(readings) == 1:
            st.pills("Wrong → pick the digit", [*range(10), NOT_A_DIGIT], format_func=label_name, key=f"{key}_digit",
                     on_change=_picked, args=(target, readings, raw, f"{key}_digit"))
        else:
            st.text_input("Wrong → type the number", key=f"{key}_number", placeholder="".join(map(str, predicted)),
                          on_change=_picked, args=(target, readings, raw, f"{key}_number"))
    error = state.take_feedback_error(target.source)
    if error:
        st.error(error)
