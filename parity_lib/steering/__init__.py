"""Steering: the spec, one steerer per tool behind the `Steerer` Protocol, and the firing map."""

from __future__ import annotations

from ..tools import REFERENCE_STEERER, registry
from .base import Steerer
from .hooks import HooksSteerer, steering_hooks
from .nnsight_tool import NNsightSteerer
from .pyvene_tool import PyveneSteerer
from .spec import SCOPES, SteeringSpec


def steering_tool(name: str) -> str:
    """The tool whose steerer steers for `name`: itself, or the reference steerer when it has none."""
    return name if registry.get(name).own_steering else REFERENCE_STEERER


def get_steerer(name: str) -> Steerer:
    """The tool's own steerer; a tool without one steers through the reference steerer (hooks)."""
    plugin = registry.get(steering_tool(name))
    registry.installed(plugin)
    return plugin.make_steerer()


__all__ = ["HooksSteerer", "NNsightSteerer", "PyveneSteerer", "SCOPES", "Steerer", "SteeringSpec", "get_steerer",
           "steering_hooks", "steering_tool"]
