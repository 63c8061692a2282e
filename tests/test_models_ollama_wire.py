"""What reaches the Ollama server: schemas, messages, ids, options and headers."""

from __future__ import annotations

import json
from typing import Any, Literal

import pytest
from agents import Agent, ModelSettings, Runner, RunResult, function_tool
from agents.items import ToolCallItem
from agents.models.interface import ModelTracing
from agents.run import RunConfig
from openai.types.responses import ResponseFunctionToolCall
from openai.types.shared import Reasoning
from pydantic import BaseModel

from tests.fake_ollama import (
    CLOUD_KEY,
    FakeOllama,
    text_reply,
    tool_call,
    tool_reply,
)
from timestep.models import MultiModelProvider, MultiModelProviderMap, OllamaModelProvider


class Address(BaseModel):
    street: str
    city: str
    country: Literal["FR", "DE", "US"] = "FR"


class Person(BaseModel):
    name: str
    home: Address
    work: Address | None = None
    tags: list[str] = []


@function_tool
def register(person: Person, note: str | None = None) -> str:
    """Register a person with their addresses."""
    return f"registered {person.name} from {person.home.city}"


@function_tool
def get_weather(city: str) -> str:
    """Current weather for a city."""
    return f"sunny in {city}"


@function_tool
def get_time(city: str) -> str:
    """Current time in a city."""
    return f"noon in {city}"


def call_ids(result: RunResult) -> list[str]:
    """Call ids of the function calls the run made, in order."""
    return [
        item.raw_item.call_id
        for item in result.new_items
        if isinstance(item, ToolCallItem) and isinstance(item.raw_item, ResponseFunctionToolCall)
    ]


def config(provider: Any | None = None) -> RunConfig:
    return RunConfig(model_provider=provider or MultiModelProvider(), tracing_disabled=True)


async def test_full_tool_schemas_reach_the_server(local_ollama: FakeOllama) -> None:
    local_ollama.add(text_reply("ok"))
    agent = Agent(name="reg", model="ollama/llama3.2", tools=[register, get_weather])
    await Runner.run(agent, "register Ada", run_config=config())

    sent = {t["function"]["name"]: t for t in local_ollama.chat_requests[0]["tools"]}
    params = sent["register"]["function"]["parameters"]
    # Byte-for-byte the schema the SDK built: nothing pruned by the ollama client's Tool model.
    assert params == register.params_json_schema
    assert sent["register"]["type"] == "function"
    assert sent["register"]["function"]["description"] == "Register a person with their addresses."
    text = json.dumps(params)
    assert "$defs" in params and '"$ref": "#/$defs/Address"' in text
    assert "anyOf" in text
    address = params["$defs"]["Address"]
    assert set(address["properties"]) == {"street", "city", "country"}
    assert address["properties"]["country"]["enum"] == ["FR", "DE", "US"]
    assert "strict" not in sent["register"]["function"]


async def test_tool_results_carry_names_and_ids(local_ollama: FakeOllama) -> None:
    local_ollama.add(
        tool_reply(tool_call("get_weather", {"city": "Paris"}, id="call_w1234567")),
        text_reply("It is sunny in Paris"),
    )
    agent = Agent(name="w", instructions="Be brief.", model="ollama/llama3.2", tools=[get_weather])
    result = await Runner.run(agent, "weather in Paris?", run_config=config())
    assert result.final_output == "It is sunny in Paris"

    second = local_ollama.chat_requests[1]["messages"]
    assert second[0] == {"role": "system", "content": "Be brief."}
    assert second[1] == {"role": "user", "content": "weather in Paris?"}
    assert second[2]["role"] == "assistant"
    assert second[2]["tool_calls"] == [
        {"id": "call_w1234567", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
    ]
    assert second[3] == {
        "role": "tool",
        "content": "sunny in Paris",
        "tool_call_id": "call_w1234567",
        "tool_name": "get_weather",
    }
    assert call_ids(result) == ["call_w1234567"]


async def test_two_tools_in_one_turn(local_ollama: FakeOllama) -> None:
    local_ollama.add(
        tool_reply(
            tool_call("get_weather", {"city": "Paris"}, id="call_aaaa1111"),
            tool_call("get_time", {"city": "Tokyo"}, id="call_bbbb2222"),
        ),
        text_reply("Sunny in Paris, noon in Tokyo"),
    )
    agent = Agent(name="w", model="ollama/llama3.2", tools=[get_weather, get_time])
    result = await Runner.run(agent, "weather and time?", run_config=config())
    assert result.final_output == "Sunny in Paris, noon in Tokyo"

    messages = local_ollama.chat_requests[1]["messages"]
    calls = messages[1]["tool_calls"]
    assert [(c["id"], c["function"]["name"]) for c in calls] == [
        ("call_aaaa1111", "get_weather"),
        ("call_bbbb2222", "get_time"),
    ]
    results = [(m["tool_call_id"], m["tool_name"], m["content"]) for m in messages[2:]]
    assert results == [
        ("call_aaaa1111", "get_weather", "sunny in Paris"),
        ("call_bbbb2222", "get_time", "noon in Tokyo"),
    ]


async def test_missing_call_ids_are_generated_and_kept(local_ollama: FakeOllama) -> None:
    local_ollama.add(
        tool_reply(
            tool_call("get_weather", {"city": "Oslo"}, id=None),
            tool_call("get_weather", {"city": "Rome"}, id=None),
        ),
        text_reply("done"),
    )
    agent = Agent(name="w", model="ollama/llama3.2", tools=[get_weather])
    result = await Runner.run(agent, "two cities", run_config=config())

    ids = call_ids(result)
    assert len(ids) == 2 and len(set(ids)) == 2
    assert all(cid.startswith("call_") and len(cid) > 8 for cid in ids)
    messages = local_ollama.chat_requests[1]["messages"]
    assert [c["id"] for c in messages[1]["tool_calls"]] == ids
    assert [(m["tool_call_id"], m["content"]) for m in messages[2:]] == [
        (ids[0], "sunny in Oslo"),
        (ids[1], "sunny in Rome"),
    ]


async def test_options_keep_alive_and_settings(local_ollama: FakeOllama) -> None:
    local_ollama.add(text_reply("a"), text_reply("b"))
    provider = MultiModelProvider(
        MultiModelProviderMap(
            {"ollama": OllamaModelProvider(num_ctx=8192, keep_alive="10m", options={"top_k": 20})}
        )
    )
    plain = Agent(name="p", model="ollama/llama3.2")
    tuned = Agent(
        name="t",
        model="ollama/llama3.2",
        model_settings=ModelSettings(
            temperature=0.2,
            top_p=0.9,
            max_tokens=256,
            presence_penalty=0.5,
            extra_args={"num_ctx": 32768, "keep_alive": -1, "seed": 7, "stop": ["END"]},
        ),
    )
    await Runner.run(plain, "x", run_config=config(provider))
    await Runner.run(tuned, "y", run_config=config(provider))

    first, second = local_ollama.chat_requests
    assert first["options"] == {"num_ctx": 8192, "top_k": 20}
    assert first["keep_alive"] == "10m"
    assert "tools" not in first and "think" not in first and "format" not in first
    assert second["options"] == {
        "num_ctx": 32768,
        "top_k": 20,
        "temperature": 0.2,
        "top_p": 0.9,
        "num_predict": 256,
        "presence_penalty": 0.5,
        "seed": 7,
        "stop": ["END"],
    }
    assert second["keep_alive"] == -1


@pytest.mark.parametrize(
    ("effort", "think"), [("high", "high"), ("low", "low"), ("none", False), ("minimal", "low")]
)
async def test_reasoning_effort_maps_to_think(
    local_ollama: FakeOllama, effort: Any, think: Any
) -> None:
    local_ollama.add(text_reply("ok"))
    model = OllamaModelProvider().get_model("qwen3:8b")
    await model.get_response(
        None,
        "hi",
        ModelSettings(reasoning=Reasoning(effort=effort)),
        [],
        None,
        [],
        ModelTracing.DISABLED,
        previous_response_id=None,
        conversation_id=None,
        prompt=None,
    )
    assert local_ollama.chat_requests[0]["think"] == think


async def test_tool_choice_none_offers_no_tools(local_ollama: FakeOllama) -> None:
    local_ollama.add(text_reply("no tools"))
    agent = Agent(
        name="w",
        model="ollama/llama3.2",
        tools=[get_weather],
        model_settings=ModelSettings(tool_choice="none"),
    )
    await Runner.run(agent, "x", run_config=config())
    assert "tools" not in local_ollama.chat_requests[0]


async def test_local_gets_no_authorization_even_with_ollama_api_key(
    local_ollama: FakeOllama, cloud_ollama: FakeOllama
) -> None:
    assert CLOUD_KEY  # OLLAMA_API_KEY is set by the cloud fixture
    local_ollama.add(text_reply("local"))
    agent = Agent(name="l", model="ollama/llama3.2")
    await Runner.run(agent, "x", run_config=config())
    assert "authorization" not in local_ollama.chat_headers[0]
    assert cloud_ollama.requests == []


async def test_cloud_and_base_url_get_the_bearer_key(
    ollama_env: None, cloud_ollama: FakeOllama
) -> None:
    cloud_ollama.add(text_reply("from cloud"))
    provider = MultiModelProvider(ollama_cloud_url=cloud_ollama.url)
    agent = Agent(name="c", model="ollama/gpt-oss:120b-cloud")
    result = await Runner.run(agent, "x", run_config=config(provider))
    assert result.final_output == "from cloud"
    assert cloud_ollama.chat_requests[0]["model"] == "gpt-oss:120b"
    assert cloud_ollama.chat_headers[0]["authorization"] == f"Bearer {CLOUD_KEY}"

    with FakeOllama(api_key="gateway-key") as gateway:
        gateway.add(text_reply("from gateway"))
        provider = MultiModelProvider(ollama_base_url=gateway.url, ollama_api_key="gateway-key")
        agent = Agent(name="g", model="ollama/llama3.2")
        assert (await Runner.run(agent, "x", run_config=config(provider))).final_output == (
            "from gateway"
        )
        assert gateway.chat_headers[0]["authorization"] == "Bearer gateway-key"


async def test_base_url_without_key_sends_no_env_key(
    ollama_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeOllama() as server:
        server.add(text_reply("ok"))
        provider = OllamaModelProvider(base_url=server.url)
        agent = Agent(name="g", model="llama3.2")
        await Runner.run(agent, "x", run_config=config(provider))
        assert "authorization" not in server.chat_headers[0]


async def test_fake_server_speaks_tags_and_show(local_ollama: FakeOllama) -> None:
    # The official client's own calls work against the fake unchanged.
    from ollama import AsyncClient, ResponseError

    client = AsyncClient(host=local_ollama.url)
    listed = await client.list()
    assert sorted(str(m.model) for m in listed.models) == ["llama3.2", "qwen3:8b"]
    shown = await client.show("llama3.2")
    assert "tools" in (shown.capabilities or [])
    with pytest.raises(ResponseError) as caught:
        await client.show("mistral")
    assert caught.value.status_code == 404


async def test_direct_model_and_caller_supplied_client(local_ollama: FakeOllama) -> None:
    from agents.models.interface import ModelTracing
    from ollama import AsyncClient

    from timestep.models import OllamaModel

    local_ollama.add(text_reply("direct"), text_reply("custom client"))
    model = OllamaModel("llama3.2", host=local_ollama.url, num_ctx=4096)
    response = await model.get_response(
        "sys",
        [{"role": "developer", "content": "dev note"}, {"role": "user", "content": "hi"}],
        ModelSettings(),
        [],
        None,
        [],
        ModelTracing.DISABLED,
        previous_response_id=None,
        conversation_id=None,
        prompt=None,
    )
    await model.close()
    assert response.output[0].content[0].text == "direct"  # type: ignore[union-attr,index]
    assert (response.usage.requests, response.usage.input_tokens) == (1, 12)
    first = local_ollama.chat_requests[0]
    assert first["messages"] == [
        {"role": "system", "content": "sys"},
        {"role": "system", "content": "dev note"},
        {"role": "user", "content": "hi"},
    ]
    assert first["options"] == {"num_ctx": 4096}

    client = AsyncClient(host=local_ollama.url, headers={"X-Team": "search"})
    provider = OllamaModelProvider(ollama_client=client)
    agent = Agent(name="c", model="llama3.2")
    result = await Runner.run(agent, "x", run_config=config(provider))
    assert result.final_output == "custom client"
    assert local_ollama.chat_headers[1]["x-team"] == "search"


async def test_images_are_sent_as_base64(local_ollama: FakeOllama) -> None:
    local_ollama.add(text_reply("a cat"))
    agent = Agent(name="v", model="ollama/llama3.2")
    image = {
        "type": "input_image",
        "image_url": "data:image/png;base64,iVBORw0KGgo=",
        "detail": "auto",
    }
    user = {"role": "user", "content": [{"type": "input_text", "text": "what is it?"}, image]}
    await Runner.run(agent, [user], run_config=config())  # type: ignore[list-item]
    assert local_ollama.chat_requests[0]["messages"] == [
        {"role": "user", "content": "what is it?", "images": ["iVBORw0KGgo="]}
    ]
