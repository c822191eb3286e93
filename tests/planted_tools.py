"""A pytest plugin for the verdict-validity runs only (`-p tests.planted_tools`): registers planted
wrong tools so a real study run can be made to diverge on purpose, and can interrupt a run."""

import os

from parity_lib.tools import ToolPlugin, register
from parity_lib.tools.hooks import HooksExtractor
from tests.planted import (
    MlpOutput,
    MlpOutputOnGemma,
    NeighbourLayerInStudy,
    OutOfMemoryOnGemma,
    ScaledSteerer,
    SteersSomeRows,
)

register(ToolPlugin("planted-mlp", MlpOutput, None, "planted: the MLP output"),
         ToolPlugin("planted-mlp-gemma-only", MlpOutputOnGemma, None, "planted: the MLP output on Gemma2"),
         # extracts correctly (the hooks extractor), steers only the even rows: the paper's case, same direction
         ToolPlugin("planted-some-rows", HooksExtractor, SteersSomeRows, "planted: steers the even rows"),
         # extracts correctly, steers with 1.5 × the multiplier: a shifted dose-response curve
         ToolPlugin("planted-scaled-1.5", HooksExtractor, ScaledSteerer, "planted: steers at 1.5× the scale"),
         ToolPlugin("planted-neighbour-in-study", NeighbourLayerInStudy, None,
                    "planted: right in preflight and the gate, layer L+1 in the study"),
         # extracts correctly on Qwen2; on Gemma2 the device "runs out of memory": a machine fault, not the tool's
         ToolPlugin("planted-oom-gemma", OutOfMemoryOnGemma, None, "planted: out of device memory on Gemma2"))

_INTERRUPT_AFTER = int(os.environ.get("PARITY_TEST_INTERRUPT_AFTER_CYCLES", "0"))
_cycles_done = [0]


def pytest_runtest_logreport(report):
    """Ctrl-C after N finished cycles (PARITY_TEST_INTERRUPT_AFTER_CYCLES=N), as a user would."""
    if _INTERRUPT_AFTER and report.when == "call" and "test_cycle_completes" in report.nodeid:
        _cycles_done[0] += 1
        if _cycles_done[0] >= _INTERRUPT_AFTER and _interrupt_now():
            raise KeyboardInterrupt


_ONCE_FLAG = os.environ.get("PARITY_TEST_INTERRUPT_ONCE_FLAG", "")  # interrupt only while this file does not exist
_FAIL_SHARD = os.environ.get("PARITY_TEST_FAIL_SHARD", "")  # this shard dies at its start, every attempt


def pytest_sessionstart(session):
    """A shard that crashes for good (PARITY_TEST_FAIL_SHARD=MODEL): what the launcher must report as missing."""
    if _FAIL_SHARD and session.config.getoption("--parity-shard", "") == _FAIL_SHARD:
        os._exit(3)


def _interrupt_now() -> bool:
    if not _ONCE_FLAG:
        return True
    if os.path.exists(_ONCE_FLAG):
        return False
    open(_ONCE_FLAG, "w").close()
    return True


_DISK_FULL_ON = os.environ.get("PARITY_TEST_DISK_FULL_ON", "")  # cycle files of this model hit a full disk


def pytest_configure(config):
    """A full disk under one model's results (PARITY_TEST_DISK_FULL_ON=MODEL): writing its cycle files fails with
    ENOSPC, as it does when the results directory's filesystem fills up mid-study."""
    if not _DISK_FULL_ON:
        return
    import errno

    from parity_lib.run import study

    real = study.write_cycle

    def write_cycle(path, record):
        if f"/{_DISK_FULL_ON}/" in str(path):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, record)

    study.write_cycle = write_cycle
