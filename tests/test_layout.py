"""The package's shape: imports flow one way between its parts, files stay readable.

A part is a top-level module or subpackage of ``whyclust``. Every import counts, also those
inside functions (they run as soon as the function does); imports under
``if TYPE_CHECKING:`` are type annotations only and do not.
"""

from __future__ import annotations

import ast
from pathlib import Path

import whyclust

PACKAGE = Path(whyclust.__file__).parent
MAX_LINES = 700


def _part(module: str) -> str | None:
    bits = module.split(".")
    if bits[0] != "whyclust":
        return None
    return bits[1] if len(bits) > 1 else "__init__"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                typing_only.update(id(n) for n in ast.walk(child))
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    here = list(rel.parts)
    if here[-1] == "__init__":
        here = here[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + (1 if path.name == "__init__.py" else 0)]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            found.add(name)
            found.update(f"{name}.{a.name}" for a in node.names)
    return found


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        src = rel.parts[0].removesuffix(".py")
        deps = graph.setdefault(src, set())
        for name in _imports(path):
            part = _part(name)
            if (part is not None and part != src and (PACKAGE / part).exists()) or (
                part is not None and part != src and (PACKAGE / f"{part}.py").exists()
            ):
                deps.add(part)
    return graph


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_cycles_between_parts() -> None:
    graph = _graph()
    cycle = _find_cycle(graph)
    assert cycle is None, "import cycle between parts: " + " -> ".join(cycle)


def test_engine_imports_nothing_above_it() -> None:
    assert _graph()["engine"] <= {"_validation"}


def test_no_source_file_over_the_limit() -> None:
    long = {
        str(p.relative_to(PACKAGE)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"files over {MAX_LINES} lines: {long}"
