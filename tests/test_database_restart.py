"""A PostgreSQL server that crashes and comes back while runs are inside tools and model calls.

The test starts a cluster of its own (the shared one serves other tests at the same time).
Tools that finish while the server is down are recorded once it is back and never run again;
a worker started while it is down waits and then works; the workers' logs say the outage in
two lines, without a traceback.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import start_cluster
from .helpers import ExecutionLog
from .pgcluster import PostgresCluster
from .processes import (
    ROOT,
    cli,
    env_for,
    start_worker,
    stop,
    submit_runs,
    wait_for_status,
)


@pytest.fixture
def own_cluster() -> Iterator[PostgresCluster]:
    cluster = start_cluster()
    try:
        yield cluster
    finally:
        cluster.stop()


def test_runs_survive_a_postgres_crash(own_cluster: PostgresCluster, tmp_path: Path) -> None:
    from tests.apps import fleet_app

    url = own_cluster.create_database("restart")
    log = ExecutionLog(tmp_path / "log.jsonl")
    env = env_for(
        url,
        log.path,
        TIMESTEP_TEST_TOOL_SECONDS="1.5",
        TIMESTEP_LEASE_SECONDS="3",
        TIMESTEP_WORKER_CONCURRENCY="10",
    )
    workers = [start_worker(env, "tests.apps.fleet_app") for _ in range(2)]
    library = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "timestep.cli",
            "run",
            "tests.apps.fleet_app:alpha",
            "go",
            "--run-id",
            "lib-r",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    ids = [f"pg-{index}" for index in range(12)]
    results: list[tuple[int, str]] = []
    late: subprocess.Popen[str] | None = None
    try:
        submit_runs(url, dict.fromkeys(ids, fleet_app.beta))
        deadline = time.time() + 60
        while len(log.entries("tool_start")) < 6 or not any(
            e["key"].startswith("lib-r:") for e in log.entries("tool_start")
        ):
            assert time.time() < deadline, "runs never got inside their tools"
            time.sleep(0.05)

        down_at = time.time()
        own_cluster.crash()
        # While the server is down, an inspecting command fails fast with one clear line, and
        # so does a worker told not to wait; a worker started now waits for the server.
        hasty = subprocess.Popen(
            [sys.executable, "-m", "workflows", "--app", "tests.apps.fleet_app"]
            + ["--wait-for-db", "0"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        late = start_worker(env, "tests.apps.fleet_app")
        down = cli(env, "runs", "list")
        assert down.returncode == 1
        assert "cannot" in down.stderr and "PostgreSQL server" in down.stderr, down.stderr
        hasty_err = hasty.communicate(timeout=60)[1]
        assert hasty.returncode == 1, hasty_err
        assert hasty_err.startswith("workflows: error: cannot reach the PostgreSQL server")
        assert len(hasty_err.splitlines()) == 1, hasty_err
        # Longer than the lease: nobody may count the others dead for it.
        time.sleep(max(0.0, down_at + 4 - time.time()))
        up_at = time.time()
        own_cluster.restart_after_crash()

        out, err = library.communicate(timeout=180)
        assert library.returncode == 0, err
        assert out.strip() == "two steps"
        for run_id in ids:
            try:
                record = wait_for_status(url, run_id, "completed", timeout=180)
            except AssertionError as exc:
                tails = "\n".join(stop(w)[1][-4000:] for w in workers)
                raise AssertionError(f"{exc}\nworkers:\n{tails}") from None
            assert record["final_output"] == "two steps"
        # The worker that started during the outage works: the others stop, and it runs the
        # next run.
        results = [stop(w) for w in workers]
        submit_runs(url, {"after": fleet_app.alpha})
        assert wait_for_status(url, "after", "completed")["final_output"] == "two steps"
    finally:
        if library.poll() is None:
            library.kill()
        results = [stop(w) for w in workers if w.poll() is None] + results
        late_code, late_err = stop(late) if late is not None else (-1, "")
    for code, err in results:
        assert code == 0, err
        # One line when the server is lost, one when it is back; no dependency's traceback.
        assert err.count("timestep: lost the database at") == 1, err
        assert err.count("is back after") == 1, err
        assert "Traceback" not in err and "Database connection failed" not in err, err
        assert "worker stopped after" in err
    assert late is not None and late_code == 0, late_err
    assert late_err.count("is unreachable") == 1 and "is reachable after" in late_err, late_err
    assert "Traceback" not in late_err, late_err
    assert {e["pid"] for e in log.entries("tool_start") if e["key"].startswith("after:")} == {
        late.pid
    }
    # Tool calls that returned while the server was down were recorded when it came back.
    during = {e["key"] for e in log.entries("tool_end") if down_at < e["t"] < up_at}
    assert during, "no tool call returned during the outage"
    # Nothing ran twice: the steps in flight waited for the server and were recorded once,
    # and no process took over another's runs because of the outage.
    starts = Counter(e["key"] for e in log.entries("tool_start"))
    assert len(starts) == 2 * (len(ids) + 2)
    assert set(starts.values()) == {1}, starts
    models = Counter((e["run"], e["seen"]) for e in log.entries("model"))
    assert len(models) == 3 * (len(ids) + 2) and set(models.values()) == {1}, models
    assert all("took over" not in err for _, err in results)
