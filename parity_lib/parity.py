"""Pairwise steering parity between two cycle records: logits and greedy tokens.

Far more sensitive than rates: two tools whose directions differ in the 7th digit may still give the
same labels, but not the same logits.
"""

from __future__ import annotations

from typing import Any, Mapping


def logit_gap(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """Max |Δ| of next-token logits under steering over the top-k ids both records stored, and how
    many prompts have a different top-1 token."""
    worst, where, top1 = 0.0, None, 0
    for row, (ids_a, val_a, ids_b, val_b) in enumerate(zip(a["logits"]["ids"], a["logits"]["values"],
                                                           b["logits"]["ids"], b["logits"]["values"])):
        other = dict(zip(ids_b, val_b))
        top1 += ids_a[0] != ids_b[0]
        for token, value in zip(ids_a, val_a):
            if token in other and abs(value - other[token]) > worst:
                worst, where = abs(value - other[token]), (row, token)
    return {"max_abs": worst, "at": where, "top1_differs": top1}


def first_divergence(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[dict[str, Any]]:
    """For each prompt whose generated tokens differ: the first index where they differ."""
    out = []
    for i, (ta, tb) in enumerate(zip(a["new_tokens"], b["new_tokens"])):
        if ta != tb:
            k = next((j for j, (x, y) in enumerate(zip(ta, tb)) if x != y), min(len(ta), len(tb)))
            out.append({"prompt": i, "token": k, "a": ta[k:k + 3], "b": tb[k:k + 3]})
    return out
