"""Ollama NDJSON stream lines -> Chat Completions chunks.

The SDK's `ChatCmplStreamHandler` already turns Chat Completions chunks into the Responses stream
events `Runner.run_streamed` consumes (text deltas, reasoning deltas, function calls and the final
`response.completed`), so the Ollama stream is adapted to that shape instead of re-implementing
the event protocol.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from typing import Any, Literal

from openai.types.chat import ChatCompletionChunk
from openai.types.chat.chat_completion_chunk import (
    Choice,
    ChoiceDelta,
    ChoiceDeltaToolCall,
    ChoiceDeltaToolCallFunction,
)
from openai.types.completion_usage import CompletionUsage

from ._ollama_messages import to_tool_calls

FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "function_call"]


def usage_counts(part: Mapping[str, Any]) -> tuple[int, int]:
    """(input, output) tokens of a final Ollama response object (0 when the server omits them)."""
    return int(part.get("prompt_eval_count") or 0), int(part.get("eval_count") or 0)


def _finish_reason(done_reason: Any, saw_tool_calls: bool) -> FinishReason:
    if saw_tool_calls:
        return "tool_calls"
    if done_reason == "length":
        return "length"
    return "stop"


async def to_chat_chunks(
    parts: AsyncIterator[dict[str, Any]], *, model: str
) -> AsyncIterator[ChatCompletionChunk]:
    """Adapt each Ollama line; tool calls arrive whole, so each becomes one complete delta."""
    created = int(time.time())
    next_tool_index = 0
    saw_tool_calls = False
    async for part in parts:
        message = part.get("message") or {}
        delta: dict[str, Any] = {}
        if message.get("thinking"):
            # `reasoning` is the field the SDK stream handler reads for raw reasoning text.
            delta["reasoning"] = message["thinking"]
        if message.get("content"):
            delta["content"] = message["content"]
        if message.get("tool_calls"):
            saw_tool_calls = True
            deltas = []
            for call in to_tool_calls(message["tool_calls"]):
                deltas.append(
                    ChoiceDeltaToolCall(
                        index=next_tool_index,
                        id=call.id,
                        type="function",
                        function=ChoiceDeltaToolCallFunction(
                            name=call.function.name, arguments=call.function.arguments
                        ),
                    )
                )
                next_tool_index += 1
            delta["tool_calls"] = deltas

        finish: FinishReason | None = None
        usage: CompletionUsage | None = None
        if part.get("done"):
            finish = _finish_reason(part.get("done_reason"), saw_tool_calls)
            prompt_tokens, completion_tokens = usage_counts(part)
            usage = CompletionUsage(
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                total_tokens=prompt_tokens + completion_tokens,
            )
        elif not delta:
            continue

        yield ChatCompletionChunk(
            # An empty id keeps the handler from stamping a response_id Ollama never issued,
            # matching the non-streaming path.
            id="",
            object="chat.completion.chunk",
            created=created,
            model=model,
            choices=[Choice(index=0, delta=ChoiceDelta(**delta), finish_reason=finish)],
            usage=usage,
        )
