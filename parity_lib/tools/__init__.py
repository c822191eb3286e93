"""The tools: the plugin API (`ToolPlugin`, `register`), the registry every check, report and cache key reads, and
each built-in tool whole in one module (`hooks`, `nnsight_tool`, `pyvene_tool`, `transformer_lens_tool`: its
extractor, its steerer, its extraction at several layers), behind the Protocols of `base`.

A tool plugin writes against this package: `ToolPlugin` to declare itself, and `finish`, `unwrap`,
`Activations`, `SteeringSpec`, `generation_kwargs` to build its extractor and steerer (loaded lazily: importing
`parity_lib.tools` imports no torch)."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from parity_lib.tools.plugin import REFERENCE_STEERER, ToolPlugin, resolve
from parity_lib.tools.registry import (
    GROUP,
    describe,
    fingerprint,
    get,
    get_extractor,
    get_steerer,
    installed,
    names,
    parse_tools,
    register,
    registered,
    required_attention,
    steering_tool,
    tools,
)

_HELPERS = {"Activations": "base", "Extractor": "base", "Steerer": "base", "finish": "base", "unwrap": "base",
            "generation_kwargs": "base", "extract_layers": "base", "SteeringSpec": "spec", "SCOPES": "spec"}


def __getattr__(name: str) -> Any:
    if name not in _HELPERS:
        raise AttributeError(f"module 'parity_lib.tools' has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_HELPERS[name]}"), name)


__all__ = ["GROUP", "REFERENCE_STEERER", "SCOPES", "Activations", "Extractor", "Steerer", "SteeringSpec", "ToolPlugin",
           "describe", "extract_layers", "finish", "fingerprint", "generation_kwargs", "get", "get_extractor",
           "get_steerer", "installed", "names", "parse_tools", "register", "registered", "required_attention",
           "resolve", "steering_tool", "tools", "unwrap"]
