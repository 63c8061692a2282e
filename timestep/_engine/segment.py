"""What the wrappers of one running segment share, and the seams tests stop processes at.

Model calls, tool calls and the segment workflow meet here: each task of a segment's run sees
the segment it belongs to (a context variable), and the tool call it is running.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar, Token
from dataclasses import dataclass, field

from agents.usage import Usage
from dbos import DBOS, StepOptions, StepReservation

from .._compat import dbos as dbos_compat
from ..state.records import ModelUsage
from . import stopping
from .naming import TOOL_STEP_NAME

TOOL_STEP: StepOptions = {"name": TOOL_STEP_NAME, "preemptible": True}
"""The step of a tool call (function tool, MCP tool, agent tool), at the id reserved for it.
Preemptible: `cancel(run_id)` cancels an async tool in flight (DBOS polls for it)."""

UNINTERRUPTIBLE_TOOL_STEP: StepOptions = {"name": TOOL_STEP_NAME}
"""The step of a `timestep.uninterruptible` tool's call."""


@dataclass
class Segment:
    """What the wrappers of one running segment share."""

    run_id: str
    """The run this segment belongs to."""

    tool_slots: dict[str, StepReservation] = field(default_factory=dict)
    """DBOS step ids reserved for function calls that have not run yet, by call id."""

    usage_by_model: dict[str, ModelUsage] = field(default_factory=dict)
    """Usage of the segment's model calls (recorded ones replayed included), by model name:
    the four counts that are stored (summing the SDK's `Usage` objects costs far more)."""

    def count_usage(self, model_name: str, usage: Usage) -> None:
        counted = ModelUsage(
            usage.requests or 0,
            usage.input_tokens or 0,
            usage.output_tokens or 0,
            usage.total_tokens or 0,
        )
        before = self.usage_by_model.get(model_name)
        self.usage_by_model[model_name] = counted if before is None else before + counted

    recorded_steps: frozenset[int] = frozenset()
    """Step ids that had a recorded output when this execution of the segment began (a
    recovery replays them). Loaded only when the run has hooks (`hooks.LiveOnlyHooks`)."""

    replayed_calls: set[str] = field(default_factory=set)
    """Call ids of tool calls whose output this execution took from their records."""

    last_model_call_replayed: bool = False
    """Whether the latest model call's response came from its record."""

    def reserve_tool_slots(self, call_ids: list[str]) -> None:
        if not in_workflow_body():
            return  # inside a step (a guardrail agent): nothing nested is recorded
        for call_id in call_ids:
            self.tool_slots[call_id] = DBOS.reserve_step()

    def next_step_replays(self) -> bool:
        """Whether the next step this segment takes has a record to replay."""
        if not self.recorded_steps or not in_workflow_body():
            return False
        return dbos_compat.next_step_id() in self.recorded_steps

    def call_replays(self, call_id: str) -> bool:
        """Whether the tool call `call_id` (not run yet) has a record to replay."""
        slot = self.tool_slots.get(call_id)
        return slot is not None and slot.step_id in self.recorded_steps


_segment: ContextVar[Segment | None] = ContextVar("timestep_segment", default=None)
_tool_call: ContextVar[tuple[str, str] | None] = ContextVar("timestep_tool_call", default=None)

after_step_hooks: list[Callable[[str, str], None]] = []
"""Called with (step kind, detail) right after a step's output is recorded or replayed.

A seam for crash tests that must stop a process exactly at a step boundary."""


def in_workflow_body() -> bool:
    """Whether this code runs in a segment's workflow, outside any step: only there is a
    call recorded as a step of its own (inside a step, everything is part of that step)."""
    return DBOS.workflow_id is not None and DBOS.step_id is None


def current_segment() -> Segment | None:
    return _segment.get()


def enter_segment(segment: Segment) -> Token[Segment | None]:
    return _segment.set(segment)


def reset_segment(token: Token[Segment | None]) -> None:
    _segment.reset(token)


def current_tool_call() -> tuple[str, str] | None:
    """(run id, call id) of the tool call running in this task, if any."""
    return _tool_call.get()


def fire_hooks(kind: str, detail: str) -> None:
    for hook in after_step_hooks:
        hook(kind, detail)


def enter_tool_call(run_id: str, call_id: str) -> Token[tuple[str, str] | None]:
    stopping.tool_started()  # a stopping process waits for it (its grace period)
    return _tool_call.set((run_id, call_id))


def leave_tool_call(token: Token[tuple[str, str] | None]) -> None:
    _tool_call.reset(token)
    stopping.tool_ended()
