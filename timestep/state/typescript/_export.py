"""Python RunState JSON (openai-agents 0.24.0, schema 1.21) -> @openai/agents 0.20.0 (1.22)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import _approvals as approvals
from . import _items as items
from ._errors import StateConversionError, refuse_set_fields
from ._graph import AgentGraph

JS_SCHEMA_VERSION = "1.22"

# Python state fields that describe features the adapter does not carry; a non-empty value is
# refused instead of being dropped (dropping them would change what the resumed run does).
_UNSUPPORTED_IF_SET = (
    "nested_history_owned_session_item_refs",
    "pending_session_write",
    "terminal_unrecoverable",
    "sandbox",
    "tool_input_guardrail_results",
    "tool_output_guardrail_results",
    "output_guardrail_results",
)
_UNSUPPORTED_ACTIONS = (
    "computer_actions",
    "custom_tool_actions",
    "local_shell_actions",
    "shell_actions",
    "apply_patch_actions",
    "mcp_approval_requests",
    "handoffs",
)


def convert(py: Mapping[str, Any], graph: AgentGraph) -> dict[str, Any]:
    refuse_set_fields(py, _UNSUPPORTED_IF_SET, suffix=" (value is set)")
    context = py.get("context") or {}
    if context.get("approvals"):
        raise StateConversionError(
            "context.approvals: non-function-tool approvals are not supported"
        )
    if context.get("hosted_mcp_approvals") or context.get("tool_input") is not None:
        raise StateConversionError(
            "context: hosted MCP approvals and agent-tool input are not supported"
        )
    if py.get("pending_input"):
        raise StateConversionError(
            "pending_input: queued input is not supported by the TypeScript adapter"
        )
    current_agent = graph.require_agent(
        (py.get("current_agent") or {}).get("name"), "current_agent"
    )

    ledger: Mapping[str, Any] = context.get("tool_invocations") or {}
    call_names: dict[str, str] = {}  # call id -> JS tool name, for outputs that omit the name
    py_calls: dict[str, dict[str, Any]] = {}  # call id -> Python raw function_call

    def raw(item: Mapping[str, Any], where: str) -> dict[str, Any]:
        if item.get("type") == "function_call":
            call_names[item["call_id"]] = graph.py_to_js_name(item["name"])
            py_calls.setdefault(item["call_id"], dict(item))
        return items.py_raw_to_js(item, call_names, graph.py_to_js_name, where)

    original = py.get("original_input")
    original_js: Any = (
        original
        if isinstance(original, str)
        else [raw(item, f"original_input[{i}]") for i, item in enumerate(original or [])]
    )
    responses = [
        _model_response(r, raw, f"model_responses[{i}]")
        for i, r in enumerate(py.get("model_responses") or [])
    ]
    rejected = _rejected_call_ids(context)

    def run_item(item: Mapping[str, Any], where: str) -> dict[str, Any]:
        return _run_item(item, raw, graph, ledger, rejected, where)

    generated = [
        run_item(item, f"generated_items[{i}]") for i, item in enumerate(py["generated_items"])
    ]
    js_approvals = _approvals(context, graph, py_calls, call_names, ledger)
    completed, evidence = _completed_invocations(generated, ledger)

    out: dict[str, Any] = {
        "$schemaVersion": JS_SCHEMA_VERSION,
        "currentTurn": py["current_turn"],
        "currentAgent": {"name": current_agent.name},
        "originalInput": original_js,
        "modelResponses": responses,
        "context": {
            "usage": items.py_usage_to_js(context.get("usage") or {}, aggregate=True),
            "approvals": {},
            **js_approvals,
            "context": _context_value(context),
        },
        "toolUseTracker": {
            graph.require_agent(name, "tool_use_tracker").name: [
                graph.py_to_js_name(tool) for tool in tools
            ]
            for name, tools in (py.get("tool_use_tracker") or {}).items()
        },
        "maxTurns": py.get("max_turns"),
        "inputGuardrailResults": [
            _guardrail_result(r) for r in py.get("input_guardrail_results") or []
        ],
        # Python only pauses after the first turn's input guardrails have run.
        "initialInputGuardrailsCompleted": py["current_turn"] > 0,
        "outputGuardrailResults": [],
        "toolInputGuardrailResults": [],
        "toolOutputGuardrailResults": [],
        "generatedItems": generated,
        "pendingAgentToolRuns": {},
        "pendingAgentToolRunAliases": {},
        "completedToolInvocations": completed,
        "completedToolInvocationEvidence": evidence,
        "ambiguousToolInvocationCallIds": [],
        "currentTurnPersistedItemCount": _js_persisted_count(py),
        "trace": _trace(py.get("trace")),
    }
    step: Any = py.get("current_step")
    interrupted = step is not None and step.get("type") == "next_step_interruption"
    # JS distinguishes "an agent run is active" (paused mid-turn) from a fresh start; Python
    # always writes true. At an interruption the agent run is active and the turn in progress.
    out["noActiveAgentRun"] = not interrupted
    if interrupted:
        out["currentTurnInProgress"] = True
        out["currentStep"] = {
            "type": "next_step_interruption",
            "data": {
                "interruptions": [
                    run_item(item, f"current_step.data.interruptions[{i}]")
                    for i, item in enumerate(step["data"].get("interruptions") or [])
                ]
            },
        }
    elif step is not None:
        raise StateConversionError(
            f"current_step: a state at step {step.get('type')!r} is not supported; the adapter "
            "converts states paused for approval"
        )
    if responses:
        out["lastModelResponse"] = responses[-1]
    ownership = py.get("current_response_generated_item_ownership")
    if ownership:
        out["currentResponseGeneratedItemOwnership"] = {
            "generatedItemStartIndex": ownership["start"],
            "generatedItemEndIndexExclusive": ownership["end"],
            "interruptionGeneratedItemIndexes": list(ownership.get("interruptions") or []),
            "toolOutputGuardrailResultStartIndex": 0,
        }
    processed = py.get("last_processed_response")
    if processed:
        out["lastProcessedResponse"] = _processed_response(
            processed, run_item, raw, graph, current_agent.name
        )
    for key, js_key in (
        ("conversation_id", "conversationId"),
        ("previous_response_id", "previousResponseId"),
    ):
        if py.get(key):
            out[js_key] = py[key]
    if py.get("reasoning_item_id_policy"):
        out["reasoningItemIdPolicy"] = py["reasoning_item_id_policy"]
    return out


def _js_persisted_count(py: Mapping[str, Any]) -> int:
    """The session write position, in the receiving SDK's terms.

    Python counts the items of the *current turn* already saved to the session (reset at each
    model turn; approval items are never saved and not counted). @openai/agents 0.20.0 reads
    `currentTurnPersistedItemCount` as a position in `generatedItems` and saves
    `generatedItems.slice(count)` on resume, so copying the Python number re-saves what the
    session already holds. A TypeScript state at the same point carries the index just past
    the last saved item (pending approval items included), which is what this returns.
    """
    count = py.get("current_turn_persisted_item_count") or 0
    if count == 0:
        return 0  # nothing saved this turn: no session, or a session written by neither SDK yet
    generated: list[Mapping[str, Any]] = py["generated_items"]
    ownership = py.get("current_response_generated_item_ownership")
    if not ownership:
        raise StateConversionError(
            "current_turn_persisted_item_count: items were saved to a session this turn but "
            "the state does not say where the turn starts (current_response_generated_item_"
            "ownership is missing), so the TypeScript session position cannot be computed"
        )
    position, saved = ownership["start"], 0
    while position < len(generated) and saved < count:
        if generated[position].get("type") != "tool_approval_item":
            saved += 1
        position += 1
    if saved < count:
        raise StateConversionError(
            f"current_turn_persisted_item_count: {count} items saved to the session this turn, "
            f"but the turn has only {saved} items that a session holds; the state is inconsistent"
        )
    while position < len(generated) and generated[position].get("type") == "tool_approval_item":
        position += 1
    return position


def _model_response(response: Mapping[str, Any], raw: Any, where: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "usage": items.py_usage_to_js(response.get("usage") or {}, aggregate=False),
        "output": [
            raw(item, f"{where}.output[{i}]") for i, item in enumerate(response.get("output") or [])
        ],
    }
    if response.get("response_id"):
        out["responseId"] = response["response_id"]
    if response.get("request_id"):
        out["requestId"] = response["request_id"]
    return out


def _context_value(context: Mapping[str, Any]) -> dict[str, Any]:
    value = context.get("context")
    meta = context.get("context_meta") or {}
    if meta.get("omitted"):
        raise StateConversionError(
            "context.context: the Python context could not be serialized (context_meta.omitted); "
            "pass a JSON-serializable context or a context_serializer"
        )
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise StateConversionError("context.context: JS requires an object context")
    return dict(value)


def _trace(trace: Any) -> dict[str, Any] | None:
    if not isinstance(trace, Mapping) or not trace.get("id"):
        return None
    # The trace id links both halves of the run in tracing; the tracing API key never travels.
    return {
        "object": "trace",
        "id": trace["id"],
        "workflow_name": trace.get("workflow_name") or "Agent workflow",
        "group_id": trace.get("group_id"),
        "metadata": dict(trace.get("metadata") or {}),
    }


def _guardrail_result(result: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "guardrail": {"type": "input", "name": result["guardrail"]["name"]},
        "output": {
            "tripwireTriggered": result["output"]["tripwireTriggered"],
            "outputInfo": result["output"].get("outputInfo"),
        },
    }


def _rejected_call_ids(context: Mapping[str, Any]) -> set[str]:
    ids: set[str] = set()
    for entry in context.get("function_tool_approvals") or []:
        rejected = entry["decision"].get("rejected")
        if isinstance(rejected, list):
            ids.update(rejected)
    return ids


def _run_item(
    item: Mapping[str, Any],
    raw: Any,
    graph: AgentGraph,
    ledger: Mapping[str, Any],
    rejected: set[str],
    where: str,
) -> dict[str, Any]:
    kind = item.get("type")
    if kind == "handoff_output_item":
        source = graph.require_agent(item["source_agent"]["name"], f"{where}.source_agent").name
        target = graph.require_agent(item["target_agent"]["name"], f"{where}.target_agent").name
        return {
            "type": kind,
            "rawItem": raw(item["raw_item"], f"{where}.raw_item"),
            "sourceAgent": {"name": source},
            "targetAgent": {"name": target},
        }
    agent = graph.require_agent((item.get("agent") or {}).get("name"), f"{where}.agent").name
    out: dict[str, Any] = {"type": kind, "rawItem": raw(item["raw_item"], f"{where}.raw_item")}
    if kind in ("message_output_item", "reasoning_item", "handoff_call_item"):
        pass
    elif kind == "tool_call_item":
        graph.require_tool(agent, item["raw_item"]["name"], where)
    elif kind == "tool_call_output_item":
        call_id = item["raw_item"]["call_id"]
        out["output"] = item.get("output")
        # JS records that a local tool really ran; a rejection also produces an output item.
        record = ledger.get(call_id) or {}
        if record.get("executed") and call_id not in rejected:
            out["executionStatus"] = "executed"
    elif kind == "tool_approval_item":
        tool_name = item.get("tool_name") or item["raw_item"]["name"]
        graph.require_tool(agent, tool_name, where)
        out["toolName"] = tool_name
        out["functionToolStateKey"] = approvals.bare_tool_key(tool_name)
    else:
        raise StateConversionError(
            f"{where}: run item type {kind!r} is not supported by the adapter"
        )
    out["agent"] = {"name": agent}
    return out


def _approvals(
    context: Mapping[str, Any],
    graph: AgentGraph,
    py_calls: Mapping[str, Mapping[str, Any]],
    call_names: Mapping[str, str],
    ledger: Mapping[str, Any],
) -> dict[str, Any]:
    by_agent: dict[str, dict[str, Any]] = {}
    invocations: dict[str, dict[str, str]] = {}
    for i, entry in enumerate(context.get("function_tool_approvals") or []):
        where = f"context.function_tool_approvals[{i}]"
        agent = graph.require_agent(entry["agent"]["name"], f"{where}.agent").name
        tool_name = entry["tool_key"]
        graph.require_tool(agent, tool_name, where)
        record = approvals.py_record_to_js(entry["decision"])
        for call_id in approvals.per_call_ids(record):
            call = py_calls.get(call_id)
            if call is None:
                raise StateConversionError(
                    f"{where}: decision for call {call_id!r} that is not in the history"
                )
            _check_ledger(call, ledger, where)
            js_call = items.py_raw_to_js(call, call_names, lambda n: n, where)
            fingerprint = approvals.js_fingerprint(approvals.bare_tool_key(tool_name), js_call)
            invocations.setdefault(agent, {})[call_id] = fingerprint
        by_agent.setdefault(agent, {})[approvals.bare_tool_key(tool_name)] = record
    out: dict[str, Any] = {
        "approvalInvocations": [
            {"agentIdentity": agent, "invocations": calls, "approvals": {}}
            for agent, calls in invocations.items()
        ]
    }
    if by_agent:
        out["functionApprovals"] = [
            {"agentIdentity": agent, "approvals": records} for agent, records in by_agent.items()
        ]
    return out


def _check_ledger(call: Mapping[str, Any], ledger: Mapping[str, Any], where: str) -> None:
    # Python honours a per-call decision only when its ledger binds the call id to this exact
    # invocation; carry the decision only under the same condition.
    record = ledger.get(call["call_id"])
    _, scope, fingerprint = approvals.python_invocation_identity(call, handoff=False)
    if (
        not record
        or record.get("fingerprint") != fingerprint
        or record.get("approval_scope") != scope
    ):
        raise StateConversionError(
            f"{where}: decision for call {call['call_id']!r} is not bound to that invocation in "
            "context.tool_invocations; Python itself would ask again, so it cannot be exported"
        )


def _completed_invocations(
    generated: list[dict[str, Any]], ledger: Mapping[str, Any]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Rebuild JS completion authority: every call whose output is in the history ran once."""
    open_calls: dict[tuple[str, str], tuple[int, str]] = {}
    completed: dict[str, dict[str, str]] = {}
    evidence: dict[str, dict[str, Any]] = {}
    for index, item in enumerate(generated):
        kind = item["type"]
        if kind in ("tool_call_item", "handoff_call_item"):
            call = item["rawItem"]
            tool = (
                f"handoff:{call['name']}"
                if kind == "handoff_call_item"
                else approvals.bare_tool_key(call["name"])
            )
            open_calls[(item["agent"]["name"], call["callId"])] = (
                index,
                approvals.js_fingerprint(tool, call),
            )
        elif kind in ("tool_call_output_item", "handoff_output_item"):
            owner: Any = item.get("sourceAgent") or item.get("agent")
            agent = owner["name"]
            call_id = item["rawItem"]["callId"]
            opened = open_calls.pop((agent, call_id), None)
            if opened is None:
                raise StateConversionError(
                    f"generated_items[{index}]: output for call {call_id!r} has no call"
                )
            call_index, fingerprint = opened
            completed.setdefault(agent, {})[call_id] = fingerprint
            evidence.setdefault(agent, {})[call_id] = {
                "fingerprint": fingerprint,
                "items": [{"generatedItemIndex": call_index}, {"generatedItemIndex": index}],
            }
    for call_id, record in ledger.items():
        done = any(call_id in calls for calls in completed.values())
        if record.get("executed") and not done:
            # Ran but its output was never recorded: the other side would run it a second time.
            raise StateConversionError(
                f"context.tool_invocations[{call_id!r}]: executed without a recorded output; "
                "this state cannot be handed over without re-running the tool"
            )
    return (
        [{"agentIdentity": a, "invocations": c} for a, c in completed.items()],
        [{"agentIdentity": a, "invocations": e} for a, e in evidence.items()],
    )


def _processed_response(
    processed: Mapping[str, Any], run_item: Any, raw: Any, graph: AgentGraph, agent: str
) -> dict[str, Any]:
    refuse_set_fields(processed, _UNSUPPORTED_ACTIONS, prefix="last_processed_response.")
    functions = []
    for i, entry in enumerate(processed.get("functions") or []):
        where = f"last_processed_response.functions[{i}]"
        tool_meta = entry.get("tool") or {}
        tool = graph.require_tool(agent, tool_meta.get("name"), where)
        functions.append(
            {
                "toolCall": raw(entry["tool_call"], f"{where}.tool_call"),
                "tool": {
                    "type": "function",
                    "name": tool.name,
                    "description": tool.description,
                    "parameters": tool.params_json_schema,
                    "strict": tool.strict_json_schema,
                },
                # Plain function tool: no MCP recipient (JS requires the field to be explicit).
                "mcpToolBinding": None,
            }
        )
    return {
        "newItems": [
            run_item(item, f"last_processed_response.new_items[{i}]")
            for i, item in enumerate(processed.get("new_items") or [])
        ],
        "toolsUsed": [graph.py_to_js_name(name) for name in processed.get("tools_used") or []],
        "handoffs": [],
        "functions": functions,
        "functionToolsNotFound": [],
        "computerActions": [],
        "shellActions": [],
        "applyPatchActions": [],
        "mcpApprovalRequests": [],
    }
