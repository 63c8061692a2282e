"""The state-export adapter: Python RunState <-> the RunState JSON of the TypeScript Agents SDK.

Timestep pins one SDK pair: openai-agents 0.24.0 (writes RunState schema 1.21) and
@openai/agents 0.20.0 (reads and writes schema 1.22). The two formats differ in key case, item
protocol, approval records and invocation ledgers, so the conversion is schema-aware: `_items`
converts items and usage, `_approvals` rebuilds the approval records and ledgers each side
requires, `_graph` checks the agent graph and maps handoff tool names, and `_export` /
`_import` assemble the two documents.

Fail closed: anything that cannot be carried faithfully raises a `StateError` subclass naming
the field and the versions, instead of producing a state the other side would silently re-run,
re-ask, or feed to the model as a corrupted history. Scope: states paused for tool approval (or
not yet started) of agents with plain function tools and handoffs; a finished run has nothing
left to continue and is refused.

The context crosses in its stored form: the `timestep.ContextStorage` declaration given (or
registered for the starting agent) decides it, its secret fields never cross; without one, the
context crosses as the Python SDK serializes it. As a last guard, a context key named like a
credential or a value that looks like an API key is refused, never written.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from agents import Agent, RunState

from ..._compat import agents as agents_compat
from ...context import ContextStorage, declared_for, state_json
from ...errors import StateError, TimestepError, wrapped
from . import _export, _import
from ._errors import SDK_PAIR, StateConversionError, UnsupportedStateVersionError
from ._graph import AgentGraph

PYTHON_SCHEMA_VERSION = _import.PY_SCHEMA_VERSION
TYPESCRIPT_SCHEMA_VERSION = _export.JS_SCHEMA_VERSION

__all__ = [
    "PYTHON_SCHEMA_VERSION",
    "TYPESCRIPT_SCHEMA_VERSION",
    "StateConversionError",
    "UnsupportedStateVersionError",
    "from_typescript_json",
    "to_typescript_json",
]


# Key names that would carry credentials; exported and imported documents must not contain them.
# A backstop only: declare secret fields with ContextStorage so that they are never written.
_SECRET_KEY = re.compile(
    r"(api[_-]?key|apikey|secret|passw(or)?d|authorization|credential|(^|[_-])token$)", re.I
)
_CAMEL_TOKEN_KEY = re.compile(r"[a-z]Token$")
_SECRET_VALUE = re.compile(r"\b(sk-[A-Za-z0-9_\-]{16,}|Bearer\s+[A-Za-z0-9._\-]{16,})")


def to_typescript_json(
    state: RunState[Any, Any], *, context_storage: ContextStorage | None = None
) -> str:
    """Return `state` as the JSON that `RunState.fromString(agent, json)` of @openai/agents
    0.20.0 loads and resumes: same history, pending approvals, decisions already made, usage,
    turn count and current agent.

    The context crosses in the stored form that `context_storage` declares (default: the
    declaration registered for the state's starting agent; without any, the Python SDK's own
    serialization); its secret fields never cross.

    Raises `UnsupportedStateVersionError` or `StateConversionError` when the state cannot be
    converted faithfully (unsupported feature, agent graph mismatch, inconsistent ledger, a
    finished run, a credential-like context value), and `ContextStorageError` when the context
    has no stored form under the declaration.
    """
    starting_agent = agents_compat.state_starting_agent(state)
    if starting_agent is None:
        raise StateConversionError(
            "state: the RunState has no starting agent to resolve names against"
        )
    if context_storage is None:
        context_storage = declared_for(starting_agent.name)
    try:
        py = state_json(state, context_storage)
    except StateError:
        raise
    except TimestepError:
        raise
    except Exception as error:  # the SDK reports unserializable contexts etc. as UserError
        raise StateConversionError(
            f"state: the Python SDK could not serialize it: {error}"
        ) from error
    version = py.get("$schemaVersion")
    if version != PYTHON_SCHEMA_VERSION:
        raise UnsupportedStateVersionError("Python", version, PYTHON_SCHEMA_VERSION)
    _refuse_finished(py)
    js = _guarded(lambda: _export.convert(py, AgentGraph.of(starting_agent)))
    _assert_no_secrets(js)
    return json.dumps(js, ensure_ascii=False, separators=(",", ":"))


async def from_typescript_json(
    agent: Agent[Any],
    text: str,
    *,
    context_override: Any = None,
    context_deserializer: Callable[[Mapping[str, Any]], Any] | None = None,
    context_storage: ContextStorage | None = None,
) -> RunState[Any, Any]:
    """Load RunState JSON written by @openai/agents 0.20.0 as a Python `RunState` that
    `Runner.run(agent, state)` (and `timestep.run_agent`) resumes.

    `agent` is the starting agent of the run (the same graph the TypeScript side used). The
    TypeScript context arrives as a plain mapping; pass `context_deserializer` to rebuild an
    application type from it, or `context_override` to supply the context yourself. Otherwise
    the `ContextStorage` declaration (`context_storage`, default: the one registered for
    `agent`) applies: its secret fields are dropped from what arrived and its `deserializer`
    must supply them (`ContextSecretMissingError` when they are missing).
    """
    try:
        js = json.loads(text)
    except (TypeError, ValueError) as error:
        raise StateConversionError(
            f"document: not valid JSON ({error}); the state may be truncated"
        ) from error
    if not isinstance(js, dict):
        raise StateConversionError("document: a RunState must be a JSON object")
    version = js.get("$schemaVersion")
    if version != TYPESCRIPT_SCHEMA_VERSION:
        raise UnsupportedStateVersionError("TypeScript", version, TYPESCRIPT_SCHEMA_VERSION)
    py = _guarded(lambda: _import.convert(js, AgentGraph.of(agent)))
    if context_storage is None:
        context_storage = declared_for(agent.name)
    if context_storage is not None:
        arrived = py.get("context", {}).get("context")
        if isinstance(arrived, Mapping):
            py["context"]["context"] = {
                k: v for k, v in arrived.items() if k not in context_storage.secret_fields
            }
        if context_override is None and context_deserializer is None:
            storage = context_storage
            context_deserializer = lambda data: storage.load(data, "the TypeScript state")  # noqa: E731
    _assert_no_secrets(py)
    try:
        return await RunState.from_json(
            agent,
            py,
            context_override=context_override,
            context_deserializer=context_deserializer,
        )
    except Exception as error:
        refused = wrapped(error, TimestepError)
        if refused is not None:
            raise refused from None
        raise StateConversionError(
            f"state: the Python SDK refused the converted state ({type(error).__name__}: {error})"
        ) from error


def _refuse_finished(py: Mapping[str, Any]) -> None:
    """A run that answered already has nothing to continue: refuse it rather than hand over a
    state whose resumption would be up to the other SDK's handling of a finished run."""
    step = py.get("current_step")
    paused = isinstance(step, Mapping) and step.get("type") == "next_step_interruption"
    if not paused and py.get("model_responses"):
        raise StateConversionError(
            "state: the run has finished (it is not paused for approval), so there is nothing "
            "for TypeScript to continue; export a state paused for approval, or start a new run "
            "from its history"
        )


def _guarded(convert: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Turn structural surprises (a truncated or hand-edited document) into a typed error."""
    try:
        return convert()
    except StateError:
        raise
    except (KeyError, TypeError, AttributeError, IndexError, ValueError) as error:
        raise StateConversionError(
            f"document: malformed or truncated RunState ({type(error).__name__}: {error}); "
            f"expected the layout of {SDK_PAIR}"
        ) from error


def _assert_no_secrets(document: Any, path: str = "", *, check_keys: bool = False) -> None:
    """Refuse credential-looking values anywhere, and credential-named keys in the app context.

    Key names are checked only inside the application context (and the trace), where a key such
    as `api_key` is a secret; elsewhere (e.g. a tool's parameter schema) it is just a name.
    """
    if isinstance(document, Mapping):
        for key, value in document.items():
            inner = check_keys or (path in ("context.", "") and key in ("context", "trace"))
            credential_key = isinstance(key, str) and (
                _SECRET_KEY.search(key) is not None or _CAMEL_TOKEN_KEY.search(key) is not None
            )
            if check_keys and credential_key and value:
                raise StateConversionError(
                    f"{path}{key}: refusing to write a credential into a state; declare it "
                    "secret (timestep.ContextStorage(secret_fields=...)) so that it is never "
                    "stored or exported"
                )
            _assert_no_secrets(value, f"{path}{key}.", check_keys=inner)
    elif isinstance(document, list):
        for index, value in enumerate(document):
            _assert_no_secrets(value, f"{path}{index}.", check_keys=check_keys)
    elif isinstance(document, str) and _SECRET_VALUE.search(document):
        raise StateConversionError(
            f"{path.rstrip('.')}: value looks like a credential; refusing to write it"
        )
