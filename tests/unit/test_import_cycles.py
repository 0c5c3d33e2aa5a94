"""No import cycles in the product code, between modules or between top-level packages
(issue 9): a newcomer can read the code bottom up, and no module half-exists while another
imports it.

The graph is read with ast from every product file (not tests/, migrations/, .venv):
`import a.b` and `from a.b import c` are edges to the module they name (a.b.c when c is a
module), wherever they stand, in a function too: an import deferred into a function to get
round a cycle is still the cycle. Only `if TYPE_CHECKING:` imports are left out, since they
never run. Importing a.b.c also runs a/__init__.py and a/b/__init__.py; those implicit edges
to parent packages are not counted (every package would otherwise be a cycle with the
modules it re-exports).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from itertools import pairwise
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXCLUDED = {"tests", "migrations", ".venv", ".venv-lock", "node_modules"}

Graph = dict[str, dict[str, str]]  # module -> {imported module: "file:line" of one import}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def product_modules(root: Path = ROOT) -> dict[str, Path]:
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).parts
        if EXCLUDED & set(parts[:-1]) or any(p.startswith(".") for p in parts):
            continue
        found[module_name(path, root)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST) -> Iterable[ast.Import | ast.ImportFrom]:
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)  # the `else:` of TYPE_CHECKING does run
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The product module `name` is, or is inside (a.b.func -> a.b); None if not ours."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def _targets(node: ast.Import | ast.ImportFrom, here: str, is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        package = here.split(".") if is_package else here.split(".")[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join([*package, *([base] if base else [])])
    return [f"{base}.{alias.name}" if base else alias.name for alias in node.names]


def import_graph(root: Path = ROOT) -> Graph:
    modules = product_modules(root)
    graph: Graph = {name: {} for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in _imports(tree):
            for target in _targets(node, name, path.name == "__init__.py"):
                # `from a import b`: the module a.b if it is one, else a itself.
                resolved = _resolve(target, modules)
                if resolved is not None and resolved != name:
                    where = f"{path.relative_to(root)}:{node.lineno}"
                    graph[name].setdefault(resolved, where)
    return graph


def package_graph(graph: Graph) -> Graph:
    """The same graph between top-level packages and modules (ocpi, payments, app, ...)."""
    packages: Graph = {}
    for name, targets in graph.items():
        top = name.split(".")[0]
        packages.setdefault(top, {})
        for target, where in targets.items():
            other = target.split(".")[0]
            if other != top:
                packages[top].setdefault(other, f"{where} ({name} -> {target})")
    return packages


def cycles(graph: Graph) -> list[list[str]]:
    """One cycle through each strongly connected component of more than one node
    (Tarjan's algorithm, iterative), each as [a, b, ..., a]."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[set[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, {})))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(component)
    return [_cycle_in(graph, component) for component in components]


def _cycle_in(graph: Graph, component: set[str]) -> list[str]:
    # Breadth first from the smallest name back to itself, inside the component.
    start = min(component)
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node]):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [*reversed(path), start]
                if child in component and child not in previous:
                    previous[child] = node
                    following.append(child)
        frontier = following
    raise AssertionError(f"no cycle in {component}")  # pragma: no cover


def describe(graph: Graph, cycle: list[str]) -> str:
    steps = [f"  {a} -> {b}   ({graph[a][b]})" for a, b in pairwise(cycle)]
    return " -> ".join(cycle) + "\n" + "\n".join(steps)


def test_the_graph_sees_the_product():
    graph = import_graph()
    assert "app" in graph and "ocpi.transport" in graph
    assert "ocpi.transport" in graph["ocpi.models"]
    assert not any(name.startswith("tests") for name in graph)


def test_no_cycle_between_modules():
    graph = import_graph()
    found = cycles(graph)
    assert not found, "import cycles:\n" + "\n".join(describe(graph, c) for c in found)


def test_no_cycle_between_top_level_packages():
    graph = package_graph(import_graph())
    found = cycles(graph)
    assert not found, "package cycles:\n" + "\n".join(describe(graph, c) for c in found)


@pytest.mark.parametrize("files, expected", [
    ({"a.py": "import b\n", "b.py": "import c\n", "c.py": ""}, []),
    ({"a.py": "import b\n", "b.py": "from a import x\n"}, [["a", "b", "a"]]),
    ({"a.py": "def f():\n    import b\n", "b.py": "import a\n"}, [["a", "b", "a"]]),
    ({"a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import b\n",
      "b.py": "import a\n"}, []),
    ({"p/__init__.py": "from p import m\n", "p/m.py": "from p.n import x\n",
      "p/n.py": "from . import m\n"}, [["p.m", "p.n", "p.m"]]),
])
def test_the_cycle_check_can_fail(tmp_path, files, expected):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert cycles(import_graph(tmp_path)) == expected


def test_packages_are_collapsed():
    graph = {"p.a": {"q.b": "p/a.py:1"}, "q.b": {"p.c": "q/b.py:1"}, "p.c": {}}
    assert cycles(graph) == []
    assert cycles(package_graph(graph)) == [["p", "q", "p"]]
