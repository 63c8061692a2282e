"""The DBOS workflow that runs one segment of a run.

A segment runs the SDK `Runner` until the run finishes or stops for approval. Its input is JSON
(agent name, input items or a saved state, options); what cannot be stored (the agent itself, a
custom run config, hooks, a non-JSON context, a session object) is looked up in this process:
agents in the registry, the rest among the objects the caller attached to the run. A recovered
segment whose agent or attachments are missing here waits for them, logging why, and stays
PENDING in the database: it is never failed for it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from agents import (
    Agent,
    RunConfig,
    RunHooks,
    Runner,
    RunResult,
    RunResultStreaming,
    RunState,
    ToolApprovalItem,
)
from agents.memory import Session, SQLiteSession
from agents.models.interface import ModelProvider
from agents.usage import serialize_usage
from dbos import DBOS, WorkflowSerializationFormat
from pydantic_core import to_jsonable_python

from .._compat import agents as agents_compat
from .._compat import dbos as dbos_compat
from ..context import ContextStorage, declared_for, state_json, stored_context
from ..errors import AgentMismatchError, TimestepError, wrapped
from ..state import records
from ..state.retry import until_reachable
from . import decisions, registry, requests
from .durable import ReplaySafeSession, durable_agent, durable_run_config, sequential_tools
from .events import DurableEventQueue, StreamWriter, set_writer
from .guardrails import describe_tripwire
from .hooks import any_agent_hooks, live_only_run_hooks, recorded_step_ids
from .naming import (
    DECIDED_TOPIC,
    SEGMENT_WORKFLOW,
    parse_segment_workflow_id,
    segment_workflow_id,
)
from .requests import SegmentRequest
from .segment import Segment, enter_segment, reset_segment
from .storage import storage_engine

logger = logging.getLogger("timestep")

WAIT_POLL_SECONDS = 0.5


@dataclass
class Attachments:
    """Objects a caller hands to a segment that cannot be stored in the database."""

    session: Session | None = None
    context: Any = None
    has_context: bool = False
    run_config: RunConfig | None = None
    hooks: RunHooks[Any] | None = None
    agent: Agent[Any] | None = None
    """The starting agent, already checked against the run's recorded graph."""


@dataclass(frozen=True)
class LiveStream:
    """A streamed segment running in this process, and the event loop it runs on."""

    result: RunResultStreaming
    """The SDK's streaming result of the segment."""

    loop: asyncio.AbstractEventLoop
    """The loop of its run: the caller's, or DBOS's own for a segment it dequeued (a run
    taken over from a dead process)."""


@dataclass
class _Process:
    attachments: dict[str, Attachments] = field(default_factory=dict)
    results: dict[str, RunResult | RunResultStreaming] = field(default_factory=dict)
    streams: dict[str, LiveStream] = field(default_factory=dict)
    stream_waiters: dict[str, asyncio.Future[None]] = field(default_factory=dict)
    errors: dict[str, BaseException] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


# Segments may run on DBOS's own event loop thread (recovery) or on the caller's loop.
_process = _Process()


def attach(workflow_id: str, attachments: Attachments) -> None:
    with _process.lock:
        _process.attachments[workflow_id] = attachments


def take_live_result(workflow_id: str) -> RunResult | RunResultStreaming | None:
    with _process.lock:
        return _process.results.pop(workflow_id, None)


def take_live_error(workflow_id: str) -> BaseException | None:
    with _process.lock:
        return _process.errors.pop(workflow_id, None)


def expect_live_stream(workflow_id: str) -> asyncio.Future[None]:
    """A future set when a streamed segment of `workflow_id` starts in this process."""
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    with _process.lock:
        _process.stream_waiters[workflow_id] = future
    return future


def take_live_stream(workflow_id: str) -> LiveStream | None:
    with _process.lock:
        _process.stream_waiters.pop(workflow_id, None)
        return _process.streams.pop(workflow_id, None)


def _publish_stream(workflow_id: str, result: RunResultStreaming) -> None:
    with _process.lock:
        _process.streams[workflow_id] = LiveStream(result, asyncio.get_running_loop())
        waiter = _process.stream_waiters.pop(workflow_id, None)
    if waiter is not None:

        def wake() -> None:
            if not waiter.done():
                waiter.set_result(None)

        if waiter.get_loop() is asyncio.get_running_loop():
            wake()
        else:  # a recovered segment runs on DBOS's loop, its waiter on the caller's
            waiter.get_loop().call_soon_threadsafe(wake)


async def _run_streamed(
    workflow_id: str,
    agent: Agent[Any],
    run_input: Any,
    kwargs: dict[str, Any],
    opening_events: list[dict[str, Any]],
) -> RunResultStreaming:
    """Run the segment streamed: events go to the durable stream and to a live reader here."""
    writer = StreamWriter()
    set_writer(writer)
    for event in opening_events:
        writer.write_from_workflow(event)
    try:
        result = Runner.run_streamed(agent, run_input, **kwargs)
        # The run loop has not started yet: from its first event on, item and agent events are
        # teed to the durable stream.
        agents_compat.replace_event_queue(result, DurableEventQueue(writer))
        _publish_stream(workflow_id, result)
        if result.run_loop_task is not None:
            await asyncio.shield(result.run_loop_task)
        failure = agents_compat.stored_exception(result)
        if failure is not None:
            raise failure
        if result.interruptions:
            writer.write_from_workflow(
                {"type": "timestep.awaiting_approval", "pending": pending_approvals(result)}
            )
    except BaseException:
        writer.abandon()
        raise
    finally:
        set_writer(None)
    await writer.close()
    return result


def default_model_provider() -> ModelProvider:
    from ..models import MultiModelProvider

    return MultiModelProvider()


def session_descriptor(session: Session | None) -> dict[str, Any] | None:
    """How to reopen `session` in another process, when its kind allows it."""
    if isinstance(session, SQLiteSession) and str(session.db_path) != ":memory:":
        return {"kind": "sqlite", "session_id": session.session_id, "db_path": str(session.db_path)}
    return None


def _reopen_session(descriptor: dict[str, Any] | None) -> Session | None:
    if descriptor and descriptor.get("kind") == "sqlite":
        return SQLiteSession(descriptor["session_id"], descriptor["db_path"])
    return None


async def _wait_for_agent(run_id: str, name: str, graph: dict[str, Any]) -> Agent[Any]:
    logged = ""
    while True:
        agent = registry.get_agent(name)
        if agent is not None:
            try:
                registry.check_graph(run_id, graph, agent)
                return agent
            except AgentMismatchError as exc:
                reason = str(exc)
        else:
            reason = (
                f"run {run_id!r} waits for agent {name!r}, which this process has not "
                "registered (timestep.register_agent or `python -m workflows --app MODULE`)"
            )
        if reason != logged:
            logger.warning("timestep: %s; the run stays pending", reason)
            logged = reason
        await asyncio.sleep(WAIT_POLL_SECONDS)


async def _wait_for_attachments(run_id: str, workflow_id: str) -> Attachments:
    logger.warning(
        "timestep: run %r was started with objects that cannot be stored (a run config, hooks, "
        "a session or a non-JSON context); it stays pending until run_agent(..., run_id=%r) "
        "is called again with them",
        run_id,
        run_id,
    )
    while True:
        with _process.lock:
            found = _process.attachments.pop(workflow_id, None)
        if found is not None:
            return found
        await asyncio.sleep(WAIT_POLL_SECONDS)


def approval_fields(item: ToolApprovalItem) -> records.PendingApproval:
    """Call id, tool name, arguments and agent of a pending approval, as JSON."""
    raw = item.raw_item

    def get(key: str) -> Any:
        return raw.get(key) if isinstance(raw, dict) else getattr(raw, key, None)

    return records.PendingApproval(
        call_id=get("call_id") or get("id"),
        tool_name=item.tool_name or get("name"),
        arguments=get("arguments"),
        agent=item.agent.name,
    )


def pending_approvals(result: RunResult | RunResultStreaming) -> list[records.PendingApproval]:
    return [approval_fields(item) for item in result.interruptions]


DEADLINE_MESSAGE = "The approval deadline passed before anyone decided on this tool call."


@DBOS.step(name="timestep.load_continuation")
async def _load_continuation(run_id: str, previous_segment: int) -> dict[str, Any]:
    """The parked state and the decisions on it, recorded so that a replay sees the same."""

    def load() -> dict[str, Any]:
        engine = storage_engine()
        records.advance_segment(engine, run_id, previous_segment)
        state = records.load_state(engine, run_id)
        record = records.get(engine, run_id)
        decided = records.decisions_for(engine, run_id, previous_segment)
        for pending in record.pending_approvals:
            if pending["call_id"] not in decided:
                # Only a deadline starts a segment before every call is decided.
                decided[pending["call_id"]] = records.record_decision(
                    engine,
                    run_id,
                    previous_segment,
                    records.Decision(
                        pending["call_id"], pending["tool_name"], "reject", False, DEADLINE_MESSAGE
                    ),
                )
        return {
            "state": state,
            "pending": record.pending_approvals,
            "decisions": [dataclasses.asdict(d) for d in decided.values()],
        }

    return await asyncio.to_thread(until_reachable, load)


@DBOS.step(name="timestep.deadline_wait")
async def _deadline_wait(run_id: str, parked_segment: int, deadline_at: float) -> float:
    """Seconds a deadline segment still has to wait for decisions: 0 when every call is
    decided or the deadline has passed. A step, so a replay takes the same path."""

    def remaining() -> float:
        engine = storage_engine()
        record = records.get(engine, run_id)
        decided = records.decisions_for(engine, run_id, parked_segment)
        if all(p["call_id"] in decided for p in record.pending_approvals):
            return 0.0
        return max(0.0, deadline_at - time.time())

    return await asyncio.to_thread(until_reachable, remaining)


async def _record_outcome(run_id: str, segment: int, values: dict[str, Any]) -> None:
    # Not a step: the write is idempotent, and guarded by the segment so that a replay of a
    # segment the run has moved past changes nothing.
    engine = storage_engine()

    def write() -> None:
        records.update(engine, run_id, segment, **values)

    await asyncio.to_thread(until_reachable, write)


def _outcome(
    result: RunResult | RunResultStreaming, segment: Segment, storage: ContextStorage | None
) -> dict[str, Any]:
    pending = pending_approvals(result)
    return {
        "segment_usage": _segment_usage(segment),
        "status": "awaiting_approval" if pending else "completed",
        "pending": pending,
        "final_output": None if pending else to_jsonable_python(result.final_output),
        "usage": serialize_usage(result.context_wrapper.usage),
        "state": state_json(result.to_state(), storage),
        "error": None,
    }


def _segment_usage(segment: Segment) -> dict[str, records.ModelUsage]:
    return dict(segment.usage_by_model)


async def _schedule_deadline(
    run_id: str, segment: int, request: SegmentRequest, timeout: float
) -> None:
    """Enqueue the next segment delayed by `timeout`: a durable timer in the database.

    Deciding every call earlier starts the same segment (same workflow id) at once; when the
    delay runs out first, the segment rejects the undecided calls with `DEADLINE_MESSAGE`.
    """
    from .queues import enqueue_segment

    await enqueue_segment(
        segment_workflow_id(run_id, segment + 1),
        request["agent"],
        requests.continuation(
            run_id,
            segment + 1,
            request["agent"],
            approval_timeout=timeout,
            stream=request.get("stream", False),
            deadline_at=time.time() + timeout,
        ),
        delay_seconds=timeout,
    )


@DBOS.workflow(name=SEGMENT_WORKFLOW, serialization_type=WorkflowSerializationFormat.PORTABLE)
async def run_segment(request: SegmentRequest) -> dict[str, Any]:
    """Run one segment of a run; returns {"status": ..., "segment": ...}."""
    workflow_id = DBOS.workflow_id
    assert workflow_id is not None
    # The workflow id, not the input, says which run and segment this is: a fork
    # (`timestep.fork`) replays another run's segment, input included, under its own id.
    run_id, segment_number = parse_segment_workflow_id(workflow_id)
    with _process.lock:
        attached = _process.attachments.pop(workflow_id, None)
    overrides: records.RunOverrides | None = None
    if attached is not None and attached.agent is not None:
        agent = attached.agent  # the caller checked it against the run's graph just now
    else:
        engine = storage_engine()
        record = await asyncio.to_thread(until_reachable, records.get, engine, run_id)
        agent = await _wait_for_agent(run_id, request["agent"], record.graph)
        overrides = record.overrides
    if overrides is not None:
        # What the run was started (or forked) with, not what the code here says.
        changes: dict[str, Any] = {}
        if overrides.agent is not None and agent.model != overrides.agent:
            changes["model"] = overrides.agent
        if overrides.instructions is not None:
            changes["instructions"] = overrides.instructions
        if changes:
            agent = agent.clone(**changes)
    if attached is None and request.get("needs_attachments"):
        attached = await _wait_for_attachments(run_id, workflow_id)
    attached = attached or Attachments()
    session = attached.session or _reopen_session(request.get("session"))
    context = attached.context if attached.has_context else request.get("context")
    storage = declared_for(request["agent"])
    written_context = request.get("context")  # the context as stored, for `storage` to restore

    starting_agent = durable_agent(agent)
    base_config = attached.run_config
    if base_config is None and overrides is not None and overrides.run_config is not None:
        base_config = RunConfig(model=overrides.run_config, model_provider=default_model_provider())
    run_config = durable_run_config(
        base_config, default_model_provider(), sequential_tools=sequential_tools(starting_agent)
    )
    segment = Segment(run_id=run_id)
    if attached.hooks is not None or any_agent_hooks(agent):
        segment.recorded_steps = await recorded_step_ids(workflow_id)
    token = enter_segment(segment)
    try:
        run_input: Any = request.get("input")
        opening_events: list[dict[str, Any]] = []
        if request.get("continuation"):
            if request.get("deadline_at") is not None:
                # Normally the delay has run out or every call was decided; a deadline segment
                # resumed early (`retry` of a cancelled parked run) waits out the rest here.
                wait = await _deadline_wait(run_id, segment_number - 1, request["deadline_at"])
                if wait > 0:
                    await DBOS.recv_async(DECIDED_TOPIC, timeout_seconds=wait)
            loaded = await _load_continuation(run_id, segment_number - 1)
            opening_events.append({"type": "timestep.decisions", "decisions": loaded["decisions"]})
            run_input = await RunState.from_json(starting_agent, loaded["state"])
            written_context = stored_context(loaded["state"])
            decisions.apply_decisions(run_input, loaded["decisions"])
            segment.reserve_tool_slots([p["call_id"] for p in loaded["pending"]])
        elif request.get("state") is not None:
            run_input = await RunState.from_json(starting_agent, request["state"])
            written_context = stored_context(request["state"])
            segment.reserve_tool_slots([p["call_id"] for p in request.get("pending", [])])
        kwargs: dict[str, Any] = {}
        if request.get("max_turns") is not None:
            kwargs["max_turns"] = request["max_turns"]
        kwargs.update(
            hooks=live_only_run_hooks(attached.hooks),
            run_config=run_config,
            session=ReplaySafeSession(session) if session is not None else None,
        )
        result: RunResult | RunResultStreaming
        try:
            if storage is not None and not attached.has_context:
                # Goes on from its records: the declaration rebuilds the context and supplies
                # the secret fields (ContextSecretMissingError, recorded as the failure, if not).
                context = storage.load(written_context, f"run {run_id!r}")
            kwargs["context"] = context
            if request.get("stream"):
                result = await _run_streamed(
                    workflow_id, starting_agent, run_input, kwargs, opening_events
                )
            else:
                result = await Runner.run(starting_agent, run_input, **kwargs)
            outcome = _outcome(result, segment, storage)
        except Exception as exc:
            cause = wrapped(exc, TimestepError) or exc
            with _process.lock:
                _process.errors[workflow_id] = cause
            failure = describe_tripwire(cause) or f"{type(cause).__name__}: {cause}"
            await _record_outcome(
                run_id,
                segment_number,
                {"status": "failed", "error": failure, "segment_usage": _segment_usage(segment)},
            )
            raise
        except BaseException as exc:
            # DBOS stops an execution whose workflow was cancelled (or taken over) with an error
            # outside `Exception`. A cancelled run then records that its segment has stopped:
            # `retry` waits for that, so the step in flight never runs in two places.
            if dbos_compat.is_stop(exc):
                await asyncio.to_thread(
                    until_reachable,
                    records.note_stopped,
                    storage_engine(),
                    run_id,
                    segment_number,
                )
            raise
    finally:
        reset_segment(token)
    await _record_outcome(run_id, segment_number, outcome)
    timeout = request.get("approval_timeout")
    if outcome["status"] == "awaiting_approval" and timeout is not None:
        await _schedule_deadline(run_id, segment_number, request, timeout)
    with _process.lock:
        _process.results[workflow_id] = result
    return {"status": outcome["status"], "segment": segment_number}
