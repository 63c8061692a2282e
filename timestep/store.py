"""`RunStateStore`: timestep 2026.0.x's explicit store for a paused run's `RunState`.

A state is kept as the JSON that the Python Agents SDK writes (`RunState.to_json()`, schema 1.21)
in the `timestep_states` table, one row per key; nothing is pickled. From that row either form can
be produced: the Python JSON as stored, or the TypeScript SDK's JSON through the state-export
adapter (`export("typescript")`).

Keys are namespaced by kind (`session:<id>` or `run:<id>`), so a session id and a run id that
happen to be equal never share a row.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
import uuid
import warnings
from typing import Any, Literal

import sqlalchemy as sa
from agents import Agent, RunState

from ._compat import agents as agents_compat
from .context import ContextStorage, as_read, declared_for
from .errors import (
    ArgumentTypeError,
    ContextStorageError,
    InvalidArgumentError,
    StateError,
    StateNotFoundError,
    TimestepError,
    wrapped,
)
from .state import schema
from .state.database import (
    create_engine,
    dialect_insert,
    ensure_postgres_database,
    parse_database_url,
)

__all__ = ["RunStateStore"]

_MAX_KEY_LENGTH = 512  # the width of timestep_states.key

_engines: dict[str, sa.Engine] = {}
_engines_lock = threading.Lock()


def _engine_for(connection_string: str) -> sa.Engine:
    """A migrated engine for `connection_string`, created once per URL in this process."""
    target = parse_database_url(connection_string)
    with _engines_lock:
        engine = _engines.get(target.sqlalchemy_url)
        if engine is None:
            if not target.is_sqlite:
                ensure_postgres_database(target)
            engine = create_engine(target)
            schema.migrate(engine)
            _engines[target.sqlalchemy_url] = engine
        return engine


def dispose_engines() -> None:
    """Close the engines opened for `connection_string=` stores (tests, shutdown)."""
    with _engines_lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def _where(engine: sa.Engine) -> str:
    target = parse_database_url(engine.url.render_as_string(hide_password=False))
    return f"the {'SQLite file' if target.is_sqlite else 'PostgreSQL database'} {target.where}"


def _upsert(engine: sa.Engine, key: str, agent_name: str, text: str) -> None:
    values = {"key": key, "agent_name": agent_name, "state": text, "updated_at": time.time()}
    table = schema.states
    statement = dialect_insert(engine, table).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.key],
        set_={
            "agent_name": statement.excluded.agent_name,
            "state": statement.excluded.state,
            "updated_at": statement.excluded.updated_at,
        },
    )
    with engine.begin() as connection:
        connection.execute(statement)


def _select(engine: sa.Engine, key: str) -> tuple[str, str] | None:
    table = schema.states
    with engine.connect() as connection:
        row = connection.execute(
            sa.select(table.c.agent_name, table.c.state).where(table.c.key == key)
        ).first()
    return None if row is None else (row.agent_name, row.state)


def _delete(engine: sa.Engine, key: str) -> None:
    with engine.begin() as connection:
        connection.execute(sa.delete(schema.states).where(schema.states.c.key == key))


class RunStateStore:
    """Saves and loads one agent's paused `RunState` under a run id or a session id.

    Timestep 2026.0.x's explicit flow: `state = result.to_state()`, `await store.save(state)`;
    later, in any process, `state = await store.load()`, `state.approve(...)`,
    `await timestep.run_agent(agent, state)`.

    The arguments keep timestep 2026.0.x's order, `(agent, run_id, session_id,
    connection_string, use_pglite, pglite_path)`. The key is `run_id` when given (it wins over
    `session_id` when both are), else `session_id`; with neither, a new run id is made on first
    use (`save`, `load`, `export` or reading `key`; `store.run_id` is None until then, as in
    timestep 2026.0.x), and `clear` before it does nothing. Keys are namespaced by kind, so
    `session_id="x"` and `run_id="x"` are different rows. The database is `connection_string`
    when given (SQLite `sqlite:///PATH` or PostgreSQL `postgresql://...`, used by this store
    only), otherwise the one Timestep is configured with (`timestep.configure(database_url=...)`,
    `TIMESTEP_DB_URL`, or the SQLite default). No database is opened until the first operation.

    `use_pglite` and `pglite_path` are accepted for code written for timestep 2026.0.x, whose
    default store was PGLite; states are stored in Timestep's database all the same (a
    `DeprecationWarning` says so), and `timestep import-pglite [DIR]` imports the states that
    the old store holds.
    """

    def __init__(
        self,
        agent: Agent[Any],
        run_id: str | None = None,
        session_id: str | None = None,
        connection_string: str | None = None,
        use_pglite: bool | None = None,
        pglite_path: str | os.PathLike[str] | None = None,
        *,
        context_storage: ContextStorage | None = None,
    ) -> None:
        if agent is None:  # the original's ValueError and message, then what to do
            raise InvalidArgumentError(
                "agent is required: RunStateStore(agent, ...) takes the starting agents.Agent "
                "of the runs whose states it holds"
            )
        if not isinstance(agent, Agent):
            raise ArgumentTypeError(
                f"RunStateStore expects an agents.Agent, got {type(agent).__name__}"
            )
        for name, value in (("run_id", run_id), ("session_id", session_id)):
            if value is not None and (not isinstance(value, str) or not value):
                raise InvalidArgumentError(f"RunStateStore {name} must be a non-empty string")
        if use_pglite is not None and not isinstance(use_pglite, bool):
            raise InvalidArgumentError("RunStateStore use_pglite must be True, False or None")
        if pglite_path is not None and not isinstance(pglite_path, str | os.PathLike):
            raise ArgumentTypeError("RunStateStore pglite_path must be a path")
        if use_pglite or pglite_path is not None:
            warnings.warn(
                "RunStateStore(use_pglite=..., pglite_path=...) is accepted for timestep "
                "2026.0.x code, but states are stored in Timestep's database (SQLite by "
                "default, or TIMESTEP_DB_URL); run `timestep import-pglite [DIR]` once to "
                "import the states the old PGLite store holds",
                DeprecationWarning,
                stacklevel=2,
            )
        self.agent = agent
        """The starting agent of the runs whose states this store holds; `load` rebuilds
        against it."""
        self.run_id = run_id
        self.session_id = session_id
        self.connection_string = connection_string
        self.use_pglite = use_pglite
        self.pglite_path = pglite_path
        self.context_storage = context_storage
        """How the state's context is saved and exported (`timestep.ContextStorage`); `None`
        uses the declaration registered for `agent` (`register_agent(..., context_storage=...)`),
        if any, else the SDK's own serialization."""
        for kind, ident in (("run", run_id), ("session", session_id)):
            if ident is not None and len(ident) > _MAX_KEY_LENGTH - len(kind) - 1:
                raise InvalidArgumentError(
                    f"RunStateStore {kind}_id is {len(ident)} characters long; "
                    f"at most {_MAX_KEY_LENGTH - len(kind) - 1} fit"
                )
        if connection_string is not None:
            parse_database_url(connection_string)  # a bad URL fails here, clearly

    def __repr__(self) -> str:
        kind, ident = ("session", self.session_id) if self._by_session else ("run", self.run_id)
        return f"RunStateStore(agent={self.agent.name!r}, {kind}_id={ident!r})"

    @property
    def _by_session(self) -> bool:
        return self.run_id is None and self.session_id is not None

    @property
    def _kind(self) -> str:
        return "session" if self._by_session else "run"

    @property
    def _ident(self) -> str:
        """The id of the key; with neither id, a new run id, made on first use (as timestep
        2026.0.x did on its first save or load) and kept in `run_id`."""
        if self._by_session:
            assert self.session_id is not None
            return self.session_id
        if self.run_id is None:
            self.run_id = str(uuid.uuid4())
        return self.run_id

    @property
    def key(self) -> str:
        """The row key: `session:<session_id>` or `run:<run_id>` (making the run id when the
        store was given neither id)."""
        return f"{self._kind}:{self._ident}"

    def _storage(self) -> ContextStorage | None:
        if self.context_storage is not None:
            return self.context_storage
        return declared_for(self.agent.name)

    def _describe(self) -> str:
        return f"{self._kind} {self._ident!r}"

    def _engine(self) -> sa.Engine:
        if self.connection_string is not None:
            return _engine_for(self.connection_string)
        from .state.storage import storage_engine

        return storage_engine()

    async def save(self, state: Any, *, context_serializer: Any | None = None) -> None:
        """Store `state` under this store's key, replacing whatever was there.

        `state` is a `RunState` or, as in timestep 2026.0.x, any object whose `to_json()`
        returns the state's JSON document (a mapping).

        Atomic: one upsert statement in one transaction (`INSERT ... ON CONFLICT DO UPDATE`), so
        a reader sees the previous state or the new one whole, and two processes saving the same
        key at once leave exactly one of the two states, intact (last writer wins).

        `context_serializer` is passed to `RunState.to_json` for a context that is not plain
        JSON; with a `ContextStorage` declaration the context is saved in its form instead (its
        secret fields never). Raises `StateError` when the state belongs to another starting
        agent, has no `to_json()`, or does not serialize to a JSON object
        (`ContextStorageError` for the declaration's form); nothing is written then.
        """
        to_json = getattr(state, "to_json", None)
        if not callable(to_json):
            raise StateError(
                f"RunStateStore.save expects a RunState (or an object with to_json()), got "
                f"{type(state).__name__}; save result.to_state()"
            )
        starting = agents_compat.state_starting_agent(state)
        if starting is not None and starting.name != self.agent.name:
            raise StateError(
                f"cannot save a state of agent {starting.name!r} in the store of agent "
                f"{self.agent.name!r} ({self._describe()})"
            )
        storage = self._storage()
        try:
            if not isinstance(state, RunState):
                document = to_json()
            elif storage is not None:
                document = storage.state_json(state)
            else:
                document = state.to_json(context_serializer=context_serializer)
            if isinstance(document, str | bytes):
                document = json.loads(document)
            if not isinstance(document, dict):
                raise TypeError(f"to_json() returned a {type(document).__name__}, not an object")
            text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
        except ContextStorageError:
            raise
        except Exception as error:  # the SDK reports an unserializable context as UserError
            raise StateError(
                f"cannot save the state for {self._describe()}: it does not serialize to a JSON "
                f"object ({type(error).__name__}: {error})"
            ) from error
        engine = await asyncio.to_thread(self._engine)
        await asyncio.to_thread(_upsert, engine, self.key, self.agent.name, text)

    async def load(
        self,
        *,
        context_override: Any | None = None,
        context_deserializer: Any | None = None,
    ) -> RunState[Any, Any]:
        """The state saved under this store's key, rebuilt against `agent`.

        Reads only; the row stays until `clear`. `context_override` / `context_deserializer`
        are passed to `RunState.from_json` for an application context. Without them, a
        `ContextStorage` declaration rebuilds the context and must supply its secret fields
        (`ContextSecretMissingError` otherwise: pass `context_override=` the whole context).

        Raises `StateNotFoundError` when nothing is saved under the key (the message names the
        key and the database), and `StateError` when the state was saved for an agent of another
        name or the SDK refuses it (malformed, unsupported schema version, a tool or agent of the
        state missing from the graph).
        """
        storage = self._storage()
        if storage is not None and context_override is None and context_deserializer is None:
            where = f"the state saved for {self._describe()}"
            context_deserializer = lambda data: storage.load(data, where)  # noqa: E731
        engine, text = await self._stored_text()
        return await self._rebuild(engine, text, context_override, context_deserializer)

    async def clear(self) -> None:
        """Delete the state saved under this store's key.

        The row is deleted, not kept as history (timestep 2026.0.x marked it inactive instead):
        a saved state can hold the run's context, so a cleared one is gone. The run's own record
        (`timestep runs show`) is not touched. Idempotent: clearing a key that holds nothing (or
        was already cleared) does nothing and raises nothing.
        """
        if self.run_id is None and self.session_id is None:
            return  # nothing was saved under an id not made yet (as the original)
        engine = await asyncio.to_thread(self._engine)
        await asyncio.to_thread(_delete, engine, self.key)

    async def close(self) -> None:
        """Close the pooled connections of this store's `connection_string` database.

        The store stays usable (a later call opens a connection again). A store on Timestep's
        configured database leaves it open: that engine is shared with the runs. Idempotent.
        """
        if self.connection_string is None:
            return
        target = parse_database_url(self.connection_string)
        with _engines_lock:
            engine = _engines.get(target.sqlalchemy_url)
        if engine is not None:
            await asyncio.to_thread(engine.dispose)

    async def export(self, format: Literal["python", "typescript"] = "python") -> str:
        """The saved state as a JSON string, in either SDK's form.

        `"python"`: the RunState JSON exactly as the Python SDK wrote it (schema 1.21), for
        `RunState.from_string(agent, text)`. `"typescript"`: the JSON that
        `RunState.fromString(agent, text)` of @openai/agents 0.20.0 loads (schema 1.22), produced
        by `timestep.to_typescript_json`.

        Both forms are checked by loading the state against `agent` first, so an export never
        hands out a state this agent could not resume. Raises what `load` raises, and for the
        TypeScript form the adapter's `StateConversionError` / `UnsupportedStateVersionError`
        (both `StateError`) when the state cannot be converted faithfully.
        """
        if format not in ("python", "typescript"):
            raise TimestepError(f"export format must be 'python' or 'typescript', not {format!r}")
        engine, text = await self._stored_text()
        # Checked without the secret fields: an export never carries them.
        state = await self._rebuild(engine, text, None, as_read)
        if format == "python":
            return text
        from .state.typescript import to_typescript_json

        storage = self._storage()
        # The context is in its stored form already: it crosses as stored (never re-serialized).
        stored_form = (
            None if storage is None else ContextStorage(secret_fields=storage.secret_fields)
        )
        return to_typescript_json(state, context_storage=stored_form)

    async def _rebuild(
        self,
        engine: sa.Engine,
        text: str,
        context_override: Any | None,
        context_deserializer: Any | None,
    ) -> RunState[Any, Any]:
        try:
            document = json.loads(text)
        except ValueError as error:
            raise StateError(
                f"the state saved for {self._describe()} in {_where(engine)} is not valid JSON "
                f"({error})"
            ) from error
        try:
            return await RunState.from_json(
                self.agent,
                document,
                context_override=context_override,
                context_deserializer=context_deserializer,
            )
        except Exception as error:
            refused = wrapped(error, ContextStorageError)
            if refused is not None:
                raise refused from None
            raise StateError(
                f"the state saved for {self._describe()} in {_where(engine)} cannot be loaded "
                f"for agent {self.agent.name!r}: {type(error).__name__}: {error}"
            ) from error

    async def _stored_text(self) -> tuple[sa.Engine, str]:
        engine = await asyncio.to_thread(self._engine)
        row = await asyncio.to_thread(_select, engine, self.key)
        if row is None:
            raise StateNotFoundError(
                f"no state is saved for {self._describe()} (key {self.key!r}) in "
                f"{_where(engine)}; save one with RunStateStore.save(result.to_state())"
            )
        agent_name, text = row
        if agent_name != self.agent.name:
            raise StateError(
                f"the state saved for {self._describe()} in {_where(engine)} belongs to agent "
                f"{agent_name!r}, not to {self.agent.name!r}; load it with a store for "
                f"{agent_name!r}"
            )
        return engine, text
