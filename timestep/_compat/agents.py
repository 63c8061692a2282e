"""Hooks into private names of the Agents SDK (openai-agents 0.24.x).

- `RunState._context`: the run's `RunContextWrapper`; the SDK has no public accessor for the
  application context a state carries.
"""

from __future__ import annotations

from typing import Any

from agents import RunState


def application_context(state: RunState[Any, Any]) -> Any:
    """The application context `state` carries (None when it has none)."""
    wrapper = getattr(state, "_context", None)
    return None if wrapper is None else wrapper.context
