"""Every error Timestep raises derives from `TimestepError`.

Each error says what failed and what to do about it. Errors raised before anything is written
leave the database untouched. Each class carries the HTTP status the inbox answers with
(`http_status`) and the exit code of the `timestep` command (`exit_code`); a subclass inherits
both unless it sets its own.

The hierarchy, with each class's `http_status` and `exit_code` where it sets its own:

                                                                  HTTP exit
* TimestepError                                                   500  1
  + ConfigurationError                                            503
    - DatabaseUnavailableError                                    503
      . ReadOnlyDatabaseError
  + InvalidArgumentError (also ValueError)                        422
    - InvalidRunIdError
    - RunExistsError
  + ArgumentTypeError (also TypeError)
  + RunNotFoundError                                              404
  + AgentMismatchError
    - IncompatibleVersionError                                    409
  + AgentNotRegisteredError
  + ToolOutputNotSerializableError
  + ReplayMismatchError
  + InterruptionException                                              3 (awaiting approval)
  + LifecycleError                                                409
  + RunCancelledError
  + RunInterruptedError
  + DecisionError                                                 409
    - NothingPendingError                                              4 (nothing pending)
    - RejectionNotAppliedError
  + ServeError
  + StateError
    - StateNotFoundError (also FileNotFoundError)
    - StateConversionError
      . UnsupportedStateVersionError
  + ContextStorageError
    - ContextSecretMissingError
  + ModelError
    - ModelConfigurationError (also ValueError)                   422
    - ModelProviderUnreachableError
    - ModelNotFoundError
    - ModelAuthenticationError
    - UnknownModelPrefixError (*)                                 422
  + PgliteImportError
    - PgliteStoreNotFoundError (also FileNotFoundError)
  + CommandError (the `timestep` command's own; not exported)

(*) `UnknownModelPrefixError` is also a `ValueError` and the Agents SDK's `UserError`, so it is
defined in `timestep/models/multi_provider.py`: this module imports no dependency (the
`timestep` command reads it without loading the Agents SDK).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, TypeVar

TYPESCRIPT_SDK_PAIR = "openai-agents 0.24.0 (schema 1.21) / @openai/agents 0.20.0 (schema 1.22)"
"""The SDK pair whose RunState formats the TypeScript adapter converts."""


class TimestepError(Exception):
    """Base class of every error raised by Timestep."""

    http_status: ClassVar[int] = 500
    """The status of the inbox's JSON error answer (`timestep serve`, `timestep.web.app`)."""

    exit_code: ClassVar[int] = 1
    """The exit code of a `timestep` command that fails with this error."""


class ConfigurationError(TimestepError):
    """The database URL or another setting is missing, malformed or unusable."""

    http_status = 503


class DatabaseUnavailableError(ConfigurationError):
    """The configured database cannot be reached or opened."""

    http_status = 503


class ReadOnlyDatabaseError(DatabaseUnavailableError):
    """The database is open read-only here: nothing can be recorded (HTTP 503)."""


class InvalidArgumentError(TimestepError, ValueError):
    """An argument has a value Timestep cannot use (the message says which, and why)."""

    http_status = 422


class ArgumentTypeError(TimestepError, TypeError):
    """An argument is of the wrong type (for example an agent that is not an `agents.Agent`)."""


class InvalidRunIdError(InvalidArgumentError):
    """A run id is empty, too long, has control characters, or names another run's segment."""


class RunExistsError(InvalidArgumentError):
    """A run id that exists was given with another input or model (`on_existing="error"`)."""


class RunNotFoundError(TimestepError):
    """No run with the given id exists in the configured database."""

    http_status = 404

    def __init__(self, run_id: str) -> None:
        super().__init__(
            f"no run with id {run_id!r} in the configured database; "
            "`timestep runs list` shows the runs that exist"
        )
        self.run_id = run_id


class AgentMismatchError(TimestepError):
    """A run is resumed or recovered against an agent graph that differs from its own."""

    def __init__(self, run_id: str, differences: list[str]) -> None:
        detail = "; ".join(differences)
        super().__init__(
            f"run {run_id!r} was started with a different agent graph: {detail}. "
            "Resume it with the agent definitions it was started with, or start a new run id."
        )
        self.run_id = run_id
        self.differences = differences


class IncompatibleVersionError(AgentMismatchError):
    """A run cannot go on under this process's version of its agent: what it recorded or
    waits on does not exist or validate there (or the run is pinned to its version). Nothing
    was changed: the run stays parked, or queued for a process with its version."""

    http_status = 409

    def __init__(
        self,
        run_id: str,
        version: str,
        this_version: str,
        problems: list[str],
        *,
        pinned: bool = False,
    ) -> None:
        why = (
            f"it is pinned to version {version}"
            if pinned
            else "; ".join(problems) or "its graph differs"
        )
        TimestepError.__init__(
            self,
            f"run {run_id!r} is on agent version {version} and cannot go on under this "
            f"process's version {this_version}: {why}. The run is unchanged: a process that "
            f"still runs version {version} (an old worker kept during the rollout) finishes "
            f"it, or fork it onto the new code: `timestep.fork({run_id!r}, turn=N, "
            "agent=<the new agent>)` with N before its first use of what changed",
        )
        self.run_id = run_id
        self.differences = problems
        self.version = version
        self.this_version = this_version
        self.pinned = pinned


class AgentNotRegisteredError(TimestepError):
    """A run needs an agent that this process has not registered."""


class ToolOutputNotSerializableError(TimestepError):
    """A tool returned a value that cannot be stored as JSON."""

    def __init__(self, tool_name: str, value: Any, cause: Exception) -> None:
        super().__init__(
            f"tool {tool_name!r} returned a {type(value).__name__}, which cannot be stored as "
            f"JSON ({cause}); return a str, a JSON value, or a pydantic model"
        )
        self.tool_name = tool_name


class ReplayMismatchError(TimestepError):
    """A recorded step does not match what the run asks for on replay."""


class InterruptionException(TimestepError):
    """A run stopped to wait for a human decision on one or more tool calls.

    Raised by `run_agent(..., raise_on_interruption=True)` with `run_id` and `pending_approvals`
    set. Constructs as in timestep 2026.0.x too: `InterruptionException()` or
    `InterruptionException("message")` (then `run_id` is None and `pending_approvals` empty).
    """

    DEFAULT_MESSAGE = "Agent execution interrupted for approval"
    exit_code = 3

    def __init__(
        self,
        message: str | None = None,
        *,
        run_id: str | None = None,
        pending: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        pending = [dict(p) for p in pending or []]
        if message is None and run_id is not None:
            names = ", ".join(f"{p['tool_name']} ({p['call_id']})" for p in pending)
            message = (
                f"run {run_id!r} awaits approval of {names}; decide with timestep.approve/reject "
                "or `timestep approve RUN_ID`"
            )
        self.message = message if message is not None else self.DEFAULT_MESSAGE
        super().__init__(self.message)
        self.run_id = run_id
        self.pending_approvals = pending


class LifecycleError(TimestepError):
    """A run cannot be cancelled or retried in its current status (the message says why)."""

    http_status = 409


class RunCancelledError(TimestepError):
    """The run was cancelled (`timestep.cancel`); `timestep.retry` continues it."""

    def __init__(self, run_id: str) -> None:
        super().__init__(
            f"run {run_id!r} was cancelled; continue it with timestep.retry({run_id!r}) or "
            f"`timestep runs retry {run_id}`"
        )
        self.run_id = run_id


class RunInterruptedError(TimestepError):
    """This process stopped (SIGINT/SIGTERM) while waiting for a run; the run is not lost.

    Its tool calls that finished were recorded first. The run goes on where it is taken over:
    `run_agent(..., run_id=...)` again, a restarted process, or a worker.
    """

    def __init__(self, run_id: str) -> None:
        super().__init__(
            f"run {run_id!r} was interrupted: this process is stopping (SIGINT/SIGTERM); what it "
            f"finished is recorded, and run_agent(..., run_id={run_id!r}) finishes it"
        )
        self.run_id = run_id


class DecisionError(TimestepError):
    """An approval decision conflicts with one already recorded, or names no pending call."""

    http_status = 409


class ServeError(TimestepError):
    """`timestep serve` cannot serve: the address is in use, the host does not resolve, ..."""


class NothingPendingError(DecisionError):
    """`approve`/`reject` of a run (or call) with nothing pending: no decision was recorded."""

    exit_code = 4


class RejectionNotAppliedError(DecisionError):
    """A rejected call would not be rejected in the run's state; the run stops rather than
    run it (a guard on the rule that a rejection always wins)."""


class StateError(TimestepError):
    """A saved run state is missing, malformed, or of an unsupported version."""


class StateNotFoundError(StateError, FileNotFoundError):
    """No state is saved under the requested key.

    Also a `FileNotFoundError`, which is what timestep 2026.0.x raised for the same case.
    """


class StateConversionError(StateError):
    """A run state cannot be converted faithfully between the Python and TypeScript SDKs.

    The message names the offending field (as a path into the source document).
    """


class UnsupportedStateVersionError(StateConversionError):
    """The state's `$schemaVersion` is not the one the adapter's SDK pair writes."""

    def __init__(self, side: str, found: Any, expected: str) -> None:
        super().__init__(
            f"$schemaVersion: {side} state has schema {found!r}, but the adapter converts only "
            f"schema {expected!r} ({TYPESCRIPT_SDK_PAIR}); re-save the state with that SDK "
            "version"
        )
        self.found = found
        self.expected = expected


class ContextStorageError(TimestepError):
    """A `ContextStorage` declaration is malformed, or a context has no stored form under it."""


class ContextSecretMissingError(ContextStorageError):
    """A run goes on from its records, and its context lacks a declared secret field.

    Secret fields (`ContextStorage.secret_fields`) are never stored, so they must be supplied
    again: by the live context given to `run_agent`, or by the declaration's `deserializer`.
    """

    def __init__(self, missing: list[str], where: str, *, has_deserializer: bool) -> None:
        names = ", ".join(repr(name) for name in missing)
        supply = (
            "the ContextStorage deserializer of this process returned a context without them; "
            "make it supply them (from the environment or a vault)"
            if has_deserializer
            else "give the agent's ContextStorage a deserializer that supplies them, or pass "
            "the whole context to run_agent(..., run_id=RUN_ID, context=...)"
        )
        super().__init__(
            f"{where}: the context lacks the secret field(s) {names}, which are never stored; "
            f"{supply}"
        )
        self.missing = missing


class ModelError(TimestepError):
    """A model provider failed in a way the caller can act on."""


class ModelConfigurationError(ModelError, ValueError):
    """A model or provider was configured with options that contradict each other."""

    http_status = 422


class ModelProviderUnreachableError(ModelError):
    """The model server cannot be reached."""


class ModelNotFoundError(ModelError):
    """The model server does not know the requested model."""


class ModelAuthenticationError(ModelError):
    """The model server rejected the credentials."""


class PgliteImportError(TimestepError):
    """The PGLite store cannot be read (no store at the path, no Node.js, npm failed)."""


class PgliteStoreNotFoundError(PgliteImportError, FileNotFoundError):
    """No PGLite store at the given (or default) directory."""


class CommandError(TimestepError):
    """A command cannot do what it was asked (the message says what to do instead)."""


E = TypeVar("E", bound=BaseException)


def wrapped(exc: BaseException, kind: type[E]) -> E | None:
    """The first `kind` error in `exc`'s chain of causes (`exc` included), if any: the SDK
    wraps errors raised in tools and deserializers in its own `UserError`."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, kind):
            return cause
        cause = cause.__cause__
    return None
