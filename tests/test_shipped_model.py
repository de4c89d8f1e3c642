"""The shipped model: its card, and its headline accuracy on the real MNIST test set, measured in every run.

The MNIST test set is read from the project's verified cache, which `.ci/run` fills before the tests
(`python -m training.data fetch mnist`); tests themselves never download. Without the cache the
measurement is skipped with a message, except in CI (REQUIRE_MNIST), where that is a failure.
"""

import os

import numpy as np
import pytest

from model.artifacts import SHIPPED_MODEL, file_sha256
from model.card import TEST_SPLIT, ModelCard

TARGET = 0.9965  # the product's bar for MNIST test accuracy


def test_shipped_model_matches_its_sidecar():
    card = ModelCard.read(SHIPPED_MODEL)  # a sidecar written before the typed card: it still loads
    assert card.model_sha256 == file_sha256(SHIPPED_MODEL)
    assert card.test_accuracy >= TARGET
    # The card says what the model learned from: the config's datasets are the ones recorded as trained on.
    assert [d["name"] for d in card.data["datasets"]] == list(card.config["data"])
    assert card.training_seconds > 0 and card.architecture == card.config["architecture"]


@pytest.fixture(scope="module")
def mnist_test():
    from training.data import DEFAULT_CACHE_DIR, load_cache

    try:  # only the local, checksummed cache: tests never download
        return load_cache("mnist", DEFAULT_CACHE_DIR).test
    except FileNotFoundError:
        message = (f"MNIST is not cached in {DEFAULT_CACHE_DIR}: run `python -m training.data fetch mnist` once "
                   "to measure the shipped model here")
        if os.environ.get("REQUIRE_MNIST"):
            pytest.fail(f"REQUIRE_MNIST is set but {message}")
        pytest.skip(message)


def test_the_shipped_model_reads_the_mnist_test_set_as_its_card_records(recognizer, mnist_test):
    """The headline figure, measured in every run on the fast path the app uses (LiteRT, seconds)."""
    card = ModelCard.read(SHIPPED_MODEL)
    predicted = recognizer.probabilities(mnist_test.x).argmax(axis=1)
    errors = int((predicted != mnist_test.y).sum())
    recorded = card.metrics[TEST_SPLIT]
    assert len(mnist_test.y) == recorded.count == 10_000
    # The card was measured through Keras; LiteRT computes the same probabilities to ~1e-6, so at most a
    # near-tie could flip.
    assert abs(errors - recorded.errors) <= 1, (errors, recorded.errors)
    assert float(np.mean(predicted == mnist_test.y)) >= TARGET
