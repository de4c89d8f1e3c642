"""The shipped model against the real MNIST test set (slow: needs the data)."""

import pytest

from model.artifacts import SHIPPED_MODEL, file_sha256, read_sidecar

TARGET = 0.9965


def test_shipped_model_matches_its_sidecar():
    sidecar = read_sidecar(SHIPPED_MODEL)
    assert sidecar["model_sha256"] == file_sha256(SHIPPED_MODEL)
    assert sidecar["config"]["architecture"] == "deep" and sidecar["config"]["data"] == ["mnist"]
    assert sidecar["metrics"]["test_mnist"]["accuracy"] >= TARGET
    assert sidecar["training_seconds"] <= 45 * 60


@pytest.mark.slow
def test_shipped_model_accuracy_on_the_mnist_test_set(recognizer, monkeypatch):
    from training.data import DEFAULT_CACHE_DIR, load_cache

    try:  # only a local copy: tests never download
        test = load_cache("mnist", DEFAULT_CACHE_DIR).test
    except FileNotFoundError:
        pytest.skip("MNIST is not cached here: run `python -m training.evaluate` once to fetch it")
    predicted = recognizer.probabilities(test.x).argmax(axis=1)
    assert float((predicted == test.y).mean()) >= TARGET
