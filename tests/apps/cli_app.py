"""Agents that fail in ways that are not Timestep's, for the CLI's error-line tests.

- `misbehaving`: its model calls a tool the agent does not have (the SDK raises
  `ModelBehaviorError`).
- `crashing`: its model raises a plain `ValueError` (DBOS logs its traceback as "Exception
  encountered in asynchronous workflow").
"""

from __future__ import annotations

from typing import Any

from agents import Agent, Model, ModelResponse, Usage
from agents.testing import function_call


class _UnknownToolModel(Model):
    async def get_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
        return ModelResponse(
            output=[function_call("no_such_tool", {}, call_id="call_x")],
            usage=Usage(requests=1),
            response_id=None,
        )

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError


class _RaisingModel(Model):
    async def get_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
        raise ValueError("the scripted model broke on purpose")

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError


misbehaving = Agent(name="Misbehaving", model=_UnknownToolModel())
crashing = Agent(name="Crashing", model=_RaisingModel())
