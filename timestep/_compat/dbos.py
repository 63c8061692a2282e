"""Hooks into DBOS 3.4 that have no public route.

- The process's DBOS instance, whether it is launched, its engine and its serializer: Timestep
  adopts an application's own instance instead of creating a second one.
- Stream writes taken in one task and made in another (the durable event stream).
- DBOS's errors for a cancelled or taken-over execution, which it does not export.
- Listening to a queue after launch: `DBOS.listen_queues` must be called before launch, but
  a process registers agents (and so their queues) whenever `run_agent` first sees them. DBOS's
  queue manager re-reads the listened list every second, so appending to it takes effect.
"""

from __future__ import annotations

from collections.abc import Callable
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


def deferred_workflow_stream_write(key: str, value: Any) -> Callable[[], None]:
    """A recorded write of `value` to the current workflow's stream `key`, to run later.

    Its step id is drawn now, in the task that produced the event, so a replay skips it as DBOS's
    own `write_stream` would; running the returned callable (on a writer task, in event order)
    does the write. `DBOS.write_stream_async` writes at once in the calling task, which would
    stall the event loop of a streaming run on every event.
    """
    from dbos._context import snapshot_step_context
    from dbos._core import write_stream
    from dbos._dbos import _get_dbos_instance

    ctx = snapshot_step_context()
    return lambda: write_stream(
        _get_dbos_instance(),
        ctx,
        key,
        value,
        serialization_type=WorkflowSerializationFormat.PORTABLE,
    )


def deferred_step_stream_write(key: str, value: Any) -> Callable[[], None]:
    """A write of `value` to the stream `key` from inside the current step, to run later; it is
    not recorded (a step that runs again writes again)."""
    from dbos._context import get_local_dbos_context
    from dbos._dbos import _get_dbos_instance

    ctx = get_local_dbos_context()
    assert ctx is not None and ctx.is_step()
    # Copy the ids now: the step's context object is reset when the step ends.
    workflow_id, function_id = ctx.workflow_id, ctx.function_id
    return lambda: _get_dbos_instance()._sys_db.write_stream_from_step(
        workflow_id,
        function_id,
        key,
        value,
        serialization_type=WorkflowSerializationFormat.PORTABLE,
    )
