"""Reading run records from a SQLite file with the standard library's `sqlite3` alone.

The CLI's read-only commands (`runs list`, `runs show`) spend most of their start-up importing
SQLAlchemy. On a SQLite database whose schema is current they read through this module
instead: the same rows as `records.get` / `list_records` / `decisions_for`, read-only, decoded
by the same `record_from_row`. Anything else (PostgreSQL, a schema to migrate, DBOS in the
process) goes through the storage engine.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

from ..errors import RunNotFoundError
from .run_record import RECORD_COLUMNS, Decision, RunRecord, RunStatus, record_from_row

SCHEMA_VERSION = 8
"""The schema version these queries read (`schema.MIGRATIONS[-1]`; a test checks they agree)."""

_RECORD = f"SELECT {', '.join(RECORD_COLUMNS)} FROM timestep_runs"


class SQLiteReads:
    """Read-only queries on one SQLite file, over one connection (callers' threads take turns)."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection
        self._lock = threading.Lock()

    def _rows(self, query: str, values: tuple[Any, ...]) -> list[Any]:
        with self._lock:
            return self._connection.execute(query, values).fetchall()

    @classmethod
    def open(cls, path: Path) -> SQLiteReads | None:
        """The reads of `path`, or None when its schema is not the current one (the storage
        engine then migrates it, or says why it cannot)."""
        writable = os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)
        # As the storage engine does: a file nobody may write and without a write-ahead log
        # beside it has nothing mid-commit, and is opened immutable (no -shm file needed).
        immutable = not writable and not Path(f"{path}-wal").exists()
        uri = f"file:{quote(str(path))}?mode=ro" + ("&immutable=1" if immutable else "")
        try:
            connection = sqlite3.connect(uri, uri=True, timeout=30, check_same_thread=False)
            version = connection.execute(
                "SELECT max(version) FROM timestep_schema_migrations"
            ).fetchone()[0]
        except sqlite3.Error:
            return None
        if version != SCHEMA_VERSION:
            connection.close()
            return None
        connection.row_factory = _attributes
        return cls(connection)

    def get(self, run_id: str) -> RunRecord:
        rows = self._rows(f"{_RECORD} WHERE run_id = ?", (run_id,))
        if not rows:
            raise RunNotFoundError(run_id)
        return record_from_row(rows[0])

    def list_records(
        self, status: RunStatus | str | None, limit: int, agent: str | None, offset: int
    ) -> list[RunRecord]:
        where, values = [], []
        if status is not None:
            where.append("status = ?")
            values.append(status)
        if agent is not None:
            where.append("agent_name = ?")
            values.append(agent)
        query = (
            _RECORD
            + (f" WHERE {' AND '.join(where)}" if where else "")
            + " ORDER BY updated_at DESC, run_id LIMIT ? OFFSET ?"
        )
        rows = self._rows(query, (*values, limit, offset))
        return [record_from_row(row) for row in rows]

    def decisions_for(self, run_id: str, segment: int) -> dict[str, Decision]:
        rows = self._rows(
            "SELECT call_id, tool_name, decision, always, message FROM timestep_decisions"
            " WHERE run_id = ? AND segment = ?",
            (run_id, segment),
        )
        return {
            row.call_id: Decision(
                row.call_id, row.tool_name, row.decision, bool(row.always), row.message
            )
            for row in rows
        }


def _attributes(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> SimpleNamespace:
    names = (column[0] for column in cursor.description)
    return SimpleNamespace(**dict(zip(names, row, strict=True)))
