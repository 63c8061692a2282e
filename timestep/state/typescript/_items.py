"""Conversion between the two item protocols and the two usage shapes.

Python (openai-agents 0.24.0) stores raw items in the OpenAI Responses wire shape
(`function_call_output` with `call_id`, snake_case); @openai/agents 0.20.0 stores its own
protocol shape (`function_call_result` with `callId`, `name`, `status` and an output object,
camelCase). Only the item types a plain function-tool/handoff agent produces are converted;
anything else is refused rather than passed through, because an unconverted item is exactly
what corrupts the other side's model input.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ._errors import StateConversionError

Renamer = Callable[[str], str]


def _fail(where: str, message: str) -> StateConversionError:
    return StateConversionError(f"{where}: {message}")


def _text_content(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    raise _fail(where, "system messages must have string content to be converted")


# --- raw items: Python (Responses wire shape) -> JS protocol ------------------------------------


def py_raw_to_js(
    item: Mapping[str, Any], names: Mapping[str, str], rename: Renamer, where: str
) -> dict[str, Any]:
    """One raw item; `names` maps call ids to (JS) tool names for outputs, which Python omits."""
    kind = item.get("type", "message" if "role" in item else None)
    if kind == "message":
        return _py_message_to_js(item, where)
    if kind == "function_call":
        out: dict[str, Any] = {
            "type": "function_call",
            "callId": _required_str(item, "call_id", where),
            "name": rename(_required_str(item, "name", where)),
            "arguments": _required_str(item, "arguments", where),
        }
        if item.get("id"):
            out["id"] = item["id"]
        if item.get("status"):
            out["status"] = item["status"]
        if item.get("namespace"):
            raise _fail(where, "namespaced function calls are not supported")
        return out
    if kind == "function_call_output":
        call_id = _required_str(item, "call_id", where)
        if call_id not in names:
            raise _fail(where, f"output for call {call_id!r} has no matching function_call")
        result: dict[str, Any] = {
            "type": "function_call_result",
            "name": names[call_id],
            "callId": call_id,
            "status": item.get("status") or "completed",
            "output": _py_output_to_js(item.get("output"), where),
        }
        if item.get("id"):
            result["id"] = item["id"]
        return result
    if kind == "reasoning":
        return _py_reasoning_to_js(item)
    raise _fail(where, f"item type {kind!r} cannot be converted to the TypeScript protocol")


def _input_message(item: Mapping[str, Any], where: str) -> dict[str, Any]:
    """A user or system message: the same shape in both protocols (text parts only)."""
    role, content = item.get("role"), item.get("content")
    if role == "system":
        return {"type": "message", "role": "system", "content": _text_content(content, where)}
    if isinstance(content, str):
        return {"type": "message", "role": "user", "content": content}
    parts = []
    for part in content or []:
        if part.get("type") != "input_text":
            raise _fail(where, f"user content part {part.get('type')!r} is not supported")
        parts.append({"type": "input_text", "text": part["text"]})
    return {"type": "message", "role": "user", "content": parts}


def _py_message_to_js(item: Mapping[str, Any], where: str) -> dict[str, Any]:
    role = item.get("role")
    content = item.get("content")
    if role in ("user", "system"):
        return _input_message(item, where)
    if role == "assistant":
        out: dict[str, Any] = {"type": "message", "role": "assistant"}
        if item.get("id"):
            out["id"] = item["id"]
        out["status"] = item.get("status") or "completed"
        parts = []
        for part in [content] if isinstance(content, str) else content or []:
            if isinstance(part, str):
                parts.append({"type": "output_text", "text": part})
            elif part.get("type") == "output_text":
                converted: dict[str, Any] = {"type": "output_text", "text": part["text"]}
                if part.get("annotations"):
                    converted["providerData"] = {"annotations": part["annotations"]}
                parts.append(converted)
            elif part.get("type") == "refusal":
                parts.append({"type": "refusal", "refusal": part["refusal"]})
            else:
                raise _fail(where, f"assistant content part {part.get('type')!r} is not supported")
        out["content"] = parts
        return out
    raise _fail(where, f"message role {role!r} has no TypeScript equivalent")


def _py_output_to_js(output: Any, where: str) -> Any:
    if isinstance(output, str):
        return {"type": "text", "text": output}
    if isinstance(output, list):
        parts = []
        for part in output:
            if not isinstance(part, Mapping) or part.get("type") != "input_text":
                raise _fail(where, "only text tool outputs are supported")
            parts.append({"type": "input_text", "text": part["text"]})
        return parts
    raise _fail(where, "tool output must be a string or a list of text parts")


def _py_reasoning_to_js(item: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "reasoning"}
    if item.get("id"):
        out["id"] = item["id"]
    out["content"] = [{"type": "input_text", "text": s["text"]} for s in item.get("summary") or []]
    raw = [{"type": "reasoning_text", "text": c["text"]} for c in item.get("content") or []]
    if raw:
        out["rawContent"] = raw
    if item.get("encrypted_content"):
        out["providerData"] = {"encryptedContent": item["encrypted_content"]}
    return out


# --- raw items: JS protocol -> Python (Responses wire shape) ------------------------------------


def js_raw_to_py(item: Mapping[str, Any], rename: Renamer, where: str) -> dict[str, Any]:
    kind = item.get("type", "message" if "role" in item else None)
    if kind == "message":
        return _js_message_to_py(item, where)
    if kind == "function_call":
        if item.get("namespace"):
            raise _fail(where, "namespaced function calls are not supported")
        out: dict[str, Any] = {
            "arguments": _required_str(item, "arguments", where),
            "call_id": _required_str(item, "callId", where),
            "name": rename(_required_str(item, "name", where)),
            "type": "function_call",
        }
        if item.get("id"):
            out["id"] = item["id"]
        if item.get("status"):
            out["status"] = item["status"]
        return out
    if kind == "function_call_result":
        return {
            "call_id": _required_str(item, "callId", where),
            "output": _js_output_to_py(item.get("output"), where),
            "type": "function_call_output",
        }
    if kind == "reasoning":
        out = {"type": "reasoning", "id": item.get("id") or "", "summary": []}
        out["summary"] = [
            {"type": "summary_text", "text": c["text"]} for c in item.get("content") or []
        ]
        if item.get("rawContent"):
            out["content"] = [
                {"type": "reasoning_text", "text": c["text"]} for c in item["rawContent"]
            ]
        encrypted = (item.get("providerData") or {}).get("encryptedContent")
        if encrypted:
            out["encrypted_content"] = encrypted
        return out
    raise _fail(where, f"item type {kind!r} cannot be converted to the Python protocol")


def _js_message_to_py(item: Mapping[str, Any], where: str) -> dict[str, Any]:
    role = item.get("role")
    content = item.get("content")
    if role in ("user", "system"):
        return _input_message(item, where)
    if role == "assistant":
        parts = []
        for part in content or []:
            if part.get("type") == "output_text":
                annotations = (part.get("providerData") or {}).get("annotations") or []
                parts.append(
                    {"annotations": annotations, "text": part["text"], "type": "output_text"}
                )
            elif part.get("type") == "refusal":
                parts.append({"refusal": part["refusal"], "type": "refusal"})
            else:
                raise _fail(where, f"assistant content part {part.get('type')!r} is not supported")
        out: dict[str, Any] = {"type": "message", "role": "assistant", "content": parts}
        out["id"] = item.get("id") or "__fake_id__"
        out["status"] = item.get("status") or "completed"
        return out
    raise _fail(where, f"message role {role!r} has no Python equivalent")


def _js_output_to_py(output: Any, where: str) -> Any:
    if isinstance(output, str):
        return output
    if isinstance(output, Mapping) and output.get("type") == "text":
        return output["text"]
    if isinstance(output, list) and all(
        isinstance(p, Mapping) and p.get("type") == "input_text" for p in output
    ):
        return [{"type": "input_text", "text": p["text"]} for p in output]
    raise _fail(where, "only text tool outputs are supported")


def _required_str(item: Mapping[str, Any], key: str, where: str) -> str:
    value = item.get(key)
    if not isinstance(value, str):
        raise _fail(where, f"field {key!r} is missing or not a string")
    return value


# --- usage --------------------------------------------------------------------------------------


def _numeric(details: Any) -> dict[str, int | float]:
    # JS details are records of numbers; Python adds nested nulls (cache_write_tokens_details).
    if not isinstance(details, Mapping):
        return {}
    return {
        k: v for k, v in details.items() if isinstance(v, int | float) and not isinstance(v, bool)
    }


def _sum_details(details: Any) -> dict[str, int | float]:
    total: dict[str, int | float] = {}
    for entry in details if isinstance(details, list) else [details]:
        for key, value in _numeric(entry).items():
            total[key] = total.get(key, 0) + value
    return total


def py_usage_to_js(usage: Mapping[str, Any], *, aggregate: bool) -> dict[str, Any]:
    """Python keeps one summed details object; JS keeps one per request (it only ever sums)."""
    out: dict[str, Any] = {
        "requests": usage.get("requests", 0),
        "inputTokens": usage.get("input_tokens", 0),
        "outputTokens": usage.get("output_tokens", 0),
        "totalTokens": usage.get("total_tokens", 0),
        "inputTokensDetails": [_sum_details(usage.get("input_tokens_details"))],
        "outputTokensDetails": [_sum_details(usage.get("output_tokens_details"))],
    }
    entries = usage.get("request_usage_entries") or []
    if entries:
        out["requestUsageEntries"] = [
            {
                "inputTokens": e.get("input_tokens", 0),
                "outputTokens": e.get("output_tokens", 0),
                "totalTokens": e.get("total_tokens", 0),
                "inputTokensDetails": _numeric(e.get("input_tokens_details")),
                "outputTokensDetails": _numeric(e.get("output_tokens_details")),
            }
            for e in entries
        ]
    if not aggregate and out["requests"] == 0:
        out["requests"] = 1
    return out


def js_usage_to_py(usage: Mapping[str, Any]) -> dict[str, Any]:
    input_details = {"cached_tokens": 0, "cache_write_tokens": 0}
    input_details.update(_sum_details(usage.get("inputTokensDetails")))  # type: ignore[arg-type]
    output_details = {"reasoning_tokens": 0}
    output_details.update(_sum_details(usage.get("outputTokensDetails")))  # type: ignore[arg-type]
    return {
        "requests": usage.get("requests", 0),
        "input_tokens": usage.get("inputTokens", 0),
        "input_tokens_details": [input_details],
        "output_tokens": usage.get("outputTokens", 0),
        "output_tokens_details": [output_details],
        "total_tokens": usage.get("totalTokens", 0),
        "request_usage_entries": [
            {
                "input_tokens": e.get("inputTokens", 0),
                "output_tokens": e.get("outputTokens", 0),
                "total_tokens": e.get("totalTokens", 0),
                "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0}
                | _numeric(e.get("inputTokensDetails")),
                "output_tokens_details": {"reasoning_tokens": 0}
                | _numeric(e.get("outputTokensDetails")),
            }
            for e in usage.get("requestUsageEntries") or []
        ],
    }
