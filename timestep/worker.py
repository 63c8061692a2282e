"""A worker: registers the agents of the app modules, recovers pending runs, works the queues.

    python -m workflows --app MODULE [--app MODULE ...] [--db URL] [--executor-id ID]
                        [--wait-for-db SECONDS] [-v]

`workflows/__main__.py` (what `dbos start` runs) calls `main`; `timestep worker` calls
`run_worker`: the same worker. Every `Agent` at the top level of each MODULE (and every
agent the module registers with `timestep.register_agent`) is registered. The worker then
launches DBOS, keeps a heartbeat, takes over the runs of dead processes, and takes runs from the
queues of the registered agents until SIGTERM or SIGINT. Then it takes no more work, lets the
tool calls in flight finish and be recorded (for `TIMESTEP_STOP_GRACE_SECONDS`, 30 s; past it
they are cancelled and their runs taken over), and exits; a second signal exits at once. The
MCP servers of the registered agents are connected by the worker (an app module only declares
them), on a loop of its own, and closed when it stops.

A worker started while the database is unreachable waits for it (one status line, retries
every 2 s at most) and starts working when it is up; `--wait-for-db SECONDS` bounds the wait
(0: fail at once). While it runs, a database outage is one line when it begins and one when it
ends; on stop the worker prints one line saying what it did.

Executor ids: each process gets a new one unless given `--executor-id` (or
`TIMESTEP_EXECUTOR_ID`). A stable id lets a restarted worker resume its own leftovers at once;
without one, the other processes take them over when the lease runs out. Two live processes
never share an id: the second one waits out the first one's lease, then refuses to start.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime

logger = logging.getLogger("timestep.worker")

SUMMARY_TIMEOUT_SECONDS = 5.0
"""How long the summary on stop may wait for the database to count the segments run here."""


def wait_for_db_seconds(text: str) -> float | None:
    """The value of `--wait-for-db`: seconds (0 = fail at once), or `forever`."""
    if text.strip().lower() in ("forever", "inf", "none"):
        return None
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not seconds >= 0:  # NaN too
        raise argparse.ArgumentTypeError("--wait-for-db takes 0 or more seconds")
    return seconds


def run_worker(
    apps: Sequence[str],
    executor_id: str | None = None,
    wait_for_db: float | None = None,
    prune_older_than: float | None = None,
) -> None:
    """Register `apps`, wait for the database (`wait_for_db` seconds at most, None: as long as
    it takes), launch DBOS and work until SIGTERM/SIGINT (raises `TimestepError`). With
    `prune_older_than`, also delete finished runs older than that every `PRUNE_EVERY_SECONDS`
    (`timestep.prune_runs`)."""
    from . import config
    from ._engine import launch, outages, registry, stopping
    from ._engine.mcp_servers import ServerHost
    from .state import storage
    from .state.database import parse_database_url

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
    where = parse_database_url(config.database_url()).where
    if outages.wait_for_database(storage.storage_engine, where, wait_for_db, stop) is None:
        return  # stopped while waiting: nothing started
    servers = ServerHost()  # the MCP servers of the agents registered, connected here
    servers.connect(registry.registered_agents())
    launch.ensure_dbos()
    if prune_older_than is not None:
        _prune_periodically(prune_older_than, stop)
    started = time.time()
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
    summary = _summary(started)
    launch.shutdown()
    servers.close()
    logger.info("%s", summary)


PRUNE_EVERY_SECONDS = 600.0
"""How often a worker started with `--prune-older-than` prunes finished runs."""


def _prune_periodically(older_than: float, stop: threading.Event) -> None:
    """Prune finished runs older than `older_than` now and every `PRUNE_EVERY_SECONDS`, in a
    daemon thread, until `stop` is set. Several workers may prune at once: each deletion is
    guarded, so they never delete a run twice or a run that came back to life."""
    from .retention import prune_runs

    def loop() -> None:
        while not stop.is_set():
            try:
                report = asyncio.run(prune_runs(older_than))
                if report.deleted:
                    logger.info("pruned %d finished run(s)", len(report.deleted))
            except Exception as exc:  # the database may be away: try again next time
                logger.warning("timestep: pruning finished runs failed: %s", exc)
            stop.wait(PRUNE_EVERY_SECONDS)

    threading.Thread(target=loop, name="timestep-prune", daemon=True).start()


def _summary(started: float) -> str:
    """One line: how long this worker ran, the run segments that ended here, the takeovers
    it made and the database outages it lived through."""
    from ._engine import launch

    fleet = launch.fleet()
    parts = [f"worker stopped after {_duration(time.time() - started)}"]
    ended = _segments_ended_here(started)
    if ended is not None:
        done, failed = ended
        parts.append(f"{done} run segment(s) ended here ({failed} failed)")
    if fleet is not None:
        parts.append(f"{fleet.moved_count} workflow(s) taken over from dead processes")
        count, total = fleet.outages.count, fleet.outages.total_seconds
        parts.append(f"{count} database outage(s)" + (f" ({total:.1f} s)" if count else ""))
    return "; ".join(parts)


def _segments_ended_here(started: float) -> tuple[int, int] | None:
    """(ended, failed) run segments this executor ran since `started`, counted by DBOS; None
    when the database does not answer within `SUMMARY_TIMEOUT_SECONDS` (it is down)."""
    from ._engine import launch, queues
    from ._engine.naming import SEGMENT_WORKFLOW

    fleet = launch.fleet()
    if fleet is None or fleet.outages.down:
        return None
    since = datetime.fromtimestamp(started, tz=UTC).isoformat()
    found: list[tuple[int, int]] = []

    def count() -> None:
        statuses = queues.client().list_workflows(
            executor_id=fleet.executor_id,
            name=SEGMENT_WORKFLOW,
            status=["SUCCESS", "ERROR"],
            completed_after=since,
            load_input=False,
            load_output=False,
        )
        found.append((len(statuses), sum(1 for s in statuses if s.status == "ERROR")))

    # A daemon thread: DBOS's client waits for a database that went down meanwhile.
    counting = threading.Thread(target=count, name="timestep-summary", daemon=True)
    counting.start()
    counting.join(SUMMARY_TIMEOUT_SECONDS)
    return found[0] if found else None


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def add_wait_for_db(parser: argparse.ArgumentParser) -> None:
    """The `--wait-for-db` option (`timestep worker` and `python -m workflows`)."""
    parser.add_argument(
        "--wait-for-db",
        metavar="SECONDS",
        type=wait_for_db_seconds,
        default=None,
        help="how long to wait for an unreachable database at start (default: as long as it "
        "takes; 0: fail at once)",
    )


def add_prune_option(parser: argparse.ArgumentParser) -> None:
    """The `--prune-older-than` option (`timestep worker` and `python -m workflows`)."""
    from .cli.common import duration_arg

    parser.add_argument(
        "--prune-older-than",
        metavar="DURATION",
        type=duration_arg,
        default=None,
        help="also delete finished runs last updated longer ago than this (90m, 12h, 30d), "
        f"every {PRUNE_EVERY_SECONDS / 60:.0f} minutes (default: keep them)",
    )


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
    add_wait_for_db(parser)
    add_prune_option(parser)
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="DBOS's tracebacks and every library log"
    )
    args = parser.parse_args(argv)
    configure_worker(verbose=args.verbose)
    if args.db:
        from .config import configure

        configure(database_url=args.db)
    try:
        run_worker(args.app, args.executor_id, args.wait_for_db, args.prune_older_than)
    except TimestepError as exc:
        print(f"workflows: error: {exc}", file=sys.stderr)
        return 1
    return 0
