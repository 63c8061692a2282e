"""The SDK's `OpenAIProvider`, one per event loop, each with its own HTTP connection pool.

openai-agents 0.24 gives every `OpenAIProvider` built without a client one process-wide HTTP
client (`agents.models.openai_provider.shared_http_client`). Its pooled connections belong to
the event loop that opened them, so the first request from a second event loop in the same
process (a second `asyncio.run`, pytest-asyncio's loop per test) reuses a connection of a
closed loop and fails with `RuntimeError: Event loop is closed`. `MultiModelProvider` routes
OpenAI models through `PerLoopOpenAIProvider` instead: each loop gets its own `AsyncOpenAI`
(with the same key, URL, organization and project resolution as the SDK) and its own provider.

A client given explicitly (`openai_client=`, or `agents.set_default_openai_client`) is the
caller's and is used as is, on every loop.
"""

from __future__ import annotations

import asyncio
import os
import weakref
from typing import Any

from agents.models.interface import Model, ModelProvider
from agents.models.openai_provider import OpenAIProvider
from openai import AsyncOpenAI

from .._compat.agents import default_openai_client, default_openai_key

_CLIENT_OPTIONS = ("api_key", "base_url", "websocket_base_url", "organization", "project")


class PerLoopOpenAIProvider(ModelProvider):
    """`OpenAIProvider(**options)` per running event loop (see the module docstring)."""

    def __init__(self, **options: Any) -> None:
        # Built once to validate the options exactly as the SDK does; never asked for models.
        self._template = OpenAIProvider(**options)
        self._client_options = {k: options.get(k) for k in _CLIENT_OPTIONS}
        self._provider_options = {k: v for k, v in options.items() if k not in _CLIENT_OPTIONS}
        self._by_loop: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[OpenAIProvider, AsyncOpenAI | None]
        ] = weakref.WeakKeyDictionary()
        self._no_loop: tuple[OpenAIProvider, AsyncOpenAI | None] | None = None

    @property
    def agent_registration(self) -> Any:
        return self._template.agent_registration

    def _build(self) -> tuple[OpenAIProvider, AsyncOpenAI | None]:
        explicit = any(value is not None for value in self._client_options.values())
        shared = None if explicit else default_openai_client()
        if shared is not None:
            return OpenAIProvider(openai_client=shared, **self._provider_options), None
        options = self._client_options
        # The SDK's resolution (OpenAIProvider._get_client), minus its process-wide HTTP client.
        client = AsyncOpenAI(
            api_key=options["api_key"] if options["api_key"] is not None else default_openai_key(),
            base_url=options["base_url"] or os.getenv("OPENAI_BASE_URL"),
            websocket_base_url=options["websocket_base_url"]
            or os.getenv("OPENAI_WEBSOCKET_BASE_URL"),
            organization=options["organization"],
            project=options["project"],
        )
        return OpenAIProvider(openai_client=client, **self._provider_options), client

    def _entry(self) -> tuple[OpenAIProvider, AsyncOpenAI | None]:
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None:
            if self._no_loop is None:
                self._no_loop = self._build()
            return self._no_loop
        for other in [other for other in self._by_loop if other.is_closed()]:
            del self._by_loop[other]  # its connections died with it
        entry = self._by_loop.get(loop)
        if entry is None:
            entry = self._by_loop[loop] = self._build()
        return entry

    def loop_provider(self) -> OpenAIProvider:
        """The SDK provider serving the running event loop (built on first use)."""
        return self._entry()[0]

    def get_model(self, model_name: str | None) -> Model:
        return self.loop_provider().get_model(model_name)

    async def aclose(self) -> None:
        """Close this loop's provider and the HTTP client built for it."""
        loop = asyncio.get_running_loop()
        entry = self._by_loop.pop(loop, None)
        if entry is None:
            return
        provider, client = entry
        await provider.aclose()
        if client is not None:
            await client.close()
