"""The suite's own tools, declared exactly as an external package declares one (`ToolPlugin`)."""

from __future__ import annotations

from parity_lib.tools.plugin import ToolPlugin

BUILTIN = (
    ToolPlugin("hooks", "parity_lib.tools.hooks:HooksExtractor", "parity_lib.tools.hooks:HooksSteerer",
               "raw PyTorch forward hooks", package="torch"),
    ToolPlugin("nnsight", "parity_lib.tools.nnsight_tool:NNsightExtractor",
               "parity_lib.tools.nnsight_tool:NNsightSteerer", "NNsight tracing", package="nnsight"),
    ToolPlugin("pyvene", "parity_lib.tools.pyvene_tool:PyveneExtractor",
               "parity_lib.tools.pyvene_tool:PyveneSteerer", "pyvene interventions", package="pyvene"),
    ToolPlugin("transformer_lens", "parity_lib.tools.transformer_lens_tool:TransformerLensExtractor",
               "parity_lib.tools.transformer_lens_tool:TransformerLensSteerer",
               "TransformerLens bridge hook points (blocks.{L}.hook_resid_post), on its own module tree over the "
               "suite model's weights",
               package="transformer-lens", install="parity-suite[transformer-lens]", attention="eager"),
)
