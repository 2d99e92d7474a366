"""The import graph, read from the source with ast: the simulators are an outer layer and no
two modules import each other, directly or round a loop. Imports inside functions and under
`if TYPE_CHECKING:` count too: a loop the type checker walks is still a loop in the design."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("edge", "cloud_bridge", "simulators")
DOMAIN_AND_KIOSK = ("edge.locker", "edge.community", "edge.identity", "edge.kiosk_ui")
# Moved out of the domain on the locker branch (the demo hand belongs with the simulation).
PENDING_MOVE: set[str] = set()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_modules() -> dict[str, Path]:
    return {module_name(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py")
            if "migrations" not in p.parts}


def imported_names(path: Path, module: str, known: set[str]) -> set[str]:
    """Every module `module` imports. `from package import submodule` names the submodule
    only (not the package as well), so a package's parts may import each other that way."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_package = path.name == "__init__.py"
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, base] if base else anchor)
            names = {f"{base}.{alias.name}" for alias in node.names}
            found.update(names if names <= known else {base, *names})
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = source_modules()
    known = set(modules)
    return {name: {m for m in imported_names(path, name, known) if m in known and m != name}
            for name, path in modules.items()}


def _inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def loops(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of two or more modules (Tarjan)."""
    def edges(module: str) -> set[str]:
        return graph[module]

    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def connect(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in edges(module):
            if target not in index:
                connect(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for module in sorted(graph):
        if module not in index:
            connect(module)
    return groups


def test_the_domain_and_the_kiosk_do_not_import_the_simulators() -> None:
    graph = import_graph()
    arrows = sorted((source, target) for source, targets in graph.items()
                    if any(_inside(source, p) for p in DOMAIN_AND_KIOSK) and source not in PENDING_MOVE
                    for target in targets if _inside(target, "simulators"))
    assert arrows == []


def test_no_import_loops() -> None:
    assert loops(import_graph()) == []


def test_the_checker_sees_an_import_loop() -> None:
    """The check itself can fail: a made-up graph with a loop is found."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert loops(graph) == [["a", "b", "c"]]
