"""What every session shares: the model, the corrections store, the training jobs (cached per process)."""

from __future__ import annotations

import os

import streamlit as st

from model.artifacts import ModelFileError
from model.inference import Recognizer
from model.registry import ModelVersion, Registry
from services.corrections import CorrectionStore
from services.jobs import TrainingJobs


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
            recognizer = load_recognizer(str(version.path), version.card.model_sha256 or "")
        except ModelFileError as error:
            problems.append(f"{version.version}: {error}")
            continue
        if problems:
            st.warning(f"Using {version.version}, the last model that loads, because: " + " ".join(problems))
        return recognizer, version
    st.error("No model could be loaded: " + " ".join(problems) + " Reinstall the app or retrain.")
    st.stop()
