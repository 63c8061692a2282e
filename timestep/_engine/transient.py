"""Which model-call failures are worth trying again inside the step, before a run fails.

Transient: the provider could not be reached, timed out, rate-limited the call (HTTP 429) or
failed on its side (HTTP 5xx). Everything else (bad credentials, an unknown model, a refused
request) fails at once: trying again would only repeat it.
"""

from __future__ import annotations

import httpx

from ..errors import ModelProviderUnreachableError

RETRYABLE_STATUS = frozenset({408, 409, 429})


def _status(error: BaseException) -> int | None:
    status = getattr(error, "status_code", None)
    if isinstance(status, int):
        return status
    response = getattr(error, "response", None)
    code = getattr(response, "status_code", None)
    return code if isinstance(code, int) else None


def _transient_one(error: BaseException) -> bool:
    if isinstance(error, ModelProviderUnreachableError | ConnectionError | TimeoutError):
        return True
    if isinstance(error, httpx.TransportError):
        return True
    name = type(error).__name__
    if name in ("APIConnectionError", "APITimeoutError"):  # openai's, without importing it
        return True
    status = _status(error)
    return status is not None and (status >= 500 or status in RETRYABLE_STATUS)


def is_transient(error: BaseException) -> bool:
    """Whether `error`, or an error it was raised from, is a transient provider failure."""
    seen: BaseException | None = error
    depth = 0
    while seen is not None and depth < 10:
        if _transient_one(seen):
            return True
        seen = seen.__cause__ or seen.__context__
        depth += 1
    return False
