"""Human decisions on parked runs: `approve`, `reject`, and `resume`.

A run that stops for approval ends its segment: its state is stored with the list of pending
calls and nothing stays in memory. `approve` and `reject` work from any process, including one
without the agents' code (they touch only the database). When the last pending call of a run is
decided, its next segment is put on the agent's DBOS queue under a deterministic workflow id, so
any worker that has the agent runs it, exactly once however many deciders race.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from dbos import DBOS, WorkflowHandleAsync

from ._engine import launch, queues, registry, requests, storage
from ._engine.naming import DECIDED_TOPIC, segment_workflow_id
from .errors import AgentNotRegisteredError, DecisionError
from .state import records
from .state.records import Decision, DecisionKind, RunRecord

if TYPE_CHECKING:  # the Agents SDK is imported by `resume` only: deciders do not need it
    from .result import DurableRunResult


def _check_same(run_id: str, recorded: Decision, wanted: Decision) -> None:
    if (recorded.decision, recorded.always, recorded.message) != (
        wanted.decision,
        wanted.always,
        wanted.message,
    ):
        raise DecisionError(
            f"call {recorded.call_id!r} ({recorded.tool_name}) of run {run_id!r} was already "
            f"decided: {recorded.decision}"
            + (f" with message {recorded.message!r}" if recorded.message else "")
            + "; a decision is recorded once and cannot be changed"
        )


def _decide(
    run_id: str, call_id: str | None, decision: DecisionKind, always: bool, message: str | None
) -> RunRecord | None:
    """Record the decision; returns the parked run's record, or None for a repeated decision."""
    engine = storage.storage_engine()
    record = records.get(engine, run_id)
    if record.status != "awaiting_approval":
        # The decision may repeat (or contradict) one that already let the run continue.
        earlier = records.decisions_for(engine, run_id, record.segment - 1)
        targets = list(earlier) if call_id is None else [call_id]
        if not earlier or any(target not in earlier for target in targets):
            raise DecisionError(
                f"run {run_id!r} is {record.status}, not awaiting approval"
                + (f", and call {call_id!r} is not one it waited for" if call_id else "")
                + ": there is nothing to decide"
            )
        for target in targets:
            recorded = earlier[target]
            _check_same(
                run_id, recorded, Decision(target, recorded.tool_name, decision, always, message)
            )
        return None
    pending = {p["call_id"]: p for p in record.pending_approvals}
    targets = list(pending) if call_id is None else [call_id]
    for target in targets:
        if target not in pending:
            raise DecisionError(
                f"run {run_id!r} has no pending call {target!r}; pending calls: "
                + ", ".join(f"{c} ({p['tool_name']})" for c, p in pending.items())
            )
    for target in targets:
        wanted = Decision(target, pending[target]["tool_name"], decision, always, message)
        _check_same(run_id, records.record_decision(engine, run_id, record.segment, wanted), wanted)
    return record


async def continue_if_decided(record: RunRecord) -> None:
    engine = storage.storage_engine()
    decided = await asyncio.to_thread(records.decisions_for, engine, record.run_id, record.segment)
    if any(p["call_id"] not in decided for p in record.pending_approvals):
        return
    next_id = segment_workflow_id(record.run_id, record.segment + 1)
    await asyncio.to_thread(records.advance_segment, engine, record.run_id, record.segment)
    await queues.enqueue_segment(
        next_id,
        record.agent_name,
        requests.continuation(
            record.run_id,
            record.segment + 1,
            record.agent_name,
            approval_timeout=record.approval_timeout,
            stream=record.streamed,
        ),
    )
    if record.approval_timeout is not None:
        # The deadline enqueued the segment already, with a delay: start it now, or wake it
        # where it waits out its deadline (a retried cancelled run).
        await queues.start_now(next_id)
        await queues.client().send_async(next_id, True, DECIDED_TOPIC)


async def approve(run_id: str, call_id: str | None = None, *, always: bool = False) -> None:
    """Approve a pending tool call of a parked run (every pending call when `call_id` is None).

    With `always=True` the tool is approved for the rest of the run. Repeating a decision is a
    no-op; contradicting one raises `DecisionError`. Once every pending call is decided, the
    run's next segment is queued for a worker that has the agent.
    """
    record = await asyncio.to_thread(_decide, run_id, call_id, "approve", always, None)
    if record is not None:
        await continue_if_decided(record)


async def reject(run_id: str, call_id: str | None = None, *, message: str | None = None) -> None:
    """Reject a pending tool call (every pending call when `call_id` is None).

    The tool does not run; the model is told `message` (or the SDK's default rejection text).
    Same recording rules as `approve`.
    """
    record = await asyncio.to_thread(_decide, run_id, call_id, "reject", False, message)
    if record is not None:
        await continue_if_decided(record)


async def resume(run_id: str) -> DurableRunResult:
    """Wait for the continuation of a decided run (running it here when this process is a
    worker for its agent) and return its result.

    Needs the run's agent registered in this process (`register_agent`), to rebuild the SDK
    result. A run still awaiting decisions raises `DecisionError`, unless it has an approval
    deadline: then `resume` waits for the deadline to continue it.
    """
    from .run import collect_result

    engine = storage.storage_engine()
    record = await asyncio.to_thread(records.get, engine, run_id)
    workflow_id = segment_workflow_id(run_id, record.segment)
    if record.status == "awaiting_approval":
        decided = await asyncio.to_thread(records.decisions_for, engine, run_id, record.segment)
        undecided = [p for p in record.pending_approvals if p["call_id"] not in decided]
        if undecided and record.approval_timeout is None:
            raise DecisionError(
                f"run {run_id!r} still awaits decisions on "
                + ", ".join(f"{p['call_id']} ({p['tool_name']})" for p in undecided)
            )
        if not undecided:
            await continue_if_decided(record)
        # Otherwise the deadline's delayed segment continues the run.
        workflow_id = segment_workflow_id(run_id, record.segment + 1)
    agent = registry.get_agent(record.agent_name)
    if agent is None:
        raise AgentNotRegisteredError(
            f"resume({run_id!r}) needs agent {record.agent_name!r} registered in this process "
            "(timestep.register_agent); get_run() reads the run without it"
        )
    await asyncio.to_thread(launch.ensure_dbos)
    await queues.listen_for_registered_agents_async()
    handle: WorkflowHandleAsync[Any] = await DBOS.retrieve_workflow_async(workflow_id)
    return await collect_result(agent, run_id, workflow_id, handle)
