"""Hooks into DBOS 3.4 that have no public route.

- The process's DBOS instance, whether it is launched, its engine and its serializer: Timestep
  adopts an application's own instance instead of creating a second one.
- Listening to a queue after launch: `DBOS.listen_queues` must be called before launch, but
  a process registers agents (and so their queues) whenever `run_agent` first sees them. DBOS's
  queue manager re-reads the listened list every second, so appending to it takes effect.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from dbos import DBOS


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
