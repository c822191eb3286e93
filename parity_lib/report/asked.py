"""The report's "What each model was asked" section: the chat template, the system prompt, the first harmful
prompt exactly as tokenized, and the scale of layer L's activations (what the checks' floors are relative to)."""

from __future__ import annotations

from typing import Any, Mapping


def asked_section(report: Mapping[str, Any]) -> str:
    loaded = report.get("models_loaded") or {}
    parts = ["## What each model was asked, and its activation scale"]
    for name, facts in sorted(loaded.items()):
        asked, acts = facts.get("asked"), facts.get("activations")
        if not asked and not acts:
            continue
        lines = [f"### {name}", "", f"- Loaded from `{facts.get('source')}` ({facts.get('architecture')}, "
                                    f"{facts.get('n_layers')} layers, hidden {facts.get('hidden_size')}, "
                                    f"{facts.get('dtype')} on {facts.get('device')})"]
        lines += _memory(facts)
        if asked:
            lines += [f"- Chat template: {asked['chat_template']}", f"- System prompt: {asked['system_prompt']}",
                      f"- The first harmful prompt ({asked['first_harmful']!r}) as tokenized, "
                      f"{asked['n_tokens']} tokens:", "", "```text", asked["as_tokenized"].rstrip("\n"), "```"]
        if acts:
            massive = ", ".join(f"dim {d} ({v:g})" for d, v in acts["massive_dims"]) or "none"
            ratio = acts.get("max_over_median")
            lines += ["", f"- Layer {acts['layer']} output over {acts['n_tokens']} real tokens of the contrastive "
                          f"prompts: median |x| {acts['median_abs']:.4g}, max |x| {acts['max_abs']:.4g}"
                          + (f" ({ratio:.0f}× the median)" if ratio else "")
                          + f"; massive activations ({acts['massive_rule']}): {massive}"]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) if len(parts) > 1 else ""


def _memory(facts: Mapping[str, Any]) -> list[str]:
    """The device memory the model took (peak, on a GPU) and how the study's widest call was planned."""
    plan, peak = facts.get("memory_plan"), facts.get("peak_device_gib")
    out = []
    if peak is not None:
        out.append(f"- Peak device memory: {peak:.1f} GiB (weights {plan['weights_gib']:.1f} GiB)" if plan else
                   f"- Peak device memory: {peak:.1f} GiB")
    if plan:
        out.append(f"- The study's packed call: {plan['rows']} rows in {plan['calls']} call(s) of ≤ "
                   f"{plan['rows_per_call']} rows ({plan['free_gib']:.1f} GiB free on {plan['device']} after the "
                   f"weights, ≈ {plan['row_mib']:.1f} MiB a row)")
    return out
