#!/usr/bin/env python
"""Takeover latency after a worker is killed, and the at-least-once window after an outage.

1. Takeover (SQLite and PostgreSQL): two workers (`python -m workflows --app
   benchmarks._throughput_workers`), the peer started before the kill; the victim is killed
   (SIGKILL) while it holds runs inside slow tools. `claim_s` is the time from the kill to the
   peer's first claim of its runs (`timestep_claims.claimed_at`), `moved_s` until none of its
   runs is PENDING under it any more. Two paths: the victim as an ordinary process (the peer
   sees its pid gone: "same host"), and the victim in its own PID namespace (`unshare --pid`,
   as root), where only its lease tells (as on another host). Median and max over
   `--repetitions` kills, next to the lease.
2. After a database restart (PostgreSQL): the server crashes (`pg_ctl stop -m immediate`) while
   the victim holds runs, the victim is killed during the outage, and the server comes back
   after `--outage` seconds. `claim_s` counts from the server's return. The same run measures
   the at-least-once window: for the tool calls that returned while the server was down, the
   time from the server's return until their step's output is in the database (polled every
   20 ms).
3. Preemptible tool steps (in this process, SQLite and PostgreSQL): the time from an async
   step's return to the commit of its output, for `preemptible=True` (Timestep's tool step)
   and `False`, with `--concurrent` workflows stepping at once (median, p99, max).

Usage (from the repository root; as root for the lease path):

    .venv/bin/python benchmarks/takeover.py [--lease 10] [--repetitions 5] [--outage 5]
        [--backends sqlite,postgres] [--json]

Postgres: `TIMESTEP_BENCH_PG_URL` cannot be crashed, so the script always starts a throwaway
cluster of its own (tests/pgcluster.py). No thresholds: this script only reports.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from benchmarks.throughput import (  # noqa: E402
    Workers,
    _engine,
    _held_by,
    log,
    submit_runs,
    use_database,
)

TOOL_SECONDS = 3.0


def _args_env(args: argparse.Namespace, database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "BENCH_TOOL_SECONDS": str(TOOL_SECONDS),
        "TIMESTEP_WORKER_CONCURRENCY": "4",
        "TIMESTEP_LEASE_SECONDS": str(args.lease),
        "TIMESTEP_DB_URL": database_url,
    }


LOGS = Path(tempfile.mkdtemp(prefix="timestep-takeover-logs-"))
"""Each worker's stderr, kept for a look when a figure is odd (printed at the end)."""


def _worker(args: argparse.Namespace, database_url: str, isolated: bool) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "workflows", "--app", "benchmarks._throughput_workers"]
    if isolated:
        command = ["unshare", "--pid", "--fork", "--kill-child", *command]
    path = LOGS / f"worker-{time.time():.3f}.log"
    with open(path, "w") as stderr:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=_args_env(args, database_url),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            text=True,
        )
    deadline = time.time() + 120
    while "worker ready" not in path.read_text():
        if process.poll() is not None or time.time() > deadline:
            raise RuntimeError(f"worker did not start: {path.read_text()[-2000:]}")
        time.sleep(0.05)
    return process


def _victim_executor(workers: Workers, ids: list[str], peer_pid: int) -> str:
    from timestep.state import owners

    deadline = time.time() + 60
    while time.time() < deadline:
        with workers.engine.connect() as connection:
            rows = list(connection.execute(sa.select(owners.owners)))
        for row in rows:
            if (
                row.pid != peer_pid
                and row.stopped_at is None
                and _held_by(workers, ids, row.executor_id)
            ):
                return str(row.executor_id)
        time.sleep(0.05)
    raise RuntimeError("the victim never held a run")


def _first_claim(workers: Workers, victim: str, timeout: float) -> float:
    from timestep.state.schema import claims

    deadline = time.time() + timeout
    while time.time() < deadline:
        with workers.engine.connect() as connection:
            first = connection.execute(
                sa.select(sa.func.min(claims.c.claimed_at)).where(claims.c.from_executor == victim)
            ).scalar()
        if first is not None:
            return float(first)
        time.sleep(0.02)
    raise RuntimeError(f"nothing of {victim} was claimed within {timeout:.0f} s")


def _until_moved(workers: Workers, ids: list[str], victim: str, timeout: float) -> float:
    deadline = time.time() + timeout
    while _held_by(workers, ids, victim):
        if time.time() > deadline:
            raise RuntimeError(f"the runs of {victim} were never moved")
        time.sleep(0.02)
    return time.time()


def one_kill(
    args: argparse.Namespace, database_url: str, isolated: bool, cluster: Any = None
) -> dict[str, Any]:
    """Start a victim and a peer, kill the victim holding runs; seconds to claim and to move.

    With `cluster`, the server crashes first, the victim is killed during the outage, and the
    times count from the server's return (plus the at-least-once window of that outage)."""
    # The peer first: both are ready before the runs are submitted, so the victim holds runs
    # from their first tool on (a slow start must not let it finish them all).
    peer = _worker(args, database_url, False)
    victim = _worker(args, database_url, isolated)
    engine, table = _engine(database_url)
    workers = Workers(database_url, [victim, peer], engine, table)
    use_database(database_url)
    # 8 runs, 4 at a time per worker: the victim takes 4, the peer the others.
    ids = [f"tk-{uuid.uuid4().hex[:8]}-{index}" for index in range(8)]
    submit_runs(ids)
    result: dict[str, Any] = {}
    try:
        executor = _victim_executor(workers, ids, peer.pid)
        if cluster is not None:
            time.sleep(TOOL_SECONDS / 2)  # the tools in flight return during the outage
            cluster.crash()
            down_at = time.time()
        victim.kill()
        victim.wait()
        origin = time.time()
        if cluster is not None:
            time.sleep(max(0.0, down_at + args.outage - time.time()))
            cluster.restart_after_crash()
            origin = time.time()
            result["record_after_outage_s"], moved = _after_outage(
                workers, ids, executor, down_at, origin, timeout=10 * args.lease + 60
            )
        else:
            moved = _until_moved(workers, ids, executor, timeout=10 * args.lease + 60)
        claimed = _first_claim(workers, executor, timeout=10 * args.lease + 60)
        result |= {"claim_s": claimed - origin, "moved_s": moved - origin}
        return result
    finally:
        workers.stop()


def _after_outage(
    workers: Workers, ids: list[str], victim: str, down_at: float, up_at: float, timeout: float
) -> tuple[list[float], float]:
    """After the server's return: for the tool steps that returned during the outage (their
    `completed_at`, which DBOS takes when the step returns), seconds until their output is in
    the database (polled every 20 ms; the peer's steps: the victim is dead); and when none of
    the victim's runs is PENDING under it any more."""
    table = workers.table.replace("workflow_status", "operation_outputs")
    seen: dict[tuple[str, int], float] = {}
    moved: float | None = None
    while time.time() < up_at + timeout and (moved is None or time.time() < up_at + 5):
        try:
            with workers.engine.connect() as connection:
                rows = connection.execute(
                    sa.text(
                        f"SELECT workflow_uuid, function_id, completed_at_epoch_ms FROM {table} "
                        "WHERE function_name = 'timestep.tool_call'"
                    )
                ).all()
            held = _held_by(workers, ids, victim)
        except sa.exc.OperationalError:
            time.sleep(0.02)
            continue
        now = time.time()
        if moved is None and not held:
            moved = now
        for workflow, function, completed_ms in rows:
            if workflow in ids and down_at * 1000 <= (completed_ms or 0) <= up_at * 1000:
                seen.setdefault((workflow, function), now - up_at)
        time.sleep(0.02)
    if moved is None:
        raise RuntimeError(f"the runs of {victim} were never moved")
    return sorted(seen.values()), moved


def spread(samples: list[float]) -> dict[str, float]:
    return {
        "median": statistics.median(samples),
        "max": max(samples),
        "min": min(samples),
        "n": len(samples),
    }


@contextmanager
def backend_urls(backends: list[str]) -> Iterator[dict[str, Any]]:
    found: dict[str, Any] = {}
    cluster = None
    directory = Path(tempfile.mkdtemp(prefix="timestep-takeover-"))
    try:
        if "sqlite" in backends:
            found["sqlite"] = lambda: f"sqlite:///{directory}/{uuid.uuid4().hex[:8]}.sqlite"
        if "postgres" in backends:
            from tests.pgcluster import PostgresCluster, create_database

            cluster = PostgresCluster().start()
            found["postgres"] = lambda: create_database(
                cluster.url, f"takeover_{uuid.uuid4().hex[:8]}"
            )
            found["cluster"] = cluster
        yield found
    finally:
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(directory, ignore_errors=True)


# --- preemptible steps ----------------------------------------------------------------------


def preemptible_window(database_url: str, concurrent: int, steps: int) -> dict[str, Any]:
    """Seconds from an async step's return to its output's commit, preemptible or not."""
    from dbos import DBOS, DBOSConfig, DBOSPortableJSONSerializer
    from dbos._sys_db import SystemDatabase

    from timestep._engine import launch

    launch.reset_for_tests()  # the runs were submitted through Timestep's DBOS in this process

    returned: dict[tuple[str, int], float] = {}
    windows: dict[bool, list[float]] = {True: [], False: []}
    kind: dict[str, bool] = {}
    original = SystemDatabase.record_operation_result

    def timed(self: Any, result: Any, **kwargs: Any) -> None:
        original(self, result, **kwargs)
        key = (result["workflow_uuid"], result["function_id"])
        if key in returned:
            windows[kind[result["workflow_uuid"]]].append(time.perf_counter() - returned.pop(key))

    SystemDatabase.record_operation_result = timed  # type: ignore[method-assign]

    async def body() -> None:
        await asyncio.sleep(0.001)
        returned[(DBOS.workflow_id or "", DBOS.step_id or 0)] = time.perf_counter()

    @DBOS.step(name="bench_preemptible", preemptible=True)
    async def preemptible_step() -> None:
        await body()

    @DBOS.step(name="bench_plain")
    async def plain_step() -> None:
        await body()

    @DBOS.workflow(name="bench_steps")
    async def stepping(preemptible: bool) -> None:
        for _ in range(steps):
            await (preemptible_step() if preemptible else plain_step())

    from timestep.state.database import create_engine, parse_database_url

    # Timestep's engine settings (SQLite in WAL mode), as a worker runs its steps.
    DBOS(
        config=DBOSConfig(
            name="bench-preemptible",
            system_database_engine=create_engine(parse_database_url(database_url)),
            serializer=DBOSPortableJSONSerializer(),
            log_level="WARNING",
        )
    )
    DBOS.launch()

    async def all_of(preemptible: bool) -> None:
        ids = [f"{preemptible}-{uuid.uuid4().hex[:8]}" for _ in range(concurrent)]
        for workflow_id in ids:
            kind[workflow_id] = preemptible
        handles = []
        for workflow_id in ids:
            from dbos import SetWorkflowID

            with SetWorkflowID(workflow_id):
                handles.append(await DBOS.start_workflow_async(stepping, preemptible))
        for handle in handles:
            await handle.get_result()

    try:
        for _ in range(2):  # alternate which goes first
            asyncio.run(all_of(True))
            asyncio.run(all_of(False))
    finally:
        DBOS.destroy(destroy_registry=True)
        SystemDatabase.record_operation_result = original  # type: ignore[method-assign]
    return {
        label: {
            "median_ms": statistics.median(values) * 1000,
            "p99_ms": sorted(values)[int(0.99 * (len(values) - 1))] * 1000,
            "max_ms": max(values) * 1000,
            "n": len(values),
        }
        for label, values in (("preemptible", windows[True]), ("plain", windows[False]))
    }


# --- main -----------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lease", type=float, default=10.0)
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--outage", type=float, default=5.0)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--concurrent", type=int, default=50)
    parser.add_argument(
        "--skip",
        default="",
        help="comma list of parts to skip: kill, lease, restart, restart_lease, preemptible",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    backends = args.backends.split(",")
    skip = set(filter(None, args.skip.split(",")))
    can_isolate = os.geteuid() == 0 and shutil.which("unshare") is not None
    report: dict[str, Any] = {"lease_s": args.lease}
    with backend_urls(backends) as urls:
        for backend in backends:
            paths = [("same_host", False)] if "kill" not in skip else []
            if can_isolate and "lease" not in skip:
                paths.append(("lease", True))
            for path, isolated in paths:
                claims, moves = [], []
                for index in range(args.repetitions):
                    measured = one_kill(args, urls[backend](), isolated)
                    log(f"{backend} {path} kill {index + 1}: {measured}")
                    claims.append(measured["claim_s"])
                    moves.append(measured["moved_s"])
                report[f"{backend}_{path}"] = {"claim_s": spread(claims), "moved_s": spread(moves)}
            if backend == "postgres":
                restart_paths = [("same_host", False)] if "restart" not in skip else []
                if can_isolate and "restart_lease" not in skip:
                    restart_paths.append(("lease", True))
                for path, isolated in restart_paths:
                    claims, windows = [], []
                    for index in range(args.repetitions):
                        measured = one_kill(args, urls[backend](), isolated, urls["cluster"])
                        log(f"postgres restart {path} {index + 1}: {measured}")
                        claims.append(measured["claim_s"])
                        windows += measured["record_after_outage_s"]
                    report[f"postgres_restart_{path}"] = {
                        "claim_s": spread(claims),
                        "record_after_outage_s": spread(windows) if windows else None,
                    }
            if "preemptible" not in skip:
                report[f"{backend}_tool_step_window"] = preemptible_window(
                    urls[backend](), args.concurrent, steps=20
                )
                log(f"{backend} preemptible: {report[f'{backend}_tool_step_window']}")
    print_report(report)
    print(f"worker logs: {LOGS}")
    if args.json:
        print(json.dumps(report))
    return 0


def print_report(report: dict[str, Any]) -> None:
    print(f"lease {report['lease_s']:g} s; seconds, median (max) over kills")
    print(f"{'what':<34} {'claim':>16} {'moved / recorded':>18}")
    for key, value in report.items():
        if not isinstance(value, dict) or "claim_s" not in value:
            continue
        claim = value["claim_s"]
        other = value.get("moved_s") or value.get("record_after_outage_s")
        other_text = f"{other['median']:.2f} ({other['max']:.2f})" if other else "-"
        print(f"{key:<34} {claim['median']:>7.2f} ({claim['max']:.2f}) {other_text:>18}")
    for key, value in report.items():
        if key.endswith("_tool_step_window"):
            for label, figures in value.items():
                print(
                    f"{key} {label:<12} return->commit median {figures['median_ms']:.2f} ms, "
                    f"p99 {figures['p99_ms']:.2f} ms, max {figures['max_ms']:.2f} ms "
                    f"(n={figures['n']})"
                )


if __name__ == "__main__":
    sys.exit(main())
