"""Reading a run's durable event stream from any process: `stream_events`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from . import _engine as engine
from .state import records, storage

_FINAL = ("completed", "failed", "cancelled", "awaiting_approval")


async def stream_events(run_id: str, offset: int = 0) -> AsyncIterator[dict[str, Any]]:
    """Yield the events of run `run_id` (a `stream=True` run) from `offset`, live or finished.

    Events are JSON dicts with an `offset` and a `type`: `raw_response_event` (model deltas and
    the completed response, under `data`), `run_item_stream_event` (`name` and `item`: messages,
    tool calls, tool outputs, approval requests), `agent_updated_stream_event` (`agent`), and
    Timestep's markers: `timestep.model_call` before each model call's deltas, and
    `timestep.partial_output_discarded` when a model call interrupted by a crash starts again
    (its earlier deltas are void). Reading ends when the run finishes or parks for approval;
    the last event is then `timestep.run_ended` with the run's status.

    Offsets count events, not stream entries (a segment writes its events in batches), so they
    are the same on every read and a reader resumes at any event.

    Needs no agent code and does not launch DBOS.
    """
    database = storage.storage_engine()
    position = 0
    segment = 1
    seen_model_calls: set[Any] = set()
    while True:
        record = await asyncio.to_thread(records.get, database, run_id)
        if segment > record.segment:
            if record.status in _FINAL:
                yield {"offset": None, "type": "timestep.run_ended", "status": record.status}
                return
            await asyncio.sleep(0.2)
            continue
        async for event in engine.segment_events(run_id, segment):
            current = position
            position += 1
            if event.get("type") == engine.MODEL_CALL_MARKER:
                key = (segment, event.get("step"))
                if key in seen_model_calls and current >= offset:
                    yield {"offset": None, "type": engine.DISCARD_MARKER, "step": event.get("step")}
                seen_model_calls.add(key)
            if current >= offset:
                yield {"offset": current, **event}
        segment += 1
