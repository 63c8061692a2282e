"""A process that runs one agent built from the SDK's features, and can die at a chosen point.

    python -m tests.apps.features_app DB_URL WORKDIR RUN_ID MODE [CRASH_AT]

The graph: `Triage` (an input guardrail that runs a guardrail agent, run and agent hooks) calls
the `add_entry` tool of a real MCP server (stdio, or streamable HTTP at
`TIMESTEP_TEST_MCP_URL`), then `researcher` (the agent `Researcher` used
as a tool, which calls its function tool `note` twice), then hands off to `Closer` through
`handoff(on_handoff=...)`; `Closer` has an output guardrail and answers. Every real execution
(each agent's model calls, the MCP call, `note`, `on_handoff`, the guardrails, the hooks) is
logged to WORKDIR/log.jsonl.

MODE: `durable` runs it with `run_agent` (prints the result as JSON); `plain` with the SDK's
`Runner.run` (the reference); `trip` makes the guardrail agent trip its wire; `park` runs it
with the MCP server's `require_approval="always"` (the run parks on `add_entry`), `approve`
approves the parked call, and `resume` connects the server, registers the agent and resumes.
A worker given `--app tests.apps.features_app` and
`TIMESTEP_TEST_FEATURES="DB_URL|WORKDIR|RUN_ID|MODE"` finds the agent `triage` at the top level.
CRASH_AT: where the process kills itself (os._exit) the first time it gets there:
mcp_inside (the MCP server kills this process after its side effect), mcp_recorded,
inner_model, inner_tool, guardrail_model, handoff_recorded, closer_model, or none.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from agents import (
    Agent,
    AgentHooks,
    GuardrailFunctionOutput,
    InputGuardrailTripwireTriggered,
    RunContextWrapper,
    RunHooks,
    Runner,
    function_tool,
    handoff,
    input_guardrail,
    output_guardrail,
)
from agents.mcp import MCPServerStdio, MCPServerStreamableHttp

import timestep
from tests.helpers import ExecutionLog, TurnModel
from timestep._engine.segment import after_step_hooks

# Imported by a worker (`--app tests.apps.features_app`), its arguments come from the
# environment, and its top level holds the agent with its MCP server (the worker connects it).
ARGS = sys.argv[1:] if __name__ == "__main__" else os.environ["TIMESTEP_TEST_FEATURES"].split("|")
db_url, workdir, run_id, mode = ARGS[:4]
crash_at = ARGS[4] if len(ARGS) > 4 else "none"
log = ExecutionLog(Path(workdir) / "log.jsonl")
crashed_before = any(entry["at"] == crash_at for entry in log.entries("crash"))
ROOT = Path(__file__).resolve().parents[2]


def die(at: str) -> None:
    if at == crash_at and not crashed_before:
        log.write("crash", at=at)
        os._exit(3)


class LabelledModel(TurnModel):
    """A `TurnModel` whose log entries say which agent's model was called."""

    def __init__(self, label: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.label = label

    async def get_response(self, system_instructions: Any, input: Any, *args: Any, **kw: Any):
        turn = self._turn(input)
        log.write("model", agent=self.label, turn=turn)
        if self.label == "Researcher" and turn == 1:
            die("inner_model")
        if self.label == "Guard":
            die("guardrail_model")
        if self.label == "Closer":
            die("closer_model")
        return await super().get_response(system_instructions, input, *args, **kw)


@function_tool
def note(text: str) -> str:
    """Note a finding (the side effect)."""
    log.write("note", text=text)
    if text == "second":
        die("inner_tool")
    return f"noted {text}"


researcher = Agent(
    name="Researcher",
    instructions="Research, noting two findings.",
    model=LabelledModel(
        "Researcher", [[("note", {"text": "first"})], [("note", {"text": "second"})]], "found it"
    ),
    tools=[note],
)

guard = Agent(
    name="Guard",
    instructions="Say whether the request is safe.",
    model=LabelledModel("Guard", [], "trip" if mode == "trip" else "safe"),
)


@input_guardrail
async def screen(ctx: RunContextWrapper[Any], agent: Agent[Any], text: Any) -> Any:
    verdict = await Runner.run(guard, text, context=ctx.context)
    log.write("guardrail", name="screen", verdict=verdict.final_output)
    return GuardrailFunctionOutput(
        output_info={"verdict": verdict.final_output},
        tripwire_triggered=verdict.final_output == "trip",
    )


@output_guardrail
def polite(ctx: RunContextWrapper[Any], agent: Agent[Any], output: Any) -> Any:
    log.write("guardrail", name="polite")
    return GuardrailFunctionOutput(output_info="ok", tripwire_triggered=False)


class LoggingRunHooks(RunHooks[Any]):
    async def on_llm_start(self, context: Any, agent: Any, *args: Any) -> None:
        log.write("hook", hook="llm_start", agent=agent.name)

    async def on_llm_end(self, context: Any, agent: Any, response: Any) -> None:
        log.write("hook", hook="llm_end", agent=agent.name)

    async def on_tool_start(self, context: Any, agent: Any, tool: Any) -> None:
        log.write("hook", hook="tool_start", tool=tool.name)

    async def on_tool_end(self, context: Any, agent: Any, tool: Any, result: Any) -> None:
        log.write("hook", hook="tool_end", tool=tool.name)


class LoggingAgentHooks(AgentHooks[Any]):
    async def on_tool_end(self, context: Any, agent: Any, tool: Any, result: Any) -> None:
        log.write("hook", hook="agent_tool_end", tool=tool.name)


def on_handoff(ctx: RunContextWrapper[Any]) -> None:
    log.write("handoff")


closer = Agent(
    name="Closer",
    instructions="Close the ticket.",
    model=LabelledModel("Closer", [], "closed"),
    output_guardrails=[polite],
)


def build_triage(server: Any) -> Agent[Any]:
    return Agent(
        name="Triage",
        instructions="Book the entry, research, then hand over to the closer.",
        model=LabelledModel(
            "Triage",
            [
                [("add_entry", {"name": "rent", "amount": 12})],
                [("researcher", {"input": "look into the rent"})],
                [("transfer_to_closer", {})],
            ],
            "unreachable",
        ),
        mcp_servers=[server],
        tools=[researcher.as_tool("researcher", "Research a question.")],
        handoffs=[handoff(closer, on_handoff=on_handoff)],
        input_guardrails=[screen],
        hooks=LoggingAgentHooks(),
    )


def after_step(kind: str, detail: str) -> None:
    if kind == "tool" and detail == "call_0_0":
        die("mcp_recorded")
    if kind == "handoff":
        die("handoff_recorded")


after_step_hooks.append(after_step)


def summary(result: Any) -> dict[str, Any]:
    return {
        "final_output": result.final_output,
        "last_agent": result.last_agent.name,
        "items": [item.type for item in result.new_items],
    }


def mcp_server() -> Any:
    approval = "always" if mode in ("park", "resume") else None
    url = os.environ.get("TIMESTEP_TEST_MCP_URL")
    if url:  # a streamable-HTTP server the test started
        return MCPServerStreamableHttp(
            params={"url": url}, client_session_timeout_seconds=600, require_approval=approval
        )
    return MCPServerStdio(
        params={
            "command": sys.executable,
            "args": ["-m", "tests.apps.mcp_server", str(Path(workdir) / "log.jsonl")],
            "cwd": str(ROOT),
            "env": {
                **os.environ,
                "PYTHONPATH": str(ROOT),
                "TIMESTEP_TEST_MCP_KILL_PARENT": "rent"
                if crash_at == "mcp_inside" and not crashed_before
                else "",
            },
        },
        # A stalled answer would wait this long: the test's own timeout fails first.
        client_session_timeout_seconds=600,
        require_approval=approval,
    )


async def main() -> None:
    server = mcp_server()
    timestep.configure(database_url=db_url)
    if mode == "approve":
        await timestep.approve(run_id)
        return
    async with server:
        triage = build_triage(server)
        try:
            if mode == "plain":
                result: Any = await Runner.run(triage, "ticket", hooks=LoggingRunHooks())
            elif mode == "resume":
                timestep.register_agent(triage)
                result = await timestep.resume(run_id)
            else:
                result = await timestep.run_agent(
                    triage, "ticket", run_id=run_id, hooks=LoggingRunHooks()
                )
        except InputGuardrailTripwireTriggered as exc:
            print(json.dumps({"tripwire": exc.guardrail_result.output.output_info}))
            return
    if result.interruptions:
        print(json.dumps({"pending": [i.tool_name for i in result.interruptions]}))
        return
    print(json.dumps(summary(result)))


if __name__ == "__main__":
    asyncio.run(main())
else:
    triage = build_triage(mcp_server())
