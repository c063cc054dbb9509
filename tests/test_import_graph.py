"""The package's import structure: no import cycles between its modules, no hidden function-local imports.

A cycle between modules is held apart only by import order or by imports hidden inside functions, and it
breaks (``ImportError: cannot import name ...``, a half-initialised module) as soon as someone moves an
import. These tests read the source with ``ast`` (nothing is imported), so they see every module, including
the framework integrations whose frameworks may not be installed.
"""

from __future__ import annotations

import ast
from pathlib import Path

import backend_guard

PACKAGE = "backend_guard"
SRC = Path(backend_guard.__file__).resolve().parent

# Third-party packages a module may import inside a function: the optional ones (extras, and what the
# frameworks bring along), so the core never imports a web framework or a Redis client it does not use...
OPTIONAL_THIRD_PARTY = frozenset(
    {"anyio", "asgiref", "bcrypt", "click", "django", "fastapi", "flask", "hiredis", "jinja2", "redis", "starlette"}
    | {"opentelemetry", "uvicorn", "werkzeug", "zxcvbn"}
)
# ... and dependencies that are heavy to import, loaded on first use by the part that needs them.
HEAVY_THIRD_PARTY = frozenset({"argon2", "jwt", "limits", "publicsuffixlist", "pydantic"})
LAZY_THIRD_PARTY = OPTIONAL_THIRD_PARTY | HEAVY_THIRD_PARTY

# Function-local imports of the package's own modules that are intended: (importing module, imported module,
# reason). Anything else is a cycle workaround or an accident, and the test below names it.
ALLOWED_LOCAL_IMPORTS: dict[tuple[str, str], str] = {
    # Imports FastAPI at its top: loaded only when a FastAPI app asks a token dependency for its OpenAPI
    # parameters (the core never imports a web framework).
    ("backend_guard.tokens._routes", "backend_guard.integrations._fastapi_security"): "optional framework (fastapi)",
    # The console script: a ConfigurationError raised while the command line loads (a short
    # BACKEND_GUARD_DIGEST_KEY, read when backend_guard.events is imported) is one line there, not a traceback.
    ("backend_guard._cli_entry", "backend_guard.cli"): "the console script catches a refusal while cli loads",
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(SRC.rglob("*.py"))}


MODULES = _modules()


def _is_package(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


def _resolve(module: str, node: ast.ImportFrom) -> str:
    """The absolute name of the module a ``from ... import`` statement reads from."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if _is_package(module) else module.split(".")[:-1]
    if node.level > 1:
        base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The package's own modules an import statement loads (``from .x import y`` counts ``.x.y`` when it is a
    submodule); an import loads every enclosing package too, but those edges are implied by the package's own
    imports, so only the named module counts."""
    found: list[str] = []
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name == PACKAGE or alias.name.startswith(PACKAGE + "."):
                found.append(alias.name)
        return found
    source = _resolve(module, node)
    if not (source == PACKAGE or source.startswith(PACKAGE + ".")):
        return found
    for alias in node.names:
        submodule = f"{source}.{alias.name}"
        found.append(submodule if submodule in MODULES else source)
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Import statements that run when the module is imported: not in a function, not under TYPE_CHECKING."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(statements: list[ast.stmt]) -> None:
        for statement in statements:
            if isinstance(statement, ast.Import | ast.ImportFrom):
                found.append(statement)
            elif isinstance(statement, ast.If):
                if not _is_type_checking(statement.test):
                    visit(statement.body)
                visit(statement.orelse)
            elif isinstance(statement, ast.Try):
                visit(statement.body)
                for handler in statement.handlers:
                    visit(handler.body)
                visit(statement.orelse)
                visit(statement.finalbody)
            elif isinstance(statement, ast.With | ast.ClassDef):
                visit(statement.body)

    visit(tree.body)
    return found


def _function_local_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    found: list[ast.Import | ast.ImportFrom] = []
    for function in ast.walk(tree):
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            for node in ast.walk(function):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    found.append(node)
    return list({id(node): node for node in found}.values())


def _trees() -> dict[str, ast.Module]:
    return {module: ast.parse(path.read_text(encoding="utf-8"), str(path)) for module, path in MODULES.items()}


TREES = _trees()


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {module: set() for module in MODULES}
    for module, tree in TREES.items():
        for node in _module_level_imports(tree):
            graph[module].update(t for t in _targets(module, node) if t in MODULES and t != module)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan), as a readable path."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                connect(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component: set[str] = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            connect(node)

    cycles: list[list[str]] = []
    for component in components:
        start = min(component)
        # Breadth-first search inside the component for the shortest way back to start.
        previous: dict[str, str] = {}
        frontier = [start]
        end = None
        while frontier and end is None:
            following: list[str] = []
            for node in frontier:
                for successor in sorted(graph[node] & component):
                    if successor == start:
                        end = node
                        break
                    if successor not in previous:
                        previous[successor] = node
                        following.append(successor)
                if end is not None:
                    break
            frontier = following
        path = [start]
        node = end
        while node is not None and node != start:
            path.insert(1, node)
            node = previous.get(node)
        cycles.append([*path, start])
    return cycles


def test_the_import_graph_helper_reports_a_cycle_as_a_path_back_to_its_start() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_of_the_package_imports_itself_back_through_a_cycle_at_import_time() -> None:
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles between backend_guard modules:\n" + "\n".join(
        " -> ".join(cycle) for cycle in cycles
    )


def test_no_cycle_is_held_apart_by_an_import_inside_a_function() -> None:
    graph = import_graph()
    for module, tree in TREES.items():
        for node in _function_local_imports(tree):
            graph[module].update(t for t in _targets(module, node) if t in MODULES and t != module)
    cycles = find_cycles(graph)
    assert not cycles, "import cycles through function-local imports:\n" + "\n".join(
        " -> ".join(cycle) for cycle in cycles
    )


def test_modules_import_the_package_s_own_modules_at_the_top_not_inside_functions() -> None:
    unexpected: list[str] = []
    for module, tree in TREES.items():
        for node in _function_local_imports(tree):
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            else:
                roots = {(_resolve(module, node) if node.level else node.module or "").split(".")[0]}
            if roots <= LAZY_THIRD_PARTY:
                continue
            for target in dict.fromkeys(_targets(module, node)) if roots == {PACKAGE} else []:
                if (module, target) not in ALLOWED_LOCAL_IMPORTS:
                    unexpected.append(f"{module} (line {node.lineno}) imports {target} inside a function")
            if roots != {PACKAGE}:
                unexpected.append(f"{module} (line {node.lineno}) imports {sorted(roots)} inside a function")
    assert not unexpected, "\n".join(unexpected)


def test_the_allow_list_of_function_local_imports_names_only_imports_that_still_exist() -> None:
    seen: set[tuple[str, str]] = set()
    for module, tree in TREES.items():
        for node in _function_local_imports(tree):
            seen.update((module, target) for target in _targets(module, node))
    assert set(ALLOWED_LOCAL_IMPORTS) <= seen, sorted(set(ALLOWED_LOCAL_IMPORTS) - seen)
