"""Pins of what `timestep/_compat/` relies on in the pinned dependencies.

Each test exercises one hook against the installed package, so that an upgrade that changes a
private name or its behaviour fails here, next to the one file that has to change.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from agents import (
    Agent,
    Model,
    ModelProvider,
    RunConfig,
    RunContextWrapper,
    Runner,
    RunResult,
    RunResultStreaming,
    UserError,
    function_tool,
    set_default_openai_key,
)
from agents.models.multi_provider import MultiProvider
from agents.tracing import TracingProcessor
from agents.tracing.provider import DefaultTraceProvider
from ollama import AsyncClient
from openai.types.responses import ResponseUsage
from openai.types.responses.response_usage import InputTokensDetails, OutputTokensDetails

from timestep._compat import agents as agents_compat
from timestep._compat import dbos as dbos_compat
from timestep._compat import ollama as ollama_compat

from .helpers import StreamingTurnModel, TurnModel


@function_tool
def double(n: int) -> int:
    """Double n."""
    return 2 * n


def _agent(final: str = "done") -> Agent[Any]:
    return Agent(
        name="Doubler", model=TurnModel([[("double", {"n": 2})]], final=final), tools=[double]
    )


# --- openai-agents ------------------------------------------------------------------------------


async def test_a_state_carries_its_context_and_last_agent() -> None:
    agent = _agent()
    result = await Runner.run(agent, "go", context={"user": "ada"})
    state = result.to_state()
    wrapper = agents_compat.state_context(state)
    assert isinstance(wrapper, RunContextWrapper) and wrapper.usage.requests == 2
    assert agents_compat.application_context(state) == {"user": "ada"}
    assert agents_compat.state_last_agent(state) is agent


async def test_results_rebuilt_from_a_state_match_the_runs_result() -> None:
    agent = _agent()
    result = await Runner.run(agent, "go")
    state = result.to_state()
    rebuilt = agents_compat.result_from_state(state, agent, "done", RunResult)
    streamed = agents_compat.streamed_result_from_state(state, agent, "done", RunResultStreaming)
    for again in (rebuilt, streamed):
        assert [i.type for i in again.new_items] == [i.type for i in result.new_items]
        assert len(again.raw_responses) == len(result.raw_responses) == 2
        assert again.final_output == "done" and again.last_agent is agent
        # to_state() resumes where the run stood: the same turn, items and input.
        assert again.to_state().to_json() == state.to_json()
    assert streamed.is_complete
    assert [event async for event in streamed.stream_events()] == []


async def test_an_adopted_result_sees_the_run_loops_writes() -> None:
    from timestep.result import DurableRunResult, DurableRunResultStreaming

    live = Runner.run_streamed(Agent(name="A", model=StreamingTurnModel([], final="x y")), "go")
    adopted = agents_compat.adopt_result(live, DurableRunResultStreaming)
    adopted.run_id = "r"
    assert not adopted.is_complete and adopted.final_output is None
    async for _event in live.stream_events():  # the SDK's run loop writes to `live` only
        pass
    assert adopted.is_complete and adopted.final_output == "x y" == live.final_output
    assert adopted.new_items == live.new_items and adopted.run_id == "r"
    with pytest.raises(TypeError, match="adopts a RunResult"):
        agents_compat.adopt_result(live, DurableRunResult)


async def test_a_replaced_event_queue_carries_the_streamed_events() -> None:
    seen: list[str] = []

    class Recording(asyncio.Queue):  # type: ignore[type-arg]
        def put_nowait(self, item: Any) -> None:
            seen.append(type(item).__name__)
            super().put_nowait(item)

    model = StreamingTurnModel([[("double", {"n": 2})]], final="four")
    live = Runner.run_streamed(Agent(name="S", model=model, tools=[double]), "go")
    agents_compat.replace_event_queue(live, Recording())
    consumed = [type(event).__name__ async for event in live.stream_events()]
    assert "RunItemStreamEvent" in consumed and live.final_output == "four"
    assert [name for name in seen if name != "QueueCompleteSentinel"] == consumed


async def test_a_streamed_runs_failure_ends_its_loop_task() -> None:
    """The segment awaits the run loop task and then checks the stored exception: a model error
    is raised by the task; the stored exception is kept for what the loop swallows."""

    class Broken(TurnModel):
        async def stream_response(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
            raise RuntimeError("model down")
            yield  # an async generator

    live = Runner.run_streamed(Agent(name="B", model=Broken([])), "go")
    assert live.run_loop_task is not None
    with pytest.raises(RuntimeError, match="model down"):
        await asyncio.shield(live.run_loop_task)
    assert agents_compat.stored_exception(live) is None
    finished = Runner.run_streamed(Agent(name="C", model=StreamingTurnModel([], final="ok")), "go")
    async for _event in finished.stream_events():
        pass
    assert agents_compat.stored_exception(finished) is None and finished.final_output == "ok"


def test_responses_usage_converts_as_the_sdks_models_do() -> None:
    usage = agents_compat.usage_from_response(
        ResponseUsage(
            input_tokens=7,
            output_tokens=3,
            total_tokens=10,
            input_tokens_details=InputTokensDetails(cached_tokens=2, cache_write_tokens=0),
            output_tokens_details=OutputTokensDetails(reasoning_tokens=1),
        )
    )
    assert (usage.requests, usage.input_tokens, usage.output_tokens, usage.total_tokens) == (
        1,
        7,
        3,
        10,
    )
    assert usage.input_tokens_details.cached_tokens == 2
    assert usage.output_tokens_details.reasoning_tokens == 1


def test_the_default_openai_key_is_read_back() -> None:
    from agents.models import _openai_shared

    before = _openai_shared.get_default_openai_key()
    try:
        set_default_openai_key("sk-pinned", use_for_tracing=False)
        assert agents_compat.default_openai_key() == "sk-pinned"
    finally:
        _openai_shared.set_default_openai_key(before)  # type: ignore[arg-type]
    assert agents_compat.default_openai_client() is None or hasattr(
        agents_compat.default_openai_client(), "responses"
    )


def test_multi_provider_hooks_are_what_the_sdk_calls() -> None:
    created: list[str] = []
    model = TurnModel([])

    class Pinned(ModelProvider):
        def get_model(self, model_name: str | None) -> Model:
            assert model_name == "m"
            return model

    class Hooks(agents_compat.MultiProviderHooks):
        def create_fallback_provider(self, prefix: str) -> ModelProvider:
            created.append(prefix)
            return Pinned()

        def resolve_prefixed_model(
            self, *, original_model_name: str, prefix: str, stripped_model_name: str | None
        ) -> tuple[ModelProvider, str | None]:
            if prefix == "pinned":
                return self.fallback_provider(prefix), stripped_model_name
            return super().resolve_prefixed_model(
                original_model_name=original_model_name,
                prefix=prefix,
                stripped_model_name=stripped_model_name,
            )

    hooks = Hooks()
    assert hooks.get_model("pinned/m") is model and hooks.get_model("pinned/m") is model
    assert created == ["pinned"]  # the SDK caches the fallback provider
    assert hooks.unknown_prefix_mode == "error"
    with pytest.raises(UserError, match="Unknown prefix: nope"):
        hooks.get_model("nope/m")


def test_trace_processors_are_listed() -> None:
    class Nothing(TracingProcessor):
        def on_trace_start(self, trace: Any) -> None: ...
        def on_trace_end(self, trace: Any) -> None: ...
        def on_span_start(self, span: Any) -> None: ...
        def on_span_end(self, span: Any) -> None: ...
        def shutdown(self) -> None: ...
        def force_flush(self) -> None: ...

    provider = DefaultTraceProvider()
    processor = Nothing()
    provider.set_processors([processor])
    assert agents_compat.trace_processors(provider) == [processor]


def test_tool_invocation_identity_is_deterministic() -> None:
    call = {"type": "function_call", "name": "send", "call_id": "c1", "arguments": '{"to":"bob"}'}
    first = agents_compat.tool_invocation_identity_and_scope(call, None)
    assert first == agents_compat.tool_invocation_identity_and_scope(dict(call), None)
    assert first != agents_compat.tool_invocation_identity_and_scope({**call, "name": "x"}, None)


def test_model_span_helpers_are_callable() -> None:
    helpers = agents_compat.model_span_helpers()
    assert len(helpers) == 3 and all(callable(helper) for helper in helpers)


# --- dbos ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_dbos_instance_hooks(timestep_db: str) -> None:
    import sqlalchemy as sa
    from dbos import DBOS

    from timestep._engine import launch

    await asyncio.to_thread(launch.ensure_dbos)  # DBOS refuses its sync calls in a loop
    dbos = dbos_compat.instance()
    assert dbos is not None and dbos_compat.is_launched(dbos)
    with dbos_compat.system_engine(dbos).connect() as connection:
        assert connection.execute(sa.text("select count(*) from workflow_status")).scalar() == 0
    assert type(dbos_compat.serializer(dbos)).__name__ == "DBOSPortableJSONSerializer"
    queues = dbos_compat.listened_queues(dbos)
    assert queues is not None
    dbos_compat.listen_to_queue(dbos, "timestep.pinned")
    assert "timestep.pinned" in (dbos_compat.listened_queues(dbos) or [])

    @DBOS.workflow(name="timestep.test_compat.wait")
    async def wait() -> str:
        await DBOS.sleep_async(30)
        return "woke"

    handle = await DBOS.start_workflow_async(wait)
    assert dbos_compat.runs_here(handle)
    assert not dbos_compat.runs_here(await DBOS.retrieve_workflow_async(handle.workflow_id))
    await DBOS.cancel_workflow_async(handle.workflow_id)
    with pytest.raises(Exception) as raised:
        await (await DBOS.retrieve_workflow_async(handle.workflow_id)).get_result()
    assert dbos_compat.is_awaited_cancellation(raised.value)
    assert dbos_compat.is_stop(RuntimeError("wrapped")) is False
    try:
        raise RuntimeError("outer") from raised.value
    except RuntimeError as outer:
        assert dbos_compat.is_stop(outer)
    # Last: a stopping process's instance no longer dequeues (its queue thread's event is set).
    events = dbos.background_thread_stop_events
    assert events and all(isinstance(e, threading.Event) for e in events)
    dbos_compat.stop_dequeuing(dbos)
    assert all(e.is_set() for e in events)


def test_a_workflow_moves_to_another_queue_only_while_it_waits(timestep_db: str) -> None:
    """`move_waiting_in` writes DBOS's workflow_status in the caller's transaction (its schema
    on PostgreSQL), and leaves a workflow that is no longer queued."""
    from dbos import EnqueueOptions

    from timestep._engine import queues
    from timestep.state.storage import storage_engine

    client = queues.client()
    options: EnqueueOptions = {"queue_name": "timestep.compat-a", "workflow_name": "nothing"}
    workflow_id = client.enqueue(options).workflow_id

    def move() -> bool:
        with storage_engine().begin() as connection:
            return dbos_compat.move_waiting_in(client, connection, workflow_id, "timestep.compat-b")

    assert move()
    (status,) = client.list_workflows(workflow_ids=[workflow_id], load_input=False)
    assert (status.status, status.queue_name) == ("ENQUEUED", "timestep.compat-b")
    client.cancel_workflow(workflow_id)
    assert not move()


async def test_agent_tools_run_the_agent_they_are_rebound_to() -> None:
    inner = Agent(name="Inner", model=TurnModel([], final="from the original"))
    replacement = Agent(name="Inner", model=TurnModel([], final="from the replacement"))
    given = RunConfig(model_provider=MultiProvider())
    seen: list[RunConfig] = []

    def note_config(config: RunConfig) -> RunConfig:
        seen.append(config)
        return config

    tool = inner.as_tool("ask", "Ask the inner agent.", run_config=given, max_turns=3)
    assert agents_compat.agent_of_agent_tool(tool) is inner
    assert agents_compat.agent_of_agent_tool(double) is None
    rebound = agents_compat.rebind_agent_tool(tool, replacement, note_config)
    assert seen == [given]
    assert agents_compat.agent_of_agent_tool(rebound) is replacement
    outer = Agent(
        name="Outer",
        model=TurnModel([[("ask", {"input": "hi"})]], final="outer done"),
        tools=[rebound],
    )
    result = await Runner.run(outer, "go")
    outputs = [item.output for item in result.new_items if item.type == "tool_call_output_item"]
    assert outputs == ["from the replacement"]
    # The original tool is untouched.
    result = await Runner.run(outer.clone(tools=[tool]), "go")
    outputs = [item.output for item in result.new_items if item.type == "tool_call_output_item"]
    assert outputs == ["from the original"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_next_step_id_is_the_id_the_next_step_takes(timestep_db: str) -> None:
    from dbos import DBOS

    from timestep._engine import launch

    await asyncio.to_thread(launch.ensure_dbos)

    @DBOS.workflow(name="timestep.test_compat.steps")
    async def steps() -> list[int]:
        seen = []
        for _ in range(3):
            predicted = dbos_compat.next_step_id()
            seen.append(predicted)
            assert await DBOS.run_step_async(None, _step_id) == predicted
        return seen

    handle = await DBOS.start_workflow_async(steps)
    assert await handle.get_result() == [1, 2, 3]


async def _step_id() -> int | None:
    from dbos import DBOS

    return DBOS.step_id


# --- ollama -------------------------------------------------------------------------------------


async def test_ollama_raw_request_sends_the_body_untouched(tmp_path: Path) -> None:
    sent: list[bytes] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request.content)
        return httpx.Response(200, json={"message": {"role": "assistant", "content": "hi"}})

    client = AsyncClient(host="http://ollama.invalid", transport=httpx.MockTransport(answer))
    body = {"model": "m", "messages": [{"role": "tool", "tool_call_id": "c1", "content": "x"}]}
    reply = await ollama_compat.post_json(client, "/api/chat", body)
    assert reply == {"message": {"role": "assistant", "content": "hi"}}
    assert b'"tool_call_id": "c1"' in sent[0] or b'"tool_call_id":"c1"' in sent[0]


def test_dbos_connection_retries_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """`db_retry` retries a lost connection with a backoff that `bound_connection_retries`
    bounds: both where it decorates at call time (the closure that records a step's output)
    and on the methods it decorated at class definition."""
    import psycopg
    import sqlalchemy as sa
    from dbos import _sys_db

    dbos_compat.bound_connection_retries(0.25, 1.0)
    dbos_compat.bound_connection_retries(0.25, 1.0)  # idempotent: still bounded once
    sleeps: list[float] = []
    monkeypatch.setattr(_sys_db.time, "sleep", sleeps.append)
    lost = sa.exc.OperationalError(
        "SELECT 1", None, psycopg.OperationalError("connection failed: connection refused")
    )
    failures = iter([lost] * 8)

    def flaky(_db: Any) -> str:
        error = next(failures, None)
        if error is not None:
            raise error
        return "written"

    class Database:
        _is_sqlite = False

    assert _sys_db.db_retry()(flaky)(Database()) == "written"
    assert len(sleeps) == 8 and max(sleeps) <= 1.5, sleeps  # DBOS's ±50% jitter on 1 s
    assert "db_retry(sys_db=self)" in inspect.getsource(
        _sys_db.SystemDatabase.record_operation_result
    )
    # A method decorated at class definition carries the bounds too.
    method = _sys_db.SystemDatabase.check_operation_execution
    bounds = [cell.cell_contents for cell in method.__closure__ or ()]
    assert 0.25 in bounds and 1.0 in bounds and 60.0 not in bounds, bounds
