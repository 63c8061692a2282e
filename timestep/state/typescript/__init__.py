"""The state-export adapter: Python RunState <-> the RunState JSON of the TypeScript Agents SDK.

Timestep pins one SDK pair: openai-agents 0.24.0 (writes RunState schema 1.21) and
@openai/agents 0.20.0 (reads and writes schema 1.22). The two formats differ in key case, item
protocol, approval records and invocation ledgers (facts: ../shared/notes/runstate-interop.md),
so the conversion is schema-aware: `_items` converts items and usage, `_approvals` rebuilds
the approval records and ledgers each side requires, `_graph` checks the agent graph and maps
handoff tool names, and `_export` / `_import` assemble the two documents.

Fail closed: anything that cannot be carried faithfully raises a `StateError` subclass naming
the field and the versions, instead of producing a state the other side would silently re-run,
re-ask, or feed to the model as a corrupted history. Scope: states paused for tool approval (or
not yet started) of agents with plain function tools and handoffs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from agents import Agent, RunState

from ...errors import StateError
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
_SECRET_KEY = re.compile(r"(api[_-]?key|apikey|secret|password|authorization|credential)", re.I)
_SECRET_VALUE = re.compile(r"\b(sk-[A-Za-z0-9_\-]{16,}|Bearer\s+[A-Za-z0-9._\-]{16,})")


def to_typescript_json(state: RunState[Any, Any]) -> str:
    """Return `state` as the JSON that `RunState.fromString(agent, json)` of @openai/agents
    0.20.0 loads and resumes: same history, pending approvals, decisions already made, usage,
    turn count and current agent.

    Raises `UnsupportedStateVersionError` or `StateConversionError` when the state cannot be
    converted faithfully (unsupported feature, agent graph mismatch, inconsistent ledger).
    """
    starting_agent = getattr(state, "_starting_agent", None)  # SDK-private; no public accessor
    if not isinstance(starting_agent, Agent):
        raise StateConversionError(
            "state: the RunState has no starting agent to resolve names against"
        )
    try:
        py = state.to_json()
    except Exception as error:  # the SDK reports unserializable contexts etc. as UserError
        raise StateConversionError(
            f"state: the Python SDK could not serialize it: {error}"
        ) from error
    version = py.get("$schemaVersion")
    if version != PYTHON_SCHEMA_VERSION:
        raise UnsupportedStateVersionError("Python", version, PYTHON_SCHEMA_VERSION)
    js = _guarded(lambda: _export.convert(py, AgentGraph.of(starting_agent)))
    _assert_no_secrets(js)
    return json.dumps(js, ensure_ascii=False, separators=(",", ":"))


async def from_typescript_json(
    agent: Agent[Any],
    text: str,
    *,
    context_override: Any = None,
    context_deserializer: Callable[[Mapping[str, Any]], Any] | None = None,
) -> RunState[Any, Any]:
    """Load RunState JSON written by @openai/agents 0.20.0 as a Python `RunState` that
    `Runner.run(agent, state)` (and `timestep.run_agent`) resumes.

    `agent` is the starting agent of the run (the same graph the TypeScript side used). The
    TypeScript context arrives as a plain mapping; pass `context_deserializer` to rebuild an
    application type from it, or `context_override` to supply the context yourself.
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
    _assert_no_secrets(py)
    try:
        return await RunState.from_json(
            agent,
            py,
            context_override=context_override,
            context_deserializer=context_deserializer,
        )
    except Exception as error:
        raise StateConversionError(
            f"state: the Python SDK refused the converted state ({type(error).__name__}: {error})"
        ) from error


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
            if check_keys and isinstance(key, str) and _SECRET_KEY.search(key) and value:
                raise StateConversionError(
                    f"{path}{key}: refusing to write a credential into a state"
                )
            _assert_no_secrets(value, f"{path}{key}.", check_keys=inner)
    elif isinstance(document, list):
        for index, value in enumerate(document):
            _assert_no_secrets(value, f"{path}{index}.", check_keys=check_keys)
    elif isinstance(document, str) and _SECRET_VALUE.search(document):
        raise StateConversionError(
            f"{path.rstrip('.')}: value looks like a credential; refusing to write it"
        )
