"""The import rules of docs/design.md, kept by walking every import of every module (those
inside functions too).

Layers, lowest first; a package may import its own modules and those of the layers below it,
never one beside or above it:

    statutory      the law as a table, and the clock that applies it (pure)
    domain         the case as a workflow holds it, ladders, alerts, identifiers, words (pure)
    config         settings
    workflows      Temporal workflows: statutory and domain only
    store          the database: tables, the case record, read queries
    services       what the system does: start, act, read, import, chase, report
    activities     Temporal activities: @activity.defn wrappers over services, nothing else
    worker, api    the worker process; the HTTP routes and pages (thin: parse, call, render)
    cli            the ``ehc`` command

Also: no cycle between modules; a route module holds no SQL and no Temporal calls.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

RANK = {
    "statutory": 0,
    "domain": 1,
    "config": 1,
    "workflows": 2,
    "store": 2,
    "services": 3,
    "activities": 4,
    "worker": 5,
    "api": 5,
    "cli": 6,
}
# What each package may import beyond the layers below it: nothing. Exceptions, each a
# reason: a worker process is started by the command line (``python -m worker`` is
# ``ehc worker``).
ENTRY_POINTS = {"worker.__main__": {"cli"}}
PURE = {"statutory", "domain"}  # workflows import these inside Temporal's sandbox
PURE_THIRD_PARTY = {"pydantic", "temporalio"}  # pydantic models; temporalio: the workflows


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@lru_cache
def modules() -> dict[str, Path]:
    out = {}
    for package in RANK:
        for path in sorted((ROOT / package).rglob("*.py")):
            out[_module_name(path)] = path
    return out


@lru_cache
def imports_of(module: str) -> tuple[str, ...]:
    """Every module ``module`` imports, anywhere in it, as a full dotted name."""
    path = modules()[module]
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            for a in node.names:  # ``from pkg import module``
                if f"{target}.{a.name}" in modules():
                    found.add(f"{target}.{a.name}")
    return tuple(sorted(found))


def project_imports(module: str) -> list[str]:
    return [m for m in imports_of(module) if m.split(".")[0] in RANK]


def _layer_problems(module: str) -> list[str]:
    own = module.split(".")[0]
    allowed_beside = ENTRY_POINTS.get(module, set())
    problems = []
    for target in project_imports(module):
        other = target.split(".")[0]
        if other == own or other in allowed_beside:
            continue
        if RANK[other] >= RANK[own]:
            where = "above" if RANK[other] > RANK[own] else "beside"
            problems.append(f"{module} imports {target}, a layer {where} it")
    return problems


@pytest.mark.parametrize("package", list(RANK))
def test_each_layer_imports_only_the_layers_below_it(package):
    problems = [p for m in modules() if m.split(".")[0] == package for p in _layer_problems(m)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("package", sorted(PURE | {"workflows"}))
def test_workflows_and_the_pure_layers_import_no_io(package):
    """Workflow code runs in Temporal's sandbox, re-imported for every run: the standard
    library, pydantic, temporalio and the pure layers only (engineering notes: a workflow
    module importing a third-party package took 1.6 GiB for 2,000 open workflows)."""
    import sys

    stdlib = sys.stdlib_module_names
    problems = []
    for module in modules():
        if module.split(".")[0] != package:
            continue
        for target in imports_of(module):
            top = target.split(".")[0]
            if top in stdlib or top == "__future__" or top in PURE_THIRD_PARTY:
                continue
            if top in PURE or (package == "workflows" and top == "workflows"):
                continue
            problems.append(f"{module} imports {target}")
    assert not problems, "\n".join(problems)


def test_no_cycle_between_modules():
    graph = {m: [t for t in project_imports(m) if t in modules()] for m in modules()}
    cycles = _cycles(graph)
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def test_no_cycle_between_packages():
    graph: dict[str, set[str]] = defaultdict(set)
    for m in modules():
        for t in project_imports(m):
            a, b = m.split(".")[0], t.split(".")[0]
            if a != b and m not in ENTRY_POINTS:
                graph[a].add(b)
    cycles = _cycles({k: sorted(v) for k, v in graph.items()})
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def _cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """One cycle for each strongly connected component with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_activities_are_only_activity_definitions():
    """activities/ holds the @activity.defn wrappers (classes whose methods are activities,
    holding the services they call) and nothing else: the work is in services."""
    problems = []
    for module, path in modules().items():
        if module.split(".")[0] != "activities" or path.name == "__init__.py":
            continue
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if not _is_activity(node):
                    problems.append(f"{module}.{node.name} is not an activity")
            elif isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and \
                            item.name != "__init__" and not _is_activity(item):
                        problems.append(f"{module}.{node.name}.{item.name} is not an activity")
            elif not isinstance(node, (ast.Import, ast.ImportFrom, ast.Expr)):
                problems.append(f"{module} line {node.lineno}: only activities belong here")
    assert not problems, "\n".join(problems)


def _is_activity(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    for d in fn.decorator_list:
        call = d.func if isinstance(d, ast.Call) else d
        if isinstance(call, ast.Attribute) and call.attr == "defn" and \
                isinstance(call.value, ast.Name) and call.value.id == "activity":
            return True
    return False


# --- routes are thin -------------------------------------------------------------------------

# What a route module may not import: the database and Temporal are the services' to use.
# ``api.deps`` hands a route its session and client, so it alone may name their types.
NOT_IN_ROUTES = ("sqlalchemy", "sqlmodel", "temporalio", "store")
ROUTE_DEPS = {"api.deps": {"sqlmodel", "temporalio", "store.db"}, "api.app": {"temporalio"}}
# Calls that are SQL or Temporal, whatever the object is called.
FORBIDDEN_CALLS = {"exec", "execute", "commit", "rollback", "flush", "add", "add_all",
                   "get_workflow_handle", "start_workflow", "execute_update",
                   "execute_workflow", "signal_workflow"}


def _route_modules() -> list[str]:
    return sorted(m for m in modules() if m.split(".")[0] == "api" and m != "api")


@pytest.mark.parametrize("module", _route_modules())
def test_routes_hold_no_sql_and_no_temporal_calls(module):
    allowed = ROUTE_DEPS.get(module, set())
    problems = []
    for target in imports_of(module):
        top = target.split(".")[0]
        if top in NOT_IN_ROUTES and not any(target == a or target.startswith(a + ".")
                                            for a in allowed):
            problems.append(f"imports {target}")
    tree = ast.parse(modules()[module].read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in FORBIDDEN_CALLS \
                and not (isinstance(node.func.value, ast.Name)
                         and node.func.value.id in ("router", "app", "pages", "api")):
            problems.append(f"line {node.lineno}: .{node.func.attr}(...)")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr == "get" and isinstance(node.func.value, ast.Name) \
                and node.func.value.id in ("session", "s", "db"):
            problems.append(f"line {node.lineno}: {node.func.value.id}.get(...)")
    assert not problems, f"{module}: " + "; ".join(problems)
