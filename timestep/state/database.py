"""Opening the configured database: URL checks, SQLAlchemy engines, clear connection errors."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError

from .. import config  # only to name where the URL came from in errors (issue 27)
from ..errors import ConfigurationError, DatabaseUnavailableError

_PASSWORD_IN_URL = re.compile(r"(?P<head>://[^:/?#@\s]*:)(?P<password>[^/?#\s]*)(?P<tail>@)")


def masked_url(url: str) -> str:
    """`url` with its password replaced by `***`: the only form of a URL Timestep shows.

    Works on URLs SQLAlchemy cannot parse too (the password is whatever sits between the user
    name's colon and the `@` of the authority), so a malformed URL is masked in its error.
    """
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        parsed = None
    if parsed is not None and parsed.password is not None:
        return parsed.render_as_string(hide_password=True)
    return _PASSWORD_IN_URL.sub(r"\g<head>***\g<tail>", url)


@dataclass(frozen=True)
class DatabaseTarget:
    """A parsed, validated database URL."""

    url: str = field(repr=False)
    """The URL as the user gave it (used for DBOS's `system_database_url`); it may hold a
    password, so it is never shown: messages use `where` or `masked_url(url)`."""

    sqlalchemy_url: str = field(repr=False)
    """The URL with an explicit driver, for SQLAlchemy (password included; never shown)."""

    is_sqlite: bool
    """True for a SQLite file, False for PostgreSQL."""

    where: str
    """Human-readable location for error messages: a file path or host:port/database."""


def parse_database_url(url: str) -> DatabaseTarget:
    """Validate `url` and say precisely what is wrong with it when it cannot be used."""
    shown = masked_url(url)
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        # Not chained: SQLAlchemy's message repeats the whole URL, password included. A value
        # without a scheme is not echoed at all: nothing tells where a password would sit.
        given = repr(shown) if "://" in url else f"({len(url)} characters, no scheme://)"
        raise ConfigurationError(
            f"database URL {given} is not a URL; use sqlite:///PATH or "
            "postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
        ) from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:"):
            raise ConfigurationError(
                f"database URL {shown!r} names no file; an in-memory SQLite database cannot hold "
                "runs across processes: use sqlite:///PATH"
            )
        path = Path(database).expanduser()
        if not path.parent.is_dir():
            raise DatabaseUnavailableError(
                f"SQLite database file {str(path)!r} cannot be created: its directory "
                f"{str(path.parent)!r} does not exist"
            )
        return DatabaseTarget(url, f"sqlite:///{path}", True, str(path))
    if backend in ("postgresql", "postgres"):
        if not parsed.database:
            raise ConfigurationError(f"PostgreSQL URL {shown!r} names no database")
        driverless = parsed.set(drivername="postgresql+psycopg")
        where = f"{parsed.host or 'localhost'}:{parsed.port or 5432}/{parsed.database}"
        return DatabaseTarget(url, driverless.render_as_string(hide_password=False), False, where)
    raise ConfigurationError(
        f"database URL {shown!r} uses {backend!r}; Timestep stores runs in SQLite (sqlite:///PATH) "
        "or PostgreSQL (postgresql://...)"
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL with synchronous=FULL keeps every commit durable and makes a DBOS step about 40%
    # cheaper than SQLite's default rollback journal (measured); the busy timeout
    # matches DBOS's own so several processes can share one file.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def create_engine(target: DatabaseTarget, *, pool_size: int = 5) -> sa.Engine:
    """An engine for `target`, checked by connecting once."""
    if target.is_sqlite:
        engine = sa.create_engine(
            target.sqlalchemy_url,
            connect_args={"check_same_thread": False, "timeout": 30},
        )
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = sa.create_engine(
            target.sqlalchemy_url,
            pool_size=pool_size,
            pool_pre_ping=True,
            connect_args={"connect_timeout": 10},
        )
    check_connection(engine, target)
    return engine


def check_connection(engine: sa.Engine, target: DatabaseTarget) -> None:
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except OperationalError as exc:
        kind = "SQLite file" if target.is_sqlite else "PostgreSQL server"
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise DatabaseUnavailableError(
            f"cannot open the {kind} at {target.where}: {reason}. Check the URL given by "
            f"{config.database_url_source()}"
        ) from exc


def ensure_postgres_database(target: DatabaseTarget, *, create: bool = True) -> None:
    """Create the PostgreSQL database named in `target` if the server lacks it (without
    `create`: raise `DatabaseUnavailableError` instead).

    DBOS does the same for its own engine; doing it first lets us report an unreachable server
    with its address before DBOS starts.
    """
    url = make_url(target.sqlalchemy_url)
    admin = sa.create_engine(
        url.set(database="postgres"),
        isolation_level="AUTOCOMMIT",
        connect_args={"connect_timeout": 10},
    )
    try:
        with admin.connect() as connection:
            exists = connection.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :name"),
                {"name": url.database},
            ).scalar()
            if not exists and not create:
                raise DatabaseUnavailableError(
                    f"no database {url.database!r} on the PostgreSQL server at {target.where} "
                    f"(from {config.database_url_source()}): nothing has run with it yet, or the "
                    "name is mistyped; --create makes a new, empty one"
                )
            if not exists:
                # A quoted identifier: the name comes from the URL, and a quote in it must not
                # change the statement.
                _create_database(connection, target, url.database or "")
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise DatabaseUnavailableError(
            f"cannot reach the PostgreSQL server at {target.where}: {reason}. Check the URL "
            f"given by {config.database_url_source()}"
        ) from exc
    finally:
        admin.dispose()


def _create_database(connection: sa.Connection, target: DatabaseTarget, name: str) -> None:
    """CREATE DATABASE `name`, the name quoted as an identifier by psycopg."""
    import psycopg
    from psycopg import sql

    raw = connection.connection.driver_connection
    assert isinstance(raw, psycopg.Connection)
    try:
        raw.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.errors.DuplicateDatabase:
        pass  # another process created it meanwhile
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0]
        raise DatabaseUnavailableError(
            f"cannot create the PostgreSQL database {name!r} at {target.where}: {reason}. "
            "Create it yourself, or connect as a user that may create databases"
        ) from None


def dialect_insert(engine: sa.Engine, table: sa.Table) -> Any:
    """An INSERT for `table` with the dialect's `on_conflict_do_*` (SQLite and PostgreSQL)."""
    from sqlalchemy.dialects import postgresql, sqlite  # imported when writing, not to read

    if engine.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def json_text_with_key(engine: sa.Engine, column: Any, key: str, value_json: str) -> Any:
    """SQL for the JSON object text in `column` (NULL counts as `{}`) with `key` set to the
    JSON `value_json`: a read-modify-write done by the database in the UPDATE itself, under
    the row's lock (PostgreSQL re-reads a row changed meanwhile before it updates it)."""
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import JSONB

        merged = sa.cast(sa.func.coalesce(column, "{}"), JSONB).op("||")(
            sa.func.jsonb_build_object(
                sa.cast(sa.literal(key), sa.Text), sa.cast(sa.literal(value_json), JSONB)
            )
        )
        return sa.cast(merged, sa.Text)
    # SQLite's JSON1 (built in since 3.38): the path quotes the key, which may hold any text.
    path = "$." + json.dumps(key)
    return sa.func.json_set(sa.func.coalesce(column, "{}"), path, sa.func.json(value_json))


def autocommit(engine: sa.Engine) -> sa.Connection:
    """A connection whose every statement commits by itself, for writes of one statement:
    on PostgreSQL no BEGIN and COMMIT round trips around it (on SQLite the same single
    statement transaction)."""
    return engine.connect().execution_options(isolation_level="AUTOCOMMIT")
