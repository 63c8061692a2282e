"""Ollama model calls are recorded steps: replays and crash recovery never call Ollama again.

Run as a script, this module is the crashing process of the crash test:

    python -m tests.test_models_durable DB_URL OLLAMA_HOST RUN_ID
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from agents import Agent, RawResponsesStreamEvent, RunConfig, function_tool
from openai.types.responses import ResponseTextDeltaEvent

import timestep
from tests.fake_ollama import (
    FakeOllama,
    text_reply,
    tool_call,
    tool_reply,
)
from timestep.models import MultiModelProvider

ROOT = Path(__file__).resolve().parent.parent


@function_tool
def get_weather(city: str) -> str:
    """Current weather for a city."""
    return f"sunny in {city}"


def weather_agent() -> Agent[Any]:
    return Agent(
        name="Weather",
        instructions="Answer with the weather.",
        model="ollama/llama3.2",
        tools=[get_weather],
    )


def run_config() -> RunConfig:
    return RunConfig(model_provider=MultiModelProvider(), tracing_disabled=True)


def script_round_trip(server: FakeOllama) -> None:
    server.add(
        tool_reply(tool_call("get_weather", {"city": "Paris"}, id="call_d1234567")),
        text_reply("It is sunny in Paris"),
    )


async def test_recorded_ollama_calls_are_not_repeated(
    timestep_db: str, local_ollama: FakeOllama
) -> None:
    script_round_trip(local_ollama)
    agent = weather_agent()
    result = await timestep.run_agent(agent, "weather?", run_id="ollama-1", run_config=run_config())
    assert result.final_output == "It is sunny in Paris"
    assert len(local_ollama.chat_requests) == 2
    tool_msg = local_ollama.chat_requests[1]["messages"][-1]
    assert (tool_msg["tool_call_id"], tool_msg["tool_name"]) == ("call_d1234567", "get_weather")

    # Same run id: the stored result comes back and the server is not asked again (no reply is
    # scripted, so a request would fail with HTTP 500).
    again = await timestep.run_agent(agent, "weather?", run_id="ollama-1", run_config=run_config())
    assert again.final_output == "It is sunny in Paris"
    assert len(local_ollama.chat_requests) == 2


async def test_streamed_durable_run_on_ollama(timestep_db: str, local_ollama: FakeOllama) -> None:
    script_round_trip(local_ollama)
    result = await timestep.run_agent(
        weather_agent(), "weather?", stream=True, run_id="ollama-s", run_config=run_config()
    )
    deltas: list[str] = []
    async for event in result.stream_events():  # type: ignore[union-attr]
        if isinstance(event, RawResponsesStreamEvent) and isinstance(
            event.data, ResponseTextDeltaEvent
        ):
            deltas.append(event.data.delta)
    assert result.final_output == "It is sunny in Paris"
    assert "".join(deltas) == "It is sunny in Paris"
    assert [r["stream"] for r in local_ollama.chat_requests] == [True, True]


async def test_crash_after_recorded_ollama_call_does_not_call_again(
    timestep_db: str, local_ollama: FakeOllama, tmp_path: Path
) -> None:
    script_round_trip(local_ollama)
    child = subprocess.run(
        [sys.executable, "-m", "tests.test_models_durable", timestep_db, local_ollama.url, "job-o"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 3, child.stderr
    assert len(local_ollama.chat_requests) == 1  # the first turn ran, and was recorded

    result = await timestep.run_agent(
        weather_agent(), "weather?", run_id="job-o", run_config=run_config()
    )
    assert result.final_output == "It is sunny in Paris"
    # Only the second turn reached the server; it carries the recorded call's id.
    assert len(local_ollama.chat_requests) == 2
    tool_msg = local_ollama.chat_requests[1]["messages"][-1]
    assert (tool_msg["tool_call_id"], tool_msg["content"]) == ("call_d1234567", "sunny in Paris")


def _crash_after_first_model_step(kind: str, detail: str) -> None:
    if kind == "model":
        os._exit(3)


async def _crashing_main(db_url: str, host: str, run_id: str) -> None:
    from timestep._engine.segment import after_step_hooks

    os.environ["OLLAMA_HOST"] = host
    os.environ.pop("OLLAMA_API_KEY", None)
    after_step_hooks.append(_crash_after_first_model_step)
    timestep.configure(database_url=db_url)
    await timestep.run_agent(weather_agent(), "weather?", run_id=run_id, run_config=run_config())
    raise SystemExit("the process should have died after the first model step")


if __name__ == "__main__":
    asyncio.run(_crashing_main(*sys.argv[1:4]))


def test_readme_quickstart_with_ollama(database_url: str, local_ollama: FakeOllama) -> None:
    """`timestep run examples.assistant:assistant ... --model ollama/llama3.2`, as the README."""
    local_ollama.add(
        tool_reply(tool_call("multiply", {"a": 12, "b": 7}, id="call_m0000001")),
        text_reply("12 * 7 = 84"),
    )
    command = [sys.executable, "-m", "timestep.cli", "run", "examples.assistant:assistant"]
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TIMESTEP_DB_URL": database_url,
        "OLLAMA_HOST": local_ollama.url,
    }
    env.pop("OPENAI_API_KEY", None)
    args = ["What is 12 * 7?", "--model", "ollama/llama3.2", "--run-id", "quick-1"]
    done = subprocess.run(
        [*command, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "12 * 7 = 84"
    assert "OPENAI_API_KEY" not in done.stderr  # no trace-export warning for Ollama-only use
    tool_message = local_ollama.chat_requests[1]["messages"][-1]
    assert (tool_message["tool_name"], tool_message["content"]) == ("multiply", "84.0")

    # The same run id again: the stored output, and Ollama is not asked again.
    again = subprocess.run(
        [*command, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "12 * 7 = 84"
    assert len(local_ollama.chat_requests) == 2


def test_model_chosen_at_start_is_used_by_the_worker(
    database_url: str, local_ollama: FakeOllama
) -> None:
    """`--model ollama/...` on a parked run: after `approve`, the worker continues with that
    model, not the agent's own (`gpt-4.1-mini`, which has no key here)."""
    from tests.processes import cli, env_for, start_worker, stop, wait_for_status

    local_ollama.add(
        tool_reply(
            tool_call(
                "send_email",
                {"to": "bob@example.com", "subject": "s", "body": "b"},
                id="call_e0000001",
            )
        ),
        text_reply("Email sent"),
    )
    env = env_for(database_url, Path(os.devnull), OLLAMA_HOST=local_ollama.url)
    env.pop("OPENAI_API_KEY", None)
    parked = cli(
        env,
        "run",
        "examples.assistant:mailer",
        "email bob",
        "--model",
        "ollama/llama3.2",
        "--run-id",
        "mail-m",
    )
    assert parked.returncode == 3, parked.stderr  # awaiting approval
    shown = json.loads(cli(env, "runs", "show", "mail-m", "--json").stdout)
    assert shown["overrides"] == {"agent": "ollama/llama3.2"}
    assert cli(env, "approve", "mail-m").returncode == 0
    worker = start_worker(env, "examples.assistant")
    try:
        record = wait_for_status(database_url, "mail-m", "completed")
    finally:
        code, err = stop(worker)
    assert code == 0, err
    assert record["final_output"] == "Email sent"
    assert len(local_ollama.chat_requests) == 2
    assert all(r["model"] == "llama3.2" for r in local_ollama.chat_requests)
