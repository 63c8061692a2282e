"""Inspecting runs: `get_run` and `list_runs`.

These read Timestep's tables only: they neither launch DBOS nor take part in recovery, so any
process (a CLI, an HTTP handler) can call them without the agents' code.
"""

from __future__ import annotations

import asyncio

from ._engine import launch
from .errors import TimestepError
from .state import records
from .state.records import STATUSES, RunRecord


async def get_run(run_id: str) -> RunRecord:
    """The stored record of `run_id`; raises `RunNotFoundError` when there is none."""
    return await asyncio.to_thread(records.get, launch.storage_engine(), run_id)


async def list_runs(status: str | None = None, limit: int = 50) -> list[RunRecord]:
    """The most recent runs first, optionally only those with `status`."""
    if status is not None and status not in STATUSES:
        raise TimestepError(f"unknown run status {status!r}; use one of {', '.join(STATUSES)}")
    if limit < 1:
        raise TimestepError(f"limit must be at least 1, got {limit}")
    return await asyncio.to_thread(records.list_records, launch.storage_engine(), status, limit)
