"""Liveness and takeover around DBOS: heartbeats, leases, and claims on a dead owner's runs.

Every process that launches DBOS is an owner with its own executor id. It renews a lease in
`timestep_owners` every quarter lease, and looks for dead owners every `SCAN_SECONDS`. A
workflow whose executor is dead (on this host its process gone: at once; elsewhere its lease
run out by the database's clock, whatever this process's own age) is taken over by one live
process: it claims the workflow in
`timestep_claims` (an insert, or a compare-and-set when the previous claimant died first),
checks that the workflow is still PENDING under the dead executor, and hands it back to DBOS
with `resume_workflow` on a queue:

- a run segment goes on its agent's queue, where only processes with that agent dequeue it;
- a run segment that `run_agent(..., run_id=R)` is waiting for in this process goes on this
  process's own queue, so it runs here (with the caller's session, hooks and live stream);
- a segment started with objects that cannot be stored (a run config, hooks, a non-JSON
  context) is left for `run_agent(..., run_id=R)`, the only caller that can supply them;
- any other workflow (the application's own) goes on DBOS's internal queue, as DBOS's own
  recovery would put it.

DBOS's atomic dequeue then admits exactly one runner, and its owner tokens make a falsely
presumed-dead process unable to record anything more for a workflow taken from it. Timestep
schedules nothing itself: queues, steps and replay stay DBOS's.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from dbos import DBOSClient

from ..errors import ConfigurationError
from ..state import owners, records
from ..state.owners import OwnerRecord
from . import liveness, registry, requests
from .naming import (
    PROCESS_QUEUE_PREFIX,
    SEGMENT_WORKFLOW,
    parse_segment_workflow_id,
    process_queue_name,
    queue_name,
    version_queue_name,
)
from .outages import Outages, is_unreachable

logger = logging.getLogger("timestep")

FORGET_AFTER_SECONDS = 300.0
"""A dead owner's row is deleted once nothing of it is left and it died this long ago."""

SCAN_SECONDS = 0.5
"""How often a process looks for dead owners (one read of the small owners table, and on this
host a look at /proc), and tries the database again during an outage: a worker killed on this
host is taken over within about this, plus DBOS's dequeue poll (1 s)."""


@dataclass(frozen=True)
class Moved:
    """One workflow taken over from a dead owner."""

    workflow_id: str
    from_executor: str
    queue: str


@dataclass
class Fleet:
    """This process as an owner: its identity, its heartbeat, and the takeovers it makes."""

    engine: sa.Engine
    """Timestep's tables (owners and claims live there)."""

    client: Callable[[], DBOSClient]
    """A DBOS client on the same database: lists workflows and resumes them on a queue."""

    executor_id: str
    """The DBOS executor id of this process."""

    lease_seconds: float
    """How long after its last heartbeat this process counts as dead to its peers."""

    agents: Callable[[], list[str]]
    """The names of the agents this process has registered (reported with each heartbeat)."""

    take_over_continuously: bool = True
    """Take over every dead owner's runs at each heartbeat (not only the runs waited for)."""

    on_own_queue: Callable[[], None] = lambda: None
    """Called before the first workflow is moved to this process's own queue (to listen to it)."""

    instance: str = field(default_factory=lambda: uuid.uuid4().hex)
    outages: Outages = field(default_factory=lambda: Outages("the database"))
    """The database outages this process saw (said once each; counted for the summary)."""
    moved_count: int = 0
    """How many workflows this process took over from dead owners."""
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _last_renewal: float | None = None
    """The database's time of this process's last renewal of its lease (or registration)."""
    _renewed_at: float = field(default_factory=time.monotonic)
    """This process's clock (monotonic) at that renewal."""
    _last_failure: str = ""
    """The last takeover failure said (the same one is not said again at every scan)."""
    _quiet_until: dict[str, float] = field(default_factory=dict)
    """Dead owners (by instance) with nothing left to move: not looked at again until then."""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.outages.where == "the database":
            self.outages.where = _where(self.engine)

    @property
    def heartbeat_interval(self) -> float:
        return self.lease_seconds / 4

    # --- this process as an owner ---------------------------------------------------------

    def register(self) -> None:
        """Hold this executor id: wait out (or refuse) a live process that holds it now."""
        deadline = time.time() + 2 * self.lease_seconds
        while True:
            existing = owners.get(self.engine, self.executor_id)
            if existing is None or existing.instance == self.instance:
                break
            state = liveness.judge(existing)
            if not state.alive:
                break
            if time.time() > deadline:
                raise ConfigurationError(
                    f"executor id {self.executor_id!r} is in use by a live process (pid "
                    f"{existing.pid} on {existing.host}, {state.reason}); give each process "
                    "its own executor id (--executor-id or TIMESTEP_EXECUTOR_ID), or stop the "
                    "other one first"
                )
            logger.warning(
                "timestep: executor id %r is held by pid %s on %s (%s); waiting for its lease",
                self.executor_id,
                existing.pid,
                existing.host,
                state.reason,
            )
            time.sleep(min(1.0, self.heartbeat_interval))
        now = time.time()
        self._renewed_at = time.monotonic()
        self._last_renewal = owners.register(
            self.engine,
            OwnerRecord(
                executor_id=self.executor_id,
                instance=self.instance,
                host=liveness.host_name(),
                pid=os.getpid(),
                identity=liveness.this_process(),
                agents=self.agents(),
                lease_seconds=self.lease_seconds,
                started_at=now,  # the database's clock is written (`owners.register`)
                heartbeat_at=now,
            ),
        )

    def start(self) -> None:
        """Start the heartbeat thread (it also makes the continuous takeovers)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._beat, name="timestep-heartbeat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop heartbeating and say so: peers take over what is left at once."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        try:
            owners.mark_stopped(self.engine, self.executor_id, self.instance)
        except sa.exc.SQLAlchemyError as exc:
            logger.warning("timestep: could not record this process's shutdown: %s", exc)

    def _beat(self) -> None:
        next_renewal = time.monotonic() + self.heartbeat_interval
        while not self._stop.wait(min(SCAN_SECONDS, self.heartbeat_interval)):
            try:
                if self.outages.down or time.monotonic() >= next_renewal:
                    renewed = self._renew()
                    if renewed is None:
                        return
                    if not renewed:
                        continue
                    next_renewal = time.monotonic() + self.heartbeat_interval
                if self.take_over_continuously:
                    self.take_over_dead_owners()
            except Exception as exc:  # the heartbeat goes on whatever a takeover hit
                if is_unreachable(exc):
                    self.outages.lost(exc)
                elif _first_line(exc) != self._last_failure:  # said once, not every scan
                    self._last_failure = _first_line(exc)
                    logger.warning("timestep: takeover failed, will retry: %s", _first_line(exc))

    def _renew(self) -> bool | None:
        """Renew the lease: True when renewed, False when the database did not answer, None
        when another start of this executor id holds it now."""
        # Back from an outage (or from a renewal this late: the thread waited in a DBOS call
        # that retried through one): the peers it cut off get a whole lease to renew theirs.
        late = time.monotonic() - self._renewed_at > 2 * self.heartbeat_interval
        excuse = self._last_renewal if self.outages.down or late else None
        try:
            renewed = owners.heartbeat(
                self.engine, self.executor_id, self.instance, self.agents(), excuse_since=excuse
            )
        except sa.exc.SQLAlchemyError as exc:
            # Unreachable or not (a SQLite file locked past its busy timeout), the lease is not
            # renewed: one line now, one when a renewal succeeds again.
            self.outages.lost(exc)
            return False
        if renewed is None:
            logger.error(
                "timestep: executor id %r was taken by another start of it; this process "
                "no longer owns its runs",
                self.executor_id,
            )
            return None
        self.outages.back()
        self._last_renewal, self._renewed_at = renewed, time.monotonic()
        return True

    # --- takeovers ------------------------------------------------------------------------

    def take_over_dead_owners(self) -> list[Moved]:
        """Take over the workflows of every owner that is dead now: its process gone on this
        host, or its lease run out by the database's clock (peers renew the leases of the
        owners a database outage cut off, so an outage is not a death)."""
        moved: list[Moved] = []
        now = time.monotonic()
        for owner in owners.others(self.engine, exclude=self.executor_id):
            state = liveness.judge(owner)
            if state.alive or self._quiet_until.get(owner.instance, 0.0) > now:
                continue
            taken = self.take_over(owner.executor_id)
            if not taken:  # nothing (more) to move: look again at the heartbeat's pace
                self._quiet_until[owner.instance] = now + self.heartbeat_interval
            moved += taken
            if state.heartbeat_age > FORGET_AFTER_SECONDS and not self._leftovers(owner):
                owners.forget(self.engine, owner.executor_id, owner.instance)
                self._quiet_until.pop(owner.instance, None)
                self.client().delete_queue(process_queue_name(owner.executor_id))
        return moved

    def _leftovers(self, owner: OwnerRecord) -> bool:
        return bool(self._stranded(self.client(), owner.executor_id))

    @staticmethod
    def _stranded(client: DBOSClient, dead: str) -> list[Any]:
        """Workflows that need `dead` to go on: the ones it ran, and the ones on its queue."""
        return client.list_workflows(
            status="PENDING", executor_id=dead, load_input=True, load_output=False
        ) + client.list_workflows(
            status="ENQUEUED",
            queue_name=process_queue_name(dead),
            load_input=True,
            load_output=False,
        )

    def take_over_own_past(self) -> list[Moved]:
        """Before launch: move what an earlier, dead start of this executor id left PENDING.

        DBOS's start-up recovery would put a directly started segment on its internal queue,
        which every process reads, including those without the run's agent.
        """
        return self.take_over(self.executor_id, assume_dead=True)

    def take_over(
        self,
        dead: str,
        *,
        bring_here: frozenset[str] = frozenset(),
        only: frozenset[str] | None = None,
        assume_dead: bool = False,
    ) -> list[Moved]:
        """Move the workflows of executor `dead` (just `only`, when given) onto queues.

        Workflows in `bring_here` go on this process's own queue. Does nothing while the
        owner is alive.
        """
        if not assume_dead:
            owner = owners.get(self.engine, dead)
            if owner is not None and liveness.judge(owner).alive:
                return []
        client = self.client()
        moved = []
        for status in self._stranded(client, dead):
            if only is not None and status.workflow_id not in only:
                continue
            target = self._destination(status, bring_here)
            if target is None:
                continue
            if self._claim_and_move(client, status.workflow_id, dead, target):
                moved.append(Moved(status.workflow_id, dead, target))
        if moved:
            self.moved_count += len(moved)
            logger.warning(
                "timestep: took over %d workflow(s) of dead executor %r: %s",
                len(moved),
                dead,
                ", ".join(f"{m.workflow_id} -> {m.queue}" for m in moved),
            )
        return moved

    def _destination(self, status: Any, bring_here: frozenset[str]) -> str | None:
        """The queue a stranded workflow goes on; None to leave it where it is.

        A run segment goes to a process with the run's agent at the run's version (its graph
        fingerprint): here when this process was asked to bring it and has that version, else
        the version's queue, which only processes with that very graph read.
        """
        if status.name != SEGMENT_WORKFLOW:
            return process_queue_name(self.executor_id) if status.workflow_id in bring_here else ""
        request = requests.from_workflow_input(status.input)
        if request is None:
            return process_queue_name(self.executor_id) if status.workflow_id in bring_here else ""
        agent = request["agent"]
        run_id, _ = parse_segment_workflow_id(status.workflow_id)
        record = records.find(self.engine, run_id)
        version = record.fingerprint if record is not None else None
        here = registry.version_of(agent)
        if status.workflow_id in bring_here and (version is None or (here and here[0] == version)):
            return process_queue_name(self.executor_id)
        if request.get("needs_attachments"):
            return None
        return version_queue_name(agent, version) if version else queue_name(agent)

    def _claim_and_move(self, client: DBOSClient, workflow_id: str, dead: str, target: str) -> bool:
        seen = owners.find_claim(self.engine, workflow_id, dead)
        if seen is not None and seen.moved_to is None and seen.claimed_by != self.executor_id:
            claimant = owners.get(self.engine, seen.claimed_by)
            if claimant is not None and liveness.judge(claimant).alive:
                return False  # a live claimant is moving it
        if not owners.claim(self.engine, workflow_id, dead, self.executor_id, seen):
            return False
        # Re-read after winning the claim: only a workflow still stranded moves, never one
        # that a completed earlier takeover put on a queue and a live process dequeued.
        fresh = client.list_workflows(
            workflow_ids=[workflow_id], load_input=False, load_output=False
        )
        if not fresh or not _still_stranded(fresh[0], dead):
            return False
        if target == process_queue_name(self.executor_id):
            with self._lock:
                self.on_own_queue()
        client.resume_workflow(workflow_id, queue_name=target or None)
        owners.mark_moved(self.engine, workflow_id, dead, target or "_dbos_internal_queue")
        return True

    def take_over_if_dead(self, workflow_id: str) -> None:
        """For a caller waiting on `workflow_id`: bring it here if its owner is dead."""
        found = self.client().list_workflows(
            workflow_ids=[workflow_id], load_input=False, load_output=False
        )
        if not found:
            return
        dead = _stranding_executor(found[0])
        if dead is not None and dead != self.executor_id:
            self.take_over(dead, bring_here=frozenset({workflow_id}), only=frozenset({workflow_id}))


def _stranding_executor(status: Any) -> str | None:
    """The executor a workflow depends on: its runner, or the process whose queue holds it."""
    if status.status == "PENDING":
        return str(status.executor_id) if status.executor_id else None
    if status.status == "ENQUEUED" and (status.queue_name or "").startswith(PROCESS_QUEUE_PREFIX):
        return str(status.queue_name)[len(PROCESS_QUEUE_PREFIX) :]
    return None


def _still_stranded(status: Any, dead: str) -> bool:
    return _stranding_executor(status) == dead


def _where(engine: sa.Engine) -> str:
    """The database as shown in outage lines: host:port/database, or the SQLite file."""
    url = engine.url
    if url.get_backend_name() == "sqlite":
        return str(url.database)
    return f"{url.host or 'localhost'}:{url.port or 5432}/{url.database}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
