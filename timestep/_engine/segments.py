"""A run's segments as DBOS workflows: what the use cases ask of them.

Each segment of run R is the DBOS workflow `R:N` (`naming.segment_workflow_id`). These calls
go through DBOS's client (`queues.client`), so they need no launched DBOS and no agent code:
the CLI and HTTP handlers use them too. A segment that goes back on a queue goes on its
queue of the run's version, where any process that has that version of the agent runs it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from dbos import SetWorkflowID, StepInfo, WorkflowStatus

from .. import config
from . import queues
from .events import STREAM_KEY, entry_events
from .naming import MODEL_STEP_NAME, segment_workflow_id, version_queue_name
from .requests import SegmentRequest, from_workflow_input


async def segment_status(run_id: str, segment: int) -> WorkflowStatus | None:
    """DBOS's status of the segment's workflow (None: it was never started or enqueued)."""
    found = await queues.client().list_workflows_async(
        workflow_ids=[segment_workflow_id(run_id, segment)], load_input=False, load_output=False
    )
    return found[0] if found else None


def segment_statuses(workflow_ids: list[str]) -> dict[str, WorkflowStatus]:
    """DBOS's status of each of the segments `workflow_ids` that exists (a blocking call)."""
    found = queues.client().list_workflows(
        workflow_ids=workflow_ids, load_input=False, load_output=False
    )
    return {s.workflow_id: s for s in found}


async def segment_request(run_id: str, segment: int) -> SegmentRequest | None:
    """The stored input of the segment's workflow (None: no such segment)."""
    found = await queues.client().list_workflows_async(
        workflow_ids=[segment_workflow_id(run_id, segment)], load_input=True, load_output=False
    )
    return from_workflow_input(found[0].input) if found else None


async def segment_steps(run_id: str, segment: int, *, load_output: bool = True) -> list[StepInfo]:
    """The steps the segment recorded, DBOS's own included; without `load_output`, their
    outputs and errors are not read (each step's `error` is then None)."""
    return await queues.client().list_workflow_steps_async(
        segment_workflow_id(run_id, segment), load_output=load_output
    )


async def recorded_model_calls(run_id: str, segments: int) -> list[tuple[int, int]]:
    """(segment, DBOS step id) of each recorded model call of the run, in run order."""
    calls: list[tuple[int, int]] = []
    for segment in range(1, segments + 1):
        recorded = await segment_steps(run_id, segment)
        calls.extend(
            (segment, step["function_id"])
            for step in sorted(recorded, key=lambda s: s["function_id"])
            if step["function_name"] == MODEL_STEP_NAME and step["error"] is None
        )
    return calls


async def cancel_segment(run_id: str, segment: int) -> bool:
    """Cancel the segment's workflow if it exists; True if it did."""
    if await segment_status(run_id, segment) is None:
        return False
    await queues.client().cancel_workflow_async(segment_workflow_id(run_id, segment))
    return True


async def resume_segment(run_id: str, segment: int, agent_name: str, fingerprint: str) -> None:
    """Put a cancelled segment back on the queue of its run's version (graph `fingerprint`),
    from where it stopped."""
    await queues.client().resume_workflow_async(
        segment_workflow_id(run_id, segment),
        queue_name=version_queue_name(agent_name, fingerprint),
    )


async def rewind_segment(
    run_id: str, segment: int, agent_name: str, fingerprint: str, start_step: int
) -> None:
    """Put the segment back on the queue of its run's version, running again from step
    `start_step` (the steps before it are kept)."""
    await queues.client().rewind_workflow_async(
        segment_workflow_id(run_id, segment),
        start_step=start_step,
        queue_name=version_queue_name(agent_name, fingerprint),
    )


async def fork_segment(
    run_id: str, segment: int, step_id: int, new_run_id: str, agent_name: str, fingerprint: str
) -> None:
    """Start run `new_run_id`'s first segment as a copy of the segment that replays its steps
    before `step_id`, on the queue of the new run's version (graph `fingerprint`)."""
    # The copy's workflow id (the new run's first segment) tells it which run it belongs to.
    with SetWorkflowID(segment_workflow_id(new_run_id, 1)):
        await queues.client().fork_workflow_async(
            segment_workflow_id(run_id, segment),
            step_id,
            application_version=config.settings().application_version,
            queue_name=version_queue_name(agent_name, fingerprint),
        )


def start_segment_now(run_id: str, segment: int) -> None:
    """Cancel the remaining delay of a delayed segment (an approval deadline's)."""
    queues.client(make_tables=False).set_workflow_delay(
        segment_workflow_id(run_id, segment), delay_seconds=0
    )


async def segment_events(run_id: str, segment: int) -> AsyncIterator[dict[str, Any]]:
    """The events of the segment's durable stream, in order, waiting for more until the
    segment closes it (a segment writes its events in batches: one entry holds several)."""
    async for entry in queues.client().read_stream_async(
        segment_workflow_id(run_id, segment), STREAM_KEY, polling_interval_sec=0.1
    ):
        for event in entry_events(entry):
            yield event


async def delete_segments(run_id: str, segments: int) -> None:
    """Delete the DBOS workflows of the run's segments 1..`segments` (and of the one after, an
    approval deadline's), with their steps and streams."""
    ids = [segment_workflow_id(run_id, s) for s in range(1, segments + 2)]
    await queues.client().delete_workflows_async(ids)
