"""What the launcher knows about a shard, for the report step's errors: a hole in the data names its shard's log.

The launcher writes `shards.json` (state, attempts, log per shard) and runs the report step with
`PARITY_SHARDS_FILE` pointing at it; outside a launch the note is empty.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def shard_note(model: str) -> str:
    path = os.environ.get("PARITY_SHARDS_FILE", "")
    try:
        shards = json.loads(Path(path).read_text()) if path else {}
    except (OSError, ValueError):
        return ""
    mine = [(name, s) for name, s in shards.items() if name == model or name.startswith(f"{model}-L")]
    failed = [(name, s) for name, s in mine if s.get("state") == "FAILED"]
    return "".join(f"shard {name} FAILED after {s.get('attempts')} attempt(s), log {s.get('log')}: "
                   for name, s in failed)
