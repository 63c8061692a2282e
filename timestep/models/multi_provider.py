"""Model routing by name prefix, on top of the SDK's `MultiProvider`.

`gpt-4.1` and `openai/gpt-4.1` go to OpenAI, `ollama/llama3.2` to a local Ollama,
`ollama/gpt-oss:120b-cloud` to Ollama Cloud, `litellm/...` and `any-llm/...` to the SDK's own
extensions, and any prefix in the map to the provider it names (map entries win, so mapping
`ollama` replaces the built-in Ollama provider).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agents.exceptions import UserError
from agents.models.interface import ModelProvider
from agents.models.multi_provider import MultiProviderMap
from ollama import AsyncClient
from openai import AsyncOpenAI

from .._compat.agents import MultiProviderHooks
from ..errors import ModelError
from .ollama_provider import OllamaModelProvider
from .openai_loops import PerLoopOpenAIProvider

OLLAMA_PREFIX = "ollama"
BUILTIN_PREFIXES: tuple[str, ...] = ("openai", OLLAMA_PREFIX, "litellm", "any-llm")
"""Prefixes that route without a map entry."""


class UnknownModelPrefixError(ModelError, UserError, ValueError):
    """A model name's prefix is neither built in nor in the provider map.

    Also a `agents.exceptions.UserError`, which is what the SDK's `MultiProvider` raises for the
    same mistake, and a `ValueError`, which is what timestep 2026.0.x raised, so existing
    handlers of either keep working. Defined here, not in `timestep.errors`, which imports no
    dependency (the SDK's `UserError` is its base).
    """

    http_status = 422

    def __init__(
        self, model_name: str, prefix: str, known: list[str], missing: str | None = None
    ) -> None:
        # The message starts as timestep 2026.0.x's did ("Unknown prefix: litellm"), then says
        # what to do.
        if missing is not None:
            detail = f"the {prefix} extension of the Agents SDK is not installed ({missing})"
        else:
            detail = (
                f"no provider for {prefix!r} in {model_name!r}; known prefixes: "
                f"{', '.join(known)} (or no prefix for OpenAI). Add your own with "
                f"MultiModelProviderMap().add_provider({prefix!r}, provider)"
            )
        UserError.__init__(self, f"Unknown prefix: {prefix}: {detail}.")
        self.prefix = prefix
        self.known_prefixes = known


class MultiModelProviderMap(MultiProviderMap):
    """Prefix -> `ModelProvider` map for `MultiModelProvider` (the SDK's map, plus a mapping
    constructor argument).

    As in timestep 2026.0.x: `remove_provider` of a prefix that is not mapped does nothing,
    and `set_mapping` keeps a copy (changing the caller's dict afterwards changes nothing here).
    """

    def __init__(self, mapping: Mapping[str, ModelProvider] | None = None) -> None:
        super().__init__()
        for prefix, provider in (mapping or {}).items():
            self.add_provider(prefix, provider)

    def set_mapping(self, mapping: Mapping[str, ModelProvider]) -> None:
        super().set_mapping(dict(mapping))

    def remove_provider(self, prefix: str) -> None:
        if self.has_prefix(prefix):
            super().remove_provider(prefix)


class MultiModelProvider(MultiProviderHooks):
    """The SDK's `MultiProvider` with Ollama built in under `ollama/`.

    OpenAI models are served by one SDK `OpenAIProvider` per event loop, each with its own HTTP
    client (unless `openai_client` is given): the SDK's process-wide client fails with "Event
    loop is closed" in the second event loop of a process (see `openai_loops`).

    Args:
        provider_map: Extra or overriding prefixes.
        openai_*: As for the SDK's `MultiProvider` (the OpenAI client is built lazily, so an
            Ollama-only setup needs no OpenAI key). The first six may be given positionally,
            in timestep 2026.0.x's order (`provider_map, openai_api_key, openai_base_url,
            openai_client, openai_organization, openai_project, openai_use_responses`).
        ollama_api_key, ollama_base_url, ollama_client, ollama_cloud_url: Passed to the built-in
            `OllamaModelProvider` (as `api_key`, `base_url`, `ollama_client`, `cloud_url`),
            which is created on the first `ollama/` model. For defaults such as `num_ctx` or
            `keep_alive`, map `ollama` to your own `OllamaModelProvider(num_ctx=...)` instead.
        **kwargs: Any other `MultiProvider` keyword argument (`unknown_prefix_mode`,
            `openai_prefix_mode`, `openai_use_responses_websocket`, ...).
    """

    def __init__(
        self,
        provider_map: MultiProviderMap | None = None,
        openai_api_key: str | None = None,
        openai_base_url: str | None = None,
        openai_client: AsyncOpenAI | None = None,
        openai_organization: str | None = None,
        openai_project: str | None = None,
        openai_use_responses: bool | None = None,
        *,
        ollama_api_key: str | None = None,
        ollama_base_url: str | None = None,
        ollama_client: AsyncClient | None = None,
        ollama_cloud_url: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            provider_map=provider_map,
            openai_api_key=openai_api_key,
            openai_base_url=openai_base_url,
            openai_client=openai_client,
            openai_organization=openai_organization,
            openai_project=openai_project,
            openai_use_responses=openai_use_responses,
            **kwargs,
        )
        if openai_client is None:
            sdk_options = {
                name.removeprefix("openai_"): value
                for name, value in kwargs.items()
                if name.startswith("openai_") and name != "openai_prefix_mode"
            }
            # MultiProvider reads `openai_provider` only through ModelProvider methods.
            self.openai_provider = PerLoopOpenAIProvider(  # type: ignore[assignment]
                api_key=openai_api_key,
                base_url=openai_base_url,
                organization=openai_organization,
                project=openai_project,
                use_responses=openai_use_responses,
                **sdk_options,
            )
        self._ollama_args: dict[str, Any] = {
            "api_key": ollama_api_key,
            "base_url": ollama_base_url,
            "ollama_client": ollama_client,
            "cloud_url": ollama_cloud_url,
        }

    @property
    def ollama_provider(self) -> ModelProvider:
        """The provider `ollama/` names resolve to (a map entry if there is one)."""
        if self.provider_map is not None:
            mapped = self.provider_map.get_provider(OLLAMA_PREFIX)
            if mapped is not None:
                return mapped
        return self.fallback_provider(OLLAMA_PREFIX)

    def known_prefixes(self) -> list[str]:
        """Every prefix this provider routes, built-in ones first."""
        mapped = list(self.provider_map.get_mapping()) if self.provider_map is not None else []
        return list(BUILTIN_PREFIXES) + sorted(p for p in mapped if p not in BUILTIN_PREFIXES)

    def create_fallback_provider(self, prefix: str) -> ModelProvider:
        # Kept in the SDK's fallback cache, so the SDK's aclose() closes it too.
        if prefix == OLLAMA_PREFIX:
            return OllamaModelProvider(**self._ollama_args)
        try:
            return super().create_fallback_provider(prefix)
        except ImportError as missing:  # litellm/ or any-llm/ without its optional package
            raise UnknownModelPrefixError(
                f"{prefix}/...", prefix, self.known_prefixes(), missing=str(missing).rstrip(".")
            ) from missing

    def resolve_prefixed_model(
        self,
        *,
        original_model_name: str,
        prefix: str,
        stripped_model_name: str | None,
    ) -> tuple[ModelProvider, str | None]:
        mapped = self.provider_map is not None and self.provider_map.has_prefix(prefix)
        if not mapped:
            if prefix == OLLAMA_PREFIX:
                return self.fallback_provider(prefix), stripped_model_name
            if prefix not in BUILTIN_PREFIXES and self.unknown_prefix_mode == "error":
                raise UnknownModelPrefixError(original_model_name, prefix, self.known_prefixes())
        return super().resolve_prefixed_model(
            original_model_name=original_model_name,
            prefix=prefix,
            stripped_model_name=stripped_model_name,
        )
