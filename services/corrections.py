"""The corrections users send from the app: a labelled store in SQLite or PostgreSQL.

By default one SQLite file, ``<data dir>/corrections.sqlite3`` (``$DIGITS_DATA_DIR``, default ``var/``), in
WAL mode so that readers never block the writer and several sessions can write at once (each write waits its
turn, up to a timeout); ``synchronous=FULL`` makes every committed correction durable, even against a power
cut. A deployment whose disk does not last, or with several servers, names a PostgreSQL database instead
(services.database: ``DIGITS_DATABASE_URL`` or the secrets file); the queries are the same (services.schema).

Images are BLOBs in the same row as their label, not files beside the
database: a row is committed in one transaction, so a crash can never leave an
image without its label or a label without its image, and backing the store
up or moving it is copying one file (or one database).

Each row holds the raw input as PNG (shrunk to at most RAW_MAX_SIDE pixels on
its long side), the 28x28 model input, the true label (a digit, or NOT_A_DIGIT when
the user said it is no digit at all), what the model said
and how sure it was, the model version, the time and the app session that
sent it (a random id the app makes per browser session: no personal data).

Anyone may send corrections, so the store takes them within limits
(``Limits``): so many per session per hour, and so many in all. Past either,
a correction is refused with a plain message; nothing stored is lost.

Command line: ``python -m services.corrections {stats,sessions,export,delete}``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import io
import sys
from pathlib import Path

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from model.constants import INPUT_SIZE, NOT_A_DIGIT
from model.images import encode_png
from model.registry import data_dir
from services.database import (BUSY_TIMEOUT_SECONDS, SQLITE_FILE, STORE_ERRORS, DatabaseSettingError, create_engine,
                               database_url, describe, sqlite_url, writing)
from services.schema import corrections, migrate, schema_version

RAW_MAX_SIDE = 1024  # a phone photo is kept at most this large: plenty to look at again, small to store
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


def label_name(label: int) -> str:
    """How a label is shown: the digit, or "not a digit"."""
    return "not a digit" if label == NOT_A_DIGIT else str(label)


def default_store_path() -> Path:
    """The SQLite file used when no database is configured."""
    return data_dir() / SQLITE_FILE


def existing_store(where: Path | str | None = None) -> CorrectionStore | None:
    """The store to read from, or None when nothing was ever sent (a SQLite file that does not exist yet:
    reading must not make an empty one). `where`: as CorrectionStore's."""
    url = store_url(where)
    if url.get_backend_name() == "sqlite" and not Path(url.database).exists():
        return None
    return CorrectionStore(url)


def store_url(where: Path | str | URL | None) -> URL:
    """The database a store names: a URL (or its text), a SQLite file's path, or None for the configured one."""
    if where is None:
        return database_url()
    if isinstance(where, URL):
        return where
    return make_url(where) if "://" in str(where) else sqlite_url(Path(where))


@dataclasses.dataclass(frozen=True)
class Correction:
    id: int
    created: str
    label: int  # the true digit, as the user says, or NOT_A_DIGIT
    predicted: int | None  # what the model read (its closest digit, even when the app refused it)
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

    @property
    def not_a_digit(self) -> bool:
        """The user said it is no digit at all: it teaches the gate (model.gate), not the reader."""
        return self.label == NOT_A_DIGIT


@dataclasses.dataclass(frozen=True)
class Samples:
    """Every stored sample as arrays, oldest first: what training and the export use."""

    ids: np.ndarray  # (N,) int64
    x: np.ndarray  # (N, 28, 28) uint8
    y: np.ndarray  # (N,) uint8: the digit, or NOT_A_DIGIT
    predicted: np.ndarray  # (N,) int8, -1 where unknown
    confidence: np.ndarray  # (N,) float32, NaN where unknown
    model_version: np.ndarray  # (N,) str
    created: np.ndarray  # (N,) str

    def __len__(self) -> int:
        return len(self.ids)


class CorrectionStore:
    """Safe to use from many threads and processes; every call is its own transaction.

    `where`: a SQLite file (a Path), a database URL, or None for the configured one (services.database)."""

    def __init__(self, where: Path | str | URL | None = None, timeout: float = BUSY_TIMEOUT_SECONDS,
                 limits: Limits | None = None):
        self.url = store_url(where)
        self.limits = limits or DEFAULT_LIMITS
        self.engine = create_engine(self.url, timeout)
        migrate(self.engine)

    @property
    def path(self) -> Path | None:
        """The SQLite file, if the store is one."""
        return Path(self.url.database) if self.url.get_backend_name() == "sqlite" else None

    def __str__(self) -> str:
        return describe(self.url)

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
        rows = [{"created": created, **_checked(*sample), "model_version": model_version, "source": source,
                 "session": session} for sample in samples]
        with writing(self.engine) as db, db.begin():  # the checks and the insert in one transaction
            # writers take turns (SQLite: its write lock; PostgreSQL: this row's), so no two pass a limit together
            db.execute(sa.select(schema_version).with_for_update())
            self._check_limits(db, rows, session, now)
            return [db.execute(corrections.insert().values(row).returning(corrections.c.id)).scalar_one()
                    for row in rows]

    def _check_limits(self, db, rows: list[dict], session: str | None, now: dt.datetime) -> None:
        limits, c = self.limits, corrections.c
        if session is not None:
            since = (now - dt.timedelta(seconds=limits.window_seconds)).isoformat(timespec="milliseconds")
            sent = db.execute(sa.select(sa.func.count()).where(c.session == session, c.created >= since)).scalar_one()
            if sent + len(rows) > limits.per_session:
                minutes = limits.window_seconds // 60
                raise CorrectionLimitError(
                    f"Not stored: this session has sent {sent} corrections in the last {minutes} minutes, and one "
                    f"session may send {limits.per_session}. Thank you: please try again later. Everything you "
                    "sent before is kept.")
        count, size = db.execute(sa.select(sa.func.count(), sa.func.coalesce(
            sa.func.sum(sa.func.length(c.raw_png) + sa.func.length(c.model_input)), 0))).one()
        adding = sum(len(row["raw_png"]) + len(row["model_input"]) for row in rows)
        if count + len(rows) > limits.max_samples or size + adding > limits.max_megabytes * 2**20:
            raise CorrectionLimitError(
                f"Not stored: the corrections store is full ({count:,} samples, {size / 2**20:,.0f} MB; it takes "
                f"{limits.max_samples:,} samples or {limits.max_megabytes:,} MB). Everything stored is kept; an "
                "admin can export the store and delete what is no longer needed to make room.")

    def delete(self, correction_id: int) -> bool:
        """Remove one sample; False if there was none with that id."""
        with writing(self.engine) as db, db.begin():
            return db.execute(corrections.delete().where(corrections.c.id == int(correction_id))).rowcount == 1

    def delete_session(self, session: str | None) -> int:
        """Remove everything one app session sent (a bad batch); returns how many samples went."""
        with writing(self.engine) as db, db.begin():
            return db.execute(corrections.delete().where(
                corrections.c.session.is_not_distinct_from(session))).rowcount

    def sessions(self) -> list[SessionSummary]:
        """Who sent what, most recent first: each app session's count and time span (no personal data)."""
        c = corrections.c
        corrected = sa.func.sum(sa.case((c.predicted.is_distinct_from(c.label), 1), else_=0))
        query = (sa.select(c.session, sa.func.count(), corrected, sa.func.min(c.created), sa.func.max(c.created))
                 .group_by(c.session).order_by(sa.func.max(c.created).desc()))
        with self.engine.connect() as db:
            return [SessionSummary(*row) for row in db.execute(query)]

    def __len__(self) -> int:
        with self.engine.connect() as db:
            return db.execute(sa.select(sa.func.count()).select_from(corrections)).scalar_one()

    def counts(self) -> dict[str, list[int]]:
        """Per label (a digit, then NOT_A_DIGIT last): how many were corrections and how many confirmed the model."""
        counts = {"corrected": [0] * (NOT_A_DIGIT + 1), "confirmed": [0] * (NOT_A_DIGIT + 1)}
        c = corrections.c
        confirmed = c.predicted.is_not_distinct_from(c.label)
        with self.engine.connect() as db:
            for label, was_confirmed, count in db.execute(
                    sa.select(c.label, confirmed, sa.func.count()).group_by(c.label, confirmed)):
                counts["confirmed" if was_confirmed else "corrected"][label] += count
        return counts

    def get(self, correction_id: int) -> Correction | None:
        rows = self._select(sa.select(*ROW).where(corrections.c.id == int(correction_id)))
        return rows[0] if rows else None

    def recent(self, limit: int = 12) -> list[Correction]:
        return self._select(sa.select(*ROW).order_by(corrections.c.id.desc()).limit(int(limit)))

    def _select(self, query) -> list[Correction]:
        with self.engine.connect() as db:
            rows = db.execute(query).all()
        return [Correction(*row[:7], _image(row[7]), bytes(row[8]), row[9]) for row in rows]

    def samples(self) -> Samples:
        c = corrections.c
        with self.engine.connect() as db:
            rows = db.execute(sa.select(c.id, c.label, c.predicted, c.confidence, c.model_version, c.created,
                                        c.model_input).order_by(c.id)).all()
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
        """The whole store as a dataset: x (N, 28, 28) uint8 white on black, y, and what the model said.
        `kind` says "digit" or "not_a_digit" of each (y is NOT_A_DIGIT, 10, for the second)."""
        samples = self.samples()
        buffer = io.BytesIO()
        kind = np.where(samples.y == NOT_A_DIGIT, "not_a_digit", "digit")
        np.savez_compressed(buffer, **dataclasses.asdict(samples), kind=kind)
        return buffer.getvalue()

    def integrity(self) -> str:
        """SQLite's own check of the file ("ok"); a server database checks itself."""
        if self.path is None:
            return "ok"
        with self.engine.connect() as db:
            return db.exec_driver_sql("PRAGMA integrity_check").scalar_one()


# A Correction's fields, in order
ROW = [corrections.c[name] for name in ("id", "created", "label", "predicted", "confidence", "model_version",
                                        "source", "model_input", "raw_png", "session")]


def _checked(label: int, model_input: np.ndarray, raw: np.ndarray | bytes, predicted: int | None,
             confidence: float | None) -> dict:
    """One sample's column values, or ValueError saying what is wrong with it."""
    if not 0 <= int(label) <= NOT_A_DIGIT:
        raise ValueError(f"label must be a digit 0-9, or {NOT_A_DIGIT} for not a digit; got {label!r}.")
    model_input = np.asarray(model_input)
    if model_input.shape != (INPUT_SIZE, INPUT_SIZE):
        raise ValueError(f"model_input must be {INPUT_SIZE}x{INPUT_SIZE}, got {model_input.shape}.")
    raw_png = raw if isinstance(raw, bytes) else encode_png(raw, RAW_MAX_SIDE)
    return {"label": int(label), "model_input": np.ascontiguousarray(model_input, dtype=np.uint8).tobytes(),
            "raw_png": raw_png, "predicted": None if predicted is None else int(predicted),
            "confidence": None if confidence is None else float(confidence)}


def _image(blob: bytes) -> np.ndarray:
    return np.frombuffer(bytes(blob), np.uint8).reshape(INPUT_SIZE, INPUT_SIZE)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.corrections",
                                     description="Look at, export or prune the corrections users sent from the app.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--store", default=None,
                        help="a SQLite file or a database URL (default: the configured database, "
                             "services/database.py: DIGITS_DATABASE_URL, the secrets file, else "
                             "$DIGITS_DATA_DIR/corrections.sqlite3)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("stats", help="how many samples per digit")
    commands.add_parser("sessions", help="who sent what: each app session's samples and when (no personal data)")
    export = commands.add_parser("export", help="write every sample to an .npz dataset")
    export.add_argument("output", type=Path)
    delete = commands.add_parser("delete", help="remove samples by id, or everything one session sent")
    delete.add_argument("ids", type=int, nargs="*")
    delete.add_argument("--session", help="the session id that `sessions` lists ('-' for samples without one)")
    args = parser.parse_args(argv)

    try:
        store = existing_store(args.store)
    except (DatabaseSettingError, *STORE_ERRORS) as error:
        print(f"error: the corrections store cannot be opened: {error}", file=sys.stderr)
        return 1
    if store is None:
        print(f"error: there is no corrections store at {args.store or default_store_path()}. Corrections sent "
              "from the app are stored there; set DIGITS_DATA_DIR or DIGITS_DATABASE_URL, or pass --store.",
              file=sys.stderr)
        return 1
    if args.command == "stats":
        counts = store.counts()
        print(f"{len(store)} samples in {store}")
        print("label        corrected  confirmed")
        for label in range(NOT_A_DIGIT + 1):
            print(f"{label_name(label):>11}  {counts['corrected'][label]:>9}  {counts['confirmed'][label]:>9}")
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
