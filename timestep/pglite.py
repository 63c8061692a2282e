"""`timestep import-pglite`: bring the states saved by timestep 2026.0.x over as parked runs.

The original stored `RunStateStore` states in PGLite (PostgreSQL compiled to WebAssembly) under
the platform config directory (`~/.config/timestep/pglite/db_default`, `db_<session or run id>`),
in a `run_states` table of camelCase RunState documents. PGLite is opened from Node.js only,
and a pglite release opens only data directories of its own PostgreSQL major version, so each
database's `PG_VERSION` picks the release that reads it (`pglite_node/postgresNN/`, installed
with `npm ci` on first use) and one Node process (`pglite_node/read_store.mjs`) reads every
database, each from a copy. The original Python package's documents are brought to today's
item shapes (`state.typescript._original`), a second Node process (`upgrade_states.mjs`, the
real `@openai/agents`) brings each to the schema the SDK writes today with the SDK's own
migration, and Python converts each with the TypeScript adapter (`from_typescript_json`) and
imports it as a parked run under the row's `run_id` (the original's run id or session id).

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
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs
from agents import Agent, FunctionTool

from .errors import PgliteImportError, PgliteStoreNotFoundError, TimestepError

NODE_PROJECT = Path(__file__).resolve().parent / "state" / "pglite_node"
_NODE_TIMEOUT_SECONDS = 600
_PGLITE = ("@electric-sql", "pglite")
_AGENTS = ("@openai", "agents")


@dataclass
class SkippedState:
    """A saved state (or, with run id "-", a whole database) that was not imported, and why."""

    database: str
    run_id: str
    reason: str


@dataclass
class StoreDatabase:
    """One database of the store: the PostgreSQL version that wrote it (its `PG_VERSION`) and
    the `@electric-sql/pglite` release it was read with (None when no known release opens it)."""

    path: str
    postgres: int | None
    pglite: str | None


@dataclass
class PgliteImportReport:
    """What `import_pglite` found and did."""

    directory: str
    databases: list[StoreDatabase]
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


def pglite_releases() -> dict[int, str]:
    """PostgreSQL major version -> the `@electric-sql/pglite` release that opens its stores.

    A pglite release opens only data directories of its own PostgreSQL major version (0.3.x is
    PostgreSQL 17, 0.5.x 18, 0.6.x 19: a newer one fails with "PGlite failed to initialize
    properly"). Each is pinned with its lock file in `pglite_node/postgresNN/`.
    """
    releases = {}
    for folder in sorted(NODE_PROJECT.glob("postgres[0-9]*")):
        pinned = json.loads((folder / "package.json").read_text())["dependencies"]
        releases[int(folder.name.removeprefix("postgres"))] = pinned["@electric-sql/pglite"]
    return releases


def postgres_version(database: Path) -> int | None:
    """The PostgreSQL major version that wrote `database` (its `PG_VERSION` file)."""
    text = (database / "PG_VERSION").read_text(errors="replace").strip()
    return int(text) if text.isdigit() else None


def _node_and_npm() -> tuple[str, str]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise PgliteImportError(
            "reading a PGLite store needs Node.js (>= 20) and npm on PATH; install them and "
            "run the command again"
        )
    return node, npm


def _installed(source: Path, package: tuple[str, str], files: tuple[str, ...]) -> Path:
    """A folder with `source`'s pinned packages in node_modules: `source` itself when they are
    installed there (a source checkout after `npm ci`), else a copy in the user cache directory,
    named by the lock file's digest and installed with `npm ci` on first use. The copy is
    installed aside and renamed into place, so processes installing at once never see a half
    installed folder."""
    if (source.joinpath("node_modules", *package)).is_dir():
        return source
    _, npm = _node_and_npm()
    lock = (source / "package-lock.json").read_bytes()
    cache = Path(platformdirs.user_cache_dir("timestep")) / (
        f"pglite-import-{source.name}-" + hashlib.sha256(lock).hexdigest()[:12]
    )
    if not (cache.joinpath("node_modules", *package)).is_dir():
        cache.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(
            dir=cache.parent, prefix=cache.name + ".", ignore_cleanup_errors=True
        ) as aside:
            for name in ("package.json", "package-lock.json"):
                shutil.copyfile(source / name, Path(aside) / name)
            installed = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund"],
                cwd=aside,
                capture_output=True,
                text=True,
                timeout=_NODE_TIMEOUT_SECONDS,
                check=False,
            )
            if installed.returncode != 0:
                raise PgliteImportError(
                    f"`npm ci` for {'/'.join(package)} failed in {aside}: "
                    f"{installed.stderr.strip()[-800:]}"
                )
            try:
                Path(aside).rename(cache)
            except OSError:  # another process installed it first
                if not (cache.joinpath("node_modules", *package)).is_dir():
                    raise
    for name in files:
        shutil.copyfile(source / name, cache / name)
    return cache


def node_project() -> tuple[str, Path]:
    """Node.js and the folder where `upgrade_states.mjs` finds @openai/agents."""
    node, _ = _node_and_npm()
    return node, _installed(NODE_PROJECT, _AGENTS, ("upgrade_states.mjs",))


def pglite_module(postgres: int) -> Path:
    """The entry point of the pglite release that opens PostgreSQL `postgres` stores."""
    project = _installed(NODE_PROJECT / f"postgres{postgres}", _PGLITE, ())
    return project.joinpath("node_modules", *_PGLITE, "dist", "index.js")


def node_graph(start: Agent[Any]) -> dict[str, Any]:
    """The agent graph as upgrade_states.mjs rebuilds it (names, function tools, handoffs)."""
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


def _run_node(script: str, project: Path, request: dict[str, Any], what: str) -> dict[str, Any]:
    node, _ = _node_and_npm()
    try:
        completed = subprocess.run(
            [node, script],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            cwd=project,
            timeout=_NODE_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise PgliteImportError(f"{what} took over {exc.timeout} s") from exc
    if completed.returncode != 0:
        raise PgliteImportError(
            f"{what} failed ({completed.returncode}): {completed.stderr.strip()[-800:]}"
        )
    answer: dict[str, Any] = json.loads(completed.stdout)
    return answer


def read_databases(databases: list[tuple[Path, Path]]) -> list[dict[str, Any]]:
    """Every row of each (database, pglite entry point), read by one Node process."""
    request = {"databases": [{"path": str(db), "pglite": str(mod)} for db, mod in databases]}
    answer = _run_node("read_store.mjs", NODE_PROJECT, request, "reading the PGLite store")
    read: list[dict[str, Any]] = answer["databases"]
    return read


def upgrade_documents(start: Agent[Any], documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each document loaded by @openai/agents and written again at today's schema (the SDK's
    own migration): `{"upgraded": text}` or `{"error": why}`, in order."""
    if not documents:
        return []
    _, project = node_project()
    request = {"graph": node_graph(start), "documents": documents}
    answer = _run_node("upgrade_states.mjs", project, request, "loading the states in Node")
    states: list[dict[str, Any]] = answer["states"]
    return states


def _opened(
    root: Path, databases: list[Path], aside: Path
) -> tuple[list[StoreDatabase], list[SkippedState], list[tuple[Path, Path]]]:
    """Which pglite release reads each database; each readable one is copied into `aside` and
    read there, so that opening it (PostgreSQL writes on start and stop) leaves the store as
    it was."""
    releases = pglite_releases()
    known = ", ".join(f"PostgreSQL {pg} (@electric-sql/pglite {v})" for pg, v in releases.items())
    found: list[StoreDatabase] = []
    skipped: list[SkippedState] = []
    readable: list[tuple[Path, Path]] = []
    for index, database in enumerate(databases):
        postgres = postgres_version(database)
        if postgres not in releases:
            found.append(StoreDatabase(str(database), postgres, None))
            skipped.append(
                SkippedState(
                    str(database),
                    "-",
                    f"written by PostgreSQL {postgres} (its PG_VERSION), which no pglite release "
                    f"known to this Timestep opens; it reads {known}",
                )
            )
            continue
        found.append(StoreDatabase(str(database), postgres, releases[postgres]))
        copy = aside / str(index)
        shutil.copytree(database, copy, ignore=shutil.ignore_patterns("postmaster.pid"))
        readable.append((copy, pglite_module(postgres)))
    if not readable:
        reasons = "; ".join(f"{s.database}: {s.reason}" for s in skipped)
        raise PgliteImportError(f"no database of the store at {root} can be opened: {reasons}")
    return found, skipped, readable


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
    from .state.typescript._original import original_document

    root = Path(directory).expanduser() if directory is not None else default_directory()
    databases = find_databases(root)
    start = _starting_agent(app, agent_name)
    with tempfile.TemporaryDirectory(prefix="timestep-pglite-") as aside:
        found, skipped, readable = await asyncio.to_thread(_opened, root, databases, Path(aside))
        read = await asyncio.to_thread(read_databases, readable)
    report = PgliteImportReport(str(root), found, skipped=skipped)
    rows: list[tuple[StoreDatabase, dict[str, Any]]] = []
    opened = [db for db in found if db.pglite is not None]
    for database, answer in zip(opened, read, strict=True):
        if not answer["ok"]:
            why = f"{answer['error']} (PostgreSQL {database.postgres}, pglite {database.pglite})"
            report.skipped.append(SkippedState(database.path, "-", why))
            continue
        for row in answer["rows"]:
            if row["is_active"]:
                rows.append((database, row))
            else:
                report.cleared += 1
    documents = [original_document(row["state_data"]).document for _, row in rows]
    upgraded = await asyncio.to_thread(upgrade_documents, start, documents)
    engine = storage_engine()
    convertible: list[tuple[str, str]] = []
    for (database, row), state in zip(rows, upgraded, strict=True):
        reason = await _reason_not_convertible(
            row, state, start, convertible, engine, run_id_or_new, find, from_typescript_json
        )
        if reason is not None:
            report.skipped.append(SkippedState(database.path, row["run_id"], reason))
        else:
            convertible.append((row["run_id"], state["upgraded"]))
    for run_id, text in convertible:
        if not dry_run:
            await import_run_state(text, app=None, agent_name=start.name, run_id=run_id)
        report.imported.append(run_id)
    return report


async def _reason_not_convertible(
    row: dict[str, Any],
    state_read: dict[str, Any],
    start: Agent[Any],
    convertible: list[tuple[str, str]],
    engine: Any,
    run_id_or_new: Any,
    find: Any,
    from_typescript_json: Any,
) -> str | None:
    run_id = row["run_id"]
    if state_read.get("error"):
        detail = " ".join(state_read["error"].split())
        version = (
            row["state_data"].get("$schemaVersion") if isinstance(row["state_data"], dict) else None
        )
        return (
            f"@openai/agents cannot load the state (schema {version!r}): "
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
        state = await from_typescript_json(start, state_read["upgraded"])
    except TimestepError as exc:
        return str(exc)
    if not state.get_interruptions():
        return f"the state ({row['state_type']}) is not paused for approval: nothing to continue"
    return None
