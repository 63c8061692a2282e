"""The storage engine of this process: Timestep's tables (and DBOS's), without DBOS running.

Processes that only inspect or decide (the CLI, an HTTP handler) need nothing else. When the
application has launched its own DBOS instance, its database and engine are used.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import sqlalchemy as sa

from .. import config
from .._compat import dbos as dbos_compat
from ..state import schema
from ..state.database import (
    DatabaseTarget,
    create_engine,
    ensure_postgres_database,
    parse_database_url,
)


@dataclass
class _Storage:
    target: DatabaseTarget | None = None
    engine: sa.Engine | None = None


_storage = _Storage()
_lock = threading.Lock()


def storage_engine() -> sa.Engine:
    """The engine for Timestep's tables, migrated. Does not launch DBOS.

    Processes that only inspect or decide (the CLI, an HTTP handler) use this alone.
    """
    with _lock:
        if _storage.engine is None:
            instance = dbos_compat.instance()
            if instance is not None and dbos_compat.is_launched(instance):
                _storage.engine = dbos_compat.system_engine(instance)
                _storage.target = parse_database_url(
                    _storage.engine.url.render_as_string(hide_password=False)
                )
            else:
                target = parse_database_url(config.database_url())
                if not target.is_sqlite:
                    ensure_postgres_database(target)
                _storage.target = target
                _storage.engine = create_engine(target, pool_size=20)
            schema.migrate(_storage.engine)
        return _storage.engine


def database_target() -> DatabaseTarget:
    """The database in force (opens and migrates Timestep's tables on first use)."""
    storage_engine()
    assert _storage.target is not None
    return _storage.target


def forget() -> None:
    """Dispose of the engine (tests that switch databases)."""
    with _lock:
        if _storage.engine is not None:
            _storage.engine.dispose()
        _storage.engine = None
        _storage.target = None
