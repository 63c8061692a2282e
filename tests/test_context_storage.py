"""A run's context at rest: `ContextStorage` declares its stored form and secret fields.

A declared secret is written nowhere: not in any table of either database (Timestep's and
DBOS's: workflow status, inputs, step outputs, streams), not in the SQLite files on disk, not in
the logs, not in a Python or TypeScript export. It is supplied again when the run goes on, and
its absence is a typed error. A positive control (the non-secret field) proves the search sees
the context where it is stored.
"""

from __future__ import annotations

import base64
import json
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from agents import Agent, RunContextWrapper, function_tool

import timestep
from timestep import ContextSecretMissingError, ContextStorage, ContextStorageError
from timestep._compat.agents import application_context
from timestep._engine import registry
from timestep.handover import export_run_state
from timestep.state import storage
from timestep.state.typescript import StateConversionError, to_typescript_json

from .helpers import ExecutionLog, TurnModel

SECRET = f"tok-{uuid.uuid4().hex}"  # no sk- prefix: only the declaration keeps it out
VISIBLE = f"visible-{uuid.uuid4().hex[:8]}"


def mailer(name: str, log: ExecutionLog) -> Agent[Any]:
    """An agent whose approval-gated tool reports (to the log, never the database) which
    context it ran with."""

    @function_tool(needs_approval=True)
    def send_email(ctx: RunContextWrapper[Any], to: str) -> str:
        """Send an email."""
        context = ctx.context
        token = context.get("api_token") if isinstance(context, dict) else context.session_token
        log.write("tool", to=to, token_ok=token == SECRET, ctx_type=type(context).__name__)
        return f"sent to {to}"

    model = TurnModel([[("send_email", {"to": "ana@example.com"})]], final="email handled")
    return Agent(name=name, model=model, tools=[send_email])


def _texts(value: Any) -> str:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def database_dump(url: str) -> str:
    """Every value of every table of the database (all schemas), as one text."""
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    parts: list[str] = []
    try:
        inspector = sa.inspect(engine)
        schemas = [
            s
            for s in inspector.get_schema_names()
            if s not in ("information_schema", "pg_catalog", "pg_toast")
        ]
        with engine.connect() as connection:
            for schema in schemas or [None]:
                for table in inspector.get_table_names(schema=schema):
                    qualified = f'"{schema}"."{table}"' if schema else f'"{table}"'
                    for row in connection.execute(sa.text(f"SELECT * FROM {qualified}")):
                        parts.append(f"{qualified}: " + " | ".join(_texts(v) for v in row))
    finally:
        engine.dispose()
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        for file in path.parent.glob(path.name + "*"):  # the file, its WAL and shared memory
            parts.append(file.read_bytes().decode("utf-8", "replace"))
    return "\n".join(parts)


def assert_secret_absent(text: str) -> None:
    encoded = base64.b64encode(SECRET.encode()).decode()
    assert SECRET not in text
    assert encoded[:20] not in text


def tables_of(url: str) -> set[str]:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        inspector = sa.inspect(engine)
        return {
            table
            for schema in inspector.get_schema_names()
            for table in inspector.get_table_names(schema=schema)
        }
    finally:
        engine.dispose()


async def test_dict_context_secret_is_stored_nowhere(
    timestep_db: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    log = ExecutionLog(tmp_path / "log.jsonl")
    name = f"Mailer{uuid.uuid4().hex[:6]}"
    agent = mailer(name, log)
    storage = ContextStorage(
        secret_fields=("api_token",),
        deserializer=lambda stored: {**stored, "api_token": SECRET},  # e.g. from the environment
    )
    context = {"user": VISIBLE, "api_token": SECRET}
    result = await timestep.run_agent(
        agent, "email Ana", run_id="ctx-1", context=context, context_storage=storage
    )
    assert [item.name for item in result.interruptions] == ["send_email"]

    # Exports of the parked run, and of the live state, carry the visible field only.
    exports = [
        await export_run_state("ctx-1", "python"),
        await export_run_state("ctx-1", "typescript"),
        to_typescript_json(result.to_state()),
    ]
    store = timestep.RunStateStore(agent, run_id="ctx-1-saved")
    await store.save(result.to_state())
    exports += [await store.export("python"), await store.export("typescript")]
    for text in exports:
        assert_secret_absent(text)
        assert VISIBLE in text
    assert json.loads(exports[1])["context"]["context"] == {"user": VISIBLE}
    # The seed's store rebuilds the context through the declaration: the secret is back.
    loaded = await store.load()
    assert loaded.get_interruptions()
    assert application_context(loaded) == context

    await timestep.approve("ctx-1")
    done = await timestep.resume("ctx-1")
    assert done.final_output == "email handled"
    # The continuation ran from the records; the tool saw the secret the declaration supplied.
    assert log.entries("tool") == [
        {"kind": "tool", "to": "ana@example.com", "token_ok": True, "ctx_type": "dict"}
    ]

    dump = database_dump(timestep_db)
    assert_secret_absent(dump)
    assert VISIBLE in dump  # the search does see the stored context
    assert {"workflow_status", "operation_outputs", "timestep_runs"} <= tables_of(timestep_db)
    assert all(SECRET not in record.getMessage() for record in caplog.records)


@dataclass
class SessionContext:
    user: str
    session_token: str | None = None


async def test_dataclass_context_secret_is_resupplied_by_the_deserializer(
    timestep_db: str, tmp_path: Path
) -> None:
    log = ExecutionLog(tmp_path / "log.jsonl")
    name = f"Mailer{uuid.uuid4().hex[:6]}"
    agent = mailer(name, log)
    timestep.register_agent(
        agent,
        context_storage=ContextStorage(
            secret_fields=("session_token",),
            deserializer=lambda stored: SessionContext(**stored, session_token=SECRET),
        ),
    )
    result = await timestep.run_agent(
        agent, "email Ana", run_id="ctx-2", context=SessionContext(VISIBLE, SECRET)
    )
    assert result.interruptions
    await timestep.approve("ctx-2")
    done = await timestep.resume("ctx-2")
    assert done.final_output == "email handled"
    [entry] = log.entries("tool")
    # The continuation ran from the records, with the rebuilt dataclass and the secret.
    assert entry["token_ok"] is True
    assert entry["ctx_type"] == "SessionContext"
    dump = database_dump(timestep_db)
    assert_secret_absent(dump)
    assert VISIBLE in dump


async def test_a_missing_secret_fails_the_run_with_a_typed_error(
    timestep_db: str, tmp_path: Path
) -> None:
    log = ExecutionLog(tmp_path / "log.jsonl")
    agent = mailer(f"Mailer{uuid.uuid4().hex[:6]}", log)
    storage = ContextStorage(secret_fields=("api_token",))  # nobody can supply it later
    result = await timestep.run_agent(
        agent,
        "email Ana",
        run_id="ctx-3",
        context={"user": VISIBLE, "api_token": SECRET},
        context_storage=storage,
    )
    assert result.interruptions
    await timestep.approve("ctx-3")
    with pytest.raises(ContextSecretMissingError, match="api_token") as caught:
        await timestep.resume("ctx-3")
    assert caught.value.missing == ["api_token"]
    record = await timestep.get_run("ctx-3")
    assert record.status == "failed"
    assert "ContextSecretMissingError" in (record.error or "")
    assert log.entries("tool") == []  # the tool never ran without its secret
    assert_secret_absent(database_dump(timestep_db))


async def test_a_context_without_its_declared_secret_writes_nothing(
    timestep_db: str, tmp_path: Path
) -> None:
    agent = mailer(f"Mailer{uuid.uuid4().hex[:6]}", ExecutionLog(tmp_path / "log.jsonl"))
    storage = ContextStorage(secret_fields=("api_token",))
    with pytest.raises(ContextSecretMissingError, match="api_token"):
        await timestep.run_agent(
            agent, "email Ana", run_id="ctx-4", context={"user": "u"}, context_storage=storage
        )
    with pytest.raises(timestep.RunNotFoundError):
        await timestep.get_run("ctx-4")


async def test_a_context_with_no_stored_form_is_refused_before_anything_is_written(
    timestep_db: str, tmp_path: Path
) -> None:
    agent = mailer(f"Mailer{uuid.uuid4().hex[:6]}", ExecutionLog(tmp_path / "log.jsonl"))
    with pytest.raises(ContextStorageError, match="serializer"):
        await timestep.run_agent(
            agent,
            "email Ana",
            run_id="ctx-5",
            context=object(),
            context_storage=ContextStorage(secret_fields=("api_token",)),
        )
    with pytest.raises(timestep.RunNotFoundError):
        await timestep.get_run("ctx-5")


def test_a_process_that_declares_other_secret_fields_is_refused() -> None:
    agent = Agent(name=f"Mailer{uuid.uuid4().hex[:6]}")
    plain = registry.describe_graph(agent)
    registry.register_agent(agent, context_storage=ContextStorage(secret_fields=("api_token",)))
    declared = registry.describe_graph(agent)
    assert declared["context"] == {"secret_fields": ["api_token"]}
    assert "api_token" not in json.dumps(plain)
    [difference] = registry.graph_differences(declared, plain)
    assert "secret fields ['api_token']" in difference
    with pytest.raises(timestep.AgentMismatchError, match="secret fields"):
        registry.check_graph("r", plain, agent)


@pytest.mark.parametrize(
    "bad",
    [{"secret_fields": "api_token"}, {"secret_fields": ("",)}, {"serializer": 3}],
)
def test_malformed_declarations_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ContextStorageError):
        ContextStorage(**bad)


# --- The TypeScript export: what crosses is the declaration's, not a guess ----------------------


async def _parked_state(context: Any) -> Any:
    from agents import Runner

    agent = mailer(f"Mailer{uuid.uuid4().hex[:6]}", ExecutionLog("/dev/null"))
    result = await Runner.run(agent, "email Ana", context=context)
    assert result.interruptions
    return result.to_state()


async def test_typescript_export_carries_the_declared_form_of_the_context() -> None:
    state = await _parked_state({"user": VISIBLE, "api_token": SECRET, "note": "call me"})
    declared = ContextStorage(secret_fields=("api_token", "note"))
    document = json.loads(to_typescript_json(state, context_storage=declared))
    assert document["context"]["context"] == {"user": VISIBLE}
    serialized = ContextStorage(serializer=lambda c: {"who": c["user"]})
    document = json.loads(to_typescript_json(state, context_storage=serialized))
    assert document["context"]["context"] == {"who": VISIBLE}


@pytest.mark.parametrize("key", ["api_token", "session_token", "sessionToken", "token"])
async def test_typescript_export_refuses_an_undeclared_token(key: str) -> None:
    state = await _parked_state({"user": VISIBLE, key: SECRET})
    with pytest.raises(StateConversionError, match="ContextStorage"):
        to_typescript_json(state)


async def test_typescript_export_keeps_token_counts() -> None:
    state = await _parked_state({"max_tokens": 100, "input_tokens": 3})
    document = json.loads(to_typescript_json(state))
    assert document["context"]["context"] == {"max_tokens": 100, "input_tokens": 3}


async def test_typescript_export_refuses_a_finished_run(timestep_db: str, tmp_path: Path) -> None:
    """docs/typescript-interop.md: a finished run has nothing to continue and is refused, by
    the adapter and by `state export` alike."""
    agent = Agent(name=f"Answerer{uuid.uuid4().hex[:6]}", model=TurnModel([], final="hi"))
    result = await timestep.run_agent(agent, "hello", run_id="done-1")
    assert result.final_output == "hi"
    with pytest.raises(StateConversionError, match="finished"):
        to_typescript_json(result.to_state())
    with pytest.raises(timestep.StateError, match="not awaiting approval"):
        await export_run_state("done-1", "typescript")
    store = timestep.RunStateStore(agent, run_id="done-1")
    await store.save(result.to_state())
    with pytest.raises(StateConversionError, match="finished"):
        await store.export("typescript")
    assert storage.database_target() is not None
