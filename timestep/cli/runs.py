"""`timestep runs ...`: list, show, steps, tail (read only), cancel, retry, fork (and
upgrade, pin: `cli/upgrade.py`)."""

from __future__ import annotations

import argparse
from typing import Any

from . import upgrade
from .common import Output
from .render import StreamPrinter, record_detail, runs_table, steps_table

RUN_ID_HELP = "the run's id (`timestep runs list` shows them)"

STATUSES = ("running", "awaiting_approval", "completed", "failed", "cancelled")
"""`timestep.state.records.STATUSES`, spelled out so that `--help` needs no SQLAlchemy import
(a test checks that they agree)."""


async def runs_list(args: argparse.Namespace, out: Output) -> int:
    from ..config import configured_database_url
    from ..runs import list_runs
    from ..state import storage

    if configured_database_url() is None and storage.missing_sqlite_file() is not None:
        # The default database is made by the first run: nothing has run on this machine.
        if out.json_mode:
            out.json([])
        else:
            out.text("no runs yet (the first `timestep run` creates the database)")
        return 0
    found = await list_runs(status=args.status, limit=args.limit)
    if out.json_mode:
        out.json([r.as_dict() for r in found])
    elif not found:
        out.text("no runs" + (f" with status {args.status}" if args.status else ""))
    else:
        runs_table(found)
    return 0


async def runs_show(args: argparse.Namespace, out: Output) -> int:
    from ..runs import get_run

    record = await get_run(args.run_id)
    if out.json_mode:
        out.json(record.as_dict())
    else:
        record_detail(record)
    return 0


async def runs_steps(args: argparse.Namespace, out: Output) -> int:
    from ..runs import get_run, recorded_steps

    record = await get_run(args.run_id)
    steps = await recorded_steps(record.run_id, include_dbos=args.all)
    if out.json_mode:
        out.json(steps)
    elif not steps:
        out.text(f"run {record.run_id} has no recorded steps yet")
    else:
        steps_table(steps)
    return 0


async def runs_steer(args: argparse.Namespace, out: Output) -> int:
    from ..lifecycle import cancel, retry

    record = await (cancel if args.runs_command == "cancel" else retry)(args.run_id)
    if out.json_mode:
        out.json(record.as_dict())
        return 0
    done = "cancelled" if args.runs_command == "cancel" else "retrying"
    out.text(f"{done} run {record.run_id}; it is now {record.status}")
    if record.note:
        out.text(f"next: {record.note}")
    return 0


async def runs_fork(args: argparse.Namespace, out: Output) -> int:
    from ..lifecycle import fork

    record = await fork(
        args.run_id,
        turn=args.turn,
        new_run_id=args.new_run_id,
        model=args.model,
        instructions=args.instructions,
    )
    if out.json_mode:
        out.json(record.as_dict())
        return 0
    out.text(f"forked run {args.run_id} at turn {args.turn} as run {record.run_id}")
    if record.note:
        out.text(f"next: {record.note}")
    return 0


async def runs_tail(args: argparse.Namespace, out: Output) -> int:
    from ..stream import stream_events

    printer = None if out.json_mode else StreamPrinter()
    try:
        async for event in stream_events(args.run_id, offset=args.offset):
            if printer is None:
                out.json(event)
            else:
                printer.feed(event)
    finally:
        if printer is not None:
            printer.close()
    return 0


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    runs = commands.add_parser(
        "runs",
        parents=[common],
        help="inspect and steer runs",
        description="Inspect and steer runs.",
    ).add_subparsers(dest="runs_command", required=True, metavar="COMMAND")

    listing = runs.add_parser(
        "list",
        parents=[common],
        help="runs, most recently updated first",
        description="Runs, most recently updated first, with status, model, duration, usage "
        "and what each waits for.",
    )
    listing.add_argument("--status", choices=STATUSES, help="only runs with this status")
    listing.add_argument("--limit", type=int, default=50, help="at most this many runs (50)")
    listing.set_defaults(handler=runs_list, read_only=True)

    show = runs.add_parser("show", parents=[common], help="one run in detail")
    show.add_argument("run_id", metavar="RUN", help=RUN_ID_HELP)
    show.set_defaults(handler=runs_show, read_only=True)

    steps = runs.add_parser(
        "steps",
        parents=[common],
        help="a run's recorded steps across its segments",
        description="The model calls and tool calls a run recorded (DBOS steps), in order, "
        "across its segments: what a restart does not execute again.",
    )
    steps.add_argument("run_id", metavar="RUN", help=RUN_ID_HELP)
    steps.add_argument(
        "--all", action="store_true", help="also DBOS's own steps (stream writes, sleeps)"
    )
    steps.set_defaults(handler=runs_steps, read_only=True)

    for name, what in (
        ("cancel", "stop a run at its next step (a parked run at once)"),
        ("retry", "continue a failed or cancelled run from its records"),
    ):
        steer = runs.add_parser(name, parents=[common], help=what)
        steer.add_argument("run_id", metavar="RUN", help=RUN_ID_HELP)
        steer.set_defaults(handler=runs_steer)

    branch = runs.add_parser(
        "fork", parents=[common], help="a new run from a run's recorded turns before TURN"
    )
    branch.add_argument("run_id", metavar="RUN", help="the run to fork")
    branch.add_argument("--turn", type=int, required=True, help="first turn that runs live (0..)")
    branch.add_argument("--run-id", dest="new_run_id", help="id of the new run (default: new)")
    branch.add_argument("--model", help="model name for the new run from TURN on")
    branch.add_argument("--instructions", help="new instructions for the starting agent")
    branch.set_defaults(handler=runs_fork)

    tail = runs.add_parser(
        "tail",
        parents=[common],
        help="print a streamed run's events, live or recorded",
        description="Print the events of a run started with streaming (`timestep run --stream`"
        " or run_agent(..., stream=True)) as they come, until it ends or parks.",
    )
    tail.add_argument("run_id", metavar="RUN", help=RUN_ID_HELP)
    tail.add_argument("--offset", type=int, default=0, help="first event to print (0)")
    tail.set_defaults(handler=runs_tail, read_only=True)

    upgrade.register(runs, common)  # issue 23: runs upgrade, runs pin
