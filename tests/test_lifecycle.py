"""Steering runs: retry after the model server was down, cancel inside a long tool, cancel a
parked run; transient provider failures retried inside the step. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from agents import Agent, function_tool

import timestep
from tests.fake_ollama import FakeOllama, error_reply, text_reply, tool_call, tool_reply
from timestep.config import ModelRetryPolicy

from .helpers import ExecutionLog, TurnModel

FAST_RETRIES = ModelRetryPolicy(max_attempts=2, interval_seconds=0.05, backoff_rate=1.0)


def ollama_agent(log: ExecutionLog) -> Agent[Any]:
    @function_tool
    def note(text: str) -> str:
        """Write a note."""
        log.write("tool", text=text)
        return f"noted {text}"

    return Agent(name="Noter", model="ollama/llama3.2", tools=[note])


async def test_retry_after_the_model_server_came_back(
    timestep_db: str, local_ollama: FakeOllama, tmp_path: Path
) -> None:
    timestep.configure(model_retry=FAST_RETRIES)
    log = ExecutionLog(tmp_path / "log.jsonl")
    local_ollama.add(tool_reply(tool_call("note", {"text": "a"}, id="call_n1234567")))
    port = int(local_ollama.url.rsplit(":", 1)[1])

    agent = ollama_agent(log)
    started = asyncio.ensure_future(timestep.run_agent(agent, "note a", run_id="retry-1"))
    while not log.entries("tool"):
        await asyncio.sleep(0.01)
    local_ollama.stop()  # down while the tool runs: the next model call cannot connect
    with pytest.raises(timestep.TimestepError) as failed:
        await started
    assert "cannot reach the Ollama server" in str(failed.value)
    record = await timestep.get_run("retry-1")
    assert record.status == "failed" and "cannot reach" in (record.error or "")

    with FakeOllama(models={"llama3.2"}, port=port) as back:
        back.add(text_reply("noted it"))
        retried = await timestep.retry("retry-1")
        assert retried.status == "running" and retried.error is None
        result = await timestep.resume("retry-1")
        assert result.final_output == "noted it"
        # Only the failed call went out again: one request, carrying the recorded tool output.
        assert len(back.chat_requests) == 1
        assert back.chat_requests[0]["messages"][-1]["content"] == "noted a"
    assert len(log.entries("tool")) == 1
    # The recorded call and the retried one; the attempts that failed returned no usage.
    usage = (await timestep.get_run("retry-1")).usage_by_model
    assert {k: v.requests for k, v in usage.items()} == {"ollama/llama3.2": 2}
    assert (await timestep.get_run("retry-1")).status == "completed"
    with pytest.raises(timestep.LifecycleError, match="only a failed or cancelled run"):
        await timestep.retry("retry-1")


async def test_transient_provider_errors_are_retried_inside_the_step(
    timestep_db: str, local_ollama: FakeOllama, tmp_path: Path
) -> None:
    timestep.configure(model_retry=FAST_RETRIES)
    local_ollama.add(error_reply(503, "overloaded"), text_reply("fine"))
    result = await timestep.run_agent(ollama_agent(ExecutionLog(tmp_path / "l")), "hi")
    assert result.final_output == "fine"
    assert len(local_ollama.chat_requests) == 2
    # A refusal that trying again would only repeat is not retried.
    local_ollama.add(error_reply(400, "bad request"), text_reply("never asked"))
    with pytest.raises(timestep.TimestepError, match="HTTP 400"):
        await timestep.run_agent(ollama_agent(ExecutionLog(tmp_path / "l")), "hi")
    assert len(local_ollama.chat_requests) == 3


async def test_cancel_inside_a_long_tool_then_retry(timestep_db: str, tmp_path: Path) -> None:
    log = ExecutionLog(tmp_path / "log.jsonl")
    release = asyncio.Event()

    @function_tool
    async def slow(n: int) -> str:
        """A long step."""
        log.write("tool", n=n)
        if n == 1:
            await release.wait()
        return f"slow {n}"

    model = TurnModel([[("slow", {"n": 1})], [("slow", {"n": 2})]], final="done", log=log)
    agent = Agent(name="Slow", model=model, tools=[slow])
    started = asyncio.ensure_future(timestep.run_agent(agent, "go", run_id="cancel-1"))
    while not log.entries("tool"):
        await asyncio.sleep(0.01)
    cancelled = await timestep.cancel("cancel-1")
    assert cancelled.status == "cancelled"
    release.set()  # the tool in flight finishes; the run stops before its next step
    with pytest.raises(timestep.RunCancelledError, match="timestep.retry"):
        await started
    # The segment records where it stopped once its step in flight has ended.
    for _ in range(600):
        record = await timestep.get_run("cancel-1")
        if record.error:
            break
        await asyncio.sleep(0.05)
    assert record.status == "cancelled" and (record.error or "").startswith("cancelled")
    assert [e["turn"] for e in log.entries("model")] == [0]
    with pytest.raises(timestep.LifecycleError, match="only a running or parked run"):
        await timestep.cancel("cancel-1")

    await timestep.retry("cancel-1")
    result = await timestep.resume("cancel-1")
    assert result.final_output == "done"
    tools = [e["n"] for e in log.entries("tool")]
    assert tools.count(2) == 1 and tools.count(1) in (1, 2)
    assert (await timestep.get_run("cancel-1")).status == "completed"


async def test_cancel_a_parked_run_then_retry(timestep_db: str, tmp_path: Path) -> None:
    log = ExecutionLog(tmp_path / "log.jsonl")

    @function_tool(needs_approval=True)
    def send(to: str) -> str:
        log.write("tool", to=to)
        return f"sent to {to}"

    agent = Agent(
        name="Parker", model=TurnModel([[("send", {"to": "bob"})]], final="sent"), tools=[send]
    )
    parked = await timestep.run_agent(agent, "send", run_id="park-1")
    assert parked.interruptions
    assert (await timestep.cancel("park-1")).status == "cancelled"
    with pytest.raises(timestep.DecisionError, match="cancelled"):
        await timestep.approve("park-1")
    assert (await timestep.retry("park-1")).status == "awaiting_approval"
    await timestep.approve("park-1")
    assert (await timestep.resume("park-1")).final_output == "sent"
    assert len(log.entries("tool")) == 1


async def test_fork_at_turn_two_replays_turns_zero_and_one(
    timestep_db: str, tmp_path: Path
) -> None:
    log = ExecutionLog(tmp_path / "log.jsonl")

    @function_tool
    def step(n: int) -> str:
        """Do step n."""
        log.write("tool", n=n)
        return f"step {n}"

    script = [[("step", {"n": 0})], [("step", {"n": 1})], [("step", {"n": 2})]]
    agent = Agent(
        name="Stepper", model=TurnModel(script, final="three steps", log=log), tools=[step]
    )
    assert (await timestep.run_agent(agent, "go", run_id="orig")).final_output == "three steps"
    assert [e["turn"] for e in log.entries("model")] == [0, 1, 2, 3]

    forked = await timestep.fork("orig", turn=2, new_run_id="branch")
    assert forked.run_id == "branch" and forked.status in ("running", "completed")
    result = await timestep.resume("branch")
    assert result.final_output == "three steps"
    # Turns 0 and 1 were replayed from the original's records; 2 and 3 went to the model.
    assert [e["turn"] for e in log.entries("model")] == [0, 1, 2, 3, 2, 3]
    assert [e["n"] for e in log.entries("tool")] == [0, 1, 2, 2]
    assert (await timestep.get_run("orig")).status == "completed"
    branch = await timestep.get_run("branch")
    assert branch.status == "completed" and branch.final_output == "three steps"

    with pytest.raises(timestep.LifecycleError, match="turn 9 cannot be forked"):
        await timestep.fork("orig", turn=9)
    with pytest.raises(timestep.LifecycleError, match="already exists"):
        await timestep.fork("orig", turn=1, new_run_id="branch")


async def test_fork_after_an_approval_with_another_model_and_instructions(
    timestep_db: str, local_ollama: FakeOllama, tmp_path: Path
) -> None:
    """Turn 2 of a run lies in its second segment (after an approval): the fork replays turns
    0-1 and the decision, and asks a different model with different instructions at turn 2."""
    log = ExecutionLog(tmp_path / "log.jsonl")

    @function_tool(needs_approval=True)
    def send(to: str) -> str:
        """Send to someone."""
        log.write("send", to=to)
        return f"sent to {to}"

    @function_tool
    def step(n: int) -> str:
        """Do step n."""
        log.write("step", n=n)
        return f"step {n}"

    script = [[("send", {"to": "bob"})], [("step", {"n": 1})]]
    agent = Agent(
        name="Sender",
        instructions="Send, then step.",
        model=TurnModel(script, final="sent and stepped", log=log),
        tools=[send, step],
    )
    parked = await timestep.run_agent(agent, "go", run_id="two-seg")
    assert parked.interruptions
    await timestep.approve("two-seg")
    assert (await timestep.resume("two-seg")).final_output == "sent and stepped"
    original = await timestep.get_run("two-seg")
    assert original.segment == 2
    # Usage over both segments, by model: three calls of the scripted model, 15 tokens each.
    assert original.usage["requests"] == 3
    assert {k: v.as_dict() for k, v in original.usage_by_model.items()} == {
        "TurnModel": {"requests": 3, "input_tokens": 30, "output_tokens": 15, "total_tokens": 45}
    }

    local_ollama.add(text_reply("forked answer"))
    forked = await timestep.fork(
        "two-seg",
        turn=2,
        new_run_id="two-seg-fork",
        model="ollama/llama3.2",
        instructions="Answer in two words.",
    )
    assert forked.overrides is not None and forked.overrides.instructions is not None
    assert (await timestep.resume("two-seg-fork")).final_output == "forked answer"
    # Nothing of turns 0-1 ran again: not the model, not the approved tool, not the step.
    assert [e["turn"] for e in log.entries("model")] == [0, 1, 2]
    assert len(log.entries("send")) == 1 and len(log.entries("step")) == 1
    assert len(local_ollama.chat_requests) == 1
    messages = local_ollama.chat_requests[0]["messages"]
    assert messages[0] == {"role": "system", "content": "Answer in two words."}
    assert [m["content"] for m in messages if m["role"] == "tool"] == ["sent to bob", "step 1"]
    branch = await timestep.get_run("two-seg-fork")
    assert branch.status == "completed" and branch.final_output == "forked answer"
    assert branch.usage["requests"] == 3
    by_model = {k: v.requests for k, v in branch.usage_by_model.items()}
    assert by_model == {"TurnModel": 2, "ollama/llama3.2": 1}
    # The original is untouched.
    assert (await timestep.get_run("two-seg")).final_output == "sent and stepped"


async def test_streamed_model_calls_retry_transient_failures(
    timestep_db: str, local_ollama: FakeOllama, tmp_path: Path
) -> None:
    timestep.configure(model_retry=FAST_RETRIES)
    local_ollama.add(error_reply(503, "overloaded"), text_reply("streamed fine"))
    result = await timestep.run_agent(
        ollama_agent(ExecutionLog(tmp_path / "l")), "hi", stream=True, run_id="stream-retry"
    )
    await timestep.consume_result(result)
    assert result.final_output == "streamed fine"
    assert len(local_ollama.chat_requests) == 2
    events = [e async for e in timestep.stream_events("stream-retry")]
    # The failed attempt streamed nothing, so nothing is marked discarded.
    assert [e["type"] for e in events].count("timestep.partial_output_discarded") == 0
    record = await timestep.get_run("stream-retry")
    assert {k: v.requests for k, v in record.usage_by_model.items()} == {"ollama/llama3.2": 1}


@pytest.mark.parametrize("deadline_passes", [False, True])
async def test_cancel_a_parked_run_with_a_deadline_then_retry(
    timestep_db: str, tmp_path: Path, deadline_passes: bool
) -> None:
    """The retried run waits for decisions again until the original deadline: a decision
    wakes it; a deadline that passed while it was cancelled rejects the undecided call."""
    log = ExecutionLog(tmp_path / "log.jsonl")

    @function_tool(needs_approval=True)
    def send(to: str) -> str:
        log.write("tool", to=to)
        return f"sent to {to}"

    agent = Agent(
        name="DeadlineParker",
        model=TurnModel([[("send", {"to": "bob"})]], final="over", log=log),
        tools=[send],
    )
    timeout = 1.0 if deadline_passes else 120.0
    parked = await timestep.run_agent(agent, "send", run_id="dl-1", approval_timeout=timeout)
    assert parked.interruptions
    assert (await timestep.cancel("dl-1")).status == "cancelled"
    if deadline_passes:
        await asyncio.sleep(timeout + 0.5)
    assert (await timestep.retry("dl-1")).status == "awaiting_approval"
    if not deadline_passes:
        await timestep.approve("dl-1")
    assert (await timestep.resume("dl-1")).final_output == "over"
    record = await timestep.get_run("dl-1")
    assert record.status == "completed"
    told = log.entries("model")[-1]["tool_outputs"]
    assert len(told) == 1
    if deadline_passes:
        assert "deadline passed" in str(told[0]) and not log.entries("tool")
    else:
        assert "sent to bob" in str(told[0]) and len(log.entries("tool")) == 1
