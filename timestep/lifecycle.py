"""Steering a run after it started: `cancel`, `retry` and `fork`.

All three work from any process, with or without the agents' code: they change the run's
records and ask DBOS to cancel, rewind or fork the segment's workflow. The work itself then
happens wherever the run's agent is (a worker, or a process calling `resume`).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from . import _engine as engine
from .errors import LifecycleError
from .runs import get_run
from .state import owners, records, storage
from .state.records import RunOverrides, RunRecord

if TYPE_CHECKING:  # `fork(agent=)` only: cancel and retry never load the Agents SDK
    from agents import Agent

ACTIVE = ("running", "awaiting_approval")


async def cancel(run_id: str) -> RunRecord:
    """Stop a run at its next step (a parked run at once) and mark it `cancelled`.

    An async tool in flight is cancelled (within about a second; a tool declared
    `timestep.uninterruptible` runs to its end and is recorded; a synchronous tool cannot be
    interrupted), and DBOS stops the segment before its next step. The `run_agent`/`resume`
    calls of this process that wait for the run raise `RunCancelledError` at once. A parked
    run's pending calls can no longer be decided.
    `retry` continues a cancelled run from its records. Cancelling a run that has finished
    raises `LifecycleError`.
    """
    database = storage.storage_engine()
    for _attempt in range(5):
        record = await asyncio.to_thread(records.get, database, run_id)
        if record.status not in ACTIVE:
            raise LifecycleError(
                f"run {run_id!r} is {record.status}: only a running or parked run can be "
                "cancelled" + ("; `timestep runs retry` continues it" if _retryable(record) else "")
            )
        # DBOS first: a segment that finishes meanwhile records its outcome, and the status
        # change below then finds the run no longer active.
        await engine.cancel_segment(run_id, record.segment)
        await engine.cancel_segment(run_id, record.segment + 1)  # an approval deadline
        moved = await asyncio.to_thread(
            records.change_status, database, run_id, record.segment, ACTIVE, "cancelled"
        )
        if moved:
            engine.cancelled_here(run_id)  # waiting calls here raise RunCancelledError now
            return await get_run(run_id)
        # A decision or the segment moved the run on meanwhile: look again.
    raise LifecycleError(f"run {run_id!r} kept changing while it was being cancelled; try again")


async def retry(run_id: str) -> RunRecord:
    """Continue a failed or cancelled run from its records.

    Recorded model and tool calls are kept; the step that failed (for a cancelled run, the
    step it stopped before) runs again. The segment goes back on its agent's queue, where a
    process with the agent (a worker, or `resume(run_id)` here) continues it. A cancelled run
    that was parked for approval goes back to waiting for decisions, until its original
    approval deadline if it had one. Raises `LifecycleError`
    for a run in any other status, and for a cancelled run whose last step is still finishing.
    """
    database = storage.storage_engine()
    record = await asyncio.to_thread(records.get, database, run_id)
    if not _retryable(record):
        raise LifecycleError(
            f"run {run_id!r} is {record.status}: only a failed or cancelled run can be retried"
        )
    status = await engine.segment_status(run_id, record.segment)
    if record.status == "cancelled" and (status is None or status.status == "SUCCESS"):
        # Cancelled while parked: nothing ran since the segment ended; wait for decisions again.
        has_deadline = record.approval_timeout is not None
        if has_deadline:
            await _check_cancelled_deadline(run_id, record.segment + 1)
        moved = await asyncio.to_thread(
            records.change_status,
            database,
            run_id,
            record.segment,
            ("cancelled",),
            "awaiting_approval",
            error=None,
        )
        if moved and has_deadline:
            # Its deadline segment waits out what is left of the deadline, or continues at once
            # with the undecided calls rejected if the deadline has passed meanwhile.
            await engine.resume_segment(
                run_id, record.segment + 1, record.agent_name, record.fingerprint
            )
        return await get_run(run_id)
    if status is None:
        raise LifecycleError(f"run {run_id!r} has no recorded segment {record.segment} to retry")
    if record.status == "cancelled" and record.error is None:
        # DBOS marks the workflow cancelled at once; its execution stops at its next step and
        # then records where. Until then, a rewind would run that step a second time.
        stopping = await _still_stopping(run_id, status.executor_id)
        if stopping is not None:
            raise LifecycleError(stopping)
    steps = await engine.segment_steps(run_id, record.segment)
    failed = [step["function_id"] for step in steps if step["error"] is not None]
    start = min(failed) if failed else max((s["function_id"] for s in steps), default=0) + 1
    moved = await asyncio.to_thread(
        records.change_status,
        database,
        run_id,
        record.segment,
        ("failed", "cancelled"),
        "running",
        error=None,
    )
    if moved:
        await engine.rewind_segment(
            run_id, record.segment, record.agent_name, record.fingerprint, start
        )
    return await get_run(run_id)


async def fork(
    run_id: str,
    *,
    turn: int,
    new_run_id: str | None = None,
    model: str | None = None,
    instructions: str | None = None,
    agent: Agent[Any] | None = None,
) -> RunRecord:
    """Start a new run that reuses `run_id`'s recorded turns before `turn` and goes live from it.

    Turn k is the k-th model call of the run, counted across its segments (0 is the first).
    The new run replays the recorded model and tool calls, and the approval decisions, of turns
    0 .. turn-1 without calling anything (DBOS workflow forking of the segment that holds
    `turn`), then calls the model for `turn` and goes on live; with `model`, from there on with
    that model instead of the original's, with `instructions`, with those instructions for the
    starting agent. It goes on the agent's queue, like `retry`: a process with the agent runs
    it (`resume(new_run_id)` here). Returns the new run's record; its usage counts the reused
    turns under the model that made them.

    With `agent` (the same starting agent, another version of its code: registered here), the
    new run is on that agent's graph instead of the original's: the way out for a run that is
    incompatible with new code (`IncompatibleVersionError`). Fork at a turn before the run
    first used what no longer exists (`turn=0` starts over from its input).

    Runs with a session or with objects that cannot be stored (run config, hooks, non-JSON
    context) cannot be forked (`LifecycleError`), nor can a turn the run never reached.
    """
    if not isinstance(turn, int) or turn < 0:
        raise LifecycleError(f"turn must be a whole number >= 0, got {turn!r}")
    new_id = engine.run_id_or_new(new_run_id)
    database = storage.storage_engine()
    original = await asyncio.to_thread(records.get, database, run_id)
    calls = await engine.recorded_model_calls(run_id, original.segment)
    if turn >= len(calls):
        reachable = f" (turns 0..{len(calls) - 1} can)" if calls else ""
        raise LifecycleError(
            f"run {run_id!r} made {len(calls)} recorded model call(s); turn {turn} cannot be "
            f"forked{reachable}"
        )
    segment, step_id = calls[turn]
    request = await engine.segment_request(run_id, segment)
    if request is None:
        raise LifecycleError(f"run {run_id!r} has no recorded segment {segment} to fork")
    if request.get("session") or request.get("needs_attachments"):
        raise LifecycleError(
            f"run {run_id!r} ran with a session, a run config, hooks or a non-JSON context, "
            "which a fork cannot reuse; forking such runs is not supported"
        )
    kept = original.overrides or RunOverrides()
    overrides = RunOverrides(
        agent=model if model is not None else kept.agent,
        run_config=kept.run_config,
        instructions=instructions if instructions is not None else kept.instructions,
    )
    graph, fingerprint, label = original.graph, original.fingerprint, original.version_label
    if agent is not None:
        if agent.name != original.agent_name:
            raise LifecycleError(
                f"run {run_id!r} starts with agent {original.agent_name!r}; fork it with another "
                f"version of that agent, not {agent.name!r}"
            )
        engine.register_agent(agent)
        graph = engine.describe_graph(agent)
        fingerprint = engine.fingerprint(graph)
        version = engine.version_of(agent.name)
        label = version[1] if version is not None and version[0] == fingerprint else None
    created = await asyncio.to_thread(
        records.create_fork,
        database,
        original,
        new_id,
        overrides,
        segment,
        records.RunVersion(graph, fingerprint, label),
    )
    if not created:
        raise LifecycleError(f"run {new_id!r} already exists; fork under another run id")
    # The fork's first segment is a copy of the original's segment `segment`, input included.
    await engine.fork_segment(run_id, segment, step_id, new_id, original.agent_name, fingerprint)
    return await get_run(new_id)


async def _check_cancelled_deadline(run_id: str, segment: int) -> None:
    """Check that a cancelled parked run's deadline segment can be resumed."""
    request = await engine.segment_request(run_id, segment)
    if request is None or request.get("deadline_at") is None:
        raise LifecycleError(
            f"run {run_id!r} was cancelled while parked with an approval deadline set by an "
            "earlier Timestep version, which cannot be set again; start a new run from its "
            "state (`timestep state export`)"
        )


def _retryable(record: RunRecord) -> bool:
    return record.status in ("failed", "cancelled")


async def _still_stopping(run_id: str, executor: str | None) -> str | None:
    """Why a cancelled segment may still be executing, or None when it cannot be."""
    if not executor:
        return None  # cancelled while queued: it never started
    owner = await asyncio.to_thread(owners.get, storage.storage_engine(), executor)
    if owner is None or not engine.judge_liveness(owner).alive:
        return None
    return (
        f"run {run_id!r} is cancelled but its current step is still finishing in pid "
        f"{owner.pid} on {owner.host}; retry it once that step has ended"
    )
