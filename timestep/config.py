"""Where Timestep keeps its data, and how this process identifies itself to DBOS.

Resolution order for the database: `configure(database_url=...)`, then the `TIMESTEP_DB_URL`
environment variable, then a SQLite file in the user data directory chosen by `platformdirs`
(`~/.local/share/timestep/timestep.sqlite` on Linux), created on first use.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

from .errors import ConfigurationError

DB_URL_ENV = "TIMESTEP_DB_URL"
EXECUTOR_ID_ENV = "TIMESTEP_EXECUTOR_ID"
APP_NAME = "timestep"


@dataclass
class Settings:
    """Process-wide settings; change them with `configure()` before the first run."""

    database_url: str | None = None
    """Explicit database URL; `None` means `TIMESTEP_DB_URL` or the SQLite default."""

    executor_id: str | None = None
    """DBOS executor id of this process; `None` means `TIMESTEP_EXECUTOR_ID` or DBOS's "local".

    A restarted process recovers the pending runs of its own executor id only, so a worker
    must keep its id across restarts, and two live workers on one database need distinct ids.
    """

    application_version: str = field(default=f"{APP_NAME}-1")
    """DBOS application version under which runs are started and recovered.

    Pinned rather than derived from source hashes, so editing an unrelated file does not strand
    pending runs. Bump it only when recorded steps of old runs can no longer replay.
    """


_settings = Settings()


def configure(
    *,
    database_url: str | None = None,
    executor_id: str | None = None,
    application_version: str | None = None,
) -> None:
    """Set where runs are stored and how this process identifies itself.

    Must be called before the first run in the process; once DBOS is launched the database
    cannot change (raises `ConfigurationError`).
    """
    from ._engine.launch import is_launched_by_timestep

    if is_launched_by_timestep():
        raise ConfigurationError(
            "timestep.configure() was called after the first run launched DBOS in this process; "
            "call it before running any agent"
        )
    if database_url is not None:
        _settings.database_url = database_url
    if executor_id is not None:
        _settings.executor_id = executor_id
    if application_version is not None:
        _settings.application_version = application_version


def settings() -> Settings:
    """The current settings (live object; read-only by convention)."""
    return _settings


def default_database_path() -> Path:
    """The SQLite file used when no database is configured."""
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)) / "timestep.sqlite"


def database_url() -> str:
    """The database URL in force, with the SQLite default applied."""
    url = _settings.database_url or os.environ.get(DB_URL_ENV)
    if url:
        return url
    path = default_database_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def executor_id() -> str | None:
    return _settings.executor_id or os.environ.get(EXECUTOR_ID_ENV) or None
