"""The run's configuration from the command line: models, tools, prompts, settings, device and dtype, each bad
value one usage error that says what to fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from parity_lib.run.session import Suite


def worker_device(device: str, config: Any) -> str:
    """Each xdist worker on its own GPU: worker index modulo visible GPUs, chosen before any CUDA use."""
    worker = getattr(config, "workerinput", {}).get("workerid")
    if device != "cuda" or worker is None:
        return device
    import torch

    count = torch.cuda.device_count()
    return f"cuda:{int(worker.removeprefix('gw')) % count}" if count else device


def build_suite(config: pytest.Config) -> Suite:
    """The run's configuration from the command line; a bad value is one usage error that says what to fix."""
    from parity_lib.errors import ConfigError
    from parity_lib.models.registry import parse_model
    from parity_lib.plugin import catalog
    from parity_lib.prompts import load_prompts
    from parity_lib.run.cycle import StudySettings
    from parity_lib.run.session import Suite
    from parity_lib.tools import required_attention
    from parity_lib.tools.registry import parse_tools

    opt = config.getoption
    try:
        tools = parse_tools(opt("--parity-tools"))
        specs = tuple(_ready(parse_model(m), opt("--parity-system-prompt"))
                      for m in (opt("--parity-model") or catalog.DEFAULT_MODELS))
        prompts = load_prompts(opt("--parity-prompts"), allow_python=True)
        settings = StudySettings(opt("--parity-repeats"), opt("--parity-scope"), opt("--parity-steer-with"),
                                 opt("--parity-max-new-tokens"), opt("--parity-gen-batch-size"),
                                 opt("--parity-n-eval"), opt("--parity-multiplier"),
                                 opt("--parity-generation"), opt("--parity-packing"))
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise pytest.UsageError(f"--parity-model given twice for the same name: {names}")
    shard = opt("--parity-shard").partition("@")[0]
    if shard and shard not in names:
        raise pytest.UsageError(f"--parity-shard {opt('--parity-shard')}: {shard} is not one of the run's models "
                                f"({', '.join(names)})")
    device = worker_device(opt("--parity-device"), config)
    check_device(device)
    try:
        attention, needed_by = required_attention(tools)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    asked = opt("--parity-attention")
    if asked and attention and asked != attention:
        raise pytest.UsageError(f"--parity-attention {asked}: {', '.join(needed_by)} computes attention {attention} "
                                f"whatever the model says; drop --parity-attention or that tool")
    attention = asked or attention
    try:
        from parity_lib.run.sweep import SweepSettings, parse_multipliers

        sweep = SweepSettings(opt("--parity-layers"), parse_multipliers(opt("--parity-multipliers")),
                              opt("--parity-sweep-repeats"))
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    dtype = opt("--parity-dtype") or default_dtype(device)
    suite = Suite(specs, tools, prompts, dtype, device, opt("--parity-seed"),
                  opt("--parity-allow-network"), opt("--parity-trust-remote-code"), settings,
                  attention, sweep)
    from parity_lib.plugin.validate import validate

    try:  # bad input: one clear error now, before any test runs or any file is written
        markexpr = config.option.markexpr or ""
        extract_only = "preflight" in markexpr and not any(w in markexpr for w in ("study", "golden", "not"))
        validate(suite, Path(opt("--parity-results-dir")), Path(opt("--parity-reports-dir")),
                 steering=not extract_only)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    return suite


def _ready(spec: Any, system_prompt: str | None) -> Any:
    """A packaged real model's directory made on first use (said on stderr); the system prompt asked for."""
    from dataclasses import replace

    if spec.packaged:
        from parity_lib.models.packaged import ensure

        ensure(spec.packaged)
    if system_prompt is not None:
        spec = replace(spec, system_prompt="" if system_prompt.strip().lower() == "none" else system_prompt)
    return spec


def default_dtype(device: str) -> str:
    """bfloat16 on a GPU (a 7B model in float32 needs 30 GB), float32 on the CPU (where bfloat16 is slow)."""
    return "bfloat16" if device.startswith("cuda") else "float32"


def check_device(device: str) -> None:
    if device == "cpu":
        return
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise pytest.UsageError(f"--parity-device {device}: no CUDA device is visible (torch "
                                    f"{torch.__version__}); use --parity-device cpu or check CUDA_VISIBLE_DEVICES")
        return
    raise pytest.UsageError(f"--parity-device {device!r}: use cpu, cuda or cuda:N")
