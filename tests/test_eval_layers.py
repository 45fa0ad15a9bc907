"""eval is a lower layer: it never imports recipes/ (or trl_scripts/), and its modules import each other without
cycles, counting imports inside functions too (an import moved into a function hides a cycle, it does not end it)."""

from __future__ import annotations

import ast
from pathlib import Path

EVAL = Path(__file__).resolve().parents[1] / "eval"


def _module_name(path: Path) -> str:
    parts = path.relative_to(EVAL.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in EVAL.rglob("*.py")}
    return {name: {m for m in _imports(path) if m in modules and m != name} for name, path in modules.items()}


def test_eval_never_imports_the_layers_above():
    offenders = {
        _module_name(p): sorted(m for m in _imports(p) if m.split(".")[0] in {"recipes", "trl_scripts"})
        for p in EVAL.rglob("*.py")
    }
    assert not {name: found for name, found in offenders.items() if found}


def test_no_import_cycles_in_eval():
    graph = _graph()
    assert "eval.execution" in graph["eval.scoring"]  # the walk sees real edges
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    # a package's __init__ re-exporting its submodules is not a cycle between concepts
    real = [c for c in cycles if not any(c[i + 1].startswith(c[i] + ".") for i in range(len(c) - 1))]
    assert not real, real
