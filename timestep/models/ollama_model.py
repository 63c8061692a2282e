"""`OllamaModel`: the Agents SDK `Model` interface on Ollama's native `/api/chat`.

The native API (not `/v1`) is used because only it has `options` (num_ctx), `keep_alive` and
`think`. Requests go through the official `ollama.AsyncClient`; responses are shaped into the
SDK's Chat Completions types so the SDK's own converters build `ModelResponse`s and stream events.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Any, cast

from agents.agent_output import AgentOutputSchemaBase
from agents.handoffs import Handoff
from agents.items import ModelResponse, TResponseInputItem, TResponseStreamEvent
from agents.model_settings import ModelSettings
from agents.models.chatcmpl_converter import Converter
from agents.models.chatcmpl_stream_handler import ChatCmplStreamHandler
from agents.models.fake_id import FAKE_RESPONSES_ID
from agents.models.interface import Model, ModelTracing
from agents.tool import Tool
from agents.tracing import generation_span
from agents.usage import Usage, model_usage_to_span_usage
from ollama import AsyncClient
from openai.types.responses import Response
from openai.types.responses.response_prompt_param import ResponsePromptParam

from .._compat import agents as agents_compat
from ..errors import ModelConfigurationError
from ._ollama_client import (
    OLLAMA_API_KEY_ENV,
    OLLAMA_CLOUD_URL,
    ClientPool,
    OllamaEndpoint,
    chat_once,
    chat_stream,
    describe_host,
    local_host,
    same_host,
)
from ._ollama_errors import missing_key_error, translated_errors
from ._ollama_messages import to_chat_message, to_ollama_messages, to_ollama_tools
from ._ollama_request import OllamaDefaults, build_payload
from ._ollama_stream import to_chat_chunks, usage_counts

model_config_for_trace, populate_generation_span, model_span_errors = (
    agents_compat.model_span_helpers()
)

_MODEL_IMPL = {"model_impl": "ollama"}


class OllamaModel(Model):
    """One Ollama model on one server.

    Usually obtained from `OllamaModelProvider` (or `MultiModelProvider` with `ollama/NAME`),
    which picks the host and key per model. Direct use::

        OllamaModel("llama3.2", num_ctx=16384)                       # OLLAMA_HOST or localhost
        OllamaModel("gpt-oss:120b", host="https://ollama.com")       # cloud, key from env
        OllamaModel("llama3.2", ollama.AsyncClient(host=...))        # timestep 2026.0.x form

    Args:
        model: The name the server knows the model by (no `ollama/` prefix; for Ollama Cloud
            without the `-cloud` suffix).
        host: Server base URL; default `OLLAMA_HOST` or `http://localhost:11434`.
        api_key: Sent as `Authorization: Bearer`. When omitted, `OLLAMA_API_KEY` is used only if
            `host` is Ollama Cloud; a local server never receives a key it was not given.
        ollama_client: A ready `ollama.AsyncClient`, used as is (its host and headers win). May
            be given positionally, as in timestep 2026.0.x (`OllamaModel(name, client)`).
        client_factory: Called on each request to get a client; lets a provider share lazily
            built clients. Ignored when `ollama_client` is given.
        cloud: Whether Ollama Cloud rules apply (key required, 401s name OLLAMA_API_KEY);
            default: `host` is `OLLAMA_CLOUD_URL`.
        num_ctx: Default context window (`options.num_ctx`).
        keep_alive: Default `keep_alive` request field.
        options: Default Ollama options; `ModelSettings` and `extra_args` override them.

    No client is built and nothing is contacted until the first call.
    """

    def __init__(
        self,
        model: str,
        ollama_client: AsyncClient | None = None,
        *,
        host: str | None = None,
        api_key: str | None = None,
        client_factory: Callable[[], AsyncClient] | None = None,
        cloud: bool | None = None,
        num_ctx: int | None = None,
        keep_alive: float | str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        if ollama_client is not None and not isinstance(ollama_client, AsyncClient):
            raise ModelConfigurationError(
                f"OllamaModel's second argument is the ollama.AsyncClient to use, not a "
                f"{type(ollama_client).__name__}; pass a server URL as host=..."
            )
        self.model = model
        resolved_host = host or local_host()
        is_cloud = same_host(resolved_host, OLLAMA_CLOUD_URL) if cloud is None else cloud
        if api_key is None and is_cloud:
            api_key = os.environ.get(OLLAMA_API_KEY_ENV) or None
        self.endpoint = OllamaEndpoint(host=resolved_host, api_key=api_key, cloud=is_cloud)
        self.defaults = OllamaDefaults(
            num_ctx=num_ctx, keep_alive=keep_alive, options=dict(options or {})
        )
        self._ollama_client = ollama_client
        self._own_pool: ClientPool | None = None
        if ollama_client is None and client_factory is None:
            self._own_pool = ClientPool()
            endpoint = self.endpoint
            pool = self._own_pool
            client_factory = lambda: pool.get(endpoint)  # noqa: E731
        self._client_factory = client_factory
        # With a caller-supplied client the host is whatever that client was built with.
        self._host_hint = None if ollama_client is not None and host is None else resolved_host

    def __repr__(self) -> str:
        return f"OllamaModel({self.model!r}, host={self.host!r})"

    def _client(self) -> AsyncClient:
        if self.endpoint.cloud and not self.endpoint.api_key and self._ollama_client is None:
            raise missing_key_error(self.model, self.endpoint.host)
        if self._ollama_client is not None:
            return self._ollama_client
        assert self._client_factory is not None
        return self._client_factory()

    @property
    def host(self) -> str:
        """The server this model calls (for messages and traces)."""
        if self._host_hint is None and self._ollama_client is not None:
            return describe_host(self._ollama_client, None)
        return self.endpoint.host

    def _errors(self) -> AbstractContextManager[None]:
        return translated_errors(
            model=self.model,
            host=self.host,
            cloud=self.endpoint.cloud,
            sent_key=bool(self.endpoint.api_key) or self._ollama_client is not None,
        )

    def _payload(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff],
        *,
        stream: bool,
    ) -> dict[str, Any]:
        return build_payload(
            model=self.model,
            messages=to_ollama_messages(system_instructions, input, model=self.model),
            tools=to_ollama_tools(tools, handoffs),
            model_settings=model_settings,
            output_schema=output_schema,
            defaults=self.defaults,
            stream=stream,
        )

    def _trace_config(self, model_settings: ModelSettings, tracing: ModelTracing) -> dict[str, Any]:
        return model_config_for_trace(
            model_settings, tracing, base_url=self.host, extra_config=_MODEL_IMPL
        )

    async def get_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff],
        tracing: ModelTracing,
        *,
        previous_response_id: str | None,
        conversation_id: str | None,
        prompt: ResponsePromptParam | None,
    ) -> ModelResponse:
        with self._span(
            "Error getting response",
            model_settings,
            tracing,
            self._payload(
                system_instructions,
                input,
                model_settings,
                tools,
                output_schema,
                handoffs,
                stream=False,
            ),
        ) as (span, payload):
            client = self._client()
            with self._errors():
                data = await chat_once(client, payload, model_settings.timeout)

            message = to_chat_message(data.get("message") or {})
            input_tokens, output_tokens = usage_counts(data)
            usage = Usage(
                requests=1,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                total_tokens=input_tokens + output_tokens,
            )
            if tracing.include_data():
                span.span_data.output = [message.model_dump()]
            span.span_data.usage = model_usage_to_span_usage(usage)

            items = Converter.message_to_output_items(message, provider_data={"model": self.model})
            return ModelResponse(output=items, usage=usage, response_id=None)

    async def stream_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff],
        tracing: ModelTracing,
        *,
        previous_response_id: str | None,
        conversation_id: str | None,
        prompt: ResponsePromptParam | None,
    ) -> AsyncIterator[TResponseStreamEvent]:
        with self._span(
            "Error streaming response",
            model_settings,
            tracing,
            self._payload(
                system_instructions,
                input,
                model_settings,
                tools,
                output_schema,
                handoffs,
                stream=True,
            ),
        ) as (span, payload):
            client = self._client()
            # The skeleton the SDK stream handler fills in and emits as response.created /
            # response.completed.
            response = Response(
                id=FAKE_RESPONSES_ID,
                created_at=time.time(),
                model=self.model,
                object="response",
                output=[],
                tool_choice="auto",
                top_p=model_settings.top_p,
                temperature=model_settings.temperature,
                tools=[],
                parallel_tool_calls=False,
                reasoning=model_settings.reasoning,
            )
            parts = chat_stream(client, payload, model_settings.timeout)
            chunks = cast(AsyncGenerator[Any, None], to_chat_chunks(parts, model=self.model))
            try:
                with self._errors():
                    async for event in ChatCmplStreamHandler.handle_stream(
                        response, cast(Any, chunks), model=self.model
                    ):
                        if event.type == "response.completed":
                            # Before yielding: a consumer that stops at the terminal event
                            # never resumes this generator.
                            populate_generation_span(span, event.response, tracing)
                        yield event
            finally:
                await chunks.aclose()
                await cast(AsyncGenerator[Any, None], parts).aclose()

    @contextmanager
    def _span(
        self,
        error_message: str,
        model_settings: ModelSettings,
        tracing: ModelTracing,
        payload: dict[str, Any],
    ) -> Iterator[tuple[Any, dict[str, Any]]]:
        """The generation span of one call, with errors attached to it and the input recorded."""
        with (
            generation_span(
                model=self.model,
                model_config=self._trace_config(model_settings, tracing),
                disabled=tracing.is_disabled(),
            ) as span,
            model_span_errors(
                span,
                message=error_message,
                trace_include_sensitive_data=tracing.include_data(),
            ),
        ):
            if tracing.include_data():
                span.span_data.input = payload["messages"]
            yield span, payload

    async def close(self) -> None:
        """Close the HTTP clients this model built itself (not a caller-supplied client)."""
        if self._own_pool is not None:
            await self._own_pool.aclose()
