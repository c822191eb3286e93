"""Bad input is one clear error, once, before any test runs and before any file is written.

`validate(suite, results_dir, reports_dir)` checks what a run would otherwise discover half-way (or
never): every model's weights present and readable (a corrupt file is named), the layer inside the
model, a known, finite, non-zero multiplier, no tool named twice, output directories writable. Reading a
config and a safetensors header costs milliseconds; nothing is loaded.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

from parity_lib.errors import ConfigError, LayerOutOfRangeError, ModelSpecError, WeightsNotFoundError
from parity_lib.models.hub import download_hint

if TYPE_CHECKING:
    from parity_lib.models.registry import ModelSpec
    from parity_lib.run.session import Suite


def _weights(spec: ModelSpec, allow_network: bool) -> Path | None:
    """The model's local directory (None for a hub id the cache holds or the network may fetch)."""
    local = Path(spec.source).expanduser()
    if not local.exists():
        from huggingface_hub import try_to_load_from_cache

        if try_to_load_from_cache(spec.source, "config.json") is None and not allow_network:
            mult = f"{spec.multiplier:g}" if spec.multiplier_known else "MULT"
            maybe_dir = (f" (no directory {spec.source} exists either, if that is what you meant)"
                         if "/" in spec.source else "")
            raise WeightsNotFoundError(
                f"--parity-model {spec.name}: weights for {spec.source!r} are not present locally (no hub access at "
                f"run time){maybe_dir}. Download them on a machine with network (`{download_hint(spec.source)}`) "
                f"and pass --parity-model DIR:{spec.layer}:{mult}, or put them in the HF cache; "
                f"--parity-allow-network lets the run download them itself.")
        return None
    files = sorted(local.glob("*.safetensors"))
    if not files:
        raise WeightsNotFoundError(f"--parity-model {spec.name}: directory {local} holds no weights (*.safetensors); "
                                   f"save the model there with save_pretrained(..., safe_serialization=True)")
    from safetensors import safe_open

    for file in files:
        try:
            with safe_open(str(file), "pt") as handle:
                handle.keys()
        except Exception as exc:  # a truncated or corrupt file: name it
            raise WeightsNotFoundError(f"--parity-model {spec.name}: {file} is not a readable safetensors file "
                                       f"({type(exc).__name__}: {exc}); download or save it again") from None
    return local


def _n_layers(spec: ModelSpec, local: Path | None, allow_network: bool) -> int | None:
    if spec.kind in ("random", "shape"):
        from parity_lib.models.shapes import build_config

        return int(build_config(spec).num_hidden_layers)
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(str(local) if local else spec.source, local_files_only=not allow_network)
    except (OSError, ValueError) as exc:
        raise ModelSpecError(f"--parity-model {spec.name}: cannot read its config.json ({exc})") from None
    config = getattr(config, "text_config", config)
    return getattr(config, "num_hidden_layers", None)


def depth(spec: ModelSpec, allow_network: bool = False) -> int:
    """The model's number of decoder layers, from its config (nothing is loaded)."""
    local = None if spec.kind in ("random", "shape") else _weights(spec, allow_network)
    n = _n_layers(spec, local, allow_network)
    if n is None:
        raise ModelSpecError(f"--parity-model {spec.name}: its config names no num_hidden_layers")
    return int(n)


def typed_as(spec: ModelSpec) -> str:
    from parity_lib.models.registry import typed_as as how  # lazily: validating imports no torch until a model needs it

    return how(spec)


def _override(suite: Suite) -> float | None:
    """`--parity-multiplier`, checked whatever the run selects (a preflight-only run too)."""
    override = suite.settings.multiplier
    if override is not None and (not math.isfinite(override) or override == 0):
        raise ConfigError(f"--parity-multiplier {override}: must be a finite, non-zero number (units of the unit "
                          f"direction, e.g. 15)")
    return override


def _multiplier(spec: ModelSpec, suite: Suite) -> None:
    if _override(suite) is not None:
        return
    if not spec.multiplier_known:
        raise ModelSpecError(f"--parity-model {spec.name}: no steering multiplier is known for this model; give one "
                             f"as --parity-model {typed_as(spec)}:{spec.layer}:MULT (in units of the unit direction; "
                             f"the paper used 15 for Qwen2.5-7B and 25 for Gemma-2-9B) or --parity-multiplier M")
    value = spec.multiplier_for(suite.settings.scope)
    if not math.isfinite(value) or value == 0:
        raise ModelSpecError(f"--parity-model {spec.name}: multiplier {value} must be finite and non-zero")


def _writable(option: str, path: Path) -> None:
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{option}={path}: this is a file; give a directory")
    existing = next(p for p in [path, *path.parents] if p.exists())
    if not existing.is_dir():
        raise ConfigError(f"{option}={path}: {existing} is a file; give a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"{option}={path}: {existing} is not writable; choose a directory you can write to")


def validate(suite: Suite, results_dir: Path, reports_dir: Path, steering: bool = True) -> None:
    """`steering=False` for a run that only extracts (`-m preflight`): no multiplier is needed there."""
    if len(set(suite.tools)) != len(suite.tools):
        raise ConfigError(f"--parity-tools {','.join(suite.tools)}: a tool is named twice; name each once")
    _override(suite)
    for spec in suite.models:
        value = spec.multiplier_for(suite.settings.scope)
        if spec.multiplier_known and (not math.isfinite(value) or value == 0):  # e.g. DIR:12:0, even under preflight
            raise ModelSpecError(f"--parity-model {spec.name}: multiplier {value} must be finite and non-zero")
        local = None if spec.kind in ("random", "shape") else _weights(spec, suite.allow_network)
        n = _n_layers(spec, local, suite.allow_network)
        if n is not None and not 0 <= spec.layer < n:
            raise LayerOutOfRangeError(f"--parity-model {spec.name}: layer {spec.layer} is out of range, the model has "
                                       f"{n} decoder layers (0..{n - 1}); pass --parity-model {typed_as(spec)}:LAYER")
        if steering:
            _multiplier(spec, suite)
        if suite.sweep.layers and n is not None:
            from parity_lib.run.sweep import resolve_layers

            resolve_layers(suite.sweep.layers, n, spec.layer)
    _writable("--parity-results-dir", results_dir)
    _writable("--parity-reports-dir", reports_dir)
