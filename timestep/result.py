"""Results of durable runs: the SDK's own result objects, carrying the run id.

A run that finished in this process returns the SDK's live `RunResult`. A run that finished
elsewhere (another process, before a crash) is rebuilt from its stored state, with the same
attributes: `final_output`, `new_items`, `raw_responses`, `interruptions`, `last_agent`,
`context_wrapper.usage` and `to_state()`.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from agents import Agent, AgentOutputSchema, RunResult, RunState
from agents.result import RunResultBase

from ._compat import agents as agents_compat
from .errors import StateError


def _decode_final_output(agent: Agent[Any], value: Any) -> Any:
    output_type = agent.output_type
    if value is None or output_type is None or output_type is str:
        return value
    schema = output_type if not isinstance(output_type, type) else AgentOutputSchema(output_type)
    return schema.validate_json(json.dumps(value))


async def rebuild_result(
    agent: Agent[Any], state_json: dict[str, Any] | None, final_output: Any
) -> RunResult:
    """A `RunResult` equivalent to the one the run produced, from its stored state."""
    if state_json is None:
        raise StateError("the run has no stored state to rebuild its result from")
    state = await RunState.from_json(agent, state_json)
    last_agent = agents_compat.state_last_agent(state) or agent
    if agents_compat.state_context(state) is None:
        raise StateError("the stored state has no run context")
    return agents_compat.result_from_state(
        state, agent, _decode_final_output(last_agent, final_output)
    )


R = TypeVar("R", bound=RunResultBase)


def with_run_id(result: R, run_id: str) -> R:
    result.run_id = run_id  # type: ignore[attr-defined]
    return result
