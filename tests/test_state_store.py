"""The seed's explicit flow with `RunStateStore`, on SQLite and PostgreSQL, and
`run_agent(..., raise_on_interruption=True)`."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from agents import Agent, ModelResponse, RunState, function_tool

import timestep
from timestep import store as store_module
from timestep.errors import StateError, StateNotFoundError, TimestepError
from timestep.store import RunStateStore

from .helpers import ExecutionLog, TurnModel

ROOT = Path(__file__).resolve().parent.parent


class RecordingModel(TurnModel):
    """A `TurnModel` that also keeps every input it was given (as plain JSON items)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.inputs: list[Any] = []

    async def get_response(
        self, system_instructions: Any, input: Any, *args: Any, **kw: Any
    ) -> ModelResponse:
        items = (
            input
            if isinstance(input, str)
            else [
                item if isinstance(item, dict) else item.model_dump(exclude_unset=True)
                for item in input
            ]
        )
        self.inputs.append(json.loads(json.dumps(items, default=str)))
        return await super().get_response(system_instructions, input, *args, **kw)


def email_agent(log: ExecutionLog, model: TurnModel | None = None) -> Agent[Any]:
    @function_tool(needs_approval=True)
    def send_email(to: str, body: str) -> str:
        """Send an email."""
        log.write("tool", to=to, body=body)
        return f"sent to {to}"

    model = model or TurnModel(
        [[("send_email", {"to": "ana@example.com", "body": "hello"})]], final="email handled"
    )
    return Agent(name="Mailer", model=model, tools=[send_email])


async def paused_state(agent: Agent[Any]) -> RunState[Any, Any]:
    result = await timestep.run_agent(agent, "email Ana")
    assert [item.name for item in result.interruptions] == ["send_email"]
    return result.to_state()


async def test_seed_flow_approve(timestep_db: str, tmp_path: Path) -> None:
    log = ExecutionLog(tmp_path / "log.jsonl")
    agent = email_agent(log)
    state = await paused_state(agent)
    assert log.entries("tool") == []
    await RunStateStore(agent, session_id="s1").save(state)

    store = RunStateStore(agent, session_id="s1")  # a fresh store object
    state = await store.load()
    interruptions = state.get_interruptions()
    assert [(item.name, json.loads(item.arguments or "{}")) for item in interruptions] == [
        ("send_email", {"to": "ana@example.com", "body": "hello"})
    ]
    state.approve(interruptions[0])
    result = await timestep.run_agent(agent, state)
    assert result.final_output == "email handled"
    assert not result.interruptions
    assert log.entries("tool") == [{"kind": "tool", "to": "ana@example.com", "body": "hello"}]

    await store.clear()
    with pytest.raises(StateNotFoundError):
        await store.load()


async def test_seed_flow_reject_feeds_the_message_to_the_model(
    timestep_db: str, tmp_path: Path
) -> None:
    log = ExecutionLog(tmp_path / "log.jsonl")
    model = RecordingModel(
        [[("send_email", {"to": "ana@example.com", "body": "hello"})]], final="not sent"
    )
    agent = email_agent(log, model)
    await RunStateStore(agent, session_id="s1").save(await paused_state(agent))

    state = await RunStateStore(agent, session_id="s1").load()
    state.reject(state.get_interruptions()[0], rejection_message="Ana is on holiday")
    result = await timestep.run_agent(agent, state)
    assert result.final_output == "not sent"
    assert log.entries("tool") == []
    outputs = [
        item
        for item in model.inputs[-1]
        if isinstance(item, dict) and item.get("type") == "function_call_output"
    ]
    assert len(outputs) == 1
    assert outputs[0]["call_id"] == "call_0_0"
    assert "Ana is on holiday" in json.dumps(outputs[0]["output"])


async def test_load_of_nothing_and_clear_are_clear(timestep_db: str, tmp_path: Path) -> None:
    agent = email_agent(ExecutionLog(tmp_path / "log.jsonl"))
    store = RunStateStore(agent, session_id="nobody")
    with pytest.raises(StateNotFoundError) as caught:
        await store.load()
    message = str(caught.value)
    assert "'nobody'" in message and "session:nobody" in message
    assert (
        ("SQLite file" in message)
        if timestep_db.startswith("sqlite")
        else ("PostgreSQL database" in message)
    )
    await store.clear()
    await store.clear()  # idempotent


async def test_keys_are_namespaced_and_checked(timestep_db: str, tmp_path: Path) -> None:
    log = ExecutionLog(tmp_path / "log.jsonl")
    agent = email_agent(log)
    state = await paused_state(agent)
    await RunStateStore(agent, session_id="x").save(state)
    with pytest.raises(StateNotFoundError):
        await RunStateStore(agent, run_id="x").load()
    await RunStateStore(agent, run_id="x").save(state)
    await RunStateStore(agent, run_id="x").clear()
    assert (await RunStateStore(agent, session_id="x").load()).get_interruptions()

    # timestep 2026.0.x's rules (tests/test_seed_compat.py): neither id generates a run id,
    # and with both the run id wins.
    assert RunStateStore(agent).key.startswith("run:")
    assert RunStateStore(agent, run_id="a", session_id="b").key == "run:a"

    other = Agent(name="Other", model=TurnModel([]), tools=[])
    with pytest.raises(StateError, match="'Mailer'.*'Other'"):
        await RunStateStore(other, session_id="x").load()
    with pytest.raises(StateError, match="'Mailer'.*'Other'"):
        await RunStateStore(other, session_id="y").save(state)


async def test_export_both_forms(timestep_db: str, tmp_path: Path) -> None:
    agent = email_agent(ExecutionLog(tmp_path / "log.jsonl"))
    state = await paused_state(agent)
    store = RunStateStore(agent, session_id="s1")
    await store.save(state)

    python = json.loads(await store.export())
    assert python["$schemaVersion"] == "1.21"
    assert python == json.loads(await store.export("python"))
    again = await RunState.from_json(agent, python)
    assert [item.name for item in again.get_interruptions()] == ["send_email"]

    typescript = json.loads(await store.export("typescript"))
    assert typescript["$schemaVersion"] == "1.22"
    assert typescript["currentAgent"]["name"] == "Mailer"
    with pytest.raises(TimestepError):
        await store.export("yaml")  # type: ignore[arg-type]


async def test_connection_string_selects_another_sqlite_file(tmp_path: Path) -> None:
    from timestep._engine import launch
    from timestep.state import storage

    launch.reset_for_tests()  # nothing configured: the store must not need configure()
    try:
        log = ExecutionLog(tmp_path / "log.jsonl")
        agent = email_agent(log)
        state = RunState(
            context=_empty_context(),
            original_input="email Ana",
            starting_agent=agent,
            max_turns=5,
        )
        url = f"sqlite:///{tmp_path}/elsewhere.sqlite"
        await RunStateStore(agent, session_id="s1", connection_string=url).save(state)
        loaded = await RunStateStore(agent, session_id="s1", connection_string=url).load()
        assert loaded.to_json()["original_input"] == "email Ana"
        assert (tmp_path / "elsewhere.sqlite").exists()
        assert storage.current_engine() is None  # the configured database was never opened
    finally:
        store_module.dispose_engines()
        launch.reset_for_tests()


def test_bad_connection_string_fails_on_construction(tmp_path: Path) -> None:
    agent = email_agent(ExecutionLog(tmp_path / "log.jsonl"))
    with pytest.raises(timestep.ConfigurationError, match="mysql"):
        RunStateStore(agent, session_id="s1", connection_string="mysql://h/db")


def _empty_context() -> Any:
    from agents.run_context import RunContextWrapper

    return RunContextWrapper(context=None)


_SAVER = textwrap.dedent(
    """
    import asyncio, os, sys, time
    from agents import Agent, RunState
    from agents.run_context import RunContextWrapper
    from timestep.store import RunStateStore

    url, marker, go, stop = sys.argv[1:5]
    agent = Agent(name="Mailer")
    # Large enough that a torn write would be visible.
    state = RunState(
        context=RunContextWrapper(context=None),
        original_input=marker * 20000,
        starting_agent=agent,
        max_turns=5,
    )

    async def main() -> None:
        store = RunStateStore(agent, session_id="shared", connection_string=url)
        await store.save(state)  # opens the engine before the race starts
        print("ready", flush=True)
        while not os.path.exists(go):
            time.sleep(0.005)
        # Save until the reader says it is done (and at least 50 times): both savers are saving
        # during every one of its reads.
        saves = 0
        while saves < 50 or not os.path.exists(stop):
            await store.save(state)
            saves += 1
        print(saves, flush=True)

    asyncio.run(main())
    """
)


READS_DURING_SAVES = 40


@pytest.mark.processes
async def test_concurrent_saves_from_two_processes_never_corrupt(
    database_url: str, tmp_path: Path
) -> None:
    script = tmp_path / "saver.py"
    script.write_text(_SAVER)
    go, stop = tmp_path / "go", tmp_path / "stop"
    processes = [
        subprocess.Popen(
            [sys.executable, str(script), database_url, marker, str(go), str(stop)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for marker in ("a", "b")
    ]
    agent = Agent(name="Mailer")
    store = RunStateStore(agent, session_id="shared", connection_string=database_url)
    whole = {"a" * 20000, "b" * 20000}
    reads: list[str] = []
    try:
        for process in processes:
            assert process.stdout is not None
            assert process.stdout.readline().strip() == "ready", process.stderr
        go.touch()
        # Both savers save until `stop` exists, so every one of these reads races two writers;
        # each must see one whole state.
        for _ in range(READS_DURING_SAVES):
            assert all(process.poll() is None for process in processes), "a saver stopped early"
            state = await store.load()
            reads.append(state.to_json()["original_input"])
        stop.touch()
        saves = []
        for process in processes:
            out, err = process.communicate(timeout=240)
            assert process.returncode == 0, err
            saves.append(int(out.strip().splitlines()[-1]))
        assert len(reads) == READS_DURING_SAVES
        assert set(reads) <= whole, "a read saw a torn or foreign state"
        assert all(count >= 50 for count in saves), saves
        state = await store.load()
        original = state.to_json()["original_input"]
        assert original in whole
        text = await store.export("python")
        assert (await RunState.from_string(agent, text)).to_json()["original_input"] == original
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
        store_module.dispose_engines()


async def test_raise_on_interruption(timestep_db: str, tmp_path: Path) -> None:
    log = ExecutionLog(tmp_path / "log.jsonl")
    agent = email_agent(log)
    with pytest.raises(timestep.InterruptionException) as caught:
        await timestep.run_agent(agent, "email Ana", run_id="run-7", raise_on_interruption=True)
    error = caught.value
    assert error.run_id == "run-7"
    assert len(error.pending_approvals) == 1
    pending = error.pending_approvals[0]
    assert pending["call_id"] == "call_0_0"
    assert pending["tool_name"] == "send_email"
    arguments = pending["arguments"]
    if isinstance(arguments, str):
        arguments = json.loads(arguments)
    assert arguments == {"to": "ana@example.com", "body": "hello"}
    assert log.entries("tool") == []
