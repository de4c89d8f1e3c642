"""A throwaway PostgreSQL server for the store's tests: Debian's `postgresql` package, a cluster in a temporary
folder, listening on a free loopback port, trusted local logins, gone when the tests end.

`apt-get install postgresql` puts the server's programs in /usr/lib/postgresql/<version>/bin; initdb refuses
to run as root, so as root the cluster is made and run as the package's `postgres` user.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

USER = "digits"


def server_programs() -> Path | None:
    """The folder with initdb and pg_ctl, or None when PostgreSQL is not installed."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(versions[-1]).parent if versions else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PostgresServer:
    """One cluster: start, stop (as a database restart does) and a fresh database per test."""

    def __init__(self, programs: Path, durable: bool = False):
        # its own folder in the system's temporary one: a test's tmp_path is private to root, and the server's
        # user must reach its files
        self.folder, self.programs = Path(tempfile.mkdtemp(prefix="digits-postgres-")), programs
        self.data, self.log = self.folder / "data", self.folder / "server.log"
        self.port = _free_port()
        self.durable = durable  # fsync on, as a real server (a bench); off for tests, which need no power-cut safety
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            shutil.chown(self.folder, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", USER, "--auth=trust", "-E", "UTF8", "--no-sync")

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.programs / program), *args]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)

    def start(self) -> None:
        fsync = "on" if self.durable else "off"
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync={fsync}"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.log), "-w", "start")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def close(self) -> None:
        """Stop it if it runs, and remove its files (hundreds of MB), even after a failed start or test."""
        try:
            if self.running():
                self.stop()
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{USER}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A new empty database's URL: every test starts from nothing."""
        import sqlalchemy as sa

        name = f"test_{secrets.token_hex(6)}"
        engine = sa.create_engine(self.url(), isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
        with engine.connect() as db:
            db.execute(sa.text(f"CREATE DATABASE {name}"))
        engine.dispose()
        return self.url(name)
