"""`OllamaModelProvider`: picks the server and credentials for each Ollama model name."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from agents.exceptions import UserError
from agents.models.interface import ModelProvider
from ollama import AsyncClient

from ..errors import ModelConfigurationError
from ._ollama_client import (
    OLLAMA_API_KEY_ENV,
    OLLAMA_CLOUD_URL,
    ClientPool,
    OllamaEndpoint,
    is_cloud_model,
    local_host,
    same_host,
    strip_cloud_suffix,
)
from .ollama_model import OllamaModel


class OllamaModelProvider(ModelProvider):
    """Serves local and Ollama Cloud models side by side; the choice is made per model name.

    Without `base_url`:
      - local models (`llama3.2`, `qwen3:8b`) go to `OLLAMA_HOST` or `http://localhost:11434`,
        with no Authorization header even when `OLLAMA_API_KEY` is set;
      - cloud models (`gpt-oss:120b-cloud`, `kimi-k2:cloud`) go to Ollama Cloud
        (`cloud_url`, default `https://ollama.com`) with the suffix stripped and
        `Authorization: Bearer <key>`.

    With `base_url`, that server hosts every model of this provider (a proxy, a gateway, another
    Ollama) and receives the key when one is configured. Names keep their suffix unless
    `base_url` is Ollama Cloud itself.

    Args:
        api_key: Ollama Cloud key; default `OLLAMA_API_KEY` (read when a model is requested).
        base_url: One server for all models.
        ollama_client: A ready `ollama.AsyncClient` used for every model as is (names are sent
            unchanged). Its host and headers are the client's own, so combining it with
            `api_key` or `base_url` is refused (`ModelConfigurationError`, also a
            `ValueError`), as timestep 2026.0.x did: the key or URL would be silently unused.
        cloud_url: Where cloud models go when there is no `base_url`; default
            `timestep.models.OLLAMA_CLOUD_URL` (`https://ollama.com`). Tests point it at a local
            stand-in.
        num_ctx: Default context window for every model (overridable per agent through
            `ModelSettings(extra_args={"num_ctx": ...})`).
        keep_alive: Default `keep_alive` for every model (same override via `extra_args`).
        options: Default Ollama options for every model.

    Nothing is constructed or contacted until a model is called.
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        ollama_client: AsyncClient | None = None,
        *,
        cloud_url: str | None = None,
        num_ctx: int | None = None,
        keep_alive: float | str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        if ollama_client is not None:
            conflicting = (("api_key", api_key), ("base_url", base_url))
            given = [name for name, value in conflicting if value]
            if given:
                raise ModelConfigurationError(
                    f"OllamaModelProvider: pass either ollama_client or {' and '.join(given)}, "
                    "not both; a ready client already has its host and headers (build it with "
                    "ollama.AsyncClient(host=..., headers={'Authorization': 'Bearer ...'}))"
                )
        self._api_key = api_key
        self._base_url = base_url
        self._ollama_client = ollama_client
        self._cloud_url = cloud_url
        self._model_defaults: dict[str, Any] = {
            "num_ctx": num_ctx,
            "keep_alive": keep_alive,
            "options": dict(options or {}),
        }
        self._pool = ClientPool()

    @property
    def cloud_url(self) -> str:
        """Where cloud models go when there is no `base_url`."""
        return self._cloud_url or OLLAMA_CLOUD_URL

    def _key(self) -> str | None:
        return self._api_key or os.environ.get(OLLAMA_API_KEY_ENV) or None

    def route(self, model_name: str) -> tuple[OllamaEndpoint, str]:
        """The endpoint `model_name` is served from and the name to send there."""
        cloud_url = self.cloud_url
        if self._base_url:
            cloud = any(same_host(self._base_url, url) for url in (cloud_url, OLLAMA_CLOUD_URL))
            name = strip_cloud_suffix(model_name) if cloud else model_name
            return OllamaEndpoint(self._base_url, self._key(), cloud=cloud), name
        if is_cloud_model(model_name):
            return OllamaEndpoint(cloud_url, self._key(), cloud=True), strip_cloud_suffix(
                model_name
            )
        return OllamaEndpoint(local_host(), None, cloud=False), model_name

    def get_model(self, model_name: str | None) -> OllamaModel:
        if not model_name:
            raise UserError(
                "OllamaModelProvider needs a model name, e.g. Agent(model='ollama/llama3.2') "
                "with MultiModelProvider, or Agent(model='llama3.2') with this provider"
            )
        if self._ollama_client is not None:
            return OllamaModel(
                model_name, ollama_client=self._ollama_client, **self._model_defaults
            )
        endpoint, name = self.route(model_name)
        pool = self._pool
        return OllamaModel(
            name,
            host=endpoint.host,
            api_key=endpoint.api_key,
            cloud=endpoint.cloud,
            client_factory=lambda: pool.get(endpoint),
            **self._model_defaults,
        )

    async def aclose(self) -> None:
        """Close the HTTP clients this provider built (a caller-supplied client stays open)."""
        await self._pool.aclose()
