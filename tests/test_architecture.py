"""The package's shape, checked: imports run one way, and private names of dependencies are
used only in `timestep/_compat/`.

Layers, lowest first; a module may import from its own layer and the layers below it:

- `errors`, `_compat`: nothing of Timestep's (but `errors`).
- `config`, `context`: settings, and how a run's context is stored.
- `state`: tables, records, formats (the TypeScript RunState adapter).
- `models`: model providers.
- `_engine`: DBOS workflows and steps around the SDK's runner.
- `result`: the result classes the use cases return.
- use cases: `run`, `runs`, `approvals`, `lifecycle`, `stream`, `tool`, `handover`, `store`,
  `pglite`, `retention`, `upgrade`. They do not import one another (but the edges listed in
  USE_CASE_IMPORTS), and enter the engine through its facade (`timestep._engine`) only.
- `cli`, `web`, `worker`, `demo` (the demo app), and the package itself (`timestep/__init__.py`,
  that module only).
- `workflows/`: the entry point of `dbos start`; it imports `timestep.worker` and nothing else.

Every module is in a layer (a new module is placed on purpose). Within a layer the module
graph has no cycles. Every import counts: at module level or in a function, and
`importlib.import_module` with a constant name; a module name that is not a constant is allowed
only in the modules of DYNAMIC_IMPORTS. Private names of dependencies (attributes, imports, and
`getattr(x, "_name")` and its siblings) appear only in `timestep/_compat/`.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "timestep"
ENTRY_POINT = ROOT / "workflows"

USE_CASES = (
    "timestep.run",
    "timestep.runs",
    "timestep.approvals",
    "timestep.lifecycle",
    "timestep.stream",
    "timestep.tool",
    "timestep.handover",
    "timestep.store",
    "timestep.pglite",
    "timestep.retention",
    "timestep.upgrade",
)
"""The use-case modules: each holds public entry points."""

LAYERS: list[tuple[str, ...]] = [
    ("timestep.errors", "timestep._compat"),
    ("timestep.config", "timestep.context"),
    ("timestep.state",),
    ("timestep.models",),
    ("timestep._engine",),
    ("timestep.result",),
    USE_CASES,
    ("timestep.cli", "timestep.web", "timestep.worker", "timestep.demo", "timestep"),
    ("workflows",),
]

PACKAGE_ONLY = {"timestep"}
"""Layer entries that place the package module itself, not what is below it: a new module
`timestep.x` is in no layer until it is added to LAYERS."""

USE_CASE_IMPORTS = {
    # Each edge is a use case calling another one's entry point.
    ("timestep.approvals", "timestep.run"): "resume collects its result as run_agent does "
    "(run.collect_result)",
    ("timestep.handover", "timestep.approvals"): "an imported state whose calls are all decided "
    "goes on at once (approvals.continue_if_decided)",
    ("timestep.lifecycle", "timestep.runs"): "cancel/retry/fork read the run as get_run shows it",
    ("timestep.pglite", "timestep.handover"): "the PGLite importer imports each state through "
    "the handover's import_run_state",
}
"""Imports among use-case modules that exist, each with why."""

ENTRY_POINT_IMPORTS = {"timestep.worker"}
"""What `workflows/` may import of Timestep's: it is a thin entry point for `dbos start`."""

DYNAMIC_IMPORTS = {
    # PEP 562: the public names are imported on first use from the modules in its `_LAZY` table.
    "timestep": "the lazily imported public names",
    # A recorded tool output of a pydantic type names its class, imported again on replay.
    "timestep._engine.codecs": "the recorded pydantic type of a tool output",
    # `--app MODULE` and `module:attribute` names given by the user.
    "timestep._engine.registry": "the user's app modules",
    # PEP 562: the engine facade loads the submodule of a name on its first use.
    "timestep._engine": "the engine facade's lazily imported operations",
}
"""Modules that call `importlib.import_module` with a name that is not a constant, and why."""

PRIVATE_ACCESS = {
    # timestep/_engine/model_calls.py is being rewritten under issue 26 item 2 in another branch;
    # the openai `Response._request_id` read moves to timestep/_compat/ there.
    "timestep._engine.model_calls": ['getattr(response, "_request_id")'],
}
"""Private names of dependencies used outside `timestep/_compat/` for now, each with why."""


def _modules() -> dict[str, Path]:
    found = {}
    for path in [*PACKAGE.rglob("*.py"), *ENTRY_POINT.rglob("*.py")]:
        if "node_modules" in path.parts:
            continue
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _ours(name: str) -> bool:
    return name.split(".")[0] in ("timestep", "workflows")


MODULES = _modules()


def _resolve(module: str, path: Path, node: ast.ImportFrom) -> list[str]:
    """The Timestep modules an import names (a submodule when `from pkg import sub`)."""
    if node.level:
        package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        base = ".".join(
            package[: len(package) - node.level + 1] + ([node.module] if node.module else [])
        )
    else:
        base = node.module or ""
    if not _ours(base):
        return []
    targets = []
    for alias in node.names:
        candidate = f"{base}.{alias.name}"
        targets.append(candidate if candidate in MODULES else base)
    return targets


def _import_module_call(node: ast.AST) -> ast.Call | None:
    """`importlib.import_module(...)` or `import_module(...)`."""
    if not isinstance(node, ast.Call):
        return None
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    return node if name == "import_module" else None


def _dynamic_target(module: str, path: Path, call: ast.Call) -> str | None:
    """The module an `import_module` call names, when its name is a constant; else None."""
    if not call.args or not isinstance(call.args[0], ast.Constant):
        return None
    name = str(call.args[0].value)
    if name.startswith("."):
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        name = importlib.util.resolve_name(name, package)
    return name


def _imports(module: str) -> set[str]:
    path = MODULES[module]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            found.update(_resolve(module, path, node))
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if _ours(a.name))
        elif (call := _import_module_call(node)) is not None:
            target = _dynamic_target(module, path, call)
            if target is not None and _ours(target):
                found.add(target)
    found.discard(module)
    return found


def dynamic_imports() -> dict[str, list[int]]:
    """Modules outside DYNAMIC_IMPORTS that import a module whose name is not a constant."""
    found: dict[str, list[int]] = {}
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            call = _import_module_call(node)
            if call is not None and _dynamic_target(module, path, call) is None:
                found.setdefault(module, []).append(call.lineno)
    return found


def unplaced_modules() -> list[str]:
    return sorted(module for module in MODULES if _layer(module) < 0)


def use_case_imports() -> list[list[str]]:
    return sorted(
        [module, target]
        for module in MODULES
        if _layer(module) == LAYERS.index(USE_CASES)
        for target in _imports(module)
        if _layer(target) == LAYERS.index(USE_CASES)
    )


def engine_internals_used() -> list[list[str]]:
    """[use case, engine submodule] for each use case that goes past the engine facade."""
    return sorted(
        [module, target]
        for module in MODULES
        if _layer(module) == LAYERS.index(USE_CASES)
        for target in _imports(module)
        if target.startswith("timestep._engine.")
    )


def entry_point_imports() -> list[str]:
    return sorted(
        target
        for module in MODULES
        if module.split(".")[0] == "workflows"
        for target in _imports(module)
        if target.split(".")[0] != "workflows"
    )


def _layer(module: str) -> int:
    """The index in LAYERS of the longest entry that places `module`; -1 when none does."""
    best, level = -1, -1
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            below = module.startswith(prefix + ".") and prefix not in PACKAGE_ONLY
            if (module == prefix or below) and len(prefix) > best:
                best, level = len(prefix), index
    return level


def upward_imports() -> dict[str, list[str]]:
    upward = {}
    for module in MODULES:
        wrong = sorted(t for t in _imports(module) if _layer(t) > _layer(module) >= 0)
        if wrong:
            upward[module] = wrong
    return upward


def import_cycles() -> list[list[str]]:
    graph = {module: _imports(module) for module in MODULES}
    # A package's __init__ re-exports its submodules: an edge into it is not a cycle.
    packages = {m for m, p in MODULES.items() if p.name == "__init__.py"}
    cycles = []

    def visit(module: str, trail: list[str]) -> None:
        for target in sorted(graph.get(module, ())):
            if target in packages:
                continue
            if target in trail:
                cycles.append(trail[trail.index(target) :] + [target])
            elif target not in done:
                visit(target, [*trail, target])
        done.add(module)

    done: set[str] = set()
    for module in sorted(MODULES):
        if module not in done:
            visit(module, [module])
    return cycles


PUBLIC_UNDERSCORED = {"os._exit"}
"""Names with a leading underscore that are public, documented API."""


def _private(part: str) -> bool:
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


ATTRIBUTE_BUILTINS = {"getattr", "setattr", "hasattr", "delattr"}


def _private_by_name(call: ast.Call, own: set[str]) -> bool:
    """`getattr(x, "_name", ...)` (or setattr/hasattr/delattr) on an object not of Timestep's."""
    if not (isinstance(call.func, ast.Name) and call.func.id in ATTRIBUTE_BUILTINS):
        return False
    if len(call.args) < 2 or not isinstance(call.args[1], ast.Constant):
        return False
    name = call.args[1].value
    if not (isinstance(name, str) and _private(name)):
        return False
    target = call.args[0]
    return not (isinstance(target, ast.Name) and target.id in own)


def _private_uses(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    own: set[str] = {"self", "cls", "super"}
    uses = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level or _ours(node.module or ""):
                own.update(a.asname or a.name for a in node.names)
            elif node.module != "__future__":
                dotted = [node.module or "", *(a.name for a in node.names)]
                if any(_private(p) for d in dotted for p in d.split(".")):
                    uses.append(f"line {node.lineno}: from {node.module} import ...")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if any(_private(part) for part in alias.name.split(".")):
                    uses.append(f"line {node.lineno}: import {alias.name}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _private_by_name(node, own):
            uses.append(f"line {node.lineno}: {ast.unparse(node)}")
        if (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            base = node.value
            if isinstance(base, ast.Call) and isinstance(base.func, ast.Name):
                base = base.func  # super()._hook
            if isinstance(base, ast.Name) and base.id in own and base.id != "super":
                continue
            if ast.unparse(node) in PUBLIC_UNDERSCORED:
                continue
            uses.append(f"line {node.lineno}: {ast.unparse(node)}")
    return uses


def private_uses_outside_compat() -> dict[str, list[str]]:
    found = {}
    for module, path in MODULES.items():
        if module.startswith("timestep._compat"):
            continue
        allowed = PRIVATE_ACCESS.get(module, [])
        uses = [
            use
            for use in _private_uses(path)
            if not any(_same_call(use, expected) for expected in allowed)
        ]
        if uses:
            found[module] = uses
    return found


def _same_call(use: str, expected: str) -> bool:
    """`use` ("line N: getattr(response, '_request_id', None)") is the `expected` access."""
    code = use.partition(": ")[2].replace("'", '"')
    return code.startswith(expected.rstrip(")"))


def stale_private_access() -> list[str]:
    """PRIVATE_ACCESS entries that the code no longer needs."""
    stale = []
    for module, expected in PRIVATE_ACCESS.items():
        uses = _private_uses(MODULES[module]) if module in MODULES else []
        stale += [f"{module}: {e}" for e in expected if not any(_same_call(u, e) for u in uses)]
    return stale


@functools.cache
def _findings() -> dict[str, Any]:
    # The package is parsed in a fresh interpreter: CPython 3.11.7's parser can raise
    # "AST constructor recursion depth mismatch" in a long-lived test worker.
    done = subprocess.run(
        [sys.executable, __file__],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    found: dict[str, Any] = json.loads(done.stdout)
    return found


def test_imports_run_downward() -> None:
    assert not _findings()["upward"], _findings()["upward"]


def test_no_import_cycles() -> None:
    assert not _findings()["cycles"], _findings()["cycles"]


def test_private_names_of_dependencies_only_in_compat() -> None:
    assert not _findings()["private"], _findings()["private"]
    assert not _findings()["stale_private"], "drop from PRIVATE_ACCESS: " + str(
        _findings()["stale_private"]
    )


def test_every_module_is_in_a_layer() -> None:
    assert not _findings()["unplaced"], f"add to LAYERS: {_findings()['unplaced']}"


def test_use_cases_do_not_import_one_another() -> None:
    found = {tuple(edge) for edge in _findings()["use_case_imports"]}
    assert found <= set(USE_CASE_IMPORTS), sorted(found - set(USE_CASE_IMPORTS))
    stale = set(USE_CASE_IMPORTS) - found
    assert not stale, f"drop from USE_CASE_IMPORTS: {sorted(stale)}"


def test_use_cases_enter_the_engine_through_its_facade() -> None:
    """`timestep._engine` (its `__init__`) is the one way in: its submodules are internals."""
    assert not _findings()["engine_internals"], _findings()["engine_internals"]


def test_the_engine_facade_names_what_it_loads() -> None:
    """Every name of the facade loads (a renamed internal fails here, not in a user's run)."""
    import timestep._engine as engine

    submodules = {m.rsplit(".", 1)[1] for m in MODULES if m.startswith("timestep._engine.")}
    # A submodule, once imported, is an attribute of the package that hides a facade name.
    assert not set(engine.__all__) & submodules, set(engine.__all__) & submodules
    for name in engine.__all__:
        assert getattr(engine, name) is not None, name


def test_the_entry_point_only_starts_the_worker() -> None:
    assert set(_findings()["entry_point"]) == ENTRY_POINT_IMPORTS


def test_modules_are_imported_by_constant_names() -> None:
    found = _findings()["dynamic"]
    assert set(found) <= set(DYNAMIC_IMPORTS), {
        m: found[m] for m in set(found) - set(DYNAMIC_IMPORTS)
    }
    stale = set(DYNAMIC_IMPORTS) - set(found)
    assert not stale, f"drop from DYNAMIC_IMPORTS: {sorted(stale)}"


if __name__ == "__main__":
    print(
        json.dumps(
            {
                "upward": upward_imports(),
                "cycles": import_cycles(),
                "private": private_uses_outside_compat(),
                "stale_private": stale_private_access(),
                "unplaced": unplaced_modules(),
                "use_case_imports": use_case_imports(),
                "entry_point": entry_point_imports(),
                "engine_internals": engine_internals_used(),
                "dynamic": dynamic_imports(),
            }
        )
    )
