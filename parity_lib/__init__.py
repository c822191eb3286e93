"""The parity suite's library: is what your interpretability tool extracts, and how it steers, what you think?

The short public API, for a notebook or a script (the pytest plugin is built on the same names):

    from parity_lib import Suite, load_model, load_prompts, parse_model, run_cycle, StudySettings
    lm = load_model(parse_model("qwen2-organism"), "bfloat16", "cuda")
    result = run_cycle(lm, "nnsight", load_prompts(), StudySettings(max_new_tokens=64), repeat=1)
    result.rates()  # {"refusal": ..., "garbled": ..., "normal": ...}

Names load lazily: importing `parity_lib` (as `pytest --help` does through the plugin) imports no torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_API = {
    "Suite": ("run.session", "Suite"),
    "ModelSpec": ("models.registry", "ModelSpec"),
    "LoadedModel": ("models.loading", "LoadedModel"),
    "parse_model": ("models.registry", "parse_model"),
    "load_model": ("models.loading", "load"),
    "load_prompts": ("prompts", "load_prompts"),
    "StudySettings": ("run.cycle", "StudySettings"),
    "run_cycle": ("run.cycle", "run_cycle"),
    "extract_direction": ("run.cycle", "extract_direction"),
    "get_extractor": ("tools.registry", "get_extractor"),
    "get_steerer": ("tools.registry", "get_steerer"),
    "SteeringSpec": ("tools.spec", "SteeringSpec"),
    "record_firing": ("run.firing", "record_firing"),
    "gate": ("run.gate", "gate"),
    "summarize_model": ("protocol.metrics", "summarize_model"),
}
__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'parity_lib' has no attribute {name!r}")
    module, attr = _API[name]
    value = getattr(import_module(f"{__name__}.{module}"), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
