"""Helpers for tools that run inside durable runs."""

from __future__ import annotations

from ._engine import (
    current_tool_call,
    start_segment,  # noqa: F401  importing it registers Timestep's DBOS workflows (see run.py)
    uninterruptible,
    unrecorded,
)
from .errors import TimestepError

__all__ = ["idempotency_key", "uninterruptible", "unrecorded"]


def idempotency_key() -> str:
    """A key unique to this tool call of this run, the same on every retry of the call.

    A tool with external side effects passes it to the service it calls (as an idempotency key
    or a deduplication id): a call interrupted after its side effect but before its step was
    recorded runs again on recovery, and the key lets the service ignore the repeat.
    """
    current = current_tool_call()
    if current is None:
        raise TimestepError("idempotency_key() is only available inside a tool of a durable run")
    run_id, call_id = current
    return f"{run_id}:{call_id}"
