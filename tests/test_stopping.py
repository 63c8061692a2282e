"""Stopping never throws finished work away.

- SIGINT/SIGTERM to a process whose `run_agent` waits while a tool runs: the tool finishes, its
  output is recorded, then the process exits by the signal; the run, finished in a fresh
  process, does not execute the tool again.
- Past the grace period (`TIMESTEP_STOP_GRACE_SECONDS`) the tool is cancelled and the run is
  taken over by the next process.
- `cancel(R)` makes a `run_agent` waiting for R in the same process raise `RunCancelledError`
  at once, and cancels an async tool in flight, unless it is `timestep.uninterruptible`.
Real processes, real signals; the tool logs every real execution.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from agents import Agent, function_tool

import timestep
from tests.helpers import ExecutionLog, TurnModel
from tests.processes import ROOT, cli, env_for, start_worker, stop, submit_runs, wait_for_status
from timestep import RunCancelledError


def _start(
    database_url: str, log: Path, run_id: str, seconds: float, *options: str, **env: str
) -> Any:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.apps.stop_app", database_url, str(log), run_id, str(seconds)]
        + list(options),
        cwd=ROOT,
        env=env_for(database_url, log, **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(log: ExecutionLog, kind: str, process: Any = None, timeout: float = 90) -> None:
    deadline = time.time() + timeout
    while not log.entries(kind):
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the app exited before {kind!r}: {process.communicate()}")
        assert time.time() < deadline, f"no {kind!r} in the log: {log.entries()}"
        time.sleep(0.05)


def _finish(database_url: str, log: Path, run_id: str) -> dict[str, Any]:
    process = _start(database_url, log, run_id, 0)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    result: dict[str, Any] = json.loads(out.splitlines()[-1])
    return result


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_lets_the_tool_in_flight_finish_and_records_it(
    database_url: str, tmp_path: Path, signum: signal.Signals
) -> None:
    log_path = tmp_path / "log.jsonl"
    log = ExecutionLog(log_path)
    process = _start(database_url, log_path, "stop-1", 3)
    _wait_for(log, "start", process)
    process.send_signal(signum)
    _out, err = process.communicate(timeout=120)
    # The signal took effect as it would have (Ctrl-C: KeyboardInterrupt; SIGTERM: killed)...
    assert process.returncode == -signum, err
    # ...once the tool had finished.
    assert [e["kind"] for e in log.entries() if e["kind"] != "model"] == ["start", "end"]

    assert _finish(database_url, log_path, "stop-1") == {"final_output": "work done"}
    assert len(log.entries("start")) == 1  # recorded: not executed again
    assert [e["turn"] for e in log.entries("model")] == [0, 1]


def test_past_the_grace_period_the_tool_is_cancelled_and_the_run_taken_over(
    tmp_path: Path,
) -> None:
    database_url = f"sqlite:///{tmp_path}/timestep.sqlite"
    log_path = tmp_path / "log.jsonl"
    log = ExecutionLog(log_path)
    process = _start(database_url, log_path, "stop-2", 3600, TIMESTEP_STOP_GRACE_SECONDS="0.2")
    _wait_for(log, "start", process)
    process.send_signal(signal.SIGINT)
    _out, err = process.communicate(timeout=120)  # long before the tool's hour is up
    assert process.returncode == -signal.SIGINT, err
    assert [e["kind"] for e in log.entries() if e["kind"] != "model"] == ["start", "cancelled"]

    assert _finish(database_url, log_path, "stop-2") == {"final_output": "work done"}
    assert [e["kind"] for e in log.entries() if e["kind"] != "model"] == [
        "start",
        "cancelled",
        "start",
        "end",
    ]


def test_a_process_that_goes_on_after_the_signal_finishes_the_run(tmp_path: Path) -> None:
    """A notebook-like process: its own SIGINT handler keeps it alive; the waiting call raises
    RunInterruptedError once the tool is recorded, and the next call finishes the run."""
    database_url = f"sqlite:///{tmp_path}/timestep.sqlite"
    log_path = tmp_path / "log.jsonl"
    log = ExecutionLog(log_path)
    process = _start(database_url, log_path, "stop-3", 3, "goes-on")
    _wait_for(log, "start", process)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert json.loads(out.splitlines()[-1]) == {"final_output": "work done"}
    kinds = [e["kind"] for e in log.entries()]
    assert kinds == ["model", "start", "end", "handled", "interrupted", "model"]


def _slow_agent(
    log: ExecutionLog,
    seconds: float,
    *,
    interruptible: bool,
    release: asyncio.Event | None = None,
) -> Agent[Any]:
    @function_tool
    async def slow(n: int) -> str:
        """Work for a while on n (until `release` is set, when given)."""
        log.write("start", n=n)
        try:
            if release is not None:
                await asyncio.wait_for(release.wait(), seconds)
            else:
                await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            log.write("cancelled", n=n)
            raise
        log.write("end", n=n)
        return f"worked on {n}"

    return Agent(
        name="Slowpoke",
        model=TurnModel([[("slow", {"n": 1})]], final="work done", log=log),
        tools=[slow if interruptible else timestep.uninterruptible(slow)],
    )


async def _wait_for_async(log: ExecutionLog, kind: str) -> None:
    deadline = time.time() + 90
    while not log.entries(kind):
        assert time.time() < deadline, f"no {kind!r} in the log: {log.entries()}"
        await asyncio.sleep(0.05)


async def test_cancel_ends_a_waiting_run_agent_at_once_and_cancels_the_tool(
    timestep_db: str, tmp_path: Path
) -> None:
    log = ExecutionLog(tmp_path / "log.jsonl")
    agent = _slow_agent(log, 3600, interruptible=True)
    waiting = asyncio.ensure_future(timestep.run_agent(agent, "go", run_id="cancel-1"))
    await _wait_for_async(log, "start")
    await timestep.cancel("cancel-1")
    with pytest.raises(RunCancelledError):
        await waiting
    await _wait_for_async(log, "cancelled")  # DBOS preempts the tool's step
    assert not log.entries("end")
    assert (await timestep.get_run("cancel-1")).status == "cancelled"


async def test_cancel_lets_an_uninterruptible_tool_finish(timestep_db: str, tmp_path: Path) -> None:
    log = ExecutionLog(tmp_path / "log.jsonl")
    release = asyncio.Event()  # the tool runs until the test has seen the wait end
    agent = _slow_agent(log, 120, interruptible=False, release=release)
    waiting = asyncio.ensure_future(timestep.run_agent(agent, "go", run_id="cancel-2"))
    await _wait_for_async(log, "start")
    await timestep.cancel("cancel-2")
    with pytest.raises(RunCancelledError):
        await waiting
    assert not log.entries("end")  # the wait ended while the tool still ran
    release.set()
    await _wait_for_async(log, "end")
    assert not log.entries("cancelled")
    assert (await timestep.get_run("cancel-2")).status == "cancelled"
    assert [e["turn"] for e in log.entries("model")] == [0]  # no step after the tool


def test_a_worker_on_sigterm_lets_its_tool_finish_and_another_worker_goes_on(
    database_url: str, tmp_path: Path
) -> None:
    from tests.apps import fleet_app

    log_path = tmp_path / "log.jsonl"
    log = ExecutionLog(log_path)
    env = env_for(database_url, log_path, TIMESTEP_TEST_TOOL_SECONDS="3")
    first = start_worker(env, "tests.apps.fleet_app")
    submit_runs(database_url, {"w-1": fleet_app.alpha})
    _wait_for(log, "tool_start", first)
    code, err = stop(first)  # SIGTERM
    assert code == 0, err
    # The tool in flight finished (and was recorded) before the worker exited; nothing after it.
    assert [e["kind"] for e in log.entries()] == ["model", "tool_start", "tool_end"]

    second = start_worker(env, "tests.apps.fleet_app")
    try:
        record = wait_for_status(database_url, "w-1", "completed")
    finally:
        stop(second)
    assert record["final_output"] == "two steps"
    starts = [e["key"] for e in log.entries("tool_start")]
    assert starts == ["w-1:call_0_0", "w-1:call_1_0"]  # the first tool call ran once


def test_ctrl_c_in_timestep_run_keeps_the_finished_tool(tmp_path: Path) -> None:
    """The issue's case: Ctrl-C while `timestep run` is inside a (synchronous) demo tool."""
    database_url = f"sqlite:///{tmp_path}/cli.sqlite"
    env = env_for(
        database_url,
        tmp_path / "unused.jsonl",
        TIMESTEP_DEMO_MODEL_SECONDS="0",
        TIMESTEP_DEMO_TOOL_SECONDS="3",
    )
    command = [sys.executable, "-m", "timestep.cli", "run", "timestep.demo:assistant"]
    command += ["What is 12 * 7, then add 5?", "--run-id", "int-1"]
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stderr is not None
    seen = []
    for line in process.stderr:  # until the first tool runs
        seen.append(line)
        if "[tool multiply] executing" in line:
            break
    process.send_signal(signal.SIGINT)
    _out, rest = process.communicate(timeout=120)
    assert process.returncode == 130, "".join(seen) + rest

    steps = cli(env, "--json", "runs", "steps", "int-1")
    assert steps.returncode == 0, steps.stderr
    assert "multiply" in steps.stdout  # recorded before the process exited

    finished = cli(env, *command[3:])
    assert finished.returncode == 0, finished.stderr
    assert "[tool multiply] executing" not in finished.stderr  # not executed again
    assert "[tool add] executing" in finished.stderr
