"""Turn ollama-client and httpx failures into Timestep's typed model errors.

Each message names the host and the model and says what to do next, because the raw client
messages ("Failed to connect to Ollama", "unauthorized (status code: 401)") do not.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from ollama import ResponseError

from ..errors import (
    ModelAuthenticationError,
    ModelError,
    ModelNotFoundError,
    ModelProviderUnreachableError,
)
from ._ollama_client import OLLAMA_API_KEY_ENV


def missing_key_error(model: str, host: str) -> ModelAuthenticationError:
    """A cloud model was requested but no key is configured, so no request is sent."""
    return ModelAuthenticationError(
        f"Ollama model {model!r} runs on Ollama Cloud ({host}), which needs an API key: "
        f"set {OLLAMA_API_KEY_ENV} or pass api_key=... to OllamaModelProvider "
        "(keys: https://ollama.com/settings/keys)"
    )


def translate(
    error: BaseException, *, model: str, host: str, cloud: bool, sent_key: bool
) -> Exception | None:
    """The Timestep error for `error`, or None when it is not a transport/server failure."""
    if isinstance(error, ModelError):
        return None
    if isinstance(error, httpx.ConnectError | httpx.ConnectTimeout | ConnectionError):
        how = (
            "check your network connection and the cloud URL"
            if cloud
            else "start Ollama with `ollama serve` (or point OLLAMA_HOST / base_url at a running "
            "server)"
        )
        return ModelProviderUnreachableError(
            f"cannot reach the Ollama server at {host} for model {model!r}: {how}"
        )
    if isinstance(error, httpx.TransportError):
        return ModelError(
            f"the connection to the Ollama server at {host} failed while calling model "
            f"{model!r}: {type(error).__name__}: {error}"
        )
    if not isinstance(error, ResponseError):
        return None

    status = error.status_code
    detail = error.error
    if status in (401, 403):
        if sent_key:
            what = f"rejected the API key (HTTP {status}: {detail}); check {OLLAMA_API_KEY_ENV}"
        else:
            what = f"requires an API key (HTTP {status}: {detail}); set {OLLAMA_API_KEY_ENV}"
        return ModelAuthenticationError(
            f"the Ollama server at {host} {what} or pass api_key=... to OllamaModelProvider"
        )
    if status == 404:
        if cloud:
            advice = "check the model name at https://ollama.com/search"
        else:
            advice = f"download it with `ollama pull {model}`"
        return ModelNotFoundError(
            f"model {model!r} was not found on the Ollama server at {host} ({detail}); {advice}"
        )
    if status == -1:
        # The client reports an `{"error": ...}` line inside a 200 stream with status -1.
        return ModelError(
            f"the Ollama server at {host} reported an error while model {model!r} was "
            f"responding: {detail}"
        )
    return ModelError(
        f"the Ollama server at {host} failed for model {model!r} (HTTP {status}): {detail}"
    )


@contextmanager
def translated_errors(*, model: str, host: str, cloud: bool, sent_key: bool) -> Iterator[None]:
    """Re-raise transport and server errors raised inside the block as typed model errors."""
    try:
        yield
    except Exception as error:
        mapped = translate(error, model=model, host=host, cloud=cloud, sent_key=sent_key)
        if mapped is None:
            raise
        raise mapped from error
