"""The package's shape, checked: imports run one way, and private names of dependencies are
used only in `timestep/_compat/`.

Layers, lowest first; a module may import from its own layer and the layers below it:

- `errors`, `_compat`: nothing of Timestep's (but `errors`).
- `config`, `context`: settings, and how a run's context is stored.
- `state`: tables, records, formats (the TypeScript RunState adapter).
- `models`: model providers.
- `_engine`: DBOS workflows and steps around the SDK's runner.
- use cases: `run`, `runs`, `approvals`, `lifecycle`, `stream`, `result`, `tool`, `handover`,
  `store`, `pglite`.
- `cli`, and the package itself (`timestep/__init__.py`).

Within a layer the module graph has no cycles (function-level imports count).
"""

from __future__ import annotations

import ast
import functools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

PACKAGE = Path(__file__).resolve().parent.parent / "timestep"

LAYERS: list[tuple[str, ...]] = [
    ("timestep.errors", "timestep._compat"),
    ("timestep.config", "timestep.context"),
    ("timestep.state",),
    ("timestep.models",),
    ("timestep._engine",),
    (
        "timestep.run",
        "timestep.runs",
        "timestep.approvals",
        "timestep.lifecycle",
        "timestep.stream",
        "timestep.result",
        "timestep.tool",
        "timestep.handover",
        "timestep.store",
        "timestep.pglite",
    ),
    ("timestep.cli", "timestep.web", "timestep.worker", "timestep"),
]



def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


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
    if not base.startswith("timestep"):
        return []
    targets = []
    for alias in node.names:
        candidate = f"{base}.{alias.name}"
        targets.append(candidate if candidate in MODULES else base)
    return targets


def _imports(module: str) -> set[str]:
    path = MODULES[module]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            found.update(_resolve(module, path, node))
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("timestep"))
    found.discard(module)
    return found


def _layer(module: str) -> int:
    best, level = -1, -1
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            matches = module == prefix or module.startswith(prefix + ".")
            if matches and len(prefix) > best:
                best, level = len(prefix), index
    assert level >= 0, f"{module} is in no layer; add it to LAYERS"
    return level


def upward_imports() -> dict[str, list[str]]:
    upward = {}
    for module in MODULES:
        wrong = sorted(t for t in _imports(module) if _layer(t) > _layer(module))
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


def _private_uses(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    own: set[str] = {"self", "cls", "super"}
    uses = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level or (node.module or "").split(".")[0] in ("timestep", "workflows"):
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
        uses = _private_uses(path)
        if uses:
            found[module] = uses
    return found


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


if __name__ == "__main__":
    print(
        json.dumps(
            {
                "upward": upward_imports(),
                "cycles": import_cycles(),
                "private": private_uses_outside_compat(),
            }
        )
    )
