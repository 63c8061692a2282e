"""What every `timestep` subcommand shares: exit codes, global options, output modes."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from ..errors import CommandError as CommandError
from .safe import json_visible, visible

EXIT_OK = 0
"""The command did what it was asked (a run finished, a decision was recorded, ...)."""

EXIT_ERROR = 1
"""The command failed; the `timestep: error:` line says why and what to do."""

EXIT_USAGE = 2
"""The command line itself is wrong (unknown option, missing argument)."""

EXIT_AWAITING_APPROVAL = 3
"""`run`/`resume`: the run stopped for approval of a tool call (decide, then `resume`)."""

EXIT_NOTHING_PENDING = 4
"""`approve`/`reject`: the run has no pending call (or not the one named): nothing was recorded."""

EXIT_INTERRUPTED = 130
"""Ctrl-C (SIGINT). A run interrupted so is recorded; the same command finishes it."""

EXIT_CODES_HELP = (
    f"exit codes: {EXIT_OK} done; {EXIT_ERROR} error; {EXIT_USAGE} usage error; "
    f"{EXIT_AWAITING_APPROVAL} the run awaits approval; {EXIT_NOTHING_PENDING} nothing pending "
    f"to approve or reject; {EXIT_INTERRUPTED} interrupted (Ctrl-C)"
)

Handler = Callable[[argparse.Namespace, "Output"], Awaitable[int]]


def global_options() -> argparse.ArgumentParser:
    """Options accepted before or after any subcommand (`timestep --db X runs list` or
    `timestep runs list --db X`)."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("global options")
    group.add_argument(
        "--db",
        metavar="URL",
        default=argparse.SUPPRESS,
        help="database URL: sqlite:///PATH or postgresql://... (default: $TIMESTEP_DB_URL, "
        "else the SQLite file in the user data directory)",
    )
    group.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help='print JSON on stdout (errors too: {"error": {...}})',
    )
    group.add_argument(
        "-v",
        "--verbose",
        "--debug",
        dest="verbose",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show tracebacks and the logs of DBOS and the libraries on stderr",
    )
    group.add_argument(
        "--log-file",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help="append every log record (DBOS's, the SDK's, Timestep's) to FILE",
    )
    return parent


def option(args: argparse.Namespace, name: str, default: Any = None) -> Any:
    return getattr(args, name, default)


class Output:
    """Where a command's results go: text for people, or JSON for scripts (`--json`)."""

    def __init__(self, json_mode: bool, verbose: bool) -> None:
        self.json_mode = json_mode
        self.verbose = verbose

    def json(self, value: Any) -> None:
        print(json_visible(json.dumps(value, ensure_ascii=False, default=str)), flush=True)

    def text(self, line: str = "", *, end: str = "\n") -> None:
        """A line for people: run text in it is shown escaped (`safe.visible`)."""
        print(visible(line, keep_newlines=True), end=end, flush=True)

    def data(self, text: str) -> None:
        """A document exactly as it is (a state file's JSON on stdout for redirection)."""
        print(text, flush=True)

    def note(self, line: str) -> None:
        """Progress and hints for people: stderr, never mixed into results."""
        print(visible(line, keep_newlines=True), file=sys.stderr, flush=True)

    def error(self, message: str, kind: str, code: int) -> None:
        if self.json_mode:
            self.json({"error": {"type": kind, "message": message, "exit_code": code}})
        else:
            print(f"timestep: error: {visible(message)}", file=sys.stderr, flush=True)


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration_arg(text: str) -> float:
    """`--older-than`'s value: seconds, or a number with s, m, h or d (`30d`, `12h`)."""
    value, unit = text.strip(), "s"
    if value and value[-1] in _UNITS:
        value, unit = value[:-1], value[-1]
    try:
        seconds = float(value) * _UNITS[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration: give seconds or a number with s, m, h or d (30d)"
        ) from None
    if not seconds >= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration >= 0")
    return seconds
