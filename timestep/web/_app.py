"""The inbox's Starlette app: the bearer-token check, errors as JSON, the run routes' two
spellings (`/api/runs/{id}/...` and `/api/run/...?id=`), and the page's files. The routes
themselves are declared once in `_routes.OPERATIONS`."""

from __future__ import annotations

import hmac
import logging
import os
from importlib import resources
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from ..errors import ConfigurationError, InvalidArgumentError, TimestepError
from ._errors import answer, error
from ._routes import (
    ACTIONS,
    OPERATIONS,
    RUN_ACTIONS,
    BadRequest,
    Handler,
    Operation,
    TooLarge,
    call,
    openapi_schema,
)

logger = logging.getLogger("timestep.web")

TOKEN_ENV = "TIMESTEP_TOKEN"


def resolve_token(token: str | None = None) -> str | None:
    """The token given, else `TIMESTEP_TOKEN` from the environment, else None.

    A token is compared exactly as given (UTF-8), so one that no HTTP client can send whole is
    refused: empty, with leading or trailing whitespace (HTTP drops it), or with control
    characters."""
    chosen = token if token is not None else os.environ.get(TOKEN_ENV)
    if chosen is None:
        return None
    if not chosen.strip():
        raise InvalidArgumentError("the inbox token is empty; give a non-empty token")
    if chosen != chosen.strip():
        raise InvalidArgumentError(
            "the inbox token starts or ends with whitespace, which HTTP clients drop from the "
            "header; give the token without it"
        )
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in chosen):
        raise InvalidArgumentError("the inbox token contains a control character")
    return chosen


def _guarded(token: str, handler: Handler) -> Handler:
    """The handler behind the bearer-token check, its errors as JSON with their status codes."""
    expected = token.encode("utf-8")

    async def endpoint(request: Request) -> Response:
        # The header's bytes as sent (Starlette decodes them as latin-1): a UTF-8 token
        # compares equal byte for byte, nothing stripped on either side.
        header = request.headers.get("authorization", "").encode("latin-1")
        scheme, _, given = header.partition(b" ")
        if scheme.lower() != b"bearer" or not hmac.compare_digest(given, expected):
            response = error(401, "Unauthorized", "a valid 'Authorization: Bearer TOKEN' is needed")
            response.headers["WWW-Authenticate"] = "Bearer"
            return response
        try:
            return await handler(request)
        except BadRequest as exc:
            return error(422, "InvalidRequest", str(exc))
        except TooLarge as exc:
            return error(413, "PayloadTooLarge", str(exc))
        except _NotFound as exc:
            return error(404, "NotFound", str(exc))
        except HTTPException as exc:
            return error(exc.status_code, "NotFound", "no such route")
        except (TimestepError, ValueError) as exc:
            return answer(exc)
        except Exception:
            # Logged with the request's method and path only (never its headers).
            logger.exception("inbox: %s %s failed", request.method, request.url.path)
            return error(500, "InternalError", "internal error (see the server's log)")

    return endpoint


def _static(name: str) -> str:
    return resources.files(__package__).joinpath(f"static/{name}").read_text(encoding="utf-8")


CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
"""The page's policy: its script and style are files served next to it, nothing inline."""

STATIC = {
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}


def _run_in_path(request: Request) -> tuple[str, str | None]:
    """(run id, action) of `/api/runs/{id}[/{action}]`, read from the path as sent: a run id
    holding `/` arrives as `%2F` (and `.` or `..` as `%2E`), so every id stays one segment."""
    raw: bytes = request.scope.get("raw_path") or request.scope["path"].encode("utf-8")
    raw = raw.split(b"?", 1)[0]
    root = request.scope.get("root_path", "").encode("utf-8")
    if root and raw.startswith(root):
        raw = raw[len(root) :]
    prefix = b"/api/runs/"
    if not raw.startswith(prefix):
        raise HTTPException(404)
    segments = raw[len(prefix) :].split(b"/")
    if len(segments) > 2 or (len(segments) == 2 and segments[1].decode("latin-1") not in ACTIONS):
        raise _NotFound(
            "no such route; a run id holding '/' is sent as %2F (or use /api/run?id=RUN_ID)"
        )
    try:
        run_id = unquote(segments[0].decode("ascii"), errors="strict")
    except UnicodeDecodeError:
        raise BadRequest("the run id in the path is not percent-encoded UTF-8") from None
    if not run_id:
        raise _NotFound("no run id in the path")
    return run_id, segments[1].decode("ascii") if len(segments) == 2 else None


class _NotFound(Exception):
    """A path under /api that names no route: answered 404 in the JSON format."""


async def _dispatch(request: Request, run_id: str, action: str | None) -> Response:
    op = RUN_ACTIONS.get((request.method, action))
    if op is None:
        allowed = sorted(m for m, a in RUN_ACTIONS if a == action)
        return error(405, "MethodNotAllowed", f"use {' or '.join(allowed)} here")
    request.path_params.update(run_id=run_id)
    return await call(op, request)


async def run_by_path(request: Request) -> Response:
    return await _dispatch(request, *_run_in_path(request))


async def run_by_query(request: Request) -> Response:
    """`/api/run[/{action}]?id=RUN_ID`: the same routes with the run id in the query, which
    any id can travel in (the page uses it)."""
    run_id = request.query_params.get("id")
    if not run_id:
        raise BadRequest("id (the run id) is required: /api/run?id=RUN_ID")
    action = request.path_params.get("action")
    if action is not None and action not in ACTIONS:
        raise _NotFound(f"no such route; actions: {', '.join(ACTIONS)}")
    return await _dispatch(request, run_id, action)


async def _not_found(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 404
    if status == 405:
        return error(405, "MethodNotAllowed", "this route does not take that method")
    return error(404, "NotFound", "no such route (the routes: /openapi.json)")


def _direct(op: Operation) -> Handler:
    """The handler of a route that names no run."""

    async def endpoint(request: Request) -> Response:
        return await call(op, request)

    return endpoint


def app(token: str | None = None) -> Starlette:
    """The inbox as an ASGI app: the JSON API under /api (bearer `token`, else the
    `TIMESTEP_TOKEN` environment variable; one of them is required), its OpenAPI description
    at /openapi.json and the web page at /. It uses the database Timestep is configured with."""
    chosen = resolve_token(token)
    if chosen is None:
        raise ConfigurationError(
            f"the approval inbox needs a bearer token: app(token=...) or {TOKEN_ENV}"
        )
    page = _static("index.html")
    files = {name: _static(name) for name in STATIC}
    schema = openapi_schema()
    headers = {
        "Cache-Control": "no-store",
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
    }

    async def index(request: Request) -> Response:
        return HTMLResponse(page, headers=headers)

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in files:
            return error(404, "NotFound", "no such file")
        return Response(files[name], media_type=STATIC[name], headers=headers)

    async def openapi(request: Request) -> Response:
        return JSONResponse(schema)

    def guarded(handler: Handler) -> Handler:
        return _guarded(chosen, handler)

    routes = [
        Route("/", index, methods=["GET"]),
        Route("/static/{name}", static, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
    ]
    routes += [
        Route(op.path, guarded(_direct(op)), methods=[op.method])
        for op in OPERATIONS
        if not op.on_run
    ]
    routes += [
        Route("/api/run", guarded(run_by_query), methods=["GET"]),
        Route("/api/run/{action}", guarded(run_by_query), methods=["GET", "POST"]),
        Route("/api/runs/{rest:path}", guarded(run_by_path), methods=["GET", "POST"]),
    ]
    return Starlette(routes=routes, exception_handlers={404: _not_found, 405: _not_found})
