"""A pytest plugin for the verdict-validity runs only (`-p tests.planted_tools`): registers planted
wrong extractors as extra tools so a real study run can be made to diverge on purpose."""

from parity_lib.extractors import TOOLS
from tests.planted import MlpOutput, MlpOutputOnGemma

TOOLS["planted-mlp"] = MlpOutput
TOOLS["planted-mlp-gemma-only"] = MlpOutputOnGemma
