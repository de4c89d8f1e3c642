"""The model card: old sidecars load, the card round-trips, and every reader sees its figures."""

import json

import pytest

from model.artifacts import SHIPPED_MODEL, ModelFileError, atomic_write_json, file_sha256, sidecar_path
from model.card import HEADLINE, Metrics, ModelCard
from model.registry import Registry


def test_the_shipped_sidecar_written_before_the_card_loads_and_is_written_back_unchanged(tmp_path):
    raw = json.loads(sidecar_path(SHIPPED_MODEL).read_text())
    card = ModelCard.read(SHIPPED_MODEL)
    assert card.version == raw["version"] and card.test_accuracy == raw["metrics"]["test_mnist"]["accuracy"]
    assert card.calibration == raw["calibration"] and card.metrics["validation"].count == 5000
    assert card.to_json() == raw and list(card.to_json()) == list(raw)  # same keys, same order


def test_unknown_keys_are_kept_and_missing_ones_take_defaults(tmp_path):
    path = tmp_path / "old.keras"
    atomic_write_json(sidecar_path(path), {"version": "20250101-000000", "from_the_future": {"x": 1},
                                           "metrics": {"test_mnist": {"accuracy": 0.5, "odd": 2}},
                                           "metrics_before": {"version": "base", "test_mnist": {"accuracy": 0.4}}})
    card = ModelCard.read(path)
    assert card.architecture == "?" and card.trained_on == "unknown data" and card.corrections_used == 0
    assert card.metric("test_mnist", "accuracy", before=True) == 0.4 and card.before_version == "base"
    card.write(path)
    again = json.loads(sidecar_path(path).read_text())
    assert again["from_the_future"] == {"x": 1} and again["metrics"]["test_mnist"]["odd"] == 2
    assert again["metrics_before"] == {"version": "base", "test_mnist": {"accuracy": 0.4}}


@pytest.mark.parametrize("text, message", [("{not json", "not valid JSON"), ('{"metrics": {}}', "no model version")])
def test_a_broken_sidecar_is_refused_with_what_to_do(tmp_path, text, message):
    path = tmp_path / "m.keras"
    sidecar_path(path).write_text(text)
    with pytest.raises(ModelFileError, match=message):
        ModelCard.read(path)
    with pytest.raises(ModelFileError, match="missing"):
        ModelCard.read(tmp_path / "none.keras")


def _version(tmp_path, **metrics) -> str:
    """A stand-in model in the registry whose card holds these MNIST test metrics."""
    model = tmp_path / "run" / "m.keras"
    model.parent.mkdir(parents=True)
    model.write_bytes(b"weights")
    card = ModelCard(version="20990101-000000", model_sha256=file_sha256(model),
                     metrics={"test_mnist": Metrics(**metrics)})
    card.write(model)
    return Registry().add(model).version


def test_the_headline_figures_reach_the_versions_command(tmp_path, capsys):
    from services.versions import main

    version = _version(tmp_path, accuracy=0.99, errors=100, count=10000)
    assert main(["list", "--json"]) == 0
    row = next(r for r in json.loads(capsys.readouterr().out) if r["version"] == version)
    assert {figure.key for figure in HEADLINE} <= set(row) and row["test_accuracy"] == 0.99
    assert main(["list"]) == 0
    printed = capsys.readouterr().out
    assert all(figure.label in printed for figure in HEADLINE) and "99.0000%" in printed


def test_confidently_wrong_answers_are_counted_and_shown_by_the_command(tmp_path, capsys):
    import numpy as np

    from services.versions import main
    from training.metrics import summarize

    labels = np.array([0, 1, 2, 3])
    probabilities = np.full((4, 10), 0.01)
    probabilities[[0, 1, 2, 3], [5, 6, 2, 3]] = [0.91, 0.6, 0.99, 0.5]  # wrong and sure, wrong and unsure, right, right
    assert summarize(labels, probabilities).confident_errors == 0.25
    version = _version(tmp_path, accuracy=0.99, errors=100, count=10000, confident_errors=0.0012)
    assert main(["list"]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if version in line)
    assert "0.1200%" in line


def test_a_new_model_is_set_against_its_base_or_else_the_active_models_test_figures():
    from ui.retrain import figures_before

    active = ModelCard(version="active", metrics={"test_mnist": Metrics(accuracy=0.99, errors=100),
                                                  "feedback_holdout": Metrics(accuracy=0.5)})
    plain = ModelCard(version="new", metrics={"test_mnist": Metrics(accuracy=0.98)})
    before = figures_before(plain, active)
    assert before["test_accuracy"] == 0.99 and before["test_errors"] == 100
    assert before["corrections_holdout_accuracy"] is None  # another run's held-out corrections are not comparable
    tuned = ModelCard(version="tuned", metrics_before={"test_mnist": Metrics(accuracy=0.97),
                                                       "feedback_holdout": Metrics(accuracy=0.2)})
    before = figures_before(tuned, active)
    assert before["test_accuracy"] == 0.97 and before["corrections_holdout_accuracy"] == 0.2
