"""Responses API events built from the SDK's `ModelResponse` (for models that stream)."""

from __future__ import annotations

from agents.items import ModelResponse
from openai.types.responses import Response, ResponseCompletedEvent, ResponseTextDeltaEvent
from openai.types.responses.response_usage import (
    InputTokensDetails,
    OutputTokensDetails,
    ResponseUsage,
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


def word_delta(words: list[str], index: int, item_id: str) -> ResponseTextDeltaEvent:
    """The delta event of word `index` of an answer streamed one word at a time."""
    return ResponseTextDeltaEvent(
        type="response.output_text.delta",
        delta=words[index] if index == 0 else " " + words[index],
        item_id=item_id,
        output_index=0,
        content_index=0,
        sequence_number=index,
        logprobs=[],
    )
