"""SDK sessions other than SQLiteSession under durable runs: the same items as the plain SDK,
none added twice when a run is finished in a fresh process after a crash.

- `OpenAIConversationsSession()` creates its conversation lazily (its id is unknown until the
  first call). Against a local fake of the Conversations API (`tests/fake_openai.py`).
- `SQLAlchemySession` (agents.extensions.memory) on SQLite through aiosqlite.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from agents import Agent, Runner, function_tool
from agents.extensions.memory.sqlalchemy_session import SQLAlchemySession
from agents.memory import OpenAIConversationsSession
from openai import AsyncOpenAI

import timestep
from tests.fake_openai import FakeOpenAI
from tests.helpers import ExecutionLog, TurnModel
from tests.processes import env_for, run_module


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


def _agent(log: ExecutionLog) -> Agent[Any]:
    @function_tool
    def record(n: int) -> str:
        """Record that step n happened (the side effect)."""
        log.write("tool", n=n)
        return f"recorded {n}"

    return Agent(
        name="Noter",
        instructions="Record two steps.",
        model=TurnModel([[("record", {"n": 1})], [("record", {"n": 2})]], final="noted", log=log),
        tools=[record],
    )


def _conversation_session(fake: FakeOpenAI) -> OpenAIConversationsSession:
    return OpenAIConversationsSession(openai_client=AsyncOpenAI(base_url=fake.url, api_key="k"))


def _shape(items: list[Any]) -> list[tuple[Any, ...]]:
    """What an item says, without the ids a store gives it."""

    def get(item: Any, key: str) -> Any:
        return item.get(key) if isinstance(item, dict) else getattr(item, key, None)

    return [
        (
            get(item, "type") or "message",
            get(item, "role"),
            get(item, "call_id"),
            get(item, "output"),
            json.dumps(get(item, "content"), sort_keys=True),
        )
        for item in items
    ]


def _app(database_url: str, log: Path, run_id: str, kind: str, target: str, mode: str) -> Any:
    args = [database_url, str(log), run_id, kind, target, mode]
    return run_module(env_for(database_url, log), "tests.apps.session_app", *args)


async def test_a_lazily_created_conversation_works_as_in_the_plain_sdk(
    timestep_db: str, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    plain_session = _conversation_session(fake_openai)
    plain = await Runner.run(
        _agent(ExecutionLog(tmp_path / "plain.jsonl")), "go", session=plain_session
    )
    durable_session = _conversation_session(fake_openai)
    log = ExecutionLog(tmp_path / "durable.jsonl")
    result = await timestep.run_agent(_agent(log), "go", session=durable_session, run_id="conv-1")

    assert result.final_output == plain.final_output == "noted"
    assert durable_session.session_id != plain_session.session_id
    assert len(fake_openai.conversations) == 2
    durable_items = fake_openai.conversations[durable_session.session_id]
    assert _shape(durable_items) == _shape(fake_openai.conversations[plain_session.session_id])
    assert len(durable_items) == 6  # input, 2 x (call, output), answer
    # Calling it again returns the finished run: nothing is added to the conversation.
    again = await timestep.run_agent(
        _agent(log), "go", session=_conversation_session(fake_openai), run_id="conv-1"
    )
    assert again.final_output == "noted"
    assert len(fake_openai.conversations) == 2
    assert len(fake_openai.conversations[durable_session.session_id]) == 6
    assert [e["n"] for e in log.entries("tool")] == [1, 2]


async def _plain_conversation(fake: FakeOpenAI, log: ExecutionLog) -> list[dict[str, Any]]:
    session = _conversation_session(fake)
    await Runner.run(_agent(log), "go", session=session)
    return fake.conversations[session.session_id]


async def test_a_lazy_conversation_is_the_same_after_a_crash_and_has_no_duplicates(
    database_url: str, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    reference = await _plain_conversation(fake_openai, ExecutionLog(tmp_path / "plain.jsonl"))
    log_path = tmp_path / "log.jsonl"
    log = ExecutionLog(log_path)

    crashed = _app(database_url, log_path, "c-1", "conversations", fake_openai.url, "crash")
    assert crashed.returncode == 3, crashed.stderr
    assert len(fake_openai.conversations) == 2  # the plain run's and the crashed run's
    finished = _app(database_url, log_path, "c-1", "conversations", fake_openai.url, "finish")
    assert finished.returncode == 0, finished.stderr
    assert json.loads(finished.stdout.splitlines()[-1]) == {"final_output": "noted"}

    # One conversation for the run, holding what the plain SDK's holds, nothing twice.
    assert len(fake_openai.conversations) == 2
    (run_conversation,) = [c for c in fake_openai.conversations.values() if c is not reference]
    assert _shape(run_conversation) == _shape(reference)
    assert [e["turn"] for e in log.entries("model")] == [0, 1, 2]
    assert [e["n"] for e in log.entries("tool")] == [1, 2, 2]  # only the call in flight again


async def test_a_sqlalchemy_session_after_a_crash_has_no_duplicates(
    database_url: str, tmp_path: Path
) -> None:
    session_url = f"sqlite+aiosqlite:///{tmp_path}/sessions.sqlite"
    plain_session = SQLAlchemySession.from_url("plain", url=session_url, create_tables=True)
    await Runner.run(_agent(ExecutionLog(tmp_path / "plain.jsonl")), "go", session=plain_session)
    reference = await plain_session.get_items()
    log_path = tmp_path / "log.jsonl"
    log = ExecutionLog(log_path)

    crashed = _app(database_url, log_path, "s-1", "sqlalchemy", session_url, "crash")
    assert crashed.returncode == 3, crashed.stderr
    finished = _app(database_url, log_path, "s-1", "sqlalchemy", session_url, "finish")
    assert finished.returncode == 0, finished.stderr
    assert json.loads(finished.stdout.splitlines()[-1]) == {"final_output": "noted"}

    items = await SQLAlchemySession.from_url("s-1", url=session_url).get_items()
    assert _shape(items) == _shape(reference)
    assert len(items) == 6
    assert [e["turn"] for e in log.entries("model")] == [0, 1, 2]
    assert [e["n"] for e in log.entries("tool")] == [1, 2, 2]
    await plain_session.engine.dispose()
