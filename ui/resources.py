"""What every session shares (cached per process): the model, the corrections store, the training jobs, the
interpreter's one setting; and the admin setting, read fail-closed."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import NamedTuple

import streamlit as st

from model.artifacts import ModelFileError
from model.inference import Recognizer
from model.registry import ModelVersion, Registry
from services.admin_guard import TokenGuard
from services.corrections import CorrectionStore
from services.database import STORE_ERRORS, DatabaseSettingError, store_problem
from services.jobs import TrainingJobs, open_jobs
from services.model_store import open_registry
from services.schema import SchemaError


# The active model and the one before it (a rollback, or sessions still on the old one after a promotion):
# every version ever promoted must not stay in memory.
LOADED_MODELS = 2


@st.cache_resource(show_spinner="Loading the model…", max_entries=LOADED_MODELS)
def load_recognizer(model_path: str, sha256: str) -> Recognizer:
    """One model per process and version; sha256 is part of the key so a promotion reloads."""
    return Recognizer(model_path)


@st.cache_resource
def training_jobs() -> TrainingJobs:
    return open_jobs()


@st.cache_resource
def model_registry() -> Registry:
    """The deployment's model versions (files in var/, or the database's: services.model_store), once per process."""
    return open_registry()


@st.cache_resource
def correction_store() -> CorrectionStore:
    return CorrectionStore()


def open_correction_store() -> CorrectionStore | None:
    """The corrections store, or None when its database cannot be opened now (down, or a setting that names
    none): the sidebar says why, and reading goes on without it. Tried again on the next run."""
    try:
        return correction_store()
    except (DatabaseSettingError, SchemaError, *STORE_ERRORS) as error:
        problem = str(error) if isinstance(error, (DatabaseSettingError, SchemaError)) else store_problem(error)
        log.error("Corrections store unavailable: %s", problem)
        st.sidebar.warning(f"The corrections store cannot be opened: {problem}. Reading digits goes on; "
                           "corrections cannot be stored until it is back.")
        return None


log = logging.getLogger(__name__)
# This script and Streamlit's event loop (which sends each result to the browser) share the GIL. With
# the default 5 ms switch interval, every numpy or OpenCV call that releases it can wait 5 ms to get it
# back while the loop is busy: a stroke's server time doubled. A shorter interval bounds that wait.
GIL_SWITCH_INTERVAL = 0.0005


@st.cache_resource
def tune_interpreter() -> float:
    """Set the process-wide GIL switch interval, once per process (not on every rerun of every session)."""
    sys.setswitchinterval(GIL_SWITCH_INTERVAL)
    return GIL_SWITCH_INTERVAL


@st.cache_resource
def token_guard() -> TokenGuard:
    """One per server process: wrong admin tokens count across every session (services.admin_guard)."""
    return TokenGuard()


class AdminSetting(NamedTuple):
    """The admin token, or None when none is set; `problem` says why the setting could not be read."""

    token: str | None
    problem: str | None = None


def admin_setting() -> AdminSetting:
    """ADMIN_TOKEN from the environment, else from Streamlit's secrets files.

    No secrets file at all is the usual local setup: no token, an open tool. A secrets file that exists
    but cannot be read or parsed is not that: Streamlit raises the same FileNotFoundError subclass for
    both, so we tell them apart by whether a file is there, and keep the gate locked (fail closed)."""
    token = os.environ.get("ADMIN_TOKEN")
    if token:
        return AdminSetting(token)
    try:
        token = st.secrets.get("ADMIN_TOKEN")
    except Exception as error:  # a parse error, a permission error, a path that is not a file...
        files = [str(path) for path in st.get_option("secrets.files") if Path(path).exists()]
        if not files and isinstance(error, FileNotFoundError):
            return AdminSetting(None)
        problem = (f"the secrets file ({', '.join(files) or 'secrets.files'}) could not be read: {error}. "
                   "Fix or remove it and reload the page")
        log.error("Admin tools locked: %s", problem)
        return AdminSetting(None, problem)
    if token is not None and not isinstance(token, str):
        problem = f"ADMIN_TOKEN in the secrets file is a {type(token).__name__}; write it as a string in quotes"
        log.error("Admin tools locked: %s", problem)
        return AdminSetting(None, problem)
    return AdminSetting(token or None)


def active_recognizer(registry: Registry) -> tuple[Recognizer, ModelVersion]:
    """The active model; if its file is damaged, the last good one before it (and say so)."""
    problems = []
    for version in registry.active_and_fallbacks():
        try:
            recognizer = load_recognizer(str(version.path), version.card.model_sha256 or "")
        except ModelFileError as error:
            problems.append(f"{version.version}: {error}")
            continue
        if problems:
            st.warning(f"Using {version.version}, the last model that loads, because: " + " ".join(problems))
        return recognizer, version
    st.error("No model could be loaded: " + " ".join(problems) + " Reinstall the app or retrain.")
    st.stop()
