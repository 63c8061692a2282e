"""Crash tests: a real process killed at each step boundary, then restarted."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from .helpers import ExecutionLog

ROOT = Path(__file__).resolve().parent.parent
BOUNDARIES = ["model_inside", "model_recorded", "tool_inside", "tool_recorded"]


def start(
    database_url: str, workdir: Path, mode: str, crash_at: str = "none", kill: str = "exit"
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.apps.crash_app",
            database_url,
            str(workdir / "log.jsonl"),
            "job-1",
            mode,
            crash_at,
            kill,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "TIMESTEP_LEASE_SECONDS": "2"},
    )


def finish(process: subprocess.Popen[str], timeout: float = 120) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def session_items(workdir: Path) -> list[Any]:
    connection = sqlite3.connect(workdir / "session.sqlite")
    try:
        rows = connection.execute("SELECT message_data FROM agent_messages ORDER BY id").fetchall()
    finally:
        connection.close()
    return [json.loads(row[0]) for row in rows]


def check_exactly_once(log: ExecutionLog, crash_at: str) -> None:
    models = Counter(entry["turn"] for entry in log.entries("model"))
    tools = Counter(entry["n"] for entry in log.entries("tool"))
    # The call in flight when the process died runs once more; recorded ones never again.
    assert models == {0: 1, 1: 2 if crash_at == "model_inside" else 1, 2: 1}
    assert tools == {1: 1, 2: 2 if crash_at == "tool_inside" else 1}


@pytest.mark.parametrize("kill", ["exit", "sigkill"])
@pytest.mark.parametrize("crash_at", BOUNDARIES)
def test_crash_then_rerun_finishes_exactly_once(
    database_url: str, tmp_path: Path, crash_at: str, kill: str
) -> None:
    code, _, err = finish(start(database_url, tmp_path, "run", crash_at, kill))
    assert code == (-9 if kill == "sigkill" else 3), err
    log = ExecutionLog(tmp_path / "log.jsonl")
    assert [entry["at"] for entry in log.entries("crash")] == [crash_at]

    code, out, err = finish(start(database_url, tmp_path, "run"))
    assert code == 0, err
    assert json.loads(out.strip().splitlines()[-1])["final_output"] == "both recorded"
    check_exactly_once(log, crash_at)
    items = session_items(tmp_path)
    kinds = [item.get("type", item.get("role")) for item in items]
    assert kinds == [
        "user",
        "function_call",
        "function_call_output",
        "function_call",
        "function_call_output",
        "message",
    ]


MOVED_TO_VERSION_QUEUE = re.compile(r"job-1 -> timestep@[0-9a-f]+:Worker")
"""The takeover's log line: the run's segment goes to the queue of its agent's version."""


def test_restarted_process_recovers_by_itself(database_url: str, tmp_path: Path) -> None:
    code, _, err = finish(start(database_url, tmp_path, "run", "tool_recorded", "sigkill"))
    assert code == -9, err

    # A process without the agent takes the dead owner's run over onto the queue of the run's
    # agent version (it does not run it: it has no agent) and says so.
    waiting = start(database_url, tmp_path, "recover-without-agent")
    deadline = time.time() + 60
    stderr_lines: list[str] = []
    assert waiting.stderr is not None
    while time.time() < deadline:
        line = waiting.stderr.readline()
        stderr_lines.append(line)
        if MOVED_TO_VERSION_QUEUE.search(line):
            break
    assert any(MOVED_TO_VERSION_QUEUE.search(line) for line in stderr_lines), "".join(stderr_lines)
    waiting.kill()
    waiting.communicate()
    log = ExecutionLog(tmp_path / "log.jsonl")
    assert Counter(entry["turn"] for entry in log.entries("model")) == {0: 1, 1: 1}

    code, out, err = finish(start(database_url, tmp_path, "recover"))
    assert code == 0, err
    assert json.loads(out.strip().splitlines()[-1]) == {
        "final_output": "both recorded",
        "status": "completed",
    }
    check_exactly_once(log, "tool_recorded")
