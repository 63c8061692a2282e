"""Timestep: durable OpenAI Agents SDK runs on DBOS."""

from ._engine.durable import unrecorded
from ._engine.registry import register_agent
from .config import configure
from .errors import (
    AgentMismatchError,
    ConfigurationError,
    DatabaseUnavailableError,
    InterruptionException,
    RunNotFoundError,
    TimestepError,
    ToolOutputNotSerializableError,
)
from .run import consume_result, run_agent

__all__ = [
    "AgentMismatchError",
    "ConfigurationError",
    "DatabaseUnavailableError",
    "InterruptionException",
    "RunNotFoundError",
    "TimestepError",
    "ToolOutputNotSerializableError",
    "configure",
    "consume_result",
    "register_agent",
    "run_agent",
    "unrecorded",
]
