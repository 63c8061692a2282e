"""`timestep worker --app MODULE`: the worker of `timestep.worker`, which `python -m workflows`
(what `dbos start` runs) starts too."""

from __future__ import annotations

import argparse
from typing import Any

from ..worker import add_prune_option, add_wait_for_db
from .common import Output


def worker(args: argparse.Namespace, out: Output) -> int:
    """Synchronous: it installs signal handlers (main thread) and DBOS launches outside any
    event loop."""
    from ..worker import run_worker

    run_worker(args.app, args.executor_id, args.wait_for_db, args.prune_older_than)
    return 0


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "worker",
        parents=[common],
        help="run a worker for the agents of MODULE",
        description="Register every Agent at the top level of each MODULE, launch DBOS, take "
        "over the runs of dead processes and run the queued runs of those agents (approved "
        "continuations, submitted runs) until SIGTERM or Ctrl-C. The same worker as `python "
        "-m workflows` and `dbos start`.",
    )
    parser.add_argument(
        "--app",
        metavar="MODULE",
        action="append",
        required=True,
        help="module whose agents this worker runs (repeatable), e.g. timestep.demo",
    )
    parser.add_argument(
        "--executor-id", help="stable DBOS executor id (default: $TIMESTEP_EXECUTOR_ID or new)"
    )
    add_wait_for_db(parser)
    add_prune_option(parser)
    parser.set_defaults(handler=worker, worker=True)
