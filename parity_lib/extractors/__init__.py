"""One module per tool behind the `Extractor` Protocol; `get_extractor(name)` picks one."""

from __future__ import annotations

from ..errors import UnknownToolError
from .base import Activations, Extractor, finish, unwrap
from .hooks import HooksExtractor
from .nnsight_tool import NNsightExtractor
from .pyvene_tool import PyveneExtractor

TOOLS = {"hooks": HooksExtractor, "nnsight": NNsightExtractor, "pyvene": PyveneExtractor}


def get_extractor(name: str) -> Extractor:
    if name not in TOOLS:
        raise UnknownToolError(f"unknown tool {name!r}; choose from {', '.join(TOOLS)} "
                               f"(e.g. --parity-tools hooks,nnsight,pyvene)")
    return TOOLS[name]()


def parse_tools(value: str) -> tuple[str, ...]:
    names = tuple(t.strip() for t in value.split(",") if t.strip())
    if not names:
        raise UnknownToolError(f"--parity-tools {value!r} names no tool; choose from {', '.join(TOOLS)}")
    for name in names:
        get_extractor(name)
    if len(set(names)) != len(names):
        raise UnknownToolError(f"--parity-tools {value!r}: a tool is named twice; name each once")
    return names


__all__ = ["Activations", "Extractor", "HooksExtractor", "NNsightExtractor", "PyveneExtractor",
           "TOOLS", "finish", "get_extractor", "parse_tools", "unwrap"]
