"""The corrections users send from the app: a labelled store in SQLite.

One file, ``<data dir>/corrections.sqlite3`` (``$DIGITS_DATA_DIR``, default
``var/``), in WAL mode so that readers never block the writer and several
sessions can write at once (each write waits its turn, up to a timeout).

Images are BLOBs in the same row as their label, not files beside the
database: a row is committed in one transaction, so a crash can never leave an
image without its label or a label without its image, and backing the store
up or moving it is copying one file. ``synchronous=FULL`` makes every
committed correction durable, even against a power cut.

Each row holds the raw input as PNG (shrunk to at most RAW_MAX_SIDE pixels on
its long side), the 28x28 model input, the true label, what the model said
and how sure it was, the model version, the time and the app session that
sent it (a random id the app makes per browser session: no personal data).

Anyone may send corrections, so the store takes them within limits
(``Limits``): so many per session per hour, and so many in all. Past either,
a correction is refused with a plain message; nothing stored is lost.

Command line: ``python -m services.corrections {stats,sessions,export,delete}``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import io
import sqlite3
import sys
from pathlib import Path

import numpy as np

from model.constants import INPUT_SIZE, NUM_CLASSES
from model.images import encode_png
from model.registry import data_dir

STORE_FILE = "corrections.sqlite3"
RAW_MAX_SIDE = 1024  # a phone photo is kept at most this large: plenty to look at again, small to store
BUSY_TIMEOUT_SECONDS = 60.0
SOURCES = ("canvas", "upload", "camera", "import")


@dataclasses.dataclass(frozen=True)
class Limits:
    """What anonymous users may store: the defaults are declared here, once (docs/corrections.md lists them)."""

    per_session: int = 120  # corrections one app session may send...
    window_seconds: int = 3600  # ...within this long (a person correcting by hand sends a few a minute)
    max_samples: int = 50_000  # the whole store, in samples (5,000 per digit: far more than a fine-tune needs)
    max_megabytes: int = 2048  # and in image bytes (a photo is kept at most 1024 px, typically 50-300 kB)


DEFAULT_LIMITS = Limits()


class CorrectionLimitError(ValueError):
    """A correction was refused by a limit; the message says which, and that nothing stored was lost."""


@dataclasses.dataclass(frozen=True)
class SessionSummary:
    """What one app session sent: for admins to find, and delete together, a bad batch."""

    session: str | None  # None: rows from before sessions were recorded, or imported
    count: int
    corrected: int  # how many said the model was wrong
    first: str
    last: str

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS corrections (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created TEXT NOT NULL,
    label INTEGER NOT NULL CHECK (label BETWEEN 0 AND 9),
    predicted INTEGER CHECK (predicted BETWEEN 0 AND 9),
    confidence REAL,
    model_version TEXT NOT NULL,
    source TEXT NOT NULL,
    model_input BLOB NOT NULL CHECK (length(model_input) = {INPUT_SIZE * INPUT_SIZE}),
    raw_png BLOB NOT NULL,
    session TEXT
);
CREATE INDEX IF NOT EXISTS corrections_label ON corrections (label);
"""
# Stores made before the session column: added in place, older rows keep NULL.
SESSION_MIGRATION = """
ALTER TABLE corrections ADD COLUMN session TEXT;
"""
SESSION_INDEX = "CREATE INDEX IF NOT EXISTS corrections_session ON corrections (session, created);"


def default_store_path() -> Path:
    return data_dir() / STORE_FILE


@dataclasses.dataclass(frozen=True)
class Correction:
    id: int
    created: str
    label: int  # the true digit, as the user says
    predicted: int | None  # what the model read
    confidence: float | None
    model_version: str
    source: str
    model_input: np.ndarray  # (28, 28) uint8, what the model saw
    raw_png: bytes
    session: str | None = None  # the app session that sent it

    @property
    def confirmed(self) -> bool:
        """The user said the model was right."""
        return self.predicted == self.label


@dataclasses.dataclass(frozen=True)
class Samples:
    """Every stored sample as arrays, oldest first: what training and the export use."""

    ids: np.ndarray  # (N,) int64
    x: np.ndarray  # (N, 28, 28) uint8
    y: np.ndarray  # (N,) uint8
    predicted: np.ndarray  # (N,) int8, -1 where unknown
    confidence: np.ndarray  # (N,) float32, NaN where unknown
    model_version: np.ndarray  # (N,) str
    created: np.ndarray  # (N,) str

    def __len__(self) -> int:
        return len(self.ids)


class CorrectionStore:
    """Safe to use from many threads and processes: every call opens its own connection."""

    def __init__(self, path: Path | None = None, timeout: float = BUSY_TIMEOUT_SECONDS,
                 limits: Limits | None = None):
        self.path = Path(path) if path else default_store_path()
        self.timeout = timeout
        self.limits = limits or DEFAULT_LIMITS
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connection() as db:
            db.execute("PRAGMA journal_mode=WAL")  # stored in the file: set once, every connection uses it
            db.executescript(SCHEMA)
            if "session" not in {row[1] for row in db.execute("PRAGMA table_info(corrections)")}:
                with contextlib.suppress(sqlite3.OperationalError):  # another process added it meanwhile
                    db.executescript(SESSION_MIGRATION)
            db.execute(SESSION_INDEX)

    @contextlib.contextmanager
    def _connection(self):
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a write is exactly one transaction.
        db = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        try:
            db.execute("PRAGMA synchronous=FULL")  # per connection: fsync every commit
            yield db
        finally:
            db.close()

    @contextlib.contextmanager
    def _transaction(self):
        with self._connection() as db:
            db.execute("BEGIN IMMEDIATE")  # take the write lock now, not halfway through
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def add(self, label: int, model_input: np.ndarray, raw: np.ndarray | bytes, predicted: int | None,
            confidence: float | None, model_version: str, source: str = "canvas", session: str | None = None) -> int:
        """Store one sample; returns its id once it is committed (and durable)."""
        return self.add_many([(label, model_input, raw, predicted, confidence)], model_version, source, session)[0]

    def add_many(self, samples: list[tuple], model_version: str, source: str = "canvas",
                 session: str | None = None) -> list[int]:
        """Store (label, model_input, raw, predicted, confidence) samples in one transaction: all or none.

        A `session` (the app's) is held to the per-session limit; every sample to the store's size limits.
        Past a limit nothing of the batch is stored (CorrectionLimitError), and nothing stored before is touched."""
        if source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, got {source!r}.")
        now = dt.datetime.now(dt.timezone.utc)
        created = now.isoformat(timespec="milliseconds")
        rows = [(created, *_checked(*sample), model_version, source, session) for sample in samples]
        with self._transaction() as db:  # the checks and the insert in one transaction: no race past a limit
            self._check_limits(db, rows, session, now)
            return [int(db.execute(
                "INSERT INTO corrections (created, label, model_input, raw_png, predicted, confidence, model_version, "
                "source, session) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", row).lastrowid) for row in rows]

    def _check_limits(self, db, rows: list[tuple], session: str | None, now: dt.datetime) -> None:
        limits = self.limits
        if session is not None:
            since = (now - dt.timedelta(seconds=limits.window_seconds)).isoformat(timespec="milliseconds")
            sent = db.execute("SELECT count(*) FROM corrections WHERE session = ? AND created >= ?",
                              (session, since)).fetchone()[0]
            if sent + len(rows) > limits.per_session:
                minutes = limits.window_seconds // 60
                raise CorrectionLimitError(
                    f"Not stored: this session has sent {sent} corrections in the last {minutes} minutes, and one "
                    f"session may send {limits.per_session}. Thank you: please try again later. Everything you "
                    "sent before is kept.")
        count, size = db.execute("SELECT count(*), coalesce(sum(length(raw_png) + length(model_input)), 0) "
                                 "FROM corrections").fetchone()
        adding = sum(len(row[3]) + len(row[2]) for row in rows)
        if count + len(rows) > limits.max_samples or size + adding > limits.max_megabytes * 2**20:
            raise CorrectionLimitError(
                f"Not stored: the corrections store is full ({count:,} samples, {size / 2**20:,.0f} MB; it takes "
                f"{limits.max_samples:,} samples or {limits.max_megabytes:,} MB). Everything stored is kept; an "
                "admin can export the store and delete what is no longer needed to make room.")

    def delete(self, correction_id: int) -> bool:
        """Remove one sample; False if there was none with that id."""
        with self._transaction() as db:
            return db.execute("DELETE FROM corrections WHERE id = ?", (int(correction_id),)).rowcount == 1

    def delete_session(self, session: str | None) -> int:
        """Remove everything one app session sent (a bad batch); returns how many samples went."""
        with self._transaction() as db:
            return db.execute("DELETE FROM corrections WHERE session IS ?", (session,)).rowcount

    def sessions(self) -> list[SessionSummary]:
        """Who sent what, most recent first: each app session's count and time span (no personal data)."""
        with self._connection() as db:
            rows = db.execute("SELECT session, count(*), sum(predicted IS NOT label), min(created), max(created) "
                              "FROM corrections GROUP BY session ORDER BY max(created) DESC").fetchall()
        return [SessionSummary(*row) for row in rows]

    def __len__(self) -> int:
        with self._connection() as db:
            return int(db.execute("SELECT count(*) FROM corrections").fetchone()[0])

    def counts(self) -> dict[str, list[int]]:
        """Per digit (by true label): how many were corrections and how many confirmed the model."""
        counts = {"corrected": [0] * NUM_CLASSES, "confirmed": [0] * NUM_CLASSES}
        with self._connection() as db:
            for label, confirmed, count in db.execute(
                    "SELECT label, predicted IS label, count(*) FROM corrections GROUP BY label, predicted IS label"):
                counts["confirmed" if confirmed else "corrected"][label] += count
        return counts

    def get(self, correction_id: int) -> Correction | None:
        rows = self._select("WHERE id = ?", (int(correction_id),))
        return rows[0] if rows else None

    def recent(self, limit: int = 12) -> list[Correction]:
        return self._select("ORDER BY id DESC LIMIT ?", (int(limit),))

    def _select(self, clause: str, parameters: tuple) -> list[Correction]:
        with self._connection() as db:
            rows = db.execute("SELECT id, created, label, predicted, confidence, model_version, source, model_input, "
                              f"raw_png, session FROM corrections {clause}", parameters).fetchall()
        return [Correction(*row[:7], _image(row[7]), *row[8:]) for row in rows]

    def samples(self) -> Samples:
        with self._connection() as db:
            rows = db.execute("SELECT id, label, predicted, confidence, model_version, created, model_input "
                              "FROM corrections ORDER BY id").fetchall()
        return Samples(
            ids=np.array([r[0] for r in rows], np.int64),
            x=np.stack([_image(r[6]) for r in rows]) if rows else np.zeros((0, INPUT_SIZE, INPUT_SIZE), np.uint8),
            y=np.array([r[1] for r in rows], np.uint8),
            predicted=np.array([-1 if r[2] is None else r[2] for r in rows], np.int8),
            confidence=np.array([np.nan if r[3] is None else r[3] for r in rows], np.float32),
            model_version=np.array([r[4] for r in rows], str),
            created=np.array([r[5] for r in rows], str),
        )

    def export_npz(self) -> bytes:
        """The whole store as a dataset: x (N, 28, 28) uint8 white on black, y, and what the model said."""
        samples = self.samples()
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **dataclasses.asdict(samples))
        return buffer.getvalue()

    def integrity(self) -> str:
        with self._connection() as db:
            return db.execute("PRAGMA integrity_check").fetchone()[0]


def _checked(label: int, model_input: np.ndarray, raw: np.ndarray | bytes, predicted: int | None,
             confidence: float | None) -> tuple:
    """One sample's column values, or ValueError saying what is wrong with it."""
    if not 0 <= int(label) < NUM_CLASSES:
        raise ValueError(f"label must be a digit 0-9, got {label!r}.")
    model_input = np.asarray(model_input)
    if model_input.shape != (INPUT_SIZE, INPUT_SIZE):
        raise ValueError(f"model_input must be {INPUT_SIZE}x{INPUT_SIZE}, got {model_input.shape}.")
    raw_png = raw if isinstance(raw, bytes) else encode_png(raw, RAW_MAX_SIDE)
    return (int(label), np.ascontiguousarray(model_input, dtype=np.uint8).tobytes(), raw_png,
            None if predicted is None else int(predicted), None if confidence is None else float(confidence))


def _image(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, np.uint8).reshape(INPUT_SIZE, INPUT_SIZE)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.corrections",
                                     description="Look at, export or prune the corrections users sent from the app.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--store", type=Path, default=default_store_path(),
                        help="the SQLite store (set DIGITS_DATA_DIR to move the default)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("stats", help="how many samples per digit")
    commands.add_parser("sessions", help="who sent what: each app session's samples and when (no personal data)")
    export = commands.add_parser("export", help="write every sample to an .npz dataset")
    export.add_argument("output", type=Path)
    delete = commands.add_parser("delete", help="remove samples by id, or everything one session sent")
    delete.add_argument("ids", type=int, nargs="*")
    delete.add_argument("--session", help="the session id that `sessions` lists ('-' for samples without one)")
    args = parser.parse_args(argv)

    if not args.store.exists():
        print(f"error: there is no corrections store at {args.store}. Corrections sent from the app are stored "
              "there; set DIGITS_DATA_DIR or pass --store.", file=sys.stderr)
        return 1
    store = CorrectionStore(args.store)
    if args.command == "stats":
        counts = store.counts()
        print(f"{len(store)} samples in {args.store}")
        print("digit  corrected  confirmed")
        for digit in range(NUM_CLASSES):
            print(f"{digit:>5}  {counts['corrected'][digit]:>9}  {counts['confirmed'][digit]:>9}")
    elif args.command == "sessions":
        print("session                           samples  corrected  first                          last")
        for row in store.sessions():
            print(f"{row.session or '-':<32}  {row.count:>7}  {row.corrected:>9}  {row.first:<29}  {row.last}")
    elif args.command == "export":
        if args.output.suffix != ".npz":
            print(f"error: the export is an .npz file; got {args.output}.", file=sys.stderr)
            return 2
        args.output.write_bytes(store.export_npz())
        print(f"Wrote {len(store)} samples to {args.output}")
    elif args.session is not None:
        if args.ids:
            print("error: give ids or --session, not both.", file=sys.stderr)
            return 2
        print(f"Deleted {store.delete_session(None if args.session == '-' else args.session)} sample(s).")
    elif not args.ids:
        print("error: name the samples to delete: their ids, or --session ID.", file=sys.stderr)
        return 2
    else:
        missing = [i for i in args.ids if not store.delete(i)]
        if missing:
            print(f"error: no sample with id {', '.join(map(str, missing))}.", file=sys.stderr)
            return 1
        print(f"Deleted {len(args.ids)} sample(s).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
