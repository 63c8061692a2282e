"""Typed, actionable errors from Ollama models, streaming and not."""

from __future__ import annotations

from typing import Any

import pytest
from agents import Agent, Runner, function_tool
from agents.exceptions import ModelBehaviorError
from agents.run import RunConfig

from tests.fake_ollama import (
    FakeOllama,
    Reply,
    error_reply,
    text_reply,
    tool_call,
    tool_reply,
)
from tests.pgcluster import free_port
from timestep.errors import (
    ModelAuthenticationError,
    ModelError,
    ModelNotFoundError,
    ModelProviderUnreachableError,
    TimestepError,
)
from timestep.models import MultiModelProvider


@function_tool
def get_weather(city: str) -> str:
    """Current weather for a city."""
    return f"sunny in {city}"


async def run(agent: Agent[Any], stream: bool, provider: Any | None = None) -> Any:
    config = RunConfig(model_provider=provider or MultiModelProvider(), tracing_disabled=True)
    if not stream:
        return (await Runner.run(agent, "hi", run_config=config)).final_output
    result = Runner.run_streamed(agent, "hi", run_config=config)
    async for _ in result.stream_events():
        pass
    return result.final_output


@pytest.mark.parametrize("stream", [False, True])
async def test_unreachable_server_names_host_and_ollama_serve(
    ollama_env: None, monkeypatch: pytest.MonkeyPatch, stream: bool
) -> None:
    host = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("OLLAMA_HOST", host)
    with pytest.raises(ModelProviderUnreachableError) as caught:
        await run(Agent(name="a", model="ollama/llama3.2"), stream)
    message = str(caught.value)
    assert host in message and "ollama serve" in message and "'llama3.2'" in message
    assert isinstance(caught.value, TimestepError)


@pytest.mark.parametrize("stream", [False, True])
async def test_unknown_model_says_ollama_pull(local_ollama: FakeOllama, stream: bool) -> None:
    with pytest.raises(ModelNotFoundError) as caught:
        await run(Agent(name="a", model="ollama/mistral:7b"), stream)
    message = str(caught.value)
    assert "ollama pull mistral:7b" in message
    assert local_ollama.url in message
    assert "not found" in message
    assert local_ollama.chat_requests[0]["model"] == "mistral:7b"


async def test_mid_stream_error_line(local_ollama: FakeOllama) -> None:
    local_ollama.add(Reply(text="partial answer here", stream_error="model runner crashed: OOM"))
    with pytest.raises(ModelError) as caught:
        await run(Agent(name="a", model="ollama/llama3.2"), stream=True)
    assert type(caught.value) is ModelError
    message = str(caught.value)
    assert "model runner crashed: OOM" in message and "'llama3.2'" in message
    assert local_ollama.url in message


async def test_server_error_status(local_ollama: FakeOllama) -> None:
    local_ollama.add(error_reply(500, "llama runner process has terminated"))
    with pytest.raises(ModelError, match=r"HTTP 500.*llama runner process has terminated"):
        await run(Agent(name="a", model="ollama/llama3.2"), stream=False)


@pytest.mark.parametrize("stream", [False, True])
async def test_cloud_401_names_the_key_variable(
    cloud_ollama: FakeOllama, monkeypatch: pytest.MonkeyPatch, stream: bool
) -> None:
    monkeypatch.setenv("OLLAMA_API_KEY", "wrong-key")
    provider = MultiModelProvider(ollama_cloud_url=cloud_ollama.url)
    with pytest.raises(ModelAuthenticationError) as caught:
        await run(Agent(name="a", model="ollama/kimi-k2:cloud"), stream, provider)
    message = str(caught.value)
    assert "OLLAMA_API_KEY" in message and "401" in message
    assert cloud_ollama.chat_headers[0]["authorization"] == "Bearer wrong-key"


async def test_cloud_model_without_key_fails_before_any_request(
    cloud_ollama: FakeOllama, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OLLAMA_API_KEY")
    provider = MultiModelProvider(ollama_cloud_url=cloud_ollama.url)
    with pytest.raises(ModelAuthenticationError, match="OLLAMA_API_KEY"):
        await run(Agent(name="a", model="ollama/gpt-oss:120b-cloud"), False, provider)
    assert cloud_ollama.requests == []


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("arguments", "problem"),
    [("{city: Paris", "not valid JSON"), ([1, 2], "not a JSON object"), ('"Paris"', "not a JSON")],
)
async def test_invalid_tool_arguments(
    local_ollama: FakeOllama, stream: bool, arguments: Any, problem: str
) -> None:
    local_ollama.add(tool_reply(tool_call("get_weather", arguments)))
    agent = Agent(name="a", model="ollama/llama3.2", tools=[get_weather])
    with pytest.raises(ModelBehaviorError) as caught:
        await run(agent, stream)
    assert "get_weather" in str(caught.value) and problem in str(caught.value)


async def test_valid_json_string_arguments_are_accepted(local_ollama: FakeOllama) -> None:
    # Some Ollama-compatible servers send arguments as a JSON string; that is fine.
    local_ollama.add(
        tool_reply(tool_call("get_weather", '{"city": "Bern"}', id="call_j1234567")),
        text_reply("ok"),
    )
    agent = Agent(name="a", model="ollama/llama3.2", tools=[get_weather])
    assert await run(agent, stream=False) == "ok"
    assert local_ollama.chat_requests[1]["messages"][-1]["content"] == "sunny in Bern"
