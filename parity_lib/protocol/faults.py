"""Faults of the machine, told apart from faults of a tool.

A check or cycle has three fates: passed, failed (the tool's result is wrong), or *not run* — the machine
could not run it: out of device or host memory, a model that overflows its dtype (no tool involved), a CUDA
error, a full disk. A not-run check names its cause, never counts against a tool and never feeds a Section E
rule; the report's first line names the fault first, with what to do. Pure: no pytest, no torch import.
"""

from __future__ import annotations

import errno
import re
import traceback
from dataclasses import asdict, dataclass
from typing import Any, Iterator

DEVICE_MEMORY = "OUT OF DEVICE MEMORY"
HOST_MEMORY = "OUT OF HOST MEMORY"
OVERFLOW = "OVERFLOW"  # worded with the dtype: "FLOAT16 OVERFLOW"
CUDA = "CUDA ERROR"
DISK = "DISK FULL"

ADVICE = {
    DEVICE_MEMORY: "use a card with more memory (the hardware page lists what fits where), run one model per card, "
                   "or lower --parity-max-new-tokens; bfloat16 (the GPU default) halves float32's weights",
    HOST_MEMORY: "free host memory (other jobs, fewer xdist workers) or use a machine with more RAM",
    OVERFLOW: "rerun in a dtype with float32's range: --parity-dtype bfloat16 (A10G, L4, A100, H100, RTX 30xx/40xx) "
              "or float32",
    CUDA: "check the driver and the card (nvidia-smi), then rerun: finished cycles are reused",
    DISK: "free disk space where --parity-results-dir, --parity-reports-dir and the HF cache live, then rerun: "
          "finished cycles are reused",
}


@dataclass(frozen=True)
class Fault:
    kind: str  # one of the constants above; OVERFLOW is worded "<DTYPE> OVERFLOW" in `title`
    title: str  # what the first line leads with, e.g. "FLOAT16 OVERFLOW"
    detail: str  # the exception's first line
    advice: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]


def classify(exc: BaseException) -> Fault | None:
    """The machine fault behind `exc` (or anything in its cause chain), or None when it is not one."""
    for e in _chain(exc):
        kind = _kind(e)
        if kind is not None:
            title = _overflow_title(e) if kind == OVERFLOW else kind
            return Fault(kind, title, _first_line(e), ADVICE[kind])
    return None


def _kind(e: BaseException) -> str | None:
    names = {c.__name__ for c in type(e).__mro__}
    if "ModelOverflowError" in names:
        return OVERFLOW
    if "DeviceOutOfMemoryError" in names or "OutOfMemoryError" in names:
        return DEVICE_MEMORY if "CPU" not in str(e) else HOST_MEMORY
    if isinstance(e, MemoryError):
        return HOST_MEMORY
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
        return DISK
    if "AcceleratorError" in names or (isinstance(e, RuntimeError) and re.search(
            r"CUDA error|CUBLAS_STATUS|cuDNN error|CUDNN_STATUS|device-side assert", str(e))):
        return CUDA
    return None


def _overflow_title(e: BaseException) -> str:
    match = re.match(r"([A-Z0-9]+) OVERFLOW", str(e))
    return f"{match.group(1)} OVERFLOW" if match else "OVERFLOW"


def free_frames(exc: BaseException) -> None:
    """Drop the local variables of every finished frame in `exc`'s traceback (and its causes'): a failed test's
    exception is kept by pytest, and its frames would keep the tensors of the call that ran out of memory."""
    for e in _chain(exc):
        if e.__traceback__ is not None:
            traceback.clear_frames(e.__traceback__)


def summary(faults: list[dict[str, Any]]) -> str:
    """The first line's lead for the not-run checks and cycles: each fault once, with its models and count."""
    by: dict[str, dict[str, Any]] = {}
    for f in faults:
        entry = by.setdefault(f["title"], {"models": [], "n": 0, "detail": f["detail"], "advice": f["advice"]})
        if f.get("model") and f["model"] not in entry["models"]:
            entry["models"].append(f["model"])
        entry["n"] += 1
    parts = []
    for title, e in by.items():
        lead, detail = f"{title}{' on ' + ', '.join(e['models']) if e['models'] else ''}", e["detail"]
        if detail.startswith(f"{title} on "):  # the error already leads with it: "FLOAT16 OVERFLOW on m from layer 3"
            lead, _, detail = detail.partition(": ")
        for model in e["models"]:
            detail = detail.removeprefix(f"{model}: ")
        them = "it" if len(e["models"]) < 2 else "them"
        n = e["n"]
        parts.append(f"{lead} ({detail}): no tool was judged on {them} — {n} check{'s' if n > 1 else ''}/cycle"
                     f"{'s' if n > 1 else ''} not run; {e['advice']}")
    return "; ".join(parts)
