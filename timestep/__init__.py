"""Timestep: durable OpenAI Agents SDK runs on DBOS.

The public names are imported on first use (PEP 562), so that a process that only inspects runs
(the `timestep` CLI, an HTTP handler) does not pay for importing the Agents SDK and DBOS.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (
    AgentMismatchError,
    AgentNotRegisteredError,
    ArgumentTypeError,
    ConfigurationError,
    ContextSecretMissingError,
    ContextStorageError,
    DatabaseUnavailableError,
    DecisionError,
    IncompatibleVersionError,
    InterruptionException,
    InvalidArgumentError,
    InvalidRunIdError,
    LifecycleError,
    ModelAuthenticationError,
    ModelConfigurationError,
    ModelError,
    ModelNotFoundError,
    ModelProviderUnreachableError,
    NothingPendingError,
    PgliteImportError,
    PgliteStoreNotFoundError,
    ReadOnlyDatabaseError,
    RejectionNotAppliedError,
    ReplayMismatchError,
    RunCancelledError,
    RunExistsError,
    RunInterruptedError,
    RunNotFoundError,
    ServeError,
    StateConversionError,
    StateError,
    StateNotFoundError,
    TimestepError,
    ToolOutputNotSerializableError,
    UnsupportedStateVersionError,
)

_LAZY: dict[str, str] = {
    # Through `run`: importing it registers Timestep's DBOS workflows, so an application that
    # registers its agents and then launches its own DBOS recovers the runs they started.
    "register_agent": ".run",
    "approve": ".approvals",
    "reject": ".approvals",
    "resume": ".approvals",
    "ModelRetryPolicy": ".config",
    "configure": ".config",
    "ContextStorage": ".context",
    "cancel": ".lifecycle",
    "fork": ".lifecycle",
    "retry": ".lifecycle",
    "MultiModelProvider": ".models",
    "MultiModelProviderMap": ".models",
    "OllamaModel": ".models",
    "OllamaModelProvider": ".models",
    "UnknownModelPrefixError": ".models",
    "PruneReport": ".retention",
    "prune_runs": ".retention",
    "DurableRunResult": ".result",
    "DurableRunResultStreaming": ".result",
    "consume_result": ".run",
    "launch": ".run",
    "run_agent": ".run",
    "submit": ".run",
    "get_run": ".runs",
    "list_runs": ".runs",
    "ModelUsage": ".state.records",
    "RunOverrides": ".state.records",
    "RunOwner": ".state.records",
    "RunRecord": ".state.records",
    "VersionMove": ".state.records",
    "UpgradeResult": ".upgrade",
    "pin_run": ".upgrade",
    "upgrade_runs": ".upgrade",
    "RunStateStore": ".store",
    "from_typescript_json": ".state.typescript",
    "to_typescript_json": ".state.typescript",
    "stream_events": ".stream",
    "idempotency_key": ".tool",
    "uninterruptible": ".tool",
    "unrecorded": ".tool",
}
"""Public name -> the module that defines it."""

if TYPE_CHECKING:
    from ._engine import register_agent
    from .approvals import approve, reject, resume
    from .config import ModelRetryPolicy, configure
    from .context import ContextStorage
    from .lifecycle import cancel, fork, retry
    from .models import (
        MultiModelProvider,
        MultiModelProviderMap,
        OllamaModel,
        OllamaModelProvider,
        UnknownModelPrefixError,
    )
    from .result import DurableRunResult, DurableRunResultStreaming
    from .retention import PruneReport, prune_runs
    from .run import consume_result, launch, run_agent, submit
    from .runs import get_run, list_runs
    from .state.records import ModelUsage, RunOverrides, RunOwner, RunRecord, VersionMove
    from .state.typescript import from_typescript_json, to_typescript_json
    from .store import RunStateStore
    from .stream import stream_events
    from .tool import idempotency_key, uninterruptible, unrecorded
    from .upgrade import UpgradeResult, pin_run, upgrade_runs


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'timestep' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


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
    "DurableRunResult",
    "DurableRunResultStreaming",
    "IncompatibleVersionError",
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
    "NothingPendingError",
    "OllamaModel",
    "OllamaModelProvider",
    "PgliteImportError",
    "PgliteStoreNotFoundError",
    "PruneReport",
    "ReadOnlyDatabaseError",
    "RejectionNotAppliedError",
    "ReplayMismatchError",
    "RunCancelledError",
    "RunExistsError",
    "RunInterruptedError",
    "RunNotFoundError",
    "RunOverrides",
    "RunOwner",
    "RunRecord",
    "RunStateStore",
    "ServeError",
    "StateConversionError",
    "StateError",
    "StateNotFoundError",
    "TimestepError",
    "ToolOutputNotSerializableError",
    "UnknownModelPrefixError",
    "UnsupportedStateVersionError",
    "UpgradeResult",
    "VersionMove",
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
    "pin_run",
    "prune_runs",
    "register_agent",
    "reject",
    "resume",
    "retry",
    "run_agent",
    "stream_events",
    "submit",
    "to_typescript_json",
    "uninterruptible",
    "unrecorded",
    "upgrade_runs",
]
