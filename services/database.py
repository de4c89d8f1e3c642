"""Which database the app's services use, and a SQLAlchemy engine for it.

SQLite, one file in the data directory (``var/corrections.sqlite3``), is the default: nothing to set up, and
right for one server on a disk that lasts. A host whose disk is wiped on restart, or several app servers,
use PostgreSQL, named by

1. ``DIGITS_DATABASE_URL`` (``postgresql+psycopg://user:password@host:5432/digits``; ``postgresql://`` is
   taken to mean the psycopg 3 driver), or
2. ``[connections.digits]`` in ``.streamlit/secrets.toml`` (Streamlit's convention for ``st.connection``):
   a ``url``, or ``dialect``, ``host``, ``port``, ``database``, ``username`` and ``password``.

A secrets file that exists but cannot be read names no database: it is an error, said plainly, never a quiet
fall back to a local file that the next restart would wipe. Queries are SQLAlchemy Core, the same for both;
only the connection's settings differ (SQLite's journal, durability and write lock).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url

from model.registry import ROOT, data_dir

URL_VARIABLE = "DIGITS_DATABASE_URL"
SECRETS_SECTION = "digits"  # [connections.digits]
SQLITE_FILE = "corrections.sqlite3"
BUSY_TIMEOUT_SECONDS = 60.0  # SQLite: a writer waits this long for another's lock
CONNECT_TIMEOUT_SECONDS = 10  # PostgreSQL: a server that does not answer is an error after this long
WRITE = "digits_write"  # the execution option of a connection that will write (see writing())


# What a database that is down or restarting raises: said plainly where it happens, nothing half-stored.
STORE_ERRORS = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError)


def store_problem(error: Exception) -> str:
    """What went wrong with the database, in one line (a driver's message, without SQLAlchemy's SQL and links)."""
    return (str(getattr(error, "orig", None) or error).strip().splitlines() or [type(error).__name__])[0]


class DatabaseSettingError(RuntimeError):
    """The database setting names no usable database; the message says what is wrong and how to fix it."""


def secrets_files() -> list[Path]:
    """Where Streamlit reads secrets from, the user's file first (the project's overrides it)."""
    return [Path.home() / ".streamlit" / "secrets.toml", ROOT / ".streamlit" / "secrets.toml"]


def _from_secrets() -> URL | None:
    section = None
    for path in secrets_files():
        if not path.exists():
            continue
        try:
            secrets = tomllib.loads(path.read_text())
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
            raise DatabaseSettingError(f"The secrets file {path} could not be read ({error}), so the database it "
                                       "may name is unknown. Fix or remove the file.") from None
        section = secrets.get("connections", {}).get(SECRETS_SECTION, section)
    if section is None:
        return None
    if not isinstance(section, dict):
        raise DatabaseSettingError(f"[connections.{SECRETS_SECTION}] in the secrets file must be a table with a "
                                   "url, or dialect, host, port, database, username and password.")
    if "url" in section:
        return make_url(str(section["url"]))
    fields = {"host": section.get("host"), "port": section.get("port"), "database": section.get("database"),
              "username": section.get("username"), "password": section.get("password")}
    return URL.create(str(section.get("dialect", "postgresql")), **fields)


def database_url(sqlite_path: Path | None = None) -> URL:
    """The database to use: DIGITS_DATABASE_URL, else the secrets file's, else SQLite in the data directory."""
    try:
        url = make_url(os.environ[URL_VARIABLE]) if os.environ.get(URL_VARIABLE) else _from_secrets()
    except sa.exc.ArgumentError as error:
        raise DatabaseSettingError(f"The database URL is not one ({error}). Expected e.g. "
                                   "postgresql+psycopg://user:password@host:5432/digits.") from None
    if url is None:
        return sqlite_url(sqlite_path or data_dir() / SQLITE_FILE)
    if url.drivername == "postgresql":  # the driver this project pins
        url = url.set(drivername="postgresql+psycopg")
    if url.get_backend_name() not in ("postgresql", "sqlite"):
        raise DatabaseSettingError(f"{url.get_backend_name()} is not supported: use PostgreSQL or SQLite.")
    return url


def sqlite_url(path: Path) -> URL:
    return URL.create("sqlite", database=str(Path(path)))


def describe(url: URL) -> str:
    """The URL as it may be shown and logged: without its password."""
    return url.render_as_string(hide_password=True)


def create_engine(url: URL, timeout: float = BUSY_TIMEOUT_SECONDS) -> Engine:
    """An engine whose every transaction is one unit of work: SQLite in WAL mode with synchronous=FULL (a commit
    survives a power cut) and the write lock taken at BEGIN; PostgreSQL checked before each use (a restarted
    server's dead connections are replaced, not handed out)."""
    if url.get_backend_name() == "sqlite":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": timeout}, poolclass=sa.pool.NullPool)

        @sa.event.listens_for(engine, "connect")
        def _settings(connection, _record):
            connection.isolation_level = None  # the driver's own BEGIN would defer the lock: we issue ours
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")

        @sa.event.listens_for(engine, "begin")
        def _begin(connection):  # a writer takes the lock now, not halfway through; a reader never blocks
            connection.exec_driver_sql("BEGIN IMMEDIATE" if connection.get_execution_options().get(WRITE)
                                       else "BEGIN")

        return engine
    return sa.create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS})


def writing(engine: Engine):
    """A transaction that writes: all of it or none, and on SQLite holding the write lock from its start."""
    return engine.connect().execution_options(**{WRITE: True})
