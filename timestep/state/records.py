"""Reading and writing run records in `timestep_runs`."""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from ..errors import AgentMismatchError, RunNotFoundError
from .database import dialect_insert
from .schema import decisions, runs

STATUSES = ("running", "awaiting_approval", "completed", "failed", "cancelled")


@dataclass(frozen=True)
class RunModels:
    """Model names a run was started with, kept so that every segment on every process uses
    them (not the model in the agent's code there)."""

    agent: str | None = None
    """The starting agent's model name (`timestep run --model`, `agent.clone(model=...)`)."""

    run_config: str | None = None
    """`RunConfig(model=...)` given as a name: the model of every agent of the run."""

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class RunOwner:
    """The process that runs (or ran) a running run's current segment."""

    executor_id: str
    """Its DBOS executor id."""

    alive: bool
    """False once its lease ran out or its process is known to be gone."""

    reason: str
    """Why it counts as alive or dead (last heartbeat, exited process)."""

    host: str | None = None
    """Host name of the process, when it registered."""

    pid: int | None = None
    """Its process id on that host."""

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class RunRecord:
    """One run as stored: what `get_run` and `list_runs` return."""

    run_id: str
    """The run's id (also the DBOS workflow id of its first segment)."""

    agent_name: str
    """Name of the agent the run started with."""

    status: str
    """One of `running`, `awaiting_approval`, `completed`, `failed`, `cancelled`."""

    created_at: float
    """Seconds since the epoch when the run was first started."""

    updated_at: float
    """Seconds since the epoch of the last change of status or state."""

    segment: int = 1
    """How many segments the run has started (a segment ends at each interruption)."""

    usage: dict[str, Any] = field(default_factory=dict)
    """Token usage of the run so far (requests, input/output/total tokens)."""

    final_output: Any = None
    """The final output, as JSON, once completed."""

    pending_approvals: list[dict[str, Any]] = field(default_factory=list)
    """Tool calls awaiting a decision: call id, tool name, arguments, agent."""

    error: str | None = None
    """What went wrong, for a failed run."""

    streamed: bool = False
    """Whether the run's segments write their events to a durable stream (`stream=True`)."""

    approval_timeout: float | None = None
    """Seconds each parked segment waits for decisions before undecided calls are rejected."""

    graph: dict[str, Any] = field(default_factory=dict, repr=False)
    """The recorded agent graph description (for the fingerprint check)."""

    models: RunModels | None = None
    """The model names chosen when the run started, used by every later segment."""

    input_hash: str | None = field(default=None, repr=False)
    """sha256 of the input the run started with (to tell a reused run id with another input)."""

    owner: RunOwner | None = None
    """For a running run: the process running its current segment (None while queued)."""

    note: str | None = None
    """What happens next, or what to do, when that is not obvious from the status."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "agent": self.agent_name,
            "status": self.status,
            "segment": self.segment,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "usage": self.usage,
            "final_output": self.final_output,
            "pending_approvals": self.pending_approvals,
            "error": self.error,
            "approval_timeout": self.approval_timeout,
            "models": None if self.models is None else self.models.as_dict(),
            "owner": None if self.owner is None else self.owner.as_dict(),
            "note": self.note,
        }


def _loads(text: str | None, default: Any) -> Any:
    return json.loads(text) if text else default


def _record(row: Any) -> RunRecord:
    return RunRecord(
        run_id=row.run_id,
        agent_name=row.agent_name,
        status=row.status,
        created_at=row.created_at,
        updated_at=row.updated_at,
        segment=row.segment,
        usage=_loads(row.usage, {}),
        final_output=_loads(row.final_output, None),
        pending_approvals=_loads(row.pending, []),
        error=row.error,
        approval_timeout=row.approval_timeout,
        streamed=row.streamed,
        graph=_loads(row.graph, {}),
        models=RunModels(**json.loads(row.models)) if row.models else None,
        input_hash=row.input_hash,
    )


def get(engine: sa.Engine, run_id: str) -> RunRecord:
    with engine.connect() as connection:
        row = connection.execute(sa.select(runs).where(runs.c.run_id == run_id)).first()
    if row is None:
        raise RunNotFoundError(run_id)
    return _record(row)


def find(engine: sa.Engine, run_id: str) -> RunRecord | None:
    try:
        return get(engine, run_id)
    except RunNotFoundError:
        return None


def list_records(engine: sa.Engine, status: str | None, limit: int) -> list[RunRecord]:
    query = sa.select(runs).order_by(runs.c.updated_at.desc()).limit(limit)
    if status is not None:
        query = query.where(runs.c.status == status)
    with engine.connect() as connection:
        return [_record(row) for row in connection.execute(query)]


def _new_run(
    run_id: str, agent_name: str, graph: dict[str, Any], fingerprint: str, status: str, now: float
) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "agent_name": agent_name,
        "graph": json.dumps(graph),
        "fingerprint": fingerprint,
        "status": status,
        "segment": 1,
        "created_at": now,
        "updated_at": now,
    }


def create_or_check(
    engine: sa.Engine,
    run_id: str,
    agent_name: str,
    graph: dict[str, Any],
    fingerprint: str,
    approval_timeout: float | None = None,
    streamed: bool = False,
    models: RunModels | None = None,
    input_hash: str | None = None,
) -> tuple[RunRecord, bool]:
    """Insert a new run, or return the existing one after checking it ran the same graph.

    Returns (record, created).
    """
    from .._engine.registry import graph_differences

    now = time.time()
    insert = dialect_insert(engine, runs).values(
        **_new_run(run_id, agent_name, graph, fingerprint, "running", now),
        approval_timeout=approval_timeout,
        streamed=streamed,
        models=None if models is None else json.dumps(models.as_dict()),
        input_hash=input_hash,
    )
    with engine.begin() as connection:
        inserted = connection.execute(insert.on_conflict_do_nothing().returning(runs.c.run_id))
        created = inserted.first() is not None
        if created:
            return (
                RunRecord(
                    run_id=run_id,
                    agent_name=agent_name,
                    status="running",
                    created_at=now,
                    updated_at=now,
                    approval_timeout=approval_timeout,
                    streamed=streamed,
                    graph=graph,
                    models=models,
                    input_hash=input_hash,
                ),
                True,
            )
        row = connection.execute(sa.select(runs).where(runs.c.run_id == run_id)).one()
    record = _record(row)
    if row.fingerprint != fingerprint:
        raise AgentMismatchError(run_id, graph_differences(record.graph, graph))
    return record, False


def create_fork(
    engine: sa.Engine, original: RunRecord, run_id: str, models: RunModels | None
) -> bool:
    """Insert run `run_id` as a fork of `original` (same agent graph); False if it exists."""
    with engine.begin() as connection:
        row = connection.execute(
            sa.select(runs.c.fingerprint).where(runs.c.run_id == original.run_id)
        ).one()
        inserted = connection.execute(
            dialect_insert(engine, runs)
            .values(
                **_new_run(
                    run_id,
                    original.agent_name,
                    original.graph,
                    row.fingerprint,
                    "running",
                    time.time(),
                ),
                approval_timeout=original.approval_timeout,
                streamed=original.streamed,
                models=None if models is None else json.dumps(models.as_dict()),
            )
            .on_conflict_do_nothing()
            .returning(runs.c.run_id)
        )
        return inserted.first() is not None


def update(engine: sa.Engine, run_id: str, segment: int, **values: Any) -> None:
    """Update columns of a run while it is in `segment`; JSON columns take Python values.

    The segment guard makes a replayed segment's write a no-op once the run has moved on; a
    cancelled run is left as it is (`note_stopped` records that its segment stopped).
    """
    for column in ("usage", "final_output", "state", "pending"):
        if column in values and values[column] is not None:
            values[column] = json.dumps(values[column])
    values["updated_at"] = time.time()
    with engine.begin() as connection:
        connection.execute(
            runs.update()
            .where(runs.c.run_id == run_id, runs.c.segment == segment)
            .where(runs.c.status != "cancelled")
            .values(**values)
        )


STOPPED_ON_CANCEL = "cancelled: the segment has stopped"


def note_stopped(engine: sa.Engine, run_id: str, segment: int) -> None:
    """Record that a cancelled run's segment has stopped executing (no-op for other runs)."""
    with engine.begin() as connection:
        connection.execute(
            runs.update()
            .where(runs.c.run_id == run_id, runs.c.segment == segment)
            .where(runs.c.status == "cancelled")
            .values(error=STOPPED_ON_CANCEL, updated_at=time.time())
        )


def change_status(
    engine: sa.Engine, run_id: str, segment: int, before: tuple[str, ...], after: str, **values: Any
) -> bool:
    """Move a run in `segment` from one of the statuses `before` to `after`; True if it moved
    (exactly one of several racing callers)."""
    with engine.begin() as connection:
        moved = connection.execute(
            runs.update()
            .where(runs.c.run_id == run_id, runs.c.segment == segment, runs.c.status.in_(before))
            .values(status=after, updated_at=time.time(), **values)
        ).rowcount
    return bool(moved)


def load_state(engine: sa.Engine, run_id: str) -> dict[str, Any] | None:
    with engine.connect() as connection:
        text = connection.execute(sa.select(runs.c.state).where(runs.c.run_id == run_id)).scalar()
    return json.loads(text) if text else None


@dataclass
class Decision:
    """A recorded human decision on one pending tool call."""

    call_id: str
    """The tool call decided."""

    tool_name: str
    """The tool the call invokes."""

    decision: str
    """`approve` or `reject`."""

    always: bool = False
    """Approve this tool for the rest of the run (approve only)."""

    message: str | None = None
    """What the model is told about a rejection (reject only)."""


def record_decision(engine: sa.Engine, run_id: str, segment: int, decision: Decision) -> Decision:
    """Insert `decision` unless one exists for the call; returns the decision in force."""
    values = {
        "run_id": run_id,
        "segment": segment,
        "call_id": decision.call_id,
        "tool_name": decision.tool_name,
        "decision": decision.decision,
        "always": decision.always,
        "message": decision.message,
        "decided_at": time.time(),
    }
    try:
        with engine.begin() as connection:
            connection.execute(decisions.insert().values(**values))
        return decision
    except sa.exc.IntegrityError:
        existing = decisions_for(engine, run_id, segment).get(decision.call_id)
        assert existing is not None
        return existing


def decisions_for(engine: sa.Engine, run_id: str, segment: int) -> dict[str, Decision]:
    query = sa.select(decisions).where(decisions.c.run_id == run_id, decisions.c.segment == segment)
    with engine.connect() as connection:
        return {
            row.call_id: Decision(row.call_id, row.tool_name, row.decision, row.always, row.message)
            for row in connection.execute(query)
        }


def advance_segment(engine: sa.Engine, run_id: str, segment: int) -> bool:
    """Move a parked run to its next segment; True for the one caller that did it."""
    with engine.begin() as connection:
        moved = connection.execute(
            runs.update()
            .where(
                runs.c.run_id == run_id,
                runs.c.segment == segment,
                runs.c.status == "awaiting_approval",
            )
            .values(segment=segment + 1, status="running", updated_at=time.time())
        ).rowcount
    return bool(moved)


def insert_parked(
    engine: sa.Engine,
    run_id: str,
    agent_name: str,
    graph: dict[str, Any],
    fingerprint: str,
    *,
    state: dict[str, Any],
    pending: list[dict[str, Any]],
    usage: dict[str, Any],
) -> RunRecord:
    """Create a run that starts out parked for approval (an imported state)."""
    from ..errors import TimestepError

    now = time.time()
    try:
        with engine.begin() as connection:
            connection.execute(
                runs.insert().values(
                    **_new_run(run_id, agent_name, graph, fingerprint, "awaiting_approval", now),
                    state=json.dumps(state),
                    pending=json.dumps(pending),
                    usage=json.dumps(usage),
                )
            )
    except sa.exc.IntegrityError as exc:
        raise TimestepError(
            f"run {run_id!r} already exists; import the state under another --run-id"
        ) from exc
    return get(engine, run_id)
