"""What a tool is to the suite: an extractor, a steerer (or the reference one), and what identifies it.

A `ToolPlugin` names its parts as "module:attribute" strings (or the objects themselves), so declaring a
tool imports nothing heavy: `pytest --help` lists tools without importing torch or the tool's package.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

REFERENCE_STEERER = "hooks"  # the steerer a tool without its own steering mechanism steers through


@dataclass(frozen=True)
class ToolPlugin:
    """One tool. `extractor` / `steerer`: a class (or zero-argument factory), or its "module:attribute".

    `steerer=None` declares that the tool has no steering mechanism of its own: it steers through the
    reference steerer (raw forward hooks), and the report says so. `package` is the distribution whose
    version provenance records and whose absence is one clear error naming `install` (a pip requirement,
    e.g. "parity-suite[transformer-lens]"). `code` lists the modules or packages whose source is the tool's
    code, hashed into the cache key of its cycles (default: the extractor's and steerer's modules).
    `attention` is the attention implementation the tool computes whatever the model's setting (a
    TransformerLens bridge computes attention eagerly): the suite loads the model with it so every tool
    runs the same computation, and says so.
    """

    name: str
    extractor: Any
    steerer: Any = None
    display: str = ""
    package: str | None = None
    install: str | None = None
    code: tuple[str, ...] = ()
    attention: str | None = None

    @property
    def own_steering(self) -> bool:
        return self.steerer is not None

    @property
    def steering_note(self) -> str:
        if self.own_steering:
            return "its own mechanism"
        return f"through the reference steerer ({REFERENCE_STEERER}): the tool has no steering mechanism of its own"

    def make_extractor(self) -> Any:
        return resolve(self.extractor)()

    def make_steerer(self) -> Any:
        return resolve(self.steerer)() if self.steerer is not None else None

    def code_modules(self) -> tuple[str, ...]:
        if self.code:
            return self.code
        return tuple(dict.fromkeys(module_of(part) for part in (self.extractor, self.steerer) if part is not None))


def resolve(ref: Any) -> Any:
    """"pkg.module:Attr" -> the attribute (imported now); anything else is returned as it is."""
    if not isinstance(ref, str):
        return ref
    module, _, attr = ref.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split(".") if attr else ():
        obj = getattr(obj, part)
    return obj


def module_of(ref: Any) -> str:
    return ref.partition(":")[0] if isinstance(ref, str) else getattr(ref, "__module__", type(ref).__module__)
