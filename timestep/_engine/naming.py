"""Names Timestep gives to DBOS objects: workflow ids of run segments and queue names.

Kept apart so that every module that needs a name can import it without importing DBOS's
runtime or each other.
"""

from __future__ import annotations

import re
import uuid

from ..errors import InvalidRunIdError
from ..state.run_record import version_id

QUEUE_PREFIX = "timestep:"
PROCESS_QUEUE_PREFIX = "timestep-process:"
"""A process's own queue, for runs it takes over to run itself (no agent can be named so:
agent queues start with `QUEUE_PREFIX`)."""

SEGMENT_WORKFLOW = "timestep.run_segment"
"""The DBOS workflow name of a run segment."""

MODEL_STEP_NAME = "timestep.model_call"
"""The DBOS step name of a recorded model call (one per turn)."""

TOOL_STEP_NAME = "timestep.tool_call"
"""The DBOS step name of a recorded tool call (function tool, MCP tool, agent tool)."""

GUARDRAIL_STEP_NAME = "timestep.guardrail"
"""The DBOS step name of a recorded input or output guardrail result."""

HANDOFF_STEP_NAME = "timestep.handoff"
"""The DBOS step name of a recorded handoff (its target agent's name)."""

DECIDED_TOPIC = "timestep.decided"
"""The DBOS message topic that tells a waiting deadline segment every call is decided."""


def queue_name(agent_name: str) -> str:
    """The queue of continuations for `agent_name` whatever its version, read by every process
    that has the agent: what was queued before runs had versions (`version_queue_name`)."""
    return QUEUE_PREFIX + agent_name


VERSION_QUEUE_PREFIX = "timestep@"
"""Queues of one version of an agent: `timestep@<version>:<agent name>` (disjoint from the
agent queues, whatever an agent is named)."""


def version_queue_name(agent_name: str, fingerprint: str) -> str:
    """The queue of continuations for `agent_name` at graph `fingerprint`: read only by
    processes that registered that very graph."""
    return f"{VERSION_QUEUE_PREFIX}{version_id(fingerprint)}:{agent_name}"


def process_queue_name(executor_id: str) -> str:
    """The queue only the process with `executor_id` reads."""
    return PROCESS_QUEUE_PREFIX + executor_id


_SEGMENT_SUFFIX = re.compile(r":segment-\d+$")


def segment_workflow_id(run_id: str, segment: int) -> str:
    return run_id if segment == 1 else f"{run_id}:segment-{segment}"


def parse_segment_workflow_id(workflow_id: str) -> tuple[str, int]:
    """(run id, segment number) of a segment's workflow id: the inverse of
    `segment_workflow_id`, unambiguous because no run id ends like a segment id."""
    found = _SEGMENT_SUFFIX.search(workflow_id)
    if found is None:
        return workflow_id, 1
    return workflow_id[: found.start()], int(found.group(0).rpartition("-")[2])


MAX_RUN_ID_LENGTH = 200
"""Room for the segment suffix in DBOS's and Timestep's id columns (255 characters)."""


def run_id_or_new(run_id: str | None) -> str:
    """`run_id` checked, or a new one when None.

    A run id becomes the DBOS workflow id of the run's first segment and the prefix of the
    others (`RUN_ID:segment-N`), so an id ending like a segment id could name another run's
    segment and is refused, as are empty, overlong and control-character ids.
    """
    if run_id is None:
        return str(uuid.uuid4())
    if not isinstance(run_id, str):
        raise InvalidRunIdError(f"a run id must be a string, not {type(run_id).__name__}")
    problem = None
    if not run_id.strip():
        problem = "is empty"
    elif len(run_id) > MAX_RUN_ID_LENGTH:
        problem = f"is {len(run_id)} characters long (at most {MAX_RUN_ID_LENGTH})"
    elif any(ord(c) < 32 or ord(c) == 127 for c in run_id):
        problem = "contains a control character"
    elif _SEGMENT_SUFFIX.search(run_id):
        problem = "ends like the id of another run's segment (`:segment-N`)"
    if problem is not None:
        raise InvalidRunIdError(f"run id {run_id!r} {problem}; choose another run id")
    return run_id
