"""The data walk goes one way: no module imports one above it.

Every ``import`` of an ``aftershock`` module in the package's sources is read with
``ast`` (module level and inside functions; ``if TYPE_CHECKING:`` blocks excluded,
they never run), and the graph of those imports must have no cycle. The one
sanctioned upward steps are lazy: ``Result.report()``/``plot()`` load
``aftershock.report``, and ``save()``/``verify()``/checkpoints load the savers, inside
the method, so they are exempt at function level only.
"""

from __future__ import annotations

import ast
from pathlib import Path

import aftershock

PACKAGE = Path(aftershock.__file__).parent
#: (importer, imported) pairs allowed inside a function, never at module level.
LAZY_UPWARD = {
    ("aftershock.trading.results", "aftershock.report"),
    # save()/verify()/rerun() and sweep checkpoints load the savers, which build on
    # the objects they save, inside the method
    ("aftershock.trading.results", "aftershock.trading.persist"),
    ("aftershock.trading.sweep", "aftershock.trading.persist"),
    ("aftershock.trading.signals", "aftershock.trading.persist"),
    ("aftershock.event_study.study", "aftershock.event_study.persist"),
    # backtest()/study() over a Parquet folder hand over to the streamed runner,
    # which builds on the in-memory front
    ("aftershock.trading.engine", "aftershock.trading.stream"),
    ("aftershock.event_study.study", "aftershock.event_study._stream"),
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _resolve(name: str, known: dict[str, Path]) -> str | None:
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports(path: Path, known: dict[str, Path]) -> list[tuple[str, bool]]:
    """(imported module, at module level?) for each aftershock import in ``path``."""
    me = _module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for sub in child.orelse:
                    visit(sub, top)
                continue
            inner = top and not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            targets: list[str] = []
            if isinstance(child, ast.Import):
                targets = [a.name for a in child.names]
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.rsplit(".", child.level - 1)[0] if child.level > 1 else package
                    base = f"{anchor}.{base}" if base else anchor
                # `from pkg import sub` imports the submodule when there is one
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in child.names]
            for t in targets:
                if t.startswith("aftershock"):
                    resolved = _resolve(t, known)
                    if resolved and resolved != me:
                        found.append((resolved, top))
            visit(child, inner)

    visit(ast.parse(path.read_text()), True)
    return found


def _graph(module_level_only: bool) -> dict[str, set[str]]:
    known = _modules()
    graph: dict[str, set[str]] = {m: set() for m in known}
    for name, path in known.items():
        for target, top in imports(path, known):
            if module_level_only and not top:
                continue
            if not top and (name, target) in LAZY_UPWARD:
                continue
            graph[name].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = dfs(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = dfs(node)
            if found:
                return found
    return None


def _without_packages(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """A package ``__init__`` re-exports its submodules; an edge into it stands for
    the submodule it re-exports, so package nodes are left out of the walk."""
    packages = {m for m, p in _modules().items() if p.name == "__init__.py"}
    return {m: {t for t in ts if t not in packages} for m, ts in graph.items() if m not in packages}


def test_module_level_imports_have_no_cycle():
    assert find_cycle(_without_packages(_graph(module_level_only=True))) is None


def test_imports_have_no_cycle_even_inside_functions():
    cycle = find_cycle(_without_packages(_graph(module_level_only=False)))
    assert cycle is None, " -> ".join(cycle or [])


def test_engine_results_report_is_one_way():
    known = _modules()
    engine = {t for t, _ in imports(known["aftershock.trading.engine"], known)}
    assert not engine & {"aftershock.trading.strategy", "aftershock.trading.sweep", "aftershock.trading.signals"}
    for name, path in known.items():
        if name.startswith("aftershock.report"):
            upward = [t for t, top in imports(path, known) if top and t.startswith("aftershock.trading")]
            assert not upward, (name, upward)
    results = imports(known["aftershock.trading.results"], known)
    assert all(not top for t, top in results if t.startswith("aftershock.report"))


def test_the_walk_sees_a_cycle():
    # the checker itself: a two-module loop is reported
    assert find_cycle({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
