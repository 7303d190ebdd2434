"""The import graph of src/tabserve, read from the source: no cycles, and the layers hold.

Every import counts, including the lazy ones inside functions (a cycle that only bites at call
time is still a cycle a reader must untangle); only ``if TYPE_CHECKING:`` blocks are left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = "tabserve"

# (importer package, imported package) pairs that must never appear.
FORBIDDEN = [
    ("tabserve.serving", "tabserve.training"),  # the server install has no scikit-learn
    ("tabserve.serving", "tabserve.monitoring"),  # monitoring reads the log; serving writes it
    ("tabserve.serving", "tabserve.loadtest"),
    ("tabserve.predlog", "tabserve.serving"),  # the log serves two sides and owns neither
    ("tabserve.predlog", "tabserve.monitoring"),
    ("tabserve.predlog", "tabserve.training"),
    ("tabserve.spec", "tabserve.training"),
    ("tabserve.loadtest", "tabserve.serving"),  # a client of any server, not of this code
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _type_checking_only(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The tabserve modules ``path`` imports (``from a import b`` counts a.b if it is one)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip: set[int] = set()
    for node in ast.walk(tree):
        if _type_checking_only(node):
            skip |= {id(n) for n in ast.walk(node)}
    this = module_name(path)
    package = this if path.name == "__init__.py" else this.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}
    return {m for m in found if m in modules and m != this}


def graph() -> dict[str, set[str]]:
    files = sorted((SRC / PACKAGE).rglob("*.py"))
    modules = {module_name(f) for f in files}
    return {module_name(f): imports_of(f, modules) for f in files}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 visiting, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def package_of(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else module


def test_no_module_imports_itself_round_a_cycle() -> None:
    edges = graph()
    # A package's __init__ re-exporting its own modules is not a cycle between concepts.
    for module, targets in edges.items():
        edges[module] = {t for t in targets if not module.startswith(t + ".")}
    assert find_cycle(edges) is None


def test_no_cycle_between_packages() -> None:
    edges: dict[str, set[str]] = {}
    for module, targets in graph().items():
        source = package_of(module)
        edges.setdefault(source, set())
        edges[source] |= {package_of(t) for t in targets if package_of(t) != source}
    edges.pop(PACKAGE, None)  # the root package (version, __main__) imports nothing in return
    for targets in edges.values():
        targets.discard(PACKAGE)
    assert find_cycle(edges) is None, edges


@pytest.mark.parametrize(("importer", "imported"), FORBIDDEN)
def test_layers(importer: str, imported: str) -> None:
    offending = {
        (module, target)
        for module, targets in graph().items()
        if module == importer or module.startswith(importer + ".")
        for target in targets
        if target == imported or target.startswith(imported + ".")
    }
    assert offending == set()


def test_the_checker_sees_a_cycle_and_a_forbidden_import() -> None:
    # The checks above would pass on an empty graph: prove they read real edges.
    edges = graph()
    assert "tabserve.serving.dataplane" in edges["tabserve.serving.lifecycle"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert any(t.startswith("tabserve.serving") for t in edges["tabserve.monitoring.sources"])
