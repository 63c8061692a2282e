"""The app of the tests on stores written by the original timestep 2026.0.8
(tests/interop/original/): its `Weather Assistant` with `get_weather(city)` needing approval,
answering from the tool's output once resumed. Tool executions land in `executions`; the model
records every input it is given (`model.inputs`)."""

from __future__ import annotations

from typing import Any

from agents import Agent, RunContextWrapper, function_tool

from tests.interop import _harness

executions: list[dict[str, Any]] = []
model = _harness.ScriptedModel([])


@function_tool(needs_approval=True)
def get_weather(ctx: RunContextWrapper[Any], city: str) -> str:
    """Get the weather for a city."""
    executions.append({"city": city})
    return f"sunny in {city}"


weather = Agent(
    name="Weather Assistant",
    instructions="You answer questions about the weather.",
    tools=[get_weather],
    model=model,
)
