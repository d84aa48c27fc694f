"""The package's layers (docs/extending.md): every import, at module level or inside a function,
points to the module's own layer or one below; the module graph has no circle; nothing outside
``tasks/`` branches on a task family's name.

Run ``pytest tests/test_layering.py -s`` to print the import graph in words."""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "fusionrec"

# Lowest first. A module may import its own layer and those listed before it, never one after it.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundation", ("errors", "registry", "config", "threads", "version")),
    ("data", ("data",)),
    ("features", ("features",)),
    ("leaves", ("nn", "metrics", "retrieval", "render")),
    ("models", ("models",)),
    ("tasks", ("tasks",)),
    ("training", ("training",)),
    ("api", ("api",)),
    ("applications", ("benchmark", "demo", "serving")),
    ("cli", ("cli",)),
]
LAYER_OF = {top: rank for rank, (_, tops) in enumerate(LAYERS) for top in tops}
PACKAGE_FACE = {"fusionrec", "fusionrec.__main__"}  # re-exports for users, outside the layers


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every ``fusionrec.*`` module ``path`` imports, wherever the import statement stands."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("fusionrec.")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fusionrec"):
            # `from fusionrec.benchmark import report` names a module; `from fusionrec.api import train` a name
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def layer(module: str) -> int:
    top = module.split(".")[1]
    if top not in LAYER_OF:
        raise AssertionError(f"{module}: its top-level name {top!r} belongs to no layer; add it to LAYERS")
    return LAYER_OF[top]


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    edges: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        if name in PACKAGE_FACE:
            continue
        for target in imports_of(path):
            while target not in modules and "." in target:  # `from fusionrec.x import name` -> fusionrec.x
                target = target.rsplit(".", 1)[0]
            if target != name and target not in PACKAGE_FACE:
                edges[name].add(target)
    return edges


def test_no_module_imports_a_higher_layer() -> None:
    upward = [
        f"{src} (layer {LAYERS[layer(src)][0]}) imports {dst} (layer {LAYERS[layer(dst)][0]})"
        for src, targets in graph().items()
        for dst in targets
        if layer(dst) > layer(src)
    ]
    assert not upward, "imports that run back up:\n" + "\n".join(sorted(upward))


def test_the_import_graph_has_no_circle() -> None:
    edges = graph()
    state: dict[str, int] = {}
    circles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                circles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for start in sorted(edges):
        if start not in state:
            visit(start, [start])
    assert not circles, "import circles:\n" + "\n".join(" -> ".join(c) for c in circles)


def test_the_layering_check_catches_an_upward_import(tmp_path, monkeypatch) -> None:
    """The check itself can fail: a data module importing the API is reported."""
    fake = tmp_path / "fusionrec"
    (fake / "data").mkdir(parents=True)
    (fake / "api.py").write_text("")
    (fake / "data" / "bad.py").write_text("def f():\n    from fusionrec.api import train\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake)
    with pytest.raises(AssertionError, match=r"fusionrec.data.bad .* imports fusionrec.api"):
        test_no_module_imports_a_higher_layer()


FAMILY_BRANCH = re.compile(r"""task\s*[!=]=\s*["']|["'](topk|sequential)["']\s*[!=]=\s*\S*task""")


def test_no_code_outside_tasks_branches_on_a_family_name() -> None:
    offenders = [
        f"{p.relative_to(PACKAGE)}:{n}: {line.strip()}"
        for p in PACKAGE.rglob("*.py")
        if "tasks" not in p.relative_to(PACKAGE).parts
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if FAMILY_BRANCH.search(line)
    ]
    assert not offenders, "\n".join(offenders)


def test_print_the_import_graph_in_words(capsys) -> None:
    """The graph by layer, lowest first: what each layer's modules import (pytest -s shows it)."""
    edges = graph()
    by_layer: dict[int, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for src, targets in edges.items():
        for dst in targets:
            by_layer[layer(src)][LAYERS[layer(dst)][0]].add(src)
    lines = []
    for rank, (name, tops) in enumerate(LAYERS):
        below = by_layer.get(rank, {})
        uses = ", ".join(f"{target} ({len(srcs)} modules)" for target, srcs in sorted(below.items())) or "nothing"
        lines.append(f"{rank}. {name} [{', '.join(tops)}] imports: {uses}")
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    assert len(lines) == len(LAYERS)
