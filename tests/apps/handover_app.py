"""An app module for the CLI hand-over tests (tests/interop/test_cli_handover.py).

    python -m timestep.cli run tests.apps.handover_app:mailer "Email Bob that the build is green."
    python -m workflows --app tests.apps.handover_app

Defines the same `Mailer` (send_email needs approval, lookup_address) and `Triage` agents as the
interop scenarios, built by tests/interop/_harness.py, so that a state exported here resumes in
tests/interop/harness.mjs and the other way round.

The model plays one cell of tests/interop/_scenarios.py (env TIMESTEP_HANDOVER_CELL, default
`approve_after`): its `source` turns, then its `resume` turns. Because the parking process, the
worker and the TypeScript side are different processes, the turn is chosen from the input alone
(how many tool outputs it holds), not from a per-process counter; usage numbers match the
harnesses' (call k gets usage_for(k)). Every real tool execution and every model input (with the
problems a provider would reject, see `_harness.input_problems`) is appended to the log named by
TIMESTEP_TEST_LOG.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from typing import Any

from agents import ModelResponse
from agents.models.interface import Model

from tests.helpers import ExecutionLog
from tests.interop._harness import build_agents, input_problems, to_output, usage_for
from tests.interop._scenarios import cell_named

log = ExecutionLog(os.environ.get("TIMESTEP_TEST_LOG", os.devnull))
cell = cell_named(os.environ.get("TIMESTEP_HANDOVER_CELL", "approve_after"))


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _tool_outputs(model_input: str | list[Any]) -> int:
    if isinstance(model_input, str):
        return 0
    return sum(1 for item in model_input if item.get("type") == "function_call_output")


class CellModel(Model):
    """Plays `turns` (source then resume); turn k starts once the earlier turns' calls all have
    outputs in the input, so any process asked the same question gives the same answer."""

    def __init__(self, turns: list[dict[str, Any]]) -> None:
        self.turns = turns

    def _turn(self, model_input: str | list[Any]) -> int:
        seen, turn = _tool_outputs(model_input), 0
        while turn < len(self.turns) and "calls" in self.turns[turn]:
            if seen < len(self.turns[turn]["calls"]):
                break
            seen -= len(self.turns[turn]["calls"])
            turn += 1
        return turn

    async def get_response(
        self, system_instructions: str | None, input: str | list[Any], *args: Any, **kwargs: Any
    ) -> ModelResponse:
        recorded = _jsonable(input)
        turn = self._turn(recorded)
        log.write("model", turn=turn, input=recorded, problems=input_problems(recorded))
        if turn >= len(self.turns):
            raise AssertionError(f"cell {cell['name']} has no turn {turn}")
        return ModelResponse(
            output=to_output(self.turns[turn], turn),
            usage=usage_for(turn),
            response_id=f"resp_{turn}",
        )

    def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        raise NotImplementedError("the hand-over tests do not stream")


class _LoggedExecutions(list[dict[str, Any]]):
    """The harness tools append their executions here; each one also goes to the log file."""

    def append(self, entry: dict[str, Any]) -> None:
        log.write("tool", **entry)
        super().append(entry)


_agents = build_agents(CellModel(cell["source"] + cell["resume"]), _LoggedExecutions())
mailer = _agents["Mailer"]
triage = _agents["Triage"]
