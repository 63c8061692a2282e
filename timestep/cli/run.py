"""`timestep run MODULE:AGENT "input"`: run an agent durably and print its output."""

from __future__ import annotations

import argparse
import json
import os
from typing import TYPE_CHECKING, Any

from ..errors import InvalidArgumentError
from .common import EXIT_AWAITING_APPROVAL, EXIT_OK, CommandError, Output
from .failures import missing_openai_key
from .render import StreamPrinter, call_line

if TYPE_CHECKING:
    from ..state.records import RunRecord


def app_options(modules: list[str]) -> str:
    """`--app M1 --app M2`: the modules a command was given, for the hints it prints."""
    return " ".join(f"--app {module}" for module in modules)


def print_outcome(
    out: Output,
    record: RunRecord,
    output: Any,
    parked: bool,
    modules: list[str],
    streamed_text: bool = False,
) -> int:
    """Print a run's final output (or its pending calls) and return the exit code. `modules`
    define the run's agents (the command's MODULE:AGENT or --app): the hints name them."""
    if out.json_mode:
        out.json(record.as_dict())
    elif parked:
        out.text(f"run {record.run_id} awaits approval:")
        for pending in record.pending_approvals:
            out.text(f"  {call_line(pending)}")
        out.text(
            f"decide with: timestep approve {record.run_id}  (or: timestep reject "
            f"{record.run_id}), then: timestep resume {record.run_id} {app_options(modules)}  "
            f"(or let a worker go on: timestep worker {app_options(modules)})"
        )
    else:
        if not streamed_text:
            out.text(output if isinstance(output, str) else json.dumps(output, default=str))
        out.note(f"(run {record.run_id})")
    return EXIT_AWAITING_APPROVAL if parked else EXIT_OK


def _check_openai_key(model: Any) -> None:
    """A model that goes to OpenAI needs a key: say so before a run is recorded."""
    if model is not None and not isinstance(model, str):
        return  # a Model object (the demo model, a custom provider)
    name = model or os.environ.get("OPENAI_DEFAULT_MODEL") or ""
    prefix, _, _rest = name.partition("/")
    goes_to_openai = "/" not in name or prefix == "openai"
    if goes_to_openai and not os.environ.get("OPENAI_API_KEY"):
        raise CommandError(missing_openai_key())


def check_agent_reference(reference: str) -> str:
    """The module of `MODULE:AGENT`, checked for its shape and found on the path before the
    Agents SDK and DBOS are imported (seconds): a typo is reported at once."""
    module, _, attribute = reference.partition(":")
    if not module or not attribute or not attribute.isidentifier():
        raise InvalidArgumentError(
            f"agent reference {reference!r} must look like MODULE:AGENT, e.g. "
            "timestep.demo:assistant"
        )
    check_module(module)
    return module


def check_module(module: str) -> None:
    """Raise `InvalidArgumentError` unless `module` can be found on the path (found, not
    imported: importing an app module imports the Agents SDK)."""
    import importlib.util
    import sys

    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # as the registry does: a module of this project
    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        found = None
    if found is None:
        raise InvalidArgumentError(
            f"cannot import app module {module!r}: no module of that name on the path (run "
            "from the project's directory, or check the spelling)"
        )


async def run(args: argparse.Namespace, out: Output) -> int:
    module = check_agent_reference(args.agent)
    from .. import config
    from .._engine.events import encode_event
    from .._engine.naming import run_id_or_new
    from .._engine.registry import resolve_agent_reference
    from ..run import run_agent
    from ..runs import get_run

    # This command exits when its run ends: it must not take other runs off the queues.
    config.configure(take_queued_work=False)
    agent = resolve_agent_reference(args.agent)
    if args.model:
        agent = agent.clone(model=args.model)
    _check_openai_key(agent.model)
    run_id = run_id_or_new(args.run_id)
    printer = StreamPrinter() if args.stream and not out.json_mode else None
    if printer is not None:
        printer.waiting()
    try:
        result = await run_agent(agent, args.input, run_id=run_id, stream=args.stream)
        if args.stream:  # a streaming result; one rebuilt for a finished run has no events
            async for event in result.stream_events():
                encoded = encode_event(event)
                if printer is not None:
                    printer.feed(encoded)
                else:
                    out.json({"event": encoded})
    finally:
        if printer is not None:
            printer.close()
    record = await get_run(run_id)
    streamed_text = printer is not None and printer.text_seen
    return print_outcome(
        out, record, result.final_output, bool(result.interruptions), [module], streamed_text
    )


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "run",
        parents=[common],
        help="run an agent durably and print its output",
        description="Run an agent durably: every model call and tool call is a recorded step. "
        "If the process dies, the same command with the same --run-id finishes the run from "
        f"its records. Exits {EXIT_AWAITING_APPROVAL} when the run stops for approval.",
    )
    parser.add_argument(
        "agent",
        metavar="MODULE:AGENT",
        help="the agent object, e.g. timestep.demo:assistant (offline demo) or "
        "examples.assistant:assistant",
    )
    parser.add_argument("input", help="the user's message")
    parser.add_argument(
        "--run-id", help="run id (default: a new one); reuse it to finish a run a crash interrupted"
    )
    parser.add_argument(
        "--model", help="model name instead of the agent's, e.g. gpt-4.1 or ollama/llama3.2"
    )
    parser.add_argument(
        "--stream",
        action="store_true",
        help="print the answer as it arrives and tool calls as they start and end",
    )
    parser.set_defaults(handler=run)
