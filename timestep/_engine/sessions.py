"""A run's SDK session across processes: what is stored to reopen it elsewhere."""

from __future__ import annotations

from typing import Any

from agents.memory import Session, SQLiteSession


def session_descriptor(session: Session | None) -> dict[str, Any] | None:
    """How to reopen `session` in another process, when its kind allows it (a SQLite file);
    None for a session only the caller's process can supply."""
    if isinstance(session, SQLiteSession) and str(session.db_path) != ":memory:":
        return {"kind": "sqlite", "session_id": session.session_id, "db_path": str(session.db_path)}
    return None


def reopen_session(descriptor: dict[str, Any] | None) -> Session | None:
    """The session `descriptor` (from `session_descriptor`) describes, opened here."""
    if descriptor and descriptor.get("kind") == "sqlite":
        return SQLiteSession(descriptor["session_id"], descriptor["db_path"])
    return None
