"""The crash matrix of the Agents SDK's features (README, "What is durable").

One agent graph (tests/apps/features_app.py) uses a real MCP server, an agent as a tool, an
input guardrail that runs a guardrail agent, an output guardrail, a handoff with `on_handoff`,
and run and agent hooks; every real execution is logged. A process is killed at each point of
interest, a fresh process finishes the run, and the log must equal the plain SDK's log plus, at
most, the one call that was in flight.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from . import processes
from .helpers import ExecutionLog
from .pgcluster import free_port

ROOT = processes.ROOT
VOLATILE = ("key", "amount", "verdict")

IN_FLIGHT: dict[str, list[dict[str, Any]]] = {
    "mcp_inside": [
        {"kind": "mcp", "name": "rent"},
        {"kind": "hook", "hook": "tool_start", "tool": "add_entry"},
    ],
    "mcp_recorded": [],
    "inner_model": [
        {"kind": "model", "agent": "Researcher", "turn": 1},
        {"kind": "hook", "hook": "tool_start", "tool": "researcher"},
    ],
    "inner_tool": [
        {"kind": "note", "text": "second"},
        {"kind": "hook", "hook": "tool_start", "tool": "researcher"},
    ],
    "guardrail_model": [{"kind": "model", "agent": "Guard", "turn": 0}],
    "handoff_recorded": [],
    "closer_model": [
        {"kind": "model", "agent": "Closer", "turn": 0},
        {"kind": "hook", "hook": "llm_start", "agent": "Closer"},
    ],
}
"""Crash point -> the executions that may happen once more: the call in flight, and its start
hook (hooks fire for live work only, and that call is live again)."""

LOST: dict[str, list[dict[str, Any]]] = {
    "mcp_recorded": [
        {"kind": "hook", "hook": "tool_end", "tool": "add_entry"},
        {"kind": "hook", "hook": "agent_tool_end", "tool": "add_entry"},
    ],
}
"""Crash point -> the end hooks it loses: the process died after the call was recorded and
before the SDK called them, and a replayed call fires none."""


def expected_after(crash_at: str, reference: Counter[str]) -> Counter[str]:
    extra = Counter(_key(e) for e in IN_FLIGHT.get(crash_at, []))
    return reference + extra - Counter(_key(e) for e in LOST.get(crash_at, []))


def _key(entry: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in entry.items() if k not in VOLATILE}, sort_keys=True)


def executions(workdir: Path) -> Counter[str]:
    return Counter(
        _key(e) for e in ExecutionLog(workdir / "log.jsonl").entries() if e["kind"] != "crash"
    )


def app(
    database_url: str,
    workdir: Path,
    mode: str,
    crash_at: str = "none",
    env: dict[str, str] | None = None,
) -> tuple[int, Any, str]:
    """Run the features app to its end; (exit code, its JSON line or None, stderr)."""
    process = processes.run_module(
        {**os.environ, "PYTHONPATH": str(ROOT), "TIMESTEP_LEASE_SECONDS": "2", **(env or {})},
        "tests.apps.features_app",
        *(database_url, str(workdir), "R1", mode, crash_at),
        # A stalled MCP answer waits 600 s (the client's session timeout): this fails first.
        timeout=180,
    )
    lines = process.stdout.strip().splitlines()
    return process.returncode, json.loads(lines[-1]) if lines else None, process.stderr


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Counter[str]]:
    """The plain SDK's result and executions for the same graph."""
    workdir = tmp_path_factory.mktemp("plain")
    code, result, err = app(f"sqlite:///{workdir}/unused.sqlite", workdir, "plain")
    assert code == 0, err
    return result, executions(workdir)


def finish_after_crash(
    database_url: str, workdir: Path, crash_at: str, env: dict[str, str] | None = None
) -> Any:
    code, _, err = app(database_url, workdir, "durable", crash_at, env)
    assert code in (3, -9), err  # os._exit(3), or SIGKILL from the MCP server
    assert [e["at"] for e in ExecutionLog(workdir / "log.jsonl").entries("crash")] == [crash_at]
    code, result, err = app(database_url, workdir, "durable", crash_at, env)
    assert code == 0, err
    return result


@pytest.mark.parametrize("crash_at", list(IN_FLIGHT))
def test_sqlite_crash_then_finish_runs_finished_work_once(
    reference: tuple[Any, Counter[str]], tmp_path: Path, crash_at: str
) -> None:
    expected_result, expected = reference
    result = finish_after_crash(f"sqlite:///{tmp_path}/timestep.sqlite", tmp_path, crash_at)
    assert result == expected_result
    assert executions(tmp_path) == expected_after(crash_at, expected)
    # The MCP server saw the call's idempotency key (in `_meta`), the same on the repeat.
    keys = {e["key"] for e in ExecutionLog(tmp_path / "log.jsonl").entries("mcp")}
    assert keys == {"R1:call_0_0"}


def test_postgres_crash_inside_mcp_call_then_finish(
    reference: tuple[Any, Counter[str]], postgres_url: str, tmp_path: Path
) -> None:
    expected_result, expected = reference
    result = finish_after_crash(postgres_url, tmp_path, "mcp_inside")
    assert result == expected_result
    assert executions(tmp_path) == expected_after("mcp_inside", expected)


def test_streamable_http_mcp_server(reference: tuple[Any, Counter[str]], tmp_path: Path) -> None:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.apps.mcp_server", str(tmp_path / "log.jsonl")]
        + ["streamable-http", str(port)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "no MCP server"
                time.sleep(0.1)
        env = {"TIMESTEP_TEST_MCP_URL": f"http://127.0.0.1:{port}/mcp"}
        result = finish_after_crash(
            f"sqlite:///{tmp_path}/timestep.sqlite", tmp_path, "mcp_recorded", env
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
    expected_result, expected = reference
    assert result == expected_result
    assert executions(tmp_path) == expected_after("mcp_recorded", expected)


def test_mcp_approval_parks_and_resumes_elsewhere(tmp_path: Path) -> None:
    """`require_approval` parks the run; approved from another process and resumed in a
    third (the continuation runs on DBOS's own loop, not the one that connected the server),
    the call runs once and its answer arrives at once."""
    url = f"sqlite:///{tmp_path}/timestep.sqlite"
    code, parked, err = app(url, tmp_path, "park")
    assert (code, parked) == (0, {"pending": ["add_entry"]}), err
    assert ExecutionLog(tmp_path / "log.jsonl").entries("mcp") == []
    code, _, err = app(url, tmp_path, "approve")
    assert code == 0, err
    code, result, err = app(url, tmp_path, "resume")
    assert code == 0, err
    assert result["final_output"] == "closed"
    assert [e["key"] for e in ExecutionLog(tmp_path / "log.jsonl").entries("mcp")] == [
        "R1:call_0_0"
    ]


def test_a_worker_connects_the_mcp_servers_of_its_agents(tmp_path: Path) -> None:
    """A parked MCP call, approved, is finished by a worker whose app module only declares the
    server: the worker connects it, and the call runs once."""
    url = f"sqlite:///{tmp_path}/timestep.sqlite"
    assert app(url, tmp_path, "park")[:2] == (0, {"pending": ["add_entry"]})
    assert app(url, tmp_path, "approve")[0] == 0
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TIMESTEP_DB_URL": url,
        "TIMESTEP_TEST_FEATURES": f"{url}|{tmp_path}|R1|resume",
    }
    worker = processes.start_worker(env, "tests.apps.features_app")
    try:
        record = processes.wait_for_status(url, "R1", "completed", timeout=120)
    finally:
        code, err = processes.stop(worker)
    assert record["final_output"] == "closed", err
    assert code == 0, err
    assert [e["key"] for e in ExecutionLog(tmp_path / "log.jsonl").entries("mcp")] == [
        "R1:call_0_0"
    ]


def test_tripwire_raises_the_sdk_exception_live_and_from_records(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/timestep.sqlite"
    assert app(url, tmp_path, "trip")[1] == {"tripwire": {"verdict": "trip"}}
    # Asked again in a fresh process: the same exception, rebuilt from the run's records,
    # and the guardrail agent is not asked again.
    assert app(url, tmp_path, "trip")[1] == {"tripwire": {"verdict": "trip"}}
    log = ExecutionLog(tmp_path / "log.jsonl")
    assert [e["agent"] for e in log.entries("model")] == ["Guard"]


def test_an_agent_tools_approval_parks_the_whole_run(tmp_path: Path) -> None:
    """The SDK surfaces an inner tool's approval as the outer run's interruption: the run
    parks, is approved from another process and finishes in a third; the tool runs once."""
    url, log = f"sqlite:///{tmp_path}/timestep.sqlite", tmp_path / "log.jsonl"
    outputs = []
    for mode in ("run", "approve", "resume"):
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        process = processes.run_module(env, "tests.apps.nested_app", url, str(log), mode)
        assert process.returncode == 0, process.stderr
        outputs.append(process.stdout.strip())
    assert json.loads(outputs[0]) == {"pending": [["pay", "Payer"]]}
    assert json.loads(outputs[2]) == {"final_output": "boss done"}
    assert ExecutionLog(log).entries("pay") == [{"kind": "pay", "amount": 5}]
