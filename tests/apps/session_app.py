"""A durable run with an SDK session of another kind than SQLiteSession, killed inside a tool.

    python -m tests.apps.session_app DB_URL LOG RUN_ID KIND TARGET MODE

KIND: `conversations`, an `OpenAIConversationsSession()` whose conversation is created lazily
(TARGET: the base URL of the fake OpenAI server), or `sqlalchemy`, a `SQLAlchemySession`
(TARGET: its database URL, e.g. sqlite+aiosqlite:///...). MODE: `crash` dies (os._exit) inside
the second tool call; `finish` calls run_agent again with the same run id and a new session
object, as a restarted service does. Prints {"final_output": ...}.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

from agents import Agent, function_tool

import timestep
from tests.helpers import ExecutionLog, TurnModel

db_url, log_path, run_id, kind, target, mode = sys.argv[1:7]
log = ExecutionLog(log_path)


@function_tool
def record(n: int) -> str:
    """Record that step n happened (the side effect)."""
    log.write("tool", n=n)
    if mode == "crash" and n == 2:
        os._exit(3)
    return f"recorded {n}"


def build_agent() -> Agent[Any]:
    return Agent(
        name="Noter",
        instructions="Record two steps.",
        model=TurnModel([[("record", {"n": 1})], [("record", {"n": 2})]], final="noted", log=log),
        tools=[record],
    )


def new_session() -> Any:
    if kind == "conversations":
        from agents.memory import OpenAIConversationsSession
        from openai import AsyncOpenAI

        return OpenAIConversationsSession(openai_client=AsyncOpenAI(base_url=target, api_key="k"))
    from agents.extensions.memory.sqlalchemy_session import SQLAlchemySession

    return SQLAlchemySession.from_url(run_id, url=target, create_tables=True)


async def main() -> None:
    timestep.configure(database_url=db_url)
    result = await timestep.run_agent(build_agent(), "go", session=new_session(), run_id=run_id)
    print(json.dumps({"final_output": result.final_output}))


if __name__ == "__main__":
    asyncio.run(main())
