"""What to steer: which layers, how hard, along which unit direction. Positions are always *all*:
every prompt token and every generated token, on every forward (the paper's semantics)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from parity_lib.errors import ConfigError

SCOPES = ("target", "target_to_final")


@dataclass(frozen=True)
class SteeringSpec:
    layers: tuple[int, ...]
    multiplier: float
    unit: torch.Tensor  # [H] float64 unit direction
    scope: str

    @classmethod
    def build(cls, unit: torch.Tensor, layer: int, n_layers: int, multiplier: float,
              scope: str = "target_to_final") -> "SteeringSpec":
        if scope not in SCOPES:
            raise ConfigError(f"steering scope {scope!r}: choose {' or '.join(SCOPES)}")
        layers = (layer,) if scope == "target" else tuple(range(layer, n_layers))
        return cls(layers, float(multiplier), unit, scope)

    def vector(self, dtype: torch.dtype, device: torch.device | str) -> torch.Tensor:
        """multiplier × unit, scaled in float64 then cast once to the layer's dtype: adding a float32
        vector to a bf16 layer output would promote it and break the next layer."""
        return (self.unit.to(torch.float64) * self.multiplier).to(device=device, dtype=dtype)

    def describe(self) -> dict:
        return {"layers": list(self.layers), "multiplier": self.multiplier, "scope": self.scope,
                "positions": "all"}
