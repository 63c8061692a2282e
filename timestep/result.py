"""Results of durable runs: the SDK's result classes with the run id.

`DurableRunResult` is a `RunResult` and `DurableRunResultStreaming` a `RunResultStreaming`:
every attribute of the SDK's result is there (`final_output`, `new_items`, `raw_responses`,
`interruptions`, `last_agent`, `context_wrapper.usage`, `to_state()`), plus `run_id`.

A run that finished in this process returns its live result. A run that finished elsewhere
(another process, before a crash) is rebuilt from its stored state with the same attributes; a
rebuilt streaming result is complete and its `stream_events()` yields nothing (the run's
durable stream, `timestep.stream_events(run_id)`, still holds every event).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, overload

from agents import Agent, AgentOutputSchema, RunResult, RunResultStreaming, RunState
from agents.stream_events import StreamEvent

from ._compat import agents as agents_compat
from .errors import StateError


@dataclass
class DurableRunResult(RunResult):
    """The SDK's `RunResult` of a durable run."""

    run_id: str = ""
    """The run's id: pass it to `get_run`, `approve`, `reject`, `resume`, `fork`."""

    @classmethod
    def adopt(cls, result: RunResult, run_id: str) -> DurableRunResult:
        """The live result of a segment that finished in this process, with its run id."""
        self = agents_compat.adopt_result(result, cls)  # the adopted instance
        self.run_id = run_id
        return self


@dataclass
class DurableRunResultStreaming(RunResultStreaming):
    """The SDK's `RunResultStreaming` of a durable run.

    `stream_events()` ends only once the run's segment is recorded (its outcome stored), so a
    caller may end its event loop right after the last event; an error the run ended with is
    raised from it as the SDK's own would be.
    """

    run_id: str = ""
    """The run's id: pass it to `get_run`, `stream_events`, `approve`, `reject`, `resume`."""

    _recorded: Callable[[], Awaitable[None]] | None = field(default=None, repr=False)
    """Waits until the segment is recorded, raising the error it ended with."""

    _run_loop: asyncio.AbstractEventLoop | None = field(default=None, repr=False)
    """The event loop the run executes on when that is not the caller's (a segment DBOS runs
    on its own loop after taking it over from a dead process)."""

    @classmethod
    def adopt(
        cls,
        result: RunResultStreaming,
        run_id: str,
        recorded: Callable[[], Awaitable[None]],
        run_loop: asyncio.AbstractEventLoop,
    ) -> DurableRunResultStreaming:
        """The live streaming result of a segment running in this process on `run_loop`."""
        self = agents_compat.adopt_result(result, cls)  # the adopted instance
        self.run_id, self._recorded, self._run_loop = run_id, recorded, run_loop
        return self

    async def stream_events(self) -> AsyncIterator[StreamEvent]:
        here = asyncio.get_running_loop()
        events = super().stream_events()
        if self._run_loop is not None and self._run_loop is not here:
            events = _from_loop(events, self._run_loop)
        async for event in events:
            yield event
        if self._recorded is not None:
            await self._recorded()


async def _from_loop(
    events: AsyncIterator[StreamEvent], loop: asyncio.AbstractEventLoop
) -> AsyncIterator[StreamEvent]:
    """Iterate `events`, an iterator bound to another event loop, one event at a time there."""
    while True:
        step = asyncio.run_coroutine_threadsafe(_next_or_none(events), loop)
        event = await asyncio.wrap_future(step)
        if event is None:
            return
        yield event


async def _next_or_none(iterator: AsyncIterator[StreamEvent]) -> StreamEvent | None:
    try:
        return await iterator.__anext__()
    except StopAsyncIteration:
        return None


def _decode_final_output(agent: Agent[Any], value: Any) -> Any:
    output_type = agent.output_type
    if value is None or output_type is None or output_type is str:
        return value
    schema = output_type if not isinstance(output_type, type) else AgentOutputSchema(output_type)
    return schema.validate_json(json.dumps(value))


@overload
async def rebuild_result(
    agent: Agent[Any],
    run_id: str,
    state_json: dict[str, Any] | None,
    final_output: Any,
    streamed: Literal[False] = False,
) -> DurableRunResult: ...


@overload
async def rebuild_result(
    agent: Agent[Any],
    run_id: str,
    state_json: dict[str, Any] | None,
    final_output: Any,
    streamed: Literal[True],
) -> DurableRunResultStreaming: ...


@overload
async def rebuild_result(
    agent: Agent[Any],
    run_id: str,
    state_json: dict[str, Any] | None,
    final_output: Any,
    streamed: bool,
) -> DurableRunResult | DurableRunResultStreaming: ...


async def rebuild_result(
    agent: Agent[Any],
    run_id: str,
    state_json: dict[str, Any] | None,
    final_output: Any,
    streamed: bool = False,
) -> DurableRunResult | DurableRunResultStreaming:
    """The result the run produced, from its stored state: a finished streaming result when
    `streamed`."""
    if state_json is None:
        raise StateError(f"run {run_id!r} has no stored state to rebuild its result from")
    state = await RunState.from_json(agent, state_json)
    last_agent = agents_compat.state_last_agent(state) or agent
    if agents_compat.state_context(state) is None:
        raise StateError(f"the stored state of run {run_id!r} has no run context")
    output = _decode_final_output(last_agent, final_output)
    if streamed:
        rebuilt_streaming = agents_compat.streamed_result_from_state(
            state, agent, output, DurableRunResultStreaming
        )
        rebuilt_streaming.run_id = run_id
        return rebuilt_streaming
    rebuilt = agents_compat.result_from_state(state, agent, output, DurableRunResult)
    rebuilt.run_id = run_id
    return rebuilt
