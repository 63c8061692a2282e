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
import sqlalchemy as sa

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


def test_a_killed_worker_is_taken_over_at_once_by_a_peer_on_its_host(
    database_url: str, tmp_path: Path
) -> None:
    """The peer, started one second before the kill, claims the dead worker's runs as soon as
    its process is gone: while the dead worker's lease still runs, and long before the peer
    itself has been connected for a lease (the recorded claims and heartbeats say so, all by
    the database's clock)."""
    from tests.apps import fleet_app
    from timestep.state import owners
    from timestep.state.database import create_engine, parse_database_url
    from timestep.state.schema import claims

    lease = 60.0  # far longer than the test: a claim by lease would fail it
    log = ExecutionLog(tmp_path / "log.jsonl")
    env = env_for(
        database_url,
        log.path,
        TIMESTEP_TEST_TOOL_SECONDS="60",
        TIMESTEP_LEASE_SECONDS=str(lease),
    )
    engine = create_engine(parse_database_url(database_url), pool_size=1)
    victim = start_worker(env, "tests.apps.fleet_app")
    peer: subprocess.Popen[str] | None = None
    try:
        submit_runs(database_url, {"dies-1": fleet_app.alpha, "dies-2": fleet_app.beta})
        wait_for(lambda: len(log.entries("tool_start")) == 2, what="both runs inside a tool")
        peer = start_worker({**env, "TIMESTEP_TEST_TOOL_SECONDS": "0.1"}, "tests.apps.fleet_app")
        pids = lambda: {o.pid: o for o in owners.others(engine, exclude="")}  # noqa: E731
        wait_for(lambda: peer is not None and peer.pid in pids(), what="the peer to register")
        victim.send_signal(signal.SIGKILL)
        finish_worker(victim, timeout=30)
        killed_at = time.time()
        for run_id in ("dies-1", "dies-2"):
            assert wait_for_status(database_url, run_id, "completed")["final_output"] == (
                "two steps"
            )
        known = pids()
    finally:
        code, err = stop(peer) if peer is not None else (0, "")
        if victim.poll() is None:
            victim.kill()
    assert code == 0, err
    dead, taker = known[victim.pid], known[peer.pid]
    with engine.connect() as connection:
        taken = connection.execute(sa.select(claims)).all()
    engine.dispose()
    assert {row.workflow_id for row in taken} >= {"dies-1", "dies-2"}, taken
    for row in taken:
        assert (row.from_executor, row.claimed_by) == (dead.executor_id, taker.executor_id)
        assert row.claimed_at < dead.heartbeat_at + lease, "claimed only when the lease ran out"
        assert row.claimed_at < taker.started_at + lease, "claimed only once the peer was old"
        assert row.claimed_at > taker.started_at
    assert f"of dead executor {dead.executor_id!r}" in err
    assert Counter(e["key"] for e in log.entries("tool_start")) == {
        "dies-1:call_0_0": 2,
        "dies-1:call_1_0": 1,
        "dies-2:call_0_0": 2,
        "dies-2:call_1_0": 1,
    }
    assert_never_concurrent(log, {victim.pid: killed_at})
