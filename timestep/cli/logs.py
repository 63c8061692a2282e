"""Logging for the `timestep` command and the worker: quiet terminals, complete log files.

By default only Timestep's own warnings reach the terminal. DBOS's records (among them its
"Exception encountered in asynchronous workflow" traceback for every failed run and its
"Workflow already exists in queue" warning on resumes), the Agents SDK's, openai's and httpx's
go to `--log-file` when given, and to stderr with `--verbose`. This is configuration of the
standard `logging` module only, and only in the CLI and the worker: a library user's process
keeps its own logging.

DBOS adds a console handler of its own to the `dbos` logger unless that logger already has a
handler; giving it ours first keeps DBOS's records where these settings send them.
"""

from __future__ import annotations

import logging
import sys

from .safe import visible

DBOS_LOGGER = "dbos"
NOISY = ("httpx", "httpcore", "openai", "openai.agents", "urllib3", "asyncio")
QUEUE_EXISTS = "Workflow already exists in queue"
WORKFLOW_EXCEPTION = "Exception encountered in asynchronous workflow"
DB_RETRY = "Database connection failed"


class _OnlyTimestep(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.name == "timestep" or record.name.startswith("timestep.")


class _SafeFormatter(logging.Formatter):
    """Log lines carry run text (ids, tool names, errors): shown escaped, never as terminal
    control sequences (`safe.visible`; line breaks of tracebacks stay)."""

    def format(self, record: logging.LogRecord) -> str:
        return visible(super().format(record), keep_newlines=True)


class _TimestepFormatter(logging.Formatter):
    """Timestep's messages as they are (they start with `timestep:`), others named."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if not message.startswith("timestep") and not record.name.startswith("timestep"):
            message = f"{record.name}: {record.levelname.lower()}: {message}"
        return visible(message, keep_newlines=True)  # no traceback: `--verbose` shows them


class QuietDependencies(logging.Filter):
    """For a worker's terminal: DBOS's resume warning dropped, its failed-workflow traceback
    reduced to one line naming the exception (the run record keeps the error); what
    dependencies (DBOS, SQLAlchemy) say about a lost database connection dropped (the
    worker's heartbeat says it once per outage, and when it ends), and any other traceback of
    theirs reduced to one line (`-v` shows them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "timestep" or record.name.startswith("timestep."):
            return True
        message = str(record.msg)
        if message.startswith(QUEUE_EXISTS):
            return False
        exc = record.exc_info[1] if record.exc_info else None
        try:
            text = record.getMessage()
        except Exception:  # a record whose arguments do not fit its format: shown as it is
            text = message
        if _about_lost_connection(text, exc):
            return False
        if message.startswith(WORKFLOW_EXCEPTION) and exc is not None:
            record.msg = f"a run segment failed: {type(exc).__name__}: {exc}"
            record.args = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        elif exc is not None:
            first = (str(exc).strip().splitlines() or [""])[0]
            record.msg = f"{text} ({type(exc).__name__}: {first})"
            record.args = None
        record.exc_info = None
        record.exc_text = None
        record.stack_info = None
        return True


def _about_lost_connection(message: str, exc: BaseException | None) -> bool:
    from .._engine.outages import is_unreachable, unreachable_text

    if message.startswith(DB_RETRY):
        return True
    if exc is not None and is_unreachable(exc):
        return True
    return unreachable_text(message)


def _file_handler(path: str) -> logging.Handler:
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(_SafeFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    return handler


def configure_cli(*, verbose: bool, log_file: str | None) -> None:
    """The `timestep` command: one quiet line per problem unless `verbose`."""
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if log_file else (logging.INFO if verbose else logging.WARNING))
    terminal = logging.StreamHandler(sys.stderr)
    if verbose:
        terminal.setLevel(logging.INFO)
        terminal.setFormatter(_SafeFormatter("%(levelname)s %(name)s: %(message)s"))
    else:
        terminal.setLevel(logging.WARNING)
        terminal.addFilter(_OnlyTimestep())
        terminal.setFormatter(_TimestepFormatter())
    root.addHandler(terminal)
    extra = [_file_handler(log_file)] if log_file else []
    for handler in extra:
        root.addHandler(handler)
    # DBOS's own logger does not propagate once DBOS configured it; ours go first.
    dbos = logging.getLogger(DBOS_LOGGER)
    dbos.propagate = False
    for handler in ([terminal] if verbose else []) + extra:
        dbos.addHandler(handler)
    if not dbos.handlers:
        dbos.addHandler(logging.NullHandler())
    if not verbose:
        for name in NOISY:
            logging.getLogger(name).setLevel(logging.WARNING)


def configure_worker(*, verbose: bool, log_file: str | None = None) -> None:
    """A worker (`timestep worker`, `python -m workflows`): Timestep's INFO lines and DBOS's
    warnings on stderr, without per-request httpx lines or DBOS's tracebacks of failed runs
    (unless `verbose`)."""
    terminal = logging.StreamHandler(sys.stderr)
    terminal.setFormatter(_SafeFormatter("%(asctime)s %(name)s %(message)s"))
    if not verbose:
        terminal.addFilter(QuietDependencies())
    handlers: list[logging.Handler] = [terminal]
    if log_file:
        handlers.append(_file_handler(log_file))
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for handler in handlers:
        root.addHandler(handler)
    dbos = logging.getLogger(DBOS_LOGGER)
    dbos.propagate = False
    for handler in handlers:
        dbos.addHandler(handler)
    if not verbose:
        for name in NOISY:
            logging.getLogger(name).setLevel(logging.WARNING)
