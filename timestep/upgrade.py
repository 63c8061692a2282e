"""Rolling out new agent code: move parked runs to it, or keep a run on its version.

`upgrade_runs` checks runs against the graph of an agent registered in this process (the new
code) and moves each compatible, unpinned run to it: the run records the move and its queued
continuation goes to the new version's queue. `pin_run` keeps a run on its version. The rules
are in `timestep._engine.versions`; "Deploying new agent code" in the README tells the story.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import _engine as engine
from .errors import InvalidArgumentError
from .state import records, storage
from .state.records import RunRecord
from .state.run_record import version_id

if TYPE_CHECKING:
    from agents import Agent

MOVABLE = ("awaiting_approval", "running", "failed", "cancelled")
"""Statuses of runs that still have work ahead (a completed run stays on its version)."""


@dataclass(frozen=True)
class UpgradeResult:
    """What `upgrade_runs` found (and did) for one run."""

    run_id: str
    status: str
    version: str
    """The version the run was on (the first characters of its graph fingerprint)."""
    label: str | None
    to_version: str
    to_label: str | None
    compatible: bool
    """Its history and pending calls are valid under the new graph."""
    problems: list[str]
    """Every incompatibility, each a sentence."""
    pinned: bool
    moved: bool
    """The run is now on the new version (False with `dry_run`)."""
    outcome: str
    """One line for a person."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "status": self.status,
            "version": self.version,
            "label": self.label,
            "to_version": self.to_version,
            "to_label": self.to_label,
            "compatible": self.compatible,
            "problems": self.problems,
            "pinned": self.pinned,
            "moved": self.moved,
            "outcome": self.outcome,
        }


def _upgrade_one(record: RunRecord, agent: Agent[Any], dry_run: bool) -> UpgradeResult:
    verdict, graph = engine.judge_version(record, agent)
    outcome = verdict.describe()
    moved = False
    if verdict.movable and not dry_run:
        moved = engine.move_to_version(record, verdict, graph)
        if moved:
            outcome = "moved: " + outcome.removeprefix("compatible: moves ")
        else:
            outcome = (
                "compatible, not moved: a process of its version took its continuation "
                "meanwhile and finishes it"
            )
    elif verdict.movable:
        outcome += " (dry run: nothing changed)"
    return UpgradeResult(
        run_id=record.run_id,
        status=record.status,
        version=version_id(verdict.version),
        label=verdict.label,
        to_version=version_id(verdict.to_version),
        to_label=verdict.to_label,
        compatible=not verdict.problems,
        problems=verdict.problems,
        pinned=verdict.pinned,
        moved=moved,
        outcome=outcome,
    )


async def upgrade_runs(
    agent: Agent[Any],
    run_ids: list[str] | None = None,
    *,
    dry_run: bool = False,
    limit: int = 1000,
) -> list[UpgradeResult]:
    """Check runs against `agent`'s graph (registered here: the new code) and move each one
    that is compatible and not pinned to it, unless `dry_run`.

    `run_ids` None: every unfinished run of `agent` (parked, queued, failed or cancelled; at
    most `limit`, most recent first). A run of another starting agent raises
    `InvalidArgumentError`. Moving a run moves its queued continuation to the new version's
    queue in the same transaction; a continuation that a process of the old version took
    already stays there (that process finishes it; the result says so).
    """
    engine.register_agent(agent)
    database = storage.storage_engine()
    if run_ids is None:
        found = await asyncio.to_thread(
            records.list_records, database, None, limit, agent=agent.name
        )
        chosen = [r for r in found if r.status in MOVABLE]
    else:
        chosen = [await asyncio.to_thread(records.get, database, run_id) for run_id in run_ids]
        for record in chosen:
            if record.agent_name != agent.name:
                raise InvalidArgumentError(
                    f"run {record.run_id!r} starts with agent {record.agent_name!r}, not "
                    f"{agent.name!r}: upgrade it with that agent's new code"
                )
    return [await asyncio.to_thread(_upgrade_one, record, agent, dry_run) for record in chosen]


async def pin_run(run_id: str, pinned: bool = True) -> RunRecord:
    """Keep run `run_id` on its agent version (`pinned=False`: let it move again).

    A pinned run is never moved: `resume` or `run_agent` in a process with another version
    raises `IncompatibleVersionError`, `upgrade_runs` leaves it; a process with its version
    finishes it.
    """
    database = storage.storage_engine()
    await asyncio.to_thread(records.set_pinned, database, run_id, pinned)
    return await asyncio.to_thread(records.get, database, run_id)
