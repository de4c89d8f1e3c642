"""Users teach the gate: a reader's fine-tune with corrections also fine-tunes its gate when users said "not a digit".

A "not a digit" correction (services.corrections, label NOT_A_DIGIT) is something the app read as a digit, or
was not sure of, that is no digit at all: a heart, a cloud, a letter. The reader, which only says which digit,
leaves those out (training.feedback); the gate (model.gate) learns them, taught "no digit is likely" as it
learned its generated non-digits. Its fine-tune replays what it was trained with: its card's own config (for
the shipped gate, training/recipes/gate-real.json), so it keeps every writer's digits and every kind of
non-digit, at the teaching rate below and without the recipe's blend.

The new gate is written beside the new reader (model.gate.gate_path), so registering the reader registers it
too. From the command line, the same in one step:

    python -m training --fine-tune --feedback --output var/taught/digits.keras --register

or the gate alone (its recipe, taught as above): ``python -m training --config training/recipes/gate-real.json
--feedback --fine-tune-epochs 3 --fine-tune-learning-rate 1e-4 --replay 20000 --blend-base 0 --base-model
model/digits.gate.keras --output var/taught/digits.gate.keras``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from model.card import ModelCard
from model.constants import NOT_A_DIGIT
from model.gate import gate_path
from services.corrections import existing_store
from training.config import TrainConfig

log = logging.getLogger(__name__)

# What a reader's fine-tune passes on to its gate's: which corrections, how they count, what is held out; the
# data it replays is the gate's own (its card's config).
SHARED_OPTIONS = ("corrections", "feedback_mode", "feedback_factor", "feedback_holdout", "fine_tune_epochs",
                  "replay", "seed", "limit", "data_dir", "cache_dir")
# How fast users' corrections teach a gate: a third of a reader's rate. At the reader's 3e-4 the gate shipped
# before issue 32 learnt 50 hearts but drifted (Omniglot refused 66 -> 58%); at 5e-5 it learnt them (95%) and
# nothing else moved, but the gate trained on real non-digits learnt only 81% of them at 5e-5, on the bar of
# tests/test_feedback_training.py, and 93% at 1e-4 (bench/gate_feedback.py, docs/corrections.md).
TEACH_LEARNING_RATE = 1e-4


def not_a_digit_count(config: TrainConfig) -> int:
    store = existing_store(config.corrections)
    return store.counts()["corrected"][NOT_A_DIGIT] if store is not None else 0


def gate_config(reader: TrainConfig, base_reader: Path) -> TrainConfig | None:
    """The fine-tune of the base reader's gate that goes with this fine-tune of the reader, or None when there
    is nothing to teach it: the reader is not fine-tuned with corrections, has no gate, or no one said
    "not a digit"."""
    base_gate = gate_path(base_reader)
    if not (reader.fine_tune and reader.feedback and reader.non_digits == 0 and base_gate.exists()):
        return None
    if not_a_digit_count(reader) == 0:
        return None
    recipe = ModelCard.read(base_gate).config or {}
    if not recipe.get("non_digits"):  # a gate trained before cards recorded their config: nothing to replay
        log.warning("The gate %s does not record the recipe it was trained with; it is not taught. Fine-tune it "
                    "with its recipe: docs/corrections.md", base_gate)
        return None
    shared = {name: value for name, value in reader.to_json().items() if name in SHARED_OPTIONS}
    # missing_data skip: a machine without every dataset of the recipe replays those it has (the card says which)
    # blend_base 0: the recipe's blend made the shipped gate from its base; blending the taught gate back
    # towards the untaught one would take back a share of what the users taught
    return TrainConfig.from_json({**recipe, **shared, "fine_tune": True, "feedback": True, "missing_data": "skip",
                                  "fine_tune_learning_rate": TEACH_LEARNING_RATE, "blend_base": 0.0,
                                  "base_model": str(base_gate), "output": str(gate_path(Path(reader.output))),
                                  "progress_file": None, "register": False, "backup_dir": None, "shards": None})
