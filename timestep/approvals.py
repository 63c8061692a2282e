"""Human decisions on parked runs: `approve`, `reject`, and `resume`.

A run that stops for approval ends its segment: its state is stored with the list of pending
calls and nothing stays in memory. `approve` and `reject` work from any process, including one
without the agents' code (they touch only the database). When the last pending call of a run is
decided, its next segment is put on the agent's DBOS queue under a deterministic workflow id, so
any worker that has the agent runs it, exactly once however many deciders race.
"""

from __future__ import annotations

import asyncio
import functools
from typing import TYPE_CHECKING, Any

from . import _engine as engine
from .errors import DecisionError, NothingPendingError
from .state import records, storage
from .state.records import Decision, DecisionKind, RunRecord

if TYPE_CHECKING:  # the Agents SDK is imported by `resume` only: deciders do not need it
    from .result import DurableRunResult

# DBOS (its client) is imported only where a decision lets a run continue: a decider that
# records a decision and leaves others pending, or repeats one, never imports it.


_STILL_PARKED = object()
"""What `_decide` returns when calls of the run are still undecided."""


def _decide(
    run_id: str, call_id: str | None, decision: DecisionKind, always: bool, message: str | None
) -> RunRecord | object | None:
    """Record the decision; returns the parked run's record when its continuation is still to
    be queued (`_advance_and_enqueue`), `_STILL_PARKED` when calls are still undecided, and
    None when the run went on (this call queued it, or it had moved on already).

    Two round trips in the usual case: one read of the run with its decisions, then one
    transaction that records the decisions and, when they are the last, advances the run and
    enqueues its next segment.
    """
    database = storage.storage_engine()
    for _ in range(3):  # again only if the run moved on between the read and the write
        record, current, earlier = records.get_with_decisions(database, run_id)
        if record.status != "awaiting_approval":
            # The decision may repeat (or contradict) one that already let the run continue.
            targets = list(earlier) if call_id is None else [call_id]
            if not earlier or any(target not in earlier for target in targets):
                raise NothingPendingError(
                    f"run {run_id!r} is {record.status}, not awaiting approval"
                    + (f", and call {call_id!r} is not one it waited for" if call_id else "")
                    + ": there is nothing to decide, nothing was recorded"
                )
            for target in targets:
                recorded = earlier[target]
                engine.check_repeat(
                    run_id,
                    recorded,
                    Decision(target, recorded.tool_name, decision, always, message),
                )
            if call_id is None:
                # "Every pending call" of a run with none pending: say so, never "approved".
                raise NothingPendingError(
                    f"run {run_id!r} is {record.status}: no call is pending, nothing was "
                    f"recorded (its calls {', '.join(targets)} were decided earlier)"
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
        new: list[Decision] = []
        for target in targets:
            wanted = Decision(target, pending[target]["tool_name"], decision, always, message)
            if target in current:
                engine.check_repeat(run_id, current[target], wanted)  # a repeat: nothing to write
            else:
                new.append(wanted)
        already = set(current)
        if not new and not set(pending) <= already:
            return _STILL_PARKED  # a repeated decision while others are still pending
        completes = set(pending) <= already | {d.call_id for d in new}
        done = records.decide(
            database,
            run_id,
            record.segment,
            list(pending),
            new,
            already,
            functools.partial(engine.check_repeat, run_id),
            engine.continuation_enqueuer(record) if completes else None,
        )
        if done.moved_on:
            continue
        if done.advanced:
            if record.approval_timeout is not None:
                # The deadline enqueued the segment with a delay: start it now.
                engine.start_segment_now(run_id, record.segment + 1)
            return None
        # Another decider decided the other calls meanwhile: someone must queue the run.
        if not done.all_decided:
            return _STILL_PARKED
        return record if not completes else None
    raise DecisionError(f"run {run_id!r} changed while it was being decided; try again")


def _advance_and_enqueue(record: RunRecord) -> bool:
    """Move a parked run whose calls are all decided to its next segment and enqueue it, in
    one transaction; False if another caller did (or the run is not parked there)."""
    done = records.decide(
        storage.storage_engine(),
        record.run_id,
        record.segment,
        [p["call_id"] for p in record.pending_approvals],
        [],
        {p["call_id"] for p in record.pending_approvals},
        lambda recorded, wanted: None,
        engine.continuation_enqueuer(record),
    )
    if done.advanced and record.approval_timeout is not None:
        engine.start_segment_now(record.run_id, record.segment + 1)
    return done.advanced


async def continue_if_decided(record: RunRecord) -> None:
    """Queue the next segment of a parked run once every pending call of it is decided."""
    decided = await asyncio.to_thread(
        records.decisions_for, storage.storage_engine(), record.run_id, record.segment
    )
    if engine.all_decided(record.pending_approvals, decided):
        await asyncio.to_thread(_advance_and_enqueue, record)


async def decide(
    run_id: str,
    call_id: str | None,
    decision: DecisionKind,
    *,
    always: bool = False,
    message: str | None = None,
) -> bool:
    """`approve` or `reject`; True when the run is no longer parked in the segment it was
    decided in (its continuation is queued, or it had moved on already)."""
    outcome = await asyncio.to_thread(_decide, run_id, call_id, decision, always, message)
    if outcome is _STILL_PARKED:
        return False
    if isinstance(outcome, RunRecord):
        await asyncio.to_thread(_advance_and_enqueue, outcome)
    return True


async def approve(run_id: str, call_id: str | None = None, *, always: bool = False) -> None:
    """Approve a pending tool call of a parked run (every pending call when `call_id` is None).

    With `always=True` the tool is approved for the rest of the run: its later calls do not
    stop for approval. A rejection always wins: another call of the tool rejected in the same
    batch (by a person or by the approval deadline) does not run. Repeating a decision on a
    call is a no-op; contradicting one raises `DecisionError`; a run with nothing pending
    (`call_id` None) raises `NothingPendingError`. Once every pending call is decided, the
    run's next segment is queued for a worker that has the agent.
    """
    await decide(run_id, call_id, "approve", always=always)


async def reject(run_id: str, call_id: str | None = None, *, message: str | None = None) -> None:
    """Reject a pending tool call (every pending call when `call_id` is None).

    The tool does not run; the model is told `message` (or the SDK's default rejection text).
    Same recording rules as `approve`.
    """
    await decide(run_id, call_id, "reject", message=message)


async def resume(run_id: str) -> DurableRunResult:
    """Wait for the continuation of a decided run (running it here when this process is a
    worker for its agent) and return its result.

    Needs the run's agent registered in this process (`register_agent`), to rebuild the SDK
    result. A run still awaiting decisions raises `DecisionError`, unless it has an approval
    deadline: then `resume` waits for the deadline to continue it.

    When this process has another version of the agent than the run's, the run moves to this
    version if its history and pending calls are valid here (and it is not pinned), and goes on
    here; otherwise `IncompatibleVersionError` says at once what is incompatible, and the run
    stays as it was for a process that has its version (see "Deploying new agent code").
    """
    from dbos import DBOS, WorkflowHandleAsync

    from .errors import AgentNotRegisteredError
    from .run import collect_result

    record, decided, _ = await asyncio.to_thread(
        records.get_with_decisions, storage.storage_engine(), run_id
    )
    workflow_id = engine.segment_workflow_id(run_id, record.segment)
    undecided = engine.undecided(record.pending_approvals, decided)
    if record.status == "awaiting_approval" and undecided and record.approval_timeout is None:
        raise DecisionError(
            f"run {run_id!r} still awaits decisions on "
            + ", ".join(f"{p['call_id']} ({p['tool_name']})" for p in undecided)
        )
    agent = engine.get_agent(record.agent_name)
    if agent is None:
        raise AgentNotRegisteredError(
            f"resume({run_id!r}) needs agent {record.agent_name!r} registered in this process "
            "(timestep.register_agent); get_run() reads the run without it"
        )
    # Another version of the agent here: the run moves to it if compatible (its queued
    # continuation with it), else IncompatibleVersionError at once, the run unchanged.
    record = await engine.adopt_version_async(record, agent)
    if record.status == "awaiting_approval":
        if not undecided:
            await asyncio.to_thread(_advance_and_enqueue, record)
        # Otherwise the deadline's delayed segment continues the run.
        workflow_id = engine.segment_workflow_id(run_id, record.segment + 1)
    await asyncio.to_thread(engine.ensure_dbos)
    await engine.listen_for_registered_agents_async()
    handle: WorkflowHandleAsync[Any] = await DBOS.retrieve_workflow_async(workflow_id)
    return await collect_result(agent, run_id, workflow_id, handle)
