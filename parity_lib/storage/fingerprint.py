"""What makes a cached cycle "the same computation": the weights, the tool's own code, the versions.

A cycle file is reused only when all of these match (with the model spec, prompts, settings, dtype,
device and the suite's code, in `cycle.config_key`). Swapping a tool's implementation under the same name,
upgrading nnsight, or replacing a weights file recomputes.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path

SAMPLES = 16
SAMPLE_BYTES = 1 << 20


def dependency_versions() -> dict[str, str | None]:
    """The versions every cycle depends on (torch, transformers, numpy, tokenizers, safetensors), read as
    provenance reads them; a tool's own package version is in its `tool_fingerprint`, so installing or
    upgrading one tool recomputes that tool's cycles only."""
    from parity_lib.storage.provenance import CORE, versions

    return {name: version for name, version in versions().items() if name in CORE}


@lru_cache(maxsize=64)
def _file_fingerprint(path: str, size: int, mtime_ns: int) -> str:
    """sha256 of the safetensors header, the size, and 16 evenly spaced 1 MiB samples of the data (a whole
    7B file would take a minute to hash; a changed tensor anywhere in a sample, or a changed header,
    shape or size, changes this). Remembered per (path, size, mtime) for the process."""
    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as fh:
        header_len = int.from_bytes(fh.read(8), "little")
        h.update(fh.read(min(header_len, 100 << 20)))
        for i in range(SAMPLES):
            fh.seek(size * i // SAMPLES)
            h.update(fh.read(SAMPLE_BYTES))
    return h.hexdigest()


def weights_fingerprint(source: str) -> str | None:
    """Over every safetensors file of a local model directory; None for a random/shape model or a hub id."""
    local = Path(source).expanduser()
    if not local.is_dir():
        return None
    files = sorted(local.glob("*.safetensors"))
    parts = []
    for file in files:
        stat = file.stat()
        parts.append((file.name, _file_fingerprint(str(file), stat.st_size, stat.st_mtime_ns)))
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def tool_fingerprint(tool: str) -> str:
    """The tool's own code, wherever it lives (in or out of this package), and its package's version
    (`tools.registry.fingerprint`); a name that is no tool ("unsteered", the baseline) is itself."""
    from parity_lib.tools import fingerprint, tools

    return fingerprint(tool) if tool in tools() else hashlib.sha256(tool.encode()).hexdigest()
