"""The import direction holds: cli -> flows -> answering -> training -> indexing -> connectors -> errors.

A module may import its own package and any package below it, never one above; and no package's
modules import each other in a circle. What several layers share sits in ``errors``, the bottom, which imports
nothing of ours: the domain errors, credential masking, and the lazy package facades (``errors.lazy``) that
``connectors`` and ``indexing`` both use.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ["errors", "connectors", "indexing", "training", "answering", "flows", "cli"]  # bottom first


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", LAYERS)
def test_no_module_imports_a_layer_above_its_own(package: str) -> None:
    above = set(LAYERS[LAYERS.index(package) + 1 :]) | {"tests", "bench", "fixtures"}
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in _modules(package)
        for name in sorted(_imports(path))
        if name.split(".")[0] in above
    ]
    assert offenders == []


def test_no_import_circle_between_modules() -> None:
    graph: dict[str, set[str]] = {}
    for package in LAYERS:
        for path in _modules(package):
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            graph[module] = {name for name in _imports(path) if name.split(".")[0] in LAYERS}

    # Only module-level imports between sibling modules count; a package importing its own submodules
    # (its __init__ re-exporting them) is the package's public surface, not a circle.
    def edges(module: str) -> set[str]:
        return {n for n in graph.get(module, set()) if n in graph and not module.startswith(n + ".") and n != module}

    circles = []
    state: dict[str, int] = {}

    def visit(module: str, stack: list[str]) -> None:
        state[module] = 1
        for nxt in edges(module):
            if state.get(nxt) == 1:
                circles.append(" -> ".join([*stack[stack.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert [c for c in circles if "__init__" not in c and not _through_package_init(c)] == []


def _through_package_init(circle: str) -> bool:
    """``a.b -> a`` edges go through a package's __init__ (the facade), which may import ``a.b`` back."""
    parts = circle.split(" -> ")
    return any(
        later.startswith(earlier + ".") or earlier.startswith(later + ".")
        for earlier, later in zip(parts, parts[1:], strict=False)
    )


# Where this process's environment is written, and why; kup's own settings pass between its parts as ``Settings``.
ENVIRONMENT_WRITERS = {
    ("cli/main.py", "_library_environment"): "Prefect's and Hugging Face's settings: they read only the environment",
    ("cli/serve.py", "_export_to_served_runs"): "KUP_* for the flow runs Prefect's runner starts as children",
    ("cli/shared.py", "point_prefect_at"): "PREFECT_API_URL, read by Prefect when it loads and by its children",
    ("flows/server.py", "start_server"): "PREFECT_API_AUTH_STRING for Prefect's client and the runs it starts",
    ("training/base_model.py", "load_base"): "Hugging Face's offline switches, read when it loads",
    ("indexing/embedding.py", "model"): "Hugging Face's offline switches, read when it loads",
}


def _environment_writes(path: Path) -> set[tuple[str, str]]:
    """(module, function) pairs that assign to, setdefault, update or putenv this process's environment."""

    def is_environ(node: ast.AST) -> bool:
        return isinstance(node, ast.Attribute) and node.attr == "environ"

    found: set[tuple[str, str]] = set()
    where = str(path.relative_to(ROOT))

    def visit(node: ast.AST, function: str) -> None:
        for child in ast.iter_child_nodes(node):
            name = child.name if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else function
            targets = child.targets if isinstance(child, ast.Assign) else []
            if any(isinstance(t, ast.Subscript) and is_environ(t.value) for t in targets):
                found.add((where, name))
            if isinstance(child, ast.Call) and isinstance(child.func, ast.Attribute):
                owner = child.func.value
                if (child.func.attr in ("setdefault", "update") and is_environ(owner)) or child.func.attr == "putenv":
                    found.add((where, name))
            visit(child, name)

    visit(ast.parse(path.read_text(encoding="utf-8")), "<module>")
    return found


def test_the_environment_is_written_only_where_a_library_or_a_child_process_reads_it() -> None:
    writes = set().union(*(_environment_writes(path) for package in LAYERS for path in _modules(package)))
    assert writes <= set(ENVIRONMENT_WRITERS), sorted(writes - set(ENVIRONMENT_WRITERS))
