"""A process that runs one durable agent and can kill itself at a chosen step boundary.

    python -m tests.apps.crash_app DB_URL LOG RUN_ID MODE [CRASH_AT] [KILL]

MODE: `run` calls run_agent; `recover` only registers the agent and launches, then waits for
the run to finish; `recover-without-agent` launches without registering and waits forever.
CRASH_AT: model_inside | model_recorded | tool_inside | tool_recorded | none.
KILL: exit (os._exit) | sigkill.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys

from agents import Agent, function_tool
from agents.memory import SQLiteSession

import timestep
from tests.helpers import ExecutionLog, TurnModel
from timestep._engine.segment import after_step_hooks

db_url, log_path, run_id, mode = sys.argv[1:5]
crash_at = sys.argv[5] if len(sys.argv) > 5 else "none"
kill = sys.argv[6] if len(sys.argv) > 6 else "exit"
log = ExecutionLog(log_path)


def die() -> None:
    log.write("crash", at=crash_at)
    if kill == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    os._exit(3)


def on_model_call(turn: int) -> None:
    if crash_at == "model_inside" and turn == 1:
        die()


def after_step(kind: str, detail: str) -> None:
    if crash_at == "model_recorded" and kind == "model" and detail == "resp_1":
        die()
    if crash_at == "tool_recorded" and kind == "tool" and detail == "call_1_0":
        die()


@function_tool
def record(n: int) -> str:
    """Record that step n happened (the side effect)."""
    log.write("tool", n=n)
    if crash_at == "tool_inside" and n == 2:
        die()
    return f"recorded {n}"


agent = Agent(
    name="Worker",
    instructions="Record two steps.",
    model=TurnModel(
        [[("record", {"n": 1})], [("record", {"n": 2})]],
        final="both recorded",
        log=log,
        on_call=on_model_call,
    ),
    tools=[record],
)
after_step_hooks.append(after_step)


async def main() -> None:
    timestep.configure(database_url=db_url)
    session = SQLiteSession(run_id, os.path.join(os.path.dirname(log_path), "session.sqlite"))
    if mode == "run":
        result = await timestep.run_agent(agent, "go", session=session, run_id=run_id)
        print(json.dumps({"final_output": result.final_output}))
        return
    if mode == "recover":
        timestep.register_agent(agent)
    timestep.launch()
    while True:
        record_ = await timestep.get_run(run_id)
        if record_.status in ("completed", "failed"):
            print(json.dumps({"final_output": record_.final_output, "status": record_.status}))
            return
        await asyncio.sleep(0.1)


if __name__ == "__main__":
    asyncio.run(main())
