"""One error hierarchy: every error Timestep raises is exported, and argument mistakes are
also the builtin errors callers already catch."""

from __future__ import annotations

import inspect

import pytest
from agents import Agent

import timestep
import timestep.errors
from timestep.state.typescript import _errors as typescript_errors

from .helpers import TurnModel


def test_every_error_class_is_exported_under_one_base() -> None:
    defined = [
        cls
        for module in (timestep.errors, typescript_errors)
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, Exception) and cls.__module__ == module.__name__
    ]
    assert len(defined) > 20
    for cls in defined:
        assert issubclass(cls, timestep.TimestepError), cls
        assert getattr(timestep, cls.__name__) is cls, f"{cls.__name__} is not exported"
        assert cls.__name__ in timestep.__all__


async def test_argument_mistakes_are_value_and_type_errors(timestep_db: str) -> None:
    agent = Agent(name="Plain", model=TurnModel([], final="ok"))
    with pytest.raises(TypeError, match="expects an agents.Agent"):
        await timestep.run_agent("not an agent", "hi")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="run_input must be"):
        await timestep.run_agent(agent, 42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="approval_timeout must be a positive number"):
        await timestep.run_agent(agent, "hi", approval_timeout=-1)
    with pytest.raises(ValueError, match="limit must be at least 1"):
        await timestep.list_runs(limit=0)
    with pytest.raises(ValueError, match="unknown run status"):
        await timestep.list_runs(status="done")
    with pytest.raises(ValueError, match="submit needs a JSON context"):
        await timestep.submit(agent, "hi", context=object())
    # Nothing was stored by the refused calls.
    assert await timestep.list_runs() == []
