#!/usr/bin/env python
"""Parked runs cost rows, not memory: worker RSS and restart time with N runs awaiting approval.

For each backend (SQLite, PostgreSQL) and each size N, on a fresh database per size:

1. park N runs: real ``timestep.run_agent`` runs of ``tests/apps/mail_app.py``'s ``mailer``
   (one model call, the ``lookup`` tool, then ``send_email`` needs approval), started in helper
   processes of this script that have the agent, ``--park-concurrency`` at a time per process;
2. once every size is parked, start a worker (``python -m workflows --app
   tests.apps.mail_app``) on each size's database in turn, ``--restarts`` rounds: each time
   measure the seconds from spawning the process until it is *ready* (below) and its resident
   memory (VmRSS) once ready, then stop it with SIGTERM. Round-robin over the sizes, so that a
   change in machine load hits every size alike;
3. per size, start one more worker (also a restart sample), approve 100 of the parked runs with
   ``timestep.approve`` from this process (which has no agent code and never launches DBOS) and
   measure the seconds from the first approve call until all 100 are ``completed`` in
   ``timestep_runs``; read the worker's RSS again, then stop it. The script checks that the
   restarts executed no model or tool call and that ``send_email`` ran exactly 100 times.

4. decisions per second (``--decisions``, ``--decide-rounds``; ``--decisions-only`` measures only
   this): on a fresh database per backend, ``1 + 2 x rounds x decisions`` parked runs are
   approved with ``timestep.approve`` from this process with no worker running, per round one
   batch one after another and one batch all at once; it prints decisions/s per mode as median
   [min-max] over the rounds and the SQL statements (Timestep's, DBOS's) and commits of each
   sequential approve, counted with SQLAlchemy's ``before_cursor_execute`` and ``commit`` events.

``rss_mb`` and ``restart_s`` are medians over the ``--restarts`` + 1 starts of a size.

Ready: the worker wrote its ``worker ready`` log line. ``timestep/worker.py`` writes it once
``launch.ensure_dbos()`` has returned, i.e. after the imports, the app module's agents are
registered, Timestep's tables are migrated, ``DBOS.launch()`` has run (system-table migrations,
application version, the *synchronous* query for this executor's PENDING workflows that starts
recovery, the queue thread) and the agent's queue ``timestep:Mailer`` is registered. DBOS's
startup recovery then only re-enqueues the PENDING workflows that query found, in a background
thread. The script counts the database's PENDING workflows before every start: a parked run's
segment has ended (SUCCESS), so the count is 0 and recovery has nothing left to do when the line
appears. A nonzero count is reported (``pending_at_start``) and then "ready" waits, in addition,
until no workflow is PENDING for the worker's executor id any more.

Usage (from the repository root)::

    .venv/bin/python benchmarks/parked_runs.py [--json] [--sizes 100,1000,10000]
        [--backends sqlite,postgres] [--restarts 3] [--finish 100]

Postgres: ``TIMESTEP_BENCH_PG_URL`` (a server URL whose user may CREATE DATABASE; one fresh
database per size, dropped afterwards) when set, else a throwaway cluster from
``tests/pgcluster.py``. Progress goes to stderr; stdout has the table and, with ``--json``, one
JSON object as its last line. No thresholds: this script only reports.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import sqlalchemy as sa  # noqa: E402

from timestep.state.database import create_engine, parse_database_url  # noqa: E402

BACKENDS = ("sqlite", "postgres")
APP_MODULE = "tests.apps.mail_app"
WORKER_EXECUTOR_ID = "bench-worker"
READY_LINE = "worker ready"
RUN_ID_FORMAT = "park-{:06d}"
START_TIMEOUT_S = 120.0
FINISH_TIMEOUT_S = 600.0


def log(message: str) -> None:
    print(f"[parked_runs {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- parking (runs in helper processes that have the agent) -------------------------------------


async def _park(url: str, first: int, count: int, concurrency: int, executor_id: str) -> None:
    """Park runs `first` .. `first + count - 1` through `timestep.run_agent`."""
    import timestep
    from tests.apps.mail_app import mailer
    from timestep._engine import launch

    for name in ("dbos", "openai.agents", "timestep"):
        logging.getLogger(name).setLevel(logging.WARNING)
    timestep.configure(database_url=url, executor_id=executor_id)
    await asyncio.to_thread(launch.ensure_dbos)

    async def one(index: int) -> None:
        run_id = RUN_ID_FORMAT.format(index)
        result = await timestep.run_agent(mailer, "mail bob", run_id=run_id)
        if not result.interruptions:
            raise RuntimeError(f"run {run_id} did not stop for approval: {result.final_output!r}")

    started = last_report = time.perf_counter()
    done = 0
    indices = list(range(first, first + count))
    for offset in range(0, count, concurrency):
        batch = indices[offset : offset + concurrency]
        await asyncio.gather(*(one(index) for index in batch))
        done += len(batch)
        now = time.perf_counter()
        if now - last_report >= 5 or done == count:
            rate = done / (now - started)
            log(f"  parker {executor_id}: {done}/{count} parked ({rate:.0f} runs/s)")
            last_report = now
    await asyncio.to_thread(launch.shutdown)


def park_main(url: str, first: int, count: int, concurrency: int, executor_id: str) -> int:
    asyncio.run(_park(url, first, count, concurrency, executor_id))
    return 0


def _child_env(test_log: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TIMESTEP_TEST_CRASH",)}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    # mail_app's ExecutionLog appends a line per execution to this file.
    env["TIMESTEP_TEST_LOG"] = str(test_log)
    return env


def park_runs(url: str, count: int, processes: int, concurrency: int, test_log: Path) -> float:
    """Park `count` runs with `processes` helper processes; returns the wall seconds."""
    processes = max(1, min(processes, count))
    share, extra = divmod(count, processes)
    started = time.perf_counter()
    children: list[subprocess.Popen[bytes]] = []
    first = 0
    for index in range(processes):
        n = share + (1 if index < extra else 0)
        children.append(
            subprocess.Popen(
                [
                    sys.executable,
                    str(Path(__file__).resolve()),
                    "--park-into",
                    url,
                    "--park-range",
                    f"{first}:{n}",
                    "--park-concurrency",
                    str(concurrency),
                    "--park-executor-id",
                    f"bench-parker-{index}",
                ],
                cwd=REPO_ROOT,
                env=_child_env(test_log),
                stdout=subprocess.DEVNULL,
            )
        )
        first += n
    failed = [child.args for child in children if child.wait() != 0]
    if failed:
        raise RuntimeError(f"parking failed in {len(failed)} helper process(es)")
    return time.perf_counter() - started


# --- the worker -----------------------------------------------------------------------------------


def rss_mb(pid: int, field_name: str = "VmRSS") -> float:
    """A memory figure of /proc/<pid>/status in MiB (1 MiB = 1024 kB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field_name} for pid {pid}")


@dataclass
class Worker:
    """A `python -m workflows` process whose stderr is read line by line."""

    url: str
    test_log: Path
    process: subprocess.Popen[str] | None = None
    spawned_at: float = 0.0
    ready_at: float | None = None
    lines: list[str] = field(default_factory=list)
    ready: threading.Event = field(default_factory=threading.Event)
    reader: threading.Thread | None = None

    def start(self) -> None:
        self.spawned_at = time.perf_counter()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "workflows",
                "--app",
                APP_MODULE,
                "--db",
                self.url,
                "--executor-id",
                WORKER_EXECUTOR_ID,
            ],
            cwd=REPO_ROOT,
            env=_child_env(self.test_log),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process is not None and self.process.stderr is not None
        for line in self.process.stderr:
            if self.ready_at is None and READY_LINE in line:
                self.ready_at = time.perf_counter()
                self.ready.set()
            self.lines.append(line.rstrip("\n"))

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> float:
        """Seconds from spawning the process to its ready line."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while not self.ready.wait(0.05):
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"worker exited with {self.process.returncode} before it was ready:\n"
                    + "\n".join(self.lines[-30:])
                )
            if time.monotonic() > deadline:
                raise RuntimeError("worker not ready in time:\n" + "\n".join(self.lines[-30:]))
        assert self.ready_at is not None
        return self.ready_at - self.spawned_at

    def stop(self) -> float:
        """SIGTERM, wait for a clean exit; returns the seconds it took."""
        assert self.process is not None
        started = time.perf_counter()
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=120)
        took = time.perf_counter() - started
        if self.reader is not None:
            self.reader.join(timeout=10)
        if code != 0:
            raise RuntimeError(f"worker exited with {code}:\n" + "\n".join(self.lines[-30:]))
        return took


# --- the deciding process (this one: no agent code, no DBOS launch) ------------------------------


def _workflow_table(engine: sa.Engine) -> str:
    return "workflow_status" if engine.dialect.name == "sqlite" else "dbos.workflow_status"


def count_runs(engine: sa.Engine, status: str) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(
                sa.text("SELECT count(*) FROM timestep_runs WHERE status = :s"), {"s": status}
            ).scalar_one()
        )


def count_pending_workflows(engine: sa.Engine, executor_id: str | None = None) -> int:
    query = f"SELECT count(*) FROM {_workflow_table(engine)} WHERE status = 'PENDING'"
    params: dict[str, Any] = {}
    if executor_id is not None:
        query += " AND executor_id = :e"
        params["e"] = executor_id
    with engine.connect() as connection:
        return int(connection.execute(sa.text(query), params).scalar_one())


def use_database(url: str) -> sa.Engine:
    """Point this process's Timestep at `url` (without launching DBOS); returns its engine."""
    import timestep
    from timestep._engine import launch
    from timestep.state import storage

    launch.reset_for_tests()
    timestep.configure(database_url=url)
    return storage.storage_engine()


def release_database() -> None:
    """Close this process's connections (before the database is dropped or the next size)."""
    from timestep._engine import launch

    launch.reset_for_tests()


async def approve_and_finish(engine: sa.Engine, run_ids: list[str]) -> tuple[float, float]:
    """Approve `run_ids` through the library, wait until all are completed.

    Returns (seconds until every approve call returned, seconds until all completed).
    """
    import timestep

    wanted = len(run_ids)
    started = time.perf_counter()
    await asyncio.gather(*(timestep.approve(run_id) for run_id in run_ids))
    approved = time.perf_counter() - started
    params = {"ids": run_ids}
    query = sa.text(
        "SELECT status, count(*) FROM timestep_runs WHERE run_id IN :ids GROUP BY status"
    ).bindparams(sa.bindparam("ids", expanding=True))
    deadline = time.monotonic() + FINISH_TIMEOUT_S
    while True:
        with engine.connect() as connection:
            counts: dict[str, int] = {row[0]: row[1] for row in connection.execute(query, params)}
        if counts.get("completed", 0) == wanted:
            return approved, time.perf_counter() - started
        if counts.get("failed"):
            raise RuntimeError(f"{counts['failed']} approved runs failed")
        if time.monotonic() > deadline:
            raise RuntimeError(f"approved runs not completed in time: {counts}")
        await asyncio.sleep(0.02)


def _log_entries(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


# --- one backend: every size parked, then restarts round-robin, then the approvals --------------


@dataclass
class Cell:
    """One size on one backend: its database and what was measured on it."""

    backend: str
    n: int
    url: str
    park_log: Path
    worker_log: Path
    engine: sa.Engine | None = None
    park_s: float = 0.0
    restarts: list[float] = field(default_factory=list)
    rss_ready: list[float] = field(default_factory=list)
    stops: list[float] = field(default_factory=list)
    load_1m: list[float] = field(default_factory=list)
    pending_at_start: int = 0

    @property
    def label(self) -> str:
        return f"{self.backend} N={self.n}"


def park_cell(cell: Cell, args: argparse.Namespace) -> None:
    log(f"{cell.label}: parking {cell.n} runs ...")
    cell.park_s = park_runs(
        cell.url, cell.n, args.park_processes, args.park_concurrency, cell.park_log
    )
    cell.engine = create_engine(parse_database_url(cell.url), pool_size=2)
    parked = count_runs(cell.engine, "awaiting_approval")
    if parked != cell.n:
        raise RuntimeError(f"{parked} runs awaiting approval, expected {cell.n}")
    log(f"{cell.label}: {parked} parked in {cell.park_s:.1f} s ({cell.n / cell.park_s:.0f} runs/s)")


def start_worker(cell: Cell) -> Worker:
    """Start a worker on the cell's database, wait until it is ready, record time and RSS."""
    assert cell.engine is not None
    pending = count_pending_workflows(cell.engine)
    cell.pending_at_start = max(cell.pending_at_start, pending)
    worker = Worker(cell.url, cell.worker_log)
    worker.start()
    ready_s = worker.wait_ready()
    if pending:
        # Not expected: then ready also means DBOS re-enqueued this executor's PENDING ones.
        while count_pending_workflows(cell.engine, WORKER_EXECUTOR_ID):
            time.sleep(0.02)
        ready_s = time.perf_counter() - worker.spawned_at
    cell.restarts.append(ready_s)
    cell.rss_ready.append(rss_mb(worker.pid))
    cell.load_1m.append(os.getloadavg()[0])
    log(
        f"{cell.label}: start {len(cell.restarts)}: ready in {ready_s:.2f} s, "
        f"RSS {cell.rss_ready[-1]:.1f} MiB (load {cell.load_1m[-1]:.1f})"
    )
    return worker


def finish_cell(cell: Cell, args: argparse.Namespace) -> dict[str, Any]:
    """Start the last worker, approve `--finish` runs, wait until they completed."""
    assert cell.engine is not None
    worker = start_worker(cell)
    replayed = _log_entries(cell.worker_log)
    if replayed:
        raise RuntimeError(f"restarted workers executed {len(replayed)} model/tool calls")
    finish = min(args.finish, cell.n)
    run_ids = [RUN_ID_FORMAT.format(i) for i in range(finish)]
    use_database(cell.url)
    try:
        approve_s, finish_s = asyncio.run(approve_and_finish(cell.engine, run_ids))
    finally:
        rss_after = rss_mb(worker.pid)
        hwm = rss_mb(worker.pid, "VmHWM")
        cell.stops.append(worker.stop())
        release_database()
    sends = [e for e in _log_entries(cell.worker_log) if e.get("name") == "send_email"]
    if len(sends) != finish:
        raise RuntimeError(f"send_email ran {len(sends)} times for {finish} approved runs")
    left = count_runs(cell.engine, "awaiting_approval")
    if left != cell.n - finish:
        raise RuntimeError(f"{left} runs still awaiting approval, expected {cell.n - finish}")
    log(
        f"{cell.label}: approved {finish} in {approve_s:.2f} s, all completed after "
        f"{finish_s:.2f} s; RSS {rss_after:.1f} MiB (peak {hwm:.1f})"
    )
    cell.engine.dispose()
    return {
        "rss_mb": round(statistics.median(cell.rss_ready), 1),
        "restart_s": round(statistics.median(cell.restarts), 3),
        "finish_100_s": round(finish_s, 3),
        "finished": finish,
        "approve_100_s": round(approve_s, 3),
        "rss_after_finish_mb": round(rss_after, 1),
        "rss_peak_mb": round(hwm, 1),
        "restart_s_each": [round(r, 3) for r in cell.restarts],
        "load_1m_each": [round(v, 2) for v in cell.load_1m],
        "stop_s_median": round(statistics.median(cell.stops), 3),
        "pending_at_start": cell.pending_at_start,
        "parked": cell.n,
        "park_s": round(cell.park_s, 1),
    }


def bench_backend(cells: list[Cell], args: argparse.Namespace) -> dict[str, Any]:
    """Park every size, then start workers round-robin over the sizes (so that a change in
    machine load hits every size alike), then approve and finish on each."""
    for cell in cells:
        park_cell(cell, args)
    for _ in range(args.restarts):
        for cell in cells:
            cell.stops.append(start_worker(cell).stop())
    return {str(cell.n): finish_cell(cell, args) for cell in cells}


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="timestep-parked-") as tmp_name:
        tmp = Path(tmp_name)

        def cell(backend: str, n: int, url: str) -> Cell:
            return Cell(
                backend,
                n,
                url,
                tmp / f"park-{backend}-{n}.jsonl",
                tmp / f"worker-{backend}-{n}.jsonl",
            )

        for backend in args.backends:
            if backend == "sqlite":
                cells = [cell(backend, n, f"sqlite:///{tmp}/parked-{n}.sqlite") for n in args.sizes]
                report[backend] = bench_backend(cells, args)
                continue
            from tests.pgcluster import bench_postgres_server, create_database, drop_database

            with bench_postgres_server() as server:
                names = [f"timestep_parked_{n}_{uuid.uuid4().hex[:8]}" for n in args.sizes]
                try:
                    cells = [
                        cell(backend, n, create_database(server, name))
                        for n, name in zip(args.sizes, names, strict=True)
                    ]
                    report[backend] = bench_backend(cells, args)
                finally:
                    for name in names:
                        with contextlib.suppress(Exception):
                            drop_database(server, name)
    return report


# --- decisions per second: library approve on parked runs, no worker -----------------------------


class StatementCounter:
    """Counts the SQL statements and commits of every SQLAlchemy engine in this process
    (Timestep's, and DBOS's client, which shares it; any engine DBOS makes of its own too)."""

    DBOS_TABLES = ("workflow_status", "workflow_input", "notifications", "operation_outputs")

    def __init__(self) -> None:
        self.timestep = self.dbos = self.commits = 0

    def _statement(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if any(table in statement for table in self.DBOS_TABLES):
            self.dbos += 1
        else:
            self.timestep += 1

    def _commit(self, conn: Any) -> None:
        self.commits += 1

    def __enter__(self) -> StatementCounter:
        sa.event.listen(sa.engine.Engine, "before_cursor_execute", self._statement)
        sa.event.listen(sa.engine.Engine, "commit", self._commit)
        return self

    def __exit__(self, *exc: object) -> None:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", self._statement)
        sa.event.remove(sa.engine.Engine, "commit", self._commit)

    def snapshot(self) -> tuple[int, int, int]:
        return self.timestep, self.dbos, self.commits


def _spread(values: list[float], digits: int = 1) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
    }


async def _decide_round(
    run_ids: list[str], concurrent: bool, counter: StatementCounter
) -> tuple[float, list[tuple[int, int, int]]]:
    """Approve `run_ids` (one after another, or all at once); returns (decisions per second,
    per-approve statement counts (timestep, dbos, commits) when sequential)."""
    import timestep

    per_call: list[tuple[int, int, int]] = []
    started = time.perf_counter()
    if concurrent:
        await asyncio.gather(*(timestep.approve(run_id) for run_id in run_ids))
    else:
        for run_id in run_ids:
            before = counter.snapshot()
            await timestep.approve(run_id)
            after = counter.snapshot()
            per_call.append((after[0] - before[0], after[1] - before[1], after[2] - before[2]))
    return len(run_ids) / (time.perf_counter() - started), per_call


def decisions_cell(backend: str, url: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """Park `rounds x 2 x decisions` (+1) runs, then approve them with `timestep.approve` from
    this process (no agent code, no DBOS launched, no worker running): per round one batch one
    after another and one batch all at once, the rounds interleaving the two."""
    per_batch, rounds = args.decisions, args.decide_rounds
    total = 1 + 2 * rounds * per_batch
    log(f"{backend} decisions: parking {total} runs ...")
    park_runs(
        url, total, args.park_processes, args.park_concurrency, tmp / f"decide-{backend}.jsonl"
    )
    engine = use_database(url)
    try:
        with StatementCounter() as counter:
            # One unmeasured approve: the process's first opens DBOS's client.
            asyncio.run(_decide_round([RUN_ID_FORMAT.format(0)], False, counter))
            rates: dict[str, list[float]] = {"sequential": [], "concurrent": []}
            calls: list[tuple[int, int, int]] = []
            next_run = 1
            for round_number in range(rounds):
                for mode in ("sequential", "concurrent"):
                    batch = [RUN_ID_FORMAT.format(i) for i in range(next_run, next_run + per_batch)]
                    next_run += per_batch
                    rate, per_call = asyncio.run(
                        _decide_round(batch, mode == "concurrent", counter)
                    )
                    rates[mode].append(rate)
                    calls.extend(per_call)
                    log(f"{backend} decisions round {round_number + 1} {mode}: {rate:.0f}/s")
        left = count_runs(engine, "awaiting_approval")
        if left:
            raise RuntimeError(f"{left} runs still awaiting approval after the approvals")
    finally:
        release_database()
    return {
        "decisions": per_batch,
        "rounds": rounds,
        "sequential_per_s": _spread(rates["sequential"]),
        "concurrent_per_s": _spread(rates["concurrent"]),
        "sequential_per_s_each": [round(r, 1) for r in rates["sequential"]],
        "concurrent_per_s_each": [round(r, 1) for r in rates["concurrent"]],
        "statements_per_approve": {
            "timestep": _spread([float(c[0]) for c in calls]),
            "dbos": _spread([float(c[1]) for c in calls]),
            "total": _spread([float(c[0] + c[1]) for c in calls]),
            "commits": _spread([float(c[2]) for c in calls]),
        },
    }


def run_decisions(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="timestep-decide-") as tmp_name:
        tmp = Path(tmp_name)
        for backend in args.backends:
            if backend == "sqlite":
                report[backend] = decisions_cell(
                    backend, f"sqlite:///{tmp}/decide.sqlite", args, tmp
                )
                continue
            from tests.pgcluster import bench_postgres_server, create_database, drop_database

            with bench_postgres_server() as server:
                name = f"timestep_decide_{uuid.uuid4().hex[:8]}"
                try:
                    report[backend] = decisions_cell(
                        backend, create_database(server, name), args, tmp
                    )
                finally:
                    with contextlib.suppress(Exception):
                        drop_database(server, name)
    return report


def format_decisions(report: dict[str, Any]) -> str:
    def spread(figure: dict[str, float]) -> str:
        return f"{figure['median']:.0f} [{figure['min']:.0f}-{figure['max']:.0f}]"

    header = (
        f"{'backend':<9} {'sequential /s [min-max]':>24} {'concurrent /s [min-max]':>24} "
        f"{'statements/approve (timestep+dbos)':>35} {'commits':>8}"
    )
    lines = [header, "-" * len(header)]
    for backend, cell in report.items():
        counts = cell["statements_per_approve"]
        statements = (
            f"{spread(counts['total'])} ({counts['timestep']['median']:.0f}"
            f"+{counts['dbos']['median']:.0f})"
        )
        lines.append(
            f"{backend:<9} {spread(cell['sequential_per_s']):>24} "
            f"{spread(cell['concurrent_per_s']):>24} {statements:>35} "
            f"{counts['commits']['median']:>8.0f}"
        )
    return "\n".join(lines)


# --- output ---------------------------------------------------------------------------------------


def format_table(report: dict[str, Any]) -> str:
    header = (
        f"{'backend':<9} {'N parked':>9} {'park s':>7} {'RSS MiB':>8} {'restart s':>10} "
        f"{'finish 100 s':>13} {'approve 100 s':>14} {'RSS after MiB':>14}"
    )
    lines = [header, "-" * len(header)]
    for backend, sizes in report.items():
        for n, cell in sizes.items():
            lines.append(
                f"{backend:<9} {n:>9} {cell['park_s']:>7.1f} {cell['rss_mb']:>8.1f} "
                f"{cell['restart_s']:>10.3f} {cell['finish_100_s']:>13.3f} "
                f"{cell['approve_100_s']:>14.3f} {cell['rss_after_finish_mb']:>14.1f}"
            )
    return "\n".join(lines)


def _csv_ints(text: str) -> list[int]:
    values = [int(part) for part in text.split(",") if part.strip()]
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError("expected positive integers separated by commas")
    return values


def _csv_backends(text: str) -> list[str]:
    values = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [v for v in values if v not in BACKENDS]
    if not values or unknown:
        raise argparse.ArgumentTypeError(f"backends are {', '.join(BACKENDS)}")
    return values


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Worker RSS, restart-to-ready time and approve-and-finish time "
        "with N runs parked for approval."
    )
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    parser.add_argument("--sizes", type=_csv_ints, default=[100, 1000, 10000])
    parser.add_argument("--backends", type=_csv_backends, default=list(BACKENDS))
    parser.add_argument(
        "--restarts", type=int, default=3, help="rounds of worker restarts over the sizes"
    )
    parser.add_argument("--finish", type=int, default=100, help="runs to approve and finish")
    parser.add_argument(
        "--park-processes", type=int, default=2, help="helper processes that park runs"
    )
    parser.add_argument(
        "--park-concurrency", type=int, default=50, help="concurrent run_agent calls per helper"
    )
    parser.add_argument(
        "--decisions",
        type=int,
        default=100,
        help="parked runs per batch of the decisions-per-second measurement (0: skip it)",
    )
    parser.add_argument(
        "--decide-rounds", type=int, default=3, help="rounds of the decisions measurement"
    )
    parser.add_argument(
        "--decisions-only",
        action="store_true",
        help="measure only decisions per second (no worker restarts)",
    )
    # Internal: the helper processes that park runs.
    parser.add_argument("--park-into", help=argparse.SUPPRESS)
    parser.add_argument("--park-range", help=argparse.SUPPRESS)
    parser.add_argument("--park-executor-id", default="bench-parker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.restarts < 1 or args.finish < 1:
        parser.error("--restarts and --finish must be at least 1")
    return args


def main(argv: list[str] | None = None, out: TextIO = sys.stdout) -> int:
    args = parse_args(argv)
    if args.park_into:
        first, count = (int(part) for part in args.park_range.split(":"))
        return park_main(args.park_into, first, count, args.park_concurrency, args.park_executor_id)
    started = time.perf_counter()
    report: dict[str, Any] = {} if args.decisions_only else run_benchmark(args)
    if args.decisions:
        decided = run_decisions(args)
        report["decisions"] = decided
    log(f"done in {time.perf_counter() - started:.0f} s")
    if not args.decisions_only:
        print(format_table({k: v for k, v in report.items() if k != "decisions"}), file=out)
    if args.decisions:
        print(format_decisions(report["decisions"]), file=out)
    if args.json:
        print(json.dumps(report, separators=(",", ":")), file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
