"""One training per deployment, enforced by the database, for servers that share one (PostgreSQL).

A server that starts a training takes the deployment's lease (services.schema.training_lease, one row) in a
transaction that locks that row, records the run in training_runs, and renews the lease with a heartbeat while
its worker runs. Another server that wants to train is told who trains; one that looks sees the run and says a
training is running. A server that dies (SIGKILL, a lost machine) stops its heartbeat: after TIMEOUT the run is
marked failed, saying why, and the lease is free for the next training. Nothing else is touched.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import time

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from services.database import writing
from services.schema import training_lease, training_runs

HEARTBEAT_SECONDS = 2.0  # how often a training server renews its lease
# A lease not renewed for this long belongs to a server that died (DIGITS_TRAINING_TIMEOUT, seconds).
TIMEOUT_SECONDS = float(os.environ.get("DIGITS_TRAINING_TIMEOUT", "30"))


def this_server() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclasses.dataclass(frozen=True)
class RemoteRun:
    """A run another server holds the lease for."""

    run_id: str
    server: str
    started: float
    progress: dict  # what its worker last reported: epoch, epochs, batch, steps, logs


class LeaseTaken(RuntimeError):
    """Another server trains; the message says which and since when."""


class TrainingLease:
    def __init__(self, engine: Engine, server: str | None = None, timeout: float | None = None):
        self.engine, self.server = engine, server or this_server()
        self.timeout = TIMEOUT_SECONDS if timeout is None else timeout

    def _locked_row(self, db):
        return db.execute(sa.select(training_lease).where(training_lease.c.id == 1).with_for_update()).one()

    def _expire(self, db, row, now: float) -> None:
        """A holder whose heartbeat stopped: its run failed, the lease is free."""
        db.execute(training_runs.update().where(training_runs.c.run_id == row.run_id,
                                                training_runs.c.status == "training").values(
            status="failed", ended=now,
            message=f"its server ({row.server}) stopped answering: no heartbeat for {now - row.heartbeat:.0f} s"))
        db.execute(training_lease.update().where(training_lease.c.id == 1).values(run_id=None, server=None,
                                                                                    heartbeat=None))

    def acquire(self, run_id: str) -> None:
        """Take the lease for a new run, or LeaseTaken naming the server that trains."""
        now = time.time()
        with writing(self.engine) as db, db.begin():
            row = self._locked_row(db)
            if row.run_id is not None and now - row.heartbeat <= self.timeout:
                started = db.execute(sa.select(training_runs.c.started)
                                     .where(training_runs.c.run_id == row.run_id)).scalar_one_or_none() or now
                raise LeaseTaken(f"A training run ({row.run_id}) is already running on server {row.server}, started "
                                 f"{time.strftime('%H:%M:%S', time.localtime(started))}; one training runs at a "
                                 "time in this deployment. Wait for it to finish or cancel it there.")
            if row.run_id is not None:
                self._expire(db, row, now)
            db.execute(training_lease.update().where(training_lease.c.id == 1).values(
                run_id=run_id, server=self.server, heartbeat=now))
            db.execute(training_runs.insert().values(run_id=run_id, server=self.server, status="training",
                                                     started=now, heartbeat=now, message=""))

    def beat(self, run_id: str, progress: dict | None = None) -> bool:
        """Renew the lease, with the run's progress; False if this run no longer holds it."""
        now = time.time()
        brief = {key: progress[key] for key in ("status", "epoch", "epochs", "batch", "steps") if key in progress} \
            if progress else {}
        with writing(self.engine) as db, db.begin():
            held = db.execute(training_lease.update().where(training_lease.c.id == 1,
                                                            training_lease.c.run_id == run_id)
                              .values(heartbeat=now)).rowcount == 1
            db.execute(training_runs.update().where(training_runs.c.run_id == run_id).values(
                heartbeat=now, progress=json.dumps(brief)))
        return held

    def release(self, run_id: str, status: str, message: str = "") -> None:
        with writing(self.engine) as db, db.begin():
            db.execute(training_runs.update().where(training_runs.c.run_id == run_id).values(
                status=status, ended=time.time(), message=message))
            db.execute(training_lease.update().where(training_lease.c.id == 1, training_lease.c.run_id == run_id)
                       .values(run_id=None, server=None, heartbeat=None))

    def elsewhere(self) -> RemoteRun | None:
        """The run another server trains now, if any (one whose server died is marked failed on the way)."""
        now = time.time()
        with writing(self.engine) as db, db.begin():
            row = self._locked_row(db)
            if row.run_id is None or row.server == self.server:
                return None
            if now - row.heartbeat > self.timeout:
                self._expire(db, row, now)
                return None
            run = db.execute(sa.select(training_runs.c.started, training_runs.c.progress)
                             .where(training_runs.c.run_id == row.run_id)).first()
            return RemoteRun(row.run_id, row.server, run.started if run else now,
                             json.loads(run.progress) if run and run.progress else {})

    def run(self, run_id: str) -> dict | None:
        """A run's record: server, status, times and message."""
        with self.engine.connect() as db:
            row = db.execute(sa.select(training_runs).where(training_runs.c.run_id == run_id)).first()
        return row._asdict() if row else None
