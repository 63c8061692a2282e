"""Where Timestep keeps its data, and how this process identifies itself to DBOS.

Resolution order for the database: `configure(database_url=...)`, then the `TIMESTEP_DB_URL`
environment variable, then a SQLite file in the user data directory chosen by `platformdirs`
(`~/.local/share/timestep/timestep.sqlite` on Linux), created on first use.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

from .errors import ConfigurationError

DB_URL_ENV = "TIMESTEP_DB_URL"
EXECUTOR_ID_ENV = "TIMESTEP_EXECUTOR_ID"
LEASE_ENV = "TIMESTEP_LEASE_SECONDS"
WORKER_CONCURRENCY_ENV = "TIMESTEP_WORKER_CONCURRENCY"
STOP_GRACE_ENV = "TIMESTEP_STOP_GRACE_SECONDS"
DEFAULT_LEASE_SECONDS = 10.0
DEFAULT_STOP_GRACE_SECONDS = 30.0
APP_NAME = "timestep"


@dataclass(frozen=True)
class ModelRetryPolicy:
    """How a model call that failed transiently (unreachable, timeout, HTTP 429 or 5xx) is
    tried again inside its step before the run fails."""

    max_attempts: int = 4
    """Attempts in all, the first included (1 turns retries off)."""

    interval_seconds: float = 1.0
    """Wait before the second attempt."""

    backoff_rate: float = 2.0
    """Each later wait is this many times the previous one."""


@dataclass
class Settings:
    """Process-wide settings; change them with `configure()` before the first run."""

    database_url: str | None = None
    """Explicit database URL; `None` means `TIMESTEP_DB_URL` or the SQLite default."""

    database_url_source: str | None = None
    """Where `database_url` came from, as errors name it (the CLI: `--db`); `None` means
    `timestep.configure(database_url=...)`."""

    executor_id: str | None = None
    """DBOS executor id of this process; `None` means `TIMESTEP_EXECUTOR_ID`, else a new id
    for each process (`HOST-PID-RANDOM`).

    Each process runs only its own runs. A dead process's runs are taken over by live ones once
    its lease runs out, whatever its id; a stable id (a worker's) only lets a restarted process
    pick up its own leftovers itself. Two live processes never share an id: the second waits
    for the first one's lease, then refuses to start.
    """

    take_queued_work: bool = True
    """Whether this process dequeues runs of its agents from their queues (continuations after
    approvals, submitted runs, runs taken over from dead processes). `timestep run` turns it
    off: a command that exits when its own run ends must not take the fleet's work."""

    model_retry: ModelRetryPolicy = field(default_factory=ModelRetryPolicy)
    """Retries of transient model-call failures (non-streamed calls)."""

    lease_seconds: float | None = None
    """Seconds after its last heartbeat when this process counts as dead to the others;
    `None` means `TIMESTEP_LEASE_SECONDS`, else 10. Heartbeats go every quarter lease."""

    stop_grace_seconds: float | None = None
    """On SIGINT/SIGTERM, how long tool calls in flight may still run to finish and be recorded
    before they are cancelled and the process exits; `None` means `TIMESTEP_STOP_GRACE_SECONDS`,
    else 30."""

    application_version: str = field(default=f"{APP_NAME}-1")
    """DBOS application version under which runs are started and recovered.

    Pinned rather than derived from source hashes, so editing an unrelated file does not strand
    pending runs. Bump it only when recorded steps of old runs can no longer replay.
    """


_settings = Settings()
_frozen = False  # set once DBOS is launched with these settings


def configure(
    *,
    database_url: str | None = None,
    database_url_source: str | None = None,
    executor_id: str | None = None,
    application_version: str | None = None,
    lease_seconds: float | None = None,
    take_queued_work: bool | None = None,
    model_retry: ModelRetryPolicy | None = None,
    stop_grace_seconds: float | None = None,
) -> None:
    """Set where runs are stored and how this process identifies itself.

    Must be called before the first run in the process; once DBOS is launched the database
    cannot change (raises `ConfigurationError`). `database_url_source` names where the URL
    came from in errors about the database (the CLI passes `--db`).
    """
    if _frozen:
        raise ConfigurationError(
            "timestep.configure() was called after the first run launched DBOS in this process; "
            "call it before running any agent"
        )
    if database_url is not None:
        _settings.database_url = database_url
        _settings.database_url_source = database_url_source
    if executor_id is not None:
        _settings.executor_id = executor_id
    if application_version is not None:
        _settings.application_version = application_version
    if lease_seconds is not None:
        _settings.lease_seconds = _check_lease(lease_seconds, "lease_seconds")
    if take_queued_work is not None:
        _settings.take_queued_work = take_queued_work
    if model_retry is not None:
        if model_retry.max_attempts < 1 or model_retry.interval_seconds < 0:
            raise ConfigurationError(
                f"model_retry needs max_attempts >= 1 and interval_seconds >= 0, got {model_retry}"
            )
        _settings.model_retry = model_retry
    if stop_grace_seconds is not None:
        _settings.stop_grace_seconds = _check_grace(stop_grace_seconds, "stop_grace_seconds")


def freeze() -> None:
    """Refuse `configure()` from now on (DBOS was launched with these settings)."""
    global _frozen
    _frozen = True


def unfreeze() -> None:
    global _frozen
    _frozen = False


def settings() -> Settings:
    """The current settings (live object; read-only by convention)."""
    return _settings


def default_database_path() -> Path:
    """The SQLite file used when no database is configured."""
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)) / "timestep.sqlite"


def configured_database_url() -> str | None:
    """The database URL given by `configure()` or `TIMESTEP_DB_URL`; None for the default."""
    return _settings.database_url or os.environ.get(DB_URL_ENV) or None


def database_url_source() -> str:
    """Where the database URL in force comes from, for errors that tell what to check."""
    if _settings.database_url:
        return _settings.database_url_source or "timestep.configure(database_url=...)"
    if os.environ.get(DB_URL_ENV):
        return DB_URL_ENV
    return f"the default location (no --db, {DB_URL_ENV} or timestep.configure(database_url=...))"


def database_url() -> str:
    """The database URL in force, with the SQLite default applied."""
    url = configured_database_url()
    if url:
        return url
    path = default_database_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def executor_id() -> str | None:
    return _settings.executor_id or os.environ.get(EXECUTOR_ID_ENV) or None


def _check_lease(value: float, where: str) -> float:
    if not value > 0:
        raise ConfigurationError(f"{where} must be a positive number of seconds, got {value!r}")
    return float(value)


def lease_seconds() -> float:
    return _seconds(_settings.lease_seconds, LEASE_ENV, DEFAULT_LEASE_SECONDS, _check_lease)


def _seconds(
    configured: float | None, env: str, default: float, check: Callable[[float, str], float]
) -> float:
    """A duration: as configured, else from the environment variable `env`, else `default`."""
    if configured is not None:
        return configured
    text = os.environ.get(env, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ConfigurationError(f"{env}={text!r} is not a number of seconds") from None
    return check(value, env)


def _check_grace(value: float, where: str) -> float:
    if not value >= 0:
        raise ConfigurationError(f"{where} must be a number of seconds >= 0, got {value!r}")
    return float(value)


def stop_grace_seconds() -> float:
    """How long a stopping process lets its tool calls in flight finish (`stop_grace_seconds`)."""
    return _seconds(
        _settings.stop_grace_seconds, STOP_GRACE_ENV, DEFAULT_STOP_GRACE_SECONDS, _check_grace
    )


def worker_concurrency() -> int | None:
    """At most this many runs of one agent at once in one process (`TIMESTEP_WORKER_CONCURRENCY`;
    unset means no limit). With several workers, a limit spreads a burst of queued runs over
    them instead of letting the first one to poll take them all."""
    text = os.environ.get(WORKER_CONCURRENCY_ENV, "").strip()
    if not text:
        return None
    if not text.isdigit() or int(text) < 1:
        raise ConfigurationError(f"{WORKER_CONCURRENCY_ENV}={text!r} is not a positive integer")
    return int(text)
