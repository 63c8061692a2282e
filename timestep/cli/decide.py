"""`timestep approve`, `timestep reject` and `timestep resume`."""

from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING, Any

from .common import EXIT_AWAITING_APPROVAL, EXIT_OK, Output
from .render import call_line

if TYPE_CHECKING:
    from ..state.records import DecisionKind

RUN_ID_HELP = "the parked run's id (`timestep runs list --status awaiting_approval`)"
CALL_ID_HELP = "one tool call's id (default: every pending call of the run)"


async def decide(args: argparse.Namespace, out: Output) -> int:
    from .. import approvals

    kind: DecisionKind = "approve" if args.command == "approve" else "reject"
    went_on = await approvals.decide(
        args.run_id,
        args.call_id,
        kind,
        always=bool(getattr(args, "always", False)),
        message=getattr(args, "message", None),
    )
    if out.json_mode:
        from ..runs import get_run

        out.json((await get_run(args.run_id)).as_dict())
        return EXIT_OK
    what = "approved" if kind == "approve" else "rejected"
    target = args.call_id or "all pending calls"
    if not went_on:
        out.text(f"{what} {target} of run {args.run_id}; run is still awaiting_approval")
        return EXIT_OK
    # The decision was the last (or repeats one that let the run go on): read where it is now
    # (its record alone: `get_run` would also ask DBOS who runs it).
    from ..state import records, storage

    record = await asyncio.to_thread(records.get, storage.storage_engine(), args.run_id)
    out.text(f"{what} {target} of run {args.run_id}; run is now {record.status}")
    if record.status == "running":
        # The module its agent came from, when the process that started the run knew it.
        module = record.app_module or f"<the module that defines {record.agent_name!r}>"
        out.note(
            f"a worker with agent {record.agent_name!r} continues it (timestep worker --app "
            f"{module}), or run it here: timestep resume {args.run_id} --app {module}"
        )
    return EXIT_OK


async def resume_run(args: argparse.Namespace, out: Output) -> int:
    from .run import check_module, print_outcome

    for module in args.app:
        check_module(module)  # a typo is said before the heavy imports below
    from .. import config
    from .._engine import registry
    from ..approvals import resume
    from ..runs import get_run

    for module in args.app:
        registry.register_module(module)
    # This process takes the decided run's continuation off its agent's queue and runs it.
    config.configure(take_queued_work=True)
    result = await resume(args.run_id)
    record = await get_run(args.run_id)
    return print_outcome(
        out, record, result.final_output, bool(result.interruptions), list(args.app)
    )


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    approve = commands.add_parser(
        "approve",
        parents=[common],
        help="approve pending tool calls of a parked run",
        description="Record approval of pending tool calls. Once every pending call is "
        "decided, the run's next segment is queued for a process with its agent.",
    )
    approve.add_argument("run_id", metavar="RUN", help=RUN_ID_HELP)
    approve.add_argument("call_id", metavar="CALL", nargs="?", help=CALL_ID_HELP)
    approve.add_argument(
        "--always", action="store_true", help="approve this tool for the rest of the run"
    )
    approve.set_defaults(handler=decide)

    reject = commands.add_parser(
        "reject",
        parents=[common],
        help="reject pending tool calls of a parked run",
        description="Record rejection of pending tool calls: the tool does not run and the "
        "model is told so.",
    )
    reject.add_argument("run_id", metavar="RUN", help=RUN_ID_HELP)
    reject.add_argument("call_id", metavar="CALL", nargs="?", help=CALL_ID_HELP)
    reject.add_argument("--message", help="what the model is told about the rejection")
    reject.set_defaults(handler=decide)

    resume = commands.add_parser(
        "resume",
        parents=[common],
        help="run a decided run's continuation here and print it",
        description="Run the continuation of a run whose pending calls are all decided in "
        "this process (like a worker for its agent, until the run ends or parks again) and "
        f"print its output. Exits {EXIT_AWAITING_APPROVAL} if it parks again.",
    )
    resume.add_argument("run_id", metavar="RUN", help="the decided run's id")
    resume.add_argument(
        "--app",
        metavar="MODULE",
        action="append",
        required=True,
        help="module defining the run's agents (repeatable), e.g. timestep.demo",
    )
    resume.set_defaults(handler=resume_run)


__all__ = ["call_line", "register"]
