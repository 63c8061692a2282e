"""Model calls as recorded DBOS steps, streamed or not.

Every model the SDK resolves for a segment is wrapped in a `DurableModel`: its response is
recorded as a step (with the model's name, for usage by model) and a replay returns the
recorded response without calling the model. A streamed call relays its events live while the
step runs; replayed, it returns the recorded response as one `response.completed` event, which
is all the SDK needs to continue the run.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from agents import Model, ModelProvider
from agents.items import ModelResponse, TResponseStreamEvent
from agents.usage import Usage
from dbos import DBOS, StepOptions
from openai.types.responses import ResponseCompletedEvent, ResponseTextDeltaEvent

from .. import config
from .._compat import agents as agents_compat
from ..errors import TimestepError
from ..models._responses import completed_event
from . import stopping
from .codecs import decode_model_response, encode_model_response, recorded_model_name
from .events import MODEL_CALL_MARKER, current_writer, encode_event
from .naming import MODEL_STEP_NAME
from .segment import Segment, current_segment, fire_hooks
from .transient import is_transient

logger = logging.getLogger("timestep")

MODEL_STEP: StepOptions = {"name": MODEL_STEP_NAME}


async def _run_model_call(
    model_name: str, call: Callable[[], Awaitable[ModelResponse]]
) -> dict[str, Any]:
    return encode_model_response(await call(), model_name)


async def with_model_retries(
    call: Callable[[], Awaitable[ModelResponse]], retryable: Callable[[], bool] = lambda: True
) -> ModelResponse:
    """`call`, tried again inside its step on transient provider failures while `retryable()`
    (`configure(model_retry=...)`); the last failure is raised as it is."""
    policy = config.settings().model_retry
    wait = policy.interval_seconds
    for attempt in range(1, policy.max_attempts + 1):
        try:
            return await call()
        except Exception as exc:
            if attempt == policy.max_attempts or not is_transient(exc) or not retryable():
                raise
            logger.warning(
                "timestep: model call failed (%s); attempt %d of %d in %.1f s",
                exc,
                attempt + 1,
                policy.max_attempts,
                wait,
            )
        await asyncio.sleep(wait)
        wait *= policy.backoff_rate
    raise AssertionError("unreachable")


# --- models ------------------------------------------------------------------------------


def _function_call_ids(response: ModelResponse) -> list[str]:
    ids = []
    for item in response.output:
        item_type = getattr(item, "type", None) or (
            item.get("type") if isinstance(item, dict) else None
        )
        if item_type == "function_call":
            call_id = getattr(item, "call_id", None) or (
                item.get("call_id") if isinstance(item, dict) else None
            )
            if call_id:
                ids.append(call_id)
    return ids


def name_of_model(model: Model, requested: str | None = None) -> str:
    """The name a model's usage is reported under: the name the run asked for, else the
    model's own `model` attribute (the SDK's OpenAI models have one), else its class."""
    if requested:
        return requested
    own = getattr(model, "model", None)
    return own if isinstance(own, str) and own else type(model).__name__


class DurableModel(Model):
    """A model whose every response is recorded as a DBOS step."""

    def __init__(self, inner: Model, name: str | None = None) -> None:
        self.inner = inner
        self.name = name or name_of_model(inner)

    async def get_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
        segment = current_segment()
        if segment is None:
            return await self.inner.get_response(*args, **kwargs)
        await stopping.gate()
        live: list[ModelResponse] = []

        async def call() -> ModelResponse:
            live.append(await with_model_retries(lambda: self.inner.get_response(*args, **kwargs)))
            return live[0]

        record = await DBOS.run_step_async(MODEL_STEP, _run_model_call, self.name, call)
        # Decode only on replay: a live call already has the response in hand.
        response = live[0] if live else decode_model_response(record)
        after_model_step(segment, record, response, self.name, replayed=not live)
        return response

    def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[TResponseStreamEvent]:
        return _stream_recorded(self, *args, **kwargs)

    async def close(self) -> None:
        await self.inner.close()


def after_model_step(
    segment: Segment, record: dict[str, Any], response: ModelResponse, name: str, replayed: bool
) -> None:
    """What follows every recorded model call, live or replayed."""
    segment.last_model_call_replayed = replayed
    segment.count_usage(recorded_model_name(record) or name, response.usage)
    segment.reserve_tool_slots(_function_call_ids(response))
    fire_hooks("model", response.response_id or "")


class DurableModelProvider(ModelProvider):
    """Wraps every model that `inner` resolves in a `DurableModel`."""

    def __init__(self, inner: ModelProvider) -> None:
        self.inner = inner

    def get_model(self, model_name: str | None) -> Model:
        model = self.inner.get_model(model_name)
        return DurableModel(model, name_of_model(model, model_name))

    async def aclose(self) -> None:
        await self.inner.aclose()


# --- streamed calls ----------------------------------------------------------------------

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


def _replayed_events(response: ModelResponse) -> list[dict[str, Any]]:
    """A recorded response as stream events: each output text as one delta, then the
    completed response (what a reader needs to show the call and go on)."""
    events: list[dict[str, Any]] = []
    for index, item in enumerate(response.output):
        if getattr(item, "type", None) != "message":
            continue
        for part_index, part in enumerate(getattr(item, "content", None) or []):
            text = getattr(part, "text", None)
            if getattr(part, "type", None) == "output_text" and text:
                delta = ResponseTextDeltaEvent(
                    type="response.output_text.delta",
                    delta=text,
                    item_id=getattr(item, "id", None) or "",
                    output_index=index,
                    content_index=part_index,
                    sequence_number=len(events),
                    logprobs=[],
                )
                events.append(encode_event(delta))
    events.append(encode_event(completed_event(response)))
    return events


async def _stream_recorded(
    model: DurableModel, *args: Any, **kwargs: Any
) -> AsyncIterator[TResponseStreamEvent]:
    segment = current_segment()
    if segment is None:
        async for passthrough in model.inner.stream_response(*args, **kwargs):
            yield passthrough
        return
    await stopping.gate()

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
            if writer is not None:
                writer.end_model_call(step_id)
        finally:
            queue.put_nowait(_DONE)
        live.append(final)
        return final

    relayed: list[bool] = []
    # Reserving here, in the run's task, fixes the step id in run order.
    reservation = DBOS.reserve_step()
    step_id = reservation.step_id
    step = asyncio.ensure_future(
        reservation.run_async(MODEL_STEP, _run_model_call, model.name, call)
    )
    # The step's end also ends the relay: a replayed step never runs `call`, which otherwise
    # queues _DONE after its last event. (One wait per event, no task or future per event.)
    step.add_done_callback(lambda _: queue.put_nowait(_DONE))
    relayed_completion = False
    event: Any
    while (event := await queue.get()) is not _DONE:
        relayed_completion |= isinstance(event, ResponseCompletedEvent)
        yield event
    record = await step
    response = live[0] if live else decode_model_response(record)
    if not live and writer is not None:
        await writer.replay_model_call(step_id, _replayed_events(response))
    if not relayed_completion:
        yield completed_event(response)
    after_model_step(segment, record, response, model.name, replayed=not live)
