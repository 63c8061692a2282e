"""`timestep import-pglite`: bring the states saved by timestep 2026.0.x over as parked runs.

The original stored `RunStateStore` states in PGLite (PostgreSQL compiled to WebAssembly) under
the platform config directory (`~/.config/timestep/pglite/default`, `pglite/db_<session_id>`),
in a `run_states` table of camelCase RunState documents. PGLite is opened from Node.js only,
so one Node process (`pglite_node/read_store.mjs`, with `@electric-sql/pglite` and the real
`@openai/agents` from npm) reads every database of the store and brings each active state to
the schema @openai/agents writes today with the SDK's own migration. Python then converts each
with the TypeScript adapter (`from_typescript_json`) and imports it as a parked run under the
row's `run_id` (the original's run id or session id).

All states are converted before anything is written. A state that cannot be converted (the
SDK refuses it, the adapter cannot carry it faithfully, it is not paused for approval, its run
id is taken or invalid) is listed with the reason and not imported; each imported run is
written whole. Rows the original had cleared (`is_active = false`) are counted, not imported.
The store itself is only read.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs
from agents import Agent, FunctionTool

from .errors import PgliteImportError, PgliteStoreNotFoundError, TimestepError

NODE_PROJECT = Path(__file__).resolve().parent / "state" / "pglite_node"
_PROJECT_FILES = ("package.json", "package-lock.json", "read_store.mjs")
_NODE_TIMEOUT_SECONDS = 600


@dataclass
class SkippedState:
    """A saved state that was not imported, and why."""

    database: str
    run_id: str
    reason: str


@dataclass
class PgliteImportReport:
    """What `import_pglite` found and did."""

    directory: str
    databases: list[str]
    imported: list[str] = field(default_factory=list)
    """Run ids of the parked runs created (or that would be, with `dry_run`)."""
    skipped: list[SkippedState] = field(default_factory=list)
    cleared: int = 0
    """Rows the original had cleared (soft-deleted); never imported."""


def default_directory() -> Path:
    """The original's store: `pglite/` in the platform config directory."""
    return Path(platformdirs.user_config_dir("timestep")) / "pglite"


def find_databases(directory: Path) -> list[Path]:
    """`directory` itself when it is a PGLite database, else its database subdirectories."""
    if not directory.is_dir():
        raise PgliteStoreNotFoundError(
            f"no PGLite store at {directory}; pass the directory of timestep 2026.0.x's store "
            f"(by default {default_directory()})"
        )
    if (directory / "PG_VERSION").is_file():
        return [directory]
    found = sorted(sub for sub in directory.iterdir() if (sub / "PG_VERSION").is_file())
    if not found:
        raise PgliteStoreNotFoundError(
            f"{directory} holds no PGLite database (a directory with PG_VERSION, such as "
            "pglite/default or pglite/db_<session_id>)"
        )
    return found


def node_project() -> tuple[str, Path]:
    """Node.js and a folder where `read_store.mjs` finds its packages (installed with `npm ci`
    into the user cache directory the first time, unless the source tree has them)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise PgliteImportError(
            "reading a PGLite store needs Node.js (>= 20) and npm on PATH; install them and "
            "run the command again"
        )
    if (NODE_PROJECT / "node_modules" / "@electric-sql" / "pglite").is_dir():
        return node, NODE_PROJECT
    lock = (NODE_PROJECT / "package-lock.json").read_bytes()
    cache = Path(platformdirs.user_cache_dir("timestep")) / (
        "pglite-import-" + hashlib.sha256(lock).hexdigest()[:12]
    )
    if not (cache / "node_modules" / "@electric-sql" / "pglite").is_dir():
        cache.mkdir(parents=True, exist_ok=True)
        for name in _PROJECT_FILES:
            shutil.copyfile(NODE_PROJECT / name, cache / name)
        installed = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=cache,
            capture_output=True,
            text=True,
            timeout=_NODE_TIMEOUT_SECONDS,
            check=False,
        )
        if installed.returncode != 0:
            raise PgliteImportError(
                f"`npm ci` for @electric-sql/pglite failed in {cache}: "
                f"{installed.stderr.strip()[-800:]}"
            )
    shutil.copyfile(NODE_PROJECT / "read_store.mjs", cache / "read_store.mjs")
    return node, cache


def node_graph(start: Agent[Any]) -> dict[str, Any]:
    """The agent graph as read_store.mjs rebuilds it (names, function tools, handoffs)."""
    from .state.typescript._graph import AgentGraph

    graph = AgentGraph.of(start)
    agents: dict[str, Any] = {}
    for name, agent in graph.agents.items():
        tools = []
        for tool in agent.tools:
            if not isinstance(tool, FunctionTool):
                raise PgliteImportError(
                    f"agent {name!r} has a {type(tool).__name__}; only function tools and "
                    "handoffs can be imported"
                )
            tools.append(
                {
                    "name": tool.name,
                    "description": tool.description,
                    "parameters": tool.params_json_schema,
                    "strict": tool.strict_json_schema,
                    "needsApproval": tool.needs_approval is not False,
                }
            )
        targets = [target for _, target in graph.handoffs[name].values()]
        agents[name] = {"tools": tools, "handoffs": targets}
    return {"start": start.name, "agents": agents}


def read_store(databases: list[Path], start: Agent[Any]) -> list[dict[str, Any]]:
    """Every row of every database, read by one Node process."""
    node, project = node_project()
    request = {"databases": [str(path) for path in databases], "graph": node_graph(start)}
    try:
        completed = subprocess.run(
            [node, "read_store.mjs"],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            cwd=project,
            timeout=_NODE_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise PgliteImportError(f"reading the PGLite store took over {exc.timeout} s") from exc
    if completed.returncode != 0:
        raise PgliteImportError(
            f"the PGLite reader failed ({completed.returncode}): {completed.stderr.strip()[-800:]}"
        )
    databases_read: list[dict[str, Any]] = json.loads(completed.stdout)["databases"]
    return databases_read


def _starting_agent(app: str, agent_name: str | None) -> Agent[Any]:
    from . import _engine as engine

    defined = engine.register_module(app)
    if agent_name is not None:
        agent = engine.get_agent(agent_name)
        if agent is None:
            raise PgliteImportError(f"agent {agent_name!r} is not defined in {app}")
        return agent
    targets = {
        getattr(handoff, "agent_name", getattr(handoff, "name", None))
        for agent in defined
        for handoff in agent.handoffs
    }
    starts = [agent for agent in defined if agent.name not in targets]
    if len(starts) != 1:
        raise PgliteImportError(
            f"{app} defines several agents that could start a run "
            f"({', '.join(sorted(a.name for a in starts))}); pass --agent NAME"
        )
    return starts[0]


async def import_pglite(
    directory: str | Path | None = None,
    *,
    app: str,
    agent_name: str | None = None,
    dry_run: bool = False,
) -> PgliteImportReport:
    """Import every convertible state of timestep 2026.0.x's PGLite store as a parked run.

    `app` names the module defining the agents (as for `timestep state import`), `agent_name`
    the starting agent when the module has several. With `dry_run` nothing is written and the
    report says what would be imported.
    """
    from ._engine import run_id_or_new
    from .handover import import_run_state
    from .state.records import find
    from .state.storage import storage_engine
    from .state.typescript import from_typescript_json

    root = Path(directory).expanduser() if directory is not None else default_directory()
    databases = find_databases(root)
    start = _starting_agent(app, agent_name)
    read = await asyncio.to_thread(read_store, databases, start)
    report = PgliteImportReport(str(root), [str(path) for path in databases])
    engine = storage_engine()
    convertible: list[tuple[str, str]] = []
    for database in read:
        if not database["ok"]:
            report.skipped.append(SkippedState(database["path"], "-", database["error"]))
            continue
        for row in database["rows"]:
            if not row["is_active"]:
                report.cleared += 1
                continue
            reason = await _reason_not_convertible(
                row, start, convertible, engine, run_id_or_new, find, from_typescript_json
            )
            if reason is not None:
                report.skipped.append(SkippedState(database["path"], row["run_id"], reason))
            else:
                convertible.append((row["run_id"], row["upgraded"]))
    for run_id, text in convertible:
        if not dry_run:
            await import_run_state(text, app=None, agent_name=start.name, run_id=run_id)
        report.imported.append(run_id)
    return report


async def _reason_not_convertible(
    row: dict[str, Any],
    start: Agent[Any],
    convertible: list[tuple[str, str]],
    engine: Any,
    run_id_or_new: Any,
    find: Any,
    from_typescript_json: Any,
) -> str | None:
    run_id = row["run_id"]
    if row["error"]:
        detail = " ".join(row["error"].split())
        return (
            f"@openai/agents cannot load the state (schema {row['document_version']!r}): "
            f"{detail[:300]}{'...' if len(detail) > 300 else ''}"
        )
    try:
        run_id_or_new(run_id)
    except TimestepError as exc:
        return f"its run id cannot be used: {exc}"
    if any(run_id == taken for taken, _ in convertible):
        return "another active state has the same run id in this store"
    if await asyncio.to_thread(find, engine, run_id) is not None:
        return "a run with this id already exists (imported before?)"
    try:
        state = await from_typescript_json(start, row["upgraded"])
    except TimestepError as exc:
        return str(exc)
    if not state.get_interruptions():
        return f"the state ({row['state_type']}) is not paused for approval: nothing to continue"
    return None
