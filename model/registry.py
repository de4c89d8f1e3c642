"""Model versions on disk, and which one is active.

Layout under the data directory (``$DIGITS_DATA_DIR``, default ``var/``)::

    models/<version>/digits.keras (+ .json sidecar, history, curves, ...)
    models/active.json   {"version": ..., "previous": [older active versions]}

The model shipped in ``model/`` is the version named ``shipped``: it is active
when nothing else is. Changing the active version rewrites ``active.json``
atomically under a file lock, so every session and process sees either the
old or the new version, never a mix.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fcntl
import json
import os
import secrets
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

from model.artifacts import SHIPPED_MODEL, ModelFileError, atomic_write_json, companion_path
from model.card import TEST_SPLIT, ModelCard, checked_version
from model.gate import gate_path

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_VERSION = "shipped"
MODEL_FILE = "digits.keras"


# A new model may be promoted without a second thought unless it is worse
# than the active one by more than this (absolute test accuracy).
PROMOTION_MARGIN = 0.002


def worse_by(candidate: ModelCard, active: ModelCard) -> float:
    """How much lower the candidate's MNIST test accuracy is (0 if not lower or unknown)."""
    new, old = candidate.test_accuracy, active.test_accuracy
    if new is None or old is None:
        return 0.0
    return max(0.0, old - new)


class VersionExistsError(ModelFileError):
    """A different model already has this version name."""


def new_name(now: dt.datetime | None = None) -> str:
    """A name for a version or a run: the UTC time to the second, readable and sorting in time order, then a
    random part, so that two made within the same second (start, cancel, start again) do not collide. 48 random
    bits: 24 collided once in a test's 1,000 names (a birthday chance of 3%); 48 make it about 2 in a billion."""
    now = now or dt.datetime.now(dt.timezone.utc)
    return f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(6)}"


def data_dir() -> Path:
    return Path(os.environ.get("DIGITS_DATA_DIR", ROOT / "var"))


@dataclasses.dataclass(frozen=True)
class ModelVersion:
    """A stored model: its name in the registry (`shipped` for the one in model/), file and card."""

    version: str
    path: Path
    card: ModelCard


class Registry:
    def __init__(self, root: Path | None = None, shipped: Path = SHIPPED_MODEL):
        self.root = Path(root) if root else data_dir() / "models"
        self.shipped = Path(shipped)
        self._pointer = self.root / "active.json"

    @contextlib.contextmanager
    def _locked(self):
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _path(self, version: str) -> Path:
        if version == SHIPPED_VERSION:
            return self.shipped
        return self.root / checked_version(version) / MODEL_FILE

    def get(self, version: str) -> ModelVersion:
        path = self._path(version)
        if not path.exists():
            raise ModelFileError(f"Model version {version!r} does not exist (looked for {path}).")
        return ModelVersion(version, path, ModelCard.read(path))

    def versions(self) -> list[ModelVersion]:
        """Every stored version, newest first, then the shipped one."""
        found = []
        if self.root.exists():
            for folder in sorted(self.root.iterdir(), reverse=True):
                if not folder.name.startswith(".") and (folder / MODEL_FILE).exists():  # not staging
                    with contextlib.suppress(ModelFileError):
                        found.append(self.get(folder.name))
        if self.shipped.exists():
            found.append(self.get(SHIPPED_VERSION))
        return found

    def _read_pointer(self) -> dict:
        try:
            return json.loads(self._pointer.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {"version": SHIPPED_VERSION, "previous": []}

    def _write_pointer(self, pointer: dict) -> None:
        """Only under _locked()."""
        atomic_write_json(self._pointer, pointer)

    def active_version(self) -> str:
        return self._read_pointer().get("version", SHIPPED_VERSION)

    def active(self) -> ModelVersion:
        """The active version; the shipped model if the pointer names one that is gone."""
        try:
            return self.get(self.active_version())
        except (ModelFileError, ValueError):
            return self.get(SHIPPED_VERSION)

    def active_and_fallbacks(self) -> Iterator[ModelVersion]:
        """The active version, then the ones active before it (most recent first), then the shipped one:
        the order in which to try loading a model when the active one turns out to be damaged.
        Lazily: usually only the first is ever read."""
        pointer = self._read_pointer()
        names = [pointer.get("version", SHIPPED_VERSION), *pointer.get("previous", []), SHIPPED_VERSION]
        for name in dict.fromkeys(names):
            with contextlib.suppress(ModelFileError, ValueError):
                yield self.get(name)

    def add(self, model_path: Path, gate_from: Path | None = None) -> ModelVersion:
        """Copy a trained model and its companion files in, as a new inactive version.

        A model without a gate of its own (model.gate) takes the one beside `gate_from`, if that has one: a
        retrained reader keeps the gate of the model it replaces. Adding the same model again (same version,
        same SHA-256) returns the stored one; a different model under a name that is taken is refused, never
        silently dropped."""
        model_path = Path(model_path)
        card = ModelCard.read(model_path)
        target = self.root / card.version
        staging = self.root / f".{card.version}.incoming-{uuid.uuid4().hex[:8]}"
        staging.mkdir(parents=True)
        try:
            copies = [(model_path, model_path.stem)]  # (a model file, the stem its companions' names start with)
            if gate_from is not None and not gate_path(model_path).exists() and gate_path(gate_from).exists():
                copies.append((gate_path(gate_from), Path(gate_from).stem))
            for source, stem in copies:
                for companion in source.parent.glob(f"{source.stem}.*"):
                    shutil.copy2(companion, staging / companion.name.replace(stem, Path(MODEL_FILE).stem, 1))
            with self._locked():
                if target.exists():
                    stored = ModelCard.read(target / MODEL_FILE)
                    if stored.model_sha256 != card.model_sha256:
                        raise VersionExistsError(
                            f"Model version {card.version} already exists and holds a different model "
                            f"(SHA-256 {stored.model_sha256} there, {card.model_sha256} here). Nothing was replaced: "
                            "retrain to get a new version name, or delete the stored one first.")
                else:
                    os.replace(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return self.get(card.version)

    def activate(self, version: str) -> ModelVersion:
        chosen = self.get(version)
        with self._locked():
            pointer = self._read_pointer()
            current = pointer.get("version", SHIPPED_VERSION)
            if current != version:
                previous = [current] + [v for v in pointer.get("previous", []) if v != current]
                self._write_pointer({"version": version, "previous": previous[:50]})
        return chosen

    def delete(self, version: str) -> None:
        """Remove a stored version for good. The shipped and the active version cannot be deleted."""
        if version == SHIPPED_VERSION:
            raise ValueError("The shipped model is part of the code and cannot be deleted.")
        folder = self.get(version).path.parent
        with self._locked():
            pointer = self._read_pointer()
            if pointer.get("version", SHIPPED_VERSION) == version:
                raise ValueError(f"{version} is the active model: activate or roll back to another one first.")
            trash = self.root / f".{version}.deleting"
            os.replace(folder, trash)  # gone from the listing at once, even if the removal below is cut short
            remaining = [v for v in pointer.get("previous", []) if v != version]
            if remaining != pointer.get("previous", []):
                self._write_pointer({**pointer, "previous": remaining})
        shutil.rmtree(trash, ignore_errors=True)

    def confusion(self, version: str) -> list[list[int]] | None:
        """The MNIST test confusion matrix recorded for a version (sidecar, or its evaluation file)."""
        chosen = self.get(version)
        matrix = chosen.card.metric(TEST_SPLIT, "confusion_matrix")
        if matrix is None:
            with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
                matrix = json.loads(companion_path(chosen.path, "evaluation.json").read_text()).get("confusion_matrix")
        return matrix

    def rollback(self) -> ModelVersion:
        """Re-activate the version that was active before the current one."""
        with self._locked():
            pointer = self._read_pointer()
            previous = [v for v in pointer.get("previous", []) if self._path(v).exists()]
            if not previous:
                raise ValueError("There is no earlier model to roll back to.")
            self._write_pointer({"version": previous[0], "previous": previous[1:]})
        return self.get(previous[0])
