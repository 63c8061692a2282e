"""What a run segment's DBOS workflow is started with: its one input, stored as JSON
(`SegmentRequest`), and its typed form for the workflow (`parse`).

A run's first segment carries the run's input (text, input items, or a saved state); a
continuation carries nothing of the run but its name: it loads the parked state and the
decisions on it from the database when it starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Required, TypedDict, cast


class PendingCallRef(TypedDict):
    """A call of a saved state that waits for a decision (its tool step id is reserved)."""

    call_id: str


class RunInput(TypedDict, total=False):
    """A new run's input: `input` (text or JSON input items) or a saved `state`."""

    input: Any
    state: dict[str, Any]
    pending: list[PendingCallRef]


class SegmentRequest(RunInput, total=False):
    """The input of the `timestep.run_segment` workflow."""

    agent: Required[str]
    """The starting agent's name (a process needs it registered to run the segment)."""

    run_id: str
    segment: int
    """For people reading DBOS's tables: the workflow id says which run and segment this is."""

    continuation: bool
    """A segment after a stop for approval: the state and decisions come from the database."""

    approval_timeout: float | None
    """Seconds each stop for approval waits for decisions."""

    deadline_at: float
    """A deadline segment's deadline (seconds since the epoch)."""

    stream: bool
    """Write the segment's events to its durable stream."""

    max_turns: int | None
    context: Any
    """The context in its stored form (JSON), when it has one."""

    session: dict[str, Any] | None
    """How to reopen the run's session in another process (a SQLite file), if it can be."""

    needs_attachments: bool
    """The run was started with objects that cannot be stored (run config, hooks, a non-JSON
    context, a session of another kind): only the caller's process can run it."""


def continuation(
    run_id: str,
    segment: int,
    agent: str,
    *,
    approval_timeout: float | None,
    stream: bool,
    deadline_at: float | None = None,
) -> SegmentRequest:
    """The request of segment `segment`, which continues a run parked in the one before."""
    request = SegmentRequest(
        run_id=run_id,
        segment=segment,
        agent=agent,
        continuation=True,
        approval_timeout=approval_timeout,
        stream=stream,
    )
    if deadline_at is not None:
        request["deadline_at"] = deadline_at
    return request


def from_workflow_input(inputs: Any) -> SegmentRequest | None:
    """The request of a run segment from its DBOS workflow input, or None for another kind."""
    args = inputs.get("args") if isinstance(inputs, dict) else getattr(inputs, "args", None)
    if args and isinstance(args[0], dict) and "agent" in args[0]:
        return cast(SegmentRequest, args[0])
    return None


@dataclass(frozen=True)
class _Parsed:
    agent: str
    """The starting agent's name."""

    stream: bool
    """Write the segment's events to its durable stream."""

    approval_timeout: float | None
    """Seconds each stop for approval waits for decisions."""

    max_turns: int | None
    context: Any
    """The context in its stored form (JSON), None when it has none."""

    session: dict[str, Any] | None
    """How to reopen the run's session here (`sessions.reopen_session`)."""

    needs_attachments: bool
    """Only the caller's process can run the segment (`live.Attachments`)."""


@dataclass(frozen=True)
class StartRequest(_Parsed):
    """The first segment of a run (or a run started from a saved state)."""

    input: Any
    """Text or JSON input items; None when the run starts from `state`."""

    state: dict[str, Any] | None
    """A saved RunState's JSON to start from."""

    pending: list[str]
    """The call ids that `state` waits on (their tool step ids are reserved)."""


@dataclass(frozen=True)
class ContinuationRequest(_Parsed):
    """A segment after a stop for approval: state and decisions come from the database."""

    deadline_at: float | None
    """A deadline segment's deadline (seconds since the epoch)."""


def parse(request: SegmentRequest) -> StartRequest | ContinuationRequest:
    """The typed form of a segment's stored input (written by any version of this module)."""
    common: dict[str, Any] = {
        "agent": request["agent"],
        "stream": bool(request.get("stream", False)),
        "approval_timeout": request.get("approval_timeout"),
        "max_turns": request.get("max_turns"),
        "context": request.get("context"),
        "session": request.get("session"),
        "needs_attachments": bool(request.get("needs_attachments", False)),
    }
    if request.get("continuation"):
        return ContinuationRequest(**common, deadline_at=request.get("deadline_at"))
    return StartRequest(
        **common,
        input=request.get("input"),
        state=request.get("state"),
        pending=[p["call_id"] for p in request.get("pending", [])],
    )
