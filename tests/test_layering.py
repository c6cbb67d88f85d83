"""Arrows point down (ARCHITECTURE §2): ``cli, web → runtime → flows → (amazon | sage500 | mapping) → (model,
errors, config)``; ``sandbox/`` depends on ``model`` at most, and the product imports ``sandbox/`` only from the
``demo`` and ``sandbox`` commands. Every module under src/erpsync is parsed with ``ast``; an import that points up or
sideways fails, naming the module, the line and the rule. Imports under ``if TYPE_CHECKING:`` are annotations only
and do not count."""

from __future__ import annotations

import ast
from pathlib import Path

import erpsync

SRC = Path(erpsync.__file__).parent

# Rank of each top-level part of the package: a module may import its own part and lower ranks only. amazon and
# sage500 are siblings that never import one another; mapping (pure rules from config) imports neither, while the
# adapters' translators may apply its rules (sage500/translate.py does).
RANK = {"erpsync": 0, "model": 0, "errors": 0, "config": 0, "logs": 0,
        "mapping": 1,
        "amazon": 2, "sage500": 2,
        "flows": 3,
        "runtime": 4,
        "web": 5, "cli": 5, "commands": 5}
SANDBOX_USERS = {"erpsync.sandbox", "erpsync.commands.demo", "erpsync.commands.sandbox", "erpsync.cli"}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports(tree: ast.AST, module: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, imported module) for every ``erpsync`` import outside ``if TYPE_CHECKING:`` blocks."""
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                package = module.split(".") if is_package else module.split(".")[:-1]
                base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
            found.extend((node.lineno, f"{base}.{alias.name}" if base == "erpsync" else base)
                         for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return [(line, name) for line, name in found if name == "erpsync" or name.startswith("erpsync.")]


def part(module: str) -> str:
    """'erpsync.flows.orders' -> 'flows'; 'erpsync' -> 'erpsync'."""
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else pieces[0]


def violation(importer: str, imported: str) -> str | None:
    """Why ``importer`` may not import ``imported``, or None."""
    mine, theirs = part(importer), part(imported)
    if theirs == "sandbox":
        if not any(importer == user or importer.startswith(user + ".") for user in SANDBOX_USERS):
            return "the product never imports sandbox/ (only the demo and sandbox commands do)"
        return None
    if mine == "sandbox":
        return None if theirs in ("sandbox", "model") else "sandbox/ depends on model at most"
    if mine == "model" and imported != "erpsync.model":
        return "model imports nothing of ours"
    if mine == theirs:
        return None
    if theirs not in RANK or mine not in RANK:
        return f"{mine!r} or {theirs!r} has no place in the arrows (add it to RANK in {Path(__file__).name})"
    if RANK[theirs] > RANK[mine]:
        return f"{mine} must not import {theirs}: the arrows point down"
    if RANK[theirs] == RANK[mine] == RANK["amazon"]:
        return f"{mine} must not import {theirs}: amazon/ and sage500/ never import one another"
    return None


def violations(path: Path, source: str | None = None) -> list[str]:
    module = module_name(path)
    tree = ast.parse(path.read_text() if source is None else source, filename=str(path))
    return [f"{path.relative_to(SRC.parent)}:{line}: {module} imports {name}: {why}"
            for line, name in imports(tree, module, path.name == "__init__.py")
            if (why := violation(module, name))]


def test_every_import_in_src_points_down():
    modules = sorted(SRC.rglob("*.py"))
    assert len(modules) > 40 and SRC / "flows" / "orders.py" in modules
    found = [v for path in modules for v in violations(path)]
    assert found == [], "\n".join(found)


def test_the_check_finds_upward_sideways_and_sandbox_imports():
    flows, amazon, model = SRC / "flows" / "x.py", SRC / "amazon" / "x.py", SRC / "model.py"
    assert violations(flows, "from erpsync.runtime.jobs import Runtime") != []
    assert violations(flows, "def f():\n    from erpsync.web import app\n") != []  # inside a function too
    assert violations(flows, "from ..runtime import store") != []  # relative
    assert violations(flows, "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                             "    from erpsync.runtime.store import Store\n") == []
    assert violations(amazon, "from erpsync import sage500") != []
    assert violations(amazon, "from erpsync.flows import jobs") != []
    assert violations(SRC / "sage500" / "x.py", "import erpsync.amazon.client") != []
    assert violations(model, "from erpsync import errors") != []
    assert violations(SRC / "mapping.py", "from erpsync.sage500 import gateway") != []
    assert violations(SRC / "runtime" / "x.py", "from erpsync.sandbox.server import start") != []
    assert violations(SRC / "commands" / "demo.py", "from erpsync.sandbox.server import start") == []
    assert violations(SRC / "sandbox" / "x.py", "from erpsync.amazon import translate") != []
    assert violations(SRC / "runtime" / "x.py", "from erpsync.flows.jobs import job\nfrom erpsync import errors") \
        == []
