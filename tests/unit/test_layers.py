"""The package's layers, read from its imports: each layer imports only itself and those below,
the core imports nothing of the project outside it and nothing that does I/O, and no module
imports itself back through others."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from support.paths import ROOT

PACKAGE = ROOT / "clearing"

# Lowest first. A module belongs to the first layer one of whose names is its first part
# below `clearing` (`clearing/stream/batch.py` -> `stream`, `clearing/topics.py` -> `topics`);
# the root package itself (`__init__`) sits with the core, since everything may import it.
LAYERS: list[set[str]] = [
    {"core", "__init__"},
    {"config", "errors", "metrics", "topics", "kafka_clients", "kafka_auth", "kafka_acl"},
    {"store"},
    {"auth"},
    {"ledger"},
    {"stream"},
    {"api"},
    {"dashboard"},
    {"worker"},
    {"ops"},
    {"cli", "__main__"},
]

# What the pure core may not import: the I/O and the frameworks live above it.
CORE_FORBIDDEN = {
    "aiohttp", "aiokafka", "alembic", "asyncio", "faust", "kafka", "os", "prometheus_client",
    "psycopg", "shutil", "socket", "sqlalchemy", "sqlite3", "subprocess", "tqdm", "urllib",
}


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def type_only_lines(tree: ast.AST) -> set[int]:
    """Lines of imports under `if TYPE_CHECKING:`: read by the type checker, never run."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in node.body:
                lines.update(n.lineno for n in ast.walk(inner) if hasattr(n, "lineno"))
    return lines


def imports_of(
    path: Path, root: Path = PACKAGE, *, type_only: bool = True
) -> Iterator[tuple[str, int]]:
    """Every module the file imports (at any depth, lazy imports too), with its line; without
    the imports only the type checker runs when `type_only` is false."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module_name(path, root).rsplit(".", 0 if path.name == "__init__.py" else 1)[0]
    skipped = set() if type_only else type_only_lines(tree)
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skipped:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            yield target, node.lineno
            for alias in node.names:  # `from clearing.core import money` names a module
                yield f"{target}.{alias.name}", node.lineno


def layer_of(module: str) -> int:
    parts = module.split(".")
    head = parts[1] if len(parts) > 1 else "__init__"
    for index, names in enumerate(LAYERS):
        if head in names:
            return index
    raise AssertionError(f"{module}: in no layer; add it to LAYERS")


def project_modules(package: Path = PACKAGE) -> dict[str, Path]:
    return {module_name(path, package): path for path in sorted(package.rglob("*.py"))}


def internal_imports(
    package: Path = PACKAGE, *, type_only: bool = True
) -> dict[str, set[tuple[str, int]]]:
    modules = project_modules(package)
    return {
        name: {
            (t, line)
            for t, line in imports_of(path, package, type_only=type_only)
            if t in modules
        }
        for name, path in modules.items()
    }


def upward_imports(package: Path = PACKAGE) -> list[str]:
    return [
        f"{name}:{line} imports {target}"
        for name, targets in internal_imports(package).items()
        for target, line in sorted(targets)
        if layer_of(target) > layer_of(name)
    ]


def impure_core_imports(package: Path = PACKAGE) -> list[str]:
    found = []
    for name, path in project_modules(package).items():
        if layer_of(name) != 0:
            continue
        for target, line in imports_of(path, package):
            top = target.split(".")[0]
            outside = top == "clearing" and not target.startswith("clearing.core")
            if top in CORE_FORBIDDEN or outside:
                found.append(f"{name}:{line} imports {target}")
    return found


def import_cycles(package: Path = PACKAGE) -> list[str]:
    """Cycles of the imports that run: a type-only import back is no cycle at run time."""
    imports = internal_imports(package, type_only=False)
    graph = {name: {t for t, _ in targets} for name, targets in imports.items()}
    for name, targets in graph.items():
        targets.discard(name)
        # A module importing its own package's __init__ is not a cycle of the design.
        targets.difference_update({t for t in targets if name.startswith(t + ".")})
    cycles: list[str] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                cycles.append(" -> ".join([*stack[stack.index(target):], target]))
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return cycles


def test_every_module_has_a_layer() -> None:
    for name in project_modules():
        layer_of(name)


def test_no_layer_imports_a_higher_one() -> None:
    upward = upward_imports()
    assert not upward, "imports that run up the layers:\n" + "\n".join(upward)


def test_core_imports_nothing_that_does_io() -> None:
    found = impure_core_imports()
    assert not found, "the core must stay pure:\n" + "\n".join(found)


def test_no_import_cycles() -> None:
    cycles = import_cycles()
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_checks_see_planted_violations(tmp_path: Path) -> None:
    """The same checks on a small planted package find each kind of violation."""
    root = tmp_path / "clearing"
    files = {
        "__init__.py": "",
        "core/__init__.py": "",
        "core/money.py": "import os\n\ndef f():\n    from clearing.stream import batch\n",
        "stream/__init__.py": "",
        "stream/batch.py": "from clearing.stream import handlers\n",
        "stream/handlers.py": "from . import batch\nimport clearing.worker\n",
        "worker.py": "from clearing.core import money\n",
        "ops/__init__.py": "",
        "ops/a.py": "from clearing.ops import b\n",
        "ops/b.py": (
            "from typing import TYPE_CHECKING\n\n"
            "if TYPE_CHECKING:\n    from clearing.ops import a\n"
        ),
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    assert upward_imports(root) == [
        "clearing.core.money:4 imports clearing.stream",
        "clearing.core.money:4 imports clearing.stream.batch",
        "clearing.stream.handlers:2 imports clearing.worker",
    ]
    assert impure_core_imports(root) == [
        "clearing.core.money:1 imports os",
        "clearing.core.money:4 imports clearing.stream",
        "clearing.core.money:4 imports clearing.stream.batch",
    ]
    assert sorted(import_cycles(root)) == [
        "clearing.core.money -> clearing.stream.batch -> clearing.stream.handlers"
        " -> clearing.worker -> clearing.core.money",
        "clearing.stream.batch -> clearing.stream.handlers -> clearing.stream.batch",
    ]
