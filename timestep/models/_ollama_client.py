"""Where an Ollama model is served from, and the HTTP clients that reach it.

Routing rules: local models go to `OLLAMA_HOST` or `http://localhost:11434` and never
carry an API key; cloud models (`-cloud` / `:cloud`) go to Ollama Cloud with the suffix stripped
and a Bearer key; an explicit `base_url` is the host for every model and gets the key too.
"""

from __future__ import annotations

import asyncio
import os
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

import httpx
from ollama import AsyncClient

from .._compat import ollama as ollama_compat

OLLAMA_LOCAL_URL = "http://localhost:11434"
"""The local server used when neither `base_url` nor `OLLAMA_HOST` is set."""

OLLAMA_CLOUD_URL = "https://ollama.com"
"""Ollama Cloud. To send cloud models elsewhere (a test server, a regional endpoint), pass
`cloud_url=` to `OllamaModelProvider` / `MultiModelProvider(ollama_cloud_url=...)`."""

OLLAMA_HOST_ENV = "OLLAMA_HOST"
OLLAMA_API_KEY_ENV = "OLLAMA_API_KEY"


def is_cloud_model(name: str) -> bool:
    """Whether `name` names an Ollama Cloud model (`gpt-oss:120b-cloud`, `kimi-k2:cloud`)."""
    return name.endswith("-cloud") or name.endswith(":cloud")


def strip_cloud_suffix(name: str) -> str:
    """The name Ollama Cloud itself knows a model by: `gpt-oss:120b-cloud` -> `gpt-oss:120b`.

    A local server strips the suffix before forwarding to ollama.com, so a direct call must too.
    """
    for suffix in (":cloud", "-cloud"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def same_host(url_a: str, url_b: str) -> bool:
    """Whether two base URLs point at the same scheme/host/port (trailing slashes ignored)."""

    def key(url: str) -> tuple[str, str, int | None]:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
        return parts.scheme, (parts.hostname or "").lower(), port

    return key(url_a) == key(url_b)


@dataclass(frozen=True)
class OllamaEndpoint:
    """One server a model is called on, with the credentials that server may see."""

    host: str
    """Base URL passed to the ollama client."""

    api_key: str | None
    """Sent as `Authorization: Bearer`; None means no Authorization header at all."""

    cloud: bool = False
    """Ollama Cloud rules apply: a key is required, and 401s point at OLLAMA_API_KEY."""


async def _drop_authorization(request: httpx.Request) -> None:
    # The ollama client copies OLLAMA_API_KEY into every client it builds, local ones included,
    # and offers no way to opt out; a local server must never receive the cloud key.
    request.headers.pop("authorization", None)


def make_client(endpoint: OllamaEndpoint) -> AsyncClient:
    """A new official client for `endpoint`, with exactly the auth header it should send."""
    if endpoint.api_key:
        return AsyncClient(
            host=endpoint.host, headers={"Authorization": f"Bearer {endpoint.api_key}"}
        )
    return AsyncClient(host=endpoint.host, event_hooks={"request": [_drop_authorization]})


class ClientPool:
    """Lazily built clients, one per (event loop, endpoint).

    httpx connection pools are bound to the loop that opened them, and a provider object may be
    reused across loops (pytest, `asyncio.run` per request, durable-step workers), so a client is
    never shared between loops.
    """

    def __init__(self) -> None:
        self._clients: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[OllamaEndpoint, AsyncClient]
        ] = weakref.WeakKeyDictionary()

    def get(self, endpoint: OllamaEndpoint) -> AsyncClient:
        per_loop = self._clients.setdefault(asyncio.get_running_loop(), {})
        client = per_loop.get(endpoint)
        if client is None:
            client = per_loop[endpoint] = make_client(endpoint)
        return client

    async def aclose(self) -> None:
        """Close the clients of the running loop; clients of other loops are just dropped."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # pragma: no cover - aclose is always awaited
            return
        clients = self._clients.pop(loop, {})
        self._clients = weakref.WeakKeyDictionary()
        for client in clients.values():
            await client.close()


def describe_host(client: AsyncClient, fallback: str | None) -> str:
    """The base URL a client talks to, for error messages and trace spans."""
    if fallback:
        return fallback
    base_url = ollama_compat.base_url(client)
    return str(base_url).rstrip("/") if base_url is not None else "the configured Ollama server"


# The public `AsyncClient.chat` validates through ollama's own `Message`/`Tool` models, which drop
# `$ref`/`anyOf`/nested tool schemas, tool-call ids and `tool_call_id`. The client's request helper
# (pinned: ollama>=0.6.3,<0.7) sends our JSON untouched, returns raw dicts via `cls=dict`, and keeps
# the client's own error handling (`ResponseError`, mid-stream `{"error": ...}` lines).


async def chat_once(
    client: AsyncClient, payload: Mapping[str, Any], timeout: float | None
) -> dict[str, Any]:
    """POST /api/chat without streaming; the decoded response object."""
    extra: dict[str, Any] = {"timeout": timeout} if timeout is not None else {}
    result = await ollama_compat.post_json(
        client, "/api/chat", dict(payload), stream=False, **extra
    )
    return cast(dict[str, Any], result)


async def chat_stream(
    client: AsyncClient, payload: Mapping[str, Any], timeout: float | None
) -> AsyncIterator[dict[str, Any]]:
    """POST /api/chat with streaming; yields each decoded NDJSON line."""
    extra: dict[str, Any] = {"timeout": timeout} if timeout is not None else {}
    parts = cast(
        AsyncGenerator[dict[str, Any], None],
        await ollama_compat.post_json(client, "/api/chat", dict(payload), stream=True, **extra),
    )
    try:
        async for part in parts:
            yield part
    finally:
        # Closing the client's generator releases the HTTP response when a consumer stops early.
        await parts.aclose()


def local_host() -> str:
    """The local server: `OLLAMA_HOST` if set (read now, not at import), else localhost."""
    return os.environ.get(OLLAMA_HOST_ENV) or OLLAMA_LOCAL_URL
