"""Any tool can be checked: a package that declares a `parity_suite.tools` entry point is found by the
suite with no change to parity_lib, checked like the built-in tools, and its cycles are recomputed when
its code changes.

The package is built here and pip-installed (no dependencies, no build isolation: offline) into a fresh
venv that reaches this environment's torch / transformers / nnsight / pyvene through a `.pth` path entry,
as `test_install.py` does (this environment's pip installs into it); this checkout's parity_lib comes
first on PYTHONPATH.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import textwrap
import venv
from pathlib import Path

import pytest

from parity_lib.errors import ToolNotInstalledError, UnknownToolError
from parity_lib.tools import ToolPlugin, registered
from parity_lib.tools.registry import parse_tools

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.xdist_group("tool-plugin-venv")  # one venv per module: its tests on one worker
SMALL = ["--parity-model", "qwen2-organism", "--parity-tools", "hooks,demo", "--parity-repeats", "2",
         "--parity-n-eval", "6", "--parity-max-new-tokens", "16", "-p", "no:cacheprovider", "-q"]

PYPROJECT = """
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "parity-tool-demo"
version = "0.1.0"

[project.entry-points."parity_suite.tools"]
demo = "parity_tool_demo:TOOL"
"""
INIT = '''
"""Declares the tool; imports nothing heavy (`pytest --help` lists it from the entry point's name)."""
from parity_lib.tools import ToolPlugin

TOOL = ToolPlugin("demo", "parity_tool_demo.extract:DemoExtractor", steerer=None,
                  display="forward hook on the decoder layer, written outside the suite",
                  package="parity-tool-demo", install="parity-tool-demo")
'''
EXTRACT = '''
import torch

from parity_lib.extractors.base import finish, unwrap


class DemoExtractor:
    name = "demo"

    def extract(self, lm, batch, layer):
        store = []
        handle = lm.layers[layer].register_forward_hook(
            lambda module, args, output: store.append(unwrap(output).detach().clone()))
        try:
            with torch.no_grad():
                lm.model(**batch.model_inputs(), use_cache=False)
        finally:
            handle.remove()
        return finish(store[0], batch, self.name)
'''


@pytest.fixture(scope="module")
def demo_env(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("plugin")
    package = root / "parity-tool-demo"
    (package / "parity_tool_demo").mkdir(parents=True)
    (package / "pyproject.toml").write_text(PYPROJECT)
    (package / "parity_tool_demo" / "__init__.py").write_text(textwrap.dedent(INIT))
    (package / "parity_tool_demo" / "extract.py").write_text(textwrap.dedent(EXTRACT))
    env_dir = root / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)  # ensurepip's old setuptools would shadow this one
    python = env_dir / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "outer_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                              "--no-build-isolation", str(package)], capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-3000:]
    return {"python": python, "installed": site / "parity_tool_demo" / "extract.py", "root": root}


def run(demo_env: dict, *args: str) -> subprocess.CompletedProcess:
    where = demo_env["root"]
    cmd = [demo_env["python"], "-m", "pytest", "parity_lib/suite", *SMALL, f"--parity-results-dir={where / 'results'}",
           f"--parity-reports-dir={where / 'reports'}", *args]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900, env=env)


def cycle_lines(done: subprocess.CompletedProcess, tool: str) -> list[str]:
    return [line for line in done.stdout.splitlines() if f"qwen2-organism/{tool}/r" in line]


def test_an_installed_package_registers_a_tool_that_the_suite_checks(demo_env):
    done = run(demo_env, "-m", "preflight or study")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    checklist = json.loads((demo_env["root"] / "results" / "phase1_parity_checklist.json").read_text())
    demo_checks = {e["check"] for e in checklist["entries"] if e["tool"] in ("demo", "hooks~demo")}
    assert {"environment.tool_importable", "residual_location", "token_position", "timing", "cross_tool",
            "in_place_safety", "isolation"} <= demo_checks, demo_checks
    report = (demo_env["root"] / "reports" / "phase1_outcome.md").read_text()
    row = next(line for line in report.splitlines() if line.startswith("| demo |"))
    assert "parity-tool-demo 0.1.0" in row, row
    assert "the reference steerer (hooks) applies its direction; it has no mechanism of its own" in row, row


def test_changing_the_tools_code_recomputes_its_cycles(demo_env):
    for _ in range(2):  # the first computes what an earlier test has not, the second must reuse it all
        first = run(demo_env, "-m", "study", "-k", "test_cycle_completes", "-v")
        assert first.returncode == 0, first.stdout[-4000:]
    assert cycle_lines(first, "demo") and all("reused" in line for line in cycle_lines(first, "demo")), \
        cycle_lines(first, "demo")
    source = demo_env["installed"]
    source.write_text(source.read_text() + "\n# a changed line in the tool's own code\n")
    second = run(demo_env, "-m", "study", "-k", "test_cycle_completes", "-v")
    assert second.returncode == 0, second.stdout[-4000:]
    assert cycle_lines(second, "demo") and all("computed in " in line for line in cycle_lines(second, "demo")), \
        cycle_lines(second, "demo")
    assert all("reused" in line for line in cycle_lines(second, "hooks")), cycle_lines(second, "hooks")


def test_a_tool_whose_package_is_missing_is_one_error_naming_the_extra():
    ghost = ToolPlugin("ghost", "parity_lib.tools.hooks:HooksExtractor", package="parity-ghost-not-installed",
                       install="parity-suite[ghost]")
    with registered(ghost), pytest.raises(ToolNotInstalledError) as err:
        parse_tools("hooks,ghost")
    assert str(err.value) == ("tool 'ghost' needs the package 'parity-ghost-not-installed', which is not installed "
                              "in this environment: pip install 'parity-suite[ghost]'")


def test_a_tool_name_taken_twice_is_refused():
    with pytest.raises(UnknownToolError, match="registered already"), registered(ToolPlugin("hooks", object)):
        pass
