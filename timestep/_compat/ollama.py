"""Hooks into the ollama client 0.6 (pinned <0.7) that have no public route.

- `AsyncClient._request`: the one call that sends a JSON body untouched (full tool schemas,
  tool-call ids, `tool_call_id`) and returns raw dicts, while keeping the client's own error
  handling (`ResponseError`, mid-stream `{"error": ...}` lines). The public `chat()` rebuilds
  messages and tools through its own models and drops what they do not know.
- `AsyncClient._client`: the httpx client, whose base URL names the server in messages.
"""

from __future__ import annotations

from typing import Any

from ollama import AsyncClient


async def post_json(client: AsyncClient, path: str, body: dict[str, Any], **options: Any) -> Any:
    """POST `body` to `path`; a dict, or with `stream=True` an async generator of dicts."""
    return await client._request(dict, "POST", path, json=body, **options)


def base_url(client: AsyncClient) -> Any:
    """The base URL the client talks to (its httpx client's), or None when it has none."""
    http_client = getattr(client, "_client", None)
    return getattr(http_client, "base_url", None)
