"""Hooks into openai-agents 0.24 that have no public getter.

- The defaults set with the public `agents.set_default_openai_client` /
  `agents.set_default_openai_key`: the SDK keeps them in `agents.models._openai_shared` and
  reads them back only inside `OpenAIProvider`. Timestep's per-event-loop OpenAI provider
  (timestep/models/openai_loops.py) builds its own clients and must honour the same defaults.
"""

from __future__ import annotations

from openai import AsyncOpenAI


def default_openai_client() -> AsyncOpenAI | None:
    """The client given to `agents.set_default_openai_client`, if any."""
    from agents.models import _openai_shared

    return _openai_shared.get_default_openai_client()


def default_openai_key() -> str | None:
    """The key given to `agents.set_default_openai_key`, if any."""
    from agents.models import _openai_shared

    return _openai_shared.get_default_openai_key()
