"""The inbox page's view of the database, and its live form: what the page shows in one JSON
document (runs awaiting approval first, a page of runs, the selected run and its recorded steps),
sent again by the server whenever it changes, so the page never polls."""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import RunNotFoundError, TimestepError
from ..state.run_record import STATUSES, RunRecord
from ._errors import error_body

if TYPE_CHECKING:
    from ..runs import RecordedStep

PENDING_SHOWN = 100
"""Runs awaiting approval listed at most (the count says `100+` beyond)."""
SEARCH_WINDOW = 1000
"""A search looks through this many most recently updated runs."""
MAX_SEARCH = 200
"""The longest search text used (longer is cut)."""
MAX_PAGE = 200
"""The largest page of runs."""
TICK_SECONDS = 1.0
"""How often the live view is read again (on the server, once per open page)."""
KEEPALIVE_SECONDS = 15.0
"""An event is sent at least this often (`{"keepalive": true}` when nothing changed), so
proxies between the page and the server do not close a quiet stream."""

__all__ = ["STATUSES", "InboxQuery", "InboxView", "live", "view"]


@dataclass(frozen=True)
class InboxQuery:
    """What the page asks for."""

    status: str | None = None
    search: str | None = None
    limit: int = 25
    offset: int = 0
    selected: str | None = None


@dataclass(frozen=True)
class SelectedRun:
    """The run the page has open (None `run`: it does not exist, or no longer)."""

    run_id: str
    run: RunRecord | None
    steps: list[RecordedStep] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "run": None if self.run is None else self.run.as_dict(),
            # Whether the run has durable events to follow (`RunRecord.as_dict` leaves it out).
            "streamed": self.run is not None and self.run.streamed,
            "steps": self.steps,
        }


@dataclass(frozen=True)
class InboxView:
    """What the page shows."""

    pending: list[RunRecord]
    """Runs awaiting approval (matching the search), most recently updated first."""
    pending_count: int
    """How many runs await approval (all of them, up to `PENDING_SHOWN`)."""
    pending_more: bool
    """More than `PENDING_SHOWN` runs await approval."""
    runs: list[RunRecord]
    """One page of runs (with the status filter and the search), without those already in
    `pending` (so a page may hold fewer than `limit`)."""
    next_offset: int | None
    selected: SelectedRun | None
    now: float
    """The server's clock, for relative times on a page whose clock differs."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "pending_count": self.pending_count,
            "pending_more": self.pending_more,
            "pending": [r.as_dict() for r in self.pending],
            "runs": [r.as_dict() for r in self.runs],
            "next_offset": self.next_offset,
            "selected": None if self.selected is None else self.selected.as_dict(),
            "now": self.now,
        }


SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "pending_count": {"type": "integer"},
        "pending_more": {"type": "boolean"},
        "pending": {"type": "array", "items": {"$ref": "#/components/schemas/Run"}},
        "runs": {"type": "array", "items": {"$ref": "#/components/schemas/Run"}},
        "next_offset": {"type": ["integer", "null"]},
        "selected": {
            "type": ["object", "null"],
            "description": "run_id, run (null when there is no such run), streamed (it has "
            "events at /events), steps (its recorded model and tool calls)",
        },
        "now": {"type": "number", "description": "the server's clock (Unix seconds)"},
    },
}
"""The OpenAPI schema of `InboxView.as_dict()`."""


def matches(record: RunRecord, search: str | None) -> bool:
    """Whether the run's id, starting agent or a pending call's tool contains `search`."""
    if not search:
        return True
    wanted = search.casefold()
    names = [record.run_id, record.agent_name] + [p["tool_name"] for p in record.pending_approvals]
    return any(wanted in name.casefold() for name in names)


async def view(query: InboxQuery) -> InboxView:
    """The view for `query`, read now."""
    from ..runs import get_run, list_runs, recorded_steps

    waiting = await list_runs("awaiting_approval", limit=PENDING_SHOWN + 1)
    pending = [r for r in waiting[:PENDING_SHOWN] if matches(r, query.search)]
    if query.search:
        window = await list_runs(query.status, limit=SEARCH_WINDOW)
        found = [r for r in window if matches(r, query.search)]
        page = found[query.offset : query.offset + query.limit]
        more = len(found) > query.offset + query.limit
    else:
        found = await list_runs(query.status, limit=query.limit + 1, offset=query.offset)
        page, more = found[: query.limit], len(found) > query.limit
    listed = {r.run_id for r in pending}
    page = [r for r in page if r.run_id not in listed]
    selected = None
    if query.selected is not None:
        try:
            record = await get_run(query.selected)
            selected = SelectedRun(query.selected, record, await recorded_steps(record.run_id))
        except RunNotFoundError:
            selected = SelectedRun(query.selected, None)
    return InboxView(
        pending=pending,
        pending_count=min(len(waiting), PENDING_SHOWN),
        pending_more=len(waiting) > PENDING_SHOWN,
        runs=page,
        next_offset=query.offset + query.limit if more else None,
        selected=selected,
        now=time.time(),
    )


def _digest(shown: dict[str, Any]) -> str:
    """What a change is judged on: the view without its clock and without the owners' ever
    changing heartbeat age (`alive` stays)."""
    stable = copy.deepcopy(shown)
    stable.pop("now", None)
    records = stable["pending"] + stable["runs"]
    if stable["selected"] and stable["selected"]["run"]:
        records.append(stable["selected"]["run"])
    for record in records:
        if record.get("owner"):
            record["owner"].pop("reason", None)
    return json.dumps(stable, sort_keys=True, default=str)


async def live(query: InboxQuery) -> AsyncIterator[dict[str, Any]]:
    """The view at once, then each time it changes (checked every `TICK_SECONDS`). While the
    database fails, an `{"error": {type, message}}` event says so once, and the view follows
    when it is back."""
    last: str | None = None
    quiet_since = time.monotonic()
    while True:
        try:
            shown = (await view(query)).as_dict()
            digest = _digest(shown)
        except TimestepError as exc:
            shown = error_body(exc)
            digest = json.dumps(shown)
        if digest != last:
            last = digest
            quiet_since = time.monotonic()
            yield shown
        elif time.monotonic() - quiet_since >= KEEPALIVE_SECONDS:
            quiet_since = time.monotonic()
            yield {"keepalive": True, "now": time.time()}
        await asyncio.sleep(TICK_SECONDS)
