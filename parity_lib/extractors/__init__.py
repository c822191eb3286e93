"""One module per tool behind the `Extractor` Protocol; `get_extractor(name)` asks the tool registry."""

from __future__ import annotations

from ..errors import UnknownToolError
from ..tools import registry
from .base import Activations, Extractor, extract_layers, finish, unwrap
from .hooks import HooksExtractor
from .nnsight_tool import NNsightExtractor
from .pyvene_tool import PyveneExtractor


def get_extractor(name: str) -> Extractor:
    plugin = registry.get(name)
    registry.installed(plugin)
    return plugin.make_extractor()


def parse_tools(value: str) -> tuple[str, ...]:
    """`--parity-tools`: known, installed, each named once."""
    names = tuple(t.strip() for t in value.split(",") if t.strip())
    if not names:
        raise UnknownToolError(f"--parity-tools {value!r} names no tool; choose from {', '.join(registry.names())}")
    for name in names:
        registry.installed(registry.get(name))
    if len(set(names)) != len(names):
        raise UnknownToolError(f"--parity-tools {value!r}: a tool is named twice; name each once")
    return names


__all__ = ["Activations", "Extractor", "HooksExtractor", "NNsightExtractor", "PyveneExtractor", "extract_layers",
           "finish", "get_extractor", "parse_tools", "unwrap"]
