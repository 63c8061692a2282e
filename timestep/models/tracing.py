"""Keep the SDK from exporting traces to OpenAI when no OpenAI key is configured.

The SDK registers an exporter to the OpenAI traces API on first use. Without a key it logs
"OPENAI_API_KEY is not set, skipping trace export" on every flush, and with a non-OpenAI key in
the environment it gets 401s (openai-agents-python #135, #535, #827, #1853), which is what an
Ollama-only user would see. Only that default exporter is detached: spans are still created and
any processor the user registered still receives them.
"""

from __future__ import annotations

import os
import threading

from agents.tracing import TracingProcessor, get_trace_provider
from agents.tracing.processors import default_exporter, default_processor
from agents.tracing.provider import DefaultTraceProvider

from .._compat import agents as agents_compat

_lock = threading.Lock()
_detached = False


def _processors(provider: DefaultTraceProvider) -> list[TracingProcessor]:
    return agents_compat.trace_processors(provider)


def openai_tracing_key(openai_api_key: str | None = None) -> str | None:
    """The key OpenAI trace export would use: the argument, `set_tracing_export_api_key`'s, or
    `OPENAI_API_KEY`."""
    return openai_api_key or default_exporter().api_key or os.environ.get("OPENAI_API_KEY")


def configure_tracing_for_keys(openai_api_key: str | None = None) -> bool:
    """Attach the SDK's OpenAI trace exporter only when an OpenAI key is configured.

    Idempotent and reversible: call it again after a key appears (or pass `openai_api_key`) and
    the exporter is re-attached. A trace provider the user installed themselves is left alone.

    Returns:
        Whether traces are exported to OpenAI after the call.
    """
    global _detached
    provider = get_trace_provider()
    if not isinstance(provider, DefaultTraceProvider):
        return False
    with _lock:
        exporter = default_processor()
        processors = _processors(provider)
        has_key = bool(openai_tracing_key(openai_api_key))
        if has_key:
            if _detached and exporter not in processors:
                provider.set_processors([exporter, *processors])
            _detached = False
            return exporter in _processors(provider)
        if exporter in processors:
            provider.set_processors([p for p in processors if p is not exporter])
            _detached = True
        return False
