"""Retraining from the sidebar: the form, the progress of the running job, and keeping or dropping its model."""

from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from model.artifacts import ModelFileError
from model.card import HEADLINE, TEST_SPLIT, ModelCard
from model.gate import gate_path
from model.registry import PROMOTION_MARGIN, ModelVersion, Registry, worse_by
from services.jobs import JobState, TrainingJobs
from training.config import FIELD_TYPES, FORM_OPTIONS, PRESETS, TrainConfig, in_form
from ui.admin import shown
from ui.state import report_done


def retrain_controls(corrections: int, running: bool) -> TrainConfig | None:
    """The retrain form, drawn from the options TrainConfig marks for it; the config to train when Start is clicked.
    While a run goes (`running`), Start is off and says why."""
    st.subheader("Retrain")
    preset = st.radio("Preset", list(PRESETS), format_func=lambda p: PRESETS[p].label, key="train_preset")
    chosen = PRESETS[preset]
    if chosen.note:
        st.caption(chosen.note.format(corrections=corrections, replay=TrainConfig(**chosen.overrides).replay))
    values = dict(chosen.overrides)
    for field in FORM_OPTIONS:  # in declaration order: a choice above (corrections on) shows options below
        if in_form(field, values):
            # a preset's own options get a key per preset, so that switching presets shows its values
            suffix = f"_{preset}" if field.name in chosen.overrides else ""
            values[field.name] = option_widget(field, values.get(field.name, field.default), suffix, corrections)
    try:
        config = TrainConfig(**values)
    except ValueError as error:
        st.error(str(error))
        return None
    missing = config.feedback and corrections == 0
    blocked = missing or running
    if running:
        st.caption("A training is running (its progress is at the top of this sidebar): one runs at a time. "
                   "Wait for it, or cancel it there.")
    if st.button("Start training", key="train_start", type="primary", disabled=blocked) and not blocked:
        return config
    return None


def option_widget(field, default, key_suffix: str, corrections: int):
    """One option's widget, chosen by its type: a checkbox, buttons or a list of choices, or a number."""
    form, kind, key = field.metadata["form"], FIELD_TYPES[field.name], f"train_{field.name}{key_suffix}"
    label = form.label.format(corrections=corrections)
    choices = field.metadata["choices"]
    if kind is bool:
        off = form.needs_corrections and corrections == 0
        return st.checkbox(label, value=bool(default) and not off, key=key, disabled=off, help=form.help) and not off
    if isinstance(default, tuple):
        return tuple(st.multiselect(label, choices, default=list(default), key=key, help=form.help)) or field.default
    if choices and form.names:
        return st.radio(label, choices, index=choices.index(default), horizontal=True, key=key, help=form.help,
                        format_func=lambda choice: form.names.get(choice, choice))
    if choices:
        return st.selectbox(label, choices, index=choices.index(default), key=key, help=form.help)
    low, high = form.limits or (None, None)
    return kind(st.number_input(label, min_value=low, max_value=high, value=default, key=key, help=form.help))


def training_progress(state: JobState, jobs: TrainingJobs, admin: bool) -> None:
    progress = state.progress
    epoch, epochs = progress.get("epoch", 0), progress.get("epochs") or 1
    batch, steps = progress.get("batch", 0), progress.get("steps") or 1
    done = min(((max(epoch, 1) - 1) + batch / steps) / epochs, 1.0)
    st.progress(done, text=f"{state.status.capitalize()}: epoch {epoch} of {epochs}{time_left(state, done)}")
    if st.button("Cancel training", key="train_cancel", disabled=not admin) and admin:
        jobs.cancel()
        st.rerun()
    logs = progress.get("logs", {})
    history = pd.DataFrame(progress.get("history", {}))
    if logs or len(history):
        with st.expander("Loss and accuracy"):
            if logs:
                st.caption(f"batch {batch}/{steps} · loss {logs.get('loss', float('nan')):.4f} · "
                           f"accuracy {logs.get('accuracy', float('nan')):.4f}")
            if len(history):
                history.index = history.index + 1
                st.line_chart(history[[c for c in ("loss", "val_loss") if c in history]], height=150)
                st.line_chart(history[[c for c in ("accuracy", "val_accuracy") if c in history]], height=150)


def time_left(state: JobState, done: float) -> str:
    """", about N min left" from the pace so far; nothing until there is a pace to go by."""
    elapsed = time.time() - state.started
    if done < 0.02 or elapsed <= 0:
        return ""
    left = elapsed * (1 - done) / done
    return f", about {max(1, round(left / 60))} min left" if left >= 60 else ", less than a minute left"


def figures_before(candidate: ModelCard, active: ModelCard) -> dict:
    """What a new model's figures are set against: its base model's, measured in the same run; for the MNIST
    test set, which never changes, the active model's recorded ones when the run measured no base model."""
    same_run, recorded = candidate.headline(before=True), active.headline()
    return {f.key: recorded[f.key] if same_run[f.key] is None and f.split == TEST_SPLIT else same_run[f.key]
            for f in HEADLINE}


def _taught_gate(state: JobState) -> ModelCard | None:
    """The card of the gate the run taught beside its model (users said "not a digit"), if it did."""
    try:
        return ModelCard.read(gate_path(state.model_path)) if gate_path(state.model_path).exists() else None
    except ModelFileError:  # damaged: the registry refuses it, and says so, when the model is kept
        return None


def finished_model(state: JobState, jobs: TrainingJobs, registry: Registry, active: ModelVersion, admin: bool) -> None:
    try:
        candidate = state.card()
    except ModelFileError as error:  # the run's files were damaged or removed after it ended
        st.error(f"Training finished, but its model cannot be read: {error}")
        dismiss_button(jobs, admin)
        return
    took = f" in {candidate.training_seconds:.0f} s" if candidate.training_seconds is not None else ""
    st.info(f"Training finished: {candidate.epochs_run or '?'} epochs{took}. Saved as version {candidate.version}, "
            "not active: *Promote* makes it the active model, *Keep current* leaves the active one.")
    before, new = figures_before(candidate, active.card), candidate.headline()
    st.table(pd.DataFrame({
        f"before ({candidate.before_version or active.version})": [shown(before[f.key], f.metric) for f in HEADLINE],
        "new": [shown(new[f.key], f.metric) for f in HEADLINE],
    }, index=[figure.label for figure in HEADLINE]))
    taught = _taught_gate(state)
    if taught is not None:
        st.caption(f"Its gate was taught too ({taught.corrections_used} corrections, \"not a digit\" among them): "
                   f"version {taught.version}.")
    shortfall = worse_by(candidate, active.card)
    confirmed = True
    if shortfall > PROMOTION_MARGIN:
        st.warning(f"The new model is {shortfall * 100:.2f} points less accurate than the active one on the MNIST "
                   "test set.")
        confirmed = st.checkbox("Promote it anyway", key="promote_anyway", disabled=not admin)
    promote_column, keep_column = st.columns(2)
    promote = promote_column.button("Promote", key="train_promote", disabled=not (confirmed and admin), type="primary")
    keep = keep_column.button("Keep current", key="train_keep", disabled=not admin)
    if (promote and confirmed or keep) and admin:
        try:
            # the model shown above (with the active one's gate if it has none), or an error: never another one
            stored = registry.add(state.model_path, gate_from=active.path)
            if promote:
                registry.activate(stored.version)
        except ModelFileError as error:
            st.error(f"The new model could not be {'promoted' if promote else 'kept'}: {error}")
            return
        jobs.resolve("promoted" if promote else "kept")
        report_done(f"Promoted {stored.version}: it reads every drawing now." if promote else
                    f"Kept {active.version} active; {stored.version} stays among the versions.")
        st.rerun(scope="app")


def dismiss_button(jobs: TrainingJobs, admin: bool) -> None:
    if st.button("Dismiss", key="train_dismiss", disabled=not admin) and admin:
        jobs.resolve("dismissed")
        st.rerun(scope="app")


def training_panel(jobs: TrainingJobs, registry: Registry, active: ModelVersion, was_running: bool,
                   admin: bool) -> None:
    state = jobs.state()
    if was_running and (state is None or not state.running):
        st.rerun(scope="app")  # training ended: redraw the whole page and stop the timer
    if state is None or state.resolved:
        return
    if state.server is not None:  # another server of this deployment trains: its progress is shown there
        started = pd.Timestamp(state.started, unit="s", tz="UTC").strftime("%H:%M:%S UTC")
        epoch, epochs = state.progress.get("epoch"), state.progress.get("epochs")
        at = f", epoch {epoch} of {epochs}" if epoch and epochs else ""
        st.info(f"A training is running on another server ({state.server}), started {started}{at}: one training "
                "runs at a time in this deployment.")
    elif state.running:
        training_progress(state, jobs, admin)
    elif state.status == "done":
        finished_model(state, jobs, registry, active, admin)
    else:
        st.error(f"Training {state.status}: {state.message}")
        dismiss_button(jobs, admin)
