"""The adapter fails closed: typed errors naming the field and versions, and no secrets exported.

These tests need no Node: TypeScript-written inputs come from the golden files, which the
interop matrix (test_typescript_interop.py) regenerates and checks against the real SDK.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from agents import Agent, RunConfig, Runner
from agents.models.openai_provider import OpenAIProvider

from timestep.errors import StateError
from timestep.state.typescript import (
    StateConversionError,
    UnsupportedStateVersionError,
    from_typescript_json,
    to_typescript_json,
)

from . import _harness
from ._scenarios import cell_named

GOLDEN = Path(__file__).resolve().parent / "golden"
SECRET = "sk-test-0123456789abcdefghijklmnop"


def ts_input(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((GOLDEN / "ts_to_py" / f"{name}.json").read_text())
    return copy.deepcopy(document["typescript_input"])


def mailer() -> Agent[Any]:
    return _harness.build_agents(_harness.ScriptedModel([]), [])["Mailer"]


async def test_refuses_typescript_schema_outside_the_pair() -> None:
    document = ts_input("approve_after")
    document["$schemaVersion"] = "1.21"
    with pytest.raises(UnsupportedStateVersionError) as caught:
        await from_typescript_json(mailer(), json.dumps(document))
    assert "'1.21'" in str(caught.value) and "'1.22'" in str(caught.value)
    assert isinstance(caught.value, StateError)


async def test_refuses_python_schema_outside_the_pair(monkeypatch: pytest.MonkeyPatch) -> None:
    state, _ = await _harness.produce(cell_named("approve_after"))
    original = state.to_json

    def older(**kwargs: Any) -> dict[str, Any]:
        return {**original(**kwargs), "$schemaVersion": "1.20"}

    monkeypatch.setattr(state, "to_json", older)
    with pytest.raises(UnsupportedStateVersionError, match="'1.20'.*'1.21'"):
        to_typescript_json(state)


async def test_refuses_truncated_and_malformed_documents() -> None:
    text = json.dumps(ts_input("approve_after"))
    with pytest.raises(StateConversionError, match="truncated"):
        await from_typescript_json(mailer(), text[: len(text) // 2])
    document = ts_input("approve_after")
    del document["generatedItems"]
    with pytest.raises(StateConversionError, match="malformed"):
        await from_typescript_json(mailer(), json.dumps(document))


async def test_refuses_an_agent_graph_that_does_not_match() -> None:
    text = json.dumps(ts_input("approve_after"))
    renamed: Agent[Any] = Agent(name="Postman", tools=mailer().tools)
    with pytest.raises(StateConversionError, match="'Mailer'"):
        await from_typescript_json(renamed, text)
    without_tool: Agent[Any] = Agent(name="Mailer", tools=[])
    with pytest.raises(StateConversionError, match="send_email"):
        await from_typescript_json(without_tool, text)


async def test_refuses_a_decision_bound_to_another_invocation() -> None:
    document = ts_input("approve_before")
    bindings = document["context"]["approvalInvocations"][0]["invocations"]
    bindings["call_email_1"] = bindings["call_email_1"].replace(
        "bob@example.com", "eve@example.com"
    )
    with pytest.raises(StateConversionError, match="call_email_1"):
        await from_typescript_json(mailer(), json.dumps(document))


async def test_refuses_completion_records_that_do_not_match_the_history() -> None:
    document = ts_input("history")
    document["completedToolInvocations"][0]["invocations"].pop("call_lookup_1")
    with pytest.raises(StateConversionError, match="completedToolInvocations"):
        await from_typescript_json(mailer(), json.dumps(document))


async def test_refuses_items_the_other_protocol_cannot_express() -> None:
    document = ts_input("approve_after")
    document["generatedItems"].insert(
        0,
        {
            "type": "tool_call_item",
            "rawItem": {
                "type": "hosted_tool_call",
                "name": "web_search_call",
                "status": "completed",
            },
            "agent": {"name": "Mailer"},
        },
    )
    with pytest.raises(StateConversionError, match=r"generatedItems\[0\].*hosted_tool_call"):
        await from_typescript_json(mailer(), json.dumps(document))


async def test_refuses_queued_input_it_cannot_carry() -> None:
    state, _ = await _harness.produce(cell_named("approve_after"))
    state.add_input("and cc Carol")
    with pytest.raises(StateConversionError, match="pending_input"):
        to_typescript_json(state)


async def test_exported_state_carries_no_api_keys() -> None:
    model = _harness.ScriptedModel(cell_named("approve_after")["source"])
    model.api_key = SECRET  # type: ignore[attr-defined]
    agent = _harness.build_agents(model, [])["Mailer"]
    config = RunConfig(model_provider=OpenAIProvider(api_key=SECRET))
    result = await Runner.run(agent, "Email Bob.", run_config=config, context={"user_id": "u-1"})
    exported = to_typescript_json(result.to_state())
    assert SECRET not in exported
    assert "api_key" not in exported and "apiKey" not in exported


async def test_refuses_to_export_a_credential_in_the_context() -> None:
    model = _harness.ScriptedModel(cell_named("approve_after")["source"])
    agent = _harness.build_agents(model, [])["Mailer"]
    result = await Runner.run(agent, "Email Bob.", context={"api_key": SECRET})
    with pytest.raises(StateConversionError, match="credential"):
        to_typescript_json(result.to_state())


async def test_imported_state_drops_the_tracing_api_key() -> None:
    document = ts_input("approve_after")
    document["trace"]["tracing_api_key"] = SECRET
    state = await from_typescript_json(mailer(), json.dumps(document))
    assert SECRET not in json.dumps(state.to_json(include_tracing_api_key=True))


async def test_refuses_a_session_position_it_cannot_carry() -> None:
    """The TypeScript session position is a place in generatedItems; an impossible one (past the
    history, or before the current turn, so earlier turns would be missing from the session) is
    refused, never clamped."""
    for position, message in ((7, "not a session position"), (2, "before the current turn")):
        document = ts_input("session_history")
        document["currentTurnPersistedItemCount"] = position
        with pytest.raises(StateConversionError, match=message) as caught:
            await from_typescript_json(mailer(), json.dumps(document))
        assert isinstance(caught.value, StateError)


async def test_refuses_a_python_session_count_it_cannot_place(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    state, _ = await _harness.produce(cell_named("session_history"))
    original = state.to_json

    def edited(change: dict[str, Any]) -> Any:
        return lambda **kwargs: {**original(**kwargs), **change}

    # The turn (from generated item 4) has one item a session holds, plus the approval item.
    monkeypatch.setattr(state, "to_json", edited({"current_turn_persisted_item_count": 2}))
    with pytest.raises(StateConversionError, match="inconsistent"):
        to_typescript_json(state)
    monkeypatch.setattr(
        state, "to_json", edited({"current_response_generated_item_ownership": None})
    )
    with pytest.raises(StateConversionError, match="where the turn starts"):
        to_typescript_json(state)
