"""`timestep import-pglite`: timestep 2026.0.x's PGLite store, imported as parked runs."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from .common import Output


async def import_pglite(args: argparse.Namespace, out: Output) -> int:
    from ..pglite import import_pglite as run_import

    report = await run_import(args.dir, app=args.app, agent_name=args.agent, dry_run=args.dry_run)
    if out.json_mode:
        out.json(dataclasses.asdict(report))
        return 0
    verb = "would import" if args.dry_run else "imported"
    out.text(f"{verb} {len(report.imported)} run(s) from {report.directory}")
    for database in report.databases:
        read = f"read with @electric-sql/pglite {database.pglite}" if database.pglite else "unread"
        out.text(f"  {database.path}: PostgreSQL {database.postgres} ({read})")
    for run_id in report.imported:
        out.text(f"  {run_id}")
    for skipped in report.skipped:
        out.text(f"  not imported {skipped.run_id} ({skipped.database}): {skipped.reason}")
    if report.cleared:
        out.text(f"  {report.cleared} cleared state(s) left out")
    return 0


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    legacy = commands.add_parser(
        "import-pglite",
        parents=[common],
        help="import timestep 2026.0.x's PGLite states as parked runs",
        description="Import the RunStates that timestep 2026.0.x saved in its PGLite store "
        "(one database per session) as parked runs of this Timestep's database; cleared states "
        "are left out. --dry-run lists what would be imported.",
    )
    legacy.add_argument("dir", nargs="?", help="the store (default: the original's location)")
    legacy.add_argument(
        "--app", metavar="MODULE", required=True, help="the module that defines the agents"
    )
    legacy.add_argument("--agent", help="starting agent name (default: the app's only one)")
    legacy.add_argument("--dry-run", action="store_true", help="list what would be imported")
    legacy.set_defaults(handler=import_pglite)
