"""The suite's own tools, declared exactly as an external package declares one (`ToolPlugin`)."""

from __future__ import annotations

from .plugin import ToolPlugin

BUILTIN = (
    ToolPlugin("hooks", "parity_lib.extractors.hooks:HooksExtractor", "parity_lib.steering.hooks:HooksSteerer",
               "raw PyTorch forward hooks", package="torch"),
    ToolPlugin("nnsight", "parity_lib.extractors.nnsight_tool:NNsightExtractor",
               "parity_lib.steering.nnsight_tool:NNsightSteerer", "NNsight tracing", package="nnsight"),
    ToolPlugin("pyvene", "parity_lib.extractors.pyvene_tool:PyveneExtractor",
               "parity_lib.steering.pyvene_tool:PyveneSteerer", "pyvene interventions", package="pyvene"),
    ToolPlugin("transformer_lens", "parity_lib.tools.transformer_lens_tool:TransformerLensExtractor",
               "parity_lib.tools.transformer_lens_tool:TransformerLensSteerer",
               "TransformerLens bridge hook points (blocks.{L}.hook_resid_post), on its own module tree over the "
               "suite model's weights",
               package="transformer-lens", install="parity-suite[transformer-lens]", attention="eager"),
)
