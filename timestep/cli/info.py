"""`timestep db-url`: the database URL in force (for `dbos workflow list -s ...`, or
`export TIMESTEP_DB_URL=$(timestep db-url)` before `dbos` commands where dbos-config.yaml's
default path is not Timestep's)."""

from __future__ import annotations

import argparse
from typing import Any

from .common import Output


def db_url(args: argparse.Namespace, out: Output) -> int:
    from .. import config

    url = config.configured_database_url() or f"sqlite:///{config.default_database_path()}"
    if out.json_mode:
        out.json({"database_url": url})
    else:
        out.text(url)
    return 0


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "db-url",
        parents=[common],
        help="print the database URL in force (creates nothing)",
        description="Print the database URL in force: --db, else $TIMESTEP_DB_URL, else the "
        "default SQLite file. DBOS's CLI finds the same through the repository's "
        "dbos-config.yaml (on Linux; elsewhere export TIMESTEP_DB_URL=$(timestep db-url))",
    )
    parser.set_defaults(handler=db_url)
