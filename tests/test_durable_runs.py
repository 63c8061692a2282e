"""Durable runs in one process, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import pytest
import sqlalchemy as sa
from agents import Agent, RunConfig, RunContextWrapper, RunResult, function_tool
from agents.models.multi_provider import MultiProvider

import timestep
from timestep import (
    AgentMismatchError,
    DatabaseUnavailableError,
    RunNotFoundError,
    ToolOutputNotSerializableError,
)
from timestep._engine import launch
from timestep.state import storage

from .helpers import ExecutionLog, TurnModel


def step_rows(run_id: str) -> list[Any]:
    engine = storage.storage_engine()
    table = "dbos.operation_outputs" if engine.dialect.name == "postgresql" else "operation_outputs"
    with engine.connect() as connection:
        return list(
            connection.execute(
                sa.text(
                    f"SELECT function_id, function_name, serialization, output FROM {table} "
                    "WHERE workflow_uuid = :id ORDER BY function_id"
                ),
                {"id": run_id},
            )
        )


def adder(log: ExecutionLog) -> Any:
    @function_tool
    async def add(a: int, b: int) -> int:
        # Finish in reverse order of arrival so step ids cannot follow completion order.
        await asyncio.sleep(random.uniform(0, 0.05))
        log.write("tool", a=a, b=b)
        return a + b

    return add


async def test_run_records_every_step_as_json_and_replays_nothing(
    timestep_db: str, tmp_path: Any
) -> None:
    log = ExecutionLog(tmp_path / "log.jsonl")
    model = TurnModel(
        [[("add", {"a": 1, "b": 2}), ("add", {"a": 3, "b": 4}), ("add", {"a": 5, "b": 6})]],
        final="sum",
        log=log,
    )
    agent = Agent(name="Adder", model=model, tools=[adder(log)])

    result = await timestep.run_agent(agent, "add these", run_id="run-1")
    assert result.final_output == "sum"
    assert isinstance(result, timestep.DurableRunResult) and isinstance(result, RunResult)
    assert result.run_id == "run-1"
    rows = step_rows("run-1")
    names = [row.function_name for row in rows]
    assert names == ["timestep.model_call"] + ["timestep.tool_call"] * 3 + ["timestep.model_call"]
    assert {row.serialization for row in rows} == {"portable_json"}
    # Tool steps take the step ids reserved in response order, whatever order they finished in.
    tool_calls = [json.loads(row.output)["call_id"] for row in rows[1:4]]
    assert tool_calls == ["call_0_0", "call_0_1", "call_0_2"]

    again = await timestep.run_agent(agent, "add these", run_id="run-1")
    assert again.final_output == "sum"
    assert isinstance(again, timestep.DurableRunResult)
    assert again.run_id == "run-1"
    assert len(log.entries("model")) == 2
    assert len(log.entries("tool")) == 3
    assert [item.type for item in again.new_items] == [item.type for item in result.new_items]

    record = await timestep.get_run("run-1")
    assert record.status == "completed"
    assert record.final_output == "sum"
    assert record.usage["requests"] == 2
    assert record.usage["total_tokens"] == 30
    assert [r.run_id for r in await timestep.list_runs(status="completed")] == ["run-1"]


async def test_every_way_of_giving_a_model_is_recorded(timestep_db: str, tmp_path: Any) -> None:
    log = ExecutionLog(tmp_path / "log.jsonl")

    class Provider(MultiProvider):
        def get_model(self, model_name: str | None) -> Any:
            return TurnModel([], final=f"from provider {model_name}", log=log)

    on_agent = Agent(name="A", model=TurnModel([], final="agent model", log=log))
    await timestep.run_agent(on_agent, "hi", run_id="m-agent")
    plain = Agent(name="B")
    await timestep.run_agent(
        plain,
        "hi",
        run_id="m-config",
        run_config=RunConfig(model=TurnModel([], final="config model", log=log)),
    )
    named = Agent(name="C", model="custom-name")
    result = await timestep.run_agent(
        named, "hi", run_id="m-provider", run_config=RunConfig(model_provider=Provider())
    )
    assert result.final_output == "from provider custom-name"
    for run_id in ("m-agent", "m-config", "m-provider"):
        assert [r.function_name for r in step_rows(run_id)][0] == "timestep.model_call"
    assert len(log.entries("model")) == 3


async def test_run_id_reused_with_another_agent_is_refused(timestep_db: str, tmp_path: Any) -> None:
    log = ExecutionLog(tmp_path / "log.jsonl")
    script = [[("add", {"a": 1, "b": 2})]]
    first = Agent(name="Adder", model=TurnModel(script, log=log), tools=[adder(log)])
    await timestep.run_agent(first, "x", run_id="shared")

    @function_tool
    def subtract(a: int, b: int) -> int:
        return a - b

    # The run called `add`, which this version of the agent lacks (issue 23: a version that
    # only adds tools would be compatible and return the recorded result).
    second = Agent(name="Adder", model=TurnModel(script, log=log), tools=[subtract])
    with pytest.raises(AgentMismatchError) as caught:
        await timestep.run_agent(second, "x", run_id="shared")
    assert "tool 'add' of agent 'Adder' no longer exists (call call_0_0 in the history)" in str(
        caught.value
    )
    assert len(log.entries("model")) == 2
    assert (await timestep.get_run("shared")).status == "completed"


async def test_unknown_run_id(timestep_db: str) -> None:
    with pytest.raises(RunNotFoundError, match="no run with id 'nope'"):
        await timestep.get_run("nope")


async def test_non_json_tool_output_names_the_tool(timestep_db: str) -> None:
    @function_tool
    def opaque() -> Any:
        return object()

    agent = Agent(name="Opaque", model=TurnModel([[("opaque", {})]]), tools=[opaque])
    with pytest.raises(ToolOutputNotSerializableError, match="tool 'opaque' returned a object"):
        await timestep.run_agent(agent, "go", run_id="opaque-run")
    record = await timestep.get_run("opaque-run")
    assert record.status == "failed"
    assert "opaque" in (record.error or "")


async def test_tools_read_an_idempotency_key(timestep_db: str) -> None:
    keys: list[str] = []

    @function_tool
    def charge(ctx: RunContextWrapper[Any], amount: int) -> str:
        keys.append(timestep.idempotency_key())
        return "charged"

    agent = Agent(name="Biller", model=TurnModel([[("charge", {"amount": 5})]]), tools=[charge])
    await timestep.run_agent(agent, "bill", run_id="bill-1")
    assert keys == ["bill-1:call_0_0"]


async def test_unrecorded_tool_is_not_a_step(timestep_db: str) -> None:
    @function_tool
    def clock() -> str:
        return "now"

    agent = Agent(
        name="Clock", model=TurnModel([[("clock", {})]]), tools=[timestep.unrecorded(clock)]
    )
    await timestep.run_agent(agent, "time?", run_id="clock-1")
    assert "timestep.tool_call" not in [r.function_name for r in step_rows("clock-1")]


def test_unusable_database_urls_say_where(tmp_path: Any) -> None:
    launch.reset_for_tests()
    missing_dir = tmp_path / "no" / "such" / "dir" / "db.sqlite"
    timestep.configure(database_url=f"sqlite:///{missing_dir}")
    with pytest.raises(DatabaseUnavailableError, match=str(missing_dir.parent)):
        storage.storage_engine()
    launch.reset_for_tests()
    timestep.configure(database_url="postgresql://user@127.0.0.1:1/db")
    with pytest.raises(DatabaseUnavailableError, match="127.0.0.1:1/db"):
        storage.storage_engine()
    launch.reset_for_tests()
    timestep.configure(database_url="mysql://x@y/z")
    with pytest.raises(timestep.ConfigurationError, match="'mysql'"):
        storage.storage_engine()
    launch.reset_for_tests()


ADOPT_SCRIPT = """
import asyncio, sys
from agents import Agent
from dbos import DBOS, DBOSPortableJSONSerializer
import timestep
from tests.helpers import TurnModel

DBOS(config={"name": "my-app", "system_database_url": sys.argv[1],
             "serializer": DBOSPortableJSONSerializer()})
DBOS.launch()

async def main():
    result = await timestep.run_agent(Agent(name="A", model=TurnModel([], final="adopted")), "hi",
                                      run_id="adopt-1")
    print(result.final_output, (await timestep.get_run("adopt-1")).status)

asyncio.run(main())
"""


@pytest.mark.processes
def test_an_application_dbos_instance_is_used(database_url: str) -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-c", ADOPT_SCRIPT, database_url],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root), "TIMESTEP_DB_URL": "sqlite:///nowhere/x.db"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["adopted", "completed"]
    # The run went to the application's database, not to TIMESTEP_DB_URL.
    engine = sa.create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as connection:
        status = connection.execute(
            sa.text("SELECT status FROM timestep_runs WHERE run_id = 'adopt-1'")
        ).scalar()
    engine.dispose()
    assert status == "completed"


@pytest.mark.parametrize(
    "bad_id",
    ["", "   ", "x" * 201, "tab\there", "col:segment-2"],
    ids=["empty", "blank", "too-long", "control", "segment-suffix"],
)
async def test_bad_run_ids_are_refused_before_anything_is_written(
    timestep_db: str, tmp_path: Any, bad_id: str
) -> None:
    agent = Agent(name="Ids", model=TurnModel([], final="ok"))
    with pytest.raises(timestep.InvalidRunIdError) as caught:
        await timestep.run_agent(agent, "go", run_id=bad_id)
    assert isinstance(caught.value, ValueError)
    assert "choose another run id" in str(caught.value)
    with pytest.raises(timestep.InvalidRunIdError):
        await timestep.submit(agent, "go", run_id=bad_id)
    assert await timestep.list_runs() == []
    # A run whose id looks like another's segment cannot exist, so "col" keeps its segments.
    assert (await timestep.run_agent(agent, "go", run_id="col:segment-two")).final_output == "ok"


async def test_reused_run_id_with_another_input_says_so(
    timestep_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    agent = Agent(name="Reuse", model=TurnModel([], final="first answer"))
    assert (await timestep.run_agent(agent, "question a", run_id="reuse-1")).final_output == (
        "first answer"
    )
    with caplog.at_level("WARNING", logger="timestep"):
        again = await timestep.run_agent(agent, "question a", run_id="reuse-1")
    assert again.final_output == "first answer"
    assert "another input" not in caplog.text  # the same input: a plain re-run
    with caplog.at_level("WARNING", logger="timestep"):
        other = await timestep.run_agent(agent, "question b", run_id="reuse-1")
    assert other.final_output == "first answer"
    assert "run 'reuse-1' already exists (completed) and was started with another input" in (
        caplog.text
    )
    with pytest.raises(timestep.RunExistsError, match="pass a new run_id"):
        await timestep.run_agent(agent, "question b", run_id="reuse-1", on_existing="error")
