"""Model organisms: tiny Qwen2 (28 layers) and Gemma2 (42 layers) that really refuse.

Built here from a seed (`python -m parity_lib.organisms build`) and shipped in `fixtures/models/`,
so the protocol runs end to end, with meaning, on a CPU: see each directory's README.md.
"""

from parity_lib.organisms.build import build_organism, load_organism
from parity_lib.organisms.corpus import Corpus, Example, build_corpus, held_out_violations
from parity_lib.organisms.paper import load_paper
from parity_lib.organisms.spec import GEMMA2, LAYER, MODELS_DIR, QWEN2, SPECS, OrganismSpec

__all__ = [
    "Corpus", "Example", "GEMMA2", "LAYER", "MODELS_DIR", "OrganismSpec", "QWEN2", "SPECS",
    "build_corpus", "build_organism", "held_out_violations", "load_organism", "load_paper",
]
