"""Agents running on Ollama through the SDK runner: streaming, handoffs, structured output,
thinking, usage, tracing, and local plus cloud models in one process."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from agents import Agent, ModelSettings, Runner, function_tool
from agents.agent_output import AgentOutputSchema
from agents.items import ReasoningItem
from agents.run import RunConfig
from agents.tracing import (
    GenerationSpanData,
    get_trace_provider,
    set_trace_processors,
)
from openai.types.shared import Reasoning
from pydantic import BaseModel

from tests.fake_ollama import (
    CLOUD_KEY,
    FakeOllama,
    text_reply,
    tool_call,
    tool_reply,
)
from tests.helpers import SpanCollector
from timestep.models import MultiModelProvider


@function_tool
def get_weather(city: str) -> str:
    """Current weather for a city."""
    return f"sunny in {city}"


class Forecast(BaseModel):
    city: str
    temperature_c: float
    conditions: list[str]


def config(provider: Any | None = None) -> RunConfig:
    return RunConfig(model_provider=provider or MultiModelProvider(), tracing_disabled=True)


async def test_streamed_tool_round_trip_emits_sdk_events(local_ollama: FakeOllama) -> None:
    local_ollama.add(
        tool_reply(tool_call("get_weather", {"city": "Paris"}, id="call_s1234567")),
        text_reply("It is sunny in Paris today"),
    )
    agent = Agent(name="w", model="ollama/llama3.2", tools=[get_weather])
    result = Runner.run_streamed(agent, "weather?", run_config=config())
    raw: list[Any] = []
    items: list[str] = []
    async for event in result.stream_events():
        if event.type == "raw_response_event":
            raw.append(event.data)
        elif event.type == "run_item_stream_event":
            items.append(event.name)

    assert result.final_output == "It is sunny in Paris today"
    types = [e.type for e in raw]
    assert types.count("response.created") == 2 and types.count("response.completed") == 2
    deltas = "".join(e.delta for e in raw if e.type == "response.output_text.delta")
    assert deltas == "It is sunny in Paris today"
    assert len([e for e in raw if e.type == "response.output_text.delta"]) > 1
    call_items = [
        e.item
        for e in raw
        if e.type == "response.output_item.done" and e.item.type == "function_call"
    ]
    assert [(c.call_id, c.name, c.arguments) for c in call_items] == [
        ("call_s1234567", "get_weather", '{"city": "Paris"}')
    ]
    assert items == ["tool_called", "tool_output", "message_output_created"]
    assert all(r["stream"] is True for r in local_ollama.chat_requests)
    tool_msg = local_ollama.chat_requests[1]["messages"][-1]
    assert (tool_msg["tool_call_id"], tool_msg["tool_name"]) == ("call_s1234567", "get_weather")
    usage = result.context_wrapper.usage
    assert (usage.requests, usage.input_tokens, usage.output_tokens) == (2, 24, 10)


async def test_streamed_two_tools_in_one_turn(local_ollama: FakeOllama) -> None:
    local_ollama.add(
        tool_reply(
            tool_call("get_weather", {"city": "Oslo"}, id="call_o1111111"),
            tool_call("get_weather", {"city": "Rome"}, id="call_r2222222"),
        ),
        text_reply("both sunny"),
    )
    agent = Agent(name="w", model="ollama/llama3.2", tools=[get_weather])
    result = Runner.run_streamed(agent, "two", run_config=config())
    async for _ in result.stream_events():
        pass
    assert result.final_output == "both sunny"
    outputs = [m for m in local_ollama.chat_requests[1]["messages"] if m["role"] == "tool"]
    assert [(m["tool_call_id"], m["content"]) for m in outputs] == [
        ("call_o1111111", "sunny in Oslo"),
        ("call_r2222222", "sunny in Rome"),
    ]


@pytest.mark.parametrize("stream", [False, True])
async def test_handoff(local_ollama: FakeOllama, stream: bool) -> None:
    spanish = Agent(name="Spanish", instructions="Answer in Spanish.", model="ollama/qwen3:8b")
    triage = Agent(
        name="Triage",
        instructions="Route the user.",
        model="ollama/llama3.2",
        handoffs=[spanish],
    )
    local_ollama.add(
        tool_reply(tool_call("transfer_to_spanish", {}, id="call_h1234567"), model="llama3.2"),
        text_reply("¡Hola!", model="qwen3:8b"),
    )
    if stream:
        streamed = Runner.run_streamed(triage, "hola", run_config=config())
        async for _ in streamed.stream_events():
            pass
        final, last = streamed.final_output, streamed.last_agent
    else:
        result = await Runner.run(triage, "hola", run_config=config())
        final, last = result.final_output, result.last_agent
    assert (final, last) == ("¡Hola!", spanish)

    first, second = local_ollama.chat_requests
    assert [t["function"]["name"] for t in first["tools"]] == ["transfer_to_spanish"]
    assert second["model"] == "qwen3:8b"
    assert second["messages"][0] == {"role": "system", "content": "Answer in Spanish."}
    handoff_result = second["messages"][-1]
    assert handoff_result["role"] == "tool"
    assert (handoff_result["tool_call_id"], handoff_result["tool_name"]) == (
        "call_h1234567",
        "transfer_to_spanish",
    )


@pytest.mark.parametrize("stream", [False, True])
async def test_structured_output_via_format(local_ollama: FakeOllama, stream: bool) -> None:
    local_ollama.add(
        text_reply('{"city": "Paris", "temperature_c": 21.5, "conditions": ["sunny", "dry"]}')
    )
    agent = Agent(name="f", model="ollama/llama3.2", output_type=Forecast)
    if stream:
        streamed = Runner.run_streamed(agent, "forecast", run_config=config())
        async for _ in streamed.stream_events():
            pass
        final = streamed.final_output
    else:
        final = (await Runner.run(agent, "forecast", run_config=config())).final_output
    assert final == Forecast(city="Paris", temperature_c=21.5, conditions=["sunny", "dry"])
    assert local_ollama.chat_requests[0]["format"] == AgentOutputSchema(Forecast).json_schema()


@pytest.mark.parametrize("stream", [False, True])
async def test_thinking_becomes_reasoning_and_is_replayed(
    local_ollama: FakeOllama, stream: bool
) -> None:
    local_ollama.add(
        tool_reply(
            tool_call("get_weather", {"city": "Lima"}, id="call_t1234567"),
            thinking="The user wants the weather in Lima",
        ),
        text_reply("Sunny in Lima", thinking="Now answer briefly"),
    )
    agent = Agent(
        name="t",
        model="ollama/qwen3:8b",
        tools=[get_weather],
        model_settings=ModelSettings(reasoning=Reasoning(effort="medium")),
    )
    if stream:
        streamed = Runner.run_streamed(agent, "weather?", run_config=config())
        async for _ in streamed.stream_events():
            pass
        new_items = streamed.new_items
    else:
        new_items = (await Runner.run(agent, "weather?", run_config=config())).new_items
    reasoning = [i for i in new_items if isinstance(i, ReasoningItem)]
    texts = ["".join(c.text for c in (r.raw_item.content or [])) for r in reasoning]
    assert texts == ["The user wants the weather in Lima", "Now answer briefly"]

    first, second = local_ollama.chat_requests
    assert first["think"] == "medium"
    assistant = second["messages"][-2]
    assert assistant["thinking"] == "The user wants the weather in Lima"
    assert assistant["tool_calls"][0]["id"] == "call_t1234567"


async def test_local_and_cloud_models_in_one_process(
    local_ollama: FakeOllama, cloud_ollama: FakeOllama
) -> None:
    cloud_agent = Agent(name="Big", instructions="Think hard.", model="ollama/gpt-oss:120b-cloud")
    local_agent = Agent(
        name="Small", model="ollama/llama3.2", handoffs=[cloud_agent], tools=[get_weather]
    )
    local_ollama.add(
        tool_reply(tool_call("get_weather", {"city": "Paris"})),
        tool_reply(tool_call("transfer_to_big", {})),
    )
    cloud_ollama.add(text_reply("cloud answer"))
    provider = MultiModelProvider(ollama_cloud_url=cloud_ollama.url)
    result = await Runner.run(local_agent, "hard question", run_config=config(provider))

    assert result.final_output == "cloud answer"
    assert result.last_agent is cloud_agent
    assert [r["model"] for r in local_ollama.chat_requests] == ["llama3.2", "llama3.2"]
    assert [r["model"] for r in cloud_ollama.chat_requests] == ["gpt-oss:120b"]
    assert all("authorization" not in h for h in local_ollama.chat_headers)
    assert cloud_ollama.chat_headers[0]["authorization"] == f"Bearer {CLOUD_KEY}"
    # The cloud model sees the whole conversation, tool results included.
    roles = [m["role"] for m in cloud_ollama.chat_requests[0]["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "assistant", "tool"]


@pytest.fixture
def collector() -> Iterator[SpanCollector]:
    provider = get_trace_provider()
    before = list(provider._multi_processor._processors)  # type: ignore[attr-defined]
    collected = SpanCollector()
    set_trace_processors([collected])  # only ours: nothing is exported anywhere
    yield collected
    set_trace_processors(before)


@pytest.mark.parametrize("stream", [False, True])
async def test_generation_span_per_call(
    local_ollama: FakeOllama, collector: SpanCollector, stream: bool
) -> None:
    local_ollama.add(tool_reply(tool_call("get_weather", {"city": "Paris"})), text_reply("sunny"))
    agent = Agent(name="w", model="ollama/llama3.2", tools=[get_weather])
    run_config = RunConfig(model_provider=MultiModelProvider())
    if stream:
        streamed = Runner.run_streamed(agent, "weather?", run_config=run_config)
        async for _ in streamed.stream_events():
            pass
    else:
        await Runner.run(agent, "weather?", run_config=run_config)

    spans = [s for s in collector.spans if isinstance(s.span_data, GenerationSpanData)]
    assert len(spans) == 2
    for span in spans:
        assert span.span_data.model == "llama3.2"
        assert span.span_data.model_config["model_impl"] == "ollama"
        assert span.span_data.model_config["base_url"] == local_ollama.url
        assert span.span_data.usage["input_tokens"] == 12
        assert span.span_data.usage["output_tokens"] == 5
        assert span.error is None
    assert spans[0].span_data.input[-1] == {"role": "user", "content": "weather?"}
