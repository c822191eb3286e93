"""Steering: the spec, one steerer per tool behind the `Steerer` Protocol, and the firing map."""

from __future__ import annotations

from ..errors import UnknownToolError
from .base import Steerer
from .hooks import HooksSteerer, steering_hooks
from .nnsight_tool import NNsightSteerer
from .pyvene_tool import PyveneSteerer
from .spec import SCOPES, SteeringSpec

STEERERS = {"hooks": HooksSteerer, "nnsight": NNsightSteerer, "pyvene": PyveneSteerer}


def get_steerer(name: str) -> Steerer:
    if name not in STEERERS:
        raise UnknownToolError(f"no steerer for tool {name!r}; choose from {', '.join(STEERERS)}")
    return STEERERS[name]()


__all__ = ["HooksSteerer", "NNsightSteerer", "PyveneSteerer", "SCOPES", "STEERERS", "Steerer",
           "SteeringSpec", "get_steerer", "steering_hooks"]
