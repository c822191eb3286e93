"""Processes that share a GPU take turns when their models do not fit on it together.

Each process that loads a model on a CUDA device books it in a small ledger beside the device (a JSON file in
the temporary directory, named by the device's UUID, read and written under an exclusive file lock): how many
bytes (the weights and the study's widest generate call in one piece), for which model, by which process. The
memory planner counts the other processes' bookings as taken. A booking is granted when the bookings of the
other live processes plus this one fit the card as this process sees it (its total memory, or the per-process
cap that simulates a smaller card); otherwise the process waits, says so once, and asks again. Bookings of
processes that have exited are dropped, so a worker that crashed or finished frees its turn. Two xdist workers
on one 80 GB card load the 7B and 9B models at once; on a 24 or 40 GB card the second waits for the first to
finish. Workers on different GPUs never meet in a ledger.
"""

from __future__ import annotations

import atexit
import fcntl
import json
import os
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import torch

GIB = 1024**3

POLL_S = 1.0
SETTLE_S = 120.0  # after a turn is granted: how long to wait for the previous holder's memory to come back


@dataclass
class Booking:
    path: Path
    key: str

    def release(self) -> None:
        with _locked(self.path) as entries:
            entries.pop(self.key, None)


def card_bytes(index: int) -> int:
    """The card as this process sees it: its total memory, or the per-process cap set on it."""
    total = torch.cuda.get_device_properties(index).total_memory
    getter = getattr(torch.cuda, "get_per_process_memory_fraction", None)
    fraction = float(getter(index)) if getter is not None else 1.0
    return int(total * min(1.0, fraction))


def device_free_bytes(device: torch.device) -> int:
    """The device's free memory (the other processes' allocations already subtracted)."""
    return int(torch.cuda.mem_get_info(device)[0])


def gib(n: float) -> str:
    return f"{n / GIB:.1f}"


def ledger_path(index: int) -> Path:
    uuid = str(getattr(torch.cuda.get_device_properties(index), "uuid", index))
    return Path(tempfile.gettempdir()) / f"parity-gpu-{uuid}.json"


@contextmanager
def _locked(path: Path) -> Iterator[dict]:
    """The ledger's entries, read and written back under an exclusive lock."""
    with open(path.with_suffix(".lock"), "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            try:
                entries = json.loads(path.read_text())
            except (OSError, ValueError):
                entries = {}
            entries = {k: v for k, v in entries.items() if _alive(int(v["pid"]))}
            yield entries
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(entries))
            os.replace(tmp, path)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _alive(pid: int) -> bool:
    """A process that has exited is not alive, even while its parent has not reaped it yet (a zombie: an xdist
    worker that finished before the controller collected it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def booked_by_others(index: int) -> int:
    """Bytes the other live processes booked on this card (0 when none did)."""
    path = ledger_path(index)
    if not path.exists():
        return 0
    with _locked(path) as entries:
        return sum(int(v["bytes"]) for v in entries.values() if int(v["pid"]) != os.getpid())


def book(device: torch.device, need: int, label: str, on_wait: Callable[[str], None] = lambda line: None) -> Booking:
    """Wait until `need` bytes fit beside the other live processes' bookings on `device`, then book them."""
    index = device.index if device.index is not None else torch.cuda.current_device()
    path, card = ledger_path(index), card_bytes(index)
    key = f"{os.getpid()}:{label}"
    said = False
    while True:
        with _locked(path) as entries:
            others = {k: v for k, v in entries.items() if int(v["pid"]) != os.getpid()}
            held = sum(int(v["bytes"]) for v in others.values())
            if not others or held + need <= card:
                entries[key] = {"pid": os.getpid(), "bytes": need, "label": label}
                break
        if not said:
            holders = ", ".join(f"{v['label']} ({gib(int(v['bytes']))} GiB)" for v in others.values())
            on_wait(f"{label}: waiting for cuda:{index} ({gib(need)} GiB needed, {gib(card)} GiB card, held by "
                    f"{holders}): models that do not fit together take turns")
            said = True
        time.sleep(POLL_S)
    booking = Booking(path, key)
    atexit.register(booking.release)
    if said:
        _settle(device, need)
    return booking


def _settle(device: torch.device, need: int) -> None:
    """The previous holder has left the ledger; its memory returns when its process has exited."""
    deadline = time.monotonic() + SETTLE_S
    while device_free_bytes(device) < need and time.monotonic() < deadline:
        time.sleep(POLL_S)
