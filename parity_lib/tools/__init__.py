"""The tool plugin API: `ToolPlugin`, and the registry every check, report and cache key reads."""

from __future__ import annotations

from .plugin import REFERENCE_STEERER, ToolPlugin, resolve
from .registry import (
                       GROUP,
                       describe,
                       fingerprint,
                       get,
                       installed,
                       names,
                       register,
                       registered,
                       required_attention,
                       tools,
)

__all__ = ["GROUP", "REFERENCE_STEERER", "ToolPlugin", "describe", "fingerprint", "get", "installed", "names",
           "register", "registered", "required_attention", "resolve", "tools"]
