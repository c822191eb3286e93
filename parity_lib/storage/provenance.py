"""What every result records so it can be reproduced: versions, commit, machine, dtype, device, seed."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata as md
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch

CORE = ("torch", "transformers", "numpy", "tokenizers", "safetensors")
REPO = Path(__file__).resolve().parents[2]


def tracked() -> tuple[str, ...]:
    """The core libraries, then every registered tool's package (nnsight, pyvene, transformer-lens, …)."""
    from parity_lib.tools import tools

    packages = [t.package for t in tools().values() if t.package]
    return tuple(dict.fromkeys((*CORE, *packages)))


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in tracked():
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = None
    return out


def git_commit() -> dict[str, Any]:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                              timeout=10).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD") or None
        dirty = bool(git("status", "--porcelain", "--untracked-files=no", "--", "parity_lib"))
    except (OSError, subprocess.SubprocessError):
        commit, dirty = None, None
    return {"commit": commit, "dirty": dirty}


def device_name(device: str) -> str:
    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return platform.processor() or platform.machine()


def provenance(*, dtype: str, device: str, seed: int, prompt_sha256: str, **extra: Any) -> dict[str, Any]:
    return {"versions": versions(), **git_commit(), "dtype": dtype, "device": device,
            "device_name": device_name(device), "seed": seed, "prompt_sha256": prompt_sha256,
            "host": platform.node(), "platform": platform.platform(),
            "torch_threads": torch.get_num_threads(),
            "utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), **extra}


def code_fingerprint() -> str:
    """sha256 over the library's source: a cached result is reused only for the same code."""
    import hashlib

    h = hashlib.sha256()
    for path in sorted((REPO / "parity_lib").rglob("*.py")):
        if "organisms" in path.parts:
            continue
        h.update(path.relative_to(REPO).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()
