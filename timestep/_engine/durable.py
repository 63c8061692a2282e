"""Making an SDK run durable: model calls (`model_calls`), tool calls, MCP calls
(`mcp_servers`), guardrails (`guardrails`), handoffs and session writes become DBOS steps, and
hooks fire for live work only (`hooks`).

The SDK's `Runner` runs unchanged inside a DBOS workflow. Timestep hands it a copy of the agent
graph whose models, function tools, MCP servers, guardrails, handoffs and hooks are wrapped,
and a model provider that wraps whatever model it resolves. An agent used as a tool
(`Agent.as_tool`) is not a step of its own: its copy runs a durable copy of the inner agent, so
the inner model and tool calls are steps of the run. On replay every recorded step returns its
recorded output instead of calling the model, the tool, the server or the session again.

Step order must be the same on replay. Model calls and session calls are sequential. Tool calls
of one model response run concurrently and may reach their step in any order, or not at all
(a call waiting for approval never runs), so each function call of a response gets a DBOS step
id reserved for it (`DBOS.reserve_step`), in response order, when the response is returned; the
tool's step runs at its reserved id whatever order the calls arrive in.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from agents import Agent, FunctionTool, Handoff, Model, ModelProvider, RunConfig
from agents.memory import OpenAIConversationsSession, Session
from agents.run_config import ToolExecutionConfig
from agents.tool_context import ToolContext
from dbos import DBOS, StepOptions
from pydantic_core import to_jsonable_python

from .._compat import agents as agents_compat
from ..errors import ReplayMismatchError
from . import stopping
from .codecs import decode_tool_output, encode_tool_output
from .guardrails import durable_input_guardrails, durable_output_guardrails
from .hooks import live_only_agent_hooks
from .mcp_servers import durable_servers
from .model_calls import DurableModel, DurableModelProvider
from .naming import HANDOFF_STEP_NAME
from .registry import walk_agents
from .segment import (
    TOOL_STEP,
    UNINTERRUPTIBLE_TOOL_STEP,
    current_segment,
    enter_tool_call,
    fire_hooks,
    in_workflow_body,
    leave_tool_call,
)

_UNRECORDED_ATTR = "_timestep_unrecorded"
_UNINTERRUPTIBLE_ATTR = "_timestep_uninterruptible"


# --- steps -------------------------------------------------------------------------------


async def _run_tool_call(tool_name: str, call_id: str, call: Callable[[], Awaitable[Any]]) -> Any:
    return encode_tool_output(tool_name, call_id, await call())


@DBOS.step(name="timestep.session")
async def _session_step(call: Callable[[], Awaitable[Any]]) -> Any:
    return to_jsonable_python(await call())


def durable_run_config(
    run_config: RunConfig | None, default_provider: ModelProvider, *, sequential_tools: bool
) -> RunConfig:
    """A copy of `run_config` whose models, however given, and guardrails are recorded, and
    whose function tools run one at a time when `sequential_tools` (see `sequential_tools`)."""
    config = run_config or RunConfig(model_provider=default_provider)
    provider = config.model_provider
    changes: dict[str, Any] = {}
    if not isinstance(provider, DurableModelProvider):
        changes["model_provider"] = DurableModelProvider(provider)
    if isinstance(config.model, Model) and not isinstance(config.model, DurableModel):
        changes["model"] = DurableModel(config.model)
    if config.input_guardrails:
        changes["input_guardrails"] = durable_input_guardrails(config.input_guardrails)
    if config.output_guardrails:
        changes["output_guardrails"] = durable_output_guardrails(config.output_guardrails)
    if sequential_tools:
        execution = config.tool_execution or ToolExecutionConfig()
        changes["tool_execution"] = dataclasses.replace(execution, max_function_tool_concurrency=1)
    return dataclasses.replace(config, **changes)


# --- tools -------------------------------------------------------------------------------


def unrecorded(tool: FunctionTool) -> FunctionTool:
    """Opt `tool` out of recording: it runs again whenever its call is replayed.

    For tools that are cheap, pure, or that must observe the present (a clock, a cache).
    """
    setattr(tool, _UNRECORDED_ATTR, True)
    return tool


def uninterruptible(tool: FunctionTool) -> FunctionTool:
    """Declare that `cancel(run_id)` must not interrupt `tool` while it runs: the call runs to
    its end and its output is recorded; the run stops before its next step. Other async tools
    are cancelled in flight (their output is not recorded; `retry` runs them again).

    (Stopping a process on SIGINT/SIGTERM still cancels it past the grace period.)
    """
    setattr(tool, _UNINTERRUPTIBLE_ATTR, True)
    return tool


def _durable_tool(tool: FunctionTool, *, takes_steps: bool = False) -> FunctionTool:
    """`tool` with each call recorded as a step at the id reserved for it.

    A tool that `takes_steps` (an agent used as a tool: its inner model and tool calls are
    steps of the run) cannot run inside a step; it runs first, and its step then records the
    output it returned (so `runs steps` lists it, and its hooks know it is replayed)."""
    original = tool.on_invoke_tool
    interruptible = not getattr(tool, _UNINTERRUPTIBLE_ATTR, False)
    options = TOOL_STEP if interruptible else UNINTERRUPTIBLE_TOOL_STEP

    async def invoke(context: ToolContext[Any], arguments: str) -> Any:
        segment = current_segment()
        call_id = context.tool_call_id
        if segment is None or not in_workflow_body():
            return await original(context, arguments)
        reserved = segment.tool_slots.pop(call_id, None)
        # An agent tool's inner calls are steps that wait at the stopping gate themselves: it is
        # not a tool call in flight that a stopping process must wait for.
        output = await original(context, arguments) if takes_steps else None
        await stopping.gate()
        token = enter_tool_call(segment.run_id, call_id)
        ran: list[bool] = []
        try:

            async def call() -> Any:
                ran.append(True)
                return output if takes_steps else await original(context, arguments)

            name = tool.name
            if reserved is not None:
                record = await reserved.run_async(options, _run_tool_call, name, call_id, call)
            else:
                record = await DBOS.run_step_async(options, _run_tool_call, name, call_id, call)
        finally:
            leave_tool_call(token)
        if not ran:
            segment.replayed_calls.add(call_id)
        output = decode_tool_output(record, call_id)
        fire_hooks("tool", call_id)
        return output

    # The SDK reads the wrapper's type hints on every call (to choose the context it passes);
    # evaluated objects spare it compiling this module's string annotations each time.
    invoke.__annotations__ = dict(_INVOKE_ANNOTATIONS)
    return dataclasses.replace(tool, on_invoke_tool=invoke)


_INVOKE_ANNOTATIONS: dict[str, Any] = {
    "context": ToolContext[Any],
    "arguments": str,
    "return": Any,
}


# --- agents ------------------------------------------------------------------------------


class _GraphWrapper:
    """Copies an agent graph with durable models, tools, MCP servers, agents used as tools,
    guardrails, handoffs and hooks, keeping cycles intact."""

    def __init__(self) -> None:
        # By id, with the original kept: a kept graph copy outlives the run that made it, and
        # an agent a handoff builds at run time may reuse a dead one's id.
        self._copies: dict[int, tuple[Agent[Any], Agent[Any]]] = {}
        self.nested = False
        """Whether an agent of the graph uses another agent as a tool (`sequential_tools`)."""

    def _copy_of(self, agent: Agent[Any]) -> Agent[Any] | None:
        existing = self._copies.get(id(agent))
        return existing[1] if existing is not None and existing[0] is agent else None

    def agent(self, agent: Agent[Any]) -> Agent[Any]:
        existing = self._copy_of(agent)
        if existing is not None:
            return existing
        changes: dict[str, Any] = {}
        if isinstance(agent.model, Model) and not isinstance(agent.model, DurableModel):
            changes["model"] = DurableModel(agent.model)
        if agent.mcp_servers:
            changes["mcp_servers"] = durable_servers(agent.mcp_servers)
        if agent.input_guardrails:
            changes["input_guardrails"] = durable_input_guardrails(agent.input_guardrails)
        if agent.output_guardrails:
            changes["output_guardrails"] = durable_output_guardrails(agent.output_guardrails)
        if agent.hooks is not None:
            changes["hooks"] = live_only_agent_hooks(agent.hooks)
        copy = agent.clone(**changes)
        self._copies[id(agent)] = (agent, copy)
        # After the copy is known: an agent tool or a handoff may lead back to this agent.
        copy.tools = [self._tool(tool) for tool in agent.tools]
        copy.handoffs = [self._handoff(h) for h in agent.handoffs]
        return copy

    def _tool(self, tool: Any) -> Any:
        if not isinstance(tool, FunctionTool):
            return tool
        inner = agents_compat.agent_of_agent_tool(tool)
        if inner is not None:
            self.nested = True
            rebound = agents_compat.rebind_agent_tool(tool, self.agent(inner), _durable_config)
            return _durable_tool(rebound, takes_steps=True)
        if getattr(tool, _UNRECORDED_ATTR, False):
            return tool
        return _durable_tool(tool)

    def _handoff(self, handoff: Agent[Any] | Handoff[Any, Any]) -> Agent[Any] | Handoff[Any, Any]:
        if isinstance(handoff, Agent):
            return self.agent(handoff)
        original = handoff.on_invoke_handoff

        def as_copy(target: Agent[Any]) -> Agent[Any]:
            # Not part of the graph copied: a handoff may build its agent at run time, and
            # this wrapper lives as long as its kept graph copy, so it must not hold them all.
            return self._copy_of(target) or durable_agent(target)

        async def invoke(*args: Any, **kwargs: Any) -> Agent[Any]:
            if not in_workflow_body():
                return as_copy(await original(*args, **kwargs))
            live: list[Agent[Any]] = []

            async def call() -> str:
                live.append(as_copy(await original(*args, **kwargs)))
                return live[0].name

            # `on_handoff` runs once: a replay takes the target's name from the record.
            name = await DBOS.run_step_async(HANDOFF_STEP, call)
            fire_hooks("handoff", name)
            if live:
                return live[0]
            target = agents_compat.handoff_target(handoff)
            if target is None or target.name != name:
                # An agent the handoff builds at run time: only the callback can build it.
                return as_copy(await original(*args, **kwargs))
            return as_copy(target)

        return dataclasses.replace(handoff, on_invoke_handoff=invoke)


HANDOFF_STEP: StepOptions = {"name": HANDOFF_STEP_NAME}


def _durable_config(config: RunConfig) -> RunConfig:
    """An agent tool's own run config, recorded like the run's (`durable_run_config`)."""
    return durable_run_config(config, config.model_provider, sequential_tools=True)


def sequential_tools(agent: Agent[Any]) -> bool:
    """Whether the durable copy `agent` (from `durable_agent`) must run its function tools one
    at a time: an agent used as a tool takes steps of the run while it runs, so two of them
    running at once would take step ids in an order that a replay cannot repeat."""
    return getattr(agent, _NESTED_ATTR, False)


_NESTED_ATTR = "_timestep_nested"


def durable_agent(agent: Agent[Any]) -> Agent[Any]:
    """A copy of `agent`'s graph whose models and function tools are recorded steps.

    The copy of a graph is kept and used again while nothing in the graph changed (cloning an
    agent costs about as much as a recorded step's own Python work, on every run).
    """
    shape = _graph_shape(agent)
    with _copies_lock:
        cached = _graph_copies.get(id(agent))
        if cached is not None and _same_shape(cached[0], shape):
            _graph_copies.move_to_end(id(agent))
            return cached[1]
    wrapper = _GraphWrapper()
    copy = wrapper.agent(agent)
    setattr(copy, _NESTED_ATTR, wrapper.nested)
    with _copies_lock:
        _graph_copies[id(agent)] = (shape, copy)
        if len(_graph_copies) > _KEPT_GRAPHS:
            _graph_copies.popitem(last=False)
    return copy


_KEPT_GRAPHS = 64
"""Graph copies kept (the most recently used): a process that builds agents per request churns
through them without holding more."""

_graph_copies: OrderedDict[int, tuple[tuple[Any, ...], Agent[Any]]] = OrderedDict()
_copies_lock = threading.Lock()


def _graph_shape(agent: Agent[Any]) -> tuple[Any, ...]:
    """Everything a graph copy is made from, compared by identity: every reachable agent
    (which also keeps its id from being reused while the copy is kept) with its field values,
    and the field values of each function tool and handoff object the copy made its own copy
    of (and whether the tool opted out of recording). A field reassigned, a tool or handoff
    added, removed or replaced, anywhere in the graph, gives another shape. (Objects mutated in
    place need nothing: the copies share them.)"""

    shape: list[Any] = []
    for reachable in walk_agents(agent, through_agent_tools=True):
        shape += _fields_of(reachable)
        for tool in reachable.tools:
            if isinstance(tool, FunctionTool):
                shape += _fields_of(tool)
                shape.append(getattr(tool, _UNRECORDED_ATTR, False))
            else:
                shape.append(tool)
        for handoff in reachable.handoffs:
            shape += [handoff] if isinstance(handoff, Agent) else _fields_of(handoff)
    return tuple(shape)


def _fields_of(value: Any) -> list[Any]:
    return [value, *(getattr(value, field.name) for field in dataclasses.fields(value))]


def _same_shape(kept: tuple[Any, ...], shape: tuple[Any, ...]) -> bool:
    return len(kept) == len(shape) and all(a is b for a, b in zip(kept, shape, strict=True))


# --- sessions ----------------------------------------------------------------------------


class ReplaySafeSession:
    """A session whose reads and writes are steps, so a replayed segment adds nothing twice.

    A session that creates its id on first use (`OpenAIConversationsSession()` creates its
    conversation) gets that id from a step of its own before its first read or write: a replay
    in a fresh process, with a new session object, goes on in the same conversation.
    """

    def __init__(self, inner: Session) -> None:
        self.inner = inner
        self.session_settings = getattr(inner, "session_settings", None)
        self._id_settled = not isinstance(inner, OpenAIConversationsSession)

    @property
    def session_id(self) -> str:
        """The inner session's id (which raises, as the SDK's does, before it exists)."""
        return self.inner.session_id

    async def _settle_id(self) -> None:
        if self._id_settled:
            return
        self._id_settled = True
        recorded = await _session_id_step(self.inner)
        current = _available_id(self.inner)
        if current is None:
            self.inner.session_id = recorded  # type: ignore[misc]
        elif current != recorded:
            raise ReplayMismatchError(
                f"this run used conversation {recorded!r}, and the session given now is "
                f"conversation {current!r}; pass OpenAIConversationsSession() (or "
                f"conversation_id={recorded!r}) to go on with the run"
            )

    async def get_items(self, limit: int | None = None) -> list[Any]:
        await self._settle_id()
        items = await _session_step(lambda: self.inner.get_items(limit))
        return list(items)

    async def add_items(self, items: list[Any]) -> None:
        await self._settle_id()
        await _session_step(lambda: self.inner.add_items(items))

    async def pop_item(self) -> Any:
        await self._settle_id()
        return await _session_step(lambda: self.inner.pop_item())

    async def clear_session(self) -> None:
        await self._settle_id()
        await _session_step(lambda: self.inner.clear_session())


@DBOS.step(name="timestep.session_id")
async def _session_id_step(session: Session) -> str:
    """The id of a session that creates it on first use, created now if need be."""
    current = _available_id(session)
    if current is not None:
        return current
    await session.get_items(limit=0)  # creates the id; reads nothing
    return session.session_id


def _available_id(session: Session) -> str | None:
    try:
        return session.session_id
    except ValueError:  # "Session ID not yet available"
        return None
