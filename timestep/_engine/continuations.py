"""The segment after a stop for approval: the parked state and its decisions, loaded as a
recorded step, and the approval deadline, a delayed segment that is the durable timer."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from dataclasses import dataclass
from typing import Any

from dbos import DBOS

from ..state import records
from ..state.retry import until_reachable
from ..state.run_record import Decision, PendingApproval
from ..state.storage import storage_engine
from . import decisions, requests
from .naming import segment_workflow_id


@dataclass(frozen=True)
class Continuation:
    """What a continuation segment starts from."""

    state: dict[str, Any]
    """The parked run's RunState JSON."""

    pending: list[PendingApproval]
    """The calls it stopped on (their tool step ids are reserved)."""

    decisions: list[Decision]
    """The decision on each of them (an approval deadline rejected the undecided ones)."""


@DBOS.step(name="timestep.load_continuation")
async def _load(run_id: str, previous_segment: int) -> dict[str, Any]:
    """The decisions on the parked calls, recorded so that a replay sees the same. The state
    itself is not recorded here (every stop would store the whole run again): the step names
    the parked state it starts from, which the records keep unchanged."""

    def load() -> dict[str, Any]:
        engine = storage_engine()
        records.advance_segment(engine, run_id, previous_segment)
        record = records.get(engine, run_id)
        decided = records.decisions_for(engine, run_id, previous_segment)
        # Only a deadline starts a segment before every call is decided.
        for pending in decisions.undecided(record.pending_approvals, decided):
            decided[pending["call_id"]] = records.record_decision(
                engine, run_id, previous_segment, decisions.deadline_rejection(pending)
            )
        return {
            "state_of": {"run_id": run_id, "segment": previous_segment},
            "pending": record.pending_approvals,
            "decisions": [dataclasses.asdict(d) for d in decided.values()],
        }

    return await asyncio.to_thread(until_reachable, load)


async def load_continuation(run_id: str, previous_segment: int) -> Continuation:
    """Move the run past its parked segment and load what the next one starts from."""
    loaded = await _load(run_id, previous_segment)
    if "state" in loaded:  # recorded by a version that kept the state in the step
        state = loaded["state"]
    else:
        # The step's run id, not `run_id`: a fork replays another run's step.
        of = loaded["state_of"]
        state = await asyncio.to_thread(
            until_reachable, records.parked_state, storage_engine(), of["run_id"], of["segment"]
        )
    return Continuation(
        state=state,
        pending=loaded["pending"],
        decisions=[Decision(**d) for d in loaded["decisions"]],
    )


@DBOS.step(name="timestep.deadline_wait")
async def deadline_wait(run_id: str, parked_segment: int, deadline_at: float) -> float:
    """Seconds a deadline segment still has to wait for decisions: 0 when every call is
    decided or the deadline has passed. A step, so a replay takes the same path."""

    def remaining() -> float:
        engine = storage_engine()
        record = records.get(engine, run_id)
        decided = records.decisions_for(engine, run_id, parked_segment)
        if decisions.all_decided(record.pending_approvals, decided):
            return 0.0
        return max(0.0, deadline_at - time.time())

    return await asyncio.to_thread(until_reachable, remaining)


async def schedule_deadline(
    run_id: str, segment: int, agent: str, *, stream: bool, timeout: float
) -> None:
    """Enqueue the segment after parked segment `segment`, delayed by `timeout`: a durable
    timer in the database.

    Deciding every call earlier starts the same segment (same workflow id) at once; when the
    delay runs out first, the segment rejects the undecided calls (`decisions.DEADLINE_MESSAGE`).
    """
    from .queues import enqueue_segment

    # On the queue of the version the run is on now (it may have moved since it started).
    record = await asyncio.to_thread(until_reachable, records.get, storage_engine(), run_id)
    await enqueue_segment(
        segment_workflow_id(run_id, segment + 1),
        agent,
        record.fingerprint,
        requests.continuation(
            run_id,
            segment + 1,
            agent,
            approval_timeout=timeout,
            stream=stream,
            deadline_at=time.time() + timeout,
        ),
        delay_seconds=timeout,
    )
