"""Handing a parked run over: its state out as Python or TypeScript RunState JSON, and back in.

An exported state comes from the run's stored snapshot. An imported state becomes a new parked
run; decisions already made in the document are recorded as the run's decisions, and once every
pending call is decided the run continues on its agent's queue like any other.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any, Literal

from agents import Agent, RunState
from agents.usage import serialize_usage

from .._engine import launch, registry
from ..errors import AgentNotRegisteredError, StateError
from . import records
from .records import Decision, RunRecord
from .typescript import TYPESCRIPT_SCHEMA_VERSION, from_typescript_json, to_typescript_json


def _agent_for(name: str, app: str | None) -> Agent[Any]:
    if app is not None:
        registry.register_module(app)
    agent = registry.get_agent(name)
    if agent is None:
        raise AgentNotRegisteredError(
            f"agent {name!r} is not defined here; pass --app MODULE naming the module that "
            "defines it"
        )
    return agent


async def export_run_state(
    run_id: str, format: Literal["python", "typescript"] = "python", *, app: str | None = None
) -> str:
    """The stored state of `run_id` as JSON text in the SDK `format` names.

    The Python form needs no agent code; the TypeScript form needs the agents (`app`) to resolve
    names, and fails closed (`StateError`) on anything it cannot carry faithfully.
    """
    engine = launch.storage_engine()
    record = await asyncio.to_thread(records.get, engine, run_id)
    state_json = await asyncio.to_thread(records.load_state, engine, run_id)
    if state_json is None:
        raise StateError(f"run {run_id!r} has no stored state yet (status {record.status})")
    if format == "python":
        return json.dumps(state_json, ensure_ascii=False)
    agent = _agent_for(record.agent_name, app)
    state = await RunState.from_json(agent, state_json)
    return to_typescript_json(state)


def _current_agent_name(document: dict[str, Any]) -> str:
    current = document.get("currentAgent") or document.get("current_agent") or {}
    name = current.get("name") if isinstance(current, dict) else None
    if not isinstance(name, str):
        raise StateError("the state names no current agent; pass --agent NAME")
    return name


async def import_run_state(
    text: str, *, app: str | None, agent_name: str | None = None, run_id: str | None = None
) -> RunRecord:
    """Create a parked run from a Python (1.21) or TypeScript (1.22) RunState document."""
    from .._engine.workflow import approval_fields
    from ..approvals import continue_if_decided

    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StateError(f"the state file is not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise StateError("the state file does not hold a RunState object")
    agent = _agent_for(agent_name or _current_agent_name(document), app)
    if document.get("$schemaVersion") == TYPESCRIPT_SCHEMA_VERSION:
        state = await from_typescript_json(agent, text)
    else:
        try:
            state = await RunState.from_json(agent, document)
        except Exception as exc:
            raise StateError(f"the state cannot be loaded for agent {agent.name!r}: {exc}") from exc
    interruptions = state.get_interruptions()
    if not interruptions:
        raise StateError("the state is not paused for approval: there is nothing to continue")
    pending = [approval_fields(item) for item in interruptions]
    graph = registry.describe_graph(agent)
    run_id = run_id or str(uuid.uuid4())
    engine = launch.storage_engine()
    context = state._context
    record = await asyncio.to_thread(
        records.insert_parked,
        engine,
        run_id,
        agent.name,
        graph,
        registry.fingerprint(graph),
        state=state.to_json(),
        pending=pending,
        usage=serialize_usage(context.usage) if context else {},
    )
    if context is not None:
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
            decision = Decision(
                fields["call_id"],
                fields["tool_name"],
                "approve" if approved else "reject",
                False,
                message,
            )
            await asyncio.to_thread(records.record_decision, engine, run_id, 1, decision)
    await continue_if_decided(record)
    return await asyncio.to_thread(records.get, engine, run_id)
