"""Retention: `prune_runs` deletes finished runs that nobody needs any more."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from . import _engine as engine
from .errors import InvalidArgumentError
from .state import records, storage

BATCH = 100
"""Runs deleted per transaction: each batch holds its locks briefly, so running work goes on."""


@dataclass
class PruneReport:
    """What `prune_runs` deleted (or, with `dry_run`, would delete)."""

    cutoff: float
    """Runs last updated before this time (seconds since the epoch) were candidates."""

    dry_run: bool
    deleted: list[str] = field(default_factory=list)
    """Ids of the runs deleted (with `dry_run`: that would be)."""


async def prune_runs(
    older_than: float,
    *,
    statuses: Sequence[str] | None = None,
    dry_run: bool = False,
) -> PruneReport:
    """Delete the finished runs (`completed`, `failed`, `cancelled`, or those of `statuses`)
    whose last update is more than `older_than` seconds ago, with everything stored for them:
    their record, decisions and parked states, and the DBOS workflows of their segments with
    their steps and event streams.

    A parked or running run is never deleted, nor is a run retried while the prune runs. Runs
    go in batches of `BATCH`, each its own transaction. Needs no agent code and does not
    launch DBOS. A run cancelled while a step was in flight should be pruned only once that
    step has ended: keep `older_than` above your longest tool call.
    """
    if not older_than >= 0:
        raise InvalidArgumentError(f"older_than must be seconds >= 0, got {older_than!r}")
    chosen = tuple(s for s in records.FINISHED if statuses is None or s in statuses)
    wrong = [s for s in statuses or () if s not in records.FINISHED]
    if wrong or not chosen:
        raise InvalidArgumentError(
            f"prune deletes only finished runs ({', '.join(records.FINISHED)}), not "
            f"{', '.join(wrong) or 'nothing'}"
        )
    report = PruneReport(cutoff=time.time() - older_than, dry_run=dry_run)
    database = storage.storage_engine()
    while True:
        found = await asyncio.to_thread(
            records.finished_before,
            database,
            report.cutoff,
            chosen,
            BATCH,
            len(report.deleted) if dry_run else 0,  # deleted runs leave the listing
        )
        if not found:
            return report
        if dry_run:
            report.deleted.extend(r.run_id for r in found)
            continue
        deleted = set(
            await asyncio.to_thread(
                records.delete_finished,
                database,
                [r.run_id for r in found],
                report.cutoff,
                chosen,
            )
        )
        if not deleted:
            return report  # every candidate changed meanwhile
        for record in found:
            if record.run_id in deleted:
                # After the record: a run that is gone from the records cannot be retried.
                await engine.delete_segments(record.run_id, record.segment)
                report.deleted.append(record.run_id)
