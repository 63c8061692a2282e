"""The storage engine of this process: Timestep's tables, without importing DBOS's runtime.

Processes that only inspect or decide (the CLI, an HTTP handler) open the database here and
never pay for importing DBOS or the Agents SDK. When the application has launched its own DBOS
instance (it imported `dbos`), Timestep uses that instance's engine and database.

`open_read_only()` (the CLI's read-only commands) makes a missing SQLite file an error instead
of creating an empty database, and opens a file this process may not write without migrating.
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .. import config
from ..errors import ConfigurationError, DatabaseUnavailableError

if TYPE_CHECKING:
    import sqlalchemy as sa

    from .database import DatabaseTarget
    from .sqlite_reads import SQLiteReads

# SQLAlchemy (and the schema and database modules built on it) are imported where an engine
# is made: a read-only command on a SQLite file reads without it (`sqlite_reads`).


@dataclass
class _Storage:
    target: DatabaseTarget | None = None
    engine: sa.Engine | None = None
    read_only: bool = False
    reads: SQLiteReads | None = None
    writable: bool = True


_storage = _Storage()
_lock = threading.RLock()


def open_read_only() -> None:
    """Open the database for reading only (before its first use in this process).

    A SQLite file that does not exist is an error (`DatabaseUnavailableError`), not a new empty
    database; a file this process cannot write is opened read-only (its schema must be current).
    PostgreSQL: a database that does not exist is not created.
    """
    _storage.read_only = True


def is_writable() -> bool:
    """False when the database was opened read-only because this process may not write it."""
    return _storage.writable


def is_read_only() -> bool:
    """Whether this process opened the database for reading only (`open_read_only`)."""
    return _storage.read_only


def _launched_dbos_engine() -> sa.Engine | None:
    if "dbos" not in sys.modules:  # no DBOS instance can exist: skip importing DBOS
        return None
    from .._compat import dbos as dbos_compat

    instance = dbos_compat.instance()
    if instance is not None and dbos_compat.is_launched(instance):
        return dbos_compat.system_engine(instance)
    return None


def sqlite_reads() -> SQLiteReads | None:
    """For a process that opened the database read-only (`open_read_only`) and has no engine:
    reads of its SQLite file that need no SQLAlchemy. None otherwise (PostgreSQL, a URL with
    options, a schema to migrate, DBOS in the process): use `storage_engine()`."""
    with _lock:
        if _storage.reads is not None:
            return _storage.reads
        if not _storage.read_only or _storage.engine is not None:
            return None
        if _launched_dbos_engine() is not None:
            return None  # the application's DBOS instance: its engine is the storage engine
        url = config.configured_database_url() or f"sqlite:///{config.default_database_path()}"
        path = _plain_sqlite_file(url)
        if path is None or not path.is_file():
            return None  # the engine opens it, or says what is missing
        from .sqlite_reads import SQLiteReads

        _storage.reads = SQLiteReads.open(path)
        return _storage.reads


def storage_engine() -> sa.Engine:
    """The engine for Timestep's tables, migrated. Does not launch DBOS."""
    if _storage.engine is not None:
        return _storage.engine
    from . import schema
    from .database import create_engine, ensure_postgres_database, parse_database_url

    with _lock:
        if _storage.engine is None:
            adopted = _launched_dbos_engine()
            if adopted is not None:
                _storage.engine = adopted
                _storage.target = parse_database_url(
                    adopted.url.render_as_string(hide_password=False)
                )
                schema.migrate(adopted)
            elif _storage.read_only:
                _storage.target, _storage.engine = _open_for_reading()
            else:
                target = parse_database_url(config.database_url())
                if not target.is_sqlite:
                    ensure_postgres_database(target)
                engine = create_engine(target, pool_size=20)
                schema.migrate(engine)
                _storage.target, _storage.engine = target, engine
        return _storage.engine


def database_target() -> DatabaseTarget:
    """The database in force (opens and migrates Timestep's tables on first use)."""
    storage_engine()
    assert _storage.target is not None
    return _storage.target


def current_engine() -> sa.Engine | None:
    """The engine if the database was opened in this process, else None."""
    return _storage.engine


def reset() -> None:
    """Forget the engine (tests that switch databases)."""
    with _lock:
        if _storage.engine is not None:
            _storage.engine.dispose()
        _storage.engine = None
        _storage.reads = None
        _storage.target = None
        _storage.read_only = False
        _storage.writable = True


def _plain_sqlite_file(url: str) -> Path | None:
    """The file of a `sqlite:///PATH` URL without options, read without SQLAlchemy."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or "?" in url or url in (prefix, f"{prefix}:memory:"):
        return None
    return Path(url[len(prefix) :]).expanduser()


def unwritable_sqlite_file() -> bool:
    """Whether the database in force is a plain SQLite file that exists and that this process
    may not write (`timestep serve` then opens it read-only)."""
    url = config.configured_database_url() or f"sqlite:///{config.default_database_path()}"
    path = _plain_sqlite_file(url)
    if path is None or not path.is_file():
        return False
    return not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK))


def missing_sqlite_file() -> Path | None:
    """The SQLite file of the database in force when it does not exist (else None)."""
    url = config.configured_database_url() or f"sqlite:///{config.default_database_path()}"
    path = _plain_sqlite_file(url)
    if path is None:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            parsed = make_url(url)
        except ArgumentError:
            return None  # parse_database_url says what is wrong with it
        if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
            return None
        path = Path(parsed.database).expanduser()
    return None if path.is_file() else path


def _open_for_reading() -> tuple[DatabaseTarget, sa.Engine]:
    import sqlalchemy as sa

    from . import schema
    from .database import check_connection, create_engine, parse_database_url

    missing = missing_sqlite_file()
    if missing is not None:
        raise DatabaseUnavailableError(
            f"no Timestep database at {str(missing)!r} (from {config.database_url_source()}): "
            "nothing has run with it yet, or the path is mistyped; `timestep run` creates the "
            "database"
        )
    url = config.configured_database_url() or f"sqlite:///{config.default_database_path()}"
    target = parse_database_url(url)
    if not target.is_sqlite:
        engine = create_engine(target, pool_size=5)
        schema.migrate(engine)
        return target, engine
    path = Path(target.where)
    writable = os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)
    if writable:
        engine = create_engine(target, pool_size=5)
    else:
        # Without a write-ahead log beside it, nothing is mid-commit: open it immutable (SQLite
        # then needs no -shm file, which a read-only directory could not hold).
        _storage.writable = False
        has_wal = Path(f"{path}-wal").exists()
        flags = "mode=ro" if has_wal else "mode=ro&immutable=1"
        engine = sa.create_engine(
            f"sqlite:///file:{path}?{flags}&uri=true",
            connect_args={"check_same_thread": False, "timeout": 30},
        )
        check_connection(engine, target)
    version, latest = _schema_version(engine), schema.MIGRATIONS[-1][0]
    if version < latest:
        _check_is_timestep(engine, path)
        if not writable:
            raise ConfigurationError(
                f"the read-only database {str(path)!r} has Timestep schema version {version}, "
                f"older than this Timestep's {latest}; open it once with write access (any "
                "`timestep` command) to upgrade it"
            )
        schema.migrate(engine)
    return target, engine


def _check_is_timestep(engine: sa.Engine, path: Path) -> None:
    import sqlalchemy as sa

    from . import schema

    if schema.runs.name not in set(sa.inspect(engine).get_table_names()):
        raise ConfigurationError(
            f"{str(path)!r} is a SQLite database without Timestep's tables; check the URL "
            f"given by {config.database_url_source()}"
        )


def _schema_version(engine: sa.Engine) -> int:
    import sqlalchemy as sa

    from . import schema

    with engine.connect() as connection:
        try:
            value = connection.execute(
                sa.select(sa.func.max(schema.schema_migrations.c.version))
            ).scalar()
        except sa.exc.OperationalError:
            return 0
    return int(value or 0)
