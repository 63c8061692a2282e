"""Offline demo agents: try Timestep with no API key, no model server and no network.

    timestep run timestep.demo:assistant "What is 12 * 7, then add 5?" --run-id demo-1
    timestep run timestep.demo:mailer "Email bob@example.com that the build is green" --run-id m-1

Their model is `timestep.models.demo.DemoModel`, a scripted stand-in that ships with Timestep,
not a language model (every answer starts with `[demo model]`). The runs are real durable runs:
each model call and tool call is a recorded DBOS step. Each tool prints a line to stderr when it
really executes, so a run finished from its records shows what was not executed again.

`TIMESTEP_DEMO_CRASH=TOOL` makes the process die (`os._exit`, like `kill -9`) inside that tool,
before its result is recorded: run the same command again without it, with the same
`--run-id`, and the run finishes from its checkpoints. `TIMESTEP_DEMO_TOOL_SECONDS` (default
0.5) is how long each tool works. `--model NAME` runs the same agents on a real model.
"""

from __future__ import annotations

import os
import sys
import time

from agents import Agent, function_tool

from .models.demo import DemoModel
from .tool import idempotency_key

CRASH_ENV = "TIMESTEP_DEMO_CRASH"
TOOL_SECONDS_ENV = "TIMESTEP_DEMO_TOOL_SECONDS"


def _work(tool: str, description: str) -> None:
    print(f"[tool {tool}] executing {description}", file=sys.stderr, flush=True)
    time.sleep(max(0.0, float(os.environ.get(TOOL_SECONDS_ENV, "0.5") or 0)))
    if os.environ.get(CRASH_ENV) == tool:
        print(
            f"[tool {tool}] {CRASH_ENV}={tool}: this process dies now, before the result of "
            f"{tool} is recorded",
            file=sys.stderr,
            flush=True,
        )
        os._exit(137)


@function_tool
def multiply(a: float, b: float) -> float:
    """Multiply two numbers."""
    _work("multiply", f"{a:g} * {b:g}")
    return a * b


@function_tool
def add(a: float, b: float) -> float:
    """Add two numbers."""
    _work("add", f"{a:g} + {b:g}")
    return a + b


@function_tool(needs_approval=True)
def send_email(to: str, subject: str, body: str) -> str:
    """Send an email (the demo only prints it). A human approves each one first."""
    _work("send_email", f"to={to} subject={subject!r} (idempotency key {idempotency_key()})")
    return f"sent to {to} (demo: nothing left this machine)"


assistant = Agent(
    name="DemoAssistant",
    instructions="You are a concise assistant. Use the tools for arithmetic.",
    model=DemoModel(),
    tools=[multiply, add],
)

mailer = Agent(
    name="DemoMailer",
    instructions="You write and send short emails with the send_email tool.",
    model=DemoModel(),
    tools=[send_email],
)
