"""Code written for the original timestep 2026.0.x keeps working (issue 15's probes).

Each test is one probe of the original's API: constructors and their positional order, the
errors it raised (also as the builtin type the original used), and its default provider in a
process that runs several event loops. Stores run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from agents import Agent, RunConfig, Runner, RunState, function_tool
from agents.models.multi_provider import MultiProvider
from agents.models.openai_provider import OpenAIProvider
from ollama import AsyncClient

import timestep
from timestep import (
    InterruptionException,
    ModelConfigurationError,
    MultiModelProvider,
    MultiModelProviderMap,
    OllamaModel,
    OllamaModelProvider,
    RunStateStore,
    StateError,
    StateNotFoundError,
    TimestepError,
)
from timestep import store as store_module
from timestep.state import schema

from .fake_ollama import FakeOllama, text_reply
from .fake_openai import FakeOpenAI
from .helpers import TurnModel

# --- InterruptionException ---------------------------------------------------------------------


def test_interruption_exception_constructs_as_in_the_original() -> None:
    bare = InterruptionException()
    assert str(bare) == "Agent execution interrupted for approval"
    assert bare.run_id is None and bare.pending_approvals == []
    custom = InterruptionException("waiting for Ana")
    assert str(custom) == "waiting for Ana" and custom.pending_approvals == []
    pending = [{"call_id": "c1", "tool_name": "send_email", "arguments": "{}"}]
    full = InterruptionException(run_id="r1", pending=pending)
    assert full.run_id == "r1" and full.pending_approvals == pending
    assert "send_email (c1)" in str(full) and "timestep approve" in str(full)
    with pytest.raises(InterruptionException):
        raise InterruptionException()
    assert isinstance(bare, TimestepError)


# --- RunStateStore -----------------------------------------------------------------------------


def mailer() -> Agent[Any]:
    @function_tool(needs_approval=True)
    def send_email(to: str, body: str) -> str:
        """Send an email."""
        return f"sent to {to}"

    model = TurnModel([[("send_email", {"to": "ana@example.com", "body": "hi"})]], final="ok")
    return Agent(name="Mailer", model=model, tools=[send_email])


async def paused(agent: Agent[Any]) -> RunState[Any, Any]:
    result = await Runner.run(agent, "email Ana", run_config=RunConfig(tracing_disabled=True))
    assert result.interruptions
    return result.to_state()


@pytest.fixture
def store_url(database_url: str) -> Any:
    yield database_url
    store_module.dispose_engines()


def rows(url: str, key: str) -> int:
    engine = store_module._engine_for(url)
    with engine.connect() as connection:
        return connection.execute(
            sa.select(sa.func.count()).select_from(schema.states).where(schema.states.c.key == key)
        ).scalar_one()


async def test_store_positional_order_and_ids(store_url: str) -> None:
    agent = mailer()
    state = await paused(agent)
    # (agent, run_id, session_id, connection_string), as in the original.
    by_run = RunStateStore(agent, "run-1", None, store_url)
    assert (by_run.key, by_run.run_id, by_run.session_id) == ("run:run-1", "run-1", None)
    by_session = RunStateStore(agent, None, "sess-1", store_url)
    assert by_session.key == "session:sess-1"
    both = RunStateStore(agent, "run-2", "sess-2", store_url)
    assert both.key == "run:run-2", "with both ids, run_id wins"

    # With neither id, as in the original: no run id until first use, then a fresh one.
    generated = RunStateStore(agent, connection_string=store_url)
    assert generated.run_id is None
    await generated.clear()  # nothing saved yet: nothing to do, and still no id
    assert generated.run_id is None
    await generated.save(state)
    assert generated.run_id is not None and generated.key == f"run:{generated.run_id}"
    uuid.UUID(generated.run_id)  # a real, fresh id
    other = RunStateStore(agent, connection_string=store_url)
    with pytest.raises(FileNotFoundError):
        await other.load()
    assert other.run_id not in (None, generated.run_id)
    again = RunStateStore(agent, generated.run_id, None, store_url)
    assert [i.name for i in (await again.load()).get_interruptions()] == ["send_email"]

    await both.save(state)
    assert rows(store_url, "run:run-2") == 1 and rows(store_url, "session:sess-2") == 0


def test_store_accepts_the_original_pglite_arguments(tmp_path: Path) -> None:
    agent = mailer()
    with pytest.warns(DeprecationWarning, match="import-pglite"):
        store = RunStateStore(agent, "r", None, None, True, str(tmp_path / "pglite"))
    assert store.use_pglite is True and store.pglite_path == str(tmp_path / "pglite")
    RunStateStore(agent, "r", use_pglite=False)  # the original's explicit "no": silent
    with pytest.raises(TimestepError, match="use_pglite"):
        RunStateStore(agent, "r", use_pglite="yes")  # type: ignore[arg-type]
    with pytest.raises(TimestepError, match="run_id"):
        RunStateStore(agent, "")
    # The original's check, with its exception type and message (and a Timestep error too).
    with pytest.raises(ValueError, match="^agent is required") as caught:
        RunStateStore(None)  # type: ignore[arg-type]
    assert isinstance(caught.value, TimestepError)
    with pytest.raises(TypeError, match="expects an agents.Agent"):
        RunStateStore("Mailer")  # type: ignore[arg-type]


async def test_load_of_nothing_is_also_a_file_not_found_error(store_url: str) -> None:
    store = RunStateStore(mailer(), "nobody", None, store_url)
    with pytest.raises(FileNotFoundError) as caught:
        await store.load()
    assert isinstance(caught.value, StateNotFoundError)
    assert isinstance(caught.value, TimestepError)
    assert "'run:nobody'" in str(caught.value) and "save" in str(caught.value)


class StateLike:
    """Not a RunState: just something with `to_json()`, as the original's save() accepted."""

    def __init__(self, document: Any) -> None:
        self.document = document

    def to_json(self) -> Any:
        return self.document


async def test_save_accepts_any_object_with_to_json(store_url: str) -> None:
    agent = mailer()
    document = (await paused(agent)).to_json()
    store = RunStateStore(agent, "like", None, store_url)
    await store.save(StateLike(document))
    loaded = await store.load()
    assert [i.name for i in loaded.get_interruptions()] == ["send_email"]
    await store.save(StateLike(json.dumps(document)))  # a JSON string works too
    assert (await store.load()).to_json()["original_input"] == "email Ana"

    empty = RunStateStore(agent, "bad", None, store_url)
    for bad in (object(), StateLike([1, 2]), StateLike({"x": {1, 2}})):
        with pytest.raises(StateError):
            await empty.save(bad)
    assert rows(store_url, "run:bad") == 0, "nothing is written for a refused state"


async def test_close_releases_connections_and_the_store_stays_usable(store_url: str) -> None:
    agent = mailer()
    store = RunStateStore(agent, "closing", None, store_url)
    await store.save(await paused(agent))
    engine = store_module._engine_for(store_url)
    assert engine.pool.checkedin() >= 1
    await store.close()
    assert engine.pool.checkedin() == 0
    await store.close()  # idempotent
    assert (await store.load()).get_interruptions()
    await RunStateStore(agent, "configured").close()  # the configured database: nothing to do


async def test_clear_deletes_the_row(store_url: str) -> None:
    agent = mailer()
    store = RunStateStore(agent, "gone", None, store_url)
    await store.save(await paused(agent))
    assert rows(store_url, "run:gone") == 1
    await store.clear()
    assert rows(store_url, "run:gone") == 0, "clear() keeps no history (see the README)"
    with pytest.raises(FileNotFoundError):
        await store.load()


# --- models ------------------------------------------------------------------------------------


def test_provider_map_remove_missing_is_a_no_op_and_set_mapping_copies() -> None:
    provider = OllamaModelProvider()
    providers = MultiModelProviderMap()
    providers.remove_provider("nothing-here")
    mapping = {"mine": provider}
    providers.set_mapping(mapping)
    mapping["other"] = provider
    mapping.pop("mine")
    assert providers.get_mapping() == {"mine": provider}
    providers.remove_provider("mine")
    providers.remove_provider("mine")
    assert providers.get_mapping() == {}


async def test_multi_model_provider_takes_openai_options_positionally() -> None:
    with FakeOpenAI(reply="positional") as fake:
        # (provider_map, openai_api_key, openai_base_url, ...), as in the original.
        provider = MultiModelProvider(None, "sk-positional-test", fake.url)
        agent: Agent[Any] = Agent(name="A", model="gpt-4.1")
        config = RunConfig(model_provider=provider, tracing_disabled=True)
        result = await Runner.run(agent, "ping", run_config=config)
        await provider.aclose()
    assert result.final_output == "positional"
    assert fake.requests[0]["headers"]["authorization"] == "Bearer sk-positional-test"
    assert fake.requests[0]["body"]["model"] == "gpt-4.1"


def test_unknown_prefix_is_also_a_value_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="^Unknown prefix: nope: ") as caught:
        MultiModelProvider().get_model("nope/model")
    assert isinstance(caught.value, TimestepError)
    # The original said the same of litellm/ (it had no LiteLLM route); ours routes it when
    # the SDK's litellm extension is installed, and says so when it is not.
    monkeypatch.setitem(sys.modules, "agents.extensions.models.litellm_provider", None)
    with pytest.raises(ValueError, match="^Unknown prefix: litellm: .*not installed") as caught:
        MultiModelProvider().get_model("litellm/openai/gpt-4.1")
    assert isinstance(caught.value, TimestepError)


async def test_ollama_model_takes_its_client_positionally(local_ollama: FakeOllama) -> None:
    local_ollama.add(text_reply("from the given client"))
    model = OllamaModel("llama3.2", AsyncClient(host=local_ollama.url))
    agent: Agent[Any] = Agent(name="A", model=model)
    result = await Runner.run(agent, "hi", run_config=RunConfig(tracing_disabled=True))
    assert result.final_output == "from the given client"
    assert local_ollama.chat_requests[0]["model"] == "llama3.2"
    with pytest.raises(ModelConfigurationError, match="host=") as caught:
        OllamaModel("llama3.2", "http://localhost:11434")  # type: ignore[arg-type]
    assert isinstance(caught.value, ValueError)


def test_ollama_provider_refuses_a_client_with_a_key_or_url() -> None:
    client = AsyncClient(host="http://127.0.0.1:1")
    for extra in ({"api_key": "ollama-key"}, {"base_url": "http://127.0.0.1:2"}):
        with pytest.raises(ModelConfigurationError, match="either ollama_client or") as caught:
            OllamaModelProvider(ollama_client=client, **extra)  # type: ignore[arg-type]
        assert isinstance(caught.value, ValueError)
        assert "ollama-key" not in str(caught.value)
    OllamaModelProvider(ollama_client=client)  # alone it is fine


def _runs_in_fresh_loops(provider: Any, loops: int = 3) -> list[str]:
    """One `asyncio.run` per run, as pytest-asyncio's per-test loops do; outcome of each."""
    agent: Agent[Any] = Agent(name="A", model="gpt-4.1")
    outcomes = []
    for _ in range(loops):
        config = RunConfig(model_provider=provider, tracing_disabled=True)
        try:
            result = asyncio.run(Runner.run(agent, "ping", run_config=config))
            outcomes.append(str(result.final_output))
        except RuntimeError as error:
            outcomes.append(f"RuntimeError: {error}")
    return outcomes


def test_default_provider_works_across_event_loops(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-loops-test")
    monkeypatch.setenv("OPENAI_AGENTS_DISABLE_TRACING", "1")
    with FakeOpenAI(reply="pong") as fake:
        monkeypatch.setenv("OPENAI_BASE_URL", fake.url)
        # The fake reproduces the SDK's failure (its process-wide HTTP client keeps pooled
        # connections of a closed loop), so the check below can fail.
        sdk = _runs_in_fresh_loops(MultiProvider())
        assert "RuntimeError: Event loop is closed" in sdk, sdk
        assert _runs_in_fresh_loops(MultiModelProvider()) == ["pong"] * 3
        fresh = [_runs_in_fresh_loops(MultiModelProvider(), loops=1)[0] for _ in range(3)]
        assert fresh == ["pong"] * 3
        explicit = MultiModelProvider(openai_api_key="sk-explicit-test", openai_base_url=fake.url)
        assert _runs_in_fresh_loops(explicit) == ["pong"] * 3
    assert isinstance(MultiModelProvider().openai_provider.get_model("gpt-4.1"), object)


def test_a_given_openai_client_is_used_as_is() -> None:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(api_key="sk-given-test", base_url="http://127.0.0.1:1/v1")
    provider = MultiModelProvider(openai_client=client)
    assert isinstance(provider.openai_provider, OpenAIProvider)


def test_public_names() -> None:
    assert "ModelConfigurationError" in timestep.__all__
