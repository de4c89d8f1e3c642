"""run.sh, the README's two commands: what it hands to Streamlit and pytest (issue 33, item 15).

A stand-in virtual environment whose python prints its arguments, stamped as set up, so nothing is installed."""

import hashlib
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def echo_venv(tmp_path):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    python.write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
    python.chmod(0o755)
    pins = (ROOT / "requirements.txt").read_bytes() + (ROOT / "requirements-dev.txt").read_bytes()
    (venv / ".requirements.sha256").write_text(hashlib.sha256(pins).hexdigest() + "\n")
    return venv


def _run(venv, *args):
    done = subprocess.run(["bash", str(ROOT / "run.sh"), *args], capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "VENV": str(venv)})
    assert done.returncode == 0, done.stderr
    return done.stdout.split("\n")[:-1]


@pytest.mark.parametrize("args", [["--server.port", "8600"], ["--", "--server.port", "8600"]])
def test_streamlit_options_reach_streamlit_with_or_without_a_double_dash(echo_venv, args):
    assert _run(echo_venv, "app", *args) == ["-m", "streamlit", "run", "app.py", "--server.port", "8600"]


def test_test_arguments_reach_pytest(echo_venv):
    assert _run(echo_venv, "test", "-m", "not slow") == ["-m", "pytest", "-m", "not slow"]


def test_an_unknown_command_says_how_to_use_it(echo_venv):
    done = subprocess.run(["bash", str(ROOT / "run.sh"), "serve"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "usage: bash run.sh {app|test|setup}" in done.stderr
