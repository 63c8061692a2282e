"""The DBOS workflow that runs one segment of a run.

A segment runs the SDK `Runner` until the run finishes or stops for approval. Its input is JSON
(`requests.SegmentRequest`: agent name, input items or a saved state, options); what cannot be
stored (the agent itself, a custom run config, hooks, a non-JSON context, a session object) is
looked up in this process: agents in the registry, the rest among the objects the caller
attached to the run (`live`). A recovered segment whose agent or attachments are missing here
waits for them, logging why, and stays PENDING in the database: it is never failed for it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

from agents import Agent, RunConfig, Runner, RunResult, RunResultStreaming, RunState
from agents.models.interface import ModelProvider
from agents.usage import serialize_usage
from dbos import DBOS, WorkflowSerializationFormat
from pydantic_core import to_jsonable_python

from .._compat import dbos as dbos_compat
from ..context import ContextStorage, declared_for, state_json, stored_context
from ..errors import AgentMismatchError, TimestepError, wrapped
from ..state import records
from ..state.retry import until_reachable
from ..state.run_record import version_id
from ..state.storage import storage_engine
from . import live, registry, requests
from .continuations import deadline_wait, load_continuation, schedule_deadline
from .decisions import apply_decisions, pending_approvals
from .durable import ReplaySafeSession, durable_agent, durable_run_config, sequential_tools
from .guardrails import describe_tripwire
from .hooks import any_agent_hooks, live_only_run_hooks, recorded_step_ids
from .naming import DECIDED_TOPIC, SEGMENT_WORKFLOW, parse_segment_workflow_id
from .requests import SegmentRequest
from .segment import Segment, enter_segment, reset_segment
from .sessions import reopen_session
from .streamed import run_streamed

logger = logging.getLogger("timestep")


def default_model_provider() -> ModelProvider:
    from ..models import MultiModelProvider

    return MultiModelProvider()


async def _wait_for_agent(run_id: str, name: str, record: records.RunRecord) -> Agent[Any]:
    """The registered agent `name` once its graph is the run's; meanwhile the segment waits
    (PENDING in the database, never failed), logging once what it waits for. A process takes
    such a segment only from the queue of before versions, or when it takes over a dead
    process's work: version queues bring a segment only to processes with its version."""
    logged = ""
    while True:
        agent = registry.get_agent(name)
        if agent is not None:
            try:
                registry.check_graph(run_id, record.graph, agent)
                return agent
            except AgentMismatchError as exc:
                version = version_id(record.fingerprint, record.version_label)
                here = registry.version_of(name)
                reason = (
                    f"run {run_id!r} is on version {version} of agent {name!r} and this process "
                    f"has version {version_id(*here) if here else '?'}: "
                    + "; ".join(exc.differences)
                    + f". It waits for a process with version {record.version} of the agent"
                )
        else:
            reason = (
                f"run {run_id!r} waits for agent {name!r}, which this process has not "
                "registered (timestep.register_agent or `timestep worker --app MODULE`)"
            )
        if reason != logged:
            logger.warning("timestep: %s; the run stays pending", reason)
            logged = reason
        await asyncio.sleep(live.WAIT_POLL_SECONDS)


async def _record_outcome(run_id: str, segment: int, outcome: records.SegmentOutcome) -> None:
    # Not a step: the write is idempotent, and guarded by the segment so that a replay of a
    # segment the run has moved past changes nothing.
    await asyncio.to_thread(
        until_reachable, records.write_outcome, storage_engine(), run_id, segment, outcome
    )


def _outcome(
    result: RunResult | RunResultStreaming, segment: Segment, storage: ContextStorage | None
) -> records.SegmentOutcome:
    pending = pending_approvals(result)
    return records.SegmentOutcome(
        status="awaiting_approval" if pending else "completed",
        segment_usage=dict(segment.usage_by_model),
        pending=pending,
        final_output=None if pending else to_jsonable_python(result.final_output),
        usage=serialize_usage(result.context_wrapper.usage),
        state=state_json(result.to_state(), storage),
    )


async def _starting_agent(
    run_id: str, agent_name: str, attached: live.Attachments | None
) -> tuple[Agent[Any], records.RunOverrides | None]:
    """The segment's starting agent: the caller's (checked just now against the run's graph),
    or the registered one once it matches the graph, with what the run was started (or forked)
    with instead of the code here."""
    if attached is not None and attached.agent is not None:
        return attached.agent, None
    record = await asyncio.to_thread(until_reachable, records.get, storage_engine(), run_id)
    agent = await _wait_for_agent(run_id, agent_name, record)
    overrides = record.overrides
    if overrides is not None:
        changes: dict[str, Any] = {}
        if overrides.agent is not None and agent.model != overrides.agent:
            changes["model"] = overrides.agent
        if overrides.instructions is not None:
            changes["instructions"] = overrides.instructions
        if changes:
            agent = agent.clone(**changes)
    return agent, overrides


@DBOS.workflow(name=SEGMENT_WORKFLOW, serialization_type=WorkflowSerializationFormat.PORTABLE)
async def run_segment(stored_request: SegmentRequest) -> dict[str, Any]:
    """Run one segment of a run; returns {"status": ..., "segment": ...}."""
    workflow_id = DBOS.workflow_id
    assert workflow_id is not None
    # The workflow id, not the input, says which run and segment this is: a fork
    # (`timestep.fork`) replays another run's segment, input included, under its own id.
    run_id, segment_number = parse_segment_workflow_id(workflow_id)
    request = requests.parse(stored_request)
    attached = live.take_attachments(workflow_id)
    agent, overrides = await _starting_agent(run_id, request.agent, attached)
    if attached is None and request.needs_attachments:
        attached = await live.wait_for_attachments(run_id, workflow_id)
    attached = attached or live.Attachments()
    session = attached.session or reopen_session(request.session)
    context = attached.context if attached.has_context else request.context
    storage = declared_for(request.agent)
    written_context = request.context  # the context as stored, for `storage` to restore

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
        run_input: Any
        opening_events: list[dict[str, Any]] = []
        if isinstance(request, requests.ContinuationRequest):
            if request.deadline_at is not None:
                # Normally the delay has run out or every call was decided; a deadline segment
                # resumed early (`retry` of a cancelled parked run) waits out the rest here.
                wait = await deadline_wait(run_id, segment_number - 1, request.deadline_at)
                if wait > 0:
                    await DBOS.recv_async(DECIDED_TOPIC, timeout_seconds=wait)
            loaded = await load_continuation(run_id, segment_number - 1)
            opening_events.append(
                {
                    "type": "timestep.decisions",
                    "decisions": [dataclasses.asdict(d) for d in loaded.decisions],
                }
            )
            run_input = await RunState.from_json(starting_agent, loaded.state)
            written_context = stored_context(loaded.state)
            apply_decisions(run_input, loaded.decisions)
            segment.reserve_tool_slots([p["call_id"] for p in loaded.pending])
        elif request.state is not None:
            run_input = await RunState.from_json(starting_agent, request.state)
            written_context = stored_context(request.state)
            segment.reserve_tool_slots(request.pending)
        else:
            run_input = request.input
        kwargs: dict[str, Any] = {
            "hooks": live_only_run_hooks(attached.hooks),
            "run_config": run_config,
            "session": ReplaySafeSession(session) if session is not None else None,
        }
        if request.max_turns is not None:
            kwargs["max_turns"] = request.max_turns
        result: RunResult | RunResultStreaming
        try:
            if storage is not None and not attached.has_context:
                # Goes on from its records: the declaration rebuilds the context and supplies
                # the secret fields (ContextSecretMissingError, recorded as the failure, if not).
                context = storage.load(written_context, f"run {run_id!r}")
            kwargs["context"] = context
            if request.stream:
                result = await run_streamed(
                    workflow_id, starting_agent, run_input, kwargs, opening_events
                )
            else:
                result = await Runner.run(starting_agent, run_input, **kwargs)
            outcome = _outcome(result, segment, storage)
        except Exception as exc:
            cause = wrapped(exc, TimestepError) or exc
            live.keep_error(workflow_id, cause)
            failure = describe_tripwire(cause) or f"{type(cause).__name__}: {cause}"
            await _record_outcome(
                run_id,
                segment_number,
                records.SegmentOutcome(
                    status="failed", segment_usage=dict(segment.usage_by_model), error=failure
                ),
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
    if outcome.status == "awaiting_approval" and request.approval_timeout is not None:
        await schedule_deadline(
            run_id,
            segment_number,
            request.agent,
            stream=request.stream,
            timeout=request.approval_timeout,
        )
    live.keep_result(workflow_id, result)
    return {"status": outcome.status, "segment": segment_number}
