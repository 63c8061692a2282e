"""SDK items <-> Ollama `/api/chat` messages and tools.

Inputs go through the SDK's own Chat Completions `Converter` first (it already knows every input
item shape, reasoning replay and handoff tools); this module only reshapes its output into
Ollama's dialect: tool-call arguments as JSON objects, `tool_name` + `tool_call_id` on tool
results, `thinking` instead of `reasoning`, images as base64 strings.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, cast

from agents.exceptions import ModelBehaviorError, UserError
from agents.handoffs import Handoff
from agents.items import TResponseInputItem
from agents.models.chatcmpl_converter import Converter
from agents.tool import Tool
from openai.types.chat import ChatCompletionMessage, ChatCompletionMessageFunctionToolCall
from openai.types.chat.chat_completion_message_function_tool_call import Function

OllamaMessage = dict[str, Any]


def new_call_id() -> str:
    """A call id for a tool call the server sent without one (same shape as Ollama's own)."""
    return f"call_{uuid.uuid4().hex[:24]}"


def _text_of(content: Any) -> str:
    """Plain text of a Chat Completions content value (str, None or a list of parts)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    texts = [
        part.get("text", "") or part.get("thinking", "")
        for part in content
        if isinstance(part, Mapping) and part.get("type") in ("text", "thinking")
    ]
    return "\n".join(t for t in texts if t)


def _user_message(content: Any) -> OllamaMessage:
    if isinstance(content, str):
        return {"role": "user", "content": content}
    texts: list[str] = []
    images: list[str] = []
    for part in content:
        kind = part.get("type")
        if kind == "text":
            texts.append(part["text"])
        elif kind == "image_url":
            url = str(part["image_url"]["url"])
            if not url.startswith("data:") or ";base64," not in url:
                raise UserError(
                    "Ollama accepts images only as inline data; pass the image as a "
                    "base64 data: URL instead of a link"
                )
            images.append(url.split(";base64,", 1)[1])
        else:
            raise UserError(f"Ollama models do not accept {kind!r} input parts")
    message: OllamaMessage = {"role": "user", "content": "\n".join(texts)}
    if images:
        message["images"] = images
    return message


def _arguments_object(raw: str, tool_name: str) -> dict[str, Any]:
    """Ollama wants tool-call arguments as a JSON object, the SDK stores them as a string."""
    try:
        value = json.loads(raw or "{}")
    except json.JSONDecodeError as error:
        raise UserError(
            f"the input holds a call to tool {tool_name!r} whose arguments are not JSON: {raw!r}"
        ) from error
    if not isinstance(value, dict):
        raise UserError(
            f"the input holds a call to tool {tool_name!r} whose arguments are not a JSON "
            f"object: {raw!r}"
        )
    return value


def to_ollama_messages(
    system_instructions: str | None,
    input: str | list[TResponseInputItem],
    *,
    model: str,
) -> list[OllamaMessage]:
    """The `messages` array for /api/chat.

    `model` must be the name this model stamps on its own output items, so that reasoning it
    produced earlier is replayed to it as `thinking` (and reasoning from other models is not).
    """
    chat = Converter.items_to_messages(input, model=model)
    messages: list[OllamaMessage] = []
    if system_instructions:
        messages.append({"role": "system", "content": system_instructions})
    tool_names: dict[str, str] = {}
    for raw in chat:
        msg = cast(Mapping[str, Any], raw)
        role = msg["role"]
        if role in ("system", "developer"):
            messages.append({"role": "system", "content": _text_of(msg.get("content"))})
        elif role == "user":
            messages.append(_user_message(msg.get("content")))
        elif role == "assistant":
            out: OllamaMessage = {"role": "assistant", "content": _text_of(msg.get("content"))}
            if msg.get("refusal"):
                out["content"] = "\n".join(filter(None, [out["content"], msg["refusal"]]))
            if msg.get("reasoning"):
                out["thinking"] = msg["reasoning"]
            calls = []
            for call in msg.get("tool_calls") or []:
                name = call["function"]["name"]
                tool_names[call["id"]] = name
                calls.append(
                    {
                        "id": call["id"],
                        "function": {
                            "name": name,
                            "arguments": _arguments_object(call["function"]["arguments"], name),
                        },
                    }
                )
            if calls:
                out["tool_calls"] = calls
            messages.append(out)
        elif role == "tool":
            call_id = msg["tool_call_id"]
            tool_msg: OllamaMessage = {
                "role": "tool",
                "content": _text_of(msg.get("content")),
                "tool_call_id": call_id,
            }
            # Ollama matches results to calls by name (tool_name); the id is kept as well
            # because newer servers and templates use it to pair several calls of one tool.
            if call_id in tool_names:
                tool_msg["tool_name"] = tool_names[call_id]
            messages.append(tool_msg)
        else:  # pragma: no cover - the converter emits no other roles
            raise UserError(f"cannot send a {role!r} message to Ollama")
    return messages


def to_ollama_tools(tools: Iterable[Tool], handoffs: Iterable[Handoff[Any, Any]]) -> list[Any]:
    """Tool definitions with their JSON schemas passed through whole ($defs, $ref, anyOf...)."""
    converted = [Converter.tool_to_openai(tool) for tool in tools]
    converted += [Converter.convert_handoff_tool(handoff) for handoff in handoffs]
    result: list[Any] = []
    for tool in converted:
        function = dict(tool["function"])
        # `strict` is an OpenAI-only flag; Ollama has no use for it.
        function.pop("strict", None)
        result.append({"type": "function", "function": function})
    return result


def _call_arguments(call_name: str, arguments: Any) -> str:
    """The arguments as the JSON-object string the SDK expects, or a ModelBehaviorError."""
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError as error:
            raise ModelBehaviorError(
                f"the model called tool {call_name!r} with arguments that are not valid JSON: "
                f"{arguments!r}"
            ) from error
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        raise ModelBehaviorError(
            f"the model called tool {call_name!r} with arguments that are not a JSON object: "
            f"{json.dumps(arguments)}"
        )
    return json.dumps(arguments, ensure_ascii=False)


def to_tool_calls(
    raw_calls: Iterable[Mapping[str, Any]],
) -> list[ChatCompletionMessageFunctionToolCall]:
    """Ollama tool calls as Chat Completions tool calls, keeping the server's ids."""
    calls = []
    for raw in raw_calls:
        function = raw.get("function") or {}
        name = function.get("name")
        if not name:
            raise ModelBehaviorError(f"the model returned a tool call without a name: {raw!r}")
        calls.append(
            ChatCompletionMessageFunctionToolCall(
                id=raw.get("id") or new_call_id(),
                type="function",
                function=Function(
                    name=name, arguments=_call_arguments(name, function.get("arguments"))
                ),
            )
        )
    return calls


def to_chat_message(message: Mapping[str, Any]) -> ChatCompletionMessage:
    """An Ollama response message as the Chat Completions message the SDK converter reads.

    `thinking` becomes the `reasoning` extra field, which the converter turns into a reasoning
    item marked for replay to the same model.
    """
    tool_calls = to_tool_calls(message.get("tool_calls") or [])
    extra: dict[str, Any] = {}
    if message.get("thinking"):
        extra["reasoning"] = message["thinking"]
    return ChatCompletionMessage(
        role="assistant",
        content=message.get("content") or None,
        tool_calls=cast(Any, tool_calls) or None,
        **extra,
    )
