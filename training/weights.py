"""Blend a fine-tuned network's weights with those of the network it was fine-tuned from (WiSE-FT).

Wortsman et al. (2022), "Robust fine-tuning of zero-shot models": a fine-tune and its base, averaged weight by
weight, keep most of what the fine-tune learnt and most of what the base knew, where the fine-tune alone trades
one for the other. Here: a reader fine-tuned on real people's pen strokes gains their digits and gives up a
handful of MNIST's (issue 32); blended, it gives up fewer. Both networks must have the same layers (a fine-tune
does), which is checked.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from model.loading import load_model


class BlendError(ValueError):
    """The two networks cannot be blended: they differ in their layers."""


def blended_weights(base: list[np.ndarray], tuned: list[np.ndarray], share: float) -> list[np.ndarray]:
    """share x base + (1 - share) x tuned, weight by weight (batch-norm statistics included, as WiSE-FT does)."""
    if not 0 <= share <= 1:
        raise BlendError(f"The base model's share must be between 0 and 1, got {share}.")
    shapes = [np.shape(weight) for weight in base], [np.shape(weight) for weight in tuned]
    if shapes[0] != shapes[1]:
        raise BlendError(f"The networks differ in their layers ({len(base)} weights against {len(tuned)}, or of "
                         "other shapes): only a fine-tune can be blended with the model it was fine-tuned from.")
    return [(share * b + (1.0 - share) * t).astype(np.asarray(t).dtype) for b, t in zip(base, tuned)]


def blend_with_base(model, base_path: Path, share: float) -> None:
    """Move the Keras model's weights, in place, `share` of the way back to those of the model at base_path."""
    model.set_weights(blended_weights(load_model(base_path).get_weights(), model.get_weights(), share))
