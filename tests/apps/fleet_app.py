"""Agents for fleet and ownership tests: a slow tool that logs when it starts and ends, where.

Workers load it with `python -m workflows --app tests.apps.fleet_app`; the CLI runs
`tests.apps.fleet_app:alpha`. Environment: TIMESTEP_TEST_LOG (the execution log),
TIMESTEP_TEST_TOOL_SECONDS (how long each tool call sleeps, default 0.1).
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from agents import Agent, ModelResponse, function_tool

import timestep
from tests.helpers import ExecutionLog, TurnModel, tool_outputs
from timestep._engine.segment import current_segment

log = ExecutionLog(os.environ.get("TIMESTEP_TEST_LOG", os.devnull))
TOOL_SECONDS = float(os.environ.get("TIMESTEP_TEST_TOOL_SECONDS", "0.1"))


class LoggedTurnModel(TurnModel):
    """A `TurnModel` whose log lines name the run and the process."""

    async def get_response(
        self, system_instructions: Any, input: Any, *args: Any, **kwargs: Any
    ) -> ModelResponse:
        segment = current_segment()
        log.write(
            "model",
            run=segment.run_id if segment else None,
            turn=self._turn(input),
            seen=len(tool_outputs(input)),
            pid=os.getpid(),
        )
        return await super().get_response(system_instructions, input, *args, **kwargs)


@function_tool
async def work(n: int) -> str:
    """Do step n (slowly)."""
    key = timestep.idempotency_key()
    log.write("tool_start", key=key, pid=os.getpid(), t=time.time())
    await asyncio.sleep(TOOL_SECONDS)
    log.write("tool_end", key=key, pid=os.getpid(), t=time.time())
    return f"worked {n}"


def _agent(name: str) -> Agent[Any]:
    return Agent(
        name=name,
        instructions="Do two steps.",
        model=LoggedTurnModel([[("work", {"n": 1})], [("work", {"n": 2})]], final="two steps"),
        tools=[work],
    )


alpha = _agent("Alpha")
beta = _agent("Beta")
