"""The model card: the typed record of one trained model, kept as the JSON sidecar beside it.

The trainer writes it (``ModelCard.write``); the registry, the versions command, the
app and the recognizer read it (``ModelCard.read``). Every reader goes through these
fields, so a new figure is one field here (and its computation in training.metrics).

Old sidecars load: a missing field takes its default, and keys this code does not
know are kept in ``extra`` and written back unchanged.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any, NamedTuple

from model.artifacts import ModelFileError, atomic_write_json, sidecar_path
from model.constants import INPUT_SIZE

CARD_FORMAT = 1  # the JSON layout: unchanged since the first sidecar, only read through types now
TEST_SPLIT = "test_mnist"  # the figure a model is judged and promoted by
HOLDOUT_SPLIT = "feedback_holdout"  # the corrections kept out of training
# A version names a folder of the registry: no path separators, no leading dot, nothing that climbs out.
VERSION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class VersionNameError(ModelFileError, ValueError):
    """A card's or a user's version name could not name a folder of the registry safely."""


def checked_version(name: object) -> str:
    """The version name, or VersionNameError saying why it cannot name a model version."""
    if not isinstance(name, str) or not VERSION_NAME.fullmatch(name) or ".." in name:
        raise VersionNameError(f"{name!r} is not a model version name: expected up to 64 letters, digits, '-', '_' "
                             "or '.', starting with a letter or digit (e.g. 20261204-181500-3fa2). "
                             "Fix the sidecar's \"version\" or retrain.")
    return name


def _metric(label: str, percent: bool = False, **more):
    """A metric field: `label` names it in the CLI and the app; `percent` says how to show it."""
    return dataclasses.field(default=None, metadata={"label": label, "percent": percent, **more})


@dataclasses.dataclass(frozen=True)
class Metrics:
    """One evaluation set's figures (training.metrics computes them)."""

    accuracy: float | None = _metric("accuracy", percent=True)
    errors: int | None = _metric("errors")
    count: int | None = _metric("count")
    confident_errors: float | None = _metric("wrong at ≥ 90%", percent=True)  # read wrong, raw top probability ≥ 0.9
    loss: float | None = None
    confusion_matrix: list[list[int]] | None = None  # rows: true digit, columns: read
    note: str | None = None  # a caveat, e.g. that EMNIST shares MNIST's writers
    extra: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def from_json(cls, entry: dict) -> Metrics:
        return cls(**_known(cls, entry), extra=_unknown(cls, entry))

    def to_json(self) -> dict:
        return _dump(self)


class Figure(NamedTuple):
    """One figure a version is listed with."""

    key: str  # in `python -m services.versions list --json`
    label: str  # a column of the versions table (command and app) and of the app's retrain result
    split: str  # the evaluation set
    metric: str  # the Metrics field
    short: str  # its column in the sidebar's narrow versions table (the caption under it says what they mean)


HEADLINE = (
    Figure("test_accuracy", "MNIST test", TEST_SPLIT, "accuracy", "MNIST"),
    Figure("test_errors", "MNIST test errors", TEST_SPLIT, "errors", "errors"),
    Figure("test_confident_errors", "MNIST wrong ≥ 90%", TEST_SPLIT, "confident_errors", "≥ 90% wrong"),
    Figure("corrections_holdout_accuracy", "corrections held out", HOLDOUT_SPLIT, "accuracy", "held out"),
)
# The Metrics fields shown side by side when versions are compared: every labelled one.
COMPARED = tuple(f.name for f in dataclasses.fields(Metrics) if "label" in f.metadata)
# How each evaluation set is named wherever figures are shown (the CLI, the sidebar, the compare dialog).
SPLIT_LABELS = {TEST_SPLIT: "MNIST test", "validation": "validation", HOLDOUT_SPLIT: "corrections held out",
                "test_emnist": "EMNIST test", "test_unipen": "UNIPEN held-out writers", "test_ardis": "ARDIS held out",
                "test_optdigits": "optdigits-orig held out", "test_chars74k": "Chars74K held-out writers"}


def figure_label(split: str, metric: str) -> str:
    """"MNIST test accuracy": one evaluation set's figure, named for people."""
    label = next(f.metadata["label"] for f in dataclasses.fields(Metrics) if f.name == metric)
    return f"{SPLIT_LABELS.get(split, split.replace('_', ' '))} {label}"


def is_percent(field_name: str) -> bool:
    return any(f.name == field_name and f.metadata.get("percent") for f in dataclasses.fields(Metrics))


@dataclasses.dataclass(frozen=True)
class ModelCard:
    """Version, data, config, metrics, calibration, library versions and checksums of one model."""

    format: int = CARD_FORMAT
    version: str = ""
    created: str = ""
    architecture: str = "?"
    input_shape: list[int] = dataclasses.field(default_factory=lambda: [INPUT_SIZE, INPUT_SIZE, 1])
    parameters: int | None = None
    data: dict = dataclasses.field(default_factory=dict)  # datasets, train, validation[, feedback]
    config: dict = dataclasses.field(default_factory=dict)  # the TrainConfig, as JSON
    epochs_run: int | None = None
    best_epoch: int | None = None
    training_seconds: float | None = None
    data_loading_seconds: float | None = None
    epoch_seconds_median: float | None = None
    machine: dict = dataclasses.field(default_factory=dict)
    metrics: dict[str, Metrics] = dataclasses.field(default_factory=dict)
    libraries: dict = dataclasses.field(default_factory=dict)
    model_sha256: str | None = None
    tflite_sha256: str | None = None
    calibration: dict | None = None  # training.calibrate: temperature, threshold, ECE, what was refused
    fine_tuned_from: str | None = None
    metrics_before: dict[str, Metrics] = dataclasses.field(default_factory=dict)  # the base model's, same sets
    before_version: str | None = None  # which model metrics_before are of
    distribution: dict | None = None  # strategy, replicas, global batch, where a restart resumed
    extra: dict = dataclasses.field(default_factory=dict)

    # ----------------------------------------------------------------- reading it

    def accuracy(self, split: str = TEST_SPLIT) -> float | None:
        return self.metric(split, "accuracy")

    def metric(self, split: str, name: str, before: bool = False):
        entry = (self.metrics_before if before else self.metrics).get(split)
        return None if entry is None else getattr(entry, name)

    @property
    def test_accuracy(self) -> float | None:
        return self.accuracy(TEST_SPLIT)

    @property
    def trained_on(self) -> str:
        datasets = self.data.get("datasets", [])
        return " + ".join(f"{d['name']} ({d['train']:,} train)" for d in datasets) or "unknown data"

    @property
    def corrections_used(self) -> int:
        return (self.data.get("feedback") or {}).get("train", 0)

    def headline(self, before: bool = False) -> dict[str, float | int | None]:
        """The HEADLINE figures by key (of the base model with before=True)."""
        return {figure.key: self.metric(figure.split, figure.metric, before) for figure in HEADLINE}

    # ----------------------------------------------------------------- JSON

    @classmethod
    def from_json(cls, info: dict) -> ModelCard:
        if not isinstance(info, dict) or not info.get("version"):
            raise ModelFileError("The sidecar has no model version: it is not a model card. Retrain the model.")
        checked_version(info["version"])
        known = _known(cls, info)
        before = dict(known.pop("metrics_before", None) or {})
        known["before_version"] = before.pop("version", known.get("before_version"))
        known["metrics_before"] = {name: Metrics.from_json(entry) for name, entry in before.items()}
        known["metrics"] = {name: Metrics.from_json(entry) for name, entry in (known.get("metrics") or {}).items()}
        return cls(**known, extra=_unknown(cls, info))

    def to_json(self) -> dict:
        payload = _dump(self)
        payload.pop("metrics_before", None)
        payload.pop("before_version", None)
        payload["metrics"] = {name: m.to_json() for name, m in self.metrics.items()}
        if self.metrics_before:
            payload["metrics_before"] = {"version": self.before_version,
                                         **{name: m.to_json() for name, m in self.metrics_before.items()}}
        return payload

    @classmethod
    def read(cls, model_path: Path) -> ModelCard:
        path = sidecar_path(model_path)
        try:
            info = json.loads(path.read_text())
        except FileNotFoundError:
            raise ModelFileError(f"{path} is missing: every model needs its sidecar. "
                                 "Retrain with `python -m training`.") from None
        except json.JSONDecodeError as error:
            raise ModelFileError(f"{path} is not valid JSON ({error}). Restore it or retrain.") from None
        return cls.from_json(info)

    def write(self, model_path: Path) -> None:
        atomic_write_json(sidecar_path(model_path), self.to_json())

    def replace(self, **changes) -> ModelCard:
        return dataclasses.replace(self, **changes)


def _known(cls, entry: dict) -> dict:
    names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
    return {key: value for key, value in entry.items() if key in names}


def _unknown(cls, entry: dict) -> dict:
    names = {f.name for f in dataclasses.fields(cls)}
    return {key: value for key, value in entry.items() if key not in names}


def _dump(record) -> dict[str, Any]:
    """Fields in declaration order; None and empty extras left out (as the old sidecars did); extras last."""
    payload = {f.name: getattr(record, f.name) for f in dataclasses.fields(record) if f.name != "extra"}
    payload = {key: value for key, value in payload.items() if value is not None}
    return {**payload, **record.extra}
