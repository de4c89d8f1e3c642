"""The database's tables (SQLAlchemy Core, the same for SQLite and PostgreSQL) and their ordered migrations.

The schema's version is the one row of ``schema_version``. A database is brought up to date when a store opens
it, or by ``python -m services.store migrate``: a new one is made as the schema is now, an older one migrated
step by step, all in one transaction. Stores made before the version table (SQLite files of earlier releases)
are recognised by their columns.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from model.constants import INPUT_SIZE, NOT_A_DIGIT
from model.registry import SHIPPED_VERSION
from services.database import writing

log = logging.getLogger(__name__)
metadata = sa.MetaData()

# A label is a digit 0-9, or NOT_A_DIGIT (10): the user said it is no digit at all. `created` is ISO 8601 text
# in UTC to the millisecond: it sorts in time order on every backend, and older SQLite files already hold it so.
corrections = sa.Table(
    "corrections", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("created", sa.Text, nullable=False),
    sa.Column("label", sa.Integer, sa.CheckConstraint(f"label BETWEEN 0 AND {NOT_A_DIGIT}"), nullable=False),
    sa.Column("predicted", sa.Integer, sa.CheckConstraint("predicted BETWEEN 0 AND 9")),
    sa.Column("confidence", sa.Float),
    sa.Column("model_version", sa.Text, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("model_input", sa.LargeBinary, sa.CheckConstraint(f"length(model_input) = {INPUT_SIZE ** 2}"),
              nullable=False),
    sa.Column("raw_png", sa.LargeBinary, nullable=False),
    sa.Column("session", sa.Text),
    sa.Index("corrections_label", "label"),
    sa.Index("corrections_session", "session", "created"),
    sqlite_autoincrement=True,  # an id is never used twice, even after deletes: exports and undo refer to ids
)
schema_version = sa.Table("schema_version", metadata, sa.Column("version", sa.Integer, nullable=False))

# Model versions, for deployments whose disk does not last (services.model_store): every file of a version's
# set (the .keras model, its card, LiteRT export, gate...) as bytes with its SHA-256; the local disk is a cache.
model_versions = sa.Table(
    "model_versions", metadata,
    sa.Column("version", sa.Text, primary_key=True),
    sa.Column("added", sa.Text, nullable=False),
    sa.Column("model_sha256", sa.Text, nullable=False),
)
model_files = sa.Table(
    "model_files", metadata,
    sa.Column("version", sa.Text, sa.ForeignKey("model_versions.version", ondelete="CASCADE"), primary_key=True),
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("content", sa.LargeBinary, nullable=False),
    sa.Column("sha256", sa.Text, nullable=False),
)
# The active version and the ones active before it (for rollback), newest first: one row, id 1.
registry_pointer = sa.Table(
    "registry_pointer", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("version", sa.Text, nullable=False),
    sa.Column("previous", sa.Text, nullable=False),  # a JSON list
)


def _add_session_column(db: Connection) -> None:
    """Version 1: stores made before sessions were recorded gain the column; their rows keep NULL."""
    db.execute(sa.text("ALTER TABLE corrections ADD COLUMN session TEXT"))


def _allow_not_a_digit(db: Connection) -> None:
    """Version 2: a label may be NOT_A_DIGIT. A CHECK cannot be changed in place on SQLite, so the rows are
    copied, ids and all, into a table made as it is now, which then takes the old one's name."""
    new = corrections.to_metadata(sa.MetaData(), name="corrections_new")
    new.indexes.clear()  # their names are the old table's until it is dropped
    new.create(db)
    columns = [column.name for column in corrections.columns]
    db.execute(new.insert().from_select(columns, sa.select(*[corrections.c[name] for name in columns])))
    corrections.drop(db)
    db.execute(sa.text("ALTER TABLE corrections_new RENAME TO corrections"))
    for index in corrections.indexes:
        index.create(db)


# Training jobs of every server of a deployment (services.job_lease): one row per run, and one lease row (id 1)
# that a server holds while its run trains, renewed by its heartbeat; at most one holder, so one training.
training_runs = sa.Table(
    "training_runs", metadata,
    sa.Column("run_id", sa.Text, primary_key=True),
    sa.Column("server", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),  # training | done | failed | cancelled
    sa.Column("started", sa.Float, nullable=False),
    sa.Column("heartbeat", sa.Float, nullable=False),
    sa.Column("ended", sa.Float),
    sa.Column("message", sa.Text, nullable=False, default=""),
    sa.Column("progress", sa.Text),  # the worker's last progress (training.progress), as JSON
)
training_lease = sa.Table(
    "training_lease", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("run_id", sa.Text),  # None: free
    sa.Column("server", sa.Text),
    sa.Column("heartbeat", sa.Float),
)


def _add_model_tables(db: Connection) -> None:
    """Version 3: model versions, their files and the active pointer can live in the database."""
    for table in (model_versions, model_files, registry_pointer):
        table.create(db, checkfirst=True)


def _add_training_tables(db: Connection) -> None:
    """Version 4: training runs and the deployment's one training lease live in the database."""
    for table in (training_runs, training_lease):
        table.create(db, checkfirst=True)


# Ordered: a database at version N runs every migration after its Nth.
MIGRATIONS = (_add_session_column, _allow_not_a_digit, _add_model_tables, _add_training_tables)
SCHEMA_VERSION = len(MIGRATIONS)


class SchemaError(RuntimeError):
    """The database's schema is newer than this release's: nothing was changed."""


def version_of(db: Connection) -> int | None:
    """The schema version of a database; None for an empty one."""
    inspector = sa.inspect(db)
    if inspector.has_table("schema_version"):
        return db.execute(sa.select(schema_version.c.version)).scalar_one()
    if not inspector.has_table("corrections"):
        return None
    return 1 if "session" in {column["name"] for column in inspector.get_columns("corrections")} else 0


def migrate(engine: Engine) -> tuple[int | None, int]:
    """Bring the database to SCHEMA_VERSION; returns (version before, version now). Two processes migrating at
    once: one does it, the other finds it done."""
    try:
        return _migrate(engine)
    except sa.exc.DBAPIError:
        with engine.connect() as db:
            if version_of(db) == SCHEMA_VERSION:  # another process migrated it meanwhile
                return SCHEMA_VERSION, SCHEMA_VERSION
        raise


def _migrate(engine: Engine) -> tuple[int | None, int]:
    with writing(engine) as db, db.begin():
        version = version_of(db)
        if version is not None and version > SCHEMA_VERSION:
            raise SchemaError(f"The database has schema version {version}, newer than this release's "
                              f"{SCHEMA_VERSION}: it was written by a newer release. Upgrade; nothing was changed.")
        if version == SCHEMA_VERSION:
            return version, version
        if version is None:
            metadata.create_all(db)
        else:
            for migration in MIGRATIONS[version:]:
                log.info("Migrating the database: %s", migration.__doc__.splitlines()[0])
                migration(db)
            schema_version.create(db, checkfirst=True)
        if db.execute(sa.select(registry_pointer.c.id)).first() is None:  # the one row, for writers to lock
            db.execute(registry_pointer.insert().values(id=1, version=SHIPPED_VERSION, previous="[]"))
        if db.execute(sa.select(training_lease.c.id)).first() is None:
            db.execute(training_lease.insert().values(id=1))
        db.execute(schema_version.delete())
        db.execute(schema_version.insert().values(version=SCHEMA_VERSION))
        return version, SCHEMA_VERSION
