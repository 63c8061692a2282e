"""Whether a run recorded under one agent graph can go on under another: a pure function of JSON.

A run's version is its agent graph's fingerprint (`registry.fingerprint`), plus the label the
process gave at registration (`register_agent(agent, version=...)`). New code may continue a
run when everything the run has done, and every call it waits on, still means the same there:

- the starting agent and the declared secret context fields are unchanged;
- every agent named in the run's history (its RunState items) still exists;
- every function tool called in the history or pending still exists on the agent that called
  it, and every recorded argument object still validates against the tool's new JSON schema.

Instructions, models, tool bodies, descriptions, added tools and added agents change nothing
recorded, so they are compatible. Tools the graph does not describe with a schema (MCP servers'
tools are listed live, hosted tools have no parameters here) are not checked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..state.run_record import PendingApproval


@dataclass(frozen=True)
class ToolCall:
    """A function-tool call the run made (or waits to make)."""

    agent: str
    tool: str
    arguments: str | None
    """The arguments as the model wrote them (JSON text)."""
    call_id: str
    pending: bool
    """Still waiting for its decision (else: in the run's history)."""

    @property
    def where(self) -> str:
        if self.pending:
            return f"pending call {self.call_id}"
        return f"call {self.call_id} in the history"


def history_calls(state: dict[str, Any] | None) -> tuple[set[str], list[ToolCall]]:
    """The agents named and the function-tool calls made in a stored RunState's items."""
    agents: set[str] = set()
    calls: list[ToolCall] = []
    if not state:
        return agents, calls
    current = state.get("current_agent")
    if isinstance(current, dict) and isinstance(current.get("name"), str):
        agents.add(current["name"])
    for item in state.get("generated_items") or []:
        if not isinstance(item, dict):
            continue
        for key in ("agent", "source_agent", "target_agent"):
            named = item.get(key)
            if isinstance(named, dict) and isinstance(named.get("name"), str):
                agents.add(named["name"])
        raw = item.get("raw_item")
        if item.get("type") == "tool_call_item" and isinstance(raw, dict):
            if raw.get("type") == "function_call" and isinstance(item.get("agent"), dict):
                calls.append(
                    ToolCall(
                        agent=str(item["agent"].get("name")),
                        tool=str(raw.get("name")),
                        arguments=raw.get("arguments"),
                        call_id=str(raw.get("call_id")),
                        pending=False,
                    )
                )
    return agents, calls


def pending_calls(pending: list[PendingApproval]) -> list[ToolCall]:
    return [
        ToolCall(p["agent"], p["tool_name"], p["arguments"], p["call_id"], pending=True)
        for p in pending
    ]


def _as_invoked(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` as the tool applies it to arguments it is called with.

    The SDK's strict schemas list every parameter as required (the model must send them
    all), but the tool parses its arguments with its pydantic model, which fills a parameter
    with a default (`rush: bool = False`, kept as "default") or an optional one
    (`note: str | None = None`, which admits null): a recorded call without such a parameter
    still runs, so it is not required here.
    """
    properties = schema.get("properties")
    required = schema.get("required")
    if not isinstance(properties, dict) or not isinstance(required, list):
        return schema

    def fillable(name: str) -> bool:
        spec = properties.get(name)
        if not isinstance(spec, dict):
            return False
        variants = spec.get("anyOf") or [spec]
        nullable = any(isinstance(v, dict) and v.get("type") == "null" for v in variants)
        return "default" in spec or nullable

    return {**schema, "required": [name for name in required if not fillable(name)]}


def _validator(schema: dict[str, Any]) -> Any:
    import jsonschema

    return jsonschema.Draft202012Validator(_as_invoked(schema))


def _schema_problems(validator: Any, call: ToolCall) -> list[str]:
    """Why `call`'s recorded arguments fail the tool's new schema (empty when they validate)."""
    try:
        arguments = json.loads(call.arguments or "{}")
    except json.JSONDecodeError:
        return []  # never valid JSON: the SDK gave the model an error, nothing new fails
    problems = []
    for error in sorted(validator.iter_errors(arguments), key=lambda e: list(e.path)):
        if error.validator == "required" and isinstance(error.instance, dict):
            missing = [name for name in error.validator_value if name not in error.instance]
            for name in missing:
                problems.append(
                    f"argument {name!r} of {call.where} to {call.tool!r} is now required and "
                    "the recorded call has none"
                )
            continue
        name = ".".join(str(part) for part in error.path) or "(the whole object)"
        problems.append(
            f"argument {name!r} of {call.where} to {call.tool!r} fails the new schema: "
            f"{error.message}"
        )
    return problems


def incompatibilities(
    recorded: dict[str, Any],
    new: dict[str, Any],
    state: dict[str, Any] | None,
    pending: list[PendingApproval],
) -> list[str]:
    """Why a run recorded under graph `recorded`, with RunState `state` and pending calls
    `pending`, cannot go on under graph `new` (empty: it can). Graphs are
    `registry.describe_graph` descriptions."""
    problems: list[str] = []
    if recorded.get("start") != new.get("start"):
        problems.append(
            f"the run starts with agent {recorded.get('start')!r}, this graph with "
            f"{new.get('start')!r}"
        )
    old_secrets = (recorded.get("context") or {}).get("secret_fields", [])
    new_secrets = (new.get("context") or {}).get("secret_fields", [])
    if old_secrets != new_secrets:
        problems.append(
            f"the run's context has secret fields {old_secrets}, this graph declares {new_secrets}"
        )
    old_agents: dict[str, Any] = recorded.get("agents", {})
    new_agents: dict[str, Any] = new.get("agents", {})
    named, calls = history_calls(state)
    for name in sorted(named - set(new_agents)):
        problems.append(f"agent {name!r}, in the run's history, no longer exists")
    validators: dict[tuple[str, str], Any] = {}  # one per tool, however often it was called
    waiting = pending_calls(pending)
    waiting_ids = {call.call_id for call in waiting}
    for call in [c for c in calls if c.call_id not in waiting_ids] + waiting:
        old_tool = old_agents.get(call.agent, {}).get("tools", {}).get(call.tool)
        if old_tool is None or call.agent not in new_agents:
            continue  # not described (MCP, a tool of an inner agent), or reported above
        new_tool = new_agents[call.agent]["tools"].get(call.tool)
        if new_tool is None:
            problems.append(
                f"tool {call.tool!r} of agent {call.agent!r} no longer exists ({call.where})"
            )
        elif new_tool.get("type") != old_tool.get("type"):
            problems.append(
                f"tool {call.tool!r} of agent {call.agent!r} is now a {new_tool.get('type')}, "
                f"not a {old_tool.get('type')} ({call.where})"
            )
        elif isinstance(new_tool.get("parameters"), dict):
            key = (call.agent, call.tool)
            if key not in validators:
                validators[key] = _validator(new_tool["parameters"])
            problems.extend(_schema_problems(validators[key], call))
    return problems
