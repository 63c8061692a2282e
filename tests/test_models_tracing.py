"""OpenAI trace export only when an OpenAI key is configured."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from agents import Agent, Runner
from agents.run import RunConfig
from agents.tracing import TracingProcessor, get_trace_provider, set_trace_processors
from agents.tracing.processors import default_exporter, default_processor

from tests.fake_ollama import (
    FakeOllama,
    text_reply,
)
from tests.helpers import SpanCollector
from timestep.models import MultiModelProvider, configure_tracing_for_keys
from timestep.models import tracing as tracing_module


def processors() -> list[TracingProcessor]:
    return list(get_trace_provider()._multi_processor._processors)  # type: ignore[attr-defined]


@pytest.fixture
def tracing_state(ollama_env: None) -> Iterator[None]:
    """Restore the SDK's global tracing state (processors, exporter key) after each test."""
    exporter = default_exporter()
    saved_key, saved_processors = exporter._api_key, processors()
    exporter._api_key = None
    set_trace_processors([default_processor()])
    tracing_module._detached = False
    yield
    exporter._api_key = saved_key
    set_trace_processors(saved_processors)
    tracing_module._detached = False


def test_no_key_detaches_only_the_openai_exporter(tracing_state: None) -> None:
    mine = SpanCollector()
    get_trace_provider().register_processor(mine)
    assert configure_tracing_for_keys() is False
    assert processors() == [mine]
    # Idempotent.
    assert configure_tracing_for_keys() is False
    assert processors() == [mine]


def test_key_keeps_or_restores_the_exporter(
    tracing_state: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert configure_tracing_for_keys() is True
    assert processors() == [default_processor()]

    monkeypatch.delenv("OPENAI_API_KEY")
    default_exporter()._api_key = None  # the exporter caches the env key once it has read it
    assert configure_tracing_for_keys() is False
    assert default_processor() not in processors()
    # A key passed explicitly (or set later) re-attaches it.
    assert configure_tracing_for_keys(openai_api_key="sk-later") is True
    assert processors() == [default_processor()]


def test_set_tracing_export_api_key_counts_as_a_key(tracing_state: None) -> None:
    from agents import set_tracing_export_api_key

    set_tracing_export_api_key("sk-export")
    assert configure_tracing_for_keys() is True
    assert default_processor() in processors()


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "OPENAI_API_KEY" in r.getMessage()]


async def test_ollama_only_run_attempts_no_openai_export(
    tracing_state: None, local_ollama: FakeOllama, caplog: pytest.LogCaptureFixture
) -> None:
    agent = Agent(name="a", model="ollama/llama3.2")
    config = RunConfig(model_provider=MultiModelProvider())  # tracing on

    caplog.set_level(logging.WARNING, logger="openai.agents")
    # Control: without the helper the SDK exporter complains about the missing key on flush.
    local_ollama.add(text_reply("first"))
    await Runner.run(agent, "x", run_config=config)
    get_trace_provider().force_flush()
    assert _warnings(caplog), "the SDK exporter should warn without a key"

    caplog.clear()
    assert configure_tracing_for_keys() is False
    local_ollama.add(text_reply("second"))
    assert (await Runner.run(agent, "x", run_config=config)).final_output == "second"
    get_trace_provider().force_flush()
    assert _warnings(caplog) == []
