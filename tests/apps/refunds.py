"""Three versions of one agent, `Refunder`, for the agent-version tests (issue 23).

- v1: `lookup` and `refund` (needs approval).
- v2: other instructions, `refund`'s body changed (same name and schema), `audit` added:
  compatible with runs parked on v1.
- v3: `refund` renamed `issue_refund`: incompatible with runs that called or wait on `refund`.

`refunds_v1`, `refunds_v2` and `refunds_v3` are the app modules (`--app`); this module also
drives a run from a process of one version:

    python -m tests.apps.refunds VERSION MODE RUN...   (MODE: start | approve | approve-resume)

and prints one JSON line per run: {"run_id", "status", "output"} or {"run_id", "error",
"message"}. Real executions go to the log TIMESTEP_TEST_LOG names, with the version and run.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

from agents import Agent, FunctionTool, function_tool

import timestep
from tests.helpers import ExecutionLog, TurnModel

log = ExecutionLog(os.environ.get("TIMESTEP_TEST_LOG", os.devnull))


def build(version: str) -> Agent[Any]:
    """The `Refunder` agent as version `version` ("v1", "v2", "v3") defines it."""

    @function_tool
    def lookup(order: str) -> str:
        """Look an order up."""
        log.write("tool", name="lookup", version=version, key=timestep.idempotency_key())
        return f"order {order}: 5 EUR"

    def refund_body(order: str, amount: float) -> str:
        log.write("tool", name="refund", version=version, key=timestep.idempotency_key())
        return f"refunded {amount} on {order} ({version})"

    refund_name = "issue_refund" if version == "v3" else "refund"
    refund: FunctionTool = function_tool(
        refund_body, name_override=refund_name, needs_approval=True
    )
    tools: list[Any] = [lookup, refund]
    if version != "v1":

        @function_tool
        def audit(order: str) -> str:
            """Write an audit line."""
            return "audited"

        tools.append(audit)
    return Agent(
        name="Refunder",
        instructions="Refund what is asked." if version == "v1" else f"Refund ({version}).",
        model=TurnModel(
            [[("lookup", {"order": "o-1"})], [(refund_name, {"order": "o-1", "amount": 5})]],
            final="refund handled",
            log=log,
        ),
        tools=tools,
    )


async def _drive(version: str, mode: str, run_ids: list[str]) -> None:
    module = __import__(f"tests.apps.refunds_{version}", fromlist=["refunder"])
    agent = module.refunder
    for run_id in run_ids:
        try:
            if mode == "start":
                result = await timestep.run_agent(agent, "refund order o-1", run_id=run_id)
            elif mode == "approve":  # a decider: the run goes on where its version is
                await timestep.approve(run_id)
                print(json.dumps({"run_id": run_id, "status": "approved"}), flush=True)
                continue
            else:
                await timestep.approve(run_id)
                result = await timestep.resume(run_id)
            record = await timestep.get_run(run_id)
            line = {"run_id": run_id, "status": record.status, "output": result.final_output}
        except timestep.TimestepError as exc:
            line = {"run_id": run_id, "error": type(exc).__name__, "message": str(exc)}
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    asyncio.run(_drive(sys.argv[1], sys.argv[2], sys.argv[3:]))
