"""The DBOS queues that carry run continuations to workers that can run them.

Each version of a starting agent (its graph fingerprint) has its own queue, and a process
listens only to the queues of the versions it has registered, so a process without a run's
code, or with another version of it, never takes that run's work. Every process with an agent
also listens to the agent's queue of before versions existed (`naming.queue_name`), so that
what was queued there still runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import sqlalchemy as sa
from dbos import (
    DBOS,
    DBOSClient,
    DBOSPortableJSONSerializer,
    EnqueueOptions,
    WorkflowSerializationFormat,
)

from .. import config
from .._compat import dbos as dbos_compat
from ..state import storage
from ..state.run_record import RunRecord
from . import requests
from .naming import (
    DECIDED_TOPIC,
    SEGMENT_WORKFLOW,
    process_queue_name,
    queue_name,
    segment_workflow_id,
    version_queue_name,
)
from .requests import SegmentRequest

POLLING_INTERVAL_SECONDS = 0.5
_registered: set[str] = set()
_client: DBOSClient | None = None


def _register(name: str, *, listen: bool, worker_concurrency: int | None = None) -> None:
    """Register queue `name` in the database (once per process) and listen to it if asked."""
    if name in _registered:
        return
    DBOS.register_queue(
        name, polling_interval_sec=POLLING_INTERVAL_SECONDS, worker_concurrency=worker_concurrency
    )
    instance = dbos_compat.instance()
    if listen and instance is not None:
        dbos_compat.listen_to_queue(instance, name)
    _registered.add(name)


def agent_queues() -> list[str]:
    """The queues of every registered agent: its legacy queue and its version's queue."""
    from . import registry  # (its context codecs import pydantic: deciders do not need it)

    names: list[str] = []
    for name in registry.registered_names():
        names.append(queue_name(name))
        version = registry.version_of(name)
        if version is not None:
            names.append(version_queue_name(name, version[0]))
    return names


def listen_for_registered_agents() -> None:
    """Register the queues of every registered agent (its version's and its legacy one), and
    listen to them when this process takes queued work (DBOS launched)."""
    for name in agent_queues():
        _register(
            name,
            listen=config.settings().take_queued_work,
            worker_concurrency=config.worker_concurrency(),
        )


async def listen_for_registered_agents_async() -> None:
    if all(name in _registered for name in agent_queues()):
        return  # the common case, a run of a known agent: no thread hop
    # DBOS's synchronous calls refuse to run on a thread with a running event loop.
    await asyncio.to_thread(listen_for_registered_agents)


def listen_to_own_queue() -> None:
    """Create and listen to this process's own queue (runs it takes over to run itself)."""
    _register(process_queue_name(DBOS.executor_id), listen=True)


def forget_queues() -> None:
    global _client, _client_engine, _tables_made_on
    _registered.clear()
    if _client is not None:
        _client.destroy()
    _client = None
    _client_engine = _tables_made_on = None


_client_engine: sa.Engine | None = None
_tables_made_on: sa.Engine | None = None


def client(*, make_tables: bool = True) -> DBOSClient:
    """A DBOS client on the configured database: enqueues without launching DBOS.

    The first call in a process also creates DBOS's tables when no process has yet (the client
    itself never does): a run can be submitted or imported before any worker started. A caller
    that knows they exist (a decider: the parked run was made by a DBOS workflow, or by an
    import that made them) passes `make_tables=False` and saves the migration check.
    """
    global _client, _client_engine, _tables_made_on
    engine = storage.storage_engine()
    if make_tables and _tables_made_on is not engine:
        instance = dbos_compat.instance()
        launched = instance is not None and dbos_compat.is_launched(instance)
        if not launched and not storage.is_read_only():
            DBOS.migrate(storage.database_target().url)  # a launched instance has migrated them
        _tables_made_on = engine
    if _client is not None and _client_engine is not engine:
        # Made on another database (a background thread raced a switch of databases): its
        # engine is not this process's any more.
        _client.destroy()
        _client = None
    if _client is None:
        _client = DBOSClient(
            system_database_engine=engine,
            serializer=DBOSPortableJSONSerializer(),
            application_name=config.APP_NAME,
        )
        _client_engine = engine
    return _client


def _options(
    workflow_id: str, agent_name: str, fingerprint: str, delay_seconds: float | None = None
) -> EnqueueOptions:
    options: EnqueueOptions = {
        "queue_name": version_queue_name(agent_name, fingerprint),
        "workflow_name": SEGMENT_WORKFLOW,
        "workflow_id": workflow_id,
        "app_version": config.settings().application_version,
        "serialization_type": WorkflowSerializationFormat.PORTABLE,
    }
    if delay_seconds is not None:
        options["delay_seconds"] = delay_seconds
    return options


async def enqueue_segment(
    workflow_id: str,
    agent_name: str,
    fingerprint: str,
    request: SegmentRequest,
    delay_seconds: float | None = None,
) -> None:
    """Enqueue a run segment under `workflow_id` on the queue of the run's version (graph
    `fingerprint`); a second enqueue of the same id is a no-op."""
    await client().enqueue_async(
        _options(workflow_id, agent_name, fingerprint, delay_seconds), request
    )


def enqueue_segment_in(
    connection: sa.Connection,
    workflow_id: str,
    agent_name: str,
    fingerprint: str,
    request: SegmentRequest,
    *,
    wake: bool = False,
) -> None:
    """`enqueue_segment` inside the caller's transaction on the storage engine (it commits
    with the caller's writes, or not at all). With `wake`, also tell a segment that waits out
    an approval deadline that its calls are decided (`DECIDED_TOPIC`)."""
    decider = client(make_tables=False)
    decider.enqueue_in_transaction(
        connection, _options(workflow_id, agent_name, fingerprint), request
    )
    if wake:
        decider.send_in_transaction(connection, workflow_id, True, DECIDED_TOPIC)


async def start_now(workflow_id: str) -> None:
    """Cancel the remaining delay of a delayed segment (no effect on one already running)."""
    await client(make_tables=False).set_workflow_delay_async(workflow_id, delay_seconds=0)


def make_dbos_tables() -> None:
    """Create DBOS's tables on a fresh database (a state imported before any worker ran)."""
    client()


def continuation_enqueuer(record: RunRecord) -> Callable[[sa.Connection], None]:
    """What enqueues the next segment of parked run `record` inside the transaction that
    advances it (`records.decide`): the run goes on exactly when the decisions commit."""
    next_id = segment_workflow_id(record.run_id, record.segment + 1)
    request = requests.continuation(
        record.run_id,
        record.segment + 1,
        record.agent_name,
        approval_timeout=record.approval_timeout,
        stream=record.streamed,
    )
    client(make_tables=False)  # made before the transaction: it holds a write lock

    def enqueue(connection: sa.Connection) -> None:
        # A run with an approval deadline has this segment enqueued already, delayed (the
        # enqueue is then a no-op): `wake` tells it where it waits out its deadline.
        enqueue_segment_in(
            connection,
            next_id,
            record.agent_name,
            record.fingerprint,
            request,
            wake=record.approval_timeout is not None,
        )

    return enqueue


def queue_mover(
    workflow_id: str, agent_name: str, fingerprint: str, *, required: bool
) -> Callable[[sa.Connection], bool]:
    """What moves a run's segment `workflow_id`, if it waits on a queue, to the queue of
    version `fingerprint`, inside the transaction that records the run's move
    (`records.move_version`). With `required` (the run is running: its segment exists), a
    segment that a process took already is left to it and the move is undone (False): it runs
    on the version it was taken with."""
    mover = client(make_tables=False)  # made before the transaction: it holds a write lock

    def move(connection: sa.Connection) -> bool:
        moved = dbos_compat.move_waiting_in(
            mover, connection, workflow_id, version_queue_name(agent_name, fingerprint)
        )
        return moved or not required

    return move
