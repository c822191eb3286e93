"""The refusal direction: difference of means (harmful − harmless) of last-real-token residuals.

The math is done in float64 on the CPU, whatever dtype the model runs in: the cast from the model's
dtype is explicit here and nowhere else, so every tool's activations enter it the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from parity_lib.errors import NonFiniteActivationError


@dataclass(frozen=True)
class Direction:
    unit: torch.Tensor  # [H] float64, L2 norm 1
    norm: float  # L2 norm of the raw difference of means, before normalisation
    layer: int

    def summary(self) -> dict:
        return {"norm": self.norm, "layer": self.layer, "unit": self.unit.tolist()}


def diff_of_means(harmful: torch.Tensor, harmless: torch.Tensor, layer: int) -> Direction:
    """`harmful`, `harmless`: [n, H] last-real-token vectors in the model's dtype."""
    raw = harmful.detach().to("cpu", torch.float64).mean(0) - harmless.detach().to("cpu", torch.float64).mean(0)
    norm = float(raw.norm())
    if not torch.isfinite(raw).all() or norm == 0.0:
        raise NonFiniteActivationError(
            f"difference of means at layer {layer} is {'zero' if norm == 0.0 else 'not finite'}; "
            f"check that the harmful and harmless prompts differ and the activations are finite")
    return Direction(raw / norm, norm, layer)
