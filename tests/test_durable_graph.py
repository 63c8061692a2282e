"""The durable copy of an agent graph is made once, and made again whenever the graph changes.

`durable_agent` keeps the copy it made for a graph (cloning agents and tools on every run cost
as much Python work as a recorded step); a kept copy that no longer matches its graph would run
old instructions or old tools, so every way of changing a graph must give a new copy.
"""

from __future__ import annotations

import gc
import weakref
from typing import Any

from agents import Agent, FunctionTool, function_tool, handoff

from timestep import unrecorded
from timestep._engine import durable
from timestep._engine.model_calls import DurableModel

from .helpers import TurnModel


@function_tool
def lookup(key: str) -> str:
    """Look a key up."""
    return key


@function_tool
def store(key: str) -> str:
    """Store a key."""
    return key


def graph() -> tuple[Agent[Any], Agent[Any]]:
    helper = Agent(name="helper", instructions="help", model=TurnModel([]), tools=[store])
    root = Agent(
        name="root", instructions="route", model=TurnModel([]), tools=[lookup], handoffs=[helper]
    )
    return root, helper


def tool_names(agent: Agent[Any]) -> list[str]:
    return [tool.name for tool in agent.tools]


def is_recorded(tool: Any) -> bool:
    invoke = getattr(tool, "on_invoke_tool", None)
    return isinstance(tool, FunctionTool) and getattr(invoke, "__qualname__", "").startswith(
        "_durable_tool"
    )


def test_an_unchanged_graph_reuses_its_copy() -> None:
    root, _helper = graph()
    copy = durable.durable_agent(root)
    assert durable.durable_agent(root) is copy
    assert copy is not root and isinstance(copy.model, DurableModel)
    assert all(is_recorded(tool) for tool in copy.tools)
    handed_to = copy.handoffs[0]
    assert isinstance(handed_to, Agent) and handed_to.name == "helper"
    assert all(is_recorded(tool) for tool in handed_to.tools)


def test_every_change_to_the_graph_gives_a_new_copy() -> None:
    root, helper = graph()
    first = durable.durable_agent(root)

    root.instructions = "route carefully"
    second = durable.durable_agent(root)
    assert second is not first and second.instructions == "route carefully"

    root.tools.append(store)  # the list changed in place
    third = durable.durable_agent(root)
    assert third is not second and tool_names(third) == ["lookup", "store"]

    helper.instructions = "help more"  # an agent reached through a handoff
    fourth = durable.durable_agent(root)
    assert fourth is not third
    handed_to = fourth.handoffs[0]
    assert isinstance(handed_to, Agent) and handed_to.instructions == "help more"

    unrecorded(lookup)  # opting a tool out of recording
    try:
        fifth = durable.durable_agent(root)
        assert fifth is not fourth
        assert [is_recorded(tool) for tool in fifth.tools] == [False, True]
    finally:
        delattr(lookup, "_timestep_unrecorded")

    root.model = TurnModel([])
    sixth = durable.durable_agent(root)
    assert sixth is not fifth and isinstance(sixth.model, DurableModel)
    assert sixth.model.inner is root.model

    store.description = "Store a key for later."  # a field of a tool the copy wraps
    try:
        seventh = durable.durable_agent(root)
        assert seventh is not sixth
        assert seventh.tools[1].description == "Store a key for later."
    finally:
        store.description = "Store a key."


def test_kept_copies_are_bounded() -> None:
    """A process that builds its agents per request does not keep every one of them."""
    built = [Agent(name=f"per-request-{index}", instructions="x") for index in range(3)]
    alive = [weakref.ref(agent) for agent in built]
    for agent in built:
        durable.durable_agent(agent)
    del agent, built
    for index in range(durable._KEPT_GRAPHS):
        durable.durable_agent(Agent(name=f"filler-{index}", instructions="x"))
    gc.collect()
    assert len(durable._graph_copies) <= durable._KEPT_GRAPHS
    assert [ref() for ref in alive] == [None, None, None]


async def test_an_agent_a_handoff_builds_at_run_time_is_copied_not_kept_by_the_graph() -> None:
    made: list[Agent[Any]] = []

    async def build(_context: Any, _arguments: str) -> Agent[Any]:
        made.append(Agent(name="built", instructions="built", tools=[lookup]))
        return made[-1]

    spec = handoff(Agent(name="template", instructions="t"))
    spec.on_invoke_handoff = build
    root = Agent(name="dynamic-root", instructions="route", handoffs=[spec])
    copy = durable.durable_agent(root)
    wrapped = copy.handoffs[0]
    assert not isinstance(wrapped, Agent)
    first = await wrapped.on_invoke_handoff(None, "{}")  # type: ignore[arg-type]
    assert first is not made[0] and all(is_recorded(tool) for tool in first.tools)
    second = await wrapped.on_invoke_handoff(None, "{}")  # type: ignore[arg-type]
    assert second is not first and second is not made[1]
