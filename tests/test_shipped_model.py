"""The shipped model against the real MNIST test set (slow: needs the data)."""

import pytest

from model.artifacts import SHIPPED_MODEL, file_sha256
from model.card import ModelCard

TARGET = 0.9965


def test_shipped_model_matches_its_sidecar():
    card = ModelCard.read(SHIPPED_MODEL)  # a sidecar written before the typed card: it still loads
    assert card.model_sha256 == file_sha256(SHIPPED_MODEL)
    assert card.config["architecture"] == "deep" and card.config["data"] == ["mnist"]
    assert card.test_accuracy >= TARGET
    assert card.training_seconds <= 45 * 60


@pytest.mark.slow
def test_shipped_model_accuracy_on_the_mnist_test_set(recognizer, monkeypatch):
    from training.data import DEFAULT_CACHE_DIR, load_cache

    try:  # only a local copy: tests never download
        test = load_cache("mnist", DEFAULT_CACHE_DIR).test
    except FileNotFoundError:
        pytest.skip("MNIST is not cached here: run `python -m training.evaluate` once to fetch it")
    predicted = recognizer.probabilities(test.x).argmax(axis=1)
    assert float((predicted == test.y).mean()) >= TARGET
