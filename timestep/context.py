"""How a run's context is stored: `ContextStorage`.

A run's context (the `context=` of `run_agent`) is written to the database with the run: in
the segment's DBOS workflow input and in every saved state (`timestep_runs.state`, the state
store, exports). By default it is written as the Agents SDK serializes it: a mapping as is, a
dataclass or pydantic model as its fields. `ContextStorage` declares another form, for one
agent's runs, in every place it is written:

- `secret_fields`: top-level fields (mapping keys, or attributes of a dataclass or pydantic
  context) that are never written anywhere. They must be supplied again whenever a run goes on
  from its records (after an approval, a crash, a retry, a fork): by the live context given to
  `run_agent(..., run_id=R, context=...)` in the process that runs it, or by `deserializer`.
  A context that lacks one of them then raises `ContextSecretMissingError`.
- `serializer(context) -> mapping`: the JSON form written (then without the secret fields).
- `deserializer(mapping) -> context`: rebuilds the context from that form, re-supplying the
  secret fields (from the environment, a vault, ...), in any process that runs the run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from pydantic_core import PydanticSerializationError, to_jsonable_python

from .errors import ContextSecretMissingError, ContextStorageError

if TYPE_CHECKING:
    from agents import RunState

__all__ = ["ContextStorage"]


@dataclass(frozen=True)
class ContextStorage:
    """How the context of an agent's runs is written to the database and to exports.

    Declare it with `timestep.register_agent(agent, context_storage=...)` (a worker's app
    module does this) or `run_agent(..., context_storage=...)`; it holds for every run whose
    starting agent has that name in this process. The names of the secret fields are stored
    with the run, so a process that declares other ones (or none) refuses to run it
    (`AgentMismatchError`) instead of running it without them.
    """

    secret_fields: tuple[str, ...] = ()
    """Top-level fields never written to the database, logs or exports; re-supplied by the live
    context or by `deserializer` whenever the run goes on from its records."""

    serializer: Callable[[Any], Mapping[str, Any]] | None = field(default=None, compare=False)
    """Turns the context into the JSON mapping that is written (before the secret fields are
    removed). Default: a mapping as is, a dataclass or pydantic model as its fields."""

    deserializer: Callable[[dict[str, Any]], Any] | None = field(default=None, compare=False)
    """Rebuilds the context from the written mapping (which lacks the secret fields) and
    supplies the secret fields. Default: the mapping itself."""

    def __post_init__(self) -> None:
        fields = self.secret_fields
        if isinstance(fields, str) or not all(isinstance(f, str) and f for f in fields):
            raise ContextStorageError(
                "ContextStorage.secret_fields must be a sequence of field names, e.g. "
                f"secret_fields=('api_token',), not {fields!r}"
            )
        object.__setattr__(self, "secret_fields", tuple(dict.fromkeys(fields)))
        for name in ("serializer", "deserializer"):
            value = getattr(self, name)
            if value is not None and not callable(value):
                raise ContextStorageError(
                    f"ContextStorage.{name} must be a callable, not {type(value).__name__}"
                )

    def describe(self) -> dict[str, Any] | None:
        """What is stored with a run about this declaration: the secret field names only."""
        return {"secret_fields": sorted(self.secret_fields)} if self.secret_fields else None

    def dump(self, context: Any) -> dict[str, Any] | None:
        """The form of `context` that is written: JSON, without the secret fields."""
        if context is None:
            return None
        if self.serializer is not None:
            try:
                data: Any = self.serializer(context)
            except Exception as exc:
                raise ContextStorageError(
                    f"the ContextStorage serializer failed on a {type(context).__name__} "
                    f"context: {type(exc).__name__}: {exc}"
                ) from exc
        elif isinstance(context, Mapping):
            data = context
        elif isinstance(context, BaseModel):
            data = context.model_dump(mode="json")
        elif dataclasses.is_dataclass(context) and not isinstance(context, type):
            data = {f.name: getattr(context, f.name) for f in dataclasses.fields(context)}
        else:
            raise ContextStorageError(
                f"a {type(context).__name__} context has no stored form: give ContextStorage a "
                "serializer (context -> JSON mapping) and a deserializer"
            )
        if not isinstance(data, Mapping):
            raise ContextStorageError(
                f"the ContextStorage serializer must return a mapping, not {type(data).__name__}"
            )
        kept = {key: value for key, value in data.items() if key not in self.secret_fields}
        try:
            stored = to_jsonable_python(kept)
        except PydanticSerializationError as exc:
            raise ContextStorageError(
                f"the stored form of the context is not JSON ({exc}); give ContextStorage a "
                "serializer that returns JSON values"
            ) from exc
        if not all(isinstance(key, str) for key in stored):
            raise ContextStorageError("the stored form of the context must have string keys")
        return dict(stored)

    def missing_secrets(self, context: Any) -> list[str]:
        """The secret fields `context` lacks (absent or None)."""
        missing = []
        for name in self.secret_fields:
            if isinstance(context, Mapping):
                value = context.get(name)
            else:
                value = getattr(context, name, None)
            if value is None:
                missing.append(name)
        return missing

    def check_secrets(self, context: Any, where: str) -> None:
        """Raise `ContextSecretMissingError` when `context` lacks a secret field."""
        missing = self.missing_secrets(context)
        if missing:
            raise ContextSecretMissingError(
                missing, where, has_deserializer=self.deserializer is not None
            )

    def load(self, stored: Mapping[str, Any] | None, where: str) -> Any:
        """Rebuild the context from its stored form, with every secret field supplied."""
        data = dict(stored) if stored is not None else {}
        if self.deserializer is None:
            context: Any = data
        else:
            try:
                context = self.deserializer(data)
            except Exception as exc:
                raise ContextStorageError(
                    f"the ContextStorage deserializer failed for {where}: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
        self.check_secrets(context, where)
        return context

    def state_json(self, state: RunState[Any, Any]) -> dict[str, Any]:
        """`state.to_json()` with the context in its stored form."""
        from ._compat.agents import application_context

        context = application_context(state)
        document = state.to_json(context_serializer=lambda _context: {})
        document["context"]["context"] = self.dump(context)
        return document


def already_stored(storage: ContextStorage | None) -> ContextStorage:
    """The declaration for a state whose context was read back in its stored form (a mapping):
    it is written again as it is, without the secret fields, and never re-serialized."""
    return ContextStorage(secret_fields=storage.secret_fields if storage is not None else ())


def as_read(data: Mapping[str, Any]) -> dict[str, Any]:
    """A `context_deserializer` that keeps the stored mapping as it is."""
    return dict(data)


def state_json(state: RunState[Any, Any], storage: ContextStorage | None) -> dict[str, Any]:
    """The state as written: in `storage`'s form when a declaration is given, else the SDK's."""
    if storage is None:
        return state.to_json()
    return storage.state_json(state)


def stored_context(state_document: Mapping[str, Any] | None) -> Any:
    """The context as it was written into a state document."""
    if not state_document:
        return None
    context = state_document.get("context")
    return context.get("context") if isinstance(context, Mapping) else None


_declared: dict[str, ContextStorage] = {}


def declare(agent_name: str, storage: ContextStorage) -> None:
    """Record `storage` as the context declaration of runs starting with `agent_name`."""
    _declared[agent_name] = storage


def declared_for(agent_name: str) -> ContextStorage | None:
    """The context declaration for runs whose starting agent is `agent_name`, if one was made."""
    return _declared.get(agent_name)
