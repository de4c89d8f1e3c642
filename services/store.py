"""python -m services.store: bring the database up to date, or move an existing var/ into PostgreSQL.

    python -m services.store migrate                 # the configured database (services.database)
    python -m services.store copy --to postgresql+psycopg://user:password@host/digits

`copy` moves an existing var/ into an empty database: the corrections of its SQLite store (default: the data
directory's; --from FILE), in one transaction, then counts and compares every row (its images by SHA-256) on
both sides (ids are the new database's own); then every model version of var/models with all its files, and
the active pointer with its history, each file checked when it is read back. Training jobs stay files.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from model.artifacts import ModelFileError
from model.registry import SHIPPED_VERSION, Registry
from services.corrections import CorrectionStore, default_store_path
from services.database import STORE_ERRORS, DatabaseSettingError, create_engine, database_url, describe, writing
from services.model_store import DatabaseRegistry
from services.schema import SchemaError, corrections, migrate

COPIED = [column for column in corrections.columns if column.name != "id"]
BATCH = 500  # rows read and written at a time: a store of photos does not have to fit in memory


def _fingerprints(engine) -> list[tuple]:
    """Every row as comparable values, images by SHA-256, in a stable order."""
    with engine.connect() as db:
        rows = db.execute(sa.select(*COPIED)).all()
    return sorted(tuple(hashlib.sha256(bytes(v)).hexdigest() if isinstance(v, (bytes, memoryview)) else v
                        for v in row) for row in rows)


def copy(source: CorrectionStore, target: CorrectionStore) -> int:
    """Copy every correction from source into an empty target; returns how many, after checking them all."""
    count = len(source)
    with writing(target.engine) as into, into.begin():
        present = into.execute(sa.select(sa.func.count()).select_from(corrections)).scalar_one()
        if present:
            raise ValueError(f"{target} already holds {present} corrections: copy into an empty database, so that "
                             "nothing is stored twice. Nothing was copied.")
        with source.engine.connect() as read:
            rows = read.execution_options(stream_results=True).execute(sa.select(*COPIED).order_by(corrections.c.id))
            for batch in rows.partitions(BATCH):
                into.execute(corrections.insert(), [row._asdict() for row in batch])
    if len(target) != count or _fingerprints(source.engine) != _fingerprints(target.engine):
        raise RuntimeError(f"The copy in {target} does not match {source} ({len(target)} of {count} rows): "
                           "check the target database; the source is untouched.")
    return count


def copy_versions(source: Registry, target: DatabaseRegistry) -> int:
    """Every stored version (oldest first) and the active pointer; returns how many versions, after reading each
    back from the database (every file against its SHA-256)."""
    stored = [v for v in reversed(source.versions()) if v.version != SHIPPED_VERSION]
    for version in stored:
        target.add(version.path)
    with target._locked():
        target._write_pointer(source._read_pointer())
    with tempfile.TemporaryDirectory() as fresh:  # read back into an empty cache: from the database, not the disk
        check = DatabaseRegistry(target.engine.url, Path(fresh))
        for version in stored:
            if check.get(version.version).card.model_sha256 != version.card.model_sha256:
                raise RuntimeError(f"Version {version.version} does not read back as it was stored.")
        if check.active().version != source.active().version:
            raise RuntimeError("The active version does not read back as it was stored.")
    return len(stored)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.store", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("migrate", help="bring the database's schema up to date")
    up.add_argument("--url", help="a database URL (default: the configured database)")
    move = commands.add_parser("copy", help="copy a SQLite store's corrections into an empty database")
    move.add_argument("--to", required=True, help="the target database URL")
    move.add_argument("--from", dest="source", type=Path, default=None,
                      help="the SQLite store (default: $DIGITS_DATA_DIR/corrections.sqlite3)")
    args = parser.parse_args(argv)
    try:
        if args.command == "migrate":
            url = make_url(args.url) if args.url else database_url()
            before, now = migrate(create_engine(url))
            print(f"{describe(url)}: schema version {'none (new)' if before is None else before} -> {now}")
            return 0
        source_path = args.source or default_store_path()
        if not source_path.exists():
            print(f"error: there is no SQLite store at {source_path} to copy.", file=sys.stderr)
            return 1
        count = copy(CorrectionStore(source_path), CorrectionStore(args.to))
        versions = copy_versions(Registry(), DatabaseRegistry(make_url(args.to)))
        print(f"Copied {count} corrections from {source_path} and {versions} model versions with the active one "
              f"to {describe(make_url(args.to))}; every one checked.")
        return 0
    except (DatabaseSettingError, SchemaError, ModelFileError, ValueError, RuntimeError, sa.exc.ArgumentError,
            *STORE_ERRORS) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
