"""Fixtures for the suite's self-tests: small models built here, independent of --parity-model."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


def pytest_configure(config: pytest.Config) -> None:
    """Under xdist, the runs a test starts (`python -m pytest …` subprocesses) get this worker's share of the
    cores, as the worker itself does: two workers on 2 cores, each starting a 2-thread run, would put 3–4 busy
    threads on 2 cores (the whole test command took 68 min here and 80 min in CI, where a SmolLM2 study passed
    its 20-minute timeout; with the share, 16.5–19 min here)."""
    import os

    from parity_lib.plugin.activation import core_share

    workerinput = getattr(config, "workerinput", None)
    if workerinput is None or os.environ.get("PARITY_KEEP_THREADS"):
        return
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, str(core_share(workerinput)))


@pytest.fixture(scope="session")
def tiny():
    """`tiny("qwen2-tiny", "float32")`: seeded random models of the real depths, loaded once;
    `attention="eager"` loads it as a run with a tool that computes attention eagerly (transformer_lens) does."""
    from parity_lib.models import loading, registry

    def get(name: str, dtype: str = "float32", attention: str | None = None) -> loading.LoadedModel:
        return loading.load_once(registry.parse_model(name), dtype, attn_implementation=attention)
    return get


def cycle_store(tmp_path, settings, **kw):
    """A CycleStore over the shipped prompts with a CPU float32 provenance and a silent log."""
    from parity_lib.prompts import load_prompts
    from parity_lib.run.study import CycleStore
    from parity_lib.storage.provenance import provenance

    prompts = load_prompts()
    prov = lambda **extra: provenance(dtype="float32", device="cpu", seed=42, prompt_sha256=prompts.sha256, **extra)
    return CycleStore(tmp_path, prompts, settings, prov, log=lambda line: None, **kw)


HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks")
_MODULES: dict[int, tuple] = {}
NNSIGHT_STATE = "__nnsight__"  # set on a module nnsight has instrumented; its controller is the instance forward


def model_state() -> dict:
    """What a test must leave as it found it on every model this process has loaded (they are shared by every
    test and every tool): the `forward` set on each module instance (a tool's instrumentation, e.g. nnsight's
    controller), and the forward (pre-)hooks that are not transformers' own lazily installed ones."""
    from parity_lib.models import loading

    forwards, hooks, orphaned = {}, {}, set()
    for lm in list(loading._LOADED.values()):
        if id(lm.model) not in _MODULES:  # a loaded model's module tree does not change; the model is kept
            _MODULES[id(lm.model)] = (lm.model, list(lm.model.modules()))  # alive, so its id is not reused
        for module in _MODULES[id(lm.model)][1]:
            if "forward" in module.__dict__:
                forwards[id(module)] = module.__dict__["forward"]
            if NNSIGHT_STATE in module.__dict__ and type(module.__dict__.get("forward")).__name__ != "Controller":
                orphaned.add(id(module))
            for kind in HOOK_DICTS:
                for key, hook in getattr(module, kind).items():
                    if not (getattr(hook, "__module__", None) or "").startswith("transformers."):
                        hooks[(id(module), kind, key)] = hook
    return {"forwards": forwards, "hooks": hooks, "orphaned": orphaned, "models": list(loading._LOADED.values())}


def _names(state: dict) -> dict[int, str]:
    return {id(module): f"{lm.spec.name}:{name or '(model)'}" for lm in state["models"]
            for name, module in lm.model.named_modules()}


def state_problems(before: dict, after: dict) -> list[str]:
    """How `after` broke `before`: an instance forward removed or swapped, a hook left behind."""
    lost = [k for k, f in before["forwards"].items() if after["forwards"].get(k) is not f]
    left = [k for k in after["hooks"] if k not in before["hooks"]]
    lost += [k for k in after["orphaned"] - before["orphaned"] if k not in lost]
    if not lost and not left:
        return []
    names = {**_names(before), **_names(after)}
    lost = [names[k] for k in lost]
    left = [f"{names[k[0]]} ({k[1].strip('_')})" for k in left]
    return ([f"removed or replaced the `forward` a tool had installed on {', '.join(lost)}: restore it exactly "
             "(parity_lib.models.loading.replaced_forward)"] if lost else []) + \
           ([f"left {len(left)} hook(s) registered: {', '.join(left[:4])}: remove every handle in a `finally`"]
            if left else [])


@pytest.fixture(autouse=True)
def shared_models_left_intact():
    """Each test leaves the process's shared models as it found them. A test that deletes a tool's instance
    `forward`, or leaves a hook behind, changes what every later test in that worker computes: the failure
    shows far from the cause and in some test orders only (seen: a call counter's `del layer.forward` took
    nnsight's controller off layer 17, and an nnsight test two files later raised OutOfOrderError)."""
    before = model_state()
    yield
    problems = state_problems(before, model_state())
    if problems:
        pytest.fail("this test " + "; and ".join(problems) + ". Every later test in this process would see "
                    "a changed model", pytrace=False)


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
