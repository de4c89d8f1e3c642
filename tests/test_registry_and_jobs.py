"""Model versions, promotion and rollback; the app's background training worker."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from model.artifacts import SHIPPED_MODEL, ModelFileError, atomic_write_json, file_sha256, sidecar_path
from model.card import Metrics, ModelCard
from model.registry import SHIPPED_VERSION, Registry, worse_by
from services.jobs import TrainingAlreadyRunning, TrainingJobs
from training.config import PRESETS, TrainConfig
from training.data import Dataset, Split, save_cache


@pytest.fixture(params=["files", "database"])
def make_registry(request, tmp_path):
    """Registries that share one store: the files in a folder, or a PostgreSQL database (services.model_store),
    where each server has its own cache folder (`cache`)."""
    if request.param == "files":
        return lambda cache=None: Registry(tmp_path / "models")
    from sqlalchemy.engine import make_url

    from services.model_store import DatabaseRegistry

    url = make_url(request.getfixturevalue("postgres").new_database())
    return lambda cache=None: DatabaseRegistry(url, cache or tmp_path / "models")


def _preset(name, **changes):
    """A config as the app's retrain form makes it: a preset's overrides, then the user's changes."""
    return TrainConfig(**{**PRESETS[name].overrides, **changes})


def _fake_model(folder, version, accuracy):
    """A stand-in model file with a sidecar; the registry only moves files around."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "candidate.keras"
    path.write_bytes(f"model {version}".encode())
    atomic_write_json(sidecar_path(path), {"version": version, "model_sha256": file_sha256(path),
                                           "metrics": {"test_mnist": {"accuracy": accuracy}}})
    (folder / "candidate.curves.png").write_bytes(b"png")
    return path


def test_the_shipped_model_is_active_by_default(make_registry):
    registry = make_registry()
    assert registry.active().version == SHIPPED_VERSION
    assert registry.active().path == SHIPPED_MODEL
    assert [v.version for v in registry.versions()] == [SHIPPED_VERSION]


def test_add_activate_and_roll_back(tmp_path, make_registry):
    registry = make_registry()
    first = registry.add(_fake_model(tmp_path / "run1", "20260101-000000", 0.99))
    assert (first.path.parent / "digits.curves.png").exists()
    assert registry.active().version == SHIPPED_VERSION  # adding does not activate
    registry.activate(first.version)
    second = registry.add(_fake_model(tmp_path / "run2", "20260102-000000", 0.995))
    registry.activate(second.version)
    assert registry.active().version == second.version
    assert [v.version for v in registry.versions()] == [second.version, first.version, SHIPPED_VERSION]
    assert make_registry(tmp_path / "elsewhere").active().version == second.version  # another process sees it
    assert registry.rollback().version == first.version
    assert registry.rollback().version == SHIPPED_VERSION
    with pytest.raises(ValueError, match="no earlier model"):
        registry.rollback()


def test_a_pointer_to_a_missing_version_falls_back_to_the_shipped_model(tmp_path):
    registry = Registry(tmp_path / "models")
    version = registry.add(_fake_model(tmp_path / "run", "20260101-000000", 0.99))
    registry.activate(version.version)
    shutil.rmtree(version.path.parent)
    assert registry.active().version == SHIPPED_VERSION
    (tmp_path / "models" / "active.json").write_text("{not json")
    assert registry.active().version == SHIPPED_VERSION
    with pytest.raises(ModelFileError):
        registry.activate("20990101-000000")
    with pytest.raises(ValueError):
        registry.get("../etc")


def test_promotion_margin():
    registry = Registry()
    shipped = registry.active()
    accuracy = shipped.card.test_accuracy
    def candidate(**metrics):
        return ModelCard(version="new", metrics={name: Metrics(accuracy=value) for name, value in metrics.items()})

    assert worse_by(candidate(test_mnist=accuracy - 0.01), shipped.card) == pytest.approx(0.01)
    assert worse_by(candidate(test_mnist=accuracy + 0.001), shipped.card) == 0.0
    assert worse_by(candidate(), shipped.card) == 0.0


@pytest.fixture
def tiny_cache(tmp_path, monkeypatch, mnist_sample):
    x, y = mnist_sample
    cache = tmp_path / "cache"
    save_cache(Dataset("mnist", "test digits", Split(np.concatenate([x] * 8), np.concatenate([y] * 8)), Split(x, y)), cache)
    monkeypatch.setenv("DIGITS_CACHE_DIR", str(cache))
    return cache


def test_a_training_job_runs_in_the_background_and_reports_progress(tmp_path, tiny_cache):
    jobs = TrainingJobs(tmp_path / "runs")
    state = jobs.start(_preset("quick", epochs=2, validation_size=50))
    assert state.running
    with pytest.raises(TrainingAlreadyRunning, match="already running"):
        jobs.start(_preset("quick"))
    assert TrainingJobs(tmp_path / "runs").state().running  # another session sees the same job
    final = jobs.wait(timeout=300)
    assert final.status == "done", final.message
    assert final.progress["history"]["loss"] and len(final.progress["history"]["val_loss"]) == 2
    card = final.card()
    assert card.architecture == "compact" and card.epochs_run == 2
    registry = Registry()
    assert registry.get(card.version).card.model_sha256 == card.model_sha256  # every model is kept
    assert registry.active().version == SHIPPED_VERSION  # but not activated
    jobs.resolve("kept")
    assert jobs.state().resolved == "kept"


def test_a_cancelled_job_leaves_no_model(tmp_path, tiny_cache):
    jobs = TrainingJobs(tmp_path / "runs")
    assert jobs.start(_preset("quick", epochs=50)).running
    jobs.cancel()
    final = jobs.state()
    assert final.status == "cancelled" and not final.running
    assert not final.model_path.exists()
    assert jobs.start(_preset("quick", epochs=1)).running  # a new job may start after a cancel
    jobs.cancel()


def test_a_failing_job_reports_why(tmp_path, monkeypatch):
    monkeypatch.setenv("DIGITS_CACHE_DIR", str(tmp_path / "empty-cache"))
    jobs = TrainingJobs(tmp_path / "runs")
    jobs.start(_preset("quick", shards=tmp_path / "no-shards"))  # valid, but the worker finds no data there
    final = jobs.wait(timeout=120)
    assert final.status == "failed" and "no-shards has no" in final.message and "write the shards" in final.message


def test_versions_are_deleted_but_never_the_active_or_shipped_one(tmp_path, make_registry):
    registry = make_registry()
    old = registry.add(_fake_model(tmp_path / "run1", "20260101-000000", 0.99)).version
    new = registry.add(_fake_model(tmp_path / "run2", "20260102-000000", 0.98)).version
    registry.activate(old)
    registry.activate(new)
    with pytest.raises(ValueError, match="active model"):
        registry.delete(new)
    with pytest.raises(ValueError, match="shipped"):
        registry.delete(SHIPPED_VERSION)
    registry.delete(old)
    assert [v.version for v in registry.versions()] == [new, SHIPPED_VERSION]
    assert registry.rollback().version == SHIPPED_VERSION  # the deleted version is skipped
    with pytest.raises(ModelFileError):
        registry.delete(old)


def test_the_models_command_lists_compares_activates_rolls_back_and_deletes(tmp_path, capsys, make_registry):
    import json

    from services.versions import main

    registry = make_registry()
    first = registry.add(_fake_model(tmp_path / "run1", "20260101-000000", 0.991)).version
    second = registry.add(_fake_model(tmp_path / "run2", "20260102-000000", 0.995)).version

    def run(*args):
        code = main(list(args), registry=make_registry(tmp_path / "elsewhere"))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    code, out, _ = run("list", "--json")
    rows = json.loads(out)
    assert code == 0 and [r["version"] for r in rows] == [second, first, SHIPPED_VERSION]
    assert [r["active"] for r in rows] == [False, False, True] and rows[0]["test_accuracy"] == 0.995
    assert run("activate", first)[1].strip() == f"Active: {first}"
    assert run("activate", second)[0] == 0
    code, out, _ = run("list")
    assert f"* {second}" in out and f"  {first}" in out
    code, out, _ = run("compare", SHIPPED_VERSION, second)
    assert code == 0 and "MNIST test accuracy" in out and "99.5000%" in out and "test_mnist" not in out
    assert "t\\p" in out and "(no confusion matrix recorded)" in out  # shipped has one, the fake has none
    assert run("rollback")[1].strip() == f"Rolled back; active: {first}"
    code, _, err = run("delete", first)
    assert code == 1 and "active model" in err
    assert run("delete", second)[0] == 0
    code, _, err = run("activate", second)
    assert code == 1 and "does not exist" in err


def test_the_worker_is_told_how_corrections_count_and_to_register(tmp_path, tiny_cache):
    jobs = TrainingJobs(tmp_path / "runs")
    jobs.start(_preset("finetune", fine_tune_epochs=2, feedback_mode="weight", feedback_factor=7))
    command = json.loads((tmp_path / "runs" / "current.json").read_text())["command"]
    jobs.cancel()
    config_file = Path(command[command.index("--config") + 1])
    handed = TrainConfig.from_json(json.loads(config_file.read_text()))
    assert (handed.fine_tune, handed.fine_tune_epochs) == (True, 2)
    assert (handed.feedback, handed.feedback_mode, handed.feedback_factor) == (True, "weight", 7)
    assert handed.register and handed.output.parent == handed.progress_file.parent == config_file.parent


def test_a_card_whose_version_is_a_path_is_refused_where_it_is_read(tmp_path):
    from model.card import VersionNameError

    registry = Registry(tmp_path / "models")
    for bad in ("../x", "a/b", ".hidden", "", "x" * 65):
        path = _fake_model(tmp_path / "run", bad or "placeholder", 0.99)
        if not bad:
            sidecar_path(path).write_text(json.dumps({"version": "../x", "model_sha256": file_sha256(path)}))
        with pytest.raises(VersionNameError, match="not a model version name"):
            registry.add(path)
        with pytest.raises(ModelFileError):
            ModelCard.read(path)
    assert not (tmp_path / "x").exists() and not (tmp_path / "models" / "x").exists()
    assert not (tmp_path / "models").exists() or not [p for p in (tmp_path / "models").iterdir() if p.is_dir()]
    with pytest.raises(ValueError):  # and a name typed by a user
        registry.activate("../x")


def test_a_different_model_under_a_taken_version_is_an_error_not_a_silent_keep(tmp_path, make_registry):
    from model.registry import VersionExistsError

    registry = make_registry()
    first = registry.add(_fake_model(tmp_path / "a", "20260101-000000-aaaaaa", 0.99))
    assert registry.add(_fake_model(tmp_path / "a", "20260101-000000-aaaaaa", 0.99)) == first  # the same model again
    impostor = _fake_model(tmp_path / "b", "20260101-000000-aaaaaa", 0.98)
    impostor.write_bytes(b"another model")
    atomic_write_json(sidecar_path(impostor), {"version": "20260101-000000-aaaaaa", "model_sha256": file_sha256(impostor)})
    with pytest.raises(VersionExistsError, match="different model"):
        registry.add(impostor)
    assert registry.get(first.version).card.model_sha256 == first.card.model_sha256
    assert not [p for p in (tmp_path / "models").iterdir() if ".incoming" in p.name]


def test_names_made_in_the_same_second_differ():
    import datetime as dt

    from model.registry import new_name

    moment = dt.datetime(2026, 12, 4, 18, 0, 0, tzinfo=dt.timezone.utc)
    names = {new_name(moment) for _ in range(1000)}
    assert len(names) == 1000 and all(name.startswith("20261204-180000-") for name in names)
    assert sorted([new_name(moment), new_name(moment + dt.timedelta(seconds=1))])[1].startswith("20261204-180001")


def _sleeper(tmp_path):
    """A stand-in for the worker's Python: it starts, writes nothing and sleeps until cancelled."""
    script = tmp_path / "fake-python"
    script.write_text("#!/bin/sh\nexec sleep 60\n")
    script.chmod(0o755)
    return str(script)


def test_start_cancel_and_start_again_at_once_gets_a_new_run_folder(tmp_path):
    jobs = TrainingJobs(tmp_path / "runs", python=_sleeper(tmp_path))
    first = jobs.start(_preset("quick"))
    (first.run_dir / "progress.json").write_text(json.dumps({"status": "training", "epoch": 3}))
    jobs.cancel()
    second = jobs.start(_preset("quick"))
    try:
        assert second.run_id != first.run_id and second.run_dir != first.run_dir
        assert second.progress == {}  # not the cancelled run's
    finally:
        jobs.cancel()


def test_a_run_folder_that_exists_is_never_reused(tmp_path, monkeypatch):
    import services.jobs

    monkeypatch.setattr(services.jobs, "new_name", lambda: "20260101-000000-aaaaaa")
    jobs = TrainingJobs(tmp_path / "runs", python=_sleeper(tmp_path))
    jobs.start(_preset("quick"))
    jobs.cancel()
    with pytest.raises(FileExistsError):
        jobs.start(_preset("quick"))


def test_tests_never_write_into_the_data_folder_their_shell_exports(tmp_path):
    """Run as a developer might, with DIGITS_DATA_DIR exported for the app: the tests keep to their own folder."""
    import os
    import subprocess
    import sys

    real = tmp_path / "real-deployment"
    probe = tmp_path / "test_probe.py"
    probe.write_text("from model.registry import Registry\n\n"
                     "def test_writes_the_registry():\n"
                     "    Registry().activate('shipped')\n")
    env = {**os.environ, "DIGITS_DATA_DIR": str(real)}
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.conftest",
                             "-c", str(root / "pytest.ini"), "--rootdir", str(tmp_path), str(probe)],
                            cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert "1 passed" in result.stdout, result.stdout + result.stderr
    assert not real.exists(), f"a test wrote into the exported data folder: {list(real.rglob('*'))}"


def test_a_worker_that_cannot_start_is_a_clear_error_and_leaks_no_file(tmp_path, monkeypatch):
    import os
    import subprocess

    from services.jobs import TrainingJobError

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", "nice")

    monkeypatch.setattr(subprocess, "Popen", refuse)
    jobs = TrainingJobs(tmp_path / "runs")
    open_before = set(os.listdir("/proc/self/fd"))
    for _ in range(3):
        with pytest.raises(TrainingJobError, match="could not be started"):
            jobs.start(_preset("quick"))
    leaked = [os.readlink(f"/proc/self/fd/{fd}") for fd in set(os.listdir("/proc/self/fd")) - open_before
              if os.path.exists(f"/proc/self/fd/{fd}")]
    assert not [path for path in leaked if path.endswith("train.log")], leaked
    assert jobs.state() is None  # nothing claims to be running


class _FakeSidebar:
    """Stands in for the page's sidebar: a "Cancel training" button that is there or not; clicking it
    cancels the job only after a delay, as on a busy machine. It shows no text: nothing may wait on one."""

    def __init__(self, jobs, present: bool, delay: float = 2.0):
        self.jobs, self.present, self.delay, self.clicked = jobs, present, delay, False

    def get_by_role(self, role, name):
        return self

    def count(self):
        return int(self.present)

    def click(self, timeout=None):
        import threading

        self.clicked = True
        threading.Timer(self.delay, self.jobs.cancel).start()


def test_the_load_test_stops_its_retrain_by_the_jobs_state_not_a_text(tmp_path):
    from bench.load import stop_retrain

    jobs = TrainingJobs(tmp_path / "runs", python=_sleeper(tmp_path))
    jobs.start(_preset("quick"))
    slow = _FakeSidebar(jobs, present=True)
    stop_retrain(slow, tmp_path / "runs", hang_guard=60)  # a cancel that takes a while to take effect
    assert slow.clicked and jobs.state().status == "cancelled"

    finished = _FakeSidebar(jobs, present=False)  # the retrain ended on its own: no button, nothing to wait for
    stop_retrain(finished, tmp_path / "runs", hang_guard=60)
    assert not finished.clicked
