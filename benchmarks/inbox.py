#!/usr/bin/env python
"""The approval inbox over HTTP beside the library: decisions per second, and the time from an
approve until the run has completed in a running worker.

On one fresh database (SQLite in a temporary directory, or PostgreSQL with ``--backend
postgres``, or ``--db URL``), in one run:

1. a helper process parks ``2 * --decisions + 2 * --latency`` runs of ``tests/apps/mail_app.py``'s
   ``mailer`` (its ``send_email`` call needs approval) and exits;
2. ``timestep serve`` starts on a free loopback port (uvicorn, a real TCP connection);
3. decisions per second: ``--decisions`` runs approved one after the other with
   ``timestep.approve`` from this process (no agent code, no DBOS launch), and as many through
   ``POST /api/runs/{id}/approve`` with one keep-alive ``httpx`` client; each figure is the
   count divided by the wall time of the whole loop. No worker runs yet, so decided runs only
   queue;
4. a worker (``python -m workflows --app tests.apps.mail_app``) starts and finishes the queued
   runs; then, ``--latency`` times each, alternating library and HTTP, one run is approved and
   the database polled (every 5 ms, so figures are at that granularity) until it is
   ``completed``: median and max milliseconds from the approve call until then.

Usage (from the repository root)::

    .venv/bin/python benchmarks/inbox.py [--json] [--decisions 50] [--latency 10]
        [--backend sqlite|postgres] [--db URL]

Progress goes to stderr; stdout has the table and, with ``--json``, one JSON object as its last
line. No thresholds: this script only reports.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

APP_MODULE = "tests.apps.mail_app"
TIMEOUT_S = 300.0


def progress(message: str) -> None:
    print(f"[inbox] {message}", file=sys.stderr, flush=True)


def park(database_url: str, count: int) -> None:
    """(In the helper process.) Park `count` runs bench-000000.. of the mailer."""
    import timestep
    from tests.apps.mail_app import mailer

    async def main() -> None:
        timestep.configure(database_url=database_url)
        gate = asyncio.Semaphore(8)

        async def one(index: int) -> None:
            async with gate:
                result = await timestep.run_agent(mailer, "mail bob", run_id=f"bench-{index:06d}")
                assert result.interruptions, f"bench-{index:06d} did not park"

        await asyncio.gather(*(one(i) for i in range(count)))

    asyncio.run(main())


async def wait_serving(url: str, server: subprocess.Popen[bytes]) -> None:
    import httpx

    deadline = time.monotonic() + TIMEOUT_S
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise SystemExit("timestep serve exited before it answered")
            try:
                if (await http.get(url + "openapi.json")).status_code == 200:
                    return
            except httpx.TransportError:
                await asyncio.sleep(0.05)
    raise SystemExit("timestep serve did not answer")


async def wait_completed(run_ids: list[str], poll_s: float = 0.05) -> None:
    import timestep

    deadline = time.monotonic() + TIMEOUT_S
    for run_id in run_ids:
        while (await timestep.get_run(run_id)).status != "completed":
            if time.monotonic() > deadline:
                raise SystemExit(f"{run_id} did not complete within {TIMEOUT_S:.0f}s")
            await asyncio.sleep(poll_s)


async def measure(
    args: argparse.Namespace, database_url: str, env: dict[str, str]
) -> dict[str, Any]:
    import httpx

    import timestep

    timestep.configure(database_url=database_url)
    n, k = args.decisions, args.latency
    ids = [f"bench-{i:06d}" for i in range(2 * n + 2 * k)]
    library_ids, http_ids = ids[:n], ids[n : 2 * n]
    latency_ids = ids[2 * n :]

    from tests.pgcluster import free_port

    token = secrets.token_urlsafe(24)
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    server = subprocess.Popen(
        [sys.executable, "-m", "timestep.cli", "serve", "--port", str(port), "--token", token],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    worker: subprocess.Popen[bytes] | None = None
    try:
        await wait_serving(url, server)
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as http:
            progress(f"{n} decisions through the library")
            started = time.perf_counter()
            for run_id in library_ids:
                await timestep.approve(run_id)
            library_s = time.perf_counter() - started

            progress(f"{n} decisions over HTTP")
            started = time.perf_counter()
            for run_id in http_ids:
                response = await http.post(f"api/runs/{run_id}/approve")
                response.raise_for_status()
            http_s = time.perf_counter() - started

            progress("worker: finishing the queued runs")
            worker = subprocess.Popen(
                [sys.executable, "-m", "workflows", "--app", APP_MODULE],
                cwd=REPO_ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            await wait_completed(library_ids + http_ids)

            progress(f"approve-to-completed latency, {k} runs each way")
            latency: dict[str, list[float]] = {"library": [], "http": []}
            for index, run_id in enumerate(latency_ids):
                way = "library" if index % 2 == 0 else "http"
                started = time.perf_counter()
                if way == "library":
                    await timestep.approve(run_id)
                else:
                    (await http.post(f"api/runs/{run_id}/approve")).raise_for_status()
                await wait_completed([run_id], poll_s=0.005)
                latency[way].append((time.perf_counter() - started) * 1000)
    finally:
        for process in (worker, server):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
    return {
        "backend": database_url.split(":", 1)[0],
        "decisions": n,
        "library_decisions_per_s": round(n / library_s, 1),
        "http_decisions_per_s": round(n / http_s, 1),
        "latency_runs_each": k,
        "library_approve_to_completed_ms_median": round(statistics.median(latency["library"]), 1),
        "library_approve_to_completed_ms_max": round(max(latency["library"]), 1),
        "http_approve_to_completed_ms_median": round(statistics.median(latency["http"]), 1),
        "http_approve_to_completed_ms_max": round(max(latency["http"]), 1),
    }


def run_on(args: argparse.Namespace, database_url: str) -> dict[str, Any]:
    env = {
        **os.environ,
        "TIMESTEP_DB_URL": database_url,
        "PYTHONPATH": str(REPO_ROOT),
        "TIMESTEP_TEST_LOG": os.devnull,
    }
    count = 2 * args.decisions + 2 * args.latency
    progress(f"parking {count} runs on {database_url.split(':', 1)[0]}")
    subprocess.run(
        [sys.executable, __file__, "--park", database_url, str(count)],
        cwd=REPO_ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return asyncio.run(measure(args, database_url, env))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="also print one JSON line, last")
    parser.add_argument("--decisions", type=int, default=50, help="runs decided each way")
    parser.add_argument("--latency", type=int, default=10, help="latency samples each way")
    parser.add_argument(
        "--backend",
        choices=("sqlite", "postgres"),
        default="sqlite",
        help="a fresh SQLite file, or a fresh database on TIMESTEP_BENCH_PG_URL (else a "
        "throwaway cluster from tests/pgcluster.py), dropped afterwards",
    )
    parser.add_argument("--db", help="an existing database URL instead of --backend")
    parser.add_argument("--park", nargs=2, metavar=("URL", "COUNT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.park:
        park(args.park[0], int(args.park[1]))
        return
    with tempfile.TemporaryDirectory(prefix="timestep-inbox-") as tmp:
        if args.db:
            report = run_on(args, args.db)
        elif args.backend == "sqlite":
            report = run_on(args, f"sqlite:///{tmp}/timestep.sqlite")
        else:
            from tests.pgcluster import bench_postgres_server, create_database, drop_database

            with bench_postgres_server() as server:
                name = f"timestep_bench_inbox_{uuid.uuid4().hex[:8]}"
                try:
                    report = run_on(args, create_database(server, name))
                finally:
                    with contextlib.suppress(Exception):
                        drop_database(server, name)
    print(f"{'':24} {'library':>10} {'HTTP':>10}")
    print(
        f"{'decisions/s':24} {report['library_decisions_per_s']:>10} "
        f"{report['http_decisions_per_s']:>10}"
    )
    print(
        f"{'approve->completed ms':24} {report['library_approve_to_completed_ms_median']:>10} "
        f"{report['http_approve_to_completed_ms_median']:>10}   (median; max "
        f"{report['library_approve_to_completed_ms_max']} / "
        f"{report['http_approve_to_completed_ms_max']})"
    )
    if args.json:
        print(json.dumps(report))


if __name__ == "__main__":
    main()
