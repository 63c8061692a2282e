"""The in-process hand-over between a caller and the segment it started.

What cannot be stored in the database (the agent object, a run config, hooks, a non-JSON
context, a session object) is handed to a segment through here, and the segment hands back
what the caller wants without reading it from the database again: the SDK's result, its
streaming result while it runs, or the original exception. Everything is keyed by the
segment's workflow id; a segment that runs in another process (recovery, a worker) finds
nothing here and works from its records.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from agents import Agent, RunConfig, RunHooks, RunResult, RunResultStreaming
from agents.memory import Session

logger = logging.getLogger("timestep")

WAIT_POLL_SECONDS = 0.5


@dataclass
class Attachments:
    """Objects a caller hands to a segment that cannot be stored in the database."""

    session: Session | None = None
    context: Any = None
    has_context: bool = False
    run_config: RunConfig | None = None
    hooks: RunHooks[Any] | None = None
    agent: Agent[Any] | None = None
    """The starting agent, already checked against the run's recorded graph."""


@dataclass(frozen=True)
class LiveStream:
    """A streamed segment running in this process, and the event loop it runs on."""

    result: RunResultStreaming
    """The SDK's streaming result of the segment."""

    loop: asyncio.AbstractEventLoop
    """The loop of its run: the caller's, or DBOS's own for a segment it dequeued (a run
    taken over from a dead process)."""


@dataclass
class _Process:
    attachments: dict[str, Attachments] = field(default_factory=dict)
    results: dict[str, RunResult | RunResultStreaming] = field(default_factory=dict)
    streams: dict[str, LiveStream] = field(default_factory=dict)
    stream_waiters: dict[str, asyncio.Future[None]] = field(default_factory=dict)
    errors: dict[str, BaseException] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


# Segments may run on DBOS's own event loop thread (recovery) or on the caller's loop.
_process = _Process()


def attach(workflow_id: str, attachments: Attachments) -> None:
    """Hand `attachments` to the segment `workflow_id` (which may already be waiting)."""
    with _process.lock:
        _process.attachments[workflow_id] = attachments


def take_attachments(workflow_id: str) -> Attachments | None:
    """What the caller handed to the segment `workflow_id`, once (None if nothing)."""
    with _process.lock:
        return _process.attachments.pop(workflow_id, None)


async def wait_for_attachments(run_id: str, workflow_id: str) -> Attachments:
    """Wait for a caller to hand the segment what it needs; says why in the log first."""
    logger.warning(
        "timestep: run %r was started with objects that cannot be stored (a run config, hooks, "
        "a session or a non-JSON context); it stays pending until run_agent(..., run_id=%r) "
        "is called again with them",
        run_id,
        run_id,
    )
    while True:
        found = take_attachments(workflow_id)
        if found is not None:
            return found
        await asyncio.sleep(WAIT_POLL_SECONDS)


def keep_result(workflow_id: str, result: RunResult | RunResultStreaming) -> None:
    with _process.lock:
        _process.results[workflow_id] = result


def keep_error(workflow_id: str, error: BaseException) -> None:
    with _process.lock:
        _process.errors[workflow_id] = error


def take_live_result(workflow_id: str) -> RunResult | RunResultStreaming | None:
    with _process.lock:
        return _process.results.pop(workflow_id, None)


def take_live_error(workflow_id: str) -> BaseException | None:
    with _process.lock:
        return _process.errors.pop(workflow_id, None)


def expect_live_stream(workflow_id: str) -> asyncio.Future[None]:
    """A future set when a streamed segment of `workflow_id` starts in this process."""
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    with _process.lock:
        _process.stream_waiters[workflow_id] = future
    return future


def take_live_stream(workflow_id: str) -> LiveStream | None:
    with _process.lock:
        _process.stream_waiters.pop(workflow_id, None)
        return _process.streams.pop(workflow_id, None)


def publish_stream(workflow_id: str, result: RunResultStreaming) -> None:
    """Offer the streaming result of a segment that has started to its caller here."""
    with _process.lock:
        _process.streams[workflow_id] = LiveStream(result, asyncio.get_running_loop())
        waiter = _process.stream_waiters.pop(workflow_id, None)
    if waiter is not None:

        def wake() -> None:
            if not waiter.done():
                waiter.set_result(None)

        if waiter.get_loop() is asyncio.get_running_loop():
            wake()
        else:  # a recovered segment runs on DBOS's loop, its waiter on the caller's
            waiter.get_loop().call_soon_threadsafe(wake)
