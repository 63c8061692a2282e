"""Owners and claims: which process runs what, whether it is alive, who took its runs over.

Every process that launches DBOS is an owner under its own executor id and keeps a heartbeat in
`timestep_owners`. A workflow of an owner whose lease ran out is taken over by exactly one live
process: the taker inserts (or, when the previous taker died before finishing, re-claims with a
compare-and-set on `epoch`) a row in `timestep_claims` before it moves the workflow anywhere.

Times written here (heartbeats, claims) and the "now" every read carries come from the
database's clock, so whether a lease ran out does not depend on the clock, or the age, of the
process that asks.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from .schema import claims, owners


@dataclass(frozen=True)
class OwnerRecord:
    """One owner (a process that launched DBOS) as stored."""

    executor_id: str
    """The DBOS executor id the process runs workflows under."""

    instance: str
    """A fresh token for each start of the process (a worker may keep its executor id)."""

    host: str
    """Host name of the process."""

    pid: int
    """Process id on that host."""

    identity: dict[str, Any]
    """What a peer on the same host compares to tell whether the pid is still this process."""

    agents: list[str]
    """Names of the agents registered in the process at its last heartbeat, and `name@version`
    of each (the version its graph is at)."""

    lease_seconds: float
    """How long after its last heartbeat the owner counts as dead."""

    started_at: float
    """Seconds since the epoch (database clock) when the process registered."""

    heartbeat_at: float
    """Seconds since the epoch (database clock) of the last renewal of its lease: by the owner's
    heartbeat, or by a peer that excused it after a database outage (`heartbeat`)."""

    stopped_at: float | None = None
    """Set by a clean shutdown."""

    read_at: float | None = field(default=None, compare=False)
    """The database's clock when this record was read (None for a record built here)."""

    server_started_at: float | None = field(default=None, compare=False)
    """When the PostgreSQL server started (read with the record; None on SQLite): nobody could
    renew a lease while it was down, so a lease runs at least a whole lease past its start."""

    def lease_expired(self, now: float) -> bool:
        renewed = max(self.heartbeat_at, self.server_started_at or 0.0)
        return now - renewed > self.lease_seconds


@dataclass(frozen=True)
class Claim:
    """A recorded takeover of one workflow from one dead owner."""

    workflow_id: str
    from_executor: str
    claimed_by: str
    epoch: int
    claimed_at: float
    moved_to: str | None = field(default=None)


def database_now(engine: sa.Engine) -> Any:
    """SQL for the database's clock, in seconds since the epoch (a float, like `time.time()`)."""
    if engine.dialect.name == "postgresql":
        # clock_timestamp(), not now(): the time of the statement, not of its transaction.
        return sa.cast(sa.extract("epoch", sa.func.clock_timestamp()), sa.Float)
    # julianday('now') has millisecond precision; 2440587.5 is the Unix epoch's Julian day.
    return (sa.func.julianday("now") - 2440587.5) * 86400.0


def _with_now(engine: sa.Engine) -> Any:
    if engine.dialect.name == "postgresql":
        started = sa.cast(sa.extract("epoch", sa.func.pg_postmaster_start_time()), sa.Float)
        return sa.select(
            owners, database_now(engine).label("read_at"), started.label("server_started_at")
        )
    return sa.select(owners, database_now(engine).label("read_at"))


def _owner(row: Any) -> OwnerRecord:
    return OwnerRecord(
        executor_id=row.executor_id,
        instance=row.instance,
        host=row.host,
        pid=row.pid,
        identity=json.loads(row.identity),
        agents=json.loads(row.agents),
        lease_seconds=row.lease_seconds,
        started_at=row.started_at,
        heartbeat_at=row.heartbeat_at,
        stopped_at=row.stopped_at,
        read_at=getattr(row, "read_at", None),
        server_started_at=getattr(row, "server_started_at", None),
    )


def get(engine: sa.Engine, executor_id: str) -> OwnerRecord | None:
    with engine.connect() as connection:
        row = connection.execute(
            _with_now(engine).where(owners.c.executor_id == executor_id)
        ).first()
    return None if row is None else _owner(row)


def get_many(engine: sa.Engine, executor_ids: list[str]) -> dict[str, OwnerRecord]:
    if not executor_ids:
        return {}
    with engine.connect() as connection:
        rows = connection.execute(
            _with_now(engine).where(owners.c.executor_id.in_(sorted(set(executor_ids))))
        )
        return {row.executor_id: _owner(row) for row in rows}


def others(engine: sa.Engine, exclude: str) -> list[OwnerRecord]:
    """Every owner but `exclude` (dead ones stay until nothing of theirs is left)."""
    with engine.connect() as connection:
        rows = connection.execute(_with_now(engine).where(owners.c.executor_id != exclude))
        return [_owner(row) for row in rows]


def forget(engine: sa.Engine, executor_id: str, instance: str) -> None:
    """Delete a dead owner's row (only the start of it that was judged dead)."""
    with engine.begin() as connection:
        connection.execute(
            owners.delete().where(
                owners.c.executor_id == executor_id, owners.c.instance == instance
            )
        )


def unexpired(engine: sa.Engine, now: float | None = None) -> list[OwnerRecord]:
    """Owners whose lease still runs at `now` (the database's clock when None) and that did
    not stop."""
    with engine.connect() as connection:
        rows = connection.execute(_with_now(engine).where(owners.c.stopped_at.is_(None)))
        found = [_owner(row) for row in rows]
    return [o for o in found if not o.lease_expired(now or o.read_at or time.time())]


def register(engine: sa.Engine, owner: OwnerRecord) -> float:
    """Write `owner` as the holder of its executor id (a new start replaces an old one); its
    start and first heartbeat are the database's now, which is returned."""
    values = {
        "instance": owner.instance,
        "host": owner.host,
        "pid": owner.pid,
        "identity": json.dumps(owner.identity),
        "agents": json.dumps(owner.agents),
        "lease_seconds": owner.lease_seconds,
        "started_at": database_now(engine),
        "heartbeat_at": database_now(engine),
        "stopped_at": None,
    }
    with engine.begin() as connection:
        written = connection.execute(
            owners.update()
            .where(owners.c.executor_id == owner.executor_id)
            .values(**values)
            .returning(owners.c.heartbeat_at)
        ).scalar()
        if written is None:
            written = connection.execute(
                owners.insert()
                .values(executor_id=owner.executor_id, **values)
                .returning(owners.c.heartbeat_at)
            ).scalar_one()
    return float(written)


def heartbeat(
    engine: sa.Engine,
    executor_id: str,
    instance: str,
    agents: list[str],
    *,
    excuse_since: float | None = None,
) -> float | None:
    """Renew the lease; the database's time of the renewal, or None when another start of the
    same executor id holds it now.

    `excuse_since` (the database's time of this owner's last renewal before it lost the
    database) excuses, in the same transaction, every other owner that was alive then and has
    not stopped: they were most likely cut off by the same outage. Their lease is moved on by
    the time this owner was cut off (never past now), so they get as long to renew as if
    the outage had not been; a dead one is still taken over, that much later (and one whose
    process is known gone, at once: `liveness.judge`). Moving by the outage, not to now,
    keeps a dead owner from living on while its peers keep losing the database."""
    now = database_now(engine)
    with engine.begin() as connection:
        renewed = connection.execute(
            owners.update()
            .where(owners.c.executor_id == executor_id, owners.c.instance == instance)
            .values(heartbeat_at=now, agents=json.dumps(agents))
            .returning(owners.c.heartbeat_at)
        ).scalar()
        if renewed is not None and excuse_since is not None:
            moved_on = owners.c.heartbeat_at + (float(renewed) - excuse_since)
            connection.execute(
                owners.update()
                .where(
                    owners.c.executor_id != executor_id,
                    owners.c.stopped_at.is_(None),
                    owners.c.heartbeat_at + owners.c.lease_seconds >= excuse_since,
                    owners.c.heartbeat_at < renewed,
                )
                .values(heartbeat_at=sa.case((moved_on > renewed, renewed), else_=moved_on))
            )
    return None if renewed is None else float(renewed)


def mark_stopped(engine: sa.Engine, executor_id: str, instance: str) -> None:
    with engine.begin() as connection:
        connection.execute(
            owners.update()
            .where(owners.c.executor_id == executor_id, owners.c.instance == instance)
            .values(stopped_at=database_now(engine))
        )


def find_claim(engine: sa.Engine, workflow_id: str, from_executor: str) -> Claim | None:
    with engine.connect() as connection:
        row = connection.execute(
            sa.select(claims).where(
                claims.c.workflow_id == workflow_id, claims.c.from_executor == from_executor
            )
        ).first()
    if row is None:
        return None
    return Claim(
        row.workflow_id, row.from_executor, row.claimed_by, row.epoch, row.claimed_at, row.moved_to
    )


def claim(
    engine: sa.Engine, workflow_id: str, from_executor: str, claimant: str, seen: Claim | None
) -> bool:
    """Claim the takeover of `workflow_id` from `from_executor`; True for the one winner.

    With `seen` None the claim is the first (an insert that only one process can make);
    otherwise it replaces `seen`, a claim whose taker died before moving the workflow, and
    succeeds only if nobody replaced it first (compare-and-set on the epoch).
    """
    now = database_now(engine)
    try:
        with engine.begin() as connection:
            if seen is None:
                connection.execute(
                    claims.insert().values(
                        workflow_id=workflow_id,
                        from_executor=from_executor,
                        claimed_by=claimant,
                        epoch=1,
                        claimed_at=now,
                    )
                )
                return True
            replaced = connection.execute(
                claims.update()
                .where(
                    claims.c.workflow_id == workflow_id,
                    claims.c.from_executor == from_executor,
                    claims.c.epoch == seen.epoch,
                )
                .values(claimed_by=claimant, epoch=seen.epoch + 1, claimed_at=now, moved_to=None)
            ).rowcount
            return bool(replaced)
    except sa.exc.IntegrityError:
        return False


def mark_moved(engine: sa.Engine, workflow_id: str, from_executor: str, queue: str) -> None:
    with engine.begin() as connection:
        connection.execute(
            claims.update()
            .where(claims.c.workflow_id == workflow_id, claims.c.from_executor == from_executor)
            .values(moved_to=queue)
        )
