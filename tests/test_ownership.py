"""Run ownership across processes: no live run is executed twice, no dead owner's run is left.

Every process here is a real subprocess on one database; tools log when they start and end,
in which process, so the tests can tell whether a call ever ran in two processes at once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from .helpers import ExecutionLog
from .processes import (
    ROOT,
    cli,
    env_for,
    finish_worker,
    start_worker,
    stop,
    submit_runs,
    wait_for_status,
)

AGENT = "tests.apps.fleet_app:alpha"


def run_cli(env: dict[str, str], run_id: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "timestep.cli", "run", AGENT, "go", "--run-id", run_id],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(predicate: Any, timeout: float = 60, what: str = "condition") -> None:
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def starts_by_key(log: ExecutionLog) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in log.entries("tool_start"):
        found[entry["key"]].append(entry)
    return found


def assert_never_concurrent(log: ExecutionLog, killed: dict[int, float]) -> None:
    """No tool call ran in two processes at once: a second execution of a call starts only
    after the process of the first one was killed, and after the first one's end if it ended.

    (The first may have ended: a kill between the tool's return and the commit of its step is
    the at-least-once window the README states; a CI run at fab0963 killed a worker there.)"""
    ends = {(e["key"], e["pid"]): e["t"] for e in log.entries("tool_end")}
    for key, starts in starts_by_key(log).items():
        assert len(starts) <= 2, (key, starts)
        if len(starts) == 2:
            first, second = sorted(starts, key=lambda e: e["t"])
            assert first["pid"] in killed, (key, starts)
            assert second["t"] >= killed[first["pid"]], (key, starts)
            assert second["t"] >= ends.get((key, first["pid"]), first["t"]), (key, starts)


def test_a_second_process_never_runs_a_live_run(database_url: str, tmp_path: Path) -> None:
    log = ExecutionLog(tmp_path / "log.jsonl")
    env = env_for(database_url, log.path, TIMESTEP_TEST_TOOL_SECONDS="3")
    first = run_cli(env, "live-3")
    wait_for(lambda: log.entries("tool_start"), what="the first tool call to start")
    # While live-3 is inside its tool: an unrelated run, and the same run id again.
    other = run_cli(env, "other-3")
    same = run_cli(env, "live-3")
    processes = {"first": first, "other": other, "same": same}
    results = {name: p.communicate(timeout=120) for name, p in processes.items()}
    for name, process in processes.items():
        assert process.returncode == 0, (name, results[name][1])
        assert results[name][0].strip() == "two steps", (name, results[name])
    starts = Counter(e["key"] for e in log.entries("tool_start"))
    assert starts == {
        "live-3:call_0_0": 1,
        "live-3:call_1_0": 1,
        "other-3:call_0_0": 1,
        "other-3:call_1_0": 1,
    }
    models = Counter((e["run"], e["turn"]) for e in log.entries("model"))
    assert set(models.values()) == {1}, models
    pids = {e["pid"] for e in log.entries("tool_start") if e["key"].startswith("live-3")}
    assert pids == {first.pid}


def test_killed_library_process_is_taken_over_by_a_worker(
    database_url: str, tmp_path: Path
) -> None:
    log = ExecutionLog(tmp_path / "log.jsonl")
    env = env_for(
        database_url, log.path, TIMESTEP_TEST_TOOL_SECONDS="30", TIMESTEP_LEASE_SECONDS="2"
    )
    process = run_cli(env, "lib-1")
    wait_for(lambda: log.entries("tool_start"), what="the tool call to start")
    os.kill(process.pid, signal.SIGKILL)
    process.communicate()
    killed_at = time.time()

    # Meanwhile the run says who owned it and that the owner is gone.
    shown = cli(env, "runs", "show", "lib-1", "--json")
    assert shown.returncode == 0, shown.stderr
    record = json.loads(shown.stdout)
    assert record["status"] == "running"
    assert record["owner"]["alive"] is False
    assert record["owner"]["pid"] == process.pid
    assert "takes it over" in record["note"]
    text = cli(env, "runs", "show", "lib-1")
    assert "DEAD" in text.stdout and "takes it over" in text.stdout

    worker = start_worker({**env, "TIMESTEP_TEST_TOOL_SECONDS": "0.1"}, "tests.apps.fleet_app")
    try:
        done = wait_for_status(database_url, "lib-1", "completed")
    finally:
        code, err = stop(worker)
    assert code == 0, err
    assert done["final_output"] == "two steps"
    assert "took over 1 workflow(s)" in err
    starts = Counter(e["key"] for e in log.entries("tool_start"))
    # The call in flight when the process died runs again (at-least-once), the next once.
    assert starts == {"lib-1:call_0_0": 2, "lib-1:call_1_0": 1}
    assert_never_concurrent(log, {process.pid: killed_at})
    after = json.loads(cli(env, "runs", "show", "lib-1", "--json").stdout)
    assert after["owner"] is None and after["note"] is None


def test_a_stable_worker_id_resumes_its_own_runs_and_is_never_shared(
    database_url: str, tmp_path: Path
) -> None:
    from tests.apps import fleet_app

    log = ExecutionLog(tmp_path / "log.jsonl")
    env = env_for(
        database_url, log.path, TIMESTEP_TEST_TOOL_SECONDS="30", TIMESTEP_LEASE_SECONDS="2"
    )
    first = start_worker(env, "tests.apps.fleet_app", "--executor-id", "w-1")  # a fresh database
    submit_runs(database_url, {"own-1": fleet_app.alpha})
    wait_for(lambda: log.entries("tool_start"), what="the tool call to start")
    first.send_signal(signal.SIGKILL)
    finish_worker(first, timeout=30)
    killed_at = time.time()

    fast = {**env, "TIMESTEP_TEST_TOOL_SECONDS": "0.1"}
    again = start_worker(fast, "tests.apps.fleet_app", "--executor-id", "w-1")
    try:
        done = wait_for_status(database_url, "own-1", "completed")
        # While it lives, nobody else may use its id: a second one waits out the lease, then
        # refuses to start.
        twin = start_worker(fast, "tests.apps.fleet_app", "--executor-id", "w-1")
        code, err = finish_worker(twin, timeout=60)
        assert code == 1, err
        assert "executor id 'w-1' is in use by a live process" in err
    finally:
        code, err = stop(again)
    assert code == 0, err
    assert "took over 1 workflow(s) of dead executor 'w-1'" in err
    assert done["final_output"] == "two steps"
    assert Counter(e["key"] for e in log.entries("tool_start")) == {
        "own-1:call_0_0": 2,
        "own-1:call_1_0": 1,
    }
    assert_never_concurrent(log, {first.pid: killed_at})


@pytest.mark.parametrize("kill_worker", [True, False], ids=["kill", "no-kill"])
def test_three_workers_share_runs_and_survive_a_killed_one(
    postgres_url: str, tmp_path: Path, kill_worker: bool
) -> None:
    from tests.apps import fleet_app

    log = ExecutionLog(tmp_path / "log.jsonl")
    env = env_for(
        postgres_url,
        log.path,
        TIMESTEP_TEST_TOOL_SECONDS="0.2",
        TIMESTEP_LEASE_SECONDS="5",
        TIMESTEP_WORKER_CONCURRENCY="8",
    )
    workers = [start_worker(env, "tests.apps.fleet_app") for _ in range(3)]
    total = 200
    try:
        submit_runs(
            postgres_url,
            {f"fleet-{i}": fleet_app.alpha if i % 2 else fleet_app.beta for i in range(total)},
        )
        killed: dict[int, float] = {}
        if kill_worker:
            victim = workers[0]
            wait_for(
                lambda: sum(1 for e in log.entries("tool_start") if e["pid"] == victim.pid) >= 5,
                what="the first worker to be inside tools",
            )
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            killed[victim.pid] = time.time()
        for index in range(total):
            record = wait_for_status(postgres_url, f"fleet-{index}", "completed", timeout=240)
            assert record["final_output"] == "two steps"
    finally:
        errors = [stop(w) for w in workers if w.poll() is None]
    for code, err in errors:
        assert code == 0, err

    starts = starts_by_key(log)
    assert len(starts) == 2 * total
    assert_never_concurrent(log, killed)
    twice = [key for key, entries in starts.items() if len(entries) == 2]
    if not kill_worker:
        assert twice == []
    models = Counter((e["run"], e["seen"]) for e in log.entries("model"))
    assert len(models) == 3 * total
    assert max(models.values()) <= 2
    # Every worker took part: the queues spread the runs.
    pids = {e["pid"] for e in log.entries("tool_start")}
    assert len(pids) == 3, pids
    if kill_worker:
        # The calls the dead worker had in flight were finished by the survivors.
        survivors = {w.pid for w in workers[1:]}
        assert twice, "the killed worker had tool calls in flight"
        assert all(starts[key][-1]["pid"] in survivors for key in twice)
