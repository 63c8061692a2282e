"""Hooks into DBOS 3.4 that have no public route.

- The process's DBOS instance, whether it is launched, its engine and its serializer: Timestep
  adopts an application's own instance instead of creating a second one.
- Stream writes that are not recorded operations, made from a writer task, and reading what
  a stream holds without waiting or recording (the durable event stream, batched).
- The id the next step of a workflow will take: a recovered segment tells run hooks whether the
  model call they announce is replayed from its record.
- DBOS's errors for a cancelled or taken-over execution, which it does not export.
- Stopping the threads that dequeue work without destroying the instance (a stopping process).
- DBOS's backoff when a database operation lost its connection (60 s at most), bounded so a
  step that finished during an outage is recorded soon after the database is back.
- Moving a workflow that waits on a queue to another queue, only while it still waits, inside
  the caller's transaction (`DBOSClient.resume_workflow(queue_name=)` also takes a workflow
  another process is running): a run that moves to a newer agent version moves its queued
  continuation with it.
- Listening to a queue after launch: `DBOS.listen_queues` must be called before launch, but
  a process registers agents (and so their queues) whenever `run_agent` first sees them. DBOS's
  queue manager re-reads the listened list every second, so appending to it takes effect.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from dbos import DBOS, WorkflowSerializationFormat


def instance() -> DBOS | None:
    """The process's DBOS instance, if one was constructed."""
    from dbos import _dbos

    return _dbos._dbos_global_instance


def is_launched(dbos: DBOS) -> bool:
    return bool(dbos._launched)


def system_engine(dbos: DBOS) -> sa.Engine:
    """The SQLAlchemy engine of a launched instance's system database."""
    engine: sa.Engine = dbos._sys_db.engine
    return engine


def serializer(dbos: DBOS) -> Any:
    return dbos._serializer


def listened_queues(dbos: DBOS) -> list[str] | None:
    """The queues the instance dequeues from; None means every queue in the database."""
    queues: list[str] | None = dbos._listening_queues
    return queues


def listen_to_queue(dbos: DBOS, name: str) -> None:
    """Also dequeue from `name`, before or after launch.

    A no-op for an instance that listens to every queue (an application's own instance that
    never called `DBOS.listen_queues`).
    """
    queues = listened_queues(dbos)
    if queues is not None and name not in queues:
        queues.append(name)


def move_waiting_in(
    client: Any, connection: sa.Connection, workflow_id: str, queue_name: str
) -> bool:
    """Put `workflow_id` on queue `queue_name` if it is still waiting on a queue (ENQUEUED, or
    DELAYED), in the caller's transaction on the system database; False if a process dequeued
    it already (or it never was queued). One guarded UPDATE: a dequeue races it on the row."""
    sys_db = client._sys_db
    sys_db._apply_caller_schema(connection)
    table = sys_db.tables.workflow_status
    moved = connection.execute(
        sa.update(table)
        .where(table.c.workflow_uuid == workflow_id, table.c.status.in_(("ENQUEUED", "DELAYED")))
        .where(table.c.queue_name.is_not(None))
        .values(queue_name=queue_name)
    ).rowcount
    return bool(moved)


def stop_dequeuing(dbos: DBOS) -> None:
    """Stop the instance's queue, scheduler and poller threads, as `DBOS.destroy` does first,
    leaving its event loop and system database working: a stopping process takes no more work
    while its steps in flight finish and are recorded."""
    for event in dbos.background_thread_stop_events:
        event.set()


def runs_here(handle: Any) -> bool:
    """Whether a handle from `DBOS.start_workflow_async` executes the workflow in this process.

    Starting an existing workflow id returns a polling handle instead: another execution (live
    or dead) owns it.
    """
    from dbos._core import WorkflowHandleAsyncTask

    return isinstance(handle, WorkflowHandleAsyncTask)


def is_stop(error: BaseException) -> bool:
    """Whether `error`, or what it was raised from, is DBOS stopping an execution that no longer
    owns its workflow: cancelled, or taken over (the error classes are not exported by DBOS)."""
    from dbos._error import (
        DBOSAwaitedWorkflowCancelledError,
        DBOSWorkflowCancelledError,
        DBOSWorkflowConflictIDError,
    )

    stops = (
        DBOSWorkflowCancelledError,
        DBOSAwaitedWorkflowCancelledError,
        DBOSWorkflowConflictIDError,
    )
    seen: BaseException | None = error
    for _ in range(10):
        if seen is None:
            return False
        if isinstance(seen, stops):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def is_awaited_cancellation(error: BaseException) -> bool:
    """Whether waiting for a workflow's result failed because the workflow was cancelled."""
    from dbos._error import DBOSAwaitedWorkflowCancelledError

    return isinstance(error, DBOSAwaitedWorkflowCancelledError)


def stream_position() -> tuple[str, int]:
    """The current workflow's id and the id of its current operation: inside a step the
    step's own id, in workflow code the id of the last step started."""
    from dbos._context import get_local_dbos_context

    ctx = get_local_dbos_context()
    assert ctx is not None and ctx.workflow_id, "only inside a DBOS workflow"
    return ctx.workflow_id, ctx.function_id


def next_step_id() -> int:
    """The id the current workflow's next step will take (called from workflow code): DBOS
    numbers steps in the order they start and has no public way to ask for the next one."""
    return stream_position()[1] + 1


def write_stream_entry(workflow_id: str, function_id: int, key: str, value: Any) -> None:
    """Append `value` to the stream `key` of `workflow_id` without recording an operation.

    `DBOS.write_stream` records a workflow-level write as an operation of its own (a step id
    drawn for every write), and has no form that writes from another task. This is DBOS's
    write from inside a step: one INSERT at the next free offset, fenced by the ownership
    token of the execution in the calling context (a taken-over execution cannot write), so it
    must run in a context copied from the workflow's (`asyncio.to_thread` from a task the
    workflow started). `function_id` is stored with the row: DBOS's fork copies the rows
    written before its start step.
    """
    from dbos._dbos import _get_dbos_instance

    _get_dbos_instance()._sys_db.write_stream_from_step(
        workflow_id,
        function_id,
        key,
        value,
        serialization_type=WorkflowSerializationFormat.PORTABLE,
    )


def stream_values(workflow_id: str, key: str) -> list[Any]:
    """The values written so far to the stream `key` of `workflow_id`, in offset order, without
    waiting and without recording a read (DBOS's `read_stream` inside a workflow records every
    value it delivers as an operation); a closing marker is left out."""
    from dbos._dbos import _get_dbos_instance
    from dbos._serialization import deserialize_value
    from dbos._sys_db import is_stream_closed_sentinel

    sys_db = _get_dbos_instance()._sys_db
    values: list[Any] = []
    offset = 0
    while True:
        _status, rows = sys_db.read_stream_values(workflow_id, key, offset, 1000)
        offset += len(rows)
        for serialized, serialization in rows:
            value = deserialize_value(serialized, serialization, sys_db.serializer)
            if not is_stream_closed_sentinel(value):
                values.append(value)
        if len(rows) < 1000:
            return values


def bound_connection_retries(initial_seconds: float, max_seconds: float) -> None:
    """Make DBOS's retries of database operations that lost their connection back off from
    `initial_seconds` to `max_seconds` at most (DBOS 3.4: from 1 s to 60 s, with ±50% jitter).

    DBOS blocks an operation that lost its database and retries it until it succeeds: right
    for correctness, but after a 15 s outage the write of a finished step's output could sleep
    on for up to 24 s more. `dbos._sys_db.db_retry` is the decorator doing it. It is applied
    at class definition to most `SystemDatabase` methods, and at call time to the closures
    inside others (`record_operation_result`, which records a step's output, among them):
    the methods are wrapped again around the function they wrap, and the module's name is
    replaced, so both take the bounds. Idempotent.
    """
    from dbos import _sys_db

    original = getattr(_sys_db.db_retry, "__timestep_original__", _sys_db.db_retry)

    def bounded(
        initial_backoff: float = 1.0,
        max_backoff: float = 60.0,
        *,
        sys_db: Any = None,
    ) -> Any:
        return original(
            min(initial_backoff, initial_seconds), min(max_backoff, max_seconds), sys_db=sys_db
        )

    bounded.__timestep_original__ = original  # type: ignore[attr-defined]
    _sys_db.db_retry = bounded
    wrapper_code = original()(lambda: None).__code__
    system_database = _sys_db.SystemDatabase  # its subclasses use no `db_retry` of their own
    for name, value in list(vars(system_database).items()):
        wrapped = getattr(value, "__wrapped__", None)
        if getattr(value, "__code__", None) is wrapper_code and wrapped is not None:
            setattr(system_database, name, bounded()(wrapped))
