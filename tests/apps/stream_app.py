"""A streamed durable run that can die mid-stream.

    python -m tests.apps.stream_app DB_URL LOG RUN_ID MODE [CRASH]

MODE `run` streams the run and prints the concatenated deltas; `recover` registers the agent,
launches and waits for the run to finish. CRASH `mid_stream` kills the process (os._exit) after
the second delta of the final answer; `after_model` kills it right after the final answer's
model call is recorded (from the agent's `on_llm_end` hook), before the stream writer's time
window has passed.

With `TIMESTEP_TEST_GATE=PATH`, the final answer's first delta waits (without blocking the event
loop) until the file PATH exists, logging `gate_wait` and then `gate_open`: the run cannot finish
before the test opens the gate. After two minutes without it the run goes on, logging
`gate_timeout`, so that a test waiting for something that never happens fails instead of hanging.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

from agents import Agent, AgentHooks, function_tool

import timestep
from tests.helpers import ExecutionLog, StreamingTurnModel

db_url, log_path, run_id, mode = sys.argv[1:5]
crash = sys.argv[5] if len(sys.argv) > 5 else "none"
delay = float(os.environ.get("TIMESTEP_TEST_DELAY", "0.02"))
log = ExecutionLog(log_path)


def on_delta(turn: int, index: int) -> None:
    if crash == "mid_stream" and index == 2:
        log.write("crash", at="mid_stream")
        os._exit(3)


@function_tool
def record(n: int) -> str:
    """Record step n."""
    log.write("tool", n=n)
    return f"recorded {n}"


gate = os.environ.get("TIMESTEP_TEST_GATE")


class GatedModel(StreamingTurnModel):
    async def stream_response(  # type: ignore[override]
        self, *args: Any, **kwargs: Any
    ) -> AsyncIterator[Any]:
        waited = False
        async for event in super().stream_response(*args, **kwargs):
            if gate and not waited and getattr(event, "type", "") == "response.output_text.delta":
                waited = True
                log.write("gate_wait")
                give_up = time.monotonic() + 120
                while not os.path.exists(gate):
                    if time.monotonic() > give_up:
                        log.write("gate_timeout")
                        break
                    await asyncio.sleep(0.02)
                else:
                    log.write("gate_open")
            yield event


class CrashAfterModel(AgentHooks[Any]):
    async def on_llm_end(self, context: Any, agent: Any, response: Any) -> None:
        if crash == "after_model" and any(item.type == "message" for item in response.output):
            log.write("crash", at="after_model")
            os._exit(3)


agent = Agent(
    name="Streamer",
    hooks=CrashAfterModel(),
    model=GatedModel(
        [[("record", {"n": 1})]],
        final="one two three four five",
        log=log,
        delay=delay,
        on_delta=on_delta,
    ),
    tools=[record],
)


async def main() -> None:
    timestep.configure(database_url=db_url)
    if mode == "run":
        result = await timestep.run_agent(agent, "go", stream=True, run_id=run_id)
        text = ""
        async for event in result.stream_events():
            data = getattr(event, "data", None)
            if getattr(data, "type", None) == "response.output_text.delta":
                text += data.delta
        print(json.dumps({"deltas": text, "final_output": result.final_output}))
        return
    timestep.register_agent(agent)
    timestep.launch()
    while (await timestep.get_run(run_id)).status not in ("completed", "failed"):
        await asyncio.sleep(0.1)
    print(json.dumps({"status": (await timestep.get_run(run_id)).status}))


if __name__ == "__main__":
    asyncio.run(main())
