"""Waiting out a lost database connection inside a run, as DBOS does for its own writes.

A segment that loses its database (a PostgreSQL restart, a failover) must not fail the run for
it: DBOS blocks its own checkpoints and retries until the connection is back, and Timestep's
writes from inside a segment do the same. Callers outside a run (the CLI, `get_run`) are not
retried: they get `DatabaseUnavailableError` at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import sqlalchemy as sa

logger = logging.getLogger("timestep")

P = ParamSpec("P")
T = TypeVar("T")

INITIAL_BACKOFF_SECONDS = 0.25
MAX_BACKOFF_SECONDS = 1.0
"""As DBOS's own retries are bounded (`_engine.outages`): a run goes on within about a second
of the database's return."""


def is_connection_error(exc: BaseException) -> bool:
    """Whether `exc` means the database is unreachable (not that a statement is wrong)."""
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError)):
        text = str(exc).lower()
        # SQLite reports a busy file as an OperationalError too; that is contention, which
        # its busy timeout already waits out, not a lost connection.
        return "database is locked" not in text
    return False


def until_reachable(function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Call `function`, retrying with backoff for as long as the database is unreachable."""
    backoff = INITIAL_BACKOFF_SECONDS
    while True:
        try:
            return function(*args, **kwargs)
        except sa.exc.SQLAlchemyError as exc:
            if not is_connection_error(exc):
                raise
            # DEBUG: the process's heartbeat says once that the database is lost, and when back.
            logger.debug(
                "timestep: database unreachable (%s); retrying in %.1f s",
                str(exc).strip().splitlines()[0],
                backoff,
            )
        time.sleep(backoff)
        backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
