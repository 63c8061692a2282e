"""Sessions across the hand-over: move a session's items to the other SDK and check them.

A run handed over with a session needs its conversation on the receiving side: the test
converts the exporting side's session items to the receiving SDK's protocol (with the
adapter's item converters) and the receiving side resumes with a session holding them. The
receiving session must then hold every item of the conversation exactly once; what that
conversation is follows from the cell's script alone (see `expected_session`), not from
either SDK's output.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from agents import Agent

from timestep.state.typescript._graph import AgentGraph
from timestep.state.typescript._items import js_raw_to_py, py_raw_to_js


def py_items_to_js(items: list[Any], start: Agent[Any]) -> list[dict[str, Any]]:
    graph = AgentGraph.of(start)
    names: dict[str, str] = {}
    out = []
    for index, item in enumerate(items):
        if item.get("type") == "function_call":
            names[item["call_id"]] = graph.py_to_js_name(item["name"])
        out.append(py_raw_to_js(item, names, graph.py_to_js_name, f"session[{index}]"))
    return out


def js_items_to_py(items: list[Any], start: Agent[Any]) -> list[dict[str, Any]]:
    graph = AgentGraph.of(start)
    return [
        js_raw_to_py(item, graph.js_to_py_name, f"session[{index}]")
        for index, item in enumerate(items)
    ]


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content or [])


def summarize(item: dict[str, Any]) -> str:
    """One session item (either protocol) as `role:text`, `call:ID` or `output:ID`."""
    kind = item.get("type", "message")
    if kind == "message":
        return f"{item['role']}:{_text(item.get('content'))}"
    if kind == "function_call":
        return f"call:{item.get('call_id') or item.get('callId')}"
    if kind in ("function_call_output", "function_call_result"):
        return f"output:{item.get('call_id') or item.get('callId')}"
    return f"other:{kind}"


def expected_session(cell: dict[str, Any]) -> Counter[str]:
    """The whole conversation of the cell, from its script: input, then every turn's calls,
    their outputs (a rejected call has one too: the rejection message) and final text."""
    value = cell["input"]
    summary = (
        [f"user:{value}"]
        if isinstance(value, str)
        else [f"{message['role']}:{message['text']}" for message in value]
    )
    for turn in [*cell["source"], *cell["resume"]]:
        if "text" in turn:
            summary.append(f"assistant:{turn['text']}")
        for call in turn.get("calls", []):
            summary += [f"call:{call['id']}", f"output:{call['id']}"]
    return Counter(summary)


def session_problems(cell: dict[str, Any], items: list[dict[str, Any]]) -> list[str]:
    """Items held more than once, missing, or foreign to the conversation (empty when right)."""
    held = Counter(summarize(item) for item in items)
    expected = expected_session(cell)
    problems = [f"{key} held {count} times" for key, count in held.items() if count > 1]
    problems += [f"{key} missing" for key in expected if key not in held]
    problems += [f"{key} is not part of the conversation" for key in held if key not in expected]
    return problems
