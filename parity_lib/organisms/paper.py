"""The paper's prompt data (contrastive, evaluation, keywords, garbled rules) as the organisms need it.

The organisms are built *around* these prompts: their words must be in the training corpus, the
prompts themselves must not be, and behaviour is measured on them. The data is the suite's own
`PromptSet`, read by the suite's loader (same validation, same error messages).
"""

from __future__ import annotations

from pathlib import Path

from parity_lib.prompts import DEFAULT_PROMPTS as DEFAULT_PAPER_PROMPTS
from parity_lib.prompts import PromptSet, load_prompts


def load_paper(path: Path = DEFAULT_PAPER_PROMPTS) -> PromptSet:
    """Read the paper's prompt file (`fixtures/prompts/paper_prompts.json` by default)."""
    return load_prompts(path)
