"""Timestep: durable OpenAI Agents SDK runs on DBOS."""

from ._engine.registry import register_agent
from .approvals import approve, reject, resume
from .config import ModelRetryPolicy, configure
from .context import ContextStorage
from .errors import (
    AgentMismatchError,
    AgentNotRegisteredError,
    ArgumentTypeError,
    ConfigurationError,
    ContextSecretMissingError,
    ContextStorageError,
    DatabaseUnavailableError,
    DecisionError,
    InterruptionException,
    InvalidArgumentError,
    InvalidRunIdError,
    LifecycleError,
    ModelAuthenticationError,
    ModelConfigurationError,
    ModelError,
    ModelNotFoundError,
    ModelProviderUnreachableError,
    ReplayMismatchError,
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
from .state.records import ModelUsage, RunOverrides, RunOwner, RunRecord
from .state.store import RunStateStore
from .state.typescript import (
    StateConversionError,
    UnsupportedStateVersionError,
    from_typescript_json,
    to_typescript_json,
)
from .stream import stream_events
from .tool import idempotency_key, unrecorded

__all__ = [
    "AgentMismatchError",
    "AgentNotRegisteredError",
    "ArgumentTypeError",
    "ConfigurationError",
    "ContextSecretMissingError",
    "ContextStorage",
    "ContextStorageError",
    "DatabaseUnavailableError",
    "DecisionError",
    "InterruptionException",
    "InvalidArgumentError",
    "InvalidRunIdError",
    "LifecycleError",
    "ModelAuthenticationError",
    "ModelConfigurationError",
    "ModelError",
    "ModelNotFoundError",
    "ModelProviderUnreachableError",
    "ModelRetryPolicy",
    "ModelUsage",
    "MultiModelProvider",
    "MultiModelProviderMap",
    "OllamaModel",
    "OllamaModelProvider",
    "ReplayMismatchError",
    "RunCancelledError",
    "RunExistsError",
    "RunNotFoundError",
    "RunOverrides",
    "RunOwner",
    "RunRecord",
    "RunStateStore",
    "StateConversionError",
    "StateError",
    "StateNotFoundError",
    "TimestepError",
    "ToolOutputNotSerializableError",
    "UnsupportedStateVersionError",
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
