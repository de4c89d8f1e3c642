"""The prediction command's contract, checked with the shipped model."""

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from model.predict import run

ROOT = Path(__file__).resolve().parents[1]


def _save(array, path, fmt=None):
    Image.fromarray(array).save(path, format=fmt)
    return str(path)


def _variants(image, folder, stem):
    """The same MNIST test digit as users give it."""
    big = np.zeros((200, 300), np.uint8)
    big[150:178, 240:268] = image  # small, in the bottom-right corner
    rgba = np.zeros((28, 28, 4), np.uint8)
    rgba[..., 3] = image  # black ink on a transparent background
    photo = np.kron(255 - image, np.ones((6, 6), np.uint8))  # dark ink on white paper, upscaled
    return {
        "plain": _save(image, folder / f"{stem}-plain.png"),
        "inverted": _save(255 - image, folder / f"{stem}-inverted.png"),
        "off_centre": _save(big, folder / f"{stem}-corner.png"),
        "transparent": _save(rgba, folder / f"{stem}-transparent.png"),
        "jpeg_photo": _save(photo, folder / f"{stem}-photo.jpg"),
        "webp": _save(image, folder / f"{stem}.webp"),
    }


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, mnist_sample):
    folder = tmp_path_factory.mktemp("inputs")
    x, y = mnist_sample
    cases = []
    for index, (image, label) in enumerate(zip(x, y)):
        for kind, path in _variants(image, folder, f"{index:02d}").items():
            cases.append((path, int(label), kind))
    blank = _save(np.zeros((280, 280), np.uint8), folder / "blank-canvas.png")
    paper = _save(np.full((300, 400, 3), 235, np.uint8), folder / "blank-paper.jpg")
    text = folder / "notes.png"
    text.write_text("this is not an image")
    empty = folder / "empty.png"
    empty.write_bytes(b"")
    return {"cases": cases, "blank": [blank, paper], "unreadable": [str(text), str(empty), str(folder / "missing.png")]}


def _run(paths, recognizer, as_json=True):
    out = io.StringIO()
    code = run(paths, recognizer, as_json, out)
    lines = out.getvalue().splitlines()
    return code, [json.loads(line) for line in lines] if as_json else lines


def test_reads_every_variant_of_mnist_test_digits(inputs, recognizer):
    paths = [path for path, _, _ in inputs["cases"]]
    code, results = _run(paths, recognizer)
    assert code == 0 and [r["path"] for r in results] == paths
    by_kind = {}
    for (path, label, kind), result in zip(inputs["cases"], results):
        gated = {"digit_likeness"} if recognizer.gate else set()  # the gate's score, when the model has one
        assert set(result) == {"path", "digit", "verdict", "confidence", "probabilities"} | gated
        assert result["verdict"] == "digit"
        assert len(result["probabilities"]) == 10 and abs(sum(result["probabilities"]) - 1) < 1e-3
        assert result["confidence"] == pytest.approx(max(result["probabilities"]), abs=1e-6)
        by_kind.setdefault(kind, []).append(result["digit"] == label)
    accuracy = {kind: float(np.mean(hits)) for kind, hits in by_kind.items()}
    # 50 MNIST test digits: the shipped model reads them all; each variant may cost at most one.
    assert accuracy["plain"] == 1.0, accuracy
    assert min(accuracy.values()) >= 0.98, accuracy


def test_blank_inputs_give_no_digit_with_a_reason(inputs, recognizer):
    code, results = _run(inputs["blank"], recognizer)
    assert code == 0
    for result in results:
        assert result["digit"] is None and result["reason"] and "confidence" not in result
        assert result["verdict"] == "empty" and "probabilities" not in result and "closest" not in result


def test_unreadable_files_are_reported_and_the_rest_still_read(inputs, recognizer):
    good = inputs["cases"][0][0]
    paths = [inputs["unreadable"][0], good, inputs["unreadable"][1], inputs["unreadable"][2]]
    code, results = _run(paths, recognizer)
    assert code == 1
    assert [r["path"] for r in results] == paths
    assert "error" in results[0] and "not an image" in results[0]["error"]
    assert results[1]["digit"] == inputs["cases"][0][1]
    assert "empty" in results[2]["error"] and "does not exist" in results[3]["error"]


def test_readable_output_has_one_line_per_input(inputs, recognizer):
    paths = [inputs["cases"][0][0], inputs["blank"][0], inputs["unreadable"][0]]
    code, lines = _run(paths, recognizer, as_json=False)
    assert code == 1 and len(lines) == 3
    assert lines[0].startswith(paths[0] + ": ") and "%" in lines[0]
    assert "no digit" in lines[1] and "error" in lines[2]


def test_command_line_end_to_end(inputs):
    """The real command, as other tools will call it: JSON lines on stdout, exit codes."""
    good = inputs["cases"][0][0]
    command = [sys.executable, "-m", "model.predict", "--json", good, inputs["blank"][0], inputs["unreadable"][0]]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 1, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["path"] for line in lines] == command[4:]
    assert lines[0]["digit"] == inputs["cases"][0][1] and lines[1]["digit"] is None and "error" in lines[2]
    assert "Traceback" not in result.stderr


def test_missing_model_is_a_clear_error(tmp_path, inputs):
    command = [sys.executable, "-m", "model.predict", "--model", str(tmp_path / "none.keras"), inputs["blank"][0]]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 2 and "does not exist" in result.stderr and "Traceback" not in result.stderr


def test_the_command_reads_with_the_active_model(tmp_path, stand_in_model, mnist_sample, capsys):
    from model.inference import Recognizer
    from model.predict import main
    from model.registry import Registry

    x, _ = mnist_sample
    image = tmp_path / "digit.png"
    Image.fromarray(255 - np.kron(x[3], np.ones((4, 4), np.uint8))).save(image)
    registry = Registry()
    version = registry.add(stand_in_model).version
    main(["--json", str(image)])
    shipped = json.loads(capsys.readouterr().out)
    registry.activate(version)
    main(["--json", str(image)])
    active = json.loads(capsys.readouterr().out)
    expected = Recognizer(stand_in_model).read(np.asarray(Image.open(image)))
    assert active["probabilities"] == pytest.approx(expected.probabilities, abs=1e-5)
    assert active["probabilities"] != pytest.approx(shipped["probabilities"], abs=1e-3)
