"""Model versions in the database: for a deployment whose disk does not last, or several servers.

`DatabaseRegistry` is model.registry.Registry with the versions, their files and the active pointer kept in
the database (services.schema: model_versions, model_files, registry_pointer). The local folder is only a
cache: a version not in it is fetched, every file checked against its SHA-256, and handed to model/ as a path,
as a file registry would (model/ never sees the database). Changes of the active version take the pointer
row's lock in one transaction, so servers sharing the database see the old or the new version, never a mix.

Reading never waits on the database: when it does not answer, the active version is the one last read (kept
beside the cache), from the cache, and the versions listed are the cached ones; a change (add, activate, roll
back, delete) says plainly that nothing was changed.

`open_registry()` is the registry to use: this one when the configured database is PostgreSQL, the files in
var/ otherwise (the default, unchanged).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL

from model.artifacts import ModelFileError, atomic_write_json
from model.card import checked_version
from model.registry import SHIPPED_VERSION, ModelVersion, Registry, VersionExistsError, data_dir
from services.database import STORE_ERRORS, create_engine, database_url, store_problem, writing
from services.schema import migrate, model_files, model_versions, registry_pointer

CACHE_FOLDER = "model-cache"  # under the data directory: versions fetched from the database


class DatabaseRegistry(Registry):
    def __init__(self, url: URL, cache: Path | None = None):
        super().__init__(cache or data_dir() / CACHE_FOLDER)
        self.engine = create_engine(url)
        self._db = None  # the transaction holding the pointer's lock, inside _locked()
        self._mirrored = super()._read_pointer()  # the last pointer read, as kept beside the cache
        self._migrated = False
        with contextlib.suppress(*STORE_ERRORS):  # down now: served from the cache, migrated before a change
            self._migrate()

    def _migrate(self) -> None:
        if not self._migrated:
            migrate(self.engine)
            self._migrated = True

    @contextlib.contextmanager
    def _locked(self):
        try:
            self._migrate()
            with super()._locked(), writing(self.engine) as db, db.begin():
                db.execute(sa.select(registry_pointer).where(registry_pointer.c.id == 1).with_for_update())
                self._db = db
                try:
                    yield
                finally:
                    self._db = None
        except STORE_ERRORS as error:
            raise ModelFileError(f"The model versions' database does not answer ({store_problem(error)}); nothing "
                                 "was changed. Try again in a moment.") from None

    def _read_pointer(self) -> dict:
        query = sa.select(registry_pointer.c.version, registry_pointer.c.previous).where(registry_pointer.c.id == 1)
        if self._db is not None:  # inside a change: the locked row
            row = self._db.execute(query).one()
            return {"version": row.version, "previous": json.loads(row.previous)}
        try:
            with self.engine.connect() as db:
                row = db.execute(query).one()
        except STORE_ERRORS:
            return super()._read_pointer()  # the last one read: reading goes on while the database is down
        pointer = {"version": row.version, "previous": json.loads(row.previous)}
        if pointer != self._mirrored:  # kept beside the cache only when it changes: this runs on every stroke
            self.root.mkdir(parents=True, exist_ok=True)
            atomic_write_json(self._pointer, pointer)
            self._mirrored = pointer
        return pointer

    def _write_pointer(self, pointer: dict) -> None:
        self._db.execute(registry_pointer.update().where(registry_pointer.c.id == 1).values(
            version=pointer["version"], previous=json.dumps(pointer.get("previous", []))))

    def _stored(self) -> list[str] | None:
        """The versions in the database, newest first; None when it does not answer."""
        try:
            with self.engine.connect() as db:
                return list(db.execute(sa.select(model_versions.c.version)
                                       .order_by(model_versions.c.version.desc())).scalars())
        except STORE_ERRORS:
            return None

    def _path(self, version: str) -> Path:
        path = super()._path(version)
        if version != SHIPPED_VERSION and not path.exists():
            self._fetch(version, path.parent)
        return path

    def _fetch(self, version: str, folder: Path) -> None:
        """A version's files from the database into the cache, each checked; nothing is cached half-written."""
        try:
            with self.engine.connect() as db:
                rows = db.execute(sa.select(model_files.c.name, model_files.c.content, model_files.c.sha256)
                                  .where(model_files.c.version == version)).all()
        except STORE_ERRORS as error:
            raise ModelFileError(f"Model version {version} is not in this server's cache, and the database does not "
                                 f"answer ({store_problem(error)}).") from None
        if not rows:
            return  # not stored: get() says so
        staging = folder.parent / f".{version}.fetching-{uuid.uuid4().hex[:8]}"
        staging.mkdir(parents=True)
        try:
            for name, content, sha256 in rows:
                content = bytes(content)
                if hashlib.sha256(content).hexdigest() != sha256:
                    raise ModelFileError(f"The stored file {name} of version {version} does not match its SHA-256: "
                                         "the database copy is damaged. Delete the version and add it again.")
                (staging / Path(name).name).write_bytes(content)
            with contextlib.suppress(OSError):  # another process fetched it meanwhile: theirs is the same
                os.replace(staging, folder)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def versions(self) -> list[ModelVersion]:
        stored = self._stored()
        if stored is None:  # the database does not answer: what this server has
            return super().versions()
        found = []
        for version in stored:
            with contextlib.suppress(ModelFileError, ValueError):
                found.append(self.get(version))
        if self.shipped.exists():
            found.append(self.get(SHIPPED_VERSION))
        return found

    def add(self, model_path: Path, gate_from: Path | None = None) -> ModelVersion:
        """As Registry.add (the files are checked and staged in the cache), then stored in the database: every file
        of the set in one transaction. The same model again returns the stored one; another one under a taken
        name is refused."""
        added = super().add(model_path, gate_from)
        card = added.card
        with self._locked():
            db = self._db
            stored = db.execute(sa.select(model_versions.c.model_sha256)
                                .where(model_versions.c.version == added.version)).scalar_one_or_none()
            if stored is not None:
                if stored != card.model_sha256:
                    raise VersionExistsError(f"Model version {added.version} already exists in the database and "
                                             "holds a different model. Nothing was replaced.")
                return added
            db.execute(model_versions.insert().values(
                version=checked_version(added.version), model_sha256=card.model_sha256,
                added=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")))
            for file in sorted(added.path.parent.iterdir()):
                content = file.read_bytes()
                db.execute(model_files.insert().values(version=added.version, name=file.name, content=content,
                                                       sha256=hashlib.sha256(content).hexdigest()))
        return added

    def delete(self, version: str) -> None:
        if version == SHIPPED_VERSION:
            raise ValueError("The shipped model is part of the code and cannot be deleted.")
        self.get(version)  # says so when there is none
        with self._locked():
            pointer = self._read_pointer()
            if pointer["version"] == version:
                raise ValueError(f"{version} is the active model: activate or roll back to another one first.")
            self._db.execute(model_files.delete().where(model_files.c.version == version))
            self._db.execute(model_versions.delete().where(model_versions.c.version == version))
            self._write_pointer({**pointer, "previous": [v for v in pointer["previous"] if v != version]})
        shutil.rmtree(self.root / version, ignore_errors=True)


def open_registry() -> Registry:
    """The registry of this deployment: in the database when that is PostgreSQL, else the files in var/."""
    url = database_url()
    return DatabaseRegistry(url) if url.get_backend_name() == "postgresql" else Registry()

