"""Durable streaming: live events, a durable stream any process can read, crash mid-stream."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from agents import Agent, function_tool

import timestep
from timestep._engine.events import FLUSH_WINDOW_SECONDS

from .helpers import ExecutionLog, StreamingTurnModel
from .processes import start_stream_app

ROOT = Path(__file__).resolve().parent.parent


def streamer(log: ExecutionLog) -> Agent[Any]:
    @function_tool
    def record(n: int) -> str:
        log.write("tool", n=n)
        return f"recorded {n}"

    model = StreamingTurnModel([[("record", {"n": 1})]], final="one two three four five", log=log)
    return Agent(name="Streamer", model=model, tools=[record])


def deltas(events: list[dict[str, Any]]) -> str:
    return "".join(
        e["data"]["delta"]
        for e in events
        if e["type"] == "raw_response_event"
        and e["data"].get("type") == "response.output_text.delta"
    )


def assert_items_once_then_completed(events: list[dict[str, Any]]) -> None:
    """The run's items and its agent update are in the stream once each, then the run ended."""
    assert [e["name"] for e in events if e["type"] == "run_item_stream_event"] == [
        "tool_called",
        "tool_output",
        "message_output_created",
    ]
    assert [e["type"] for e in events].count("agent_updated_stream_event") == 1
    assert events[-1]["status"] == "completed"


async def read_all(run_id: str, offset: int = 0) -> list[dict[str, Any]]:
    return [event async for event in timestep.stream_events(run_id, offset=offset)]


async def test_streamed_run_matches_the_plain_run(timestep_db: str, tmp_path: Path) -> None:
    log = ExecutionLog(tmp_path / "log.jsonl")
    streamed = await timestep.run_agent(streamer(log), "go", stream=True, run_id="streamed")
    assert isinstance(streamed, timestep.run.RunResultStreaming)
    live = [event async for event in streamed.stream_events()]
    live_text = "".join(
        e.data.delta
        for e in live
        if getattr(getattr(e, "data", None), "type", None) == "response.output_text.delta"
    )
    assert live_text == "one two three four five" == streamed.final_output
    assert [e.name for e in live if e.type == "run_item_stream_event"] == [
        "tool_called",
        "tool_output",
        "message_output_created",
    ]

    plain = await timestep.run_agent(
        streamer(ExecutionLog(tmp_path / "plain.jsonl")), "go", run_id="plain"
    )
    assert plain.final_output == streamed.final_output
    assert [i.type for i in plain.new_items] == [i.type for i in streamed.new_items]

    stored = await read_all("streamed")
    assert deltas(stored) == "one two three four five"
    assert [e["offset"] for e in stored[:-1]] == list(range(len(stored) - 1))
    assert stored[-1] == {"offset": None, "type": "timestep.run_ended", "status": "completed"}
    items = [e for e in stored if e["type"] == "run_item_stream_event"]
    assert [e["name"] for e in items] == ["tool_called", "tool_output", "message_output_created"]
    assert items[0]["item"]["raw_item"]["name"] == "record"
    assert [e["type"] for e in stored].count("timestep.model_call") == 2
    tail = await read_all("streamed", offset=len(stored) - 3)
    assert [e["offset"] for e in tail[:-1]] == [len(stored) - 3, len(stored) - 2]

    again = await timestep.run_agent(streamer(log), "go", stream=True, run_id="streamed")
    assert again.final_output == "one two three four five"
    assert len(log.entries("model")) == 2  # a finished run streams nothing new


async def test_streaming_result_of_a_finished_run_is_rebuilt_complete(
    timestep_db: str, tmp_path: Path
) -> None:
    log = ExecutionLog(tmp_path / "log.jsonl")
    first = await timestep.run_agent(streamer(log), "go", stream=True, run_id="twice")
    assert isinstance(first, timestep.DurableRunResultStreaming) and first.run_id == "twice"
    await timestep.consume_result(first)
    assert first.is_complete and first.final_output == "one two three four five"

    again = await timestep.run_agent(streamer(log), "go", stream=True, run_id="twice")
    # Nothing runs again: the result is rebuilt from the stored state, complete, with no events
    # of its own (the durable stream keeps the run's events).
    assert isinstance(again, timestep.DurableRunResultStreaming) and again is not first
    assert again.run_id == "twice" and again.is_complete
    assert [event async for event in again.stream_events()] == []
    assert again.final_output == first.final_output
    assert [i.type for i in again.new_items] == [i.type for i in first.new_items]
    assert again.to_state().to_json()["current_turn"] == first.to_state().to_json()["current_turn"]
    assert len(log.entries("tool")) == 1
    assert deltas(await read_all("twice")) == "one two three four five"


async def test_approval_ends_the_stream_cleanly(timestep_db: str, tmp_path: Path) -> None:
    @function_tool(needs_approval=True)
    def deploy() -> str:
        return "deployed"

    agent = Agent(
        name="Deployer", model=StreamingTurnModel([[("deploy", {})]], final="done"), tools=[deploy]
    )
    result = await timestep.run_agent(agent, "ship it", stream=True, run_id="parked-stream")
    await timestep.consume_result(result)
    assert [i.tool_name for i in result.interruptions] == ["deploy"]
    events = await read_all("parked-stream")
    assert events[-1]["status"] == "awaiting_approval"
    parked = [e for e in events if e["type"] == "timestep.awaiting_approval"]
    assert [p["tool_name"] for p in parked[0]["pending"]] == ["deploy"]

    await timestep.approve("parked-stream")
    final = await timestep.resume("parked-stream")
    assert final.final_output == "done"
    events = await read_all("parked-stream")
    decided = [e for e in events if e["type"] == "timestep.decisions"]
    assert [d["decision"] for d in decided[0]["decisions"]] == ["approve"]
    assert events[-1]["status"] == "completed"
    assert deltas(events) == "done"


def run(
    database_url: str, tmp_path: Path, mode: str, crash: str = "none", **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.apps.stream_app",
            database_url,
            str(tmp_path / "log.jsonl"),
            "s-1",
            mode,
            crash,
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "TIMESTEP_LEASE_SECONDS": "2", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def wait_for(condition: Callable[[], bool], process: subprocess.Popen[str], what: str) -> None:
    """Poll until `condition` holds; fail (with its stderr) if `process` exits first. The
    deadline only keeps a broken run from hanging the suite; nothing is measured against it."""
    hang_guard = time.monotonic() + 300
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"exited before {what}: {process.communicate()[1]}")
        if time.monotonic() > hang_guard:
            raise AssertionError(f"still waiting for {what}")
        time.sleep(0.05)


def tail(database_url: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "timestep.cli", "--db", database_url, "runs", "tail", "s-1", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("then", ["recover", "run"])
def test_crash_mid_stream_discards_the_partial_call(
    database_url: str, tmp_path: Path, then: str
) -> None:
    """The process dies inside a streaming model call; then either a worker-like process
    recovers the run, or the same `run_agent(..., stream=True, run_id=...)` is called again in
    a new process, which takes the dead owner's run over and streams it live."""
    # Deltas slower than the writer's batch window, so that part of the interrupted call has
    # usually reached the stream when the process dies (what readers then see discarded).
    slow = {"TIMESTEP_TEST_DELAY": str(4 * FLUSH_WINDOW_SECONDS)}
    crashed = run(database_url, tmp_path, "run", "mid_stream", **slow)
    assert crashed.returncode == 3, crashed.stderr
    again = run(database_url, tmp_path, then)
    assert again.returncode == 0, again.stderr
    if then == "run":
        printed = json.loads(again.stdout.strip().splitlines()[-1])
        assert printed == {
            "deltas": "one two three four five",
            "final_output": "one two three four five",
        }

    log = ExecutionLog(tmp_path / "log.jsonl")
    assert Counter(e["turn"] for e in log.entries("model")) == {0: 1, 1: 2}
    assert len(log.entries("tool")) == 1

    reader = tail(database_url, "--json")
    out, err = reader.communicate(timeout=60)
    assert reader.returncode == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    kinds = [e["type"] for e in events]
    # The dead process may die before even the interrupted call's marker reached the stream
    # (events are written in batches by a background task); a call whose marker is there twice
    # was restarted, and exactly those restarts are marked discarded.
    markers = Counter(e["step"] for e in events if e["type"] == "timestep.model_call")
    restarted = sum(n - 1 for n in markers.values())
    assert restarted <= 1
    assert kinds.count("timestep.partial_output_discarded") == restarted
    if restarted:
        discard = kinds.index("timestep.partial_output_discarded")
        before, after = events[:discard], events[discard + 1 :]
        # The interrupted call's partial output: whatever was flushed before the process died
        # (possibly nothing), never more than it had produced.
        assert "one two".startswith(deltas(before))
        assert deltas(after) == "one two three four five"
    else:
        assert deltas(events) == "one two three four five"
    assert_items_once_then_completed(events)


def test_crash_after_a_recorded_call_streams_it_from_its_record(
    database_url: str, tmp_path: Path
) -> None:
    """The process dies just after the final answer's model call is recorded, while that
    call's last events still wait in the writer's batch. The recovered run does not call the
    model again; the stream gets the recorded answer instead: a second marker (the part that
    had reached the stream is discarded) and the whole text."""
    crashed = run(database_url, tmp_path, "run", "after_model")
    assert crashed.returncode == 3, crashed.stderr
    again = run(database_url, tmp_path, "recover")
    assert again.returncode == 0, again.stderr

    log = ExecutionLog(tmp_path / "log.jsonl")
    assert Counter(e["turn"] for e in log.entries("model")) == {0: 1, 1: 1}
    reader = tail(database_url, "--json")
    out, err = reader.communicate(timeout=60)
    assert reader.returncode == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    kinds = [e["type"] for e in events]
    markers = Counter(e["step"] for e in events if e["type"] == "timestep.model_call")
    assert set(markers.values()) <= {1, 2}
    assert kinds.count("timestep.partial_output_discarded") == sum(n - 1 for n in markers.values())
    after = (
        events[kinds.index("timestep.partial_output_discarded") + 1 :]
        if 2 in markers.values()
        else events
    )
    assert deltas(after) == "one two three four five"
    completed = [
        e["data"]["response"]["output"][0]["content"][0]["text"]
        for e in after
        if e["type"] == "raw_response_event"
        and e["data"].get("type") == "response.completed"
        and e["data"]["response"]["output"][0]["type"] == "message"
    ]
    assert completed == ["one two three four five"]
    assert_items_once_then_completed(events)


def test_second_process_tails_a_live_run(database_url: str, tmp_path: Path) -> None:
    """The reader prints events of a run that is still going: the writer's final answer waits
    at a gate that the test opens only once the reader's first line has arrived."""
    gate = tmp_path / "gate"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TIMESTEP_TEST_GATE": str(gate)}
    writer = start_stream_app(env, database_url, tmp_path / "log.jsonl", capture=True)
    log = ExecutionLog(tmp_path / "log.jsonl")
    reader: subprocess.Popen[str] | None = None
    try:
        wait_for(lambda: bool(log.entries("gate_wait")), writer, "the final answer's first delta")
        reader = tail(database_url)
        assert reader.stderr is not None
        first = ""
        # Tool calls go to stderr (the text to stdout, and the text is held at the gate).
        while "→ record(" not in first:  # blocks until the reader prints the tool call
            line = reader.stderr.readline()
            assert line, "the reader ended without printing an event"
            first += line
        # The run cannot have finished: its final answer is held at the gate.
        assert writer.poll() is None, writer.communicate()[1]
        assert log.entries("gate_timeout") == [], "the reader printed nothing while the run ran"
        assert log.entries("gate_open") == []
        assert "[run completed]" not in first
        gate.touch()
        # Read the rest through the same buffered file objects: `communicate()` reads the raw
        # pipes and would lose what `readline()` has buffered already.
        assert reader.stdout is not None
        rest = reader.stderr.read()
        out = reader.stdout.read()
        reader.wait(timeout=90)
        writer_out, writer_err = writer.communicate(timeout=60)
    finally:
        gate.touch()
        for process in (writer, reader):
            if process is not None and process.poll() is None:
                process.kill()
    assert writer.returncode == 0, writer_err
    err = first + rest
    assert reader.returncode == 0, err
    assert len(log.entries("gate_open")) == 1
    assert "one two three four five" in out  # the text on stdout, the rest on stderr
    assert "→ record(" in err and "← record: " in err
    assert err.rstrip().endswith("[run completed]")
    assert len(log.entries("model")) == 2
