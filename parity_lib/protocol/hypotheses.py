"""Deciding *which* tensor a tool returned, in any dtype: nearest hypothesis, beyond a measured noise floor.

A Section D question ("is this the pre-LN residual?", "is this row's vector its last real token?",
"was it captured after both adds?") is a choice between hypotheses computed in the same forward pass as
ground truth. Each hypothesis gets a distance, ‖got − hypothesis‖₂ relative to ‖correct hypothesis‖₂.
The check passes when the correct hypothesis is the nearest, lies within the noise floor, and every
alternative lies beyond it (an alternative within the floor cannot be told apart, and the check says so
instead of guessing).

The floor is measured, not chosen: the reference forward run twice on the same inputs (what the same
computation varies by on this device), and never below one rounding of the model dtype (unit roundoff,
half the dtype's epsilon: 2^-9 for bfloat16, 2^-24 for float32; rounding every component by at most that
moves the vector by at most that, relatively). A correct tool sits at distance 0 or within one rounding;
the alternatives of the protocol's models sit at distances of order 0.1 to 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import torch


def distance(got: torch.Tensor, candidate: torch.Tensor, scale: float) -> float:
    """‖got − candidate‖₂ / scale, in float64; inf for a shape mismatch or a NaN. The L2 norm weighs every
    component (a max |Δ| would be decided by a few outlier dimensions of the residual stream)."""
    if got.shape != candidate.shape:
        return float("inf")
    diff = got.detach().double() - candidate.detach().to(got.device).double()
    value = float(torch.linalg.vector_norm(diff)) if diff.numel() else 0.0
    return float("inf") if value != value else value / max(scale, 1e-30)


def scale_of(t: torch.Tensor) -> float:
    return float(torch.linalg.vector_norm(t.detach().double())) if t.numel() else 1.0


def unit_roundoff(dtype: torch.dtype) -> float:
    return float(torch.finfo(dtype).eps) / 2


def noise_floor(first: torch.Tensor, second: torch.Tensor, dtype: torch.dtype) -> float:
    """What the same computation varies by (two runs of the reference), at least one rounding of `dtype`."""
    return max(distance(first, second, scale_of(first)), unit_roundoff(dtype))


@dataclass(frozen=True)
class Decision:
    want: str
    nearest: str
    distances: dict[str, float]
    floor: float

    @property
    def confusable(self) -> list[str]:
        return [h for h, d in self.distances.items() if h != self.want and d <= self.floor]

    @property
    def passed(self) -> bool:
        return self.nearest == self.want and self.distances[self.want] <= self.floor and not self.confusable

    def explain(self) -> str:
        ranked = ", ".join(f"{h} {d:.3g}" for h, d in sorted(self.distances.items(), key=lambda kv: kv[1]))
        head = f"nearest: {self.nearest} (relative L2 distances: {ranked}; floor {self.floor:.3g})"
        if self.nearest != self.want:
            return f"{head}; the tool returned {self.nearest}, not {self.want}"
        if self.confusable:
            return f"{head}; cannot tell {self.want} from {', '.join(self.confusable)} in this dtype"
        if self.distances[self.want] > self.floor:
            return f"{head}; {self.want} is nearest but beyond the noise floor"
        return head

    def to_dict(self) -> dict:
        return {"want": self.want, "nearest": self.nearest, "distances": self.distances, "floor": self.floor,
                "passed": self.passed}


def decide(got: torch.Tensor, hypotheses: Mapping[str, torch.Tensor], want: str, floor: float) -> Decision:
    scale = scale_of(hypotheses[want])
    distances = {name: distance(got, h, scale) for name, h in hypotheses.items()}
    nearest = min(distances, key=lambda h: (distances[h], h != want))
    return Decision(want, nearest, distances, floor)
