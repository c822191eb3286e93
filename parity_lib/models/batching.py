"""Left-padded batches with an attention mask and mask-derived position ids.

Padding is done here, not by the tokenizer, so the result does not depend on a `padding_side` that
another library may have changed (nnsight's TransformersModel sets it to 'left' on the tokenizer you
pass). Position ids come from the mask (cumsum − 1): with left padding the model's default positions
would start at the pad tokens and shift every real token (measured on these versions: off by 0.003 on Qwen2, 0.23 on
Gemma2 in bf16).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch


@dataclass(frozen=True)
class Batch:
    input_ids: torch.Tensor  # [B, S] long, left padded
    attention_mask: torch.Tensor  # [B, S] long, 0 on padding
    position_ids: torch.Tensor  # [B, S] long, 0 on padding and on the first real token
    lengths: tuple[int, ...]  # real tokens per row

    def model_inputs(self) -> dict[str, torch.Tensor]:
        return {"input_ids": self.input_ids, "attention_mask": self.attention_mask,
                "position_ids": self.position_ids}

    def __len__(self) -> int:
        return self.input_ids.shape[0]


def pad_id(tokenizer: Any) -> int:
    if tokenizer.pad_token_id is not None:
        return int(tokenizer.pad_token_id)
    if tokenizer.eos_token_id is not None:
        return int(tokenizer.eos_token_id)
    return 0


def token_ids(tokenizer: Any, text: str, *, templated: bool) -> list[int]:
    """Ids of one text. A chat template already writes the special tokens it wants (Gemma's <bos>)."""
    ids = tokenizer(text, add_special_tokens=not templated)["input_ids"]
    if not ids:
        raise ValueError(f"prompt {text!r:.60} tokenizes to nothing")
    return list(ids)


def encode(tokenizer: Any, texts: Sequence[str], *, templated: bool, device: str | torch.device = "cpu") -> Batch:
    rows = [token_ids(tokenizer, t, templated=templated) for t in texts]
    return from_ids(rows, pad_id(tokenizer), device)


def from_ids(rows: Sequence[Sequence[int]], pad: int, device: str | torch.device = "cpu") -> Batch:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, width - len(row):] = torch.tensor(row, dtype=torch.long)
        mask[i, width - len(row):] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return Batch(ids.to(device), mask.to(device), positions.to(device), tuple(len(r) for r in rows))


def last_real_index(batch: Batch) -> torch.Tensor:
    """Index of each row's last real token: always S−1 under left padding, asserted, not assumed."""
    last = batch.attention_mask.shape[1] - 1 - batch.attention_mask.flip(-1).argmax(-1)
    return last
