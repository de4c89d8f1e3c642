"""Every session-state key the app sets itself, declared once, with the helpers that change them.

Widget keys (e.g. `read_mode`, `pen_width`) are given where the widget is drawn; the keys
here hold what callbacks leave for the next run.
"""

from __future__ import annotations

import uuid

import streamlit as st

PEN_WIDTH = "pen_width"  # the pen slider's value: the canvas above it is drawn with it
CANVAS_EDIT = "canvas_edit"  # what Undo/Clear ask the canvas to redraw: {"objects": [...], "edit": count}
CANVAS_OBJECTS = "canvas_objects"  # the strokes on the canvas after the last run
EXAMPLE = "example"  # the gallery file picked last
FEEDBACK_SAVED = "feedback_saved"  # input fingerprint -> (correction ids, labels) saved in this session
FEEDBACK_CHANGED = "feedback_changed"  # a callback changed the store: the sidebar's counts must follow
FEEDBACK_ERROR = "feedback_{source}_error"  # why the last right/wrong of a tab could not be saved
SESSION_ID = "session_id"  # a random id per browser session: which corrections came together (no personal data)
# The parts drawn only while open (each element on the page delays every stroke's answer): whether the sidebar's
# panels are expanded, and which input tab is shown. Tests open them through these keys.
CORRECTIONS_OPEN = "corrections_open"
VERSIONS_OPEN = "versions_open"
INPUT_TAB = "input_tab"
ACCEPTED_TOKEN = "accepted_token"  # the admin token a try accepted (the guard's say), checked on every run
TOKEN_REFUSAL = "token_refusal"  # why the last try was refused: wrong, too soon, locked out
DONE = "done"  # what a model action just did (promote, keep, activate, roll back), told once after its rerun


def session_id() -> str:
    """This browser session's random id, made on first use."""
    return st.session_state.setdefault(SESSION_ID, uuid.uuid4().hex)


def pen_width(default: int) -> int:
    return st.session_state.get(PEN_WIDTH, default)


def canvas_edit() -> dict | None:
    """The drawing Undo/Clear asked for last (None: none yet, the canvas keeps its own)."""
    return st.session_state.get(CANVAS_EDIT)


def request_canvas_edit(objects: list) -> None:
    """Ask the canvas to redraw with these strokes (a new count each time, or the canvas ignores it)."""
    count = (canvas_edit() or {"edit": 0})["edit"]
    st.session_state[CANVAS_EDIT] = {"objects": objects, "edit": count + 1}


def canvas_objects() -> list:
    return st.session_state.get(CANVAS_OBJECTS, [])


def remember_canvas_objects(objects: list) -> None:
    st.session_state[CANVAS_OBJECTS] = objects


def example() -> str | None:
    return st.session_state.get(EXAMPLE)


def choose_example(file: str) -> None:
    st.session_state[EXAMPLE] = file


def saved_feedback() -> dict:
    return st.session_state.setdefault(FEEDBACK_SAVED, {})


def mark_feedback_changed() -> None:
    st.session_state[FEEDBACK_CHANGED] = True


def take_feedback_change() -> bool:
    """Whether a callback changed the store since the last full run; clears the mark.

    A full run shows every change, so it clears the mark first; a fragment run that finds it set
    must rerun the whole page."""
    return bool(st.session_state.pop(FEEDBACK_CHANGED, False))


def report_feedback_error(source: str, message: str) -> None:
    st.session_state[FEEDBACK_ERROR.format(source=source)] = message


def take_feedback_error(source: str) -> str | None:
    return st.session_state.pop(FEEDBACK_ERROR.format(source=source), None)


def report_done(message: str) -> None:
    st.session_state[DONE] = message


def take_done() -> str | None:
    return st.session_state.pop(DONE, None)


def accepted_token() -> str | None:
    return st.session_state.get(ACCEPTED_TOKEN)


def accept_token(token: str | None) -> None:
    st.session_state[ACCEPTED_TOKEN] = token


def token_refusal() -> str | None:
    return st.session_state.get(TOKEN_REFUSAL)


def refuse_token(message: str | None) -> None:
    st.session_state[TOKEN_REFUSAL] = message
