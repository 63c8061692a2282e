"""Hooks into openai-agents 0.24 (the pinned series) that have no public route.

- Rebuilding a result from a `RunState` loaded from the database: the SDK builds results
  only inside `Runner`, and a state keeps what a result needs in private fields.
- Seeing a live result as an instance of a subclass that adds fields (the run id): the SDK's
  result classes are plain dataclasses, and a streamed one keeps being written by its run loop.
- A state's run context (approvals recorded on it, usage), which `RunState` does not expose.
- Teeing a streamed run's events: `RunResultStreaming` has no hook for its event queue, and
  keeps the run loop's exception privately until its events are consumed.
- Converting a Responses API usage object into the SDK's `Usage`, as the SDK's own models do.
- The defaults set with the public `agents.set_default_openai_client` /
  `agents.set_default_openai_key`: the SDK keeps them in `agents.models._openai_shared` and
  reads them back only inside `OpenAIProvider`. Timestep's per-event-loop OpenAI provider
  (timestep/models/openai_loops.py) builds its own clients and must honour the same defaults.
- `MultiProvider`'s prefix resolution and fallback-provider hooks, which `MultiModelProvider`
  extends (the `ollama/` prefix, unknown prefixes as typed errors).
- The SDK's helpers for a model's generation span and its error reporting, so that
  `OllamaModel`'s spans look like the SDK's own models'.
- The trace provider's processor list (the SDK has `set_trace_processors` but no getter).
- The agent an `Agent.as_tool` tool runs, and the same tool running another agent: the tool
  keeps its agent (and its own run config) in the closure of its invoker, and Timestep must run
  a durable copy of that agent in its place (with every `as_tool` option kept).
- An MCP server's approval policy and failure formatter for a tool, which the SDK reads through
  private methods when it lists the server's tools (Timestep's wrapper of a server passes them
  on from the server it wraps).
- A state's starting agent and a handoff's target agent, which the SDK keeps only in private
  fields (`RunState._starting_agent`, `Handoff._agent_ref`, a weak reference).
- The canonical tool-invocation identity the SDK records with an approval, which the
  TypeScript adapter must reproduce byte for byte.
"""

from __future__ import annotations

import asyncio
import dataclasses
import types
from collections.abc import Callable
from typing import Any, TypeVar

from agents import (
    Agent,
    FunctionTool,
    ModelProvider,
    RunConfig,
    RunContextWrapper,
    RunResult,
    RunResultStreaming,
    RunState,
)
from agents.mcp import MCPServer
from agents.models.multi_provider import MultiProvider
from agents.result import RunResultBase
from agents.tracing import TracingProcessor
from agents.tracing.provider import DefaultTraceProvider
from agents.usage import Usage, _response_usage_to_usage
from openai import AsyncOpenAI
from openai.types.responses import ResponseUsage


def state_context(state: RunState[Any, Any]) -> RunContextWrapper[Any] | None:
    """The run context a state carries (usage, approval decisions), if any."""
    context: RunContextWrapper[Any] | None = state._context
    return context


def application_context(state: RunState[Any, Any]) -> Any:
    """The application context `state` carries (None when it has none)."""
    wrapper = state_context(state)
    return None if wrapper is None else wrapper.context


ResultT = TypeVar("ResultT", bound=RunResultBase)
StreamedT = TypeVar("StreamedT", bound=RunResultStreaming)
FinishedT = TypeVar("FinishedT", bound=RunResult)


def _from_state(state: RunState[Any, Any]) -> dict[str, Any]:
    """The constructor arguments both result classes take, from `state`."""
    context = state_context(state)
    if context is None:
        raise ValueError("the state has no run context")
    return {
        "input": state._original_input,
        "new_items": list(state._generated_items),
        "raw_responses": list(state._model_responses),
        "input_guardrail_results": list(state._input_guardrail_results),
        "output_guardrail_results": list(state._output_guardrail_results),
        "tool_input_guardrail_results": list(state._tool_input_guardrail_results),
        "tool_output_guardrail_results": list(state._tool_output_guardrail_results),
        "context_wrapper": context,
        "interruptions": state.get_interruptions(),
    }


def _resume_point(result: RunResultBase, state: RunState[Any, Any]) -> None:
    """What `to_state()` of a result reads, so that it resumes where `state` stood: without
    `_model_input_items` it would hold no generated items at all."""
    resumable: Any = result
    resumable._last_processed_response = state._last_processed_response
    resumable._original_input = state._original_input
    resumable._model_input_items = list(state._generated_items)
    resumable._tool_use_tracker_snapshot = state.get_tool_use_tracker_snapshot()
    resumable._current_turn_persisted_item_count = state._current_turn_persisted_item_count
    resumable._conversation_id = state._conversation_id
    resumable._previous_response_id = state._previous_response_id
    resumable._auto_previous_response_id = state._auto_previous_response_id


def result_from_state(
    state: RunState[Any, Any], agent: Agent[Any], final_output: Any, cls: type[FinishedT]
) -> FinishedT:
    """A `cls` (a `RunResult` class) with the items, responses, guardrail results and context of
    `state`, as `Runner.run` would have returned it; `agent` is the last agent when the state
    names none."""
    result = cls(
        **_from_state(state),
        final_output=final_output,
        _last_agent=state_last_agent(state) or agent,
    )
    _resume_point(result, state)
    result._current_turn = state._current_turn
    return result


def streamed_result_from_state(
    state: RunState[Any, Any], agent: Agent[Any], final_output: Any, cls: type[StreamedT]
) -> StreamedT:
    """A finished `cls` (a `RunResultStreaming` class) of `state`: its `stream_events()` ends at
    once, its other attributes are those of `result_from_state`."""
    result = cls(
        **_from_state(state),
        final_output=final_output,
        current_agent=state_last_agent(state) or agent,
        current_turn=state._current_turn,
        max_turns=state._max_turns,
        _current_agent_output_schema=None,
        trace=None,
        is_complete=True,
    )
    _resume_point(result, state)
    return result


def adopt_result(result: RunResultBase, cls: type[ResultT]) -> ResultT:
    """`result` as an instance of `cls`, a subclass of its class that only adds fields.

    The two objects share one attribute dictionary: the SDK's run loop keeps writing to the
    result it created (a streamed run's items, `is_complete`, its stored exception), and the
    adopted object sees every write. Relies on the result classes having no `__slots__`.
    """
    if not isinstance(result, cls.__mro__[1]):
        raise TypeError(f"{cls.__name__} adopts a {cls.__mro__[1].__name__}, not {result!r}")
    adopted = cls.__new__(cls)
    adopted.__dict__ = result.__dict__
    return adopted


def state_last_agent(state: RunState[Any, Any]) -> Agent[Any] | None:
    agent: Agent[Any] | None = state._current_agent
    return agent


def state_starting_agent(state: Any) -> Agent[Any] | None:
    """The agent a `RunState` starts from, if it has one (no public accessor)."""
    agent = getattr(state, "_starting_agent", None)
    return agent if isinstance(agent, Agent) else None


def handoff_target(handoff: Any) -> Agent[Any] | None:
    """The agent a `Handoff` hands off to, while it is alive: the SDK keeps it only as a weak
    reference in a private field (openai-agents 0.24.0, `Handoff._agent_ref`)."""
    ref = getattr(handoff, "_agent_ref", None)
    target = ref() if callable(ref) else None
    return target if isinstance(target, Agent) else None


def replace_event_queue(result: RunResultStreaming, queue: asyncio.Queue[Any]) -> None:
    """Route a streamed run's events through `queue`; only before its run loop has started."""
    result._event_queue = queue


def stored_exception(result: RunResultStreaming) -> BaseException | None:
    """The exception that ended a streamed run's loop, before its events were consumed."""
    exc: BaseException | None = result._stored_exception
    return exc


def usage_from_response(usage: ResponseUsage) -> Usage:
    converted: Usage = _response_usage_to_usage(usage)
    return converted


def default_openai_client() -> AsyncOpenAI | None:
    """The client given to `agents.set_default_openai_client`, if any."""
    from agents.models import _openai_shared

    return _openai_shared.get_default_openai_client()


def default_openai_key() -> str | None:
    """The key given to `agents.set_default_openai_key`, if any."""
    from agents.models import _openai_shared

    return _openai_shared.get_default_openai_key()


class MultiProviderHooks(MultiProvider):
    """`MultiProvider` whose private resolution hooks are overridable under public names."""

    def create_fallback_provider(self, prefix: str) -> ModelProvider:
        """The provider for `prefix` when the provider map has none (cached by the SDK)."""
        provider: ModelProvider = super()._create_fallback_provider(prefix)
        return provider

    def _create_fallback_provider(self, prefix: str) -> ModelProvider:
        return self.create_fallback_provider(prefix)

    def resolve_prefixed_model(
        self, *, original_model_name: str, prefix: str, stripped_model_name: str | None
    ) -> tuple[ModelProvider, str | None]:
        """The provider and model name that `prefix/name` resolves to."""
        resolved: tuple[ModelProvider, str | None] = super()._resolve_prefixed_model(
            original_model_name=original_model_name,
            prefix=prefix,
            stripped_model_name=stripped_model_name,
        )
        return resolved

    def _resolve_prefixed_model(
        self, *, original_model_name: str, prefix: str, stripped_model_name: str | None
    ) -> tuple[ModelProvider, str | None]:
        return self.resolve_prefixed_model(
            original_model_name=original_model_name,
            prefix=prefix,
            stripped_model_name=stripped_model_name,
        )

    def fallback_provider(self, prefix: str) -> ModelProvider:
        """The (cached) fallback provider for `prefix`."""
        provider: ModelProvider = self._get_fallback_provider(prefix)
        return provider

    @property
    def unknown_prefix_mode(self) -> str:
        mode: str = self._unknown_prefix_mode
        return mode


def trace_processors(provider: DefaultTraceProvider) -> list[TracingProcessor]:
    """The processors a trace provider exports to."""
    return list(getattr(provider._multi_processor, "_processors", ()))


def tool_invocation_identity_and_scope(call: dict[str, Any], invocation_role: str | None) -> Any:
    """The SDK's canonical identity of a tool call, as it records it with an approval."""
    from agents._tool_invocation import tool_invocation_identity_and_scope as identity

    return identity(call, invocation_role=invocation_role)


def model_span_helpers() -> tuple[Any, Any, Any]:
    """(model_config_for_trace, populate_generation_span, model_span_errors) of the SDK."""
    from agents.models._trace import model_config_for_trace, populate_generation_span
    from agents.util._error_tracing import model_span_errors

    return model_config_for_trace, populate_generation_span, model_span_errors


def agent_of_agent_tool(tool: Any) -> Agent[Any] | None:
    """The agent a tool made by `Agent.as_tool` runs (None for any other tool)."""
    if not getattr(tool, "_is_agent_tool", False):
        return None
    agent = getattr(tool, "_agent_instance", None)
    return agent if isinstance(agent, Agent) else None


def rebind_agent_tool(
    tool: FunctionTool, agent: Agent[Any], run_config: Callable[[RunConfig], RunConfig]
) -> FunctionTool:
    """A copy of the `Agent.as_tool` tool `tool` that runs `agent` instead of its own agent,
    with its own run config (if it was given one) passed through `run_config`.

    The SDK's invoker (`_FailureHandlingFunctionToolInvoker`) wraps `_run_agent_impl`, a
    closure over `self` (the agent) and `run_config`; the copy is the same function over new
    cells, so every other option of `as_tool` stays as it was.
    """
    invoker: Any = tool.on_invoke_tool
    implementation = invoker._invoke_tool_impl
    code = implementation.__code__
    cells = []
    for name, cell in zip(code.co_freevars, implementation.__closure__ or (), strict=True):
        try:
            value = cell.cell_contents
        except ValueError:  # a cell not filled yet
            cells.append(types.CellType())
            continue
        if name == "self":
            value = agent
        elif name == "run_config" and isinstance(value, RunConfig):
            value = run_config(value)
        cells.append(types.CellType(value))
    if "self" not in code.co_freevars:
        raise TypeError("the installed openai-agents builds agent tools differently")
    rebound = types.FunctionType(
        code, implementation.__globals__, code.co_name, implementation.__defaults__, tuple(cells)
    )
    rebound.__kwdefaults__ = implementation.__kwdefaults__
    new_invoker = type(invoker)(rebound, invoker._on_handled_error)
    return dataclasses.replace(tool, on_invoke_tool=new_invoker, _agent_instance=agent)


def mcp_approval_policy(server: MCPServer, tool: Any, agent: Any) -> Any:
    """What `server` says about approving calls of its `tool` (the SDK's `needs_approval`)."""
    return server._get_needs_approval_for_tool(tool, agent)


def mcp_failure_error_function(server: MCPServer, default: Any) -> Any:
    """`server`'s formatter of a failed call's message, else `default`."""
    return server._get_failure_error_function(default)
