"""Approval records and invocation ledgers, rebuilt for the side that receives a state.

A decision only holds after a hand-over when the receiving SDK finds it bound to the exact
invocation it was made for; otherwise both SDKs treat it as absent and interrupt again (the
silent re-approval the adapter must prevent). Each SDK binds decisions differently:

- Python (schema 1.21): `function_tool_approvals` (agent, tool key, decision) plus a
  `tool_invocations` ledger keyed by call id holding SHA-256 digests of an approval scope and
  a semantic fingerprint, and executed/completed flags.
- JS (schema 1.22): `functionApprovals` keyed by a category-aware tool key (`["bare","name"]`),
  `approvalInvocations` binding each per-call decision to a canonical-JSON fingerprint, and
  `completedToolInvocations` + `completedToolInvocationEvidence` proving which calls already ran.

The Python digests come from the SDK's own (private) `agents._tool_invocation` helper, isolated
in `python_invocation_identity`. The JS fingerprint has no Python implementation to call, so
`js_fingerprint` re-implements `getToolInvocationFingerprint` of @openai/agents-core 0.20.0
(dist/toolInvocation.mjs); the interop tests and golden files pin it to the real SDK.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from ..._compat import agents as agents_compat
from ._errors import StateConversionError

_JSON_TOKEN_PREFIX = "\u0000openai-agents-json:"
_JS_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")


def bare_tool_key(name: str) -> str:
    """JS category-aware key of a plain (non-namespaced) function tool."""
    return _js_stringify(["bare", name])


def tool_name_from_key(key: str) -> str:
    """The plain tool name inside a JS function-tool key; refuses keys Python cannot express."""
    try:
        parts = json.loads(key)
    except ValueError:
        parts = None
    if (
        isinstance(parts, list)
        and len(parts) == 2
        and parts[0] == "bare"
        and isinstance(parts[1], str)
        and parts[1]
    ):
        return parts[1]
    raise StateConversionError(
        f"context.functionApprovals: tool key {key!r} is not a plain function tool; "
        "namespaced and deferred tools are not supported by the TypeScript adapter"
    )


# --- the JS canonical fingerprint -------------------------------------------------------------


def _canonical_js_number(token: str) -> str:
    # Mirrors canonicalizeJsonNumber: digits without leading/trailing zeros plus an exponent, so
    # 1, 1.0 and 10e-1 share one identity.
    lower = token.lower()
    mantissa, _, exponent_text = lower.partition("e")
    negative = mantissa.startswith("-")
    unsigned = mantissa[1:] if negative else mantissa
    integer, _, fraction = unsigned.partition(".")
    digits = f"{integer}{fraction}".lstrip("0")
    if not digits:
        return "-0" if negative else "0"
    exponent = int(exponent_text or "0") - len(fraction)
    while digits.endswith("0"):
        digits = digits[:-1]
        exponent += 1
    return f"{'-' if negative else ''}{digits}e{exponent}"


def _encode_strings(value: Any) -> Any:
    # encodeJsonNumbers also re-tags string tokens (keys included) that collide with the prefix.
    if isinstance(value, str):
        return (
            f"{_JSON_TOKEN_PREFIX}string:{value}" if value.startswith(_JSON_TOKEN_PREFIX) else value
        )
    if isinstance(value, list):
        return [_encode_strings(item) for item in value]
    if isinstance(value, dict):
        return {_encode_strings(key): _encode_strings(item) for key, item in value.items()}
    return value


def _normalize_json_string(arguments: str) -> dict[str, Any]:
    def number(token: str) -> str:
        return f"{_JSON_TOKEN_PREFIX}number:{_canonical_js_number(token)}"

    try:
        parsed = json.loads(arguments, parse_int=number, parse_float=number, parse_constant=_reject)
    except ValueError:
        return {"format": "raw", "value": arguments}
    return {"format": "json", "value": _encode_strings(parsed)}


def _reject(token: str) -> Any:
    raise ValueError(f"not JSON: {token}")


def _utf16_key(text: str) -> bytes:
    # JS compares object keys by UTF-16 code units, which differs from code points above U+FFFF.
    return text.encode("utf-16-be", "surrogatepass")


def _sorted_for_js(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _sorted_for_js(value[key]) for key in sorted(value, key=_utf16_key)}
    if isinstance(value, list):
        return [_sorted_for_js(item) for item in value]
    return value


def _js_stringify(value: Any) -> str:
    # JSON.stringify: no whitespace, non-ASCII kept, same control-character escapes as Python.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def js_fingerprint(tool_name: str, js_call: Mapping[str, Any]) -> str:
    """`getToolInvocationFingerprint(toolName, call)` for a JS `function_call` item."""
    caller = js_call.get("caller")
    canonical_caller: dict[str, Any] = (
        {"type": "program", "callerId": caller.get("callerId")}
        if isinstance(caller, Mapping) and caller.get("type") == "program"
        else {"type": "direct"}
    )
    payload = {
        "caller": canonical_caller,
        "type": js_call["type"],
        "toolName": tool_name,
        "payload": _normalize_json_string(js_call["arguments"]),
    }
    return _js_stringify(_sorted_for_js(payload))


# --- the Python ledger (SDK-private helper, isolated here) -------------------------------------


def python_invocation_identity(
    py_call: Mapping[str, Any], *, handoff: bool
) -> tuple[str, str, str]:
    """(invocation type, approval scope digest, fingerprint digest) exactly as Python records them.

    Depends on `agents._tool_invocation.tool_invocation_identity_and_scope` (private in
    openai-agents 0.24.0): the digests must be byte-identical to what the SDK computes on resume.
    """
    identity = agents_compat.tool_invocation_identity_and_scope(
        dict(py_call), invocation_role="handoff" if handoff else None
    )
    if identity is None:
        raise StateConversionError(
            f"tool call {py_call.get('call_id')!r} has no canonical invocation identity"
        )
    invocation_type, _, scope, fingerprint = identity
    return invocation_type, scope, fingerprint


def python_tool_scope(tool_name: str) -> str:
    """Approval scope Python stores as `sticky_scope` for an always-approve/reject of a tool."""
    probe = {"type": "function_call", "call_id": "scope", "name": tool_name, "arguments": "{}"}
    return python_invocation_identity(probe, handoff=False)[1]


# --- approval records ---------------------------------------------------------------------------


def py_record_to_js(record: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "approved": _decision_list(record.get("approved"), "approved"),
        "rejected": _decision_list(record.get("rejected"), "rejected"),
    }
    messages = record.get("rejection_messages")
    if messages:
        out["messages"] = dict(messages)
    sticky_message = record.get("sticky_rejection_message")
    if sticky_message is not None:
        out["stickyRejectMessage"] = sticky_message
    return out


def js_record_to_py(record: Mapping[str, Any], tool_name: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "approved": _decision_list(record.get("approved"), "approved"),
        "rejected": _decision_list(record.get("rejected"), "rejected"),
    }
    messages = record.get("messages")
    if messages:
        out["rejection_messages"] = dict(messages)
    if record.get("stickyRejectMessage") is not None:
        out["sticky_rejection_message"] = record["stickyRejectMessage"]
    if out["approved"] is True or out["rejected"] is True:
        # Python scopes a sticky decision to the tool's approval scope; without it the decision
        # is not applied to later calls.
        out["sticky_scope"] = python_tool_scope(tool_name)
    return out


def _decision_list(value: Any, field: str) -> bool | list[str]:
    if isinstance(value, bool):
        return value
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    if value is None:
        return []
    raise StateConversionError(
        f"approval record field {field!r} must be a boolean or a list of call ids"
    )


def per_call_ids(record: Mapping[str, Any]) -> set[str]:
    ids: set[str] = set()
    for field in ("approved", "rejected"):
        value = record.get(field)
        if isinstance(value, list):
            ids.update(value)
    return ids
