"""`timestep state export|import`: move a parked run's RunState (Python or TypeScript)."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from .common import Output
from .render import call_line


async def state_export(args: argparse.Namespace, out: Output) -> int:
    from ..handover import export_run_state

    text = await export_run_state(args.run_id, args.format, app=args.app)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(text)
        if out.json_mode:
            out.json({"run_id": args.run_id, "format": args.format, "path": args.output})
        else:
            out.text(f"wrote {args.format} state of run {args.run_id} to {args.output}")
    else:
        out.data(text)  # the state is JSON already
    return 0


WORD = {"approve": "approved", "reject": "rejected"}


async def state_import(args: argparse.Namespace, out: Output) -> int:
    from ..errors import StateError
    from ..handover import import_run_state

    try:
        with open(args.file, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise StateError(f"cannot read the state file {args.file!r}: {exc}") from exc
    record = await import_run_state(text, app=args.app, agent_name=args.agent, run_id=args.run_id)
    from ..state import records, storage

    _, current, earlier = await asyncio.to_thread(
        records.get_with_decisions, storage.storage_engine(), record.run_id
    )
    recorded = {**earlier, **current}  # `earlier` when the decisions let the run go on at once
    calls: list[dict[str, Any]] = [
        {**p, "decision": recorded[p["call_id"]].decision if p["call_id"] in recorded else None}
        for p in record.pending_approvals
    ]
    if out.json_mode:
        out.json({**record.as_dict(), "pending_approvals": calls})
        return 0
    out.text(f"imported run {record.run_id} ({record.status})")
    decided = [p for p in calls if p["decision"] is not None]
    for pending in calls:
        arrived = "  (decided in the imported state)" if pending["decision"] else ""
        out.text(f"  {call_line(pending)}{arrived}")  # type: ignore[arg-type]
    if decided:
        out.note(
            f"{len(decided)} of {len(record.pending_approvals)} calls arrived already decided "
            "in the state file: "
            + ", ".join(f"{p['call_id']} {WORD[p['decision']]}" for p in decided)
            + (
                "; no one will be asked about them"
                if record.status == "awaiting_approval"
                else "; the run goes on without asking anyone"
            )
        )
    return 0


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    state = commands.add_parser(
        "state",
        parents=[common],
        help="export or import a parked run's state",
        description="Move a parked run's RunState out of or into the database: as the Python "
        "Agents SDK's JSON, or as @openai/agents' (TypeScript) JSON.",
    )
    state_commands = state.add_subparsers(dest="state_command", required=True, metavar="COMMAND")
    export = state_commands.add_parser(
        "export",
        parents=[common],
        help="write a parked run's RunState JSON",
        description="Write a parked run's RunState JSON (to stdout, or a file with -o): "
        "`RunState.from_json` (Python) or `RunState.fromString` (TypeScript, --format "
        "typescript) loads it. The run's context is not part of it.",
    )
    export.add_argument("run_id", metavar="RUN", help="the parked run's id")
    export.add_argument(
        "--format",
        choices=["python", "typescript"],
        default="python",
        help="python (openai-agents) or typescript (@openai/agents) RunState JSON",
    )
    export.add_argument(
        "--app", metavar="MODULE", help="module defining the agents (needed for typescript)"
    )
    export.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default: stdout)")
    export.set_defaults(handler=state_export, read_only=True)
    load = state_commands.add_parser(
        "import",
        parents=[common],
        help="create a parked run from a state file",
        description="Create a parked run from a RunState JSON file written by either SDK; its "
        "pending calls are decided like any run's (approve, reject, the inbox). Decisions "
        "already in the file are kept.",
    )
    load.add_argument("file", metavar="FILE", help="a RunState JSON file (Python or TypeScript)")
    load.add_argument(
        "--app", metavar="MODULE", required=True, help="module defining the state's agents"
    )
    load.add_argument("--agent", help="starting agent name (default: the state's)")
    load.add_argument("--run-id", help="id of the new run (default: a new one)")
    load.set_defaults(handler=state_import)
