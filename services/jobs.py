"""Background training for the app: one worker process per server, state on disk.

The app must keep answering while a model trains, so training runs as its own
process (``python -m training --config <run>/config.json``), at a lower CPU
priority than the app. The job is handed a training config (training.config),
written to the run's folder as JSON; its progress and outcome live in files
under ``<data dir>/runs/``, so a reloaded page, another session, or a
restarted app all see the same job. The worker ends itself if this server dies.

Servers sharing a PostgreSQL database also share its training lease (services.job_lease): one training in
the whole deployment, a run another server trains is shown as such, and a dead server's run is marked failed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from model.artifacts import atomic_write_json
from model.card import ModelCard
from model.registry import data_dir, new_name
from services.database import STORE_ERRORS, create_engine, database_url
from services.job_lease import HEARTBEAT_SECONDS, LeaseTaken, TrainingLease
from services.schema import migrate

ROOT = Path(__file__).resolve().parents[1]
PARENT_VARIABLE = "DIGITS_TRAINING_PARENT"  # the worker ends itself when this process (its server) is gone


class TrainingJobError(RuntimeError):
    """A training could not be started; the message says why and what to do."""


class TrainingAlreadyRunning(TrainingJobError):
    pass


def read_progress(path: Path) -> dict | None:
    """What training.progress.ProgressFile last wrote, or None."""
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


@dataclasses.dataclass(frozen=True)
class JobState:
    run_id: str
    status: str  # training | evaluating | done | failed | cancelled
    run_dir: Path
    progress: dict
    started: float
    message: str = ""
    resolved: str | None = None  # what a user decided about a finished model: promoted | kept
    server: str | None = None  # another server that trains it (a shared database); None: this one

    @property
    def model_path(self) -> Path:
        return self.run_dir / "digits.keras"

    @property
    def running(self) -> bool:
        return self.status in ("starting", "training", "evaluating")

    def card(self) -> ModelCard | None:
        return ModelCard.read(self.model_path) if self.status == "done" else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:  # a finished child that nobody has reaped yet is a zombie, not alive
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return True


class TrainingJobs:
    """Start, watch and cancel the server's one training job."""

    def __init__(self, runs_dir: Path | None = None, python: str = sys.executable, lease: TrainingLease | None = None):
        self.runs_dir = Path(runs_dir) if runs_dir else data_dir() / "runs"
        self.python = python
        self.lease = lease
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._current = self.runs_dir / "current.json"

    def _record(self) -> dict | None:
        try:
            return json.loads(self._current.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def state(self) -> JobState | None:
        record = self._record()
        if (record is None or record.get("status") not in ("starting", "training", "evaluating")) and self.lease:
            try:
                remote = self.lease.elsewhere()
            except STORE_ERRORS:  # the database does not answer: what this server knows
                remote = None
            if remote is not None:
                return JobState(remote.run_id, "training", self.runs_dir / remote.run_id, remote.progress,
                                remote.started, f"on another server ({remote.server})", server=remote.server)
        if record is None:
            return None
        run_dir = Path(record["run_dir"])
        progress = read_progress(run_dir / "progress.json") or {}
        status = record.get("status", "starting")
        if status in ("starting", "training", "evaluating"):
            status = self._settle(record, run_dir, progress)
        return JobState(record["run_id"], status, run_dir, progress, record["started"], record.get("message", ""),
                        record.get("resolved"))

    def _settle(self, record: dict, run_dir: Path, progress: dict) -> str:
        """Find out whether a job that was running has ended, and how."""
        returncode = None
        if self._process is not None and self._process.pid == record["pid"]:
            returncode = self._process.poll()
            if returncode is None:
                return progress.get("status", "starting")
        elif _alive(record["pid"]):
            return progress.get("status", "starting")
        if (run_dir / "digits.keras").exists() and (run_dir / "digits.json").exists() and returncode in (0, None):
            status, message = "done", ""
        else:
            status, message = "failed", self._log_tail(run_dir)
        record.update(status=status, message=message, ended=time.time())
        atomic_write_json(self._current, record)
        self._release(record["run_id"], status, message)
        return status

    def _release(self, run_id: str, status: str, message: str) -> None:
        if self.lease is not None:
            try:
                self.lease.release(run_id, status, message)
            except STORE_ERRORS:  # the lease expires by itself when the heartbeat stops
                pass

    def _heartbeat(self, run_id: str, process: subprocess.Popen) -> None:
        """Renew the deployment's lease while the worker runs, then settle the job (which releases it)."""
        while process.poll() is None:
            try:
                self.lease.beat(run_id, read_progress(self.runs_dir / run_id / "progress.json"))
            except STORE_ERRORS:
                pass  # the database is back before the timeout, or the run is marked failed: said there
            time.sleep(HEARTBEAT_SECONDS)
        self.state()

    @staticmethod
    def _log_tail(run_dir: Path, lines: int = 8) -> str:
        try:
            text = (run_dir / "train.log").read_text(errors="replace").strip().splitlines()
        except FileNotFoundError:
            return "the training process ended without a log"
        errors = [line for line in text if line.startswith("error:") or "Error" in line]
        return "\n".join((errors or text)[-lines:])

    def start(self, config) -> JobState:
        """Train with this config (a training.config.TrainConfig) in the background.

        The run's folder decides where the model and its progress go; every finished model is
        added to the registry, not activated."""
        with self._lock:
            current = self.state()
            if current is not None and current.running:
                raise TrainingAlreadyRunning(
                    f"A training run ({current.run_id}) is already running on this server; "
                    "wait for it to finish or cancel it.")
            run_id = new_name()
            if self.lease is not None:
                try:
                    self.lease.acquire(run_id)
                except LeaseTaken as error:
                    raise TrainingAlreadyRunning(str(error)) from None
                except STORE_ERRORS as error:
                    raise TrainingJobError(f"The database that keeps one training per deployment does not answer "
                                           f"({error.__class__.__name__}); nothing was started. Try again in a "
                                           "moment.") from None
            run_dir = self.runs_dir / run_id
            run_dir.mkdir(parents=True)  # exist_ok=False: a run never reuses another's folder and progress
            config = dataclasses.replace(config, output=run_dir / "digits.keras",
                                         progress_file=run_dir / "progress.json", register=True)
            atomic_write_json(run_dir / "config.json", config.to_json())
            command = ["nice", "-n", "10", self.python, "-m", "training", "--config", str(run_dir / "config.json")]
            with open(run_dir / "train.log", "w") as log:  # the worker has its own copy once it started
                try:
                    self._process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                                     stdin=subprocess.DEVNULL, start_new_session=True,
                                                     env={**os.environ, PARENT_VARIABLE: str(os.getpid())})
                except OSError as error:
                    self._release(run_id, "failed", f"the worker could not be started: {error}")
                    raise TrainingJobError(f"The training worker could not be started ({error}); nothing is "
                                           f"running. Check that {self.python} and `nice` can be run, then try "
                                           "again.") from error
            record = {"run_id": run_id, "pid": self._process.pid, "run_dir": str(run_dir), "started": time.time(),
                      "status": "starting", "command": command}
            atomic_write_json(self._current, record)
            if self.lease is not None:
                threading.Thread(target=self._heartbeat, args=(run_id, self._process), daemon=True,
                                 name=f"training-heartbeat-{run_id}").start()
        return self.state()

    def cancel(self) -> None:
        with self._lock:
            record = self._record()
            if record is None or record.get("status") not in ("starting", "training", "evaluating"):
                return
            # Recorded before the signal: another process that looks meanwhile sees a cancelled job, not a
            # worker that died (which it would mark failed).
            record.update(status="cancelled", message="cancelled by a user", ended=time.time())
            atomic_write_json(self._current, record)
            self._release(record["run_id"], "cancelled", "cancelled by a user")
            try:
                os.killpg(record["pid"], signal.SIGTERM)
            except ProcessLookupError:
                pass
            if self._process is not None and self._process.pid == record["pid"]:
                try:
                    self._process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(record["pid"], signal.SIGKILL)
                    self._process.wait()

    def resolve(self, outcome: str) -> None:
        """Record what was done with the finished model, so no session offers it again."""
        with self._lock:
            record = self._record()
            if record is not None:
                record["resolved"] = outcome
                atomic_write_json(self._current, record)

    def wait(self, timeout: float = 600, poll: float = 0.5) -> JobState | None:
        """Block until the job ends (for tests and scripts)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.state()
            if state is None or not state.running:
                return state
            time.sleep(poll)
        raise TimeoutError(f"training did not finish within {timeout:.0f} s")


def open_jobs() -> TrainingJobs:
    """This server's training jobs; with a PostgreSQL database, under the deployment's one training lease."""
    url = database_url()
    if url.get_backend_name() != "postgresql":
        return TrainingJobs()
    engine = create_engine(url)
    with contextlib.suppress(*STORE_ERRORS):  # down now: a start says so; the schema is made when it is back
        migrate(engine)
    return TrainingJobs(lease=TrainingLease(engine))
