"""Fixtures for the suite's self-tests: small models built here, independent of --parity-model."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


@pytest.fixture(scope="session")
def tiny():
    """`tiny("qwen2-tiny", "float32")`: seeded random models of the real depths, loaded once;
    `attention="eager"` loads it as a run with a tool that computes attention eagerly (transformer_lens) does."""
    from parity_lib import models

    def get(name: str, dtype: str = "float32", attention: str | None = None) -> models.LoadedModel:
        return models.load_once(models.parse_model(name), dtype, attn_implementation=attention)
    return get


def cycle_store(tmp_path, settings, **kw):
    """A CycleStore over the shipped prompts with a CPU float32 provenance and a silent log."""
    from parity_lib.prompts import load_prompts
    from parity_lib.provenance import provenance
    from parity_lib.study import CycleStore

    prompts = load_prompts()
    prov = lambda **extra: provenance(dtype="float32", device="cpu", seed=42, prompt_sha256=prompts.sha256, **extra)
    return CycleStore(tmp_path, prompts, settings, prov, log=lambda line: None, **kw)


def _instance_forwards() -> dict[int, tuple]:
    """Every `forward` set on a module instance (not its class) of every model this process has loaded."""
    from parity_lib import models

    return {id(module): (lm, module, module.__dict__["forward"]) for lm in list(models._LOADED.values())
            for module in lm.model.modules() if "forward" in module.__dict__}


def lost_forwards(before: dict, after: dict) -> list[tuple]:
    """(model, module) whose instance `forward` of `before` is gone or another object in `after`."""
    return [(lm, module) for key, (lm, module, forward) in before.items()
            if key not in after or after[key][2] is not forward]


@pytest.fixture(autouse=True)
def shared_models_left_intact():
    """Each test leaves the process's shared models' forwards as it found them. A tool instruments a model by
    setting `forward` on its modules (nnsight's controller); a test that wraps a forward and then deletes the
    attribute takes that away, and a later test of that tool fails far from the cause, in some test orders
    only (seen: an nnsight OutOfOrderError two files later)."""
    before = _instance_forwards()
    yield
    lost = lost_forwards(before, _instance_forwards())
    if lost:
        names = {id(m): f"{lm.spec.name}:{n}" for lm, _ in lost for n, m in lm.model.named_modules()}
        pytest.fail("this test removed or replaced the `forward` another tool had installed on "
                    f"{', '.join(names[id(m)] for _, m in lost)}: restore it exactly (parity_lib.models."
                    "replaced_forward), or every later test of that tool in this process sees a broken model",
                    pytrace=False)


def registered_tools() -> list:
    """Every registered tool as a test parameter; a tool whose package is missing is skipped, saying so."""
    from parity_lib.errors import ToolNotInstalledError
    from parity_lib.tools import registry

    params = []
    for name, plugin in registry.tools().items():
        try:
            registry.installed(plugin)
            params.append(pytest.param(name, id=name))
        except ToolNotInstalledError as exc:
            params.append(pytest.param(name, id=name, marks=pytest.mark.skip(reason=str(exc))))
    return params
