"""Example agents for the README quickstart.

    timestep run examples.assistant:assistant "What is 12 * 7, then add 5?"
    timestep run examples.assistant:assistant "..." --model ollama/llama3.2
    timestep run examples.assistant:mailer "Email bob@example.com that the build is green"

`assistant` uses OpenAI by default (OPENAI_API_KEY); `--model ollama/NAME` switches to a local
Ollama. `mailer` stops for approval before sending: decide with `timestep approve RUN_ID`, and
let a worker (`python -m workflows --app examples.assistant`) finish the run.
"""

from __future__ import annotations

from agents import Agent, function_tool

import timestep


@function_tool
def multiply(a: float, b: float) -> float:
    """Multiply two numbers."""
    return a * b


@function_tool
def add(a: float, b: float) -> float:
    """Add two numbers."""
    return a + b


@function_tool(needs_approval=True)
def send_email(to: str, subject: str, body: str) -> str:
    """Send an email. A human approves each one first."""
    # A real sender passes the idempotency key to its mail API, so a call repeated after a crash
    # (between sending and recording) does not send twice.
    key = timestep.idempotency_key()
    print(f"[send_email {key}] to={to} subject={subject!r}")
    return f"sent to {to}"


assistant = Agent(
    name="Assistant",
    instructions="You are a concise assistant. Use the tools for arithmetic.",
    model="gpt-4.1-mini",
    tools=[multiply, add],
)

mailer = Agent(
    name="Mailer",
    instructions="You write and send short emails with the send_email tool.",
    model="gpt-4.1-mini",
    tools=[send_email],
)
