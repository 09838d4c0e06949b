"""The shape of the code base: imports run one way, and product code never needs the tests."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("conversation", "orchestrator", "worker", "devserver", "modelserver", "bench",
            "deploy")


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imports_of(path: Path, name: str, known: dict[str, Path]) -> Iterator[str]:
    """Every project module `path` imports, TYPE_CHECKING blocks included: a cycle hidden
    from the interpreter still ties the modules together."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from pkg import sub` imports the submodule; `from pkg import name` the package.
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                       for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                yield target


def graph() -> dict[str, set[str]]:
    """The project's import graph, worked out in a fresh interpreter.

    CPython 3.11's `ast` keeps a recursion counter that an earlier deep recursion elsewhere in
    a long test run can leave out of step ("AST constructor recursion depth mismatch"); a new
    process parses with a clean one.
    """
    found = subprocess.run([sys.executable, __file__], capture_output=True, text=True,
                           check=True, cwd=ROOT).stdout
    return {name: set(targets) for name, targets in json.loads(found).items()}


def _graph() -> dict[str, list[str]]:
    known = modules()
    return {name: sorted(set(imports_of(path, name, known))) for name, path in known.items()}


def test_no_project_module_imports_the_tests() -> None:
    offenders = {name for name, targets in _raw_imports().items()
                 if any(t == "tests" or t.startswith("tests.") for t in targets)}
    assert offenders == set()


def _raw_imports() -> dict[str, list[str]]:
    found = subprocess.run([sys.executable, __file__, "--raw"], capture_output=True, text=True,
                           check=True, cwd=ROOT).stdout
    imports: dict[str, list[str]] = json.loads(found)
    return imports


def _raw() -> dict[str, list[str]]:
    """Every module name each project module imports, project or not."""
    found: dict[str, list[str]] = {}
    for name, path in modules().items():
        names: list[str] = []
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names += [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names.append(node.module or "")
        found[name] = names
    return found


def test_imports_form_no_cycle() -> None:
    edges = graph()
    # A package's __init__ re-exports its modules; a module importing its own package's
    # __init__ would be the cycle, so the re-export edges stay in.
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    assert cycles == []


if __name__ == "__main__":
    print(json.dumps(_raw() if sys.argv[1:] == ["--raw"] else _graph()))
