"""A DBOS application of its own that hosts an agent run inside its own workflow.

    python -m tests.apps.dbos_app DB_URL LOG WORKFLOW_ID EXECUTOR_ID MODE

It does what the README tells a DBOS application to do: import Timestep, register its agents,
build its own `DBOS(config=...)` and launch it. Its `@DBOS.workflow` `handle_ticket` calls
`timestep.run_agent` (looked up when the workflow runs, so nothing but `register_agent` has
imported Timestep's engine before launch). The agent's tool kills the process (`os._exit`) inside
its second call when MODE is `crash`.

MODE: `run` (start the workflow and wait for it), `crash` (the same, dying inside the tool) or
`recover` (only launch: DBOS's own recovery must finish the workflow) then wait for it.
Prints {"output": ...}.
"""

from __future__ import annotations

import json
import os
import sys

from agents import Agent, function_tool
from dbos import DBOS, DBOSPortableJSONSerializer, SetWorkflowID

import timestep
from tests.helpers import ExecutionLog, TurnModel

db_url, log_path, workflow_id, executor_id, mode = sys.argv[1:6]
log = ExecutionLog(log_path)


@function_tool
def record(n: int) -> str:
    """Record that step n happened (the side effect)."""
    log.write("tool", n=n, pid=os.getpid())
    if mode == "crash" and n == 2:
        log.write("crash", pid=os.getpid())
        os._exit(3)
    return f"recorded {n}"


agent = Agent(
    name="Clerk",
    instructions="Record two steps.",
    model=TurnModel([[("record", {"n": 1})], [("record", {"n": 2})]], final="filed", log=log),
    tools=[record],
)

timestep.register_agent(agent)


@DBOS.workflow()
async def handle_ticket(text: str) -> str:
    result = await timestep.run_agent(agent, text, run_id=f"{DBOS.workflow_id}-agent")
    return f"{result.final_output} ({text})"


DBOS(
    config={
        "name": "ticket-app",
        "system_database_url": db_url,
        "serializer": DBOSPortableJSONSerializer(),
        "executor_id": executor_id,
        "application_version": "tickets-1",
    }
)
DBOS.launch()


def main() -> None:
    if mode == "recover":
        output = DBOS.retrieve_workflow(workflow_id).get_result()
    else:
        with SetWorkflowID(workflow_id):
            output = DBOS.start_workflow(handle_ticket, "ticket 7").get_result()
    print(json.dumps({"output": output}))
    DBOS.destroy()


if __name__ == "__main__":
    main()
