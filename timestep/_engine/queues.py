"""The DBOS queues that carry run continuations to workers that have the agent.

Each starting agent has its own queue, and a process listens only to the queues of agents it
has registered, so a process without an agent's code never takes that agent's work.
"""

from __future__ import annotations

from typing import Any

from dbos import (
    DBOS,
    DBOSClient,
    DBOSPortableJSONSerializer,
    EnqueueOptions,
    WorkflowSerializationFormat,
)

from .. import config
from .._compat import dbos as dbos_compat
from . import launch, registry
from .naming import SEGMENT_WORKFLOW, process_queue_name, queue_name

POLLING_INTERVAL_SECONDS = 0.5
_registered: set[str] = set()
_client: DBOSClient | None = None

__all__ = ["queue_name", "process_queue_name"]


def _listen(name: str) -> None:
    instance = dbos_compat.instance()
    if instance is not None:
        dbos_compat.listen_to_queue(instance, name)


def _listen_to_agent(agent_name: str) -> None:
    if config.settings().take_queued_work:
        _listen(queue_name(agent_name))


def listen_for_registered_agents() -> None:
    """Listen to the queue of every registered agent not yet listened to (DBOS launched)."""
    for name in registry.registered_names():
        if name not in _registered:
            DBOS.register_queue(
                queue_name(name),
                polling_interval_sec=POLLING_INTERVAL_SECONDS,
                worker_concurrency=config.worker_concurrency(),
            )
            _listen_to_agent(name)
            _registered.add(name)


async def listen_for_registered_agents_async() -> None:
    for name in registry.registered_names():
        if name not in _registered:
            await DBOS.register_queue_async(
                queue_name(name),
                polling_interval_sec=POLLING_INTERVAL_SECONDS,
                worker_concurrency=config.worker_concurrency(),
            )
            _listen_to_agent(name)
            _registered.add(name)


def listen_to_own_queue() -> None:
    """Create and listen to this process's own queue (runs it takes over to run itself)."""
    name = process_queue_name(DBOS.executor_id)
    if name not in _registered:
        DBOS.register_queue(name, polling_interval_sec=POLLING_INTERVAL_SECONDS)
        _listen(name)
        _registered.add(name)


def forget_queues() -> None:
    global _client
    _registered.clear()
    if _client is not None:
        _client.destroy()
    _client = None


def client() -> DBOSClient:
    """A DBOS client on the configured database: enqueues without launching DBOS.

    The first call in a process also creates DBOS's tables when no process has yet (the client
    itself never does): a run can be submitted or imported before any worker started.
    """
    global _client
    if _client is None:
        target = launch.database_target()
        instance = dbos_compat.instance()
        if instance is None or not dbos_compat.is_launched(instance):
            DBOS.migrate(target.url)  # a launched instance has migrated them
        _client = DBOSClient(
            system_database_engine=launch.storage_engine(),
            serializer=DBOSPortableJSONSerializer(),
            application_name=config.APP_NAME,
        )
    return _client


async def enqueue_segment(
    workflow_id: str, agent_name: str, request: dict[str, Any], delay_seconds: float | None = None
) -> None:
    """Enqueue a run segment under `workflow_id`; a second enqueue of the same id is a no-op."""
    options: EnqueueOptions = {
        "queue_name": queue_name(agent_name),
        "workflow_name": SEGMENT_WORKFLOW,
        "workflow_id": workflow_id,
        "app_version": config.settings().application_version,
        "serialization_type": WorkflowSerializationFormat.PORTABLE,
    }
    if delay_seconds is not None:
        options["delay_seconds"] = delay_seconds
    await client().enqueue_async(options, request)


async def start_now(workflow_id: str) -> None:
    """Cancel the remaining delay of a delayed segment (no effect on one already running)."""
    await client().set_workflow_delay_async(workflow_id, delay_seconds=0)
