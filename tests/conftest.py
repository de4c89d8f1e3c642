import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def mnist_sample():
    """50 MNIST *test* images, 5 per digit: (x uint8 (50, 28, 28), y uint8 (50,))."""
    with np.load(FIXTURES / "mnist_test_sample.npz") as arrays:
        return arrays["x"], arrays["y"]


@pytest.fixture(scope="session")
def recognizer():
    from model.inference import Recognizer

    return Recognizer()


LOOPBACK = ("127.0.0.1", "localhost", "::1")
# The parts that need more than Python, by file: run without them with the README's quick command.
MARKED_FILES = {"test_browser.py": "browser", "test_load.py": "load"}


def pytest_collection_modifyitems(items):
    """Mark the browser, load and PostgreSQL tests (pytest.ini names the marks), so -m can leave them out."""
    for item in items:
        mark = MARKED_FILES.get(item.path.name)
        if mark:
            item.add_marker(mark)
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "postgres" in getattr(item, "fixturenames", ()) or params.get("database") == "postgresql":
            item.add_marker("postgres")


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Tests never touch the network: connections anywhere but this machine fail loudly."""
    import socket

    real_connect = socket.socket.connect

    def connect(self, address):
        if self.family == socket.AF_UNIX or (isinstance(address, tuple) and address[0] in LOOPBACK):
            return real_connect(self, address)
        raise RuntimeError(f"a test tried to open a network connection to {address}")

    monkeypatch.setattr(socket.socket, "connect", connect)


@pytest.fixture(autouse=True)
def _own_data_dir(monkeypatch, tmp_path_factory):
    """Registry, runs and corrections of a test live in its own folder: never in the checkout's var/, nor in the
    folder a shell that runs the tests exports as DIGITS_DATA_DIR (a real deployment's, perhaps)."""
    monkeypatch.setenv("DIGITS_DATA_DIR", str(tmp_path_factory.mktemp("data")))
    # nor in a database the shell or a secrets file names: the default store is the folder's SQLite file
    monkeypatch.delenv("DIGITS_DATABASE_URL", raising=False)
    monkeypatch.setattr("services.database.secrets_files", lambda: [])


@pytest.fixture(scope="session")
def postgres():
    """A throwaway PostgreSQL server (tests/postgres.py). Without PostgreSQL installed its tests are skipped,
    saying so; in CI (REQUIRE_POSTGRES) that is a failure, as a missing browser is."""
    from tests.postgres import PostgresServer, server_programs

    programs = server_programs()
    if programs is None:
        if os.environ.get("REQUIRE_POSTGRES"):
            raise RuntimeError("REQUIRE_POSTGRES is set but PostgreSQL is not installed (no initdb): "
                               "apt-get install postgresql")
        pytest.skip("PostgreSQL is not installed (no initdb): the store's PostgreSQL tests are skipped. "
                    "apt-get install postgresql to run them.")
    server = PostgresServer(programs)
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path):
    """Where a store test keeps its corrections, once per backend: a SQLite file's path, or a new PostgreSQL
    database's URL (as a string, as DIGITS_DATABASE_URL gives it)."""
    if request.param == "sqlite":
        return str(tmp_path / "c.sqlite3")
    return request.getfixturevalue("postgres").new_database()


@pytest.fixture
def stand_in_model(tmp_path):
    """A real but untrained compact model with its sidecar (version 20990101-000000): it reads digits
    differently from the shipped one, so a test can tell which model answered."""
    import keras

    from model.architectures import build_model
    from model.artifacts import atomic_write_json, file_sha256, sidecar_path

    keras.utils.set_random_seed(0)
    path = tmp_path / "stand-in" / "digits.keras"
    path.parent.mkdir()
    build_model("compact").save(path)
    atomic_write_json(sidecar_path(path), {"version": "20990101-000000", "architecture": "compact",
                                           "model_sha256": file_sha256(path)})
    return path
