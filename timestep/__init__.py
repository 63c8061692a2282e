"""Timestep: durable OpenAI Agents SDK runs on DBOS."""

from ._engine.registry import register_agent
from .approvals import approve, reject, resume
from .config import ModelRetryPolicy, configure
from .errors import (
    AgentMismatchError,
    ConfigurationError,
    DatabaseUnavailableError,
    DecisionError,
    InterruptionException,
    InvalidRunIdError,
    LifecycleError,
    ModelConfigurationError,
    RunCancelledError,
    RunExistsError,
    RunNotFoundError,
    StateError,
    StateNotFoundError,
    TimestepError,
    ToolOutputNotSerializableError,
)
from .lifecycle import cancel, fork, retry
from .models import MultiModelProvider, MultiModelProviderMap, OllamaModel, OllamaModelProvider
from .run import consume_result, launch, run_agent, submit
from .runs import get_run, list_runs
from .state.records import RunRecord
from .state.store import RunStateStore
from .state.typescript import from_typescript_json, to_typescript_json
from .stream import stream_events
from .tool import idempotency_key, unrecorded

__all__ = [
    "AgentMismatchError",
    "ConfigurationError",
    "DatabaseUnavailableError",
    "DecisionError",
    "InterruptionException",
    "InvalidRunIdError",
    "LifecycleError",
    "ModelConfigurationError",
    "RunCancelledError",
    "RunExistsError",
    "ModelRetryPolicy",
    "MultiModelProvider",
    "MultiModelProviderMap",
    "OllamaModel",
    "OllamaModelProvider",
    "RunNotFoundError",
    "RunRecord",
    "RunStateStore",
    "StateError",
    "StateNotFoundError",
    "TimestepError",
    "ToolOutputNotSerializableError",
    "approve",
    "cancel",
    "configure",
    "consume_result",
    "fork",
    "from_typescript_json",
    "get_run",
    "idempotency_key",
    "launch",
    "list_runs",
    "register_agent",
    "reject",
    "resume",
    "retry",
    "run_agent",
    "stream_events",
    "submit",
    "to_typescript_json",
    "unrecorded",
]
