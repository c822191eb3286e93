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


def test_non_editable_install_runs_preflight_from_another_directory(tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "outer_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", str(REPO)],
                             capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-3000:]

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
    assert sys.prefix != str(env_dir)
