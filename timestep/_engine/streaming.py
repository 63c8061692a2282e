"""Streaming a model call that is also a recorded step.

The live stream is relayed event by event while the step runs; the step records only the final
response. When the step is replayed nothing streams from the model: the recorded response is
returned as one `response.completed` event, which is all the SDK needs to continue the run.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from agents.items import ModelResponse, TResponseStreamEvent
from agents.usage import Usage
from dbos import DBOS
from openai.types.responses import Response, ResponseCompletedEvent
from openai.types.responses.response_usage import (
    InputTokensDetails,
    OutputTokensDetails,
    ResponseUsage,
)

from .._compat import agents as agents_compat
from ..errors import TimestepError
from .codecs import decode_model_response
from .events import MODEL_CALL_MARKER, current_writer, encode_event

if TYPE_CHECKING:
    from .durable import DurableModel

_DONE = object()


def _response_from_event(event: ResponseCompletedEvent) -> ModelResponse:
    response = event.response
    return ModelResponse(
        output=list(response.output),
        usage=agents_compat.usage_from_response(response.usage)
        if response.usage
        else Usage(requests=1),
        response_id=response.id,
        request_id=getattr(response, "_request_id", None),
    )


def completed_event(response: ModelResponse) -> ResponseCompletedEvent:
    """A `response.completed` event carrying a recorded response."""
    usage = response.usage
    sdk_response = Response(
        id=response.response_id or "timestep-replayed",
        created_at=0,
        model="timestep-replay",
        object="response",
        output=list(response.output),
        tool_choice="auto",
        tools=[],
        top_p=None,
        parallel_tool_calls=True,
        status="completed",
        usage=ResponseUsage(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            total_tokens=usage.total_tokens,
            input_tokens_details=InputTokensDetails(
                cached_tokens=getattr(usage.input_tokens_details, "cached_tokens", 0) or 0,
                cache_write_tokens=getattr(usage.input_tokens_details, "cache_write_tokens", 0)
                or 0,
            ),
            output_tokens_details=OutputTokensDetails(
                reasoning_tokens=getattr(usage.output_tokens_details, "reasoning_tokens", 0) or 0
            ),
        ),
    )
    return ResponseCompletedEvent(
        type="response.completed", response=sdk_response, sequence_number=0
    )


async def stream_recorded(
    model: DurableModel, *args: Any, **kwargs: Any
) -> AsyncIterator[TResponseStreamEvent]:
    from .durable import (
        MODEL_STEP,
        _run_model_call,
        after_model_step,
        current_segment,
        with_model_retries,
    )

    segment = current_segment()
    if segment is None:
        async for passthrough in model.inner.stream_response(*args, **kwargs):
            yield passthrough
        return

    queue: asyncio.Queue[Any] = asyncio.Queue()

    writer = current_writer()
    live: list[ModelResponse] = []

    async def attempt() -> ModelResponse:
        final: ModelResponse | None = None
        async for streamed in model.inner.stream_response(*args, **kwargs):
            if writer is not None:
                writer.write_from_step(encode_event(streamed))
            queue.put_nowait(streamed)
            relayed.append(True)
            if isinstance(streamed, ResponseCompletedEvent):
                final = _response_from_event(streamed)
        if final is None:
            raise TimestepError("the model's stream ended without a response.completed event")
        return final

    async def call() -> ModelResponse:
        if writer is not None:
            writer.write_from_step({"type": MODEL_CALL_MARKER, "step": DBOS.step_id})
        try:
            # A call that failed after streaming part of its answer is not tried again here:
            # its reader has seen that part (the run fails; `retry` starts the call afresh and
            # the stream marks the part discarded).
            final = await with_model_retries(attempt, retryable=lambda: not relayed)
        finally:
            queue.put_nowait(_DONE)
        live.append(final)
        return final

    relayed: list[bool] = []
    # Reserving here, in the run's task, fixes the step id in run order.
    step = asyncio.ensure_future(
        DBOS.reserve_step().run_async(MODEL_STEP, _run_model_call, model.name, call)
    )
    relayed_completion = False
    while True:
        getter = asyncio.ensure_future(queue.get())
        done, _ = await asyncio.wait({getter, step}, return_when=asyncio.FIRST_COMPLETED)
        event: Any
        if getter in done:
            event = getter.result()
        else:
            getter.cancel()
            # The step finished first: relay what it left in the queue (nothing on replay).
            event = queue.get_nowait() if not queue.empty() else _DONE
        if event is _DONE:
            break
        relayed_completion |= isinstance(event, ResponseCompletedEvent)
        yield event
    record = await step
    response = live[0] if live else decode_model_response(record)
    if not relayed_completion:
        yield completed_event(response)
    after_model_step(segment, record, response, model.name)
