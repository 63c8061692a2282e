"""The worker processes of `throughput.py`: the agent Timestep workers run, and a bare DBOS worker.

    python -m benchmarks._throughput_workers bare DB_URL   # a DBOS app, no Timestep

Timestep workers are `python -m workflows --app benchmarks._throughput_workers` (the module's
`bench` agent). Both do the same work per run: three instant "model" steps and two "tool" steps
that sleep `BENCH_TOOL_SECONDS` (default 0.01), and both take runs from a queue with
`TIMESTEP_WORKER_CONCURRENCY` runs at most in flight per process.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import uuid
from typing import Any

from agents import Agent, function_tool
from agents.testing import assistant_message, function_call

from tests.helpers import TurnModel

TOOL_SECONDS = float(os.environ.get("BENCH_TOOL_SECONDS", "0.01"))
BARE_QUEUE = "bare"
BARE_APP = "bench-bare"


@function_tool
async def work(n: int) -> str:
    """Do step n."""
    await asyncio.sleep(TOOL_SECONDS)
    return f"worked {n}"


bench = Agent(
    name="Bench",
    model=TurnModel([[("work", {"n": 1})], [("work", {"n": 2})]], final="done"),
    tools=[work],
)


def _instant_response(turn: int) -> dict[str, Any]:
    """What the bare worker records for a model call: the output items and usage, as JSON."""
    output = (
        [function_call("work", {"n": turn + 1}, call_id=f"call_{turn}")]
        if turn < 2
        else [assistant_message("done")]
    )
    return {
        "output": [item.model_dump() for item in output],
        "usage": {"requests": 1, "input_tokens": 10, "output_tokens": 5, "total_tokens": 15},
    }


def bare_worker(database_url: str) -> None:
    """A DBOS application doing the same steps as a Timestep run, on the same engine settings."""
    from dbos import DBOS, DBOSConfig, DBOSPortableJSONSerializer

    from timestep.state.database import create_engine, parse_database_url

    @DBOS.step()
    async def model_step(turn: int) -> dict[str, Any]:
        return _instant_response(turn)

    @DBOS.step()
    async def tool_step(n: int) -> str:
        await asyncio.sleep(TOOL_SECONDS)
        return f"worked {n}"

    @DBOS.workflow(name="bench.bare_run")
    async def bare_run(text: str) -> str:
        for turn in range(3):
            await model_step(turn)
            if turn < 2:
                await tool_step(turn + 1)
        return "done"

    concurrency = os.environ.get("TIMESTEP_WORKER_CONCURRENCY")
    engine = create_engine(parse_database_url(database_url), pool_size=20)
    config: DBOSConfig = {
        "name": BARE_APP,
        "system_database_engine": engine,
        "application_version": "bench-1",
        "serializer": DBOSPortableJSONSerializer(),
        "log_level": "WARNING",
        "executor_id": f"bare-{os.getpid()}-{uuid.uuid4().hex[:6]}",
    }
    DBOS(config=config)
    DBOS.listen_queues([BARE_QUEUE])
    DBOS.launch()
    DBOS.register_queue(
        BARE_QUEUE,
        polling_interval_sec=0.5,
        worker_concurrency=int(concurrency) if concurrency else None,
    )
    print("worker ready", file=sys.stderr, flush=True)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
    DBOS.destroy()


if __name__ == "__main__":
    if sys.argv[1:2] == ["bare"]:
        bare_worker(sys.argv[2])
