"""Making an SDK run durable: model calls, tool calls and session writes become DBOS steps.

The SDK's `Runner` runs unchanged inside a DBOS workflow. Timestep hands it a copy of the agent
graph whose models and function tools are wrapped, and a model provider that wraps whatever
model it resolves. On replay every recorded step returns its recorded output instead of
calling the model, the tool or the session again.

Step order must be the same on replay. Model calls and session calls are sequential. Tool calls
of one model response run concurrently and may reach their step in any order, or not at all
(a call waiting for approval never runs), so each function call of a response gets a DBOS step
id reserved for it (`DBOS.reserve_step`), in response order, when the response is returned; the
tool's step runs at its reserved id whatever order the calls arrive in.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import Any

from agents import Agent, FunctionTool, Handoff, Model, ModelProvider, RunConfig
from agents.items import ModelResponse, TResponseStreamEvent
from agents.memory import Session
from agents.tool_context import ToolContext
from agents.usage import Usage
from dbos import DBOS, StepOptions, StepReservation
from pydantic_core import to_jsonable_python

from .. import config
from .codecs import (
    decode_model_response,
    decode_tool_output,
    encode_model_response,
    encode_tool_output,
    recorded_model_name,
)
from .naming import MODEL_STEP_NAME, TOOL_STEP_NAME
from .transient import is_transient

_UNRECORDED_ATTR = "_timestep_unrecorded"
logger = logging.getLogger("timestep")


@dataclass
class Segment:
    """What the wrappers of one running segment share."""

    run_id: str
    """The run this segment belongs to."""

    tool_slots: dict[str, StepReservation] = field(default_factory=dict)
    """DBOS step ids reserved for function calls that have not run yet, by call id."""

    usage_by_model: dict[str, Usage] = field(default_factory=dict)
    """Usage of the segment's model calls (recorded ones replayed included), by model name."""

    def count_usage(self, model_name: str, usage: Usage) -> None:
        self.usage_by_model.setdefault(model_name, Usage()).add(usage)

    def reserve_tool_slots(self, call_ids: list[str]) -> None:
        if DBOS.workflow_id is None:
            return
        for call_id in call_ids:
            self.tool_slots[call_id] = DBOS.reserve_step()


_segment: ContextVar[Segment | None] = ContextVar("timestep_segment", default=None)
_tool_call: ContextVar[tuple[str, str] | None] = ContextVar("timestep_tool_call", default=None)

after_step_hooks: list[Callable[[str, str], None]] = []
"""Called with (step kind, detail) right after a step's output is recorded or replayed.

A seam for crash tests that must stop a process exactly at a step boundary."""


def current_segment() -> Segment | None:
    return _segment.get()


def enter_segment(segment: Segment) -> Token[Segment | None]:
    return _segment.set(segment)


def reset_segment(token: Token[Segment | None]) -> None:
    _segment.reset(token)


def current_tool_call() -> tuple[str, str] | None:
    """(run id, call id) of the tool call running in this task, if any."""
    return _tool_call.get()


def _fire_hooks(kind: str, detail: str) -> None:
    for hook in after_step_hooks:
        hook(kind, detail)


# --- steps -------------------------------------------------------------------------------


MODEL_STEP: StepOptions = {"name": MODEL_STEP_NAME}


async def _run_model_call(
    model_name: str, call: Callable[[], Awaitable[ModelResponse]]
) -> dict[str, Any]:
    return encode_model_response(await call(), model_name)


async def with_model_retries(
    call: Callable[[], Awaitable[ModelResponse]], retryable: Callable[[], bool] = lambda: True
) -> ModelResponse:
    """`call`, tried again inside its step on transient provider failures while `retryable()`
    (`configure(model_retry=...)`); the last failure is raised as it is."""
    policy = config.settings().model_retry
    wait = policy.interval_seconds
    for attempt in range(1, policy.max_attempts + 1):
        try:
            return await call()
        except Exception as exc:
            if attempt == policy.max_attempts or not is_transient(exc) or not retryable():
                raise
            logger.warning(
                "timestep: model call failed (%s); attempt %d of %d in %.1f s",
                exc,
                attempt + 1,
                policy.max_attempts,
                wait,
            )
        await asyncio.sleep(wait)
        wait *= policy.backoff_rate
    raise AssertionError("unreachable")


TOOL_STEP: StepOptions = {"name": TOOL_STEP_NAME}


async def _run_tool_call(tool_name: str, call_id: str, call: Callable[[], Awaitable[Any]]) -> Any:
    return encode_tool_output(tool_name, call_id, await call())


@DBOS.step(name="timestep.session")
async def _session_step(call: Callable[[], Awaitable[Any]]) -> Any:
    return to_jsonable_python(await call())


# --- models ------------------------------------------------------------------------------


def _function_call_ids(response: ModelResponse) -> list[str]:
    ids = []
    for item in response.output:
        item_type = getattr(item, "type", None) or (
            item.get("type") if isinstance(item, dict) else None
        )
        if item_type == "function_call":
            call_id = getattr(item, "call_id", None) or (
                item.get("call_id") if isinstance(item, dict) else None
            )
            if call_id:
                ids.append(call_id)
    return ids


def name_of_model(model: Model, requested: str | None = None) -> str:
    """The name a model's usage is reported under: the name the run asked for, else the
    model's own `model` attribute (the SDK's OpenAI models have one), else its class."""
    if requested:
        return requested
    own = getattr(model, "model", None)
    return own if isinstance(own, str) and own else type(model).__name__


class DurableModel(Model):
    """A model whose every response is recorded as a DBOS step."""

    def __init__(self, inner: Model, name: str | None = None) -> None:
        self.inner = inner
        self.name = name or name_of_model(inner)

    async def get_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
        segment = current_segment()
        if segment is None:
            return await self.inner.get_response(*args, **kwargs)
        live: list[ModelResponse] = []

        async def call() -> ModelResponse:
            live.append(
                await with_model_retries(lambda: self.inner.get_response(*args, **kwargs))
            )
            return live[0]

        record = await DBOS.run_step_async(MODEL_STEP, _run_model_call, self.name, call)
        # Decode only on replay: a live call already has the response in hand.
        response = live[0] if live else decode_model_response(record)
        after_model_step(segment, record, response, self.name)
        return response

    def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[TResponseStreamEvent]:
        from .streaming import stream_recorded

        return stream_recorded(self, *args, **kwargs)

    async def close(self) -> None:
        await self.inner.close()


def after_model_step(
    segment: Segment, record: dict[str, Any], response: ModelResponse, name: str
) -> None:
    """What follows every recorded model call, live or replayed."""
    segment.count_usage(recorded_model_name(record) or name, response.usage)
    segment.reserve_tool_slots(_function_call_ids(response))
    _fire_hooks("model", response.response_id or "")


class DurableModelProvider(ModelProvider):
    """Wraps every model that `inner` resolves in a `DurableModel`."""

    def __init__(self, inner: ModelProvider) -> None:
        self.inner = inner

    def get_model(self, model_name: str | None) -> Model:
        model = self.inner.get_model(model_name)
        return DurableModel(model, name_of_model(model, model_name))

    async def aclose(self) -> None:
        await self.inner.aclose()


def durable_run_config(run_config: RunConfig | None, default_provider: ModelProvider) -> RunConfig:
    """A copy of `run_config` whose models, however given, are recorded."""
    config = run_config or RunConfig(model_provider=default_provider)
    provider = config.model_provider
    changes: dict[str, Any] = {"model_provider": DurableModelProvider(provider)}
    if isinstance(config.model, Model) and not isinstance(config.model, DurableModel):
        changes["model"] = DurableModel(config.model)
    return dataclasses.replace(config, **changes)


# --- tools -------------------------------------------------------------------------------


def unrecorded(tool: FunctionTool) -> FunctionTool:
    """Opt `tool` out of recording: it runs again whenever its call is replayed.

    For tools that are cheap, pure, or that must observe the present (a clock, a cache).
    """
    setattr(tool, _UNRECORDED_ATTR, True)
    return tool


def _durable_tool(tool: FunctionTool) -> FunctionTool:
    original = tool.on_invoke_tool

    async def invoke(context: ToolContext[Any], arguments: str) -> Any:
        segment = current_segment()
        call_id = context.tool_call_id
        if segment is None or DBOS.workflow_id is None:
            return await original(context, arguments)
        reserved = segment.tool_slots.pop(call_id, None)
        token = _tool_call.set((segment.run_id, call_id))
        try:
            name, call = tool.name, lambda: original(context, arguments)
            if reserved is not None:
                record = await reserved.run_async(TOOL_STEP, _run_tool_call, name, call_id, call)
            else:
                record = await DBOS.run_step_async(TOOL_STEP, _run_tool_call, name, call_id, call)
        finally:
            _tool_call.reset(token)
        output = decode_tool_output(record, call_id)
        _fire_hooks("tool", call_id)
        return output

    return dataclasses.replace(tool, on_invoke_tool=invoke)


# --- agents ------------------------------------------------------------------------------


class _GraphWrapper:
    """Copies an agent graph with durable models and tools, keeping cycles intact."""

    def __init__(self) -> None:
        self._copies: dict[int, Agent[Any]] = {}

    def agent(self, agent: Agent[Any]) -> Agent[Any]:
        existing = self._copies.get(id(agent))
        if existing is not None:
            return existing
        changes: dict[str, Any] = {}
        if isinstance(agent.model, Model) and not isinstance(agent.model, DurableModel):
            changes["model"] = DurableModel(agent.model)
        changes["tools"] = [
            _durable_tool(tool)
            if isinstance(tool, FunctionTool) and not getattr(tool, _UNRECORDED_ATTR, False)
            else tool
            for tool in agent.tools
        ]
        copy = agent.clone(**changes)
        self._copies[id(agent)] = copy
        copy.handoffs = [self._handoff(h) for h in agent.handoffs]
        return copy

    def _handoff(self, handoff: Agent[Any] | Handoff[Any, Any]) -> Agent[Any] | Handoff[Any, Any]:
        if isinstance(handoff, Agent):
            return self.agent(handoff)
        original = handoff.on_invoke_handoff

        async def invoke(*args: Any, **kwargs: Any) -> Agent[Any]:
            return self.agent(await original(*args, **kwargs))

        return dataclasses.replace(handoff, on_invoke_handoff=invoke)


def durable_agent(agent: Agent[Any]) -> Agent[Any]:
    """A copy of `agent`'s graph whose models and function tools are recorded steps."""
    return _GraphWrapper().agent(agent)


# --- sessions ----------------------------------------------------------------------------


class ReplaySafeSession:
    """A session whose reads and writes are steps, so a replayed segment adds nothing twice."""

    def __init__(self, inner: Session) -> None:
        self.inner = inner
        self.session_id = inner.session_id
        self.session_settings = getattr(inner, "session_settings", None)

    async def get_items(self, limit: int | None = None) -> list[Any]:
        items = await _session_step(lambda: self.inner.get_items(limit))
        return list(items)

    async def add_items(self, items: list[Any]) -> None:
        await _session_step(lambda: self.inner.add_items(items))

    async def pop_item(self) -> Any:
        return await _session_step(lambda: self.inner.pop_item())

    async def clear_session(self) -> None:
        await _session_step(lambda: self.inner.clear_session())
