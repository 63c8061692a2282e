"""A worker: registers the agents of the app modules, recovers pending runs, works the queues.

    python -m workflows --app MODULE [--app MODULE ...] [--db URL] [--executor-id ID] [-v]

`workflows/__main__.py` (what `dbos start` runs) calls `main`; `timestep worker` calls
`run_worker`: the same worker. Every `Agent` at the top level of each MODULE (and every
agent the module registers with `timestep.register_agent`) is registered. The worker then
launches DBOS, keeps a heartbeat, takes over the runs of dead processes, and takes runs from the
queues of the registered agents until SIGTERM or SIGINT. Then it takes no more work, lets the
tool calls in flight finish and be recorded (for `TIMESTEP_STOP_GRACE_SECONDS`, 30 s; past it
they are cancelled and their runs taken over), and exits; a second signal exits at once. The
MCP servers of the registered agents are connected by the worker (an app module only declares
them), on a loop of its own, and closed when it stops.

Executor ids: each process gets a new one unless given `--executor-id` (or
`TIMESTEP_EXECUTOR_ID`). A stable id lets a restarted worker resume its own leftovers at once;
without one, the other processes take them over when the lease runs out. Two live processes
never share an id: the second one waits out the first one's lease, then refuses to start.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence

logger = logging.getLogger("timestep.worker")


def run_worker(apps: Sequence[str], executor_id: str | None = None) -> None:
    """Register `apps`, launch DBOS and work until SIGTERM/SIGINT (raises `TimestepError`)."""
    from . import config
    from ._engine import launch, registry, stopping
    from ._engine.mcp_servers import ServerHost

    config.configure(executor_id=executor_id)
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        if stop.is_set():  # a second signal: stop now
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    for module in apps:
        registry.register_module(module)
    servers = ServerHost()  # the MCP servers of the agents registered, connected here
    servers.connect(registry.registered_agents())
    launch.ensure_dbos()
    logger.info(
        "worker ready: agents %s; recovering pending runs and working their queues",
        ", ".join(registry.registered_names()),
    )
    while not stop.wait(1.0):  # a timeout keeps the main thread responsive to signals
        pass
    grace = config.stop_grace_seconds()
    logger.info("worker stopping: tool calls in flight get %.0f s to finish", grace)
    stopping.begin()  # no step starts, nothing more is dequeued or taken over
    stopping.drain(grace)  # tool calls in flight finish and are recorded, or are cancelled
    launch.shutdown()
    servers.close()


def main(argv: Sequence[str] | None = None) -> int:
    from .cli.logs import configure_worker
    from .errors import TimestepError

    parser = argparse.ArgumentParser(prog="python -m workflows", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--app",
        action="append",
        required=True,
        metavar="MODULE",
        help="module whose top-level agents this worker runs (repeatable)",
    )
    parser.add_argument("--db", metavar="URL", help="database URL (default: $TIMESTEP_DB_URL)")
    parser.add_argument("--executor-id", help="DBOS executor id of this worker")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="DBOS's tracebacks and every library log"
    )
    args = parser.parse_args(argv)
    configure_worker(verbose=args.verbose)
    if args.db:
        from .config import configure

        configure(database_url=args.db)
    try:
        run_worker(args.app, args.executor_id)
    except TimestepError as exc:
        print(f"workflows: error: {exc}", file=sys.stderr)
        return 1
    return 0
