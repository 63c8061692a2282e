"""`timestep` subcommands.

Commands that only inspect or decide (`runs`, `approve`, `reject`, `state export`) touch the
database alone: they need no agent code and never launch DBOS, so they do not take part in
recovery. `run` and `state import` load the agents they name.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

from .. import config
from ..errors import TimestepError
from ..state.records import STATUSES, RunRecord


def _when(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def _usage_line(usage: dict[str, Any]) -> str:
    if not usage:
        return "-"
    return (
        f"{usage.get('requests', 0)} requests, {usage.get('input_tokens', 0)} in / "
        f"{usage.get('output_tokens', 0)} out tokens"
    )


def _print_pending(record: RunRecord) -> None:
    for pending in record.pending_approvals:
        decision = pending.get("decision")
        state = {None: "pending ", "approve": "approved", "reject": "rejected"}[decision]
        print(
            f"  {state} {pending['call_id']}  {pending['tool_name']}({pending['arguments']})"
            f"  agent {pending['agent']}"
        )


def _print_record(record: RunRecord) -> None:
    print(f"run        {record.run_id}")
    print(f"status     {record.status}")
    print(f"agent      {record.agent_name}")
    print(f"segments   {record.segment}")
    print(f"created    {_when(record.created_at)}")
    print(f"updated    {_when(record.updated_at)}")
    print(f"usage      {_usage_line(record.usage)}")
    for model, used in record.usage_by_model.items():
        print(f"  {model}: {_usage_line(used.as_dict())}")
    if record.final_output is not None:
        print(f"output     {json.dumps(record.final_output, ensure_ascii=False)}")
    if record.error:
        print(f"error      {record.error}")
    if record.owner is not None:
        where = f" (pid {record.owner.pid} on {record.owner.host})" if record.owner.pid else ""
        state = "alive" if record.owner.alive else "DEAD"
        print(f"owner      {record.owner.executor_id}{where}: {state}, {record.owner.reason}")
    if record.note:
        print(f"next       {record.note}")
    _print_pending(record)


async def _runs_list(args: argparse.Namespace) -> int:
    from ..runs import list_runs

    found = await list_runs(status=args.status, limit=args.limit)
    if args.json:
        print(json.dumps([r.as_dict() for r in found], ensure_ascii=False))
        return 0
    if not found:
        print("no runs" + (f" with status {args.status}" if args.status else ""))
        return 0
    for record in found:
        print(
            f"{record.run_id}  {record.status:<17}  {record.agent_name}  "
            f"{_when(record.updated_at)}  {_usage_line(record.usage)}"
        )
        if record.note:
            print(f"  next     {record.note}")
        _print_pending(record)
    return 0


async def _runs_show(args: argparse.Namespace) -> int:
    from ..runs import get_run

    record = await get_run(args.run_id)
    if args.json:
        print(json.dumps(record.as_dict(), ensure_ascii=False))
    else:
        _print_record(record)
    return 0


async def _runs_steer(args: argparse.Namespace) -> int:
    from ..lifecycle import cancel, retry

    record = await (cancel if args.runs_command == "cancel" else retry)(args.run_id)
    if args.json:
        print(json.dumps(record.as_dict(), ensure_ascii=False))
        return 0
    done = "cancelled" if args.runs_command == "cancel" else "retrying"
    print(f"{done} run {record.run_id}; it is now {record.status}")
    if record.note:
        print(f"next: {record.note}")
    return 0


async def _runs_fork(args: argparse.Namespace) -> int:
    from ..lifecycle import fork

    record = await fork(
        args.run_id,
        turn=args.turn,
        new_run_id=args.new_run_id,
        model=args.model,
        instructions=args.instructions,
    )
    if args.json:
        print(json.dumps(record.as_dict(), ensure_ascii=False))
        return 0
    print(f"forked run {args.run_id} at turn {args.turn} as run {record.run_id}")
    if record.note:
        print(f"next: {record.note}")
    return 0


async def _runs_tail(args: argparse.Namespace) -> int:
    from ..stream import stream_events

    async for event in stream_events(args.run_id, offset=args.offset):
        if args.json:
            print(json.dumps(event, ensure_ascii=False), flush=True)
            continue
        kind = event["type"]
        data = event.get("data") or {}
        if kind == "raw_response_event" and data.get("type") == "response.output_text.delta":
            print(data.get("delta", ""), end="", flush=True)
        elif kind == "run_item_stream_event":
            item = event["item"]
            raw = item.get("raw_item") or {}
            detail = raw.get("name") or item.get("output") or ""
            print(f"\n[{event['name']}] {item['agent']}: {detail}", flush=True)
        elif kind == "agent_updated_stream_event":
            print(f"\n[agent] {event['agent']}", flush=True)
        elif kind == "timestep.partial_output_discarded":
            print("\n[discarded: the model call above was interrupted and restarted]", flush=True)
        elif kind == "timestep.run_ended":
            print(f"\n[run {event['status']}]", flush=True)
    return 0


async def _decide(args: argparse.Namespace) -> int:
    from ..approvals import approve, reject
    from ..runs import get_run

    if args.command == "approve":
        await approve(args.run_id, args.call_id, always=args.always)
    else:
        await reject(args.run_id, args.call_id, message=args.message)
    record = await get_run(args.run_id)
    what = "approved" if args.command == "approve" else "rejected"
    target = args.call_id or "all pending calls"
    print(f"{what} {target} of run {args.run_id}; run is now {record.status}")
    return 0


async def _run(args: argparse.Namespace) -> int:
    from .._engine.registry import resolve_agent_reference
    from ..run import run_agent
    from ..runs import get_run

    # This command exits when its run ends: it must not take other runs off the queues.
    config.configure(take_queued_work=False)
    agent = resolve_agent_reference(args.agent)
    if args.model:
        agent = agent.clone(model=args.model)
    result = await run_agent(agent, args.input, run_id=args.run_id)
    run_id = getattr(result, "run_id", "")
    if result.interruptions:
        record = await get_run(run_id)
        print(f"run {run_id} awaits approval:")
        _print_pending(record)
        print(f"decide with: timestep approve {run_id}  (or: timestep reject {run_id})")
        return 2
    output = result.final_output
    print(output if isinstance(output, str) else json.dumps(output, default=str))
    print(f"(run {run_id})", file=sys.stderr)
    return 0


async def _state_export(args: argparse.Namespace) -> int:
    from ..state.handover import export_run_state

    text = await export_run_state(args.run_id, args.format, app=args.app)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(text)
        print(f"wrote {args.format} state of run {args.run_id} to {args.output}")
    else:
        print(text)
    return 0


async def _state_import(args: argparse.Namespace) -> int:
    from ..errors import StateError
    from ..state.handover import import_run_state

    try:
        with open(args.file, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise StateError(f"cannot read the state file {args.file!r}: {exc}") from exc
    record = await import_run_state(text, app=args.app, agent_name=args.agent, run_id=args.run_id)
    print(f"imported run {record.run_id} ({record.status})")
    _print_pending(record)
    return 0


async def _import_pglite(args: argparse.Namespace) -> int:
    # issue 15: timestep 2026.0.x's PGLite store -> parked runs (logic in state/pglite.py).
    from ..state.pglite import import_pglite

    report = await import_pglite(
        args.dir, app=args.app, agent_name=args.agent, dry_run=args.dry_run
    )
    if args.json:
        print(json.dumps(dataclasses.asdict(report), indent=2))
        return 0
    verb = "would import" if args.dry_run else "imported"
    print(f"{verb} {len(report.imported)} run(s) from {report.directory}")
    for run_id in report.imported:
        print(f"  {run_id}")
    for skipped in report.skipped:
        print(f"  not imported {skipped.run_id} ({skipped.database}): {skipped.reason}")
    if report.cleared:
        print(f"  {report.cleared} cleared state(s) left out")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="timestep", description=__doc__)
    parser.add_argument(
        "--db", metavar="URL", help=f"database URL (default: ${config.DB_URL_ENV} or SQLite)"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run an agent durably and print its output")
    run.add_argument("agent", metavar="MODULE:AGENT")
    run.add_argument("input")
    run.add_argument("--run-id", help="run id; reuse it to finish a run a crash interrupted")
    run.add_argument("--model", help="model name, e.g. gpt-4.1 or ollama/llama3.2")
    run.set_defaults(handler=_run)

    runs = commands.add_parser("runs", help="inspect runs").add_subparsers(
        dest="runs_command", required=True
    )
    listing = runs.add_parser("list", help="most recent runs first")
    listing.add_argument("--status", choices=STATUSES)
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=_runs_list)
    show = runs.add_parser("show", help="one run in detail")
    show.add_argument("run_id")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=_runs_show)
    for name, what in (
        ("cancel", "stop a run at its next step"),
        ("retry", "continue a failed or cancelled run"),
    ):
        steer = runs.add_parser(name, help=what)
        steer.add_argument("run_id")
        steer.add_argument("--json", action="store_true")
        steer.set_defaults(handler=_runs_steer)

    branch = runs.add_parser("fork", help="a new run from a run's recorded turns before TURN")
    branch.add_argument("run_id")
    branch.add_argument("--turn", type=int, required=True, help="first turn that runs live (0..)")
    branch.add_argument("--run-id", dest="new_run_id", help="id of the new run (default: new)")
    branch.add_argument("--model", help="model name for the new run from TURN on")
    branch.add_argument("--instructions", help="new instructions for the starting agent")
    branch.add_argument("--json", action="store_true")
    branch.set_defaults(handler=_runs_fork)
    tail = runs.add_parser("tail", help="print a streamed run's events, live or recorded")
    tail.add_argument("run_id")
    tail.add_argument("--offset", type=int, default=0, help="first event to print")
    tail.add_argument("--json", action="store_true", help="one JSON event per line")
    tail.set_defaults(handler=_runs_tail)

    approve = commands.add_parser("approve", help="approve pending tool calls of a run")
    approve.add_argument("run_id")
    approve.add_argument("call_id", nargs="?", help="one call (default: every pending call)")
    approve.add_argument("--always", action="store_true", help="approve the tool for the run")
    approve.set_defaults(handler=_decide)
    reject = commands.add_parser("reject", help="reject pending tool calls of a run")
    reject.add_argument("run_id")
    reject.add_argument("call_id", nargs="?", help="one call (default: every pending call)")
    reject.add_argument("--message", help="what the model is told about the rejection")
    reject.set_defaults(handler=_decide)

    state = commands.add_parser("state", help="export or import a parked run's state")
    state_commands = state.add_subparsers(dest="state_command", required=True)
    export = state_commands.add_parser("export", help="write a run's RunState JSON")
    export.add_argument("run_id")
    export.add_argument("--format", choices=["python", "typescript"], default="python")
    export.add_argument("--app", metavar="MODULE", help="module defining the agents (typescript)")
    export.add_argument("-o", "--output", metavar="FILE")
    export.set_defaults(handler=_state_export)
    load = state_commands.add_parser("import", help="create a parked run from a state file")
    load.add_argument("file")
    load.add_argument("--app", metavar="MODULE", required=True)
    load.add_argument("--agent", help="starting agent name (default: the state's)")
    load.add_argument("--run-id")
    load.set_defaults(handler=_state_import)

    legacy = commands.add_parser(
        "import-pglite", help="import timestep 2026.0.x's PGLite states as parked runs"
    )
    legacy.add_argument("dir", nargs="?", help="the store (default: the original's location)")
    legacy.add_argument("--app", metavar="MODULE", required=True)
    legacy.add_argument("--agent", help="starting agent name (default: the app's only one)")
    legacy.add_argument("--dry-run", action="store_true", help="list what would be imported")
    legacy.add_argument("--json", action="store_true")
    legacy.set_defaults(handler=_import_pglite)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.db:
        config.configure(database_url=args.db)
    try:
        code: int = asyncio.run(args.handler(args))
    except TimestepError as exc:
        print(f"timestep: error: {exc}", file=sys.stderr)
        return 1
    return code
