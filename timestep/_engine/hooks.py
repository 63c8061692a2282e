"""Run and agent hooks in a durable run fire for live work only.

A recovered segment replays its recorded model and tool calls. The SDK would fire
`on_llm_start`/`on_llm_end` and `on_tool_start`/`on_tool_end` for each of them again, so a hook
that bills, counts or notifies would do it twice. Timestep hands the SDK wrappers of the run's
`RunHooks` and of every agent's `AgentHooks` that leave those four out for a call whose output
comes from its record. A call that was in flight when the process died is live again: its hooks
fire again. The other hooks (`on_agent_start`/`on_start`, `on_agent_end`/`on_end`, `on_handoff`)
fire on every execution, replays included: they mark where the run is, not work done.
"""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

from agents import Agent, AgentHooks, RunHooks
from dbos import DBOS

from .segment import Segment, current_segment


def _segment() -> Segment | None:
    return current_segment()


def _starts_live() -> bool:
    segment = _segment()
    return segment is None or not segment.next_step_replays()


def _ended_live() -> bool:
    segment = _segment()
    return segment is None or not segment.last_model_call_replayed


def _tool_live(context: Any, *, started: bool) -> bool:
    segment = _segment()
    call_id = getattr(context, "tool_call_id", None)
    if segment is None or not isinstance(call_id, str):
        return True
    if started:
        return not segment.call_replays(call_id)
    return call_id not in segment.replayed_calls


class _QuietForReplays:
    """The hooks about model and tool calls, left out for a call replayed from its record."""

    inner: Any

    async def on_llm_start(self, context: Any, agent: Any, *args: Any) -> None:
        if _starts_live():
            await self.inner.on_llm_start(context, agent, *args)

    async def on_llm_end(self, context: Any, agent: Any, response: Any) -> None:
        if _ended_live():
            await self.inner.on_llm_end(context, agent, response)

    async def on_tool_start(self, context: Any, agent: Any, tool: Any) -> None:
        if _tool_live(context, started=True):
            await self.inner.on_tool_start(context, agent, tool)

    async def on_tool_end(self, context: Any, agent: Any, tool: Any, result: Any) -> None:
        if _tool_live(context, started=False):
            await self.inner.on_tool_end(context, agent, tool, result)


class LiveOnlyRunHooks(_QuietForReplays, RunHooks[Any]):
    """A run's `RunHooks`, quiet for recorded calls (see the module's docstring)."""

    def __init__(self, inner: RunHooks[Any]) -> None:
        self.inner = inner

    async def on_agent_start(self, context: Any, agent: Any) -> None:
        await self.inner.on_agent_start(context, agent)

    async def on_agent_end(self, context: Any, agent: Any, output: Any) -> None:
        await self.inner.on_agent_end(context, agent, output)

    async def on_handoff(self, context: Any, from_agent: Any, to_agent: Any) -> None:
        await self.inner.on_handoff(context, from_agent, to_agent)


class LiveOnlyAgentHooks(_QuietForReplays, AgentHooks[Any]):
    """An agent's `AgentHooks`, quiet for recorded calls (see the module's docstring)."""

    def __init__(self, inner: AgentHooks[Any]) -> None:
        self.inner = inner

    async def on_start(self, context: Any, agent: Any) -> None:
        await self.inner.on_start(context, agent)

    async def on_end(self, context: Any, agent: Any, output: Any) -> None:
        await self.inner.on_end(context, agent, output)

    async def on_handoff(self, context: Any, agent: Any, source: Any) -> None:
        await self.inner.on_handoff(context, agent, source)


def live_only_run_hooks(hooks: RunHooks[Any] | None) -> RunHooks[Any] | None:
    return None if hooks is None else LiveOnlyRunHooks(hooks)


def live_only_agent_hooks(hooks: AgentHooks[Any] | None) -> AgentHooks[Any] | None:
    if hooks is None or isinstance(hooks, LiveOnlyAgentHooks):
        return hooks
    return LiveOnlyAgentHooks(hooks)


def any_agent_hooks(agent: Agent[Any]) -> bool:
    from .registry import walk_agents

    return any(a.hooks is not None for a in walk_agents(agent, through_agent_tools=True))


async def recorded_step_ids(workflow_id: str) -> frozenset[int]:
    """The ids of the steps of `workflow_id` that have a recorded output (none on a first
    execution): what a recovered segment will replay."""

    def read() -> frozenset[int]:
        steps = DBOS.list_workflow_steps(workflow_id)
        return frozenset(s["function_id"] for s in steps if s["completed_at_epoch_ms"] is not None)

    # In a context of its own: from the workflow's, DBOS would record the listing as a step
    # (and a replay would get the listing of the first execution back).
    fresh = contextvars.Context()
    return await asyncio.get_running_loop().run_in_executor(None, fresh.run, read)
