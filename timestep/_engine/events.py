"""The durable event stream of a run: every segment writes its events to a DBOS stream.

Events are JSON. Model deltas are written from inside the model step as they arrive, after a
`timestep.model_call` marker naming the step; they are not written again when the step is
replayed. Run item and agent events are written from the workflow as recorded operations, so a
replayed segment does not write them twice. A model call that was in flight when a process died
runs again and writes a second marker for the same step: readers turn it into a
`timestep.partial_output_discarded` event (see `timestep.stream_events`).

Writes go through one ordered writer per segment so the stream keeps the order of production
even though events come from several tasks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from agents.stream_events import (
    AgentUpdatedStreamEvent,
    RawResponsesStreamEvent,
    RunItemStreamEvent,
    StreamEvent,
)
from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from .._compat import dbos as dbos_compat

STREAM_KEY = "timestep.events"
MODEL_CALL_MARKER = "timestep.model_call"
DISCARD_MARKER = "timestep.partial_output_discarded"


def _dump(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_unset=True)
    return to_jsonable_python(value, fallback=str)


def encode_event(event: StreamEvent | Any) -> dict[str, Any]:
    """An SDK stream event (or a raw Responses event) as JSON."""
    if isinstance(event, RawResponsesStreamEvent):
        return {"type": "raw_response_event", "data": _dump(event.data)}
    if isinstance(event, RunItemStreamEvent):
        item = event.item
        return {
            "type": "run_item_stream_event",
            "name": event.name,
            "item": {
                "type": item.type,
                "agent": item.agent.name,
                "raw_item": _dump(item.raw_item),
                "output": _dump(getattr(item, "output", None)),
            },
        }
    if isinstance(event, AgentUpdatedStreamEvent):
        return {"type": "agent_updated_stream_event", "agent": event.new_agent.name}
    return {"type": "raw_response_event", "data": _dump(event)}


class StreamWriter:
    """Writes one segment's events to its DBOS stream in the order they were produced."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Callable[[], None] | None] = asyncio.Queue()
        self._task = asyncio.ensure_future(self._drain())

    def write_from_workflow(self, event: dict[str, Any]) -> None:
        """Queue a recorded write: replay of the segment skips it."""
        self._queue.put_nowait(dbos_compat.deferred_workflow_stream_write(STREAM_KEY, event))

    def write_from_step(self, event: dict[str, Any]) -> None:
        """Queue a write from inside a step: not recorded, repeated if the step runs again."""
        self._queue.put_nowait(dbos_compat.deferred_step_stream_write(STREAM_KEY, event))

    async def _drain(self) -> None:
        while True:
            write = await self._queue.get()
            if write is None:
                return
            await asyncio.to_thread(write)

    async def close(self) -> None:
        """Write everything queued, then mark the stream closed."""
        self._queue.put_nowait(None)
        await self._task
        from dbos import DBOS

        await DBOS.close_stream_async(STREAM_KEY)

    def abandon(self) -> None:
        self._task.cancel()


_writer: ContextVar[StreamWriter | None] = ContextVar("timestep_stream_writer", default=None)


def current_writer() -> StreamWriter | None:
    return _writer.get()


def set_writer(writer: StreamWriter | None) -> None:
    _writer.set(writer)


class DurableEventQueue(asyncio.Queue):  # type: ignore[type-arg]
    """The SDK's event queue of a streamed run, teeing run item and agent events to the stream.

    Raw model events are skipped here: the model step writes them as they arrive.
    """

    def __init__(self, writer: StreamWriter) -> None:
        super().__init__()
        self._writer = writer

    def put_nowait(self, item: Any) -> None:
        if isinstance(item, (RunItemStreamEvent, AgentUpdatedStreamEvent)):
            self._writer.write_from_workflow(encode_event(item))
        super().put_nowait(item)
