"""Timestep: durable OpenAI Agents SDK runs on DBOS."""

from ._engine.registry import register_agent
from .approvals import approve, reject, resume
from .config import configure
from .errors import (
    AgentMismatchError,
    ConfigurationError,
    DatabaseUnavailableError,
    DecisionError,
    InterruptionException,
    RunNotFoundError,
    TimestepError,
    ToolOutputNotSerializableError,
)
from .run import consume_result, launch, run_agent
from .runs import get_run, list_runs
from .state.records import RunRecord
from .tool import idempotency_key, unrecorded

__all__ = [
    "AgentMismatchError",
    "ConfigurationError",
    "DatabaseUnavailableError",
    "DecisionError",
    "InterruptionException",
    "RunNotFoundError",
    "RunRecord",
    "TimestepError",
    "approve",
    "reject",
    "resume",
    "ToolOutputNotSerializableError",
    "configure",
    "consume_result",
    "get_run",
    "idempotency_key",
    "launch",
    "list_runs",
    "register_agent",
    "run_agent",
    "unrecorded",
]
