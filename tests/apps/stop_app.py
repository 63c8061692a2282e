"""A durable run whose one tool takes a while, for stopping the process with a signal.

    python -m tests.apps.stop_app DB_URL LOG RUN_ID TOOL_SECONDS [sync | goes-on]

The tool `slow` logs `start`, sleeps TOOL_SECONDS (in a thread with `sync`), logs `end` and
returns; a cancelled tool logs `cancelled`. Prints {"final_output": ...} when the run ends.

`goes-on` is a process that survives SIGINT, as a notebook does: its own SIGINT handler logs
`handled`; when `run_agent` raises `RunInterruptedError` it logs `interrupted` and calls
`run_agent` with the same run id again.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time

from agents import Agent, function_tool

import timestep
from tests.helpers import ExecutionLog, TurnModel

db_url, log_path, run_id, seconds = sys.argv[1:5]
option = sys.argv[5] if len(sys.argv) > 5 else ""
sync = option == "sync"
log = ExecutionLog(log_path)


@function_tool
async def slow(n: int) -> str:
    """Work for a while on n."""
    log.write("start", n=n, pid=os.getpid())
    try:
        if sync:
            await asyncio.to_thread(time.sleep, float(seconds))
        else:
            await asyncio.sleep(float(seconds))
    except asyncio.CancelledError:
        log.write("cancelled", n=n, pid=os.getpid())
        raise
    log.write("end", n=n, pid=os.getpid())
    return f"worked on {n}"


agent = Agent(
    name="Slowpoke",
    instructions="Work on 1.",
    model=TurnModel([[("slow", {"n": 1})]], final="work done", log=log),
    tools=[slow],
)


async def main() -> None:
    timestep.configure(database_url=db_url)
    try:
        result = await timestep.run_agent(agent, "go", run_id=run_id)
    except timestep.RunInterruptedError:
        if option != "goes-on":
            raise
        log.write("interrupted", pid=os.getpid())
        result = await timestep.run_agent(agent, "go", run_id=run_id)
    print(json.dumps({"final_output": result.final_output}), flush=True)


if __name__ == "__main__":
    if option == "goes-on":
        signal.signal(signal.SIGINT, lambda *_: log.write("handled", pid=os.getpid()))
    asyncio.run(main())
