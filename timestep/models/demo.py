"""`DemoModel`: an offline, scripted stand-in for a language model, for trying Timestep out.

It needs no API key, no server and no network. It is not a language model: it reads the
user's message and follows a fixed script with the tools the agent has, so that a newcomer
sees a real durable run (recorded model calls, tool calls, approvals, crash recovery) work:

- with tools named `multiply` and `add`: "What is 12 * 7, then add 5?" calls `multiply(12, 7)`,
  then `add(84, 5)`, one tool call per model turn, then answers with the result;
- with a tool named `send_email`: "Email bob@example.com that the build is green" calls
  `send_email(to, subject, body)` and then reports the tool's answer (or its rejection);
- anything else: an answer that says what the demo model can do.

Every answer starts with `[demo model]`. Its replies depend only on its input, so a replayed
run asks the same things. `TIMESTEP_DEMO_MODEL_SECONDS` (default 0.3) is how long each call
"thinks", so that streaming and a spinner can be seen.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator
from typing import Any

from agents import Model, ModelResponse, Usage
from openai.types.responses import (
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)

LABEL = "[demo model]"
DELAY_ENV = "TIMESTEP_DEMO_MODEL_SECONDS"

_NUMBER = r"(-?\d+(?:\.\d+)?)"
_FIRST = re.compile(_NUMBER + r"\s*(\*|x|×|times|\+|plus)\s*" + _NUMBER, re.IGNORECASE)
_LATER = re.compile(
    r"\b(add|plus|times|multiply(?:\s+it)?\s+by|multiplied\s+by)\s+" + _NUMBER, re.IGNORECASE
)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


def _fmt(value: float) -> str:
    return f"{value:g}"


def _text_of(item: Any) -> str:
    content = item.get("content") if isinstance(item, dict) else getattr(item, "content", None)
    if isinstance(content, str):
        return content
    parts = []
    for part in content or []:
        text = part.get("text") if isinstance(part, dict) else getattr(part, "text", None)
        if isinstance(text, str):
            parts.append(text)
    return " ".join(parts)


def _user_text(input_items: Any) -> str:
    if isinstance(input_items, str):
        return input_items
    for item in input_items:
        role = item.get("role") if isinstance(item, dict) else getattr(item, "role", None)
        if role == "user":
            return _text_of(item)
    return ""


def _tool_outputs(input_items: Any) -> list[str]:
    if isinstance(input_items, str):
        return []
    outputs = []
    for item in input_items:
        kind = item.get("type") if isinstance(item, dict) else getattr(item, "type", None)
        if kind == "function_call_output":
            output = item.get("output") if isinstance(item, dict) else item.output
            outputs.append(output if isinstance(output, str) else str(output))
    return outputs


def _arithmetic_plan(text: str) -> list[tuple[str, float, float]]:
    """(tool, a, b) steps; after the first, `a` is the previous step's result."""
    first = _FIRST.search(text)
    if first is None:
        return []
    operator = first.group(2).lower()
    tool = "add" if operator in ("+", "plus") else "multiply"
    plan: list[tuple[str, float, float]] = [(tool, float(first.group(1)), float(first.group(3)))]
    for later in _LATER.finditer(text[first.end() :]):
        word = later.group(1).lower()
        plan.append(("add" if word in ("add", "plus") else "multiply", 0.0, float(later.group(2))))
    return plan


class DemoModel(Model):
    """The offline scripted model of `timestep.demo` (see the module docstring)."""

    def __init__(self, delay_seconds: float | None = None) -> None:
        self.delay_seconds = delay_seconds

    def _delay(self) -> float:
        if self.delay_seconds is not None:
            return self.delay_seconds
        try:
            return max(0.0, float(os.environ.get(DELAY_ENV, "0.3")))
        except ValueError:
            return 0.3

    def _reply(self, input_items: Any, tools: list[Any]) -> tuple[list[Any], str | None]:
        """(output items, final text or None when the reply is a tool call)."""
        text = _user_text(input_items)
        outputs = _tool_outputs(input_items)
        names = {getattr(tool, "name", "") for tool in tools}
        turn = len(outputs)
        if {"multiply", "add"} <= names and (plan := _arithmetic_plan(text)):
            if turn < len(plan):
                tool, a, b = plan[turn]
                if turn > 0:
                    a = float(outputs[turn - 1])
                arguments: dict[str, Any] = {"a": a, "b": b}
                return [_call(tool, arguments, f"call_demo_{turn}")], None
            steps = []
            for index, (tool, a, b) in enumerate(plan):
                left = a if index == 0 else float(outputs[index - 1])
                sign = "+" if tool == "add" else "*"
                steps.append(f"{_fmt(left)} {sign} {_fmt(b)} = {_fmt(float(outputs[index]))}")
            answer = _fmt(float(outputs[-1]))
            final = f"{LABEL} " + ", then ".join(steps) + f". The answer is {answer}."
            return [_message(final)], final
        if "send_email" in names and (to := _EMAIL.search(text)):
            if turn == 0:
                body = text.split(" that ", 1)[1] if " that " in text else text
                body = body.strip().rstrip(".") + "."
                subject = " ".join(body.split()[:6]).rstrip(".")
                arguments = {"to": to.group(0), "subject": subject, "body": body}
                return [_call("send_email", arguments, "call_demo_0")], None
            final = f"{LABEL} send_email answered: {outputs[0]}"
            return [_message(final)], final
        final = (
            f"{LABEL} I am Timestep's offline demo model, not a language model: I can do "
            'arithmetic with the multiply and add tools ("What is 12 * 7, then add 5?") or '
            'send an email with send_email ("Email bob@example.com that the build is green").'
        )
        return [_message(final)], final

    async def get_response(
        self,
        system_instructions: str | None,
        input: Any,
        model_settings: Any,
        tools: list[Any],
        output_schema: Any,
        handoffs: list[Any],
        tracing: Any,
        *,
        previous_response_id: str | None = None,
        conversation_id: str | None = None,
        prompt: Any = None,
    ) -> ModelResponse:
        await asyncio.sleep(self._delay())
        output, _final = self._reply(input, tools)
        words = len(_user_text(input).split()) + sum(len(o.split()) for o in _tool_outputs(input))
        return ModelResponse(
            output=output,
            usage=Usage(requests=1, input_tokens=words, output_tokens=8, total_tokens=words + 8),
            response_id=None,
        )

    async def stream_response(  # type: ignore[override]
        self,
        system_instructions: str | None,
        input: Any,
        model_settings: Any,
        tools: list[Any],
        output_schema: Any,
        handoffs: list[Any],
        tracing: Any,
        *,
        previous_response_id: str | None = None,
        conversation_id: str | None = None,
        prompt: Any = None,
    ) -> AsyncIterator[Any]:
        from ._responses import completed_event, word_delta

        response = await self.get_response(
            system_instructions, input, model_settings, tools, output_schema, handoffs, tracing
        )
        _output, final = self._reply(input, tools)
        if final is not None:
            words = final.split(" ")
            for index in range(len(words)):
                await asyncio.sleep(self._delay() / 10)
                yield word_delta(words, index, "demo-message")
        yield completed_event(response)


def _call(name: str, arguments: dict[str, Any], call_id: str) -> ResponseFunctionToolCall:
    import json

    return ResponseFunctionToolCall(
        type="function_call",
        name=name,
        arguments=json.dumps(arguments),
        call_id=call_id,
        id=f"fc_{call_id}",
        status="completed",
    )


def _message(text: str) -> ResponseOutputMessage:
    return ResponseOutputMessage(
        id="msg_demo",
        type="message",
        role="assistant",
        status="completed",
        content=[ResponseOutputText(type="output_text", text=text, annotations=[], logprobs=[])],
    )
