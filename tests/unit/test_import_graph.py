"""parity_lib imports downwards only. No module reaches, directly or through others, a module that imports it (a
helper two modules need lives below both), and the packages are layers: a lower layer never imports a higher one.
Lazy imports inside functions count too: they are arrows all the same, and a circle or an upward arrow through
them is one edit away from an import-time failure or a tangle.

The layers, lowest first (the folder tree is the architecture): the exception tree; the protocol's pure rules;
prompt sets; models; tools; storage; the run; the organisms (trained and measured through the run); reports; the
pytest integration and the protocol's tests; the launcher. `parity_lib/__init__` (the lazy public API) and the
deprecated `extractors` alias may import anything."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "parity_lib"


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, name: str, known: set[str]) -> set[str]:
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            targets = [f"{base}.{a.name}" for a in node.names] + [base]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            continue
        out |= {t for t in targets if t in known and t != name}
    return out


def _graph() -> dict[str, set[str]]:
    files = {_module(p): p for p in PACKAGE.rglob("*.py") if "fixtures" not in p.parts}
    known = set(files)
    graph = {name: _imports(path, name, known) for name, path in files.items()}
    for name in graph:  # importing a.b runs a/__init__ first: the package's own imports are not an arrow back
        graph[name] = {t for t in graph[name] if not name.startswith(t + ".")}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


LAYERS = (("errors",), ("protocol",), ("prompts",), ("models",), ("tools",), ("storage",), ("run",), ("organisms",),
          ("report",), ("plugin", "suite"), ("launch",))
ABOVE_ALL = ("parity_lib", "parity_lib.extractors")


def layer(module: str) -> int:
    top = module.split(".")[1] if module.count(".") else module
    return next(i for i, names in enumerate(LAYERS) if top in names)


def _upward(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{a} (layer {layer(a)}) imports {b} (layer {layer(b)})" for a, targets in graph.items()
                  if a not in ABOVE_ALL and not a.startswith("parity_lib.extractors.")
                  for b in targets if layer(b) > layer(a))


def test_every_module_is_in_a_layer():
    unplaced = []
    for module in _graph():
        if module in ABOVE_ALL or module.startswith("parity_lib.extractors."):
            continue
        try:
            layer(module)
        except StopIteration:
            unplaced.append(module)
    assert not unplaced, f"modules outside every layer (add their package to LAYERS): {unplaced}"


def test_no_layer_imports_a_higher_one():
    upward = _upward(_graph())
    assert not upward, "upward imports:\n" + "\n".join(upward)


def test_the_checker_sees_a_planted_upward_import():
    graph = _graph()
    graph["parity_lib.models.memory"] = graph["parity_lib.models.memory"] | {"parity_lib.run.cycle"}
    assert _upward(graph) == ["parity_lib.models.memory (layer 3) imports parity_lib.run.cycle (layer 6)"]


def test_parity_lib_has_no_import_cycle():
    cycle = _cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_checker_sees_a_planted_cycle():
    graph = _graph()
    graph["parity_lib.models.hub"] = graph["parity_lib.models.hub"] | {"parity_lib.models.registry"}
    assert _cycle(graph) is not None
