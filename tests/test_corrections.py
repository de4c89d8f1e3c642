"""The corrections store: round trip, concurrent writers, a writer killed mid-write, the CLI."""

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from services.corrections import CorrectionStore
from services.corrections import main as corrections_cli

ROOT = Path(__file__).resolve().parents[1]
WRITERS, PER_WRITER = 8, 200


def _model_input(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (28, 28), dtype=np.uint8)


def test_a_correction_survives_a_round_trip_and_a_restart(database):
    store = CorrectionStore(database)
    raw = np.dstack([np.zeros((280, 280, 3), np.uint8), np.full((280, 280), 255, np.uint8)])
    raw[100:180, 130:150, :3] = 255
    model_input = _model_input(0)
    new_id = store.add(7, model_input, raw, predicted=1, confidence=0.62, model_version="20261122-000000",
                       source="canvas")
    confirmed_id = store.add(3, _model_input(1), raw[..., :3], predicted=3, confidence=0.99, model_version="shipped",
                             source="upload")

    again = CorrectionStore(database).get(new_id)  # a new instance, as after an app restart
    assert (again.label, again.predicted, again.model_version, again.source) == (7, 1, "20261122-000000", "canvas")
    assert again.confidence == pytest.approx(0.62) and not again.confirmed
    assert np.array_equal(again.model_input, model_input)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(again.raw_png))), raw)  # PNG is lossless
    assert again.created.endswith("+00:00")
    assert [c.id for c in store.recent()] == [confirmed_id, new_id]
    counts = store.counts()
    assert counts["corrected"][7] == 1 and counts["confirmed"][3] == 1 and sum(map(sum, counts.values())) == 2

    with np.load(io.BytesIO(store.export_npz()), allow_pickle=False) as exported:
        assert exported["x"].shape == (2, 28, 28) and exported["x"].dtype == np.uint8
        assert exported["y"].tolist() == [7, 3] and exported["predicted"].tolist() == [1, 3]
        assert np.array_equal(exported["x"][0], model_input)
        assert exported["model_version"].tolist() == ["20261122-000000", "shipped"]

    assert store.delete(new_id) and not store.delete(new_id)
    assert len(store) == 1 and store.get(new_id) is None


def test_large_photos_are_kept_smaller_and_bad_samples_are_refused(database):
    store = CorrectionStore(database)
    photo = np.full((3000, 2000, 3), 200, np.uint8)
    kept = store.get(store.add(4, _model_input(2), photo, 9, 0.5, "shipped", "camera"))
    assert max(Image.open(io.BytesIO(kept.raw_png)).size) == 1024
    for bad in ({"label": 11}, {"label": -1}, {"model_input": np.zeros((20, 20), np.uint8)}, {"source": "email"}):
        arguments = {"label": 1, "model_input": _model_input(3), "raw": photo[:10, :10], "predicted": 1,
                     "confidence": 0.9, "model_version": "shipped", "source": "canvas", **bad}
        with pytest.raises(ValueError):
            store.add(**arguments)
    assert len(store) == 1


MANY_WRITES_SCRIPT = """
import sys, threading, numpy as np
from services.corrections import CorrectionStore
store, first, writers, count = CorrectionStore(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def write(writer):
    for i in range(count):
        sample = np.random.default_rng(writer * 1000 + i).integers(0, 256, (28, 28), dtype=np.uint8)
        store.add(i % 10, sample, sample, (i + 1) % 10, 0.5, f"writer-{writer}", "upload")
threads = [threading.Thread(target=write, args=(w,)) for w in range(first, first + writers)]
[t.start() for t in threads]
[t.join() for t in threads]
"""


def test_eight_concurrent_writers_store_every_correction(database):
    path = database
    CorrectionStore(path)
    # Two processes, like two app servers sharing one store, each with four sessions writing at once.
    half = WRITERS // 2
    writers = [_spawn(MANY_WRITES_SCRIPT, path, str(first), str(half), str(PER_WRITER)) for first in (0, half)]
    for writer in writers:
        assert writer.wait(timeout=300) == 0
    store = CorrectionStore(path)
    samples = store.samples()
    assert len(samples) == WRITERS * PER_WRITER
    assert sorted(set(samples.model_version.tolist())) == [f"writer-{w}" for w in range(WRITERS)]
    assert all((samples.model_version == f"writer-{w}").sum() == PER_WRITER for w in range(WRITERS))
    assert len(set(samples.ids.tolist())) == WRITERS * PER_WRITER
    assert store.integrity() == "ok"


WRITER_SCRIPT = """
import sys, numpy as np
from services.corrections import CorrectionStore
store = CorrectionStore(sys.argv[1])
big = np.random.default_rng(0).integers(0, 256, (600, 600, 3), dtype=np.uint8)  # slow enough to be killed mid-write
i = 0
while True:
    new_id = store.add(i % 10, np.full((28, 28), i % 256, np.uint8), big, None, None, "killed-writer", "upload")
    print(new_id, flush=True)  # printed only after the commit returned
    i += 1
"""

OPEN_TRANSACTION_SCRIPT = """
import sys, time
from services.corrections import CorrectionStore
from services.database import writing
from services.schema import corrections
store = CorrectionStore(sys.argv[1])
with writing(store.engine) as db, db.begin():
    db.execute(corrections.insert().values(created="now", label=1, model_version="never-committed", source="upload",
                                           model_input=bytes(784), raw_png=b"\\x00"))
    print("inside", flush=True)
    time.sleep(600)
"""


def _spawn(script: str, path: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", script, str(path), *args], cwd=ROOT, stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})


@pytest.mark.parametrize("committed_before_kill", [5, 23, 61])
def test_a_writer_killed_mid_write_loses_no_committed_row(database, committed_before_kill):
    path = database
    CorrectionStore(path).add(0, _model_input(0), _model_input(0), 0, 1.0, "before", "canvas")
    writer = _spawn(WRITER_SCRIPT, path)
    committed = [int(writer.stdout.readline()) for _ in range(committed_before_kill)]
    time.sleep(0.003 * committed_before_kill)  # land somewhere inside a later write
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    committed += [int(line) for line in writer.stdout.read().split()]  # any it reported before dying

    store = CorrectionStore(path)
    stored = set(store.samples().ids.tolist())
    assert set(committed) <= stored  # every row the writer saw committed is there
    assert len(stored) - 1 - len(committed) in (0, 1)  # at most the one whose commit it never got to report
    assert store.integrity() == "ok"
    assert store.add(5, _model_input(9), _model_input(9), 5, 0.9, "after", "canvas") > max(stored)


def test_a_writer_killed_inside_a_transaction_leaves_nothing_half_written(database):
    path = database
    store = CorrectionStore(path)
    kept = store.add(2, _model_input(0), _model_input(0), 2, 1.0, "before", "canvas")
    writer = _spawn(OPEN_TRANSACTION_SCRIPT, path)
    assert writer.stdout.readline().strip() == "inside"
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    assert [c.id for c in store.recent()] == [kept]  # the uncommitted row is gone, the committed one stays
    assert store.integrity() == "ok"
    store.add(3, _model_input(1), _model_input(1), 3, 1.0, "after", "canvas")  # the dead writer's lock is released
    assert len(store) == 2


def test_the_command_line_shows_exports_and_deletes(database, tmp_path, capsys):
    path = database
    if "://" not in path:  # a SQLite file that was never made; a database server always answers
        assert corrections_cli(["--store", str(path), "stats"]) == 1
        assert "no corrections store" in capsys.readouterr().err
    store = CorrectionStore(path)
    ids = [store.add(d, _model_input(d), _model_input(d), (d + 1) % 10, 0.4, "shipped", "canvas") for d in (6, 6, 3)]
    assert corrections_cli(["--store", str(path), "stats"]) == 0
    assert "3 samples" in capsys.readouterr().out
    assert corrections_cli(["--store", str(path), "export", str(tmp_path / "out.npz")]) == 0
    with np.load(tmp_path / "out.npz") as exported:
        assert exported["y"].tolist() == [6, 6, 3]
    assert corrections_cli(["--store", str(path), "delete", str(ids[0])]) == 0
    assert corrections_cli(["--store", str(path), "delete", "999"]) == 1
    assert "no sample with id 999" in capsys.readouterr().err
    assert len(store) == 2


def _send(store, count, session, label=7):
    return store.add_many([(label, _model_input(i), b"png", 1, 0.6) for i in range(count)], "shipped", "canvas",
                          session)


def test_one_session_may_send_so_many_per_hour_and_is_told_plainly(database):
    from services.corrections import CorrectionLimitError, Limits

    store = CorrectionStore(database, limits=Limits(per_session=5, window_seconds=3600))
    _send(store, 3, "a" * 32)
    with pytest.raises(CorrectionLimitError, match="one session may send 5") as refused:
        _send(store, 3, "a" * 32)  # 3 more would make 6: none of them is stored
    assert "kept" in str(refused.value)
    assert len(store) == 3
    _send(store, 2, "a" * 32)  # up to the limit
    _send(store, 5, "b" * 32)  # another session has its own allowance
    with pytest.raises(CorrectionLimitError):
        _send(store, 1, "a" * 32)
    assert len(store) == 10


def test_the_window_moves_on(database, monkeypatch):
    import datetime as dt

    import services.corrections as corrections
    from services.corrections import Limits

    store = CorrectionStore(database, limits=Limits(per_session=2, window_seconds=60))
    _send(store, 2, "s")
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=61)

    class Later(dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return later

    monkeypatch.setattr(corrections.dt, "datetime", Later)
    _send(store, 2, "s")
    assert len(store) == 4


def test_a_full_store_refuses_more_and_loses_nothing(database, tmp_path):
    from services.corrections import CorrectionLimitError, Limits

    store = CorrectionStore(database, limits=Limits(max_samples=4))
    ids = _send(store, 4, None)
    with pytest.raises(CorrectionLimitError, match="store is full"):
        _send(store, 1, "new")
    assert [c.id for c in store.recent()] == ids[::-1]
    store.delete(ids[0])  # an admin makes room
    _send(store, 1, "new")
    assert len(store) == 4

    by_size = CorrectionStore(tmp_path / "d.sqlite3", limits=Limits(max_megabytes=1))
    by_size.add(1, _model_input(0), b"x" * 700_000, None, None, "shipped", "upload", "s")
    with pytest.raises(CorrectionLimitError, match="MB"):
        by_size.add(1, _model_input(0), b"x" * 700_000, None, None, "shipped", "upload", "s")
    assert len(by_size) == 1


def test_admins_see_who_sent_what_and_delete_a_batch_together(database, capsys):
    store = CorrectionStore(database)
    good = _send(store, 2, "good-session")
    _send(store, 3, "bad-session", label=3)
    summaries = {s.session: s for s in store.sessions()}
    assert summaries["bad-session"].count == 3 and summaries["good-session"].count == 2
    assert summaries["bad-session"].corrected == 3 and summaries["bad-session"].first <= summaries["bad-session"].last
    assert store.get(good[0]).session == "good-session"

    assert corrections_cli(["--store", database, "sessions"]) == 0
    listing = capsys.readouterr().out
    assert "bad-session" in listing and "good-session" in listing
    assert corrections_cli(["--store", database, "delete", "--session", "bad-session"]) == 0
    assert "Deleted 3" in capsys.readouterr().out
    assert [c.id for c in store.recent()] == good[::-1]


def test_a_store_made_before_sessions_opens_and_gains_the_column(tmp_path):
    import sqlite3

    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript("""CREATE TABLE corrections (id INTEGER PRIMARY KEY AUTOINCREMENT, created TEXT NOT NULL,
            label INTEGER NOT NULL, predicted INTEGER, confidence REAL, model_version TEXT NOT NULL,
            source TEXT NOT NULL, model_input BLOB NOT NULL, raw_png BLOB NOT NULL);""")
        db.execute("INSERT INTO corrections (created, label, predicted, confidence, model_version, source, model_input, "
                   "raw_png) VALUES ('2026-11-01T00:00:00.000+00:00', 4, 9, 0.5, 'shipped', 'canvas', ?, ?)",
                   (bytes(784), b"png"))
    store = CorrectionStore(path)
    (old,) = store.recent()
    assert old.label == 4 and old.session is None
    store.add(5, _model_input(0), b"png", 5, 0.9, "shipped", "canvas", "new-session")
    assert {s.session for s in store.sessions()} == {None, "new-session"}


def _store_before_not_a_digit(path):
    """A store as the app wrote it before "not a digit" (schema version 0: labels 0-9 only, sessions)."""
    import sqlite3

    with sqlite3.connect(path) as db:
        db.executescript("""CREATE TABLE corrections (id INTEGER PRIMARY KEY AUTOINCREMENT, created TEXT NOT NULL,
            label INTEGER NOT NULL CHECK (label BETWEEN 0 AND 9), predicted INTEGER CHECK (predicted BETWEEN 0 AND 9),
            confidence REAL, model_version TEXT NOT NULL, source TEXT NOT NULL,
            model_input BLOB NOT NULL CHECK (length(model_input) = 784), raw_png BLOB NOT NULL, session TEXT);
            CREATE INDEX corrections_label ON corrections (label);""")
        for row_id in (3, 7):  # ids with gaps: a migration must keep them (exports and undo refer to them)
            db.execute("INSERT INTO corrections (id, created, label, predicted, confidence, model_version, source, "
                       "model_input, raw_png, session) VALUES (?, '2026-11-01T00:00:00.000+00:00', ?, 1, 0.5, "
                       "'shipped', 'canvas', ?, x'89', 'old')", (row_id, row_id, _model_input(row_id).tobytes()))


def test_an_older_store_migrates_once_keeps_every_row_and_takes_not_a_digit(tmp_path):
    import sqlite3
    from concurrent.futures import ThreadPoolExecutor

    from model.constants import NOT_A_DIGIT
    from services.schema import SCHEMA_VERSION

    path = tmp_path / "old.sqlite3"
    _store_before_not_a_digit(path)
    with ThreadPoolExecutor(4) as pool:  # four sessions open it at once: one migrates, the others wait
        stores = list(pool.map(lambda _: CorrectionStore(path), range(4)))
    kept = sorted(stores[0].recent(), key=lambda c: c.id)
    assert [(c.id, c.label, c.session) for c in kept] == [(3, 3, "old"), (7, 7, "old")]
    assert np.array_equal(kept[1].model_input, _model_input(7))
    new_id = stores[1].add(NOT_A_DIGIT, _model_input(1), b"png", 4, 0.97, "shipped", "canvas")
    assert new_id > 7 and stores[2].get(new_id).not_a_digit
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
        assert {row[1] for row in db.execute("PRAGMA index_list(corrections)")} >= {"corrections_label",
                                                                                    "corrections_session"}
    assert stores[3].integrity() == "ok"
    with pytest.raises(ValueError, match="not a digit"):
        stores[0].add(NOT_A_DIGIT + 1, _model_input(1), b"png", 4, 0.9, "shipped", "canvas")


def test_a_store_from_a_newer_release_is_left_untouched(tmp_path):
    import sqlite3

    path = tmp_path / "new.sqlite3"
    CorrectionStore(path).add(4, _model_input(0), b"png", 4, 0.9, "shipped", "canvas")
    with sqlite3.connect(path) as db:
        db.execute("UPDATE schema_version SET version = 99")
    before = path.read_bytes()
    with pytest.raises(RuntimeError, match="newer release"):
        CorrectionStore(path)
    assert path.read_bytes() == before


def test_not_a_digit_is_counted_and_exported_as_its_own_kind(database, tmp_path, capsys):
    from model.constants import NOT_A_DIGIT

    path = database
    store = CorrectionStore(path)
    store.add(NOT_A_DIGIT, _model_input(0), b"png", 8, 0.98, "shipped", "canvas")
    store.add(2, _model_input(1), b"png", 2, 0.99, "shipped", "canvas")
    assert store.counts()["corrected"][NOT_A_DIGIT] == 1 and store.counts()["confirmed"][2] == 1
    assert corrections_cli(["--store", str(path), "stats"]) == 0
    assert "not a digit          1" in capsys.readouterr().out
    assert corrections_cli(["--store", str(path), "export", str(tmp_path / "out.npz")]) == 0
    with np.load(tmp_path / "out.npz") as exported:
        assert exported["y"].tolist() == [NOT_A_DIGIT, 2]
        assert exported["kind"].tolist() == ["not_a_digit", "digit"]
