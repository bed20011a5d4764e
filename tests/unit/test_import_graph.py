"""Every import runs one way: no circles between modules or between the package's parts, and nothing in the library
imports a command-line module. Read from the source (every import statement, inside functions too)."""

from __future__ import annotations

import ast
from pathlib import Path

import pagescribe

ROOT = Path(pagescribe.__file__).parent
CLI = "pagescribe.cli"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in ROOT.rglob("*.py")}


def imports(path: Path) -> set[str]:
    """The pagescribe modules ``path`` imports, wherever the import statement is."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:  # `from pagescribe.engine import sinks` imports a module, not a name
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in MODULES else node.module)
    return {name for name in found if name in MODULES}


GRAPH = {name: imports(path) - {name} for name, path in MODULES.items()}


def part(module: str) -> str:
    """The part of the package a module belongs to: ``pagescribe.engine.queue`` -> ``engine``."""
    return module.split(".")[1] if module.count(".") else "pagescribe"


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def collapsed(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The graph between the parts of the package (each part one node)."""
    parts: dict[str, set[str]] = {}
    for module, targets in graph.items():
        if module == "pagescribe":  # the package's front door re-exports from every part
            continue
        parts.setdefault(part(module), set()).update(part(t) for t in targets if part(t) != part(module))
    return parts


def test_the_graph_is_read_from_the_source() -> None:
    # A check that reads nothing passes everything: make sure the walk sees known imports.
    assert "pagescribe.engine.queue" in GRAPH["pagescribe.engine.scheduler"]
    assert "pagescribe.engine.sinks" in GRAPH["pagescribe.client.local"]
    assert "pagescribe.server.settings" in GRAPH["pagescribe.cli.serve"]


def test_no_module_imports_itself_back_through_others() -> None:
    assert cycles(GRAPH) == []


def test_the_parts_of_the_package_import_one_way() -> None:
    assert cycles(collapsed(GRAPH)) == []


def test_no_library_module_imports_a_command_line_module() -> None:
    offenders = {
        module: sorted(t for t in targets if t == CLI or t.startswith(CLI + "."))
        for module, targets in GRAPH.items()
        if not (module == CLI or module.startswith(CLI + "."))
    }
    assert {m: t for m, t in offenders.items() if t} == {}
