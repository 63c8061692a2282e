"""Static checks of the public API's types, run by mypy in CI (never executed by pytest)."""

from __future__ import annotations

from typing import assert_type

from agents import Agent

import timestep
from timestep import DurableRunResult, DurableRunResultStreaming


async def run_agent_result_types(agent: Agent[None], flag: bool) -> None:
    assert_type(await timestep.run_agent(agent, "x"), DurableRunResult)
    assert_type(await timestep.run_agent(agent, "x", stream=False), DurableRunResult)
    assert_type(await timestep.run_agent(agent, "x", stream=True), DurableRunResultStreaming)
    assert_type(await timestep.run_agent(agent, "x", None, True), DurableRunResultStreaming)
    assert_type(
        await timestep.run_agent(agent, "x", stream=flag),
        DurableRunResult | DurableRunResultStreaming,
    )
    streamed = await timestep.run_agent(agent, "x", stream=True)
    assert_type(await timestep.consume_result(streamed), DurableRunResultStreaming)
    assert_type(await timestep.resume("run"), DurableRunResult)
