"""A segment run streamed: the SDK's events go to the run's durable stream and to a live
reader in this process (`live.publish_stream`)."""

from __future__ import annotations

import asyncio
from typing import Any

from agents import Agent, Runner, RunResultStreaming

from .._compat import agents as agents_compat
from .decisions import pending_approvals
from .events import DurableEventQueue, StreamWriter, set_writer
from .live import publish_stream


async def run_streamed(
    workflow_id: str,
    agent: Agent[Any],
    run_input: Any,
    kwargs: dict[str, Any],
    opening_events: list[dict[str, Any]],
) -> RunResultStreaming:
    """`Runner.run_streamed`, with every item and agent event also written durably; the
    segment's `opening_events` (its decisions) come first."""
    writer = StreamWriter()
    set_writer(writer)
    for event in opening_events:
        writer.write_from_workflow(event)
    try:
        result = Runner.run_streamed(agent, run_input, **kwargs)
        # The run loop has not started yet: from its first event on, item and agent events are
        # teed to the durable stream.
        agents_compat.replace_event_queue(result, DurableEventQueue(writer))
        publish_stream(workflow_id, result)
        if result.run_loop_task is not None:
            await asyncio.shield(result.run_loop_task)
        failure = agents_compat.stored_exception(result)
        if failure is not None:
            raise failure
        if result.interruptions:
            writer.write_from_workflow(
                {"type": "timestep.awaiting_approval", "pending": pending_approvals(result)}
            )
    except BaseException:
        writer.abandon()
        raise
    finally:
        set_writer(None)
    await writer.close()
    return result
