"""An agent used as a tool whose own tool needs approval: the whole run parks on it.

python -m tests.apps.nested_app DB_URL LOG MODE     (MODE: run | approve | resume)
"""

from __future__ import annotations

import asyncio
import json
import sys

from agents import Agent, function_tool

import timestep
from tests.helpers import ExecutionLog, TurnModel

db_url, log_path, mode = sys.argv[1:4]
log = ExecutionLog(log_path)


@function_tool(needs_approval=True)
def pay(amount: int) -> str:
    """Pay `amount` (the side effect)."""
    log.write("pay", amount=amount)
    return f"paid {amount}"


payer = Agent(
    name="Payer", model=TurnModel([[("pay", {"amount": 5})]], final="payer paid"), tools=[pay]
)
boss = Agent(
    name="Boss",
    model=TurnModel([[("payer", {"input": "pay 5"})]], final="boss done"),
    tools=[payer.as_tool("payer", "Pay what is asked.")],
)


async def main() -> None:
    timestep.configure(database_url=db_url)
    if mode == "run":
        result = await timestep.run_agent(boss, "go", run_id="N1")
        pending = [(item.tool_name, item.agent.name) for item in result.interruptions]
        print(json.dumps({"pending": pending}))
    elif mode == "approve":
        await timestep.approve("N1")
    else:
        timestep.register_agent(boss)
        result = await timestep.resume("N1")
        print(json.dumps({"final_output": result.final_output}))


if __name__ == "__main__":
    asyncio.run(main())
