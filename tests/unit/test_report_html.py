"""report.html opens with the verdict: above pytest-html's Environment table, as a browser renders the page
(pytest-html builds its tables with JavaScript, so only a real browser shows what a reader sees first)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from parity_lib.report.html import BANNER_ID, put_verdict_first

BROWSER = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
VERDICT = "ON TEST MODELS (…): STEERING HAS NO EFFECT on m at layer 3 ×2: coherent refusal hooks 0% [0, 39]"


def _pytest_html_page(tmp_path: Path) -> Path:
    """A real pytest-html report of a one-test run (the plugin's own hooks are not needed for the layout)."""
    (tmp_path / "test_one.py").write_text("def test_one():\n    assert True\n")
    page = tmp_path / "report.html"
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:parity_lib.plugin",
                           f"--html={page}", "--self-contained-html", "--rootdir", str(tmp_path),
                           str(tmp_path / "test_one.py")], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return page


def _rendered(page: Path) -> str:
    assert BROWSER is not None
    done = subprocess.run([BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "<body" in done.stdout, done.stderr[-2000:]
    return done.stdout


def test_the_verdict_goes_under_the_title_once(tmp_path):
    page = _pytest_html_page(tmp_path)
    text = page.read_text()
    assert text.index("Environment") < text.index("Summary")  # pytest-html's own order: Environment first
    assert put_verdict_first(page, VERDICT, ["Section E verdict: Outcome 4", "Next: try another layer"])
    assert not put_verdict_first(page, VERDICT, []), "a second call must not add a second banner"
    text = page.read_text()
    assert text.count(f'id="{BANNER_ID}"') == 1
    assert text.index("</h1>") < text.index(BANNER_ID) < text.index("Environment")


@pytest.mark.skipif(BROWSER is None, reason="no Chromium here: `apt-get install chromium` to check the page as "
                                            "a browser renders it")
def test_a_browser_shows_the_verdict_before_the_environment_table(tmp_path):
    page = _pytest_html_page(tmp_path)
    before = _rendered(page)
    assert BANNER_ID not in before  # the page as pytest-html alone writes it: no verdict above the Environment
    put_verdict_first(page, VERDICT, ["Section E verdict: Outcome 4"])
    body = _rendered(page).split("<body", 1)[1]
    assert body.index(BANNER_ID) < body.index('id="environment-header"') < body.index('<table id="environment"'), (
        "the verdict must come before the Environment table")
    assert "STEERING HAS NO EFFECT" in body.split('id="environment-header"')[0]
    shot = tmp_path / "report.png"
    subprocess.run([BROWSER, "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={shot}",
                    "--window-size=1200,900", page.as_uri()], capture_output=True, timeout=120)
    assert shot.is_file() and shot.stat().st_size > 10_000, "the headless browser made no screenshot"
