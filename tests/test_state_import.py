"""Importing a parked state writes all of it or nothing. SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from agents import Agent, Runner, function_tool

import timestep
from timestep import handover
from timestep.state import records

from .helpers import TurnModel


def two_call_agent() -> Agent[Any]:
    @function_tool(needs_approval=True)
    def send(to: str) -> str:
        """Send to someone."""
        return f"sent to {to}"

    script = [[("send", {"to": "ann"}), ("send", {"to": "bob"})]]
    return Agent(name="Importer", model=TurnModel(script, final="sent"), tools=[send])


async def parked_state_with_one_decision(agent: Agent[Any]) -> str:
    result = await Runner.run(agent, "send both")
    state = result.to_state()
    first = state.get_interruptions()[0]
    state.approve(first)
    return state.to_string()


async def test_an_import_that_fails_midway_leaves_no_run(
    timestep_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = two_call_agent()
    timestep.register_agent(agent)
    text = await parked_state_with_one_decision(agent)

    def broken_row(*args: Any, **kwargs: Any) -> dict[str, Any]:
        raise RuntimeError("the database went away while the decisions were written")

    # The run row is written first, then the decision the state carries: fail at the second.
    with monkeypatch.context() as patched:
        patched.setattr(records, "_decision_row", broken_row)
        with pytest.raises(RuntimeError, match="went away"):
            await handover.import_run_state(text, app=None, run_id="half")
    with pytest.raises(timestep.RunNotFoundError):
        await timestep.get_run("half")

    imported = await handover.import_run_state(text, app=None, run_id="whole")
    assert imported.status == "awaiting_approval"
    shown = await timestep.get_run("whole")
    assert [c["decision"] for c in shown.pending_approvals] == ["approve", None]
