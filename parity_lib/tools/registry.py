"""The tool registry: the built-in tools, then every `parity_suite.tools` entry point, then tools registered
in this process (`registered`, for tests). Every check, the gate, provenance, the cache key and the report
take their tools from here.

An external package declares a tool in its `pyproject.toml`:

    [project.entry-points."parity_suite.tools"]
    mytool = "mytool_parity:TOOL"     # a ToolPlugin named "mytool"

Listing names (for `--help`) reads entry-point metadata only; a plugin's module is imported when the tool
is first used, so it should import torch and its own package lazily, as the built-in declarations do.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import importlib.util
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from parity_lib.errors import ToolNotInstalledError, UnknownToolError
from parity_lib.tools.builtin import BUILTIN
from parity_lib.tools.plugin import REFERENCE_STEERER, ToolPlugin

if TYPE_CHECKING:
    from parity_lib.tools.base import Extractor, Steerer

GROUP = "parity_suite.tools"
_local: dict[str, ToolPlugin] = {}


def _entry_points() -> list[md.EntryPoint]:
    return sorted(md.entry_points(group=GROUP), key=lambda ep: ep.name)


def entry_point_names() -> dict[str, str]:
    """Tool name -> the distribution that declares it, without importing anything."""
    return {ep.name: (ep.dist.name if ep.dist else "?") for ep in _entry_points()}


@lru_cache(maxsize=1)
def _discovered() -> dict[str, ToolPlugin]:
    tools = {t.name: t for t in BUILTIN}
    for ep in _entry_points():
        where = f"entry point {ep.name!r} = {ep.value!r} of {ep.dist.name if ep.dist else 'an unknown distribution'}"
        if ep.name in tools:
            raise UnknownToolError(f"{where}: the tool name {ep.name!r} is taken already; rename the entry point")
        obj = ep.load()
        plugin = obj() if callable(obj) and not isinstance(obj, ToolPlugin) else obj
        if not isinstance(plugin, ToolPlugin) or plugin.name != ep.name:
            raise UnknownToolError(f"{where}: must name a parity_lib.tools.ToolPlugin whose name is {ep.name!r} "
                                   f"(got {plugin!r})")
        tools[ep.name] = plugin
    return tools


def tools() -> dict[str, ToolPlugin]:
    return {**_discovered(), **_local}


def names() -> tuple[str, ...]:
    return tuple(tools())


def get(name: str) -> ToolPlugin:
    found = tools().get(name)
    if found is None:
        raise UnknownToolError(f"unknown tool {name!r}; choose from {', '.join(tools())} (e.g. --parity-tools "
                               f"hooks,nnsight,pyvene); a package registers more under the {GROUP!r} entry point")
    return found


def installed(plugin: ToolPlugin) -> str | None:
    """The version of the tool's package, None when it declares none; one clear error when it is missing."""
    if plugin.package is None:
        return None
    try:
        return md.version(plugin.package)
    except md.PackageNotFoundError:
        how = f"pip install '{plugin.install}'" if plugin.install else f"pip install {plugin.package}"
        raise ToolNotInstalledError(f"tool {plugin.name!r} needs the package {plugin.package!r}, which is not "
                                    f"installed in this environment: {how}") from None


def required_attention(selected: tuple[str, ...]) -> tuple[str | None, list[str]]:
    """The attention implementation some selected tool computes whatever the model says, and which tools."""
    wanted = {t: get(t).attention for t in selected if get(t).attention}
    kinds = set(wanted.values())
    if len(kinds) > 1:
        raise UnknownToolError(f"--parity-tools: these tools compute attention differently ({wanted}); no single "
                               f"model load gives them the same computation: compare them in separate runs")
    return (kinds.pop() if kinds else None), sorted(wanted)


def _sources(module: str) -> list[Path]:
    spec = importlib.util.find_spec(module)
    if spec is None:
        return []
    if spec.submodule_search_locations:
        return sorted(p for root in spec.submodule_search_locations for p in Path(root).rglob("*.py"))
    return [Path(spec.origin)] if spec.origin and spec.origin.endswith(".py") else []


def fingerprint(name: str) -> str:
    """The tool's own code (every source file of its modules) and its package's version: a cached cycle is
    reused only for the same tool code."""
    plugin = get(name)
    h = hashlib.sha256(f"{name}|{plugin.package}|{installed(plugin)}".encode())
    for module in plugin.code_modules():
        for path in _sources(module):
            h.update(path.name.encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def describe(name: str) -> dict[str, object]:
    """What the report says about a tool."""
    plugin = get(name)
    origin = "built in" if any(t.name == name for t in BUILTIN) else entry_point_names().get(name, "registered here")
    return {"name": name, "display": plugin.display, "package": plugin.package, "version": installed(plugin),
            "steering": plugin.steering_note, "own_steering": plugin.own_steering, "attention": plugin.attention,
            "origin": origin, "code_sha256": fingerprint(name)[:16]}


def register(*plugins: ToolPlugin) -> None:
    """Tools known to this process only (a test's planted tools, from a `-p` plugin or a conftest); a
    package that ships a tool declares it under the entry point instead."""
    for plugin in plugins:
        if plugin.name in tools():
            raise UnknownToolError(f"tool {plugin.name!r} is registered already")
        _local[plugin.name] = plugin


@contextmanager
def registered(*plugins: ToolPlugin) -> Iterator[None]:
    """`register` for the duration of the block."""
    register(*plugins)
    try:
        yield
    finally:
        for plugin in plugins:
            _local.pop(plugin.name, None)


def get_extractor(name: str) -> Extractor:
    """The tool's extractor (its package imported now, not before)."""
    plugin = get(name)
    installed(plugin)
    return plugin.make_extractor()


def parse_tools(value: str) -> tuple[str, ...]:
    """`--parity-tools`: known, installed, each named once."""
    chosen = tuple(t.strip() for t in value.split(",") if t.strip())
    if not chosen:
        raise UnknownToolError(f"--parity-tools {value!r} names no tool; choose from {', '.join(names())}")
    for name in chosen:
        installed(get(name))
    if len(set(chosen)) != len(chosen):
        raise UnknownToolError(f"--parity-tools {value!r}: a tool is named twice; name each once")
    return chosen


def steering_tool(name: str) -> str:
    """The tool whose steerer steers for `name`: itself, or the reference steerer when it has none."""
    return name if get(name).own_steering else REFERENCE_STEERER


def get_steerer(name: str) -> Steerer:
    """The tool's own steerer; a tool without one steers through the reference steerer (hooks)."""
    plugin = get(steering_tool(name))
    installed(plugin)
    return plugin.make_steerer()
