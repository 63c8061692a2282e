"""@openai/agents 0.20.0 RunState JSON (schema 1.22) -> Python (openai-agents 0.24.0, 1.21)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import _approvals as approvals
from . import _items as items
from ._errors import StateConversionError, refuse_set_fields
from ._graph import AgentGraph

PY_SCHEMA_VERSION = "1.21"

# JS fields for features the adapter does not carry: refused when set rather than dropped.
_UNSUPPORTED_IF_SET = (
    "pendingInput",
    "pendingAgentToolRuns",
    "pendingSessionHistoryTransaction",
    "pendingSessionWrite",
    "pendingLegacyCompactionSessionItems",
    "currentTurnDeferredSessionItemIndexes",
    "currentTurnBlockedSessionStartIndex",
    "currentTurnExecutedWithSessionBinding",
    "currentTurnSessionWriteCompactedItemCount",
    "ambiguousToolInvocationCallIds",
    "sandbox",
    "outputGuardrailResults",
    "toolInputGuardrailResults",
    "toolOutputGuardrailResults",
)
_UNSUPPORTED_ACTIONS = (
    "computerActions",
    "shellActions",
    "applyPatchActions",
    "mcpApprovalRequests",
    "functionToolsNotFound",
    "handoffs",
)
_FUNCTION_ORIGIN = {"type": "function"}


def convert(js: Mapping[str, Any], graph: AgentGraph) -> dict[str, Any]:
    refuse_set_fields(js, _UNSUPPORTED_IF_SET, suffix=" (value is set)")
    context = js["context"]
    for key in ("approvals", "hostedMcpApprovals", "legacyFunctionApprovals"):
        if context.get(key):
            raise StateConversionError(
                f"context.{key}: only agent-owned function approvals are supported"
            )
    if context.get("toolInput") is not None:
        raise StateConversionError("context.toolInput: agent-tool input is not supported")
    current_agent = graph.require_agent(js["currentAgent"].get("name"), "currentAgent").name

    py_calls: dict[str, dict[str, Any]] = {}  # call id -> Python raw function_call
    handoff_calls: set[str] = set()

    def raw(item: Mapping[str, Any], where: str) -> dict[str, Any]:
        converted = items.js_raw_to_py(item, graph.js_to_py_name, where)
        if converted["type"] == "function_call":
            py_calls.setdefault(converted["call_id"], converted)
        return converted

    def run_item(item: Mapping[str, Any], where: str) -> dict[str, Any]:
        converted = _run_item(item, raw, graph, where)
        if converted["type"] == "handoff_call_item":
            handoff_calls.add(converted["raw_item"]["call_id"])
        return converted

    original = js["originalInput"]
    original_py: Any = (
        original
        if isinstance(original, str)
        else [raw(item, f"originalInput[{i}]") for i, item in enumerate(original)]
    )
    responses = [
        _model_response(r, raw, f"modelResponses[{i}]") for i, r in enumerate(js["modelResponses"])
    ]
    generated = [
        run_item(item, f"generatedItems[{i}]") for i, item in enumerate(js["generatedItems"])
    ]
    completed = _completed_call_ids(js, generated)
    step: Any = js.get("currentStep")
    interrupted = step is not None and step.get("type") == "next_step_interruption"
    if step is not None and not interrupted:
        raise StateConversionError(
            f"currentStep: a state at step {step.get('type')!r} is not supported; the adapter "
            "converts states paused for approval"
        )
    interruptions = (
        [
            run_item(item, f"currentStep.data.interruptions[{i}]")
            for i, item in enumerate(step["data"].get("interruptions") or [])
        ]
        if interrupted
        else []
    )
    processed = js.get("lastProcessedResponse")
    processed_py = (
        _processed_response(processed, run_item, raw, graph, current_agent, interruptions)
        if processed
        else None
    )
    py: dict[str, Any] = {
        "$schemaVersion": PY_SCHEMA_VERSION,
        "current_turn": js["currentTurn"],
        "current_agent": {"name": current_agent},
        "original_input": original_py,
        "pending_input": [],
        "model_responses": responses,
        "context": {
            "usage": items.js_usage_to_py(context["usage"]),
            "approvals": {},
            "tool_invocations": _ledger(py_calls, handoff_calls, completed),
            "context": dict(context.get("context") or {}),
            "context_meta": {
                "original_type": "mapping",
                "serialized_via": "mapping",
                "requires_deserializer": False,
                "omitted": False,
            },
        },
        "tool_use_tracker": {
            graph.require_agent(name, "toolUseTracker").name: [
                graph.js_to_py_name(t) for t in tools
            ]
            for name, tools in js["toolUseTracker"].items()
        },
        "max_turns": js["maxTurns"],
        "no_active_agent_run": True,
        "input_guardrail_results": [
            _guardrail_result(r) for r in js.get("inputGuardrailResults") or []
        ],
        "output_guardrail_results": [],
        "tool_input_guardrail_results": [],
        "tool_output_guardrail_results": [],
        "conversation_id": js.get("conversationId"),
        "previous_response_id": js.get("previousResponseId"),
        "auto_previous_response_id": False,
        "generated_prompt_cache_key": None,
        "reasoning_item_id_policy": js.get("reasoningItemIdPolicy"),
        "nested_history_owned_session_item_refs": [],
        "generated_session_item_indexes": list(range(len(generated))),
        "generated_items": generated,
        "session_items": generated,
        "current_step": (
            {
                "type": "next_step_interruption",
                "data": {
                    "interruptions": interruptions,
                    "response_accepted": False,
                    "llm_end_hooks_started": True,
                },
            }
            if interrupted
            else None
        ),
        "last_model_response": responses[-1] if responses else None,
        "last_processed_response": processed_py,
        "current_turn_persisted_item_count": _py_persisted_count(js),
        "trace": _trace(js.get("trace")),
    }
    function_approvals = _function_approvals(context, graph, py_calls)
    if function_approvals:
        py["context"]["function_tool_approvals"] = function_approvals
    ownership = js.get("currentResponseGeneratedItemOwnership")
    if ownership:
        py["current_response_generated_item_ownership"] = {
            "start": ownership["generatedItemStartIndex"],
            "end": ownership["generatedItemEndIndexExclusive"],
            "interruptions": list(ownership["interruptionGeneratedItemIndexes"]),
        }
    return py


def _py_persisted_count(js: Mapping[str, Any]) -> int:
    """The session write position, in Python's terms (the inverse of the export's).

    @openai/agents 0.20.0 writes the position in `generatedItems` up to which the session holds
    the run's items; Python counts only the current turn's saved items (approval items are
    never saved). A position before the current turn would mean earlier turns are missing from
    the session, which Python cannot express: refused rather than silently re-saved or lost.
    """
    count = js.get("currentTurnPersistedItemCount") or 0
    if count == 0:
        return 0
    generated: list[Mapping[str, Any]] = js["generatedItems"]
    ownership = js.get("currentResponseGeneratedItemOwnership")
    if not ownership and _all_from_last_response(js):
        # A state the SDK migrated from before ownership was recorded (timestep 2026.0.x's
        # schema 1.0): when every generated item is the last response's, the turn starts at 0.
        ownership = {"generatedItemStartIndex": 0}
    if count > len(generated) or not ownership:
        raise StateConversionError(
            f"currentTurnPersistedItemCount: {count} is not a session position this adapter can "
            f"carry ({len(generated)} generated items, current turn ownership "
            f"{'missing' if not ownership else 'present'})"
        )
    start = ownership["generatedItemStartIndex"]
    if count < start:
        raise StateConversionError(
            f"currentTurnPersistedItemCount: the session holds the run's items only up to "
            f"{count}, before the current turn (which starts at {start}); Python assumes "
            "earlier turns are saved, so resuming would lose them from the session"
        )
    return sum(1 for item in generated[start:count] if item.get("type") != "tool_approval_item")


def _all_from_last_response(js: Mapping[str, Any]) -> bool:
    """True when `generatedItems` holds only the last model response's items (and approvals)."""
    produced = [i for i in js["generatedItems"] if i.get("type") != "tool_approval_item"]
    processed = js.get("lastProcessedResponse") or {}
    return len(produced) == len(processed.get("newItems") or [])


def _model_response(response: Mapping[str, Any], raw: Any, where: str) -> dict[str, Any]:
    return {
        "usage": items.js_usage_to_py(response["usage"]),
        "output": [raw(item, f"{where}.output[{i}]") for i, item in enumerate(response["output"])],
        "response_id": response.get("responseId"),
        "request_id": response.get("requestId"),
    }


def _trace(trace: Any) -> dict[str, Any] | None:
    if not isinstance(trace, Mapping) or not trace.get("id"):
        return None
    out = {"object": "trace", "id": trace["id"], "workflow_name": trace.get("workflow_name")}
    if trace.get("group_id"):
        out["group_id"] = trace["group_id"]
    if trace.get("metadata"):
        out["metadata"] = dict(trace["metadata"])
    return out


def _guardrail_result(result: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "guardrail": {"type": "input", "name": result["guardrail"]["name"]},
        "output": {
            "tripwireTriggered": result["output"]["tripwireTriggered"],
            "outputInfo": result["output"].get("outputInfo"),
        },
    }


def _run_item(item: Mapping[str, Any], raw: Any, graph: AgentGraph, where: str) -> dict[str, Any]:
    kind = item.get("type")
    converted: dict[str, Any] = {"type": kind, "raw_item": raw(item["rawItem"], f"{where}.rawItem")}
    if kind == "handoff_output_item":
        source = graph.require_agent(item["sourceAgent"]["name"], f"{where}.sourceAgent").name
        target = graph.require_agent(item["targetAgent"]["name"], f"{where}.targetAgent").name
        converted["agent"] = {"name": source}
        converted["source_agent"] = {"name": source}
        converted["target_agent"] = {"name": target}
        return converted
    agent = graph.require_agent(item["agent"]["name"], f"{where}.agent").name
    converted["agent"] = {"name": agent}
    if kind in ("message_output_item", "reasoning_item", "handoff_call_item"):
        return converted
    if kind == "tool_call_item":
        tool = graph.require_tool(agent, converted["raw_item"]["name"], where)
        converted.update(
            tool_name=tool.name, description=tool.description, tool_origin=_FUNCTION_ORIGIN
        )
        return converted
    if kind == "tool_call_output_item":
        converted.update(output=item.get("output"), tool_origin=_FUNCTION_ORIGIN)
        return converted
    if kind == "tool_approval_item":
        key = item.get("functionToolStateKey")
        tool_name = (
            approvals.tool_name_from_key(key)
            if key
            else item.get("toolName") or converted["raw_item"]["name"]
        )
        graph.require_tool(agent, tool_name, where)
        converted.update(
            tool_name=tool_name,
            tool_lookup_key={"kind": "bare", "name": tool_name},
            tool_origin=_FUNCTION_ORIGIN,
        )
        return converted
    raise StateConversionError(f"{where}: run item type {kind!r} is not supported by the adapter")


def _completed_call_ids(js: Mapping[str, Any], generated: list[dict[str, Any]]) -> set[str]:
    """Calls JS records as completed; each must also have its output in the history."""
    recorded = {
        call_id
        for entry in js.get("completedToolInvocations") or []
        for call_id in entry["invocations"]
    }
    outputs = {
        item["raw_item"]["call_id"]
        for item in generated
        if item["type"] in ("tool_call_output_item", "handoff_output_item")
    }
    if recorded != outputs:
        raise StateConversionError(
            "completedToolInvocations: completion records do not match the tool outputs in "
            f"generatedItems (records {sorted(recorded)}, outputs {sorted(outputs)})"
        )
    return recorded


def _ledger(
    py_calls: Mapping[str, Mapping[str, Any]], handoff_calls: set[str], completed: set[str]
) -> dict[str, dict[str, Any]]:
    """Python's canonical invocation ledger: one digest-bound record per call in the history."""
    ledger: dict[str, dict[str, Any]] = {}
    for call_id, call in py_calls.items():
        invocation_type, scope, fingerprint = approvals.python_invocation_identity(
            call, handoff=call_id in handoff_calls
        )
        done = call_id in completed
        ledger[call_id] = {
            "type": invocation_type,
            "approval_scope": scope,
            "fingerprint": fingerprint,
            "executed": done,
            "completed": done,
        }
    return ledger


def _function_approvals(
    context: Mapping[str, Any], graph: AgentGraph, py_calls: Mapping[str, Mapping[str, Any]]
) -> list[dict[str, Any]]:
    bindings = {
        entry["agentIdentity"]: entry["invocations"]
        for entry in context.get("approvalInvocations") or []
    }
    out: list[dict[str, Any]] = []
    for i, entry in enumerate(context.get("functionApprovals") or []):
        where = f"context.functionApprovals[{i}]"
        agent = graph.require_agent(entry["agentIdentity"], f"{where}.agentIdentity").name
        for key, record in entry["approvals"].items():
            tool_name = approvals.tool_name_from_key(key)
            graph.require_tool(agent, tool_name, where)
            for call_id in approvals.per_call_ids(record):
                call = py_calls.get(call_id)
                bound = bindings.get(agent, {}).get(call_id)
                # JS honours a per-call decision only for the exact invocation it was bound to.
                if call is None or bound is None:
                    raise StateConversionError(
                        f"{where}: decision for call {call_id!r} has no bound invocation"
                    )
                js_call = items.py_raw_to_js(call, {}, lambda n: n, where)
                if approvals.js_fingerprint(key, js_call) != bound:
                    raise StateConversionError(
                        f"{where}: decision for call {call_id!r} is bound to a different invocation"
                    )
            out.append(
                {
                    "agent": {"name": agent},
                    "tool_key": tool_name,
                    "decision": approvals.js_record_to_py(record, tool_name),
                }
            )
    return out


def _processed_response(
    processed: Mapping[str, Any],
    run_item: Any,
    raw: Any,
    graph: AgentGraph,
    agent: str,
    interruptions: list[dict[str, Any]],
) -> dict[str, Any]:
    refuse_set_fields(processed, _UNSUPPORTED_ACTIONS, prefix="lastProcessedResponse.")
    functions = []
    for i, entry in enumerate(processed.get("functions") or []):
        where = f"lastProcessedResponse.functions[{i}]"
        # "unknown": the SDK's migration of a state saved before bindings were recorded
        # (timestep 2026.0.x's schema 1.0); require_tool then finds a function tool of the agent.
        if entry.get("mcpToolBinding") not in (None, "unknown"):
            raise StateConversionError(f"{where}: MCP tool calls are not supported")
        tool = graph.require_tool(agent, (entry.get("tool") or {}).get("name"), where)
        functions.append(
            {
                "tool_call": raw(entry["toolCall"], f"{where}.toolCall"),
                "tool": {
                    "name": tool.name,
                    "lookupKey": {"kind": "bare", "name": tool.name},
                    "description": tool.description,
                    "paramsJsonSchema": tool.params_json_schema,
                },
            }
        )
    return {
        "new_items": [
            run_item(item, f"lastProcessedResponse.newItems[{i}]")
            for i, item in enumerate(processed.get("newItems") or [])
        ],
        "tools_used": [graph.js_to_py_name(name) for name in processed.get("toolsUsed") or []],
        "functions": functions,
        "computer_actions": [],
        "custom_tool_actions": [],
        "local_shell_actions": [],
        "shell_actions": [],
        "apply_patch_actions": [],
        "handoffs": [],
        "mcp_approval_requests": [],
        "interruptions": interruptions,
        "mcp_tool_bindings": {},
    }
