"""Blending a fine-tune with its base model (training.weights, training.blend; WiSE-FT)."""

import json

import numpy as np
import pytest

from tests.test_model_and_training import _toy_dataset as _bars
from training.config import TrainConfig
from training.data import Dataset
from training.weights import BlendError, blended_weights


def test_a_blend_is_the_weighted_mean_of_every_weight_and_keeps_its_type():
    base = [np.zeros((3, 3), np.float32), np.full(4, 2.0, np.float32)]
    tuned = [np.ones((3, 3), np.float32), np.full(4, 4.0, np.float32)]
    assert all(np.array_equal(b, t) for b, t in zip(blended_weights(base, tuned, 0.0), tuned))
    assert all(np.array_equal(b, t) for b, t in zip(blended_weights(base, tuned, 1.0), base))
    quarter = blended_weights(base, tuned, 0.25)
    assert np.allclose(quarter[0], 0.75) and np.allclose(quarter[1], 3.5) and quarter[0].dtype == np.float32


def test_networks_of_other_layers_or_a_share_outside_0_to_1_are_refused():
    with pytest.raises(BlendError, match="differ in their layers"):
        blended_weights([np.zeros((3, 3))], [np.zeros((3, 4))], 0.5)
    with pytest.raises(BlendError, match="differ in their layers"):
        blended_weights([np.zeros(3)], [np.zeros(3), np.zeros(3)], 0.5)
    with pytest.raises(BlendError, match="between 0 and 1"):
        blended_weights([np.zeros(3)], [np.zeros(3)], 1.5)


@pytest.mark.parametrize("changes", [{"blend_base": 0.5}, {"blend_base": 1.0, "fine_tune": True},
                                     {"blend_base": -0.1, "fine_tune": True}])
def test_a_blend_needs_a_fine_tune_and_a_share_below_1(changes):
    with pytest.raises(ValueError, match="blend_base"):
        TrainConfig(**changes)


def _weights(path):
    from model.loading import load_model

    return load_model(path).get_weights()


def _distance(a, b):
    return float(np.sqrt(sum(np.sum((x - y) ** 2) for x, y in zip(a, b))))


DATA = [Dataset("mnist", "bars", _bars(240, 0), _bars(60, 1))]
COMMON = dict(architecture="compact", batch_size=32, validation_size=40, seed=1)


@pytest.fixture(scope="module")
def fine_tune(tmp_path_factory):
    """A toy model and a fine-tune of it: (folder, the fine-tune's config)."""
    from training.train import train

    folder = tmp_path_factory.mktemp("blend")
    train(TrainConfig(epochs=1, output=folder / "base.keras", **COMMON), datasets=DATA)
    config = TrainConfig(fine_tune=True, fine_tune_epochs=2, fine_tune_learning_rate=3e-3,
                         base_model=folder / "base.keras", output=folder / "tuned.keras", **COMMON)
    train(config, datasets=DATA)
    return folder, config


def test_a_fine_tune_blended_with_its_base_is_written_measured_and_recorded(fine_tune, tmp_path):
    from model.card import ModelCard
    from training.blend import blend, blend_output

    folder, _ = fine_tune
    base, tuned = _weights(folder / "base.keras"), _weights(folder / "tuned.keras")
    cards = blend(folder / "tuned.keras", [0.0, 0.4], tmp_path / "blends", datasets=DATA)
    for share, card in zip((0.0, 0.4), cards):
        written = blend_output(tmp_path / "blends", share, "tuned.keras")
        expected = blended_weights(base, tuned, share)
        assert all(np.allclose(w, e, atol=1e-6) for w, e in zip(_weights(written), expected))
        recorded = ModelCard.read(written)
        assert recorded.config["blend_base"] == share and recorded.fine_tuned_from and recorded.calibration
        assert "validation" in recorded.metrics and card.version == recorded.version
        assert json.loads((written.parent / "tuned.history.json").read_text())["loss"]
    with pytest.raises(Exception, match="already exists"):
        blend(folder / "tuned.keras", [0.4], tmp_path / "blends", datasets=DATA)


def test_a_fine_tune_with_blend_base_is_pulled_most_of_the_way_back_to_its_base(fine_tune, tmp_path):
    import dataclasses

    from model.card import ModelCard
    from training.train import train

    folder, config = fine_tune
    train(dataclasses.replace(config, blend_base=0.9, output=tmp_path / "pulled.keras"), datasets=DATA)
    base, tuned, pulled = (_weights(path) for path in (folder / "base.keras", folder / "tuned.keras",
                                                        tmp_path / "pulled.keras"))
    assert _distance(pulled, base) < 0.3 * _distance(tuned, base)
    assert ModelCard.read(tmp_path / "pulled.keras").config["blend_base"] == 0.9


def test_only_a_fine_tune_can_be_blended(fine_tune, tmp_path, capsys):
    from training.blend import main

    folder, _ = fine_tune
    assert main(["--fine-tuned", str(folder / "base.keras"), "--share", "0.5", "--output-dir",
                 str(tmp_path / "b")]) == 1
    assert "is not a fine-tune" in capsys.readouterr().err
    assert main(["--fine-tuned", str(folder / "tuned.keras"), "--share", "1", "--output-dir", str(tmp_path / "b")]) == 1
    assert "blend_base must be a share" in capsys.readouterr().err and not (tmp_path / "b").exists()
