"""Starting a run's segment in this process."""

from __future__ import annotations

from typing import Any

from dbos import DBOS, SetWorkflowID, WorkflowHandleAsync

from . import live
from .naming import segment_workflow_id
from .requests import SegmentRequest
from .workflow import run_segment


async def start_segment(
    run_id: str, segment: int, request: SegmentRequest, attachments: live.Attachments
) -> WorkflowHandleAsync[Any]:
    """Start segment `segment` of the run here with `request`, handing it `attachments`.

    Idempotent under the segment's workflow id: when the segment exists already (another
    process runs it, or it has finished), DBOS returns a handle to it and runs nothing here.
    """
    workflow_id = segment_workflow_id(run_id, segment)
    live.attach(workflow_id, attachments)
    with SetWorkflowID(workflow_id):
        return await DBOS.start_workflow_async(run_segment, request)
