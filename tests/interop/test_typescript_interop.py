"""The interop matrix against the real @openai/agents 0.20.0 under Node, both directions.

Python -> TS: Python runs each cell until it pauses, `to_typescript_json` converts the state,
and one Node process resumes every cell with `RunState.fromString` + `run(agent, state)`.
TS -> Python: one Node process produces every cell's paused state, `from_typescript_json`
loads it and Python's `Runner.run` finishes it.

Each cell checks, from its script alone (independently of the golden files): the receiving
side loads the pending approvals the script leaves, resumes to completion with the expected
final output and last agent, runs approved tools exactly once and rejected ones never, its
first model call sees exactly the conversation so far and every model input is well-formed
(checked by the scripted models of tests/interop/_harness.py and harness.mjs), and usage and the
turn count were carried over. In session cells the receiving session ends holding each item of
the conversation exactly once. Golden files pin the converted documents.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from timestep.state.typescript import from_typescript_json, to_typescript_json

from . import _harness, _sessions
from ._scenarios import CELLS
from .conftest import NodeProject  # noqa: TID252

GOLDEN = Path(__file__).resolve().parent / "golden"
CELL_NAMES = [cell["name"] for cell in CELLS]


def expected_usage(model_calls: int) -> dict[str, int]:
    # Both harnesses give model call k: 100+k input, 10+k output, 1 cached, 2 reasoning tokens.
    calls = range(model_calls)
    return {
        "requests": model_calls,
        "input_tokens": sum(100 + k for k in calls),
        "output_tokens": sum(10 + k for k in calls),
        "total_tokens": sum(110 + 2 * k for k in calls),
        "cached_tokens": model_calls,
        "reasoning_tokens": 2 * model_calls,
    }


def pending_of(cell: dict[str, Any]) -> list[str]:
    """The approvals the script leaves pending: the send_email calls of the last source turn."""
    return [c["id"] for c in cell["source"][-1]["calls"] if c.get("tool") == "send_email"]


def conversation_before_resume(cell: dict[str, Any]) -> Counter[str]:
    """What the first model call after the hand-over must see: the input, every source call and
    its output (the decided calls of the last source turn included), nothing else."""
    return _sessions.expected_session({**cell, "resume": []})


def check_source(cell: dict[str, Any], report: dict[str, Any]) -> None:
    """The exporting side ran the tools that need no approval, once each, and nothing else."""
    assert report["input_problems"] == []
    free = [c["id"] for turn in cell["source"] for c in turn["calls"] if c.get("tool")]
    free = [call for call in free if call not in pending_of(cell)]
    assert [e["callId"] for e in report["executions"]] == free


def check_resumed(cell: dict[str, Any], report: dict[str, Any]) -> None:
    assert report["ok"], report.get("error")
    expect = cell["expect"]
    loaded = sorted(i["call"] for i in report["loaded"]["interruptions"])
    assert loaded == sorted(pending_of(cell)), "the pending approvals crossed the hand-over"
    assert report["interruptions"] == [], "the receiving side asked for approval again"
    assert report["final_output"] == expect["final"]
    assert report["last_agent"] == expect["last_agent"]
    first_input = report["model_inputs"][0]
    assert Counter(map(_sessions.summarize, first_input)) == conversation_before_resume(cell)
    ran = [e["callId"] for e in report["executions"] if e["tool"] == "send_email"]
    assert ran == expect["executed"], "approved tools run exactly once, rejected ones never"
    assert not [e for e in report["executions"] if e["tool"] == "lookup_address"], (
        "a tool completed before the hand-over ran again"
    )
    assert report["input_problems"] == []
    assert report["loaded"]["current_turn"] == len(cell["source"])
    assert report["loaded"]["usage"] == expected_usage(len(cell["source"]))
    total_calls = len(cell["source"]) + len(cell["resume"])
    assert report["current_turn"] == total_calls
    assert report["usage"] == expected_usage(total_calls)
    last_input = json.dumps(report["model_inputs"][-1])
    if "rejected_with" in expect:
        assert expect["rejected_with"] in last_input, "the model sees the rejection message"
    if "tool_output" in expect:
        assert expect["tool_output"] in last_input, "the tool saw the carried-over context"
    if cell["start"] == "Triage":
        assert "call_handoff_1" in last_input, "the handoff stays in the history"
    if cell.get("session"):
        assert _sessions.session_problems(cell, report["session_items"]) == []
    else:
        assert report["session_items"] is None


# --- normalization for golden files -------------------------------------------------------------

_VOLATILE = [
    (re.compile(r"^trace_[0-9a-f]{32}$"), "<trace_id>"),
    (re.compile(r"^span_[0-9a-f]{24}$"), "<span_id>"),
    (re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?$"), "<time>"),
]


def normalize(value: Any) -> Any:
    """Replace only genuinely volatile values (trace/span ids, timestamps)."""
    if isinstance(value, dict):
        return {key: normalize(item) for key, item in value.items()}
    if isinstance(value, list):
        return [normalize(item) for item in value]
    if isinstance(value, str):
        for pattern, placeholder in _VOLATILE:
            if pattern.match(value):
                return placeholder
    return value


def check_golden(direction: str, name: str, documents: dict[str, Any]) -> None:
    path = GOLDEN / direction / f"{name}.json"
    current = json.dumps(normalize(documents), indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    if os.environ.get("TIMESTEP_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(current, encoding="utf-8")
    assert path.exists(), f"missing golden file {path}; run with TIMESTEP_UPDATE_GOLDEN=1"
    assert path.read_text(encoding="utf-8") == current, (
        f"{path.name}: a RunState format changed (an SDK was upgraded or the adapter changed); "
        "review the diff and regenerate with TIMESTEP_UPDATE_GOLDEN=1"
    )


# --- Python -> TypeScript -------------------------------------------------------------------------


def _start_agent(cell: dict[str, Any]) -> Any:
    return _harness.build_agents(_harness.ScriptedModel([]), [])[cell["start"]]


async def _export_all() -> dict[str, dict[str, Any]]:
    exported: dict[str, dict[str, Any]] = {}
    for cell in CELLS:
        state, source_report = await _harness.produce(cell)
        items = source_report["session_items"]
        exported[cell["name"]] = {
            "python": state.to_json(),
            "typescript": to_typescript_json(state),
            "source": source_report,
            "session_items": None
            if items is None
            else _sessions.py_items_to_js(items, _start_agent(cell)),
        }
    return exported


@pytest.fixture(scope="session")
def py_to_ts(node_project: NodeProject) -> dict[str, dict[str, Any]]:
    exported = asyncio.run(_export_all())
    request = {
        "mode": "resume",
        "cells": [
            {
                **cell,
                "state": exported[cell["name"]]["typescript"],
                "session_items": exported[cell["name"]]["session_items"],
                "usage_offset": len(cell["source"]),
            }
            for cell in CELLS
        ],
    }
    resumed = node_project.run(request)
    return {name: {**exported[name], "resumed": resumed[name]} for name in CELL_NAMES}


@pytest.mark.parametrize("name", CELL_NAMES)
def test_python_state_resumes_in_typescript(py_to_ts: dict[str, Any], name: str) -> None:
    cell = next(c for c in CELLS if c["name"] == name)
    result = py_to_ts[name]
    check_source(cell, result["source"])
    check_resumed(cell, result["resumed"])


@pytest.mark.parametrize("name", CELL_NAMES)
def test_python_to_typescript_golden(py_to_ts: dict[str, Any], name: str) -> None:
    result = py_to_ts[name]
    check_golden(
        "py_to_ts",
        name,
        {"python_input": result["python"], "typescript_output": json.loads(result["typescript"])},
    )


# --- TypeScript -> Python -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def ts_states(node_project: NodeProject) -> dict[str, dict[str, Any]]:
    return node_project.run({"mode": "produce", "cells": CELLS})


def _loader(cell: dict[str, Any], text: str) -> Any:
    deserializer = (
        (lambda data: _harness.MailContext(**data))
        if cell.get("py_context") == "dataclass"
        else None
    )
    return lambda agent: from_typescript_json(agent, text, context_deserializer=deserializer)


@pytest.mark.parametrize("name", CELL_NAMES)
async def test_typescript_state_resumes_in_python(ts_states: dict[str, Any], name: str) -> None:
    cell = next(c for c in CELLS if c["name"] == name)
    produced = ts_states[name]
    assert produced["ok"], produced.get("error")
    check_source(cell, produced)
    items = produced["session_items"]
    session_items = None if items is None else _sessions.js_items_to_py(items, _start_agent(cell))
    report = await _harness.resume(
        cell, _loader(cell, produced["state"]), len(cell["source"]), session_items
    )
    check_resumed(cell, report)
    if cell.get("py_context") == "dataclass":
        assert report["loaded"]["context"] == _harness.MailContext(**cell["context"])


@pytest.mark.parametrize("name", CELL_NAMES)
async def test_typescript_to_python_golden(ts_states: dict[str, Any], name: str) -> None:
    cell = next(c for c in CELLS if c["name"] == name)
    text = ts_states[name]["state"]
    agents = _harness.build_agents(_harness.ScriptedModel([]), [])
    state = await _loader(cell, text)(agents[cell["start"]])
    check_golden(
        "ts_to_py",
        name,
        {"typescript_input": json.loads(text), "python_output": state.to_json()},
    )


# --- sessions: the converted session position is the receiving SDK's own -----------------------

SESSION_CELL_NAMES = [cell["name"] for cell in CELLS if cell.get("session")]


@pytest.mark.parametrize("name", SESSION_CELL_NAMES)
async def test_session_position_matches_the_native_state(
    py_to_ts: dict[str, Any], ts_states: dict[str, Any], name: str
) -> None:
    """Each side paused at the same point of the same script: a converted state carries the
    session position that the receiving SDK's own state carries (Python counts the current
    turn's saved items, TypeScript a position in generatedItems)."""
    cell = next(c for c in CELLS if c["name"] == name)
    python_native = py_to_ts[name]["python"]["current_turn_persisted_item_count"]
    typescript_native = json.loads(ts_states[name]["state"])["currentTurnPersistedItemCount"]
    assert python_native > 0 and typescript_native > 0, "both sides saved to their session"
    exported = json.loads(py_to_ts[name]["typescript"])["currentTurnPersistedItemCount"]
    assert exported == typescript_native
    imported = await _loader(cell, ts_states[name]["state"])(_start_agent(cell))
    assert imported.to_json()["current_turn_persisted_item_count"] == python_native
