"""Reading and writing run records in `timestep_runs`."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from ..errors import RunNotFoundError, StateError
from . import compact
from .database import autocommit, dialect_insert, json_text_with_key
from .run_record import (
    RECORD_COLUMNS,
    STATUSES,
    Decision,
    DecisionKind,
    ModelUsage,
    PendingApproval,
    RunOverrides,
    RunOwner,
    RunRecord,
    RunStatus,
    VersionMove,
    record_from_row,
    usage_by_model,
)
from .schema import decisions, parked_states, runs

__all__ = [  # the record types, defined with no database code, are also read from here
    "STATUSES",
    "Decision",
    "DecisionKind",
    "ModelUsage",
    "PendingApproval",
    "RunOverrides",
    "RunOwner",
    "RunRecord",
    "RunStatus",
    "VersionMove",
    "usage_by_model",
]


_RUN_COLUMNS = [runs.c[name] for name in RECORD_COLUMNS]


def get(engine: sa.Engine, run_id: str) -> RunRecord:
    with engine.connect() as connection:
        row = connection.execute(sa.select(*_RUN_COLUMNS).where(runs.c.run_id == run_id)).first()
    if row is None:
        raise RunNotFoundError(run_id)
    return record_from_row(row)


def find(engine: sa.Engine, run_id: str) -> RunRecord | None:
    try:
        return get(engine, run_id)
    except RunNotFoundError:
        return None


def list_records(
    engine: sa.Engine,
    status: str | None,
    limit: int,
    *,
    agent: str | None = None,
    offset: int = 0,
) -> list[RunRecord]:
    query = (
        sa.select(*_RUN_COLUMNS)
        .order_by(runs.c.updated_at.desc(), runs.c.run_id)
        .limit(limit)
        .offset(offset)
    )
    if status is not None:
        query = query.where(runs.c.status == status)
    if agent is not None:
        query = query.where(runs.c.agent_name == agent)
    with engine.connect() as connection:
        return [record_from_row(row) for row in connection.execute(query)]


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


def create_or_find(
    engine: sa.Engine,
    run_id: str,
    agent_name: str,
    graph: dict[str, Any],
    fingerprint: str,
    approval_timeout: float | None = None,
    streamed: bool = False,
    overrides: RunOverrides | None = None,
    input_hash: str | None = None,
    version_label: str | None = None,
    app_module: str | None = None,
) -> tuple[RunRecord, bool]:
    """Insert a new run, or return the existing one (whose `fingerprint` the caller checks).

    Returns (record, created).
    """
    now = time.time()
    insert = dialect_insert(engine, runs).values(
        **_new_run(run_id, agent_name, graph, fingerprint, "running", now),
        approval_timeout=approval_timeout,
        streamed=streamed,
        models=None if overrides is None else json.dumps(overrides.as_dict()),
        input_hash=input_hash,
        version_label=version_label,
        app_module=app_module,
    )
    # Each statement alone is atomic: the insert wins or finds the run, then the run is read.
    with autocommit(engine) as connection:
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
                    fingerprint=fingerprint,
                    overrides=overrides,
                    input_hash=input_hash,
                    version_label=version_label,
                    app_module=app_module,
                ),
                True,
            )
        row = connection.execute(sa.select(*_RUN_COLUMNS).where(runs.c.run_id == run_id)).one()
    return record_from_row(row), False


@dataclass(frozen=True)
class RunVersion:
    """The agent version a run is on: its graph, the graph's fingerprint, and a label."""

    graph: dict[str, Any]
    fingerprint: str
    label: str | None = None


def create_fork(
    engine: sa.Engine,
    original: RunRecord,
    run_id: str,
    overrides: RunOverrides | None,
    from_segment: int,
    version: RunVersion,
) -> bool:
    """Insert run `run_id` as a fork of `original` from its segment `from_segment`, on agent
    version `version`; False if it exists. The usage of the original's earlier segments is
    kept as the fork's (their turns are part of its conversation)."""
    with engine.begin() as connection:
        model_usage = connection.execute(
            sa.select(runs.c.model_usage).where(runs.c.run_id == original.run_id)
        ).scalar_one()
        inherited = {
            f"{original.run_id}:{segment}": usage
            for segment, usage in json.loads(model_usage or "{}").items()
            # Keys that are not numbers were inherited by the original from a run it forked.
            if not segment.isdigit() or int(segment) < from_segment
        }
        inserted = connection.execute(
            dialect_insert(engine, runs)
            .values(
                **_new_run(
                    run_id,
                    original.agent_name,
                    version.graph,
                    version.fingerprint,
                    "running",
                    time.time(),
                ),
                version_label=version.label,
                approval_timeout=original.approval_timeout,
                streamed=original.streamed,
                models=None if overrides is None else json.dumps(overrides.as_dict()),
                model_usage=json.dumps(inherited) if inherited else None,
                app_module=original.app_module,
            )
            .on_conflict_do_nothing()
            .returning(runs.c.run_id)
        )
        return inserted.first() is not None


@dataclass(frozen=True)
class SegmentOutcome:
    """How a segment ended, as its run's record stores it."""

    status: RunStatus
    """`completed`, `awaiting_approval` or `failed`."""

    segment_usage: dict[str, ModelUsage]
    """The segment's usage by model (a replayed segment recounts the same calls)."""

    pending: list[PendingApproval] = dataclasses.field(default_factory=list)
    final_output: Any = None
    """The final output as JSON (a completed run)."""

    usage: dict[str, Any] | None = None
    """The SDK's usage of the whole run, serialised."""

    state: dict[str, Any] | None = None
    """The RunState JSON the run ended or parked with."""

    error: str | None = None
    """What failed (a failed run)."""


def write_outcome(engine: sa.Engine, run_id: str, segment: int, outcome: SegmentOutcome) -> None:
    """Record how segment `segment` of a run ended; a failure keeps the state it had.

    The segment guard makes a replayed segment's write a no-op once the run has moved on; a
    cancelled run is left as it is (`note_stopped` records that its segment stopped). A run
    that parks also keeps the state it parked with (`parked_state`), as its change from the
    state it parked with before, in the same transaction.
    """
    values: dict[str, Any] = {
        "status": outcome.status,
        "error": outcome.error,
        "updated_at": time.time(),
        # Merged into the stored JSON by the UPDATE itself (one statement, under the row's
        # lock): segments of one run never write at once, but a stale replay may race the
        # live one.
        "model_usage": json_text_with_key(
            engine,
            runs.c.model_usage,
            str(segment),
            json.dumps({name: u.as_dict() for name, u in outcome.segment_usage.items()}),
        ),
    }
    packed = None if outcome.state is None else compact.pack(outcome.state)
    if outcome.status != "failed":
        values.update(
            pending=json.dumps(outcome.pending),
            final_output=None if outcome.final_output is None else json.dumps(outcome.final_output),
            usage=None if outcome.usage is None else json.dumps(outcome.usage),
            state=None if packed is None else json.dumps(packed),
        )
    current = (runs.c.run_id == run_id, runs.c.segment == segment, runs.c.status != "cancelled")
    parks = outcome.status == "awaiting_approval" and packed is not None
    with engine.begin() if parks else autocommit(engine) as connection:
        if parks:
            assert packed is not None
            # Read before the run's row changes: the state the segment started from.
            before = connection.execute(sa.select(runs.c.state).where(*current)).first()
            if before is None:
                return  # the run moved on or was cancelled: nothing to write
            _keep_parked_state(connection, run_id, segment, before.state, packed)
        connection.execute(runs.update().where(*current).values(**values))


def _keep_parked_state(
    connection: sa.Connection,
    run_id: str,
    segment: int,
    previous_text: str | None,
    packed: dict[str, Any],
) -> None:
    """Store the state segment `segment` parked with as its change from the state the run
    parked with in the segment before (which the run's row still holds), once."""
    kept = set(
        connection.execute(
            sa.select(parked_states.c.segment).where(
                parked_states.c.run_id == run_id,
                parked_states.c.segment.in_((segment - 1, segment)),
            )
        ).scalars()
    )
    if segment in kept:
        return  # a replay of the segment: it parked with the same state
    if segment - 1 in kept and previous_text:
        change = compact.diff(compact.pack(json.loads(previous_text)), packed)
        base_segment: int | None = segment - 1
    else:  # the run's first stop (or one parked before Timestep kept parked states)
        change, base_segment = {"$set": packed}, None
    connection.execute(
        parked_states.insert().values(
            run_id=run_id, segment=segment, base_segment=base_segment, change=json.dumps(change)
        )
    )


def parked_state(engine: sa.Engine, run_id: str, segment: int) -> dict[str, Any]:
    """The RunState JSON run `run_id` parked with at the end of segment `segment`.

    Read from the run's row while it still holds it (the run is in the next segment, not yet
    parked again or finished), else rebuilt from the run's kept parked states.
    """
    with engine.connect() as connection:
        row = connection.execute(
            sa.select(runs.c.segment, runs.c.status, runs.c.state).where(runs.c.run_id == run_id)
        ).first()
        if row is None:
            raise RunNotFoundError(run_id)
        holds_it = (row.segment == segment + 1 and row.status in ("running", "failed")) or (
            row.segment == segment and row.status == "awaiting_approval"
        )
        if holds_it and row.state:
            return compact.unpack(json.loads(row.state))
        kept = {
            r.segment: r
            for r in connection.execute(
                sa.select(parked_states).where(
                    parked_states.c.run_id == run_id, parked_states.c.segment <= segment
                )
            )
        }
    chain = []
    at: int | None = segment
    while at is not None:
        if at not in kept:
            raise StateError(
                f"the state run {run_id!r} parked with in segment {segment} is not kept (it "
                "parked before this version of Timestep kept parked states)"
            )
        chain.append(json.loads(kept[at].change))
        at = kept[at].base_segment
    state: Any = None
    for change in reversed(chain):
        state = compact.patch(state, change)
    return compact.unpack(state)


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
    """The run's latest RunState JSON (None before its first segment ended)."""
    with engine.connect() as connection:
        text = connection.execute(sa.select(runs.c.state).where(runs.c.run_id == run_id)).scalar()
    return compact.unpack(json.loads(text)) if text else None


def _decision_row(run_id: str, segment: int, decision: Decision, now: float) -> dict[str, Any]:
    return {"run_id": run_id, "segment": segment, "decided_at": now, **dataclasses.asdict(decision)}


def record_decision(engine: sa.Engine, run_id: str, segment: int, decision: Decision) -> Decision:
    """Insert `decision` unless one exists for the call; returns the decision in force."""
    values = _decision_row(run_id, segment, decision, time.time())
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


def _decision(row: Any, prefix: str = "") -> Decision:
    def value(name: str) -> Any:
        return getattr(row, prefix + name)

    return Decision(
        value("call_id"), value("tool_name"), value("decision"), value("always"), value("message")
    )


def get_with_decisions(
    engine: sa.Engine, run_id: str
) -> tuple[RunRecord, dict[str, Decision], dict[str, Decision]]:
    """A run and the decisions on its current and its previous segment, in one statement:
    (record, decisions of `record.segment`, decisions of `record.segment - 1`)."""
    columns = [
        decisions.c[name].label(f"d_{name}")
        for name in ("segment", "call_id", "tool_name", "decision", "always", "message")
    ]
    query = (
        sa.select(*_RUN_COLUMNS, *columns)
        .select_from(
            runs.outerjoin(
                decisions,
                sa.and_(
                    decisions.c.run_id == runs.c.run_id,
                    decisions.c.segment >= runs.c.segment - 1,
                ),
            )
        )
        .where(runs.c.run_id == run_id)
    )
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            # One statement needs no transaction: no BEGIN and ROLLBACK round trips around it.
            connection.execution_options(isolation_level="AUTOCOMMIT")
        rows = connection.execute(query).all()
    if not rows:
        raise RunNotFoundError(run_id)
    record = record_from_row(rows[0])
    current: dict[str, Decision] = {}
    previous: dict[str, Decision] = {}
    for row in rows:
        if row.d_call_id is not None:
            into = current if row.d_segment == record.segment else previous
            into[row.d_call_id] = _decision(row, "d_")
    return record, current, previous


@dataclass
class Decided:
    """What `decide` did."""

    recorded: dict[str, Decision]
    """The decision in force on each call asked for (another decider's, where one raced)."""

    advanced: bool = False
    """This caller moved the run to its next segment (and ran `on_advance`)."""

    all_decided: bool = False
    """Every pending call is decided (whether or not this caller advanced the run)."""

    moved_on: bool = False
    """The run was no longer parked in the segment when the transaction began: nothing was
    written (read it again)."""


_sqlite_deciders = threading.Lock()
"""SQLite lets one writer in at a time, and a writer kept waiting by another sleeps in steps of
milliseconds (its busy handler): deciders of one process take turns here instead."""


def decide(
    engine: sa.Engine,
    run_id: str,
    segment: int,
    pending: list[str],
    new: list[Decision],
    already: set[str],
    check: Callable[[Decision, Decision], None],
    on_advance: Callable[[sa.Connection], None] | None,
) -> Decided:
    """Record the decisions `new` on segment `segment` and, once every call of `pending` is
    decided, move the run to its next segment, in one transaction.

    `already` holds the calls known to be decided (read before). When `new` and `already`
    cover `pending`, the transaction is an INSERT of the decisions and a guarded UPDATE that
    advances the run (and `on_advance(connection)` enqueues its continuation in the same
    transaction). Otherwise another decider may be deciding the other calls at the same time:
    the run's row is locked first (PostgreSQL; SQLite's first write locks the database), so
    that of two such deciders the second sees the first's decisions and `all_decided` tells
    it. `check(recorded, wanted)` raises for a call another decider decided otherwise (the
    transaction is rolled back: nothing of it is recorded).
    """
    wanted = {d.call_id: d for d in new}
    covers = set(pending) <= already | set(wanted)
    parked = _parked(run_id, segment)
    now = time.time()
    sqlite = engine.dialect.name == "sqlite"
    with _sqlite_deciders if sqlite else contextlib.nullcontext(), engine.begin() as connection:
        if not covers and not sqlite:
            locked = connection.execute(
                sa.select(runs.c.run_id).where(*parked).with_for_update()
            ).first()
            if locked is None:
                return Decided({}, moved_on=True)
        recorded = dict(wanted)
        if wanted:
            inserted = {
                row.call_id
                for row in connection.execute(
                    dialect_insert(engine, decisions)
                    .values([_decision_row(run_id, segment, d, now) for d in new])
                    .on_conflict_do_nothing()
                    .returning(decisions.c.call_id)
                )
            }
            raced = [call_id for call_id in wanted if call_id not in inserted]
            if raced:  # decided by another caller since they were read
                rows = connection.execute(
                    sa.select(decisions).where(
                        decisions.c.run_id == run_id,
                        decisions.c.segment == segment,
                        decisions.c.call_id.in_(raced),
                    )
                )
                for row in rows:
                    existing = _decision(row)
                    check(existing, wanted[existing.call_id])
                    recorded[existing.call_id] = existing
        decided_count = (
            sa.select(sa.func.count())
            .select_from(decisions)
            .where(
                decisions.c.run_id == run_id,
                decisions.c.segment == segment,
                decisions.c.call_id.in_(pending),
            )
            .scalar_subquery()
        )
        if not covers:
            count = connection.execute(sa.select(decided_count)).scalar_one()
            return Decided(recorded, all_decided=count >= len(set(pending)))
        moved = _advance(connection, run_id, segment, now, decided_count >= len(set(pending)))
        if moved and on_advance is not None:
            on_advance(connection)
        return Decided(recorded, advanced=moved, all_decided=True)


def _parked(run_id: str, segment: int) -> tuple[sa.ColumnElement[bool], ...]:
    """The run `run_id` is parked in segment `segment`."""
    return (
        runs.c.run_id == run_id,
        runs.c.segment == segment,
        runs.c.status == "awaiting_approval",
    )


def _advance(
    connection: sa.Connection, run_id: str, segment: int, now: float, *guards: Any
) -> bool:
    """Move the run from parked segment `segment` to the next one, if it is still parked there
    (and `guards` hold); True for the one caller that did it."""
    moved = connection.execute(
        runs.update()
        .where(*_parked(run_id, segment), *guards)
        .values(segment=segment + 1, status="running", updated_at=now)
    ).rowcount
    return bool(moved)


def advance_segment(engine: sa.Engine, run_id: str, segment: int) -> bool:
    """Move a parked run to its next segment; True for the one caller that did it."""
    with engine.begin() as connection:
        return _advance(connection, run_id, segment, time.time())


def insert_parked(
    engine: sa.Engine,
    run_id: str,
    agent_name: str,
    graph: dict[str, Any],
    fingerprint: str,
    *,
    state: dict[str, Any],
    pending: list[PendingApproval],
    usage: dict[str, Any],
    decided: list[Decision],
    app_module: str | None = None,
) -> RunRecord:
    """Create a run that starts out parked for approval (an imported state), with the
    decisions it already carries, in one transaction: all of it or nothing."""
    from ..errors import TimestepError

    now = time.time()
    try:
        with engine.begin() as connection:
            connection.execute(
                runs.insert().values(
                    **_new_run(run_id, agent_name, graph, fingerprint, "awaiting_approval", now),
                    state=json.dumps(compact.pack(state)),
                    pending=json.dumps(pending),
                    usage=json.dumps(usage),
                    app_module=app_module,
                )
            )
            connection.execute(
                parked_states.insert().values(
                    run_id=run_id,
                    segment=1,
                    base_segment=None,
                    change=json.dumps({"$set": compact.pack(state)}),
                )
            )
            for decision in decided:
                connection.execute(
                    decisions.insert().values(**_decision_row(run_id, 1, decision, now))
                )
    except sa.exc.IntegrityError as exc:
        raise TimestepError(
            f"run {run_id!r} already exists; import the state under another --run-id"
        ) from exc
    return get(engine, run_id)


FINISHED: tuple[RunStatus, ...] = ("completed", "failed", "cancelled")
"""The statuses of runs that nothing continues by itself: the only ones retention deletes."""


def finished_before(
    engine: sa.Engine, cutoff: float, statuses: tuple[RunStatus, ...], limit: int, offset: int = 0
) -> list[RunRecord]:
    """Up to `limit` runs in `statuses` (finished ones) last updated before `cutoff`, oldest
    first, from the `offset`-th."""
    assert set(statuses) <= set(FINISHED)
    query = (
        sa.select(*_RUN_COLUMNS)
        .where(runs.c.status.in_(statuses), runs.c.updated_at < cutoff)
        .order_by(runs.c.updated_at, runs.c.run_id)
        .limit(limit)
        .offset(offset)
    )
    with engine.connect() as connection:
        return [record_from_row(row) for row in connection.execute(query)]


def delete_finished(
    engine: sa.Engine, run_ids: list[str], cutoff: float, statuses: tuple[RunStatus, ...]
) -> list[str]:
    """Delete the runs of `run_ids` that are still in `statuses` and not updated since
    `cutoff` (a run retried meanwhile is kept), with their decisions and parked states, in one
    transaction; returns the ids deleted."""
    assert set(statuses) <= set(FINISHED)
    with engine.begin() as connection:
        deleted = [
            row.run_id
            for row in connection.execute(
                runs.delete()
                .where(
                    runs.c.run_id.in_(run_ids),
                    runs.c.status.in_(statuses),
                    runs.c.updated_at < cutoff,
                )
                .returning(runs.c.run_id)
            )
        ]
        if deleted:
            connection.execute(decisions.delete().where(decisions.c.run_id.in_(deleted)))
            connection.execute(parked_states.delete().where(parked_states.c.run_id.in_(deleted)))
    return deleted


def move_version(
    engine: sa.Engine,
    run_id: str,
    from_fingerprint: str,
    graph: dict[str, Any],
    fingerprint: str,
    label: str | None,
    on_move: Callable[[sa.Connection], bool] | None = None,
) -> bool:
    """Move an unpinned run from version `from_fingerprint` to the graph `graph` and record
    the move, in one transaction with `on_move(connection)` (which moves its queued
    continuation, and returns False to undo everything); False when nothing moved: the run is
    pinned, is no longer on `from_fingerprint` (another caller moved it), or `on_move` said no."""
    with engine.connect() as connection, connection.begin() as transaction:
        row = connection.execute(
            sa.select(runs.c.segment, runs.c.version_label, runs.c.version_moves).where(
                runs.c.run_id == run_id,
                runs.c.fingerprint == from_fingerprint,
                runs.c.pinned == sa.false(),
            )
        ).first()
        if row is None:
            return False
        move = VersionMove(
            from_version=from_fingerprint,
            to_version=fingerprint,
            segment=row.segment,
            at=time.time(),
            from_label=row.version_label,
            to_label=label,
        )
        moves = [*json.loads(row.version_moves or "[]"), move.stored()]
        moved = connection.execute(
            runs.update()
            .where(runs.c.run_id == run_id, runs.c.fingerprint == from_fingerprint)
            .values(
                graph=json.dumps(graph),
                fingerprint=fingerprint,
                version_label=label,
                version_moves=json.dumps(moves),
                updated_at=move.at,
            )
        ).rowcount
        if not moved or (on_move is not None and not on_move(connection)):
            transaction.rollback()
            return False
        return True


def set_pinned(engine: sa.Engine, run_id: str, pinned: bool) -> None:
    """Keep the run on its version (or let it move again)."""
    with engine.begin() as connection:
        changed = connection.execute(
            runs.update().where(runs.c.run_id == run_id).values(pinned=pinned)
        ).rowcount
    if not changed:
        raise RunNotFoundError(run_id)
