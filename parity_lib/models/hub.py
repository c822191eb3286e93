"""Advice that several modules give: below all of them, so none imports another for it."""

from __future__ import annotations

import shutil


def download_hint(source: str) -> str:
    """The download command of the installed huggingface-hub (`hf` from 1.0, `huggingface-cli` before)."""
    try:
        import huggingface_hub

        major = int(huggingface_hub.__version__.split(".")[0])
    except (ImportError, ValueError):
        major = 1
    tool = "hf" if major >= 1 or shutil.which("hf") else "huggingface-cli"
    return f"{tool} download {source} --local-dir DIR"
