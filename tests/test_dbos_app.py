"""A DBOS application with its own `DBOS(config=...)` recovers its workflows that call `run_agent`.

`tests/apps/dbos_app.py` registers its agent with `timestep.register_agent`, launches its own
DBOS, and runs the agent inside its own `@DBOS.workflow`. Killed inside the agent's second tool
call and started again with the same executor id, DBOS's own start-up recovery must finish the
application's workflow (which needs Timestep's segment workflow registered before launch).
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

from tests.helpers import ExecutionLog
from tests.processes import env_for, run_module


def _app(
    database_url: str, log: Path, workflow_id: str, executor: str, mode: str
) -> subprocess.CompletedProcess[str]:
    args = [database_url, str(log), workflow_id, executor, mode]
    return run_module(env_for(database_url, log), "tests.apps.dbos_app", *args)


def test_an_application_workflow_recovers_after_a_crash_in_a_tool(
    database_url: str, tmp_path: Path
) -> None:
    log_path = tmp_path / "log.jsonl"
    log = ExecutionLog(log_path)
    executor = f"tickets-{uuid.uuid4().hex[:8]}"  # this test's own; both starts share it

    crashed = _app(database_url, log_path, "ticket-7", executor, "crash")
    assert crashed.returncode == 3, crashed.stderr
    assert [e["n"] for e in log.entries("tool")] == [1, 2]

    recovered = _app(database_url, log_path, "ticket-7", executor, "recover")
    assert recovered.returncode == 0, recovered.stderr
    assert "is not a registered workflow function" not in recovered.stderr
    assert json.loads(recovered.stdout.splitlines()[-1]) == {"output": "filed (ticket 7)"}
    # Recorded work ran once; only the tool call in flight at the crash ran again.
    assert [e["turn"] for e in log.entries("model")] == [0, 1, 2]
    assert [e["n"] for e in log.entries("tool")] == [1, 2, 2]
    first, second = {e["pid"] for e in log.entries("crash")}, log.entries("tool")[-1]["pid"]
    assert second not in first


def test_the_application_without_a_crash(database_url: str, tmp_path: Path) -> None:
    log_path = tmp_path / "log.jsonl"
    done = _app(database_url, log_path, "ticket-1", f"tickets-{uuid.uuid4().hex[:8]}", "run")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {"output": "filed (ticket 7)"}
    assert [e["n"] for e in ExecutionLog(log_path).entries("tool")] == [1, 2]
