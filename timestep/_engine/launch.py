"""Launching DBOS for this process (the storage engine alone is `storage`).

Timestep launches DBOS itself on first use. When the application has already configured (and
possibly launched) its own DBOS instance, Timestep uses that instance and its database.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from dataclasses import dataclass

from dbos import DBOS, DBOSConfig, DBOSPortableJSONSerializer

from .. import config
from .._compat import dbos as dbos_compat
from ..state import storage
from ..state.database import create_engine
from . import liveness, outages, registry, stopping
from .fleet import Fleet

logger = logging.getLogger("timestep")


@dataclass
class _Process:
    dbos_ready: bool = False
    launched_by_us: bool = False
    fleet: Fleet | None = None


_process = _Process()
_lock = threading.RLock()


_existing_dbos = dbos_compat.instance


def new_executor_id() -> str:
    """An executor id for a process that was given none: unique to this start."""
    return f"{liveness.host_name()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def dbos_ready() -> bool:
    """Whether `ensure_dbos` has done its work in this process (no thread needed to ask)."""
    return _process.dbos_ready


def fleet() -> Fleet | None:
    """This process as an owner, once DBOS is launched."""
    return _process.fleet


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
        # A step that finished during a database outage is recorded soon after it is back.
        outages.shorten_dbos_retries()

        from . import queues

        instance = _existing_dbos()
        engine = storage.storage_engine()
        restrict_queues = instance is None
        if instance is None:
            configured = config.executor_id()
            dbos_config: DBOSConfig = {
                "name": config.APP_NAME,
                "system_database_engine": engine,
                "application_version": config.settings().application_version,
                "serializer": DBOSPortableJSONSerializer(),
                "log_level": "WARNING",
                "executor_id": configured or new_executor_id(),
            }
            instance = DBOS(config=dbos_config)
            _process.launched_by_us = True
            config.freeze()  # the database and identity are DBOS's now
        else:
            configured = DBOS.executor_id
            if not isinstance(dbos_compat.serializer(instance), DBOSPortableJSONSerializer):
                logger.warning(
                    "timestep: the application's DBOS instance stores step outputs with %s; "
                    "configure DBOS(config={..., 'serializer': DBOSPortableJSONSerializer()}) "
                    "so that recorded model and tool outputs are stored as JSON",
                    type(dbos_compat.serializer(instance)).__name__,
                )
            if DBOS.executor_id == "local":
                logger.warning(
                    "timestep: the application's DBOS instance runs under DBOS's default executor "
                    "id 'local'; give each process its own (DBOSConfig executor_id) so that a "
                    "restarting process cannot take over the runs of a live one"
                )
            if not dbos_compat.is_launched(instance):
                logger.info("timestep: launching the application's DBOS instance")
        owner = Fleet(
            # Heartbeats get connections of their own: a pool busy with runs must not delay
            # them past the lease (peers would count this process dead).
            engine=create_engine(storage.database_target(), pool_size=2),
            client=queues.client,
            executor_id=DBOS.executor_id,
            lease_seconds=config.lease_seconds(),
            agents=registry.advertised_names,
            on_own_queue=queues.listen_to_own_queue,
        )
        owner.register()
        if configured and not dbos_compat.is_launched(instance):
            # A stable id: what its previous (dead) start left goes where it belongs first.
            # (An application that launched its DBOS already recovered its own executor's
            # workflows, which may be running now: they must not be moved.)
            owner.take_over_own_past()
        if restrict_queues:
            # Dequeue only the queues of the agent versions this process has (and its own,
            # when used).
            takes_work = config.settings().take_queued_work
            DBOS.listen_queues(queues.agent_queues() if takes_work else [])
        if not dbos_compat.is_launched(instance):
            DBOS.launch()
        _process.fleet = owner
        owner.start()
        _process.dbos_ready = True
        queues.listen_for_registered_agents()


def _stop_taking_work() -> None:
    """When this process begins to stop: no takeovers, and a DBOS Timestep launched stops
    dequeuing (an application's own instance is the application's to stop)."""
    owner = _process.fleet
    if owner is not None:
        owner.take_over_continuously = False
    instance = _existing_dbos()
    if _process.launched_by_us and instance is not None:
        dbos_compat.stop_dequeuing(instance)


stopping.on_stop(_stop_taking_work)


def shutdown() -> None:
    """Stop DBOS if Timestep launched it (a worker's clean exit); work in flight resumes on
    the next start through recovery."""
    with _lock:
        if _process.launched_by_us and _existing_dbos() is not None:
            DBOS.destroy(destroy_registry=False)
        _stop_fleet()
        _process.dbos_ready = False
        _process.launched_by_us = False
        config.unfreeze()


def _stop_fleet() -> None:
    if _process.fleet is not None:
        _process.fleet.stop()
        _process.fleet.engine.dispose()
        _process.fleet = None


def reset_for_tests() -> None:
    """Forget the process's DBOS instance and engine (tests that switch databases)."""
    from . import queues

    with _lock:
        queues.forget_queues()
        if _existing_dbos() is not None:
            DBOS.destroy(destroy_registry=False)
        _stop_fleet()
        storage.reset()
        stopping.reset_for_tests()
        _process.dbos_ready = False
        _process.launched_by_us = False
        config.unfreeze()
