"""`timestep runs ...`: list, show, steps, tail (read only), cancel, retry, fork (and
upgrade, pin: `cli/upgrade.py`)."""

from __future__ import annotations

import argparse
from typing import Any

from . import upgrade
from .common import Output, duration_arg
from .render import StreamPrinter, duration, record_detail, runs_table, steps_table

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
    from ..errors import LifecycleError
    from ..runs import get_run

    record = await get_run(args.run_id)
    if not record.streamed:
        raise LifecycleError(
            f"run {record.run_id} was not started with streaming (`timestep run --stream`, "
            f"run_agent(..., stream=True)), so it has no events to tail; it is "
            f"{record.status}: see `timestep runs show {record.run_id}` and `timestep runs "
            f"steps {record.run_id}`"
        )
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


async def runs_prune(args: argparse.Namespace, out: Output) -> int:
    from ..retention import prune_runs

    report = await prune_runs(args.older_than, statuses=args.status, dry_run=args.dry_run)
    if out.json_mode:
        out.json({"dry_run": report.dry_run, "cutoff": report.cutoff, "runs": report.deleted})
        return 0
    verb = "would delete" if report.dry_run else "deleted"
    ago = duration(args.older_than)
    out.text(f"{verb} {len(report.deleted)} run(s) last updated more than {ago} ago")
    for run_id in report.deleted:
        out.text(f"  {run_id}")
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

    show = runs.add_parser(
        "show",
        parents=[common],
        help="one run in detail",
        description="One run in detail: status, agent, model, segments, times, token usage by "
        "model, its pending calls with their decisions, its output or error, and what happens "
        "next (who runs it, or what to start).",
    )
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

    for name, what, detail in (
        (
            "cancel",
            "stop a run at its next step (a parked run at once)",
            "Cancel a run: a running one stops at its next step (a tool call in flight is "
            "finished and recorded first), a parked one at once. `timestep runs retry` "
            "continues it later from its records.",
        ),
        (
            "retry",
            "continue a failed or cancelled run from its records",
            "Continue a failed or cancelled run from its records: recorded model and tool "
            "calls are not made again; the call that failed is tried again. A process with the "
            "run's agent (a worker) runs it.",
        ),
    ):
        steer = runs.add_parser(name, parents=[common], help=what, description=detail)
        steer.add_argument("run_id", metavar="RUN", help=RUN_ID_HELP)
        steer.set_defaults(handler=runs_steer)

    branch = runs.add_parser(
        "fork",
        parents=[common],
        help="a new run from a run's recorded turns before TURN",
        description="Start a new run that reuses the recorded model and tool calls of a run's "
        "turns before TURN and goes live from TURN (optionally with another model or new "
        "instructions). The original run is left as it is.",
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

    prune = runs.add_parser(
        "prune",
        parents=[common],
        help="delete finished runs older than a duration",
        description="Delete finished runs (completed, failed, cancelled) last updated longer "
        "ago than --older-than, with their decisions, states and DBOS workflows, steps and "
        "streams. Parked and running runs are never deleted.",
    )
    prune.add_argument(
        "--older-than",
        type=duration_arg,
        required=True,
        help="how long ago the run was last updated: seconds, or 90m, 12h, 30d",
    )
    prune.add_argument(
        "--status",
        action="append",
        choices=STATUSES[2:],
        help="only runs with this status (repeatable; default: every finished status)",
    )
    prune.add_argument("--dry-run", action="store_true", help="list what would be deleted")
    prune.set_defaults(handler=runs_prune)
    upgrade.register(runs, common)  # issue 23: runs upgrade, runs pin
