"""Inspecting runs: `get_run`, `list_runs`, `recorded_steps` and `conversation`.

These read the database only: they neither launch DBOS nor take part in recovery, so any
process (a CLI, an HTTP handler) can call them without the agents' code. For a running run they
also say which process runs it and whether that process is alive.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any, Literal, Required, TypedDict

from . import _engine as engine
from .errors import InvalidArgumentError
from .state import storage
from .state.run_record import STATUSES, Decision, RunOwner, RunRecord

# `records` (SQLAlchemy) is imported where the storage engine is used: on a SQLite file, the
# CLI's read-only commands read through `storage.sqlite_reads()` without it.


def _get(run_id: str) -> RunRecord:
    reads = storage.sqlite_reads()
    if reads is not None:
        return reads.get(run_id)
    from .state import records

    return records.get(storage.storage_engine(), run_id)


def _decisions_for(run_id: str, segment: int) -> dict[str, Decision]:
    reads = storage.sqlite_reads()
    if reads is not None:
        return reads.decisions_for(run_id, segment)
    from .state import records

    return records.decisions_for(storage.storage_engine(), run_id, segment)


def _list(status: str | None, limit: int, agent: str | None, offset: int) -> list[RunRecord]:
    reads = storage.sqlite_reads()
    if reads is not None:
        return reads.list_records(status, limit, agent, offset)
    from .state import records

    return records.list_records(storage.storage_engine(), status, limit, agent=agent, offset=offset)


async def get_run(run_id: str) -> RunRecord:
    """The stored record of `run_id`; raises `RunNotFoundError` when there is none."""
    record = await asyncio.to_thread(_get, run_id)
    return (await asyncio.to_thread(_described, [record]))[0]


async def list_runs(
    status: str | None = None, limit: int = 50, *, agent: str | None = None, offset: int = 0
) -> list[RunRecord]:
    """The most recently updated runs first, optionally only those with `status` or starting
    agent `agent`; `offset` skips that many (paging)."""
    if status is not None and status not in STATUSES:
        raise InvalidArgumentError(
            f"unknown run status {status!r}; use one of {', '.join(STATUSES)}"
        )
    if limit < 1:
        raise InvalidArgumentError(f"limit must be at least 1, got {limit}")
    if offset < 0:
        raise InvalidArgumentError(f"offset must be at least 0, got {offset}")
    found = await asyncio.to_thread(_list, status, limit, agent, offset)
    return await asyncio.to_thread(_described, found)


def _described(found: list[RunRecord]) -> list[RunRecord]:
    return _with_owners([_with_decisions(record) for record in found])


def _with_decisions(record: RunRecord) -> RunRecord:
    """Each listed call with its decision (`decision`: approve, reject or None), so that a run
    moved on by decisions no longer looks as if it waited for them."""
    if not record.pending_approvals:
        return record
    segment = record.segment if record.status == "awaiting_approval" else record.segment - 1
    decided = _decisions_for(record.run_id, segment)
    calls = []
    for call in record.pending_approvals:
        decision = decided.get(call["call_id"])
        shown = call.copy()
        shown["decision"] = None if decision is None else decision.decision
        shown["message"] = None if decision is None else decision.message
        calls.append(shown)
    return dataclasses.replace(record, pending_approvals=calls)


def _with_owners(found: list[RunRecord]) -> list[RunRecord]:
    """Add who runs each running run, and what happens next when its owner is gone."""
    running = {
        engine.segment_workflow_id(r.run_id, r.segment): r for r in found if r.status == "running"
    }
    if not running:
        return found
    from .state import owners

    # DBOS's client: imported only when a run is running
    statuses = engine.segment_statuses(list(running))
    executors = [s.executor_id for s in statuses.values() if s.executor_id]
    known = owners.get_many(storage.storage_engine(), executors)
    live_agents = {
        name
        for o in owners.unexpired(storage.storage_engine(), time.time())
        if engine.judge_liveness(o).alive
        for name in o.agents
    }
    described: dict[str, RunRecord] = {}
    for workflow_id, record in running.items():
        status = statuses.get(workflow_id)
        owner, note = None, None
        if status is None or status.status in ("ENQUEUED", "DELAYED"):
            queue = status.queue_name if status is not None else None
            note = _queued_note(record, queue, live_agents)
        elif status.status == "PENDING" and status.executor_id:
            holder = known.get(status.executor_id)
            state = engine.judge_liveness(holder) if holder is not None else None
            owner = RunOwner(
                executor_id=status.executor_id,
                alive=state.alive if state is not None else False,
                reason=state.reason if state is not None else "never registered a heartbeat",
                host=holder.host if holder is not None else None,
                pid=holder.pid if holder is not None else None,
            )
            if not owner.alive:
                note = (
                    f"its owner {owner.executor_id} is dead ({owner.reason}); a live process "
                    f"with agent {record.agent_name!r} takes it over: a worker "
                    f"(`timestep worker --app {_module(record)}`) or "
                    f"`run_agent(..., run_id={record.run_id!r})`"
                )
        described[record.run_id] = dataclasses.replace(record, owner=owner, note=note)
    return [described.get(r.run_id, r) for r in found]


def _module(record: RunRecord) -> str:
    """The app module to name in a hint: the one the run's agent came from, when known."""
    return record.app_module or "MODULE"


def _queued_note(record: RunRecord, queue: str | None, live_agents: set[str]) -> str:
    if queue is not None and queue.startswith(engine.PROCESS_QUEUE_PREFIX):
        return "queued for the process that took it over"
    versioned = queue is not None and queue.startswith(engine.VERSION_QUEUE_PREFIX)
    if queue is None or versioned or queue == engine.queue_name(record.agent_name):
        # A version's queue is read only by processes with that version; heartbeats list
        # `name@version` for each agent a process has (`registry.advertised_names`).
        at = f" at version {record.version}" if versioned else ""
        label = f" ({record.version_label})" if versioned and record.version_label else ""
        wanted = f"{record.agent_name}@{record.version}" if versioned else record.agent_name
        if wanted in live_agents:
            return f"queued for a process with agent {record.agent_name!r}{at}{label}"
        if versioned and record.agent_name in live_agents:
            return (
                f"queued for a process with agent {record.agent_name!r}{at}{label}; the live "
                "processes with the agent have another version: `timestep runs upgrade` moves "
                "it to their code if compatible, or start a worker with this version"
            )
        return (
            f"queued for a process with agent {record.agent_name!r}{at}{label}, and no live "
            f"process has it: start a worker (`timestep worker --app {_module(record)}`)"
        )
    return f"queued on {queue}"


class RecordedStep(TypedDict):
    """One recorded step of a run (JSON)."""

    segment: int
    """The segment (1 for the run's start, one more after each stop for approval)."""
    step: int
    """DBOS's step id within the segment's workflow."""
    kind: Literal["model", "tool", "dbos"]
    """A model call, a tool call, or one of DBOS's own operations."""
    name: str
    """What the step did: the tools a model call asked for (`-> a, b`), the tool's name, or
    DBOS's operation name."""
    function_name: str
    """The step's recorded function name."""
    started_at: float | None
    """Unix time the step started."""
    duration_s: float | None
    """Seconds it took; None while it runs."""
    status: Literal["done", "running", "error"]
    error: str | None
    """`Type: message` of the error it recorded."""


class ConversationEntry(TypedDict, total=False):
    """One entry of a run's conversation (JSON); which keys it has depends on `kind`."""

    kind: Required[str]
    """`message`, `tool_call`, `tool_output`, `approval_request`, `handoff`, or the SDK's item
    type for anything else."""
    role: str
    """A message's role (`user`, `assistant`, `system`)."""
    text: str
    """A message's text."""
    tool: str | None
    """The tool a call or an approval request is for."""
    arguments: str | None
    """The call's arguments, as the model wrote them (JSON text)."""
    call_id: str | None
    output: Any
    """A tool's output."""
    detail: Any
    """A handoff's tool name or output."""


def _step(segment: int, info: Any) -> RecordedStep:
    name = str(info["function_name"])
    output = info.get("output")
    kind: Literal["model", "tool", "dbos"]
    if name == engine.MODEL_STEP_NAME:
        kind, label = "model", "model call"
        items = output.get("output") if isinstance(output, dict) else None
        if isinstance(items, list):
            calls = [str(i["name"]) for i in items if isinstance(i, dict) and i.get("name")]
            label = "-> " + ", ".join(calls) if calls else "-> message"
    elif name == engine.TOOL_STEP_NAME:
        kind = "tool"
        label = str(output.get("tool")) if isinstance(output, dict) else "tool call"
    else:
        kind, label = "dbos", name
    started, completed = info.get("started_at_epoch_ms"), info.get("completed_at_epoch_ms")
    error = info.get("error")
    return {
        "segment": segment,
        "step": info["function_id"],
        "kind": kind,
        "name": label,
        "function_name": name,
        "started_at": None if started is None else started / 1000,
        "duration_s": None
        if started is None or completed is None
        else (completed - started) / 1000,
        "status": "error" if error is not None else ("done" if completed else "running"),
        "error": None if error is None else f"{type(error).__name__}: {error}",
    }


async def recorded_steps(run_id: str, include_dbos: bool = False) -> list[RecordedStep]:
    """The model and tool calls run `run_id` recorded, across its segments, in order (also
    DBOS's own steps with `include_dbos`). Raises `RunNotFoundError` for an unknown run."""
    record = await get_run(run_id)
    steps: list[RecordedStep] = []
    for segment in range(1, record.segment + 1):
        infos = await engine.segment_steps(record.run_id, segment, load_output=True)
        steps.extend(_step(segment, info) for info in infos)
    if not include_dbos:
        steps = [s for s in steps if s["kind"] != "dbos"]
    return steps


async def conversation(run_id: str) -> list[ConversationEntry]:
    """The run's conversation as of its last stored state (when it last stopped for approval
    or finished; a first segment still running has none yet), oldest first.

    Entries (`ConversationEntry`) have a `kind`: `message` (`role`, `text`), `tool_call`
    (`tool`, `arguments`, `call_id`), `tool_output` (`call_id`, `output`), `approval_request`
    (`tool`, `arguments`, `call_id`), `handoff` (`detail`), or the SDK's item type for anything
    else.
    The run's context is never part of it. Raises `RunNotFoundError` for an unknown run.
    """
    from .state import records

    database = storage.storage_engine()
    await asyncio.to_thread(records.get, database, run_id)  # RunNotFoundError
    state = await asyncio.to_thread(records.load_state, database, run_id)
    if not state:
        return []
    original = state.get("original_input")
    entries: list[ConversationEntry] = []
    if isinstance(original, str):
        entries.append({"kind": "message", "role": "user", "text": original})
    elif isinstance(original, list):
        entries.extend(_entry(item) for item in original if isinstance(item, dict))
    for item in state.get("generated_items") or []:
        if isinstance(item, dict):
            raw = item.get("raw_item")
            entries.append(_entry(raw if isinstance(raw, dict) else {}, item.get("type")))
    return entries


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(part.get("text") or part.get("refusal") or "")
            for part in content
            if isinstance(part, dict)
        )
    return ""


def _entry(raw: dict[str, Any], item_type: str | None = None) -> ConversationEntry:
    """One conversation entry from an SDK item (a run item's raw item, or an input item)."""
    raw_type = raw.get("type")
    if item_type == "tool_approval_item" or raw_type == "function_call":
        return {
            "kind": "approval_request" if item_type == "tool_approval_item" else "tool_call",
            "tool": raw.get("name"),
            "arguments": raw.get("arguments"),
            "call_id": raw.get("call_id"),
        }
    if raw_type == "function_call_output":
        return {"kind": "tool_output", "call_id": raw.get("call_id"), "output": raw.get("output")}
    if item_type in ("handoff_call_item", "handoff_output_item"):
        return {"kind": "handoff", "detail": raw.get("name") or raw.get("output")}
    if "role" in raw:
        return {"kind": "message", "role": str(raw["role"]), "text": _text(raw.get("content"))}
    return {"kind": item_type or str(raw_type)}
