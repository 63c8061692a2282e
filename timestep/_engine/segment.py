"""What the wrappers of one running segment share, and the seams tests stop processes at.

Model calls, tool calls and the segment workflow meet here: each task of a segment's run sees
the segment it belongs to (a context variable), and the tool call it is running.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar, Token
from dataclasses import dataclass, field

from agents.usage import Usage
from dbos import DBOS, StepReservation

from ..state.records import ModelUsage
from . import stopping


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

    def reserve_tool_slots(self, call_ids: list[str]) -> None:
        if DBOS.workflow_id is None:
            return
        for call_id in call_ids:
            self.tool_slots[call_id] = DBOS.reserve_step()


_segment: ContextVar[Segment | None] = ContextVar("timestep_segment", default=None)
_tool_call: ContextVar[tuple[str, str] | None] = ContextVar("timestep_tool_call", default=None)

after_step_hooks: list[Callable[[str, str], None]] = []
"""Called with (step kind, detail) right after a step's output is recorded or replayed.

A seam for crash tests that must stop a process exactly at a step boundary."""


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
