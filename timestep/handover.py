"""Handing a parked run over: its state out as Python or TypeScript RunState JSON, and back in.

An exported state comes from the run's stored snapshot. An imported state becomes a new parked
run; decisions already made in the document are recorded as the run's decisions, and once every
pending call is decided the run continues on its agent's queue like any other.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any, Literal

from . import _engine as engine
from .errors import AgentNotRegisteredError, StateError
from .state import records, storage
from .state.records import Decision, PendingApproval, RunRecord

if TYPE_CHECKING:
    from agents import Agent

# The Agents SDK, DBOS's client and the TypeScript adapter are imported where they are used:
# exporting the Python state of a run without decisions (`timestep state export`) needs none
# of them.


def _agent_for(name: str, app: str | None) -> Agent[Any]:
    if app is not None:
        engine.register_module(app)
    agent = engine.get_agent(name)
    if agent is None:
        raise AgentNotRegisteredError(
            f"agent {name!r} is not defined here; pass --app MODULE naming the module that "
            "defines it"
        )
    return agent


async def export_run_state(
    run_id: str, format: Literal["python", "typescript"] = "python", *, app: str | None = None
) -> str:
    """The stored state of the parked run `run_id` as JSON text in the SDK `format` names.

    Only a run awaiting approval is exported, with the decisions already recorded on it. The
    Python form of a run without decisions needs no agent code; otherwise the agents (`app`)
    are loaded to apply the decisions and resolve names. The TypeScript form fails closed
    (`StateError`) on anything it cannot carry faithfully.
    """
    database = storage.storage_engine()
    record, decided, _ = await asyncio.to_thread(records.get_with_decisions, database, run_id)
    if record.status != "awaiting_approval":
        raise StateError(
            f"run {run_id!r} is {record.status}, not awaiting approval: only a parked run can "
            "be exported for another process to continue"
        )
    stored_state = await asyncio.to_thread(records.load_state, database, run_id)
    if stored_state is None:
        raise StateError(f"run {run_id!r} has no stored state yet (status {record.status})")
    if format == "python" and not decided:
        return json.dumps(stored_state, ensure_ascii=False)
    from agents import RunState

    from .context import already_stored, as_read, declared_for, state_json
    from .state.typescript import to_typescript_json

    if app is None and engine.get_agent(record.agent_name) is None and decided:
        raise AgentNotRegisteredError(
            f"run {run_id!r} has decisions recorded on {', '.join(sorted(decided))}; pass --app "
            f"MODULE naming the module that defines agent {record.agent_name!r} so that the "
            "export carries them"
        )
    agent = _agent_for(record.agent_name, app)
    engine.check_graph(run_id, record.graph, agent)
    # The stored context crosses as it is stored (its secret fields were never written).
    stored = already_stored(declared_for(agent.name))
    state = await RunState.from_json(agent, stored_state, context_deserializer=as_read)
    engine.apply_decisions(state, decided.values())
    if format == "python":
        return json.dumps(state_json(state, stored), ensure_ascii=False)
    return to_typescript_json(state, context_storage=stored)


def _current_agent_name(document: dict[str, Any]) -> str:
    current = document.get("currentAgent") or document.get("current_agent") or {}
    name = current.get("name") if isinstance(current, dict) else None
    if not isinstance(name, str):
        raise StateError("the state names no current agent; pass --agent NAME")
    return name


def _check_pending_call(agent: Agent[Any], fields: PendingApproval) -> None:
    """Refuse, before anything is written, a pending call the run could never execute: a tool
    its agent does not have, or arguments that are not a JSON object (an edited state)."""
    names = {getattr(tool, "name", None) for tool in agent.tools}
    call = f"pending call {fields['call_id']!r}"
    if fields["tool_name"] not in names:
        raise StateError(
            f"{call} asks for tool {fields['tool_name']!r}, which agent {agent.name!r} does not "
            f"have (its tools: {', '.join(sorted(str(n) for n in names)) or 'none'}); "
            "the state does not belong to these agents or was edited"
        )
    arguments = fields.get("arguments")
    try:
        parsed = json.loads(arguments) if isinstance(arguments, str) else arguments
    except json.JSONDecodeError as exc:
        raise StateError(f"{call} has arguments that are not JSON ({exc})") from exc
    if parsed is not None and not isinstance(parsed, dict):
        raise StateError(f"{call} has arguments that are not a JSON object: {arguments!r}")


async def import_run_state(
    text: str, *, app: str | None, agent_name: str | None = None, run_id: str | None = None
) -> RunRecord:
    """Create a parked run from a Python (1.21) or TypeScript (1.22) RunState document."""
    from agents import RunState
    from agents.usage import serialize_usage

    from ._compat import agents as agents_compat
    from .approvals import continue_if_decided
    from .context import already_stored, as_read, declared_for, state_json
    from .state.typescript import (
        PYTHON_SCHEMA_VERSION,
        TYPESCRIPT_SCHEMA_VERSION,
        UnsupportedStateVersionError,
        from_typescript_json,
    )

    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StateError(f"the state file is not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise StateError("the state file does not hold a RunState object")
    version = document.get("$schemaVersion")
    typescript = version == TYPESCRIPT_SCHEMA_VERSION or any(
        key in document for key in ("currentTurn", "currentAgent", "modelResponses")
    )
    if typescript and version != TYPESCRIPT_SCHEMA_VERSION:
        raise UnsupportedStateVersionError("TypeScript", version, TYPESCRIPT_SCHEMA_VERSION)
    agent = _agent_for(agent_name or _current_agent_name(document), app)
    if typescript:
        try:
            # Read as it arrived (minus declared secret fields); the run re-supplies secrets
            # when it goes on.
            state = await from_typescript_json(agent, text, context_deserializer=as_read)
        except StateError as exc:
            if agent_name is not None:
                raise
            raise StateError(
                f"{exc} (loaded with the state's current agent {agent.name!r} as the starting "
                "agent; if the run started with another agent, pass --agent NAME)"
            ) from exc
    else:
        try:
            state = await RunState.from_json(agent, document, context_deserializer=as_read)
        except Exception as exc:
            raise StateError(
                f"the state ($schemaVersion {version!r}; this SDK writes "
                f"{PYTHON_SCHEMA_VERSION!r}, TypeScript {TYPESCRIPT_SCHEMA_VERSION!r}) cannot be "
                f"loaded for agent {agent.name!r}: {exc}"
            ) from exc
    interruptions = state.get_interruptions()
    if not interruptions:
        raise StateError("the state is not paused for approval: there is nothing to continue")
    pending = [engine.approval_fields(item) for item in interruptions]
    for item, fields in zip(interruptions, pending, strict=True):
        _check_pending_call(item.agent, fields)
    graph = engine.describe_graph(agent)
    run_id = engine.run_id_or_new(run_id)
    database = storage.storage_engine()
    await asyncio.to_thread(engine.make_dbos_tables)
    context = agents_compat.state_context(state)
    decided: list[Decision] = []
    if context is not None:
        # Decisions the state already carries (made before it was exported).
        for item, fields in zip(interruptions, pending, strict=True):
            approved = context.get_approval_status(
                fields["tool_name"], fields["call_id"], existing_pending=item
            )
            if approved is None:
                continue
            message = (
                None
                if approved
                else context.get_rejection_message(
                    fields["tool_name"], fields["call_id"], existing_pending=item
                )
            )
            decided.append(
                Decision(
                    fields["call_id"],
                    fields["tool_name"],
                    "approve" if approved else "reject",
                    False,
                    message,
                )
            )
    record = await asyncio.to_thread(
        records.insert_parked,
        database,
        run_id,
        agent.name,
        graph,
        engine.fingerprint(graph),
        state=state_json(state, already_stored(declared_for(agent.name))),
        pending=pending,
        usage=serialize_usage(context.usage) if context else {},
        decided=decided,
        app_module=app or engine.app_module_of(agent.name),
    )
    await continue_if_decided(record)
    return await asyncio.to_thread(records.get, database, run_id)
