#!/usr/bin/env python
"""What a run stores: bytes against its turns and its stops, beside its conversation's own size;
and what pruning finished runs frees.

For each backend (SQLite, PostgreSQL), each number of turns (``--turns``, default 10,40,160) and
each way of stopping (``none``: the run goes straight through; ``every``: the tool needs
approval, so the run stops at every turn and is approved and resumed), one run of an agent whose
scripted model calls a tool returning about 2 KB per turn runs on a fresh database, in a
process of its own (this script started again with ``--one``). Then every text and binary
column of every table in the database (Timestep's and DBOS's) is summed. ``conversation`` is
the length of ``json.dumps(result.to_input_list())`` of the finished run.

Prune (``--prune N``, default 1000; 0 skips it): N finished one-turn runs are made on a fresh
database, then ``timestep.prune_runs(0)`` deletes them; the script prints its seconds and the
bytes before and after. No other work runs meanwhile.

Usage (from the repository root)::

    .venv/bin/python benchmarks/storage.py [--json] [--turns 10,40,160]
        [--backends sqlite,postgres] [--prune 1000]

Postgres: ``TIMESTEP_BENCH_PG_URL`` (a server whose user may CREATE DATABASE), else a throwaway
cluster from ``tests/pgcluster.py``. Progress goes to stderr; stdout has the tables and, with
``--json``, one JSON object as its last line. Byte counts are deterministic: one run per cell.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
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

BACKENDS = ("sqlite", "postgres")
STOPS = ("none", "every")


def stored_bytes(url: str) -> int:
    """Bytes of every text and binary column of every table of the database."""
    import sqlalchemy as sa

    from timestep.state.database import create_engine, parse_database_url

    engine = create_engine(parse_database_url(url))
    total = 0
    try:
        inspector = sa.inspect(engine)
        postgres = engine.dialect.name == "postgresql"
        schemas = ["public", "dbos"] if postgres else [None]
        with engine.connect() as connection:
            for schema in schemas:
                for table in inspector.get_table_names(schema=schema):
                    name = f'"{schema}"."{table}"' if schema else f'"{table}"'
                    for column in inspector.get_columns(table, schema=schema):
                        kind = str(column["type"]).upper()
                        if not any(k in kind for k in ("TEXT", "CHAR", "JSON", "BYTEA", "BLOB")):
                            continue
                        cell = f'"{column["name"]}"'
                        size = f"octet_length({cell}::text)" if postgres else f"length({cell})"
                        query = f"SELECT coalesce(sum({size}), 0) FROM {name}"
                        total += connection.execute(sa.text(query)).scalar_one()
    finally:
        engine.dispose()
    return int(total)


def _reader(turns: int, stops: bool) -> Any:
    from agents import Agent, function_tool

    from tests.helpers import TurnModel

    @function_tool(needs_approval=stops)
    def fetch(page: int) -> str:
        """Fetch a page of about 2 KB."""
        return f"page {page}: " + "lorem ipsum " * 170

    script = [[("fetch", {"page": k})] for k in range(turns)]
    return Agent(name="Reader", model=TurnModel(script, final="read"), tools=[fetch])


async def _one_run(url: str, turns: int, stops: bool) -> dict[str, Any]:
    import timestep

    timestep.configure(database_url=url)
    result = await timestep.run_agent(_reader(turns, stops), "read", run_id="r", max_turns=999)
    parked = 0
    while result.interruptions:
        parked += 1
        await timestep.approve("r")
        result = await timestep.resume("r")
    return {"conversation": len(json.dumps(result.to_input_list())), "stops": parked}


async def _prune_runs(url: str, runs: int) -> dict[str, Any]:
    import timestep

    timestep.configure(database_url=url)
    agent = _reader(1, False)
    for start in range(0, runs, 50):
        await asyncio.gather(
            *(
                timestep.run_agent(agent, "read", run_id=f"p-{i}", max_turns=9)
                for i in range(start, min(runs, start + 50))
            )
        )
    before = stored_bytes(url)
    began = time.perf_counter()
    report = await timestep.prune_runs(0)
    seconds = time.perf_counter() - began
    return {
        "runs": runs,
        "deleted": len(report.deleted),
        "seconds": round(seconds, 2),
        "bytes_before": before,
        "bytes_after": stored_bytes(url),
    }


def _child(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=3600,
    )
    if done.returncode != 0:
        raise SystemExit(f"benchmark child failed ({' '.join(args)}):\n{done.stderr[-3000:]}")
    found: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def _bench_backend(backend: str, make_url: Any, turns: list[int], prune: int) -> dict[str, Any]:
    cells = []
    for n in turns:
        row: dict[str, Any] = {"turns": n}
        for stops in STOPS:
            url = make_url(f"{n}_{stops}")
            print(f"{backend}: {n} turns, stops {stops}", file=sys.stderr, flush=True)
            ran = _child("--one", url, str(n), stops)
            row["conversation"] = ran["conversation"]
            row[stops] = stored_bytes(url)
        row["none_x_conversation"] = round(row["none"] / row["conversation"], 2)
        row["every_x_conversation"] = round(row["every"] / row["conversation"], 2)
        row["every_x_none"] = round(row["every"] / row["none"], 2)
        cells.append(row)
    report: dict[str, Any] = {"runs": cells}
    if prune:
        print(f"{backend}: prune {prune} runs", file=sys.stderr, flush=True)
        report["prune"] = _child("--prune-one", make_url("prune"), str(prune))
    return report


def _table(backend: str, report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{backend}: bytes stored for one run")
    for column in (
        "turns",
        "conversation",
        "no stops",
        "x conv.",
        "stop every turn",
        "x conv.",
        "stops / no stops",
    ):
        table.add_column(column, justify="right")
    for row in report["runs"]:
        table.add_row(
            str(row["turns"]),
            f"{row['conversation']:,}",
            f"{row['none']:,}",
            f"{row['none_x_conversation']:.2f}",
            f"{row['every']:,}",
            f"{row['every_x_conversation']:.2f}",
            f"{row['every_x_none']:.2f}",
        )
    console = Console(width=120)
    console.print(table)
    if "prune" in report:
        p = report["prune"]
        console.print(
            f"prune: {p['deleted']} of {p['runs']} finished runs in {p['seconds']} s; bytes "
            f"{p['bytes_before']:,} -> {p['bytes_after']:,}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--turns", default="10,40,160")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--prune", type=int, default=1000)
    parser.add_argument("--one", nargs=3, metavar=("URL", "TURNS", "STOPS"), help=argparse.SUPPRESS)
    parser.add_argument("--prune-one", nargs=2, metavar=("URL", "RUNS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        url, n, stops = args.one
        print(json.dumps(asyncio.run(_one_run(url, int(n), stops == "every"))))
        return
    if args.prune_one:
        url, runs = args.prune_one
        print(json.dumps(asyncio.run(_prune_runs(url, int(runs)))))
        return
    turns = [int(t) for t in args.turns.split(",")]
    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backends.split(","):
            if backend == "sqlite":
                report[backend] = _bench_backend(
                    backend, lambda name: f"sqlite:///{tmp}/{name}.sqlite", turns, args.prune
                )
                continue
            from tests.pgcluster import bench_postgres_server, create_database, drop_database

            with bench_postgres_server() as server:
                names: list[str] = []

                def make_url(name: str, server: str = server, names: list[str] = names) -> str:
                    names.append(f"timestep_storage_{name}_{uuid.uuid4().hex[:8]}")
                    return create_database(server, names[-1])

                try:
                    report[backend] = _bench_backend(backend, make_url, turns, args.prune)
                finally:
                    for name in names:
                        with contextlib.suppress(Exception):
                            drop_database(server, name)
    for backend, found in report.items():
        _table(backend, found)
    if args.json:
        print(json.dumps(report))


if __name__ == "__main__":
    main()
