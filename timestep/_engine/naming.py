"""Names Timestep gives to DBOS objects: workflow ids of run segments and queue names.

Kept apart so that every module that needs a name can import it without importing DBOS's
runtime or each other.
"""

from __future__ import annotations

QUEUE_PREFIX = "timestep:"
PROCESS_QUEUE_PREFIX = "timestep-process:"
"""A process's own queue, for runs it takes over to run itself (no agent can be named so:
agent queues start with `QUEUE_PREFIX`)."""

SEGMENT_WORKFLOW = "timestep.run_segment"
"""The DBOS workflow name of a run segment."""


def queue_name(agent_name: str) -> str:
    """The queue of continuations for `agent_name`, read by every process that has the agent."""
    return QUEUE_PREFIX + agent_name


def process_queue_name(executor_id: str) -> str:
    """The queue only the process with `executor_id` reads."""
    return PROCESS_QUEUE_PREFIX + executor_id


def segment_workflow_id(run_id: str, segment: int) -> str:
    return run_id if segment == 1 else f"{run_id}:segment-{segment}"
