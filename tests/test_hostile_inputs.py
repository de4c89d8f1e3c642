"""The hostile corpus (tests/hostile_corpus.py) through the command line and through the app's upload.

Every file gets its right outcome: the digit, "no digit" with a reason, or a
clear error; never a traceback. The command reads the whole corpus in one
process within 2 GB; how long it takes, against good photos read in the same
run, is measured by bench/cli_throughput.py (a test cannot know this machine's speed).
"""

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from model.images import ACCEPTED_EXTENSIONS
from tests.hostile_corpus import build

ROOT = Path(__file__).resolve().parents[1]
HANG = 600  # seconds: only a hang takes this long, on any machine (the corpus takes seconds)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, mnist_sample):
    x, y = mnist_sample
    digits = {int(label): x[np.flatnonzero(y == label)[0]] for label in (3, 4, 7)}
    folder = tmp_path_factory.mktemp("hostile")
    return folder, build(folder, digits)


def test_the_command_gives_every_file_its_outcome(corpus):
    folder, expected = corpus
    paths = [str(folder / name) for name in expected]
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "model.predict", "--json", *paths], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = process.communicate(timeout=HANG)
    seconds = time.perf_counter() - start
    assert process.returncode == 1  # some inputs could not be read, and the exit code says so
    assert "Traceback" not in err
    results = {Path(r["path"]).name: r for r in map(json.loads, out.splitlines())}
    assert set(results) == set(expected)
    for name, outcome in expected.items():
        result = results[name]
        if outcome == "error":
            assert "error" in result and len(result["error"]) > 20, name
        elif outcome is None:
            assert result.get("digit", "missing") is None and result["reason"], name
        else:
            assert result.get("digit") == outcome, (name, result)
    print(f"\n{len(expected)} hostile files through the command: {seconds:.1f} s")


# Started from a small process of its own: a child forked from this test process (vfork, before exec) has
# this process's peak counted as its own, and pytest grows past 2 GB with the tests before this one.
PEAK_RSS_SCRIPT = """
import resource, subprocess, sys
subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def test_peak_memory_of_the_command_stays_under_2_gb(corpus):
    folder, expected = corpus
    paths = [str(folder / name) for name in expected]
    result = subprocess.run([sys.executable, "-c", PEAK_RSS_SCRIPT, sys.executable, "-m", "model.predict", "--json",
                             *paths], cwd=ROOT, capture_output=True, text=True, timeout=600)
    peak_mb = int(result.stdout.split()[-1]) / 1024
    print(f"\npeak RSS of the command on the corpus: {peak_mb:.0f} MB")
    assert peak_mb > 50  # it did read the corpus: a model and the images were in memory
    assert peak_mb < 2048, f"peak RSS {peak_mb:.0f} MB"


@pytest.mark.parametrize("widget", ["upload", "camera"])
def test_the_app_gives_every_upload_and_camera_photo_its_outcome(corpus, monkeypatch, tmp_path, widget):
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    folder, expected = corpus
    monkeypatch.setenv("DIGITS_DATA_DIR", str(tmp_path / "data"))
    st.cache_resource.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    at.radio(key="read_mode").set_value("One digit").run()
    for name, outcome in expected.items():
        if widget == "upload" and Path(name).suffix.lstrip(".") not in ACCEPTED_EXTENSIONS:
            continue  # the browser's file picker refuses these before they are sent (the CLI test reads them)
        data = (folder / name).read_bytes()
        if widget == "upload":
            at.file_uploader(key="upload").set_value((name, data, "application/octet-stream"))
        else:  # whatever bytes a camera (or a client posing as one) sends
            at.camera_input(key="camera").set_value((f"{Path(name).stem}.jpg", data, "image/jpeg"))
        at.run()
        assert not at.exception, (name, at.exception)
        predictions = [m.value for m in at.metric if m.label == "Prediction"]
        if outcome == "error":
            assert at.error and not predictions, name
        elif outcome is None:
            assert any("Nothing to read" in i.value for i in at.info) and not predictions, name
        else:
            assert predictions == [str(outcome)], (name, predictions)
    st.cache_resource.clear()
