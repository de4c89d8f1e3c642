"""Faults: training killed (SIGKILL) at any point leaves the active model and the registry consistent;
nothing is unpickled or loaded unsafely anywhere in the code."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from model.loading import verify_model_file
from model.registry import SHIPPED_VERSION, Registry
from training.data import Dataset, Split, save_cache

ROOT = Path(__file__).resolve().parents[1]


def _train_command(tmp_path, run):
    return [sys.executable, "-m", "training", "--architecture", "compact", "--epochs", "3", "--batch-size", "32",
            "--validation-size", "50", "--register", "--cache-dir", str(tmp_path / "cache"),
            "--output", str(tmp_path / "runs" / run / "digits.keras")]


def _assert_consistent(registry: Registry, active: str) -> list[str]:
    """The active version is the one expected and loads; every listed version is whole."""
    assert registry.active().version == active
    versions = registry.versions()
    for version in versions:
        verify_model_file(version.path)  # model and sidecar agree: nothing half-copied is listed
        if version.version != SHIPPED_VERSION:
            assert (version.path.parent / "digits.tflite").exists()
    return [v.version for v in versions]


def test_training_killed_at_any_point_leaves_the_registry_and_active_model_consistent(tmp_path, monkeypatch,
                                                                                      mnist_sample):
    x, y = mnist_sample
    save_cache(Dataset("mnist", "test digits", Split(np.concatenate([x] * 6), np.concatenate([y] * 6)), Split(x, y)),
               tmp_path / "cache")
    env = {**os.environ, "DIGITS_DATA_DIR": str(tmp_path / "data"), "CI": "1"}
    monkeypatch.setenv("DIGITS_DATA_DIR", str(tmp_path / "data"))
    registry = Registry()

    start = time.perf_counter()
    subprocess.run(_train_command(tmp_path, "whole"), cwd=ROOT, env=env, check=True, capture_output=True)
    whole = time.perf_counter() - start
    (first,) = [v for v in _assert_consistent(registry, SHIPPED_VERSION) if v != SHIPPED_VERSION]
    registry.activate(first)

    # Kill runs at points spread over a run's life: start-up, training, saving and registering.
    for fraction in (0.3, 0.6, 0.8, 0.9, 0.97):
        worker = subprocess.Popen(_train_command(tmp_path, f"killed-{fraction}"), cwd=ROOT, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            worker.wait(timeout=whole * fraction)
        except subprocess.TimeoutExpired:
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait()
        listed = _assert_consistent(Registry(), first)
        assert first in listed and SHIPPED_VERSION in listed
        output = tmp_path / "runs" / f"killed-{fraction}" / "digits.keras"
        if (output.parent / "digits.json").exists():  # the card comes last: where it is, the whole set is
            verify_model_file(output)
            assert (output.parent / "digits.tflite").exists() and (output.parent / "digits.history.json").exists()
    assert Registry().rollback().version == SHIPPED_VERSION  # the history survived as well


UNSAFE = re.compile(r"pickle\.loads?\(|allow_pickle\s*=\s*True|safe_mode\s*=\s*False|joblib\.load|\.h5\b|"
                    r"torch\.load|yaml\.load\(|eval\(|exec\(")


def test_nothing_is_unpickled_or_loaded_unsafely():
    offenders = []
    for path in [ROOT / "app.py", *ROOT.glob("model/*.py"), *ROOT.glob("training/**/*.py"), *ROOT.glob("bench/*.py"),
                 *ROOT.glob("services/*.py"), *ROOT.glob("ui/*.py")]:
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if UNSAFE.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []
    source = (ROOT / "training" / "sources" / "mnist.py").read_text()
    assert source.count("Unpickler") >= 2 and "find_class" in source  # the mirror's one, restricted, loader


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_a_damaged_model_file_is_a_clear_error(tmp_path, stand_in_model, damage):
    from model.artifacts import ModelFileError
    from model.inference import Recognizer

    data = bytearray(stand_in_model.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 3]
    else:
        data[len(data) // 2] ^= 0xFF
    stand_in_model.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="SHA-256"):
        Recognizer(stand_in_model)
