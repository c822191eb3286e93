"""Turning the suite on for a pytest process: the run's data built once, torch threads shared between workers.

Below both the plugin (which activates on its configuration) and the fixtures (which activate when a test asks
for one of them), so neither imports the other.
"""

from __future__ import annotations

import os
import time

import pytest

from parity_lib.plugin.run_data import RUN_KEY, ParityRun

ACTIVE_KEY = pytest.StashKey[bool]()
STARTED_KEY = pytest.StashKey[float]()


def is_active(config: pytest.Config) -> bool:
    return config.stash.get(ACTIVE_KEY, False)


def activate(config: pytest.Config) -> None:
    """Build the run's data (models are loaded later, once per process, when a test needs them)."""
    if is_active(config):
        return
    config.stash[ACTIVE_KEY] = True
    config.stash[STARTED_KEY] = time.perf_counter()
    if config.getoption("--parity-deterministic"):
        from parity_lib.run.determinism import enable_determinism

        enable_determinism(config.getoption("--parity-seed"))
    config.stash[RUN_KEY] = ParityRun.from_config(config)
    config.pluginmanager.register(config.stash[RUN_KEY], "parity-run")
    _share_cores(config)
    _sigterm_as_interrupt()


def _sigterm_as_interrupt() -> None:
    """SIGTERM (what SLURM sends at a time limit or preemption, what `kill` sends) ends the run as Ctrl-C does:
    finished cycles stay on disk and the report says [INTERRUPTED]. Only where nobody set a handler already."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return

    def interrupt(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the process at once
        raise KeyboardInterrupt("SIGTERM")

    signal.signal(signal.SIGTERM, interrupt)


def _share_cores(config: pytest.Config) -> None:
    """xdist workers share the CPU: each gets cores // workers threads (PARITY_KEEP_THREADS=1 keeps torch's
    own choice). A single process keeps torch's default."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None or os.environ.get("PARITY_KEEP_THREADS"):
        return
    import torch

    torch.set_num_threads(min(torch.get_num_threads(), core_share(workerinput)))


def core_share(workerinput: dict) -> int:
    """One xdist worker's share of the cores: cores // workers, at least 1."""
    return max(1, (os.cpu_count() or 1) // max(1, int(workerinput.get("workercount", 1))))
