"""DBOS and the storage engine for this process.

Timestep launches DBOS itself on first use. When the application has already configured (and
possibly launched) its own DBOS instance, Timestep uses that instance and its database.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import sqlalchemy as sa
from dbos import DBOS, DBOSConfig, DBOSPortableJSONSerializer

from .. import config
from ..state import schema
from ..state.database import (
    DatabaseTarget,
    create_engine,
    ensure_postgres_database,
    parse_database_url,
)

logger = logging.getLogger("timestep")


@dataclass
class _Process:
    target: DatabaseTarget | None = None
    engine: sa.Engine | None = None
    dbos_ready: bool = False
    launched_by_us: bool = False


_process = _Process()
_lock = threading.RLock()


def _existing_dbos() -> DBOS | None:
    from dbos import _dbos

    return _dbos._dbos_global_instance


def is_launched_by_timestep() -> bool:
    return _process.launched_by_us


def storage_engine() -> sa.Engine:
    """The engine for Timestep's tables, migrated. Does not launch DBOS.

    Processes that only inspect or decide (the CLI, an HTTP handler) use this alone.
    """
    with _lock:
        if _process.engine is None:
            instance = _existing_dbos()
            if instance is not None and instance._launched:
                _process.engine = instance._sys_db.engine
                _process.target = parse_database_url(
                    _process.engine.url.render_as_string(hide_password=False)
                )
            else:
                target = parse_database_url(config.database_url())
                if not target.is_sqlite:
                    ensure_postgres_database(target)
                _process.target = target
                _process.engine = create_engine(target, pool_size=20)
            schema.migrate(_process.engine)
        return _process.engine


def ensure_dbos() -> None:
    """Launch DBOS for this process (once), or adopt the application's instance."""
    if _process.dbos_ready:
        return
    with _lock:
        if _process.dbos_ready:
            return
        from ..models import configure_tracing_for_keys
        from . import workflow  # noqa: F401  registers the workflows before launch

        # Runs on Ollama alone must not try (and fail) to export traces to OpenAI.
        configure_tracing_for_keys()

        instance = _existing_dbos()
        if instance is None:
            engine = storage_engine()
            dbos_config: DBOSConfig = {
                "name": config.APP_NAME,
                "system_database_engine": engine,
                "application_version": config.settings().application_version,
                "serializer": DBOSPortableJSONSerializer(),
                "log_level": "WARNING",
            }
            executor = config.executor_id()
            if executor:
                dbos_config["executor_id"] = executor
            DBOS(config=dbos_config)
            _process.launched_by_us = True
        else:
            if not isinstance(instance._serializer, DBOSPortableJSONSerializer):
                logger.warning(
                    "timestep: the application's DBOS instance stores step outputs with %s; "
                    "configure DBOS(config={..., 'serializer': DBOSPortableJSONSerializer()}) "
                    "so that recorded model and tool outputs are stored as JSON",
                    type(instance._serializer).__name__,
                )
            if not instance._launched:
                logger.info("timestep: launching the application's DBOS instance")
        DBOS.launch()
        storage_engine()
        _process.dbos_ready = True
        from . import queues

        queues.listen_for_registered_agents()


def shutdown() -> None:
    """Stop DBOS if Timestep launched it (a worker's clean exit); work in flight resumes on
    the next start through recovery."""
    with _lock:
        if _process.launched_by_us and _existing_dbos() is not None:
            DBOS.destroy(destroy_registry=False)
        _process.dbos_ready = False
        _process.launched_by_us = False


def reset_for_tests() -> None:
    """Forget the process's DBOS instance and engine (tests that switch databases)."""
    from . import queues

    with _lock:
        queues.forget_queues()
        if _existing_dbos() is not None:
            DBOS.destroy(destroy_registry=False)
        if _process.engine is not None:
            _process.engine.dispose()
        _process.engine = None
        _process.target = None
        _process.dbos_ready = False
        _process.launched_by_us = False
