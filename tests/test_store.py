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
    assert "none (new) -> 2" in capsys.readouterr().out
    assert store_cli(["migrate", "--url", url]) == 0
    assert "2 -> 2" in capsys.readouterr().out


def test_an_existing_var_is_copied_into_postgresql_and_every_correction_is_intact(postgres, capsys):
    source = CorrectionStore()  # the data directory's SQLite file, as an existing deployment has it
    _fill(source)
    target_url = postgres.new_database()
    assert store_cli(["copy", "--to", target_url]) == 0
    assert "Copied 12 corrections" in capsys.readouterr().out

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
