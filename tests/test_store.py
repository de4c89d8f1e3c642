"""Beyond one disk: which database is used, migrating it, moving var/ into PostgreSQL, and the app while the
database is down. The store's own behaviour is tested on both backends in test_corrections.py."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from model.constants import NOT_A_DIGIT
from services.corrections import CorrectionStore
from services.database import DatabaseSettingError, database_url
from services.store import main as store_cli

ROOT = Path(__file__).resolve().parents[1]


def _fill(store: CorrectionStore) -> None:
    """Corrections of every kind: digits, "not a digit", with and without a session, what the model said or not."""
    rng = np.random.default_rng(0)
    for i in range(12):
        label = NOT_A_DIGIT if i % 5 == 4 else i % 10
        store.add(label, rng.integers(0, 256, (28, 28), dtype=np.uint8), rng.integers(0, 256, (40, 30), np.uint8),
                  None if i == 3 else (i + 1) % 10, None if i == 3 else 0.5 + i / 40, "shipped", "canvas",
                  None if i < 4 else f"session-{i % 3}")


def test_sqlite_is_the_default_and_a_database_is_named_by_the_environment_or_the_secrets_file(tmp_path, monkeypatch):
    assert database_url().get_backend_name() == "sqlite"
    assert database_url().database == str(Path(os.environ["DIGITS_DATA_DIR"]) / "corrections.sqlite3")
    monkeypatch.setenv("DIGITS_DATABASE_URL", "postgresql://app:secret@db.example:5432/digits")
    assert database_url().drivername == "postgresql+psycopg" and database_url().host == "db.example"
    monkeypatch.delenv("DIGITS_DATABASE_URL")

    secrets = tmp_path / "secrets.toml"
    monkeypatch.setattr("services.database.secrets_files", lambda: [tmp_path / "missing.toml", secrets])
    secrets.write_text('ADMIN_TOKEN = "x"\n[connections.digits]\ndialect = "postgresql"\nhost = "db.internal"\n'
                       'port = 5433\ndatabase = "digits"\nusername = "app"\npassword = "p"\n')
    url = database_url()
    assert (url.drivername, url.host, url.port, url.database, url.username) == (
        "postgresql+psycopg", "db.internal", 5433, "digits", "app")
    secrets.write_text('[connections.digits]\nurl = "postgresql+psycopg://app@db.internal/digits"\n')
    assert database_url().host == "db.internal"
    secrets.write_text("[connections.digits\nurl = ")  # unreadable: never a quiet fall back to a local file
    with pytest.raises(DatabaseSettingError, match="could not be read"):
        database_url()
    monkeypatch.setenv("DIGITS_DATABASE_URL", "mysql://app@db/digits")
    with pytest.raises(DatabaseSettingError, match="not supported"):
        database_url()


def test_migrate_brings_a_database_up_to_date_once(postgres, capsys):
    url = postgres.new_database()
    assert store_cli(["migrate", "--url", url]) == 0
    assert "none (new) -> 4" in capsys.readouterr().out
    assert store_cli(["migrate", "--url", url]) == 0
    assert "4 -> 4" in capsys.readouterr().out


def test_an_existing_var_is_copied_into_postgresql_and_every_correction_and_version_is_intact(postgres, tmp_path,
                                                                                               capsys):
    from sqlalchemy.engine import make_url

    from model.registry import Registry
    from services.model_store import DatabaseRegistry

    source = CorrectionStore()  # the data directory's SQLite file and model folder, as a deployment has them
    _fill(source)
    files = Registry()
    older, newer = (files.add(_reader_set(tmp_path / name, f"2099123{i}-000000-{name * 12}")).version
                    for i, name in enumerate("ab"))
    files.activate(older)
    files.activate(newer)
    target_url = postgres.new_database()
    assert store_cli(["copy", "--to", target_url]) == 0
    assert "Copied 12 corrections" in capsys.readouterr().out

    copied = DatabaseRegistry(make_url(target_url), tmp_path / "fresh-cache")
    assert [v.version for v in copied.versions()] == [newer, older, "shipped"]
    assert copied.active().version == newer and copied.rollback().version == older  # its history came along
    for version in (newer, older):
        assert sorted(p.read_bytes() for p in copied.get(version).path.parent.iterdir()) == sorted(
            p.read_bytes() for p in files.get(version).path.parent.iterdir())

    before, after = source.samples(), CorrectionStore(target_url).samples()
    assert np.array_equal(before.x, after.x) and np.array_equal(before.y, after.y)
    assert np.array_equal(before.predicted, after.predicted) and np.array_equal(before.created, after.created)
    assert np.allclose(before.confidence, after.confidence, equal_nan=True)
    raw_before = [c.raw_png for c in sorted(source.recent(20), key=lambda c: c.created + str(c.id))]
    raw_after = [c.raw_png for c in sorted(CorrectionStore(target_url).recent(20), key=lambda c: c.created + str(c.id))]
    assert raw_before == raw_after
    assert sorted(s.session or "" for s in source.sessions()) == sorted(
        s.session or "" for s in CorrectionStore(target_url).sessions())

    assert store_cli(["copy", "--to", target_url]) == 1  # never twice
    assert "already holds 12" in capsys.readouterr().err
    assert len(CorrectionStore(target_url)) == 12


def test_the_corrections_command_works_against_postgresql(postgres):
    url = postgres.new_database()
    _fill(CorrectionStore(url))
    result = subprocess.run([sys.executable, "-m", "services.corrections", "stats"], cwd=ROOT, capture_output=True,
                            text=True, env={**os.environ, "DIGITS_DATABASE_URL": url}, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "12 samples in postgresql+psycopg://digits@127.0.0.1" in result.stdout
    assert "not a digit          2" in result.stdout


def test_reading_goes_on_while_the_database_is_down_and_a_correction_is_refused_plainly(postgres, monkeypatch,
                                                                                          mnist_sample):
    from tests.test_app import FakeCanvas, _app, _canvas_rgba, _predictions

    import streamlit as st

    url = postgres.new_database()
    monkeypatch.setenv("DIGITS_DATABASE_URL", url)
    canvas = FakeCanvas()
    monkeypatch.setitem(sys.modules, "streamlit_drawable_canvas", canvas)
    st.cache_resource.clear()
    x, y = mnist_sample
    try:
        canvas.image = _canvas_rgba(x[35])
        at = _app().run()
        assert not at.exception and _predictions(at) == [str(y[35])]
        postgres.stop()

        canvas.image = _canvas_rgba(x[12])  # a new drawing while the database is down: read all the same
        at.run()
        assert not at.exception and _predictions(at) == [str(y[12])]
        assert any("does not answer" in w.value for w in at.sidebar.warning)
        at.button(key="feedback_canvas_right").click().run()
        assert not at.exception
        assert any("could not be stored" in e.value and "try again" in e.value for e in at.error)

        postgres.start()
        at.button(key="feedback_canvas_right").click().run()  # the retry, once the database is back
        assert not at.exception and any("Saved as" in s.value for s in at.success)
        (stored,) = CorrectionStore(url).recent()
        assert stored.label == y[12]
    finally:
        if not postgres.running():
            postgres.start()
        st.cache_resource.clear()


def test_the_app_opens_and_reads_when_the_database_is_down_from_the_start(postgres, monkeypatch, mnist_sample):
    from tests.test_app import FakeCanvas, _app, _canvas_rgba, _predictions

    import streamlit as st

    monkeypatch.setenv("DIGITS_DATABASE_URL", postgres.url("no_such_database"))
    canvas = FakeCanvas()
    monkeypatch.setitem(sys.modules, "streamlit_drawable_canvas", canvas)
    st.cache_resource.clear()
    x, y = mnist_sample
    canvas.image = _canvas_rgba(x[35])
    at = _app().run()
    assert not at.exception and _predictions(at) == [str(y[35])]
    assert any("cannot be opened" in w.value for w in at.sidebar.warning)
    assert any("Right / Wrong are off" in c.value for c in at.caption)
    st.cache_resource.clear()


def test_training_reads_the_corrections_from_the_configured_database(postgres, monkeypatch):
    from training.feedback import load_corrections

    url = postgres.new_database()
    _fill(CorrectionStore(url))
    monkeypatch.setenv("DIGITS_DATABASE_URL", url)
    reader, held, samples = load_corrections(None, 0.2, 42)
    gate, _, _ = load_corrections(None, 0.2, 42, not_a_digit=True)
    assert len(samples) == 12 and len(reader) + len(held) == 10 and len(gate) == len(reader) + 2


def _reader_set(folder: Path, version: str) -> Path:
    """The shipped reader and its gate under another version name, as a retrain leaves them in its run folder."""
    import shutil

    from model.artifacts import SHIPPED_MODEL
    from model.card import ModelCard

    folder.mkdir(parents=True)
    for companion in SHIPPED_MODEL.parent.glob("digits.*"):
        if companion.suffix in (".keras", ".json", ".tflite"):
            shutil.copy2(companion, folder / companion.name)
    ModelCard.read(folder / "digits.keras").replace(version=version).write(folder / "digits.keras")
    return folder / "digits.keras"


def test_a_version_promoted_on_one_server_is_what_the_other_reads_from_its_own_cache(postgres, tmp_path,
                                                                                      mnist_sample):
    from sqlalchemy.engine import make_url

    from model.artifacts import ModelFileError
    from model.inference import Recognizer
    from services.model_store import DatabaseRegistry
    from services.schema import model_files

    url = make_url(postgres.new_database())
    one, other = DatabaseRegistry(url, tmp_path / "one"), DatabaseRegistry(url, tmp_path / "other")
    added = one.add(_reader_set(tmp_path / "run", "20991231-000000-aaaaaaaaaaaa"))
    one.activate(added.version)

    active = other.active()  # fetched from the database into the other server's cache, every file checked
    assert active.version == added.version and active.path.is_relative_to(tmp_path / "other")
    assert sorted(p.name for p in active.path.parent.iterdir()) == sorted(p.name for p in added.path.parent.iterdir())
    x, y = mnist_sample
    recognizer = Recognizer(active.path)
    assert recognizer.gate is not None and [r.digit for r in recognizer.read_many(list(x[:10]))] == list(y[:10])

    with one.engine.begin() as db:  # a damaged copy in the database is refused, never loaded
        db.execute(model_files.update().where(model_files.c.name == "digits.tflite").values(content=b"damaged"))
    third = DatabaseRegistry(url, tmp_path / "third")
    with pytest.raises(ModelFileError, match="SHA-256"):
        third.get(added.version)
    assert third.active().version == "shipped"  # the active one cannot be read: the shipped model is used
    assert not (tmp_path / "third" / added.version).exists()


def test_the_versions_command_works_against_postgresql(postgres, tmp_path):
    url = postgres.new_database()
    environment = {**os.environ, "DIGITS_DATABASE_URL": url, "DIGITS_DATA_DIR": str(tmp_path / "data")}
    version = "20991231-000000-bbbbbbbbbbbb"
    from sqlalchemy.engine import make_url

    from services.model_store import DatabaseRegistry

    DatabaseRegistry(make_url(url), tmp_path / "cache").add(_reader_set(tmp_path / "run", version))
    for command in (["activate", version], ["list", "--json"]):
        result = subprocess.run([sys.executable, "-m", "services.versions", *command], cwd=ROOT, capture_output=True,
                                text=True, env=environment, timeout=120)
        assert result.returncode == 0, result.stderr
    import json

    rows = json.loads(result.stdout)
    assert [(r["version"], r["active"]) for r in rows] == [(version, True), ("shipped", False)]


def _lease(url: str, server: str, timeout: float = 30.0):
    from sqlalchemy.engine import make_url

    from services.database import create_engine, sqlite_url
    from services.job_lease import TrainingLease
    from services.schema import migrate

    engine = create_engine(make_url(url) if "://" in url else sqlite_url(Path(url)))
    migrate(engine)
    return TrainingLease(engine, server, timeout)


def test_one_training_per_deployment_and_a_silent_server_loses_its_run(database):
    import time

    from services.job_lease import LeaseTaken

    one, other = _lease(database, "server-one", timeout=1.0), _lease(database, "server-two", timeout=1.0)
    one.acquire("run-1")
    with pytest.raises(LeaseTaken, match="run-1.*server-one"):
        other.acquire("run-2")
    assert other.elsewhere().run_id == "run-1" and one.elsewhere() is None  # the other server says one runs
    assert one.beat("run-1", {"status": "training", "epoch": 2, "epochs": 3, "logs": {"loss": 0.1}})
    assert other.elsewhere().progress == {"status": "training", "epoch": 2, "epochs": 3}  # and how far it is
    one.release("run-1", "done")
    other.acquire("run-2")  # free again
    assert one.run("run-1")["status"] == "done" and other.elsewhere() is None

    time.sleep(1.5)  # server-two stops beating (it died)
    assert one.elsewhere() is None  # seen as dead: its run failed, the lease is free
    failed = one.run("run-2")
    assert failed["status"] == "failed" and "server-two" in failed["message"] and "heartbeat" in failed["message"]
    assert not other.beat("run-2")  # a server that comes back learns it lost the lease
    one.acquire("run-3")


SERVER_SCRIPT = """
import sys, time
from services.jobs import open_jobs
from training.config import PRESETS, TrainConfig
jobs = open_jobs()
state = jobs.start(TrainConfig(**{**PRESETS["quick"].overrides, "epochs": 30, "validation_size": 50}))
print(state.run_id, jobs._process.pid, flush=True)
time.sleep(600)
"""


def test_a_server_killed_mid_retrain_leaves_a_failed_run_and_nothing_else_lost(postgres, tmp_path, monkeypatch,
                                                                               mnist_sample):
    import signal
    import time

    from services.jobs import TrainingAlreadyRunning, open_jobs
    from services.model_store import open_registry
    from training.config import TrainConfig
    from training.data import Dataset, Split, save_cache

    url = postgres.new_database()
    x, y = mnist_sample
    save_cache(Dataset("mnist", "test digits", Split(np.concatenate([x] * 8), np.concatenate([y] * 8)), Split(x, y)),
               tmp_path / "cache")
    environment = {**os.environ, "DIGITS_DATABASE_URL": url, "DIGITS_DATA_DIR": str(tmp_path / "server"),
                   "DIGITS_CACHE_DIR": str(tmp_path / "cache"), "DIGITS_TRAINING_TIMEOUT": "8"}
    monkeypatch.setenv("DIGITS_DATABASE_URL", url)
    monkeypatch.setattr("services.job_lease.TIMEOUT_SECONDS", 8.0)
    _fill(CorrectionStore(url))

    server = subprocess.Popen([sys.executable, "-c", SERVER_SCRIPT], cwd=ROOT, env=environment, text=True,
                              stdout=subprocess.PIPE)
    run_id, worker = server.stdout.readline().split()
    here = open_jobs()  # the other server
    assert here.state().server is not None and here.state().run_id == run_id  # it says a training is running
    with pytest.raises(TrainingAlreadyRunning, match=run_id):
        here.start(TrainConfig(epochs=1))

    server.send_signal(signal.SIGKILL)
    server.wait()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (here.state() is not None and here.state().server is not None):
        time.sleep(0.5)
    assert here.state() is None or here.state().server is None  # no longer said to be running
    assert here.lease.run(run_id)["status"] == "failed"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and Path(f"/proc/{worker}").exists():
        time.sleep(0.5)
    assert not Path(f"/proc/{worker}").exists()  # the worker ended with its server
    assert len(CorrectionStore(url)) == 12  # nothing else lost
    assert [v.version for v in open_registry().versions()] == ["shipped"]
