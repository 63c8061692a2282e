"""Database outages as a process lives through them.

- A worker started while the database is unreachable waits for it (`wait_for_database`), with
  a bounded backoff and one status line, instead of exiting.
- A running process says once that it lost the database and once that it is back, with how
  long it was gone (`Outages`, kept by the heartbeat), and counts the outages for the
  worker's summary on stop.
- DBOS's own retries of its writes (a step's output among them) back off to at most
  `RETRY_MAX_SECONDS` (`shorten_dbos_retries`): a step whose work finished during an outage is
  recorded within about a second of the database's return, not after DBOS's backoff of up to
  a minute.

Only an unreachable server counts (refused, reset, starting up, timed out): a wrong password or
a missing directory fails at once, since waiting would not fix it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from ..errors import DatabaseUnavailableError

logger = logging.getLogger("timestep")

T = TypeVar("T")

RETRY_INITIAL_SECONDS = 0.25
RETRY_MAX_SECONDS = 1.0
"""DBOS's retries of its database operations back off from 0.25 s to 1 s (DBOS's own: 1 s to
60 s, with ±50% jitter): the price is one failed connection attempt per second per waiting
thread while the database is down."""

START_BACKOFF_SECONDS = 0.5
START_BACKOFF_MAX_SECONDS = 2.0
"""A worker waiting for the database at start tries again after 0.5, 1, then every 2 s."""

_UNREACHABLE = (
    "connection refused",
    "could not connect",
    "connection reset",
    "connection timed out",
    "timeout expired",
    "server closed the connection",
    "terminating connection due to administrator command",
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "the database system is not yet accepting connections",
    "the database system is not accepting connections",
    "consuming input failed",
    "no route to host",
    "network is unreachable",
    "could not translate host name",
    "no such file or directory",  # the server's Unix socket is gone while it restarts
    "ssl syscall error",
    "connection is closed",
    "the connection is lost",
)


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(seen) < 10:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def unreachable_text(text: str) -> bool:
    """Whether an error's text says the database server could not be reached."""
    lowered = text.lower()
    return any(marker in lowered for marker in _UNREACHABLE)


def is_unreachable(exc: BaseException) -> bool:
    """Whether `exc` (or an error it was raised from) means the database server is unreachable
    for now, as opposed to a wrong setting that waiting would not fix."""
    import sqlalchemy as sa

    for error in _chain(exc):
        if isinstance(error, sa.exc.DBAPIError) and error.connection_invalidated:
            return True
        if unreachable_text(str(error)):
            return True
    return False


def reason(exc: BaseException) -> str:
    """One line saying why the database could not be reached (the driver's own words)."""
    import sqlalchemy as sa

    for error in _chain(exc):
        if isinstance(error, sa.exc.DBAPIError) and error.orig is not None:
            error = error.orig  # the driver's message, without SQLAlchemy's SQL and links
        text = str(error).strip()
        if text and text != "()":
            line = text.splitlines()[0]
            # psycopg: 'connection failed: connection to server at "h" (h), port p failed: why'
            return line.rsplit(" failed: ", 1)[-1].strip() or line
    return type(exc).__name__


def wait_for_database(
    open_database: Callable[[], T],
    where: str,
    timeout: float | None,
    stop: threading.Event | None = None,
) -> T | None:
    """`open_database()`, called again while it fails because the database is unreachable, for
    `timeout` seconds at most (None: as long as it takes; 0: not at all). None when `stop` is
    set while waiting."""
    started = time.monotonic()
    backoff = START_BACKOFF_SECONDS
    announced = False
    while True:
        try:
            opened = open_database()
        except Exception as exc:
            if not is_unreachable(exc) or timeout == 0:
                raise
            waited = time.monotonic() - started
            if timeout is not None and waited >= timeout:
                raise DatabaseUnavailableError(
                    f"the database at {where} did not become reachable within {timeout:g} s "
                    f"({reason(exc)}); start it, or check TIMESTEP_DB_URL"
                ) from None
            if not announced:
                bound = "as long as it takes" if timeout is None else f"up to {timeout:g} s"
                logger.warning(
                    "timestep: the database at %s is unreachable (%s); waiting for it (%s; "
                    "--wait-for-db SECONDS to bound it)",
                    where,
                    reason(exc),
                    bound,
                )
                announced = True
            pause = backoff if timeout is None else min(backoff, timeout - waited)
            if (stop or threading.Event()).wait(max(pause, 0.0)):
                return None
            backoff = min(backoff * 2, START_BACKOFF_MAX_SECONDS)
            continue
        if announced:
            logger.warning(
                "timestep: the database at %s is reachable after %.1f s; starting",
                where,
                time.monotonic() - started,
            )
        return opened


@dataclass
class Outages:
    """The database outages one process has lived through, said once each."""

    where: str
    """The database, as shown (host:port/database, or the SQLite file)."""

    count: int = 0
    total_seconds: float = 0.0
    _down_since: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def down(self) -> bool:
        return self._down_since is not None

    def lost(self, exc: BaseException) -> None:
        """The database could not be reached just now (said once per outage)."""
        with self._lock:
            if self._down_since is not None:
                return
            self._down_since = time.monotonic()
            self.count += 1
        logger.warning(
            "timestep: lost the database at %s (%s); runs wait, and steps that finish "
            "meanwhile are recorded when it is back",
            self.where,
            reason(exc),
        )

    def back(self) -> None:
        """The database answered again (says how long it was gone, once)."""
        with self._lock:
            since, self._down_since = self._down_since, None
            if since is None:
                return
            gone = time.monotonic() - since
            self.total_seconds += gone
        logger.warning("timestep: the database at %s is back after %.1f s", self.where, gone)


def shorten_dbos_retries() -> None:
    """Make DBOS's retries of its database operations back off to `RETRY_MAX_SECONDS` at most."""
    from .._compat import dbos as dbos_compat

    dbos_compat.bound_connection_retries(RETRY_INITIAL_SECONDS, RETRY_MAX_SECONDS)
