"""The `timestep` command: parser, subcommand registration, and the one place errors end.

Commands that only inspect or decide (`runs list/show/steps/tail`, `approve`, `reject`,
`state export`) import neither the Agents SDK nor (for `runs list/show`) DBOS, never launch
DBOS, and so take no part in recovery. Read-only commands never create a database.
"""

from __future__ import annotations

import argparse
import inspect
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import TimestepError
from . import decide, info, legacy, run, runs, serve, state, worker
from .common import (
    EXIT_CODES_HELP,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    Output,
    global_options,
    option,
)
from .failures import describe, exit_code

DESCRIPTION = (
    "Run OpenAI Agents SDK agents durably (they survive crashes and wait for approvals in a "
    "database), inspect their runs, and decide pending tool calls."
)
EPILOG = (
    f"{EXIT_CODES_HELP}. Try it offline: "
    'timestep run timestep.demo:assistant "What is 12 * 7, then add 5?"'
)

Registrar = Callable[[Any, argparse.ArgumentParser], None]

SUBCOMMANDS: list[Registrar] = [
    run.register,
    decide.register,
    runs.register,
    state.register,
    worker.register,
    legacy.register,
    serve.register,
    info.register,
]
"""Each subcommand module's `register(commands, common)`, in `--help` order. A new command:
a module with a `register` function that adds its parser (with `parents=[common]`) and sets
`handler=` (an async or plain function of (args, out) returning the exit code); list it here."""


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors as JSON under `--json`."""

    json_errors = False

    def error(self, message: str) -> Any:
        if _Parser.json_errors:
            Output(json_mode=True, verbose=False).error(
                f"{self.prog}: {message}", "UsageError", EXIT_USAGE
            )
            raise SystemExit(EXIT_USAGE)
        super().error(message)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"timestep {version('timestep')}"
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "timestep (not installed)"


class _VersionAction(argparse.Action):
    """`--version`, looked up only when asked for (reading package metadata costs every
    command tens of milliseconds)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        kwargs.setdefault("default", argparse.SUPPRESS)
        super().__init__(option_strings, dest, nargs=0, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any) -> None:
        print(_version())
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    common = global_options()
    parser = _Parser(
        prog="timestep",
        description=DESCRIPTION,
        epilog=EPILOG,
        parents=[common],
    )
    parser.add_argument(
        "--version", action=_VersionAction, help="show the version of timestep and exit"
    )
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )
    for register in SUBCOMMANDS:
        register(commands, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    _Parser.json_errors = "--json" in arguments
    args = build_parser().parse_args(arguments)
    verbose = bool(option(args, "verbose", False))
    out = Output(json_mode=bool(option(args, "json", False)), verbose=verbose)
    from . import logs

    if option(args, "worker", False):
        logs.configure_worker(verbose=verbose, log_file=option(args, "log_file"))
    else:
        logs.configure_cli(verbose=verbose, log_file=option(args, "log_file"))
    try:
        from .. import config

        if option(args, "db"):
            config.configure(database_url=args.db, database_url_source="--db")
        if option(args, "read_only", False):
            from ..state import storage

            storage.open_read_only()
        handler = args.handler
        if not inspect.iscoroutinefunction(handler):
            code = handler(args, out)
        else:
            import asyncio

            code = asyncio.run(handler(args, out))
        return int(code)
    except KeyboardInterrupt:
        return _fail(
            out,
            "interrupted (Ctrl-C). A run stopped so is recorded: the same command with the same "
            "--run-id finishes it",
            "KeyboardInterrupt",
            EXIT_INTERRUPTED,
        )
    except BrokenPipeError:
        sys.stderr.close()  # the reader went away (`| head`): nothing left to say
        return EXIT_ERROR
    except Exception as exc:
        if verbose:
            traceback.print_exception(exc)
        kind = type(exc).__name__ if isinstance(exc, TimestepError) else _kind(exc)
        return _fail(out, describe(exc), kind, exit_code(exc))


def _kind(exc: BaseException) -> str:
    module = type(exc).__module__.split(".")[0]
    return f"{module}.{type(exc).__name__}" if module != "builtins" else type(exc).__name__


def _fail(out: Output, message: str, kind: str, code: int) -> int:
    out.error(message, kind, code)
    return code
