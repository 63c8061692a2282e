#!/usr/bin/env python
"""Fleet throughput: runs/s and steps/s of C concurrent runs on W workers, against bare DBOS.

For each configuration (PostgreSQL with 1 and 3 workers, SQLite with 1 worker) the script starts
W Timestep workers (`python -m workflows --app benchmarks._throughput_workers`) on one fresh
database and W bare DBOS workers (`python -m benchmarks._throughput_workers bare`, the same
steps in a plain `@DBOS.workflow`, same engine settings) on another. Then, for each C, it
repeats, alternating which variant goes first: submit C runs (`timestep.submit` / a
`DBOSClient.enqueue` of the bare workflow) and time from the first submission until every one
of them is SUCCESS in DBOS's table. A run is 5 recorded steps (3 model calls, 2 tool calls that
sleep `--tool-seconds`). Figures are medians over `--repetitions`, with min-max.

Takeover (PostgreSQL, 3 Timestep workers): one worker runs in its own PID namespace
(`unshare --pid`), so its peers cannot see its process and only its lease tells them it died,
as for a worker on another host. It is killed (SIGKILL) while it has runs inside slow tools;
`takeover_s` is the time from the kill until every run it held is PENDING on another worker or
finished. Without `unshare` (not root) the victim is an ordinary process and the figure is the
same-host path (its peers see the process gone at once); the output says which.

Usage (from the repository root):

    .venv/bin/python benchmarks/throughput.py [--json] [--concurrency 1,50,200]
        [--repetitions 3] [--tool-seconds 0.01] [--lease 10] [--worker-concurrency 50]

Postgres: `TIMESTEP_BENCH_PG_URL`, else a throwaway cluster (tests/pgcluster.py). Progress goes
to stderr; stdout has the table and, with `--json`, one JSON object as its last line. No
thresholds: this script only reports.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

STEPS_PER_RUN = 5


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Workers:
    """Worker processes of one variant on one database."""

    database_url: str
    processes: list[subprocess.Popen[str]]
    engine: sa.Engine
    table: str

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        self.engine.dispose()

    def finished(self, prefix: str) -> int:
        with self.engine.connect() as connection:
            return int(
                connection.execute(
                    sa.text(
                        f"SELECT count(*) FROM {self.table} "
                        "WHERE status = 'SUCCESS' AND workflow_uuid LIKE :prefix"
                    ),
                    {"prefix": prefix + "%"},
                ).scalar_one()
            )


def _env(args: argparse.Namespace, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "BENCH_TOOL_SECONDS": str(args.tool_seconds),
        "TIMESTEP_WORKER_CONCURRENCY": str(args.worker_concurrency),
        "TIMESTEP_LEASE_SECONDS": str(args.lease),
        **extra,
    }


def _spawn(command: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


def _wait_ready(process: subprocess.Popen[str]) -> None:
    assert process.stderr is not None
    for line in process.stderr:
        if "worker ready" in line:
            # Keep draining stderr so the worker never blocks on a full pipe.
            threading.Thread(target=_drain, args=(process,), daemon=True).start()
            return
    raise RuntimeError(f"worker exited before it was ready (code {process.wait()})")


def _drain(process: subprocess.Popen[str]) -> None:
    assert process.stderr is not None
    for _line in process.stderr:
        pass


def _engine(database_url: str) -> tuple[sa.Engine, str]:
    from timestep.state.database import create_engine, parse_database_url

    target = parse_database_url(database_url)
    return create_engine(target, pool_size=2), (
        "workflow_status" if target.is_sqlite else "dbos.workflow_status"
    )


def start_timestep_workers(
    args: argparse.Namespace, database_url: str, count: int, isolate_first: bool = False
) -> Workers:
    processes = []
    for index in range(count):
        command = [sys.executable, "-m", "workflows", "--app", "benchmarks._throughput_workers"]
        if isolate_first and index == 0:
            command = ["unshare", "--pid", "--fork", "--kill-child", *command]
        processes.append(_spawn(command, _env(args, TIMESTEP_DB_URL=database_url)))
    for process in processes:
        _wait_ready(process)
    engine, table = _engine(database_url)
    return Workers(database_url, processes, engine, table)


def start_bare_workers(args: argparse.Namespace, database_url: str, count: int) -> Workers:
    processes = [
        _spawn(
            [sys.executable, "-m", "benchmarks._throughput_workers", "bare", database_url],
            _env(args),
        )
        for _ in range(count)
    ]
    for process in processes:
        _wait_ready(process)
    engine, table = _engine(database_url)
    return Workers(database_url, processes, engine, table)


def _wait_all(workers: Workers, prefix: str, count: int, timeout: float = 600) -> None:
    deadline = time.perf_counter() + timeout
    while workers.finished(prefix) < count:
        if time.perf_counter() > deadline:
            raise RuntimeError(f"{prefix}: only {workers.finished(prefix)} of {count} finished")
        time.sleep(0.02)


def use_database(database_url: str) -> None:
    """Point this process's Timestep (which only submits: no DBOS launch) at `database_url`."""
    import timestep
    from timestep._engine import launch

    launch.reset_for_tests()
    timestep.configure(database_url=database_url)


def submit_runs(ids: list[str]) -> None:
    import timestep
    from benchmarks._throughput_workers import bench

    async def submit_all() -> None:
        for run_id in ids:
            await timestep.submit(bench, "go", run_id=run_id)

    asyncio.run(submit_all())


def measure_timestep(workers: Workers, concurrency: int) -> float:
    prefix = f"ts-{uuid.uuid4().hex[:8]}-"
    started = time.perf_counter()
    submit_runs([f"{prefix}{index}" for index in range(concurrency)])
    _wait_all(workers, prefix, concurrency)
    return time.perf_counter() - started


def measure_bare(workers: Workers, client: Any, concurrency: int) -> float:
    from dbos import EnqueueOptions

    from benchmarks._throughput_workers import BARE_QUEUE

    prefix = f"bare-{uuid.uuid4().hex[:8]}-"
    started = time.perf_counter()
    for index in range(concurrency):
        options: EnqueueOptions = {
            "queue_name": BARE_QUEUE,
            "workflow_name": "bench.bare_run",
            "workflow_id": f"{prefix}{index}",
            "app_version": "bench-1",
        }
        client.enqueue(options, "go")
    _wait_all(workers, prefix, concurrency)
    return time.perf_counter() - started


def bare_client(database_url: str) -> Any:
    from dbos import DBOSClient, DBOSPortableJSONSerializer

    from benchmarks._throughput_workers import BARE_APP
    from timestep.state.database import create_engine, parse_database_url

    return DBOSClient(
        system_database_engine=create_engine(parse_database_url(database_url), pool_size=2),
        serializer=DBOSPortableJSONSerializer(),
        application_name=BARE_APP,
    )


def summary(samples: list[float]) -> dict[str, float]:
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples)}


def measure_configuration(
    args: argparse.Namespace, backend: str, urls: tuple[str, str], count: int
) -> dict[str, Any]:
    log(f"[{backend} x{count}] starting workers")
    with ExitStack() as stack:
        timestep_workers = start_timestep_workers(args, urls[0], count)
        stack.callback(timestep_workers.stop)
        bare_workers = start_bare_workers(args, urls[1], count)
        stack.callback(bare_workers.stop)
        client = bare_client(urls[1])
        stack.callback(client.destroy)
        use_database(urls[0])
        measure_timestep(timestep_workers, 5)  # warm-up of both variants
        measure_bare(bare_workers, client, 5)
        results: dict[str, Any] = {}
        for concurrency in args.concurrency:
            times: dict[str, list[float]] = {"timestep": [], "bare": []}
            for repetition in range(args.repetitions):
                order = ["timestep", "bare"] if repetition % 2 == 0 else ["bare", "timestep"]
                for variant in order:
                    if variant == "timestep":
                        seconds = measure_timestep(timestep_workers, concurrency)
                    else:
                        seconds = measure_bare(bare_workers, client, concurrency)
                    times[variant].append(seconds)
                    log(f"[{backend} x{count}] C={concurrency} {variant}: {seconds:.2f} s")
            steps = {
                v: [concurrency * STEPS_PER_RUN / t for t in samples]
                for v, samples in times.items()
            }
            ratios = [
                t_bare / t_ts for t_bare, t_ts in zip(times["bare"], times["timestep"], strict=True)
            ]
            results[str(concurrency)] = {
                "runs_per_s": summary([concurrency / t for t in times["timestep"]]),
                "steps_per_s": summary(steps["timestep"]),
                "bare_steps_per_s": summary(steps["bare"]),
                "ratio_vs_bare_dbos": summary(ratios),
            }
        return results


def measure_takeover(args: argparse.Namespace, database_url: str) -> dict[str, Any]:
    """Kill one of 3 workers inside slow tools; seconds until its runs go on elsewhere."""
    isolate = os.geteuid() == 0 and shutil.which("unshare") is not None
    workers = start_timestep_workers(_take_over_args(args), database_url, 3, isolate_first=isolate)
    try:
        use_database(database_url)
        ids = [f"takeover-{index}" for index in range(30)]
        submit_runs(ids)
        victim_executor = _wait_for_victim_runs(workers, ids)
        held = _held_by(workers, ids, victim_executor)
        workers.processes[0].kill()
        workers.processes[0].wait()
        killed = time.perf_counter()
        while _held_by(workers, ids, victim_executor) & held:
            if time.perf_counter() - killed > 10 * args.lease + 60:
                raise RuntimeError("the killed worker's runs were never taken over")
            time.sleep(0.05)
        seconds = time.perf_counter() - killed
        _wait_all(workers, "takeover-", len(ids))
        return {
            "takeover_s": seconds,
            "lease_s": args.lease,
            "runs_taken_over": len(held),
            "path": "lease (victim in its own PID namespace)" if isolate else "same-host pid check",
        }
    finally:
        workers.stop()


def _take_over_args(args: argparse.Namespace) -> argparse.Namespace:
    slow = argparse.Namespace(**vars(args))
    slow.tool_seconds = 3.0
    slow.worker_concurrency = 5
    return slow


def _held_by(workers: Workers, ids: list[str], executor: str) -> set[str]:
    with workers.engine.connect() as connection:
        rows = connection.execute(
            sa.text(
                f"SELECT workflow_uuid FROM {workers.table} "
                "WHERE status = 'PENDING' AND executor_id = :executor"
            ),
            {"executor": executor},
        )
        return {row[0] for row in rows} & set(ids)


def _wait_for_victim_runs(workers: Workers, ids: list[str]) -> str:
    """The executor id of the first worker, once it holds runs."""
    from timestep.state import owners

    deadline = time.perf_counter() + 60
    victim_pid = workers.processes[0].pid
    while time.perf_counter() < deadline:
        with workers.engine.connect() as connection:
            rows = list(connection.execute(sa.select(owners.owners)))
        # In its own PID namespace the victim reports a different pid: find it by elimination.
        others = {p.pid for p in workers.processes[1:]}
        candidates = [r.executor_id for r in rows if r.pid not in others and r.stopped_at is None]
        for executor in candidates:
            if _held_by(workers, ids, executor):
                return executor
        time.sleep(0.05)
    raise RuntimeError(f"worker {victim_pid} never held a run")


@contextmanager
def databases(backends: list[str]) -> Iterator[dict[str, tuple[str, str]]]:
    with ExitStack() as stack:
        found: dict[str, tuple[str, str]] = {}
        if "sqlite" in backends:
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            found["sqlite"] = (
                f"sqlite:///{directory}/timestep.sqlite",
                f"sqlite:///{directory}/bare.sqlite",
            )
        if "postgres" in backends:
            from tests.pgcluster import bench_postgres_server, create_database, drop_database

            server = stack.enter_context(bench_postgres_server())

            def fresh(name: str) -> str:
                # Dropped on the way out (before a throwaway cluster stops), so that a server of
                # the user's (TIMESTEP_BENCH_PG_URL) keeps no benchmark databases.
                unique = f"bench_{name}_{uuid.uuid4().hex[:8]}"
                url = create_database(server, unique)
                stack.callback(drop_database, server, unique)
                return url

            found["postgres"] = (fresh("timestep"), fresh("bare"))
            found["postgres_takeover"] = (fresh("takeover"), "")
        yield found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--concurrency", default="1,50,200")
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--tool-seconds", type=float, default=0.01)
    parser.add_argument("--lease", type=float, default=10.0)
    parser.add_argument("--worker-concurrency", type=int, default=50)
    parser.add_argument("--backends", default="postgres,sqlite")
    args = parser.parse_args()
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    backends = args.backends.split(",")
    report: dict[str, Any] = {}
    with databases(backends) as urls:
        configurations = [("postgres", 1), ("postgres", 3), ("sqlite", 1)]
        for backend, count in configurations:
            if backend not in urls:
                continue
            by_concurrency = measure_configuration(args, backend, urls[backend], count)
            top = by_concurrency[str(max(args.concurrency))]
            report[f"{backend}_{count}w"] = {
                "runs_per_s": top["runs_per_s"]["median"],
                "steps_per_s": top["steps_per_s"]["median"],
                "ratio_vs_bare_dbos": top["ratio_vs_bare_dbos"]["median"],
                "takeover_s": None,
                "by_concurrency": by_concurrency,
            }
        if "postgres_takeover" in urls:
            log("[takeover] 3 workers on postgres, killing one inside its tools")
            takeover = measure_takeover(args, urls["postgres_takeover"][0])
            report["takeover"] = takeover
            if "postgres_3w" in report:
                report["postgres_3w"]["takeover_s"] = takeover["takeover_s"]
    print_table(report, args)
    if args.json:
        print(json.dumps(report))
    return 0


def print_table(report: dict[str, Any], args: argparse.Namespace) -> None:
    print(
        f"runs of {STEPS_PER_RUN} steps (tool sleep {args.tool_seconds} s), "
        f"median [min-max] of {args.repetitions}"
    )
    print(
        f"{'config':<14}{'C':>5}  {'runs/s':>22}  {'steps/s':>24}  {'bare DBOS steps/s':>24}"
        f"  {'ratio':>20}"
    )

    def cell(figure: dict[str, float], digits: int = 1) -> str:
        return (
            f"{figure['median']:.{digits}f} [{figure['min']:.{digits}f}-{figure['max']:.{digits}f}]"
        )

    for config, figures in report.items():
        if config == "takeover":
            continue
        for concurrency, row in figures["by_concurrency"].items():
            print(
                f"{config:<14}{concurrency:>5}  {cell(row['runs_per_s']):>22}  "
                f"{cell(row['steps_per_s']):>24}  {cell(row['bare_steps_per_s']):>24}  "
                f"{cell(row['ratio_vs_bare_dbos'], 2):>20}"
            )
    if "postgres_1w" in report and "postgres_3w" in report:
        for concurrency in report["postgres_3w"]["by_concurrency"]:
            one = report["postgres_1w"]["by_concurrency"][concurrency]["steps_per_s"]["median"]
            three = report["postgres_3w"]["by_concurrency"][concurrency]["steps_per_s"]["median"]
            print(f"postgres 3 workers vs 1 at C={concurrency}: {three / one:.2f}x")
    if "takeover" in report:
        t = report["takeover"]
        print(
            f"takeover: {t['takeover_s']:.1f} s for {t['runs_taken_over']} runs "
            f"(lease {t['lease_s']:g} s; {t['path']})"
        )


if __name__ == "__main__":
    sys.exit(main())
