"""What makes a cached cycle "the same computation": the weights, the tool's own code, the versions.

A cycle file is reused only when all of these match (with the model spec, prompts, settings, dtype,
device and the suite's code, in `cycle.config_key`). Swapping a tool's implementation under the same name,
upgrading nnsight, or replacing a weights file recomputes.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

SAMPLES = 16
SAMPLE_BYTES = 1 << 20


def dependency_versions() -> dict[str, str | None]:
    """The versions provenance records (torch, transformers, nnsight, pyvene, numpy, tokenizers,
    safetensors), without Python's: the same reader for the record and for the cache key."""
    from .provenance import versions

    return {name: version for name, version in versions().items() if name != "python"}


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


def _source_of(obj: Any) -> str:
    """The whole source file that defines the tool (its helpers included), else the object itself."""
    target = obj if inspect.isclass(obj) or inspect.isfunction(obj) else type(obj)
    try:
        path = inspect.getsourcefile(target)
        return Path(path).read_text(encoding="utf-8") if path else inspect.getsource(target)
    except (OSError, TypeError):
        return repr(obj)


def tool_fingerprint(tool: str) -> str:
    """The tool's extractor and steerer code (wherever they live, in or out of this package)."""
    from .extractors import TOOLS
    from .steering import STEERERS

    h = hashlib.sha256(tool.encode())
    for registry in (TOOLS, STEERERS):
        if tool in registry:
            h.update(_source_of(registry[tool]).encode())
    return h.hexdigest()
