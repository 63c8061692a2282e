"""Errors as the inbox answers them: `{"error": {"type", "message"}}`, with the error's own
HTTP status (`timestep/errors.py`)."""

from __future__ import annotations

import logging
from typing import Any

from starlette.responses import JSONResponse

from ..errors import ConfigurationError, ReadOnlyDatabaseError, TimestepError

logger = logging.getLogger("timestep.web")


def error(status: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"type": kind, "message": message}}, status_code=status)


def status_of(exc: Exception) -> int:
    """The error's own `http_status`; another `ValueError` is a 422."""
    if isinstance(exc, TimestepError):
        return exc.http_status
    return 422 if isinstance(exc, ValueError) else 500


def error_body(exc: Exception) -> dict[str, Any]:
    """The answer's body. Database problems are said without their detail (it names files and
    servers): the detail goes to the server's log."""
    if isinstance(exc, ConfigurationError) and not isinstance(exc, ReadOnlyDatabaseError):
        logger.warning("inbox: %s: %s", type(exc).__name__, exc)
        message = "the inbox's database is unavailable or misconfigured (see the server's log)"
    else:
        message = str(exc)
    return {"error": {"type": type(exc).__name__, "message": message}}


def answer(exc: Exception) -> JSONResponse:
    return JSONResponse(error_body(exc), status_code=status_of(exc))
