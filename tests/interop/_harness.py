"""Python side of the interop tests: the agents, the scripted model and the runs.

Mirrors tests/interop/harness.mjs: the same agents (`Mailer` with send_email needing approval
and lookup_address; `Triage` handing off to `Mailer`), the same scripted turns and the same
usage numbers, so a run started on one side can be finished on the other and compared.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any

from agents import (
    Agent,
    ModelResponse,
    RunContextWrapper,
    Runner,
    RunState,
    SQLiteSession,
    Usage,
    function_tool,
)
from agents.models.interface import Model
from agents.tool_context import ToolContext
from openai.types.responses import (
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)
from openai.types.responses.response_usage import InputTokensDetails, OutputTokensDetails


@dataclasses.dataclass
class MailContext:
    """A custom (non-mapping) context object, as applications commonly use."""

    user_id: str
    tenant: str


def handoff_tool_name(agent_name: str) -> str:
    # Python's default handoff tool name is lower-cased (transfer_to_mailer).
    return f"transfer_to_{agent_name}".lower()


def usage_for(index: int) -> Usage:
    return Usage(
        requests=1,
        input_tokens=100 + index,
        output_tokens=10 + index,
        total_tokens=110 + 2 * index,
        input_tokens_details=InputTokensDetails(cached_tokens=1, cache_write_tokens=0),
        output_tokens_details=OutputTokensDetails(reasoning_tokens=2),
    )


def to_output(turn: dict[str, Any], index: int) -> list[Any]:
    if "text" in turn:
        return [
            ResponseOutputMessage(
                type="message",
                id=f"msg_{index}",
                role="assistant",
                status="completed",
                content=[ResponseOutputText(type="output_text", text=turn["text"], annotations=[])],
            )
        ]
    return [
        ResponseFunctionToolCall(
            type="function_call",
            id=f"fc_{call['id']}",
            call_id=call["id"],
            name=handoff_tool_name(call["handoff"]) if "handoff" in call else call["tool"],
            arguments=json.dumps(call.get("args", {})),
            status="completed",
        )
        for call in turn["calls"]
    ]


_NATIVE_INPUT_TYPES = {"message", "function_call", "function_call_output", "reasoning"}
_ALLOWED_KEYS = {
    "message": {"type", "role", "content", "id", "status"},
    "function_call": {"type", "call_id", "name", "arguments", "id", "status"},
    "function_call_output": {"type", "call_id", "output", "id", "status"},
    "reasoning": {"type", "id", "summary", "content", "encrypted_content", "status"},
}


def input_problems(model_input: str | list[Any]) -> list[str]:
    """What a Responses-API provider would reject in this input (empty when well-formed)."""
    if isinstance(model_input, str):
        return []
    problems: list[str] = []
    calls: dict[str, int] = {}
    outputs: dict[str, int] = {}
    for item in model_input:
        kind = item.get("type", "message")
        if kind not in _NATIVE_INPUT_TYPES:
            problems.append(f"foreign item type {kind}")
            continue
        extra = set(item) - _ALLOWED_KEYS[kind]
        if extra:
            problems.append(f"unexpected keys {sorted(extra)} in {kind}")
        if kind == "function_call":
            if not item.get("call_id") or not item.get("name"):
                problems.append(f"malformed function_call {item}")
            calls[item["call_id"]] = calls.get(item["call_id"], 0) + 1
        if kind == "function_call_output":
            if not item.get("call_id") or not isinstance(item.get("output"), str | list):
                problems.append(f"malformed function_call_output {item}")
            outputs[item["call_id"]] = outputs.get(item["call_id"], 0) + 1
    for call_id, count in calls.items():
        if count != 1:
            problems.append(f"call {call_id} appears {count} times")
        if outputs.get(call_id) != 1:
            problems.append(f"call {call_id} has {outputs.get(call_id, 0)} outputs")
    problems.extend(f"output for unknown call {c}" for c in outputs if c not in calls)
    return problems


class ScriptedModel(Model):
    """Returns scripted turns and records (and checks) every input it receives."""

    def __init__(self, turns: list[dict[str, Any]], usage_offset: int = 0) -> None:
        self.turns = list(turns)
        self.usage_offset = usage_offset
        self.calls = 0
        self.inputs: list[Any] = []
        self.problems: list[str] = []

    async def get_response(
        self,
        system_instructions: str | None,
        input: str | list[Any],
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
        recorded = copy.deepcopy(input)
        self.inputs.append(recorded)
        self.problems.extend(input_problems(recorded))
        index = self.usage_offset + self.calls
        self.calls += 1
        if not self.turns:
            raise AssertionError("scripted model ran out of turns")
        turn = self.turns.pop(0)
        return ModelResponse(
            output=to_output(turn, index), usage=usage_for(index), response_id=f"resp_{index}"
        )

    def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        raise NotImplementedError("the interop tests do not stream")


def _user_of(context: Any) -> str | None:
    if isinstance(context, MailContext):
        return context.user_id
    if isinstance(context, dict):
        return context.get("user_id")
    return None


def build_agents(model: Model, executions: list[dict[str, Any]]) -> dict[str, Agent[Any]]:
    @function_tool(needs_approval=True)
    def send_email(ctx: ToolContext[Any], to: str, body: str) -> str:
        """Send an email."""
        executions.append(
            {"tool": "send_email", "callId": ctx.tool_call_id, "to": to, "body": body}
        )
        user = _user_of(ctx.context)
        return f"sent to {to} as {user}" if user else f"sent to {to}"

    @function_tool
    def lookup_address(ctx: ToolContext[Any], name: str) -> str:
        """Look up the email address of a person."""
        executions.append({"tool": "lookup_address", "callId": ctx.tool_call_id, "name": name})
        return f"{name.lower()}@example.com"

    mailer: Agent[Any] = Agent(
        name="Mailer",
        instructions="You send emails for the user.",
        tools=[send_email, lookup_address],
        model=model,
    )
    triage: Agent[Any] = Agent(
        name="Triage",
        instructions="Route the request to the right agent.",
        handoffs=[mailer],
        model=model,
    )
    return {"Mailer": mailer, "Triage": triage}


def to_input(value: str | list[dict[str, str]]) -> str | list[Any]:
    if isinstance(value, str):
        return value
    items: list[Any] = []
    for message in value:
        if message["role"] == "assistant":
            items.append(
                {
                    "type": "message",
                    "role": "assistant",
                    "status": "completed",
                    "content": [
                        {"type": "output_text", "text": message["text"], "annotations": []}
                    ],
                }
            )
        else:
            items.append({"type": "message", "role": message["role"], "content": message["text"]})
    return items


def apply_decisions(state: RunState[Any, Any], decisions: list[dict[str, Any]]) -> None:
    for decision in decisions:
        pending = [
            item
            for item in state.get_interruptions()
            if getattr(item.raw_item, "call_id", None) == decision["call"]
        ]
        if not pending:
            raise AssertionError(f"no pending approval for {decision['call']}")
        if decision["approve"]:
            state.approve(pending[0], always_approve=bool(decision.get("always")))
        else:
            state.reject(
                pending[0],
                always_reject=bool(decision.get("always")),
                rejection_message=decision.get("message"),
            )


def usage_report(usage: Usage) -> dict[str, int]:
    return {
        "requests": usage.requests,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
        "cached_tokens": usage.input_tokens_details.cached_tokens,
        "reasoning_tokens": usage.output_tokens_details.reasoning_tokens,
    }


def make_context(cell: dict[str, Any]) -> Any:
    value = cell.get("context")
    if value is None:
        return None
    if cell.get("py_context") == "dataclass":
        return MailContext(**value)
    return dict(value)


def session_for(cell: dict[str, Any]) -> SQLiteSession | None:
    """A session cell keeps the conversation in an (in-memory) `SQLiteSession`."""
    if not cell.get("session"):
        return None
    return SQLiteSession(f"interop-{cell['name']}")


async def produce(cell: dict[str, Any]) -> tuple[RunState[Any, Any], dict[str, Any]]:
    """Run the cell's source script in Python until it pauses; apply the `before` decisions."""
    executions: list[dict[str, Any]] = []
    model = ScriptedModel(cell["source"])
    agents = build_agents(model, executions)
    session = session_for(cell)
    result = await Runner.run(
        agents[cell["start"]],
        to_input(cell["input"]),
        context=make_context(cell),
        max_turns=10,
        session=session,
    )
    assert result.interruptions, "source run finished without an interruption"
    state = result.to_state()
    apply_decisions(state, cell.get("before", []))
    report = {
        "executions": executions,
        "input_problems": model.problems,
        "usage": usage_report(state._context.usage if state._context else Usage()),
        "session_items": await session.get_items() if session else None,
    }
    if session:
        session.close()
    return state, report


async def resume(
    cell: dict[str, Any], load: Any, usage_offset: int, session_items: list[Any] | None = None
) -> dict[str, Any]:
    """Load a state with `load(agent)`, apply `after` decisions and run to completion.

    A session cell resumes with a session holding `session_items` (the conversation the
    exporting side's session held, converted to this SDK's protocol by the test).
    """
    executions: list[dict[str, Any]] = []
    model = ScriptedModel(cell["resume"], usage_offset)
    agents = build_agents(model, executions)
    start = agents[cell["start"]]
    state: RunState[Any, Any] = await load(start)
    assert state._context is not None
    loaded = {
        "current_turn": state._current_turn,
        "current_agent": state._current_agent.name if state._current_agent else None,
        "usage": usage_report(state._context.usage),
        "interruptions": [
            {"call": getattr(i.raw_item, "call_id", None), "tool": i.tool_name}
            for i in state.get_interruptions()
        ],
        "context": state._context.context,
    }
    apply_decisions(state, cell.get("after", []))
    session = session_for(cell)
    if session is not None:
        await session.add_items(list(session_items or []))
    result = await Runner.run(start, state, max_turns=10, session=session)
    final_state = result.to_state()
    assert final_state._context is not None
    final_session = await session.get_items() if session else None
    if session:
        session.close()
    return {
        "session_items": final_session,
        "ok": True,
        "final_output": None if result.interruptions else result.final_output,
        "last_agent": result.last_agent.name,
        "interruptions": [
            {"call": getattr(i.raw_item, "call_id", None), "tool": i.tool_name}
            for i in result.interruptions
        ],
        "executions": executions,
        "model_inputs": model.inputs,
        "input_problems": model.problems,
        "usage": usage_report(final_state._context.usage),
        "current_turn": final_state._current_turn,
        "loaded": loaded,
    }


def context_of(wrapper: RunContextWrapper[Any] | None) -> Any:
    return None if wrapper is None else wrapper.context
