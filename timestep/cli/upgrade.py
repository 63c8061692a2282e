"""`timestep runs upgrade` and `timestep runs pin`: rolling out new agent code to parked runs."""

from __future__ import annotations

import argparse
from typing import Any

from .common import Output


async def runs_upgrade(args: argparse.Namespace, out: Output) -> int:
    from .. import _engine as engine
    from ..errors import InvalidArgumentError
    from ..state import records, storage
    from ..upgrade import upgrade_runs

    if bool(args.run_ids) == bool(args.agent):
        raise InvalidArgumentError("name the runs to upgrade (RUN ...) or --agent NAME, not both")
    for module in args.app:
        engine.register_module(module)
    name = args.agent
    if name is None:
        first = records.get(storage.storage_engine(), args.run_ids[0])
        name = first.agent_name
    agent = engine.get_agent(name)
    if agent is None:
        raise InvalidArgumentError(
            f"no module of --app {' '.join(args.app)} defines agent {name!r}: name the module "
            "with the new code of the runs' agent"
        )
    results = await upgrade_runs(agent, args.run_ids or None, dry_run=args.dry_run)
    if out.json_mode:
        out.json([r.as_dict() for r in results])
    elif not results:
        out.text(f"no unfinished runs of agent {name!r}")
    else:
        for result in results:
            out.text(f"{result.run_id} ({result.status}): {result.outcome}")
    incompatible = [r for r in results if not r.compatible]
    return 1 if incompatible and not args.dry_run else 0


async def runs_pin(args: argparse.Namespace, out: Output) -> int:
    from ..upgrade import pin_run

    record = await pin_run(args.run_id, pinned=not args.unpin)
    if out.json_mode:
        out.json(record.as_dict())
    else:
        kept = "pinned to" if record.pinned else "free to move from"
        out.text(f"run {record.run_id} is {kept} version {record.version}")
    return 0


def register(runs: Any, common: argparse.ArgumentParser) -> None:
    """Add `upgrade` and `pin` to the `timestep runs` subcommands `runs`."""
    upgrade = runs.add_parser(
        "upgrade",
        parents=[common],
        help="move unfinished runs to the agent version in MODULE, when compatible",
        description="Check each run against the agent graph that MODULE defines (the new "
        "code) and move every compatible, unpinned run to it: its queued continuation goes to "
        "the new version's queue. Prints, per run, whether it is compatible and why not. Exit "
        "code 1 when a run is incompatible (0 with --dry-run).",
    )
    upgrade.add_argument("run_ids", metavar="RUN", nargs="*", help="runs to upgrade")
    upgrade.add_argument("--agent", metavar="NAME", help="every unfinished run of this agent")
    upgrade.add_argument(
        "--app",
        metavar="MODULE",
        action="append",
        required=True,
        help="module with the new code (repeatable)",
    )
    upgrade.add_argument("--dry-run", action="store_true", help="report only; change nothing")
    upgrade.set_defaults(handler=runs_upgrade)

    pin = runs.add_parser(
        "pin",
        parents=[common],
        help="keep a run on its agent version (never moved to new code)",
        description="Keep a run on the agent version it runs on: `runs upgrade`, `resume` and "
        "`run_agent` in a process with newer code never move it (only a process with its "
        "version continues it). --unpin lets it move again.",
    )
    pin.add_argument("run_id", metavar="RUN", help="the run's id")
    pin.add_argument("--unpin", action="store_true", help="let the run move again")
    pin.set_defaults(handler=runs_pin)
