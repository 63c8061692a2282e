"""The durable event stream of a run: every segment writes its events to a DBOS stream.

Events are JSON. They are written in batches: one stream entry, `{"timestep.batch": [event,
...], "workflow_events": N}`, holds the events produced since the previous entry, in order of
production. A batch is written when it holds `MAX_BATCH_EVENTS` events, `FLUSH_WINDOW_SECONDS`
after its first event (so a reader tailing the stream sees an event within the window, plus
its polling interval), at the end of every streamed model call (before the step is recorded)
and at the end of the segment. Readers unroll entries into events, one offset per event
(`timestep.stream_events`).

Two kinds of events go to the stream:

- Model deltas and a `timestep.model_call` marker naming the step, from inside the model step.
  Its last batch is written before the step's output is recorded, so a recorded call's events
  are in the stream and a replay (which does not run the step) writes none of them again. A
  call that was in flight when a process died runs again and writes a second marker for the
  same step: readers turn it into a `timestep.partial_output_discarded` event.
- Run item and agent events from the workflow, and Timestep's own workflow markers. These are
  numbered in order of production: the SDK produces the same ones, in the same order, when a
  segment replays from its recorded steps. `workflow_events` in an entry counts those written
  up to and including it; a replay reads that count from the stream before it writes and
  leaves out the events the stream has already, so none is written twice.

Entries are not recorded DBOS operations (a recorded write would draw a step id per write, at
points that depend on timing once writes are batched by time). Writes are fenced by the
execution's ownership token as DBOS's own writes from a step are. Readers also accept a bare
event as an entry (the form of streams written one event per entry).
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar
from dataclasses import dataclass
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


BATCH_KEY = "timestep.batch"
WORKFLOW_COUNT_KEY = "workflow_events"
ENDED_KEY = "model_calls_ended"
FLUSH_WINDOW_SECONDS = 0.05
"""Longest an event waits in memory before its batch is written (when nothing ends it first)."""
MAX_BATCH_EVENTS = 100
"""A batch this large is written at once."""


def entry_events(entry: Any) -> list[Any]:
    """The events a stream entry holds, in order: a batch's, or the entry itself."""
    if isinstance(entry, dict) and BATCH_KEY in entry:
        events: list[Any] = entry[BATCH_KEY]
        return events
    return [entry]


@dataclass
class _Batch:
    events: list[tuple[dict[str, Any], int | None]]
    """Each event with its workflow-event number (None for an event of a model call)."""
    ended: list[int]
    """Model calls (step ids) whose last event is in this batch."""
    function_id: int
    """The id of the latest operation the batch's events come from (stored with the entry)."""
    workflow_events: int
    """Workflow events produced up to the end of this batch."""
    written: asyncio.Future[None]


@dataclass(frozen=True)
class _Earlier:
    """What an earlier execution of the segment left in its stream."""

    workflow_events: int
    ended_model_calls: frozenset[int]


class StreamWriter:
    """Writes one segment's events to its DBOS stream, batched, in the order they were produced.

    Created inside the segment's workflow, on its event loop; every method is called there.
    """

    def __init__(self) -> None:
        self._workflow_id, _ = dbos_compat.stream_position()
        self._loop = asyncio.get_running_loop()
        self._pending: list[tuple[dict[str, Any], int | None]] = []
        self._pending_ended: list[int] = []
        self._function_id = 0
        self._produced = 0
        self._timer: asyncio.TimerHandle | None = None
        self._last: asyncio.Future[None] | None = None
        self._earlier: asyncio.Future[_Earlier] | None = None
        self._queue: asyncio.Queue[_Batch | None] = asyncio.Queue()
        # Started here, in the workflow's context: the writes run in copies of it, which carry
        # the execution's ownership token.
        self._task = asyncio.ensure_future(self._drain())

    def write_from_workflow(self, event: dict[str, Any]) -> None:
        """Queue an event of the workflow (numbered: a replay leaves out those already written)."""
        _, function_id = dbos_compat.stream_position()
        self._add(event, self._produced, function_id)
        self._produced += 1

    def write_from_step(self, event: dict[str, Any]) -> None:
        """Queue an event from inside the running step (written again if the step runs again)."""
        _, function_id = dbos_compat.stream_position()
        self._add(event, None, function_id)

    def end_model_call(self, step_id: int) -> None:
        """Mark the model call `step_id` complete: its last event is queued. Called inside the
        step, before DBOS records it."""
        self._pending_ended.append(step_id)
        self._function_id = max(self._function_id, step_id)
        self._arm()

    async def replay_model_call(self, step_id: int, events: list[dict[str, Any]]) -> None:
        """A recorded model call that a replay does not run: when its end is not in the stream
        (the process died after the step was recorded, before its last batch was written),
        queue `events` (its recorded output) after a new marker, so that readers discard
        whatever part of the call had reached the stream and then see all of it."""
        earlier = await self._earlier_execution()
        if step_id in earlier.ended_model_calls:
            return
        for event in [{"type": MODEL_CALL_MARKER, "step": step_id}, *events]:
            self._add(event, None, step_id)
        self.end_model_call(step_id)

    def _add(self, event: dict[str, Any], number: int | None, function_id: int) -> None:
        self._pending.append((event, number))
        self._function_id = max(self._function_id, function_id)
        if len(self._pending) >= MAX_BATCH_EVENTS:
            self._send()
        else:
            self._arm()

    def _arm(self) -> None:
        if self._timer is None:
            self._timer = self._loop.call_later(FLUSH_WINDOW_SECONDS, self._send)

    def _send(self) -> None:
        """Hand the pending events to the writer task as one batch."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._pending and not self._pending_ended:
            return
        self._last = self._loop.create_future()
        self._queue.put_nowait(
            _Batch(
                self._pending, self._pending_ended, self._function_id, self._produced, self._last
            )
        )
        self._pending, self._pending_ended = [], []

    async def flush(self) -> None:
        """Write every event queued so far; returns once they are in the database."""
        self._send()
        if self._last is not None:
            await asyncio.shield(self._last)

    def _earlier_execution(self) -> asyncio.Future[_Earlier]:
        # Read once, when first needed: before the first write, or by a replayed model call.
        if self._earlier is None:
            self._earlier = asyncio.ensure_future(asyncio.to_thread(self._read_earlier))
        return self._earlier

    def _read_earlier(self) -> _Earlier:
        counts, ended = [0], set()
        for entry in dbos_compat.stream_values(self._workflow_id, STREAM_KEY):
            if isinstance(entry, dict) and BATCH_KEY in entry:
                counts.append(entry.get(WORKFLOW_COUNT_KEY, 0))
                ended.update(entry.get(ENDED_KEY, ()))
        return _Earlier(max(counts), frozenset(ended))

    async def _drain(self) -> None:
        failure: BaseException | None = None
        while True:
            batch = await self._queue.get()
            if batch is None:
                if failure is not None:
                    raise failure
                return
            if failure is not None:
                # The stream has a gap from here on: every later batch fails the same way.
                batch.written.set_exception(failure)
                batch.written.exception()  # raised by `flush`/`close`; no "never retrieved" log
                continue
            try:
                already = (await self._earlier_execution()).workflow_events
                events = [
                    event for event, number in batch.events if number is None or number >= already
                ]
                if events or batch.ended:
                    entry: dict[str, Any] = {
                        BATCH_KEY: events,
                        WORKFLOW_COUNT_KEY: batch.workflow_events,
                    }
                    if batch.ended:
                        entry[ENDED_KEY] = batch.ended
                    await asyncio.to_thread(
                        dbos_compat.write_stream_entry,
                        self._workflow_id,
                        batch.function_id,
                        STREAM_KEY,
                        entry,
                    )
            except asyncio.CancelledError:
                batch.written.cancel()
                raise
            except Exception as exc:
                failure = exc
                batch.written.set_exception(exc)
                batch.written.exception()
                continue
            batch.written.set_result(None)

    async def close(self) -> None:
        """Write everything queued, then mark the stream closed."""
        await self.flush()
        self._queue.put_nowait(None)
        await self._task
        from dbos import DBOS

        await DBOS.close_stream_async(STREAM_KEY)

    def abandon(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._task.cancel()
        if self._earlier is not None:
            self._earlier.cancel()


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
