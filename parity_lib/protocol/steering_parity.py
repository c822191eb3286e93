"""Pairwise steering parity between two cycle records: logits and greedy tokens.

Far more sensitive than rates: two tools whose directions differ in the 7th digit may still give the
same labels, but not the same logits.
"""

from __future__ import annotations

from itertools import combinations
from statistics import median
from typing import Any, Mapping, Sequence


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


def token_agreement(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """How far two records' greedy outputs agree: prompts that differ, and where they first differ."""
    firsts = [d["token"] for d in first_divergence(a, b)]
    n = len(a["new_tokens"])
    return {"n_prompts": n, "n_differ": len(firsts), "agreement": 1 - len(firsts) / n if n else 1.0,
            "first_differing_token_median": median(firsts) if firsts else None,
            "first_differing_token_min": min(firsts) if firsts else None}


def rerun_noise(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """What the same tool varies by from one repeat to the next (every pair of its repeats): the most
    prompts whose tokens differ, the earliest differing token, and the largest next-token logit gap."""
    pairs = list(combinations(records, 2))
    if not pairs:
        return {"measured": False, "n_pairs": 0, "n_differ_max": 0, "logit_gap_max": 0.0}
    tokens = [token_agreement(x, y) for x, y in pairs]
    firsts = [t["first_differing_token_min"] for t in tokens if t["first_differing_token_min"] is not None]
    return {"measured": True, "n_pairs": len(pairs), "n_differ_max": max(t["n_differ"] for t in tokens),
            "first_differing_token_min": min(firsts) if firsts else None,
            "logit_gap_max": max(logit_gap(x, y)["max_abs"] for x, y in pairs)}
