"""The inbox's Starlette app: routes, bearer-token check, error mapping, SSE, the page."""

from __future__ import annotations

import hmac
import json
import logging
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import resources
from typing import Any
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ..errors import (
    ConfigurationError,
    InvalidArgumentError,
    LifecycleError,
    ReadOnlyDatabaseError,
    TimestepError,
)

logger = logging.getLogger("timestep.web")

TOKEN_ENV = "TIMESTEP_TOKEN"
MAX_LIMIT = 1000
MAX_OFFSET = 2**62
"""The largest `offset` (and event offset) accepted; larger ones are a 422."""
MAX_BODY_BYTES = 1024 * 1024
"""The largest request body accepted (1 MiB; a decision is a few hundred bytes); larger: 413."""
_INTEGER = re.compile(r"-?[0-9]{1,30}")
ACTIONS = ("approve", "reject", "cancel", "retry", "events", "steps", "conversation")

Handler = Callable[[Request], Awaitable[Response]]


class _BadRequest(Exception):
    """A malformed request: answered 422 with what is wrong."""


class _TooLarge(Exception):
    """A body over `MAX_BODY_BYTES`: answered 413."""


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


def _error(status: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"type": kind, "message": message}}, status_code=status)


def _status_of(exc: Exception) -> int:
    """The error's own `http_status` (timestep/errors.py); another `ValueError` is a 422."""
    if isinstance(exc, TimestepError):
        return exc.http_status
    return 422 if isinstance(exc, ValueError) else 500


def _answer(exc: Exception) -> JSONResponse:
    """An error as JSON. Database problems are said without their detail (it names files and
    servers): the detail goes to the server's log."""
    status = _status_of(exc)
    if isinstance(exc, ReadOnlyDatabaseError):
        return _error(status, type(exc).__name__, str(exc))
    if isinstance(exc, ConfigurationError):
        logger.warning("inbox: %s: %s", type(exc).__name__, exc)
        return _error(
            status,
            type(exc).__name__,
            "the inbox's database is unavailable or misconfigured (see the server's log)",
        )
    return _error(status, type(exc).__name__, str(exc))


def _guarded(token: str, handler: Handler) -> Handler:
    """The handler behind the bearer-token check, its errors as JSON with their status codes."""
    expected = token.encode("utf-8")

    async def endpoint(request: Request) -> Response:
        # The header's bytes as sent (Starlette decodes them as latin-1): a UTF-8 token
        # compares equal byte for byte, nothing stripped on either side.
        header = request.headers.get("authorization", "").encode("latin-1")
        scheme, _, given = header.partition(b" ")
        if scheme.lower() != b"bearer" or not hmac.compare_digest(given, expected):
            response = _error(
                401, "Unauthorized", "a valid 'Authorization: Bearer TOKEN' is needed"
            )
            response.headers["WWW-Authenticate"] = "Bearer"
            return response
        try:
            return await handler(request)
        except _BadRequest as exc:
            return _error(422, "InvalidRequest", str(exc))
        except _TooLarge as exc:
            return _error(413, "PayloadTooLarge", str(exc))
        except _NotFound as exc:
            return _error(404, "NotFound", str(exc))
        except HTTPException as exc:
            return _error(exc.status_code, "NotFound", "no such route")
        except (TimestepError, ValueError) as exc:
            return _answer(exc)
        except Exception:
            # Logged with the request's method and path only (never its headers).
            logger.exception("inbox: %s %s failed", request.method, request.url.path)
            return _error(500, "InternalError", "internal error (see the server's log)")

    return endpoint


def _int_param(request: Request, name: str, default: int, low: int, high: int | None) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not _INTEGER.fullmatch(raw):
        raise _BadRequest(f"{name} must be an integer, got {raw[:40]!r}")
    value = int(raw)
    if value < low or (high is not None and value > high):
        limits = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise _BadRequest(f"{name} must be {limits}, got {value}")
    return value


async def _read_body(request: Request) -> bytes:
    """The body, refused (413) past `MAX_BODY_BYTES` whatever Content-Length says."""
    too_large = f"the body is larger than {MAX_BODY_BYTES} bytes"
    declared = request.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _TooLarge(too_large)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _TooLarge(too_large)
        chunks.append(chunk)
    return b"".join(chunks)


async def _body(request: Request, allowed: dict[str, type]) -> dict[str, Any]:
    """The JSON object body (empty allowed), each field of its type, no unknown fields."""
    raw = await _read_body(request)
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _BadRequest(f"the body is not JSON: {exc}") from None
    except RecursionError:
        raise _BadRequest("the body is not JSON this inbox reads: nested too deeply") from None
    if not isinstance(body, dict):
        raise _BadRequest(f"the body must be a JSON object, got {type(body).__name__}")
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise _BadRequest(
            f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
        )
    for name, kind in allowed.items():
        value = body.get(name)
        if value is not None and not isinstance(value, kind):
            raise _BadRequest(f"{name} must be a {kind.__name__}, got {type(value).__name__}")
    return body


async def list_runs_endpoint(request: Request) -> Response:
    from ..runs import list_runs

    status = request.query_params.get("status") or None
    agent = request.query_params.get("agent") or None
    limit = _int_param(request, "limit", 50, 1, MAX_LIMIT)
    offset = _int_param(request, "offset", 0, 0, MAX_OFFSET)
    found = await list_runs(status, limit=limit + 1, agent=agent, offset=offset)
    page, more = found[:limit], len(found) > limit
    return JSONResponse(
        {
            "runs": [record.as_dict() for record in page],
            "next_offset": offset + limit if more else None,
        }
    )


async def show_run(request: Request) -> Response:
    from ..runs import get_run

    return JSONResponse((await get_run(request.path_params["run_id"])).as_dict())


async def steps(request: Request) -> Response:
    from ..runs import recorded_steps

    include_dbos = request.query_params.get("all", "false").lower()
    if include_dbos not in ("true", "false", "1", "0"):
        raise _BadRequest(f"all must be true or false, got {include_dbos!r}")
    found = await recorded_steps(
        request.path_params["run_id"], include_dbos=include_dbos in ("true", "1")
    )
    return JSONResponse({"steps": found})


async def conversation(request: Request) -> Response:
    from ..runs import conversation as recorded_conversation

    entries = await recorded_conversation(request.path_params["run_id"])
    return JSONResponse({"conversation": entries})


async def _check_writable() -> None:
    import asyncio

    from ..state import storage

    await asyncio.to_thread(storage.storage_engine)
    if not storage.is_writable():
        raise ReadOnlyDatabaseError(
            "the inbox's database is open read-only: decisions and lifecycle actions cannot be "
            "recorded here (serve it from a process that may write the database)"
        )


async def decide(request: Request) -> Response:
    from ..approvals import approve, reject
    from ..runs import get_run

    await _check_writable()
    run_id = request.path_params["run_id"]
    kind = request.path_params["decision"]
    if kind == "approve":
        body = await _body(request, {"call_id": str, "always": bool})
        await approve(run_id, body.get("call_id"), always=bool(body.get("always")))
    else:
        body = await _body(request, {"call_id": str, "message": str})
        await reject(run_id, body.get("call_id"), message=body.get("message"))
    return JSONResponse((await get_run(run_id)).as_dict())


async def steer(request: Request) -> Response:
    from ..lifecycle import cancel, retry

    await _body(request, {})
    await _check_writable()
    run_id = request.path_params["run_id"]
    action = cancel if request.path_params["action"] == "cancel" else retry
    return JSONResponse((await action(run_id)).as_dict())


def _sse(event: dict[str, Any]) -> str:
    lines = [] if event.get("offset") is None else [f"id: {event['offset']}"]
    lines.append(f"data: {json.dumps(event, default=str, separators=(',', ':'))}")
    return "\n".join(lines) + "\n\n"


async def events(request: Request) -> Response:
    from ..runs import get_run
    from ..stream import stream_events

    run_id = request.path_params["run_id"]
    record = await get_run(run_id)
    if not record.streamed:
        raise LifecycleError(f"run {run_id!r} was not started with stream=True: it has no events")
    last = request.headers.get("last-event-id")
    if last is not None and last.strip():
        offset = int(last) + 1 if _INTEGER.fullmatch(last.strip()) else 0
        if offset < 1 or offset > MAX_OFFSET:
            raise _BadRequest(f"Last-Event-ID must be an event offset, got {last[:40]!r}")
    else:
        offset = _int_param(request, "offset", 0, 0, MAX_OFFSET)

    async def body() -> AsyncIterator[str]:
        yield "retry: 1000\n\n"
        async for event in stream_events(run_id, offset):
            yield _sse(event)

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


API_ROUTES: list[tuple[str, str, str]] = [
    ("GET", "/api/runs", "List runs, most recently updated first (status, agent, limit)."),
    ("GET", "/api/runs/{run_id}", "One run: status, pending calls with their decisions."),
    ("POST", "/api/runs/{run_id}/approve", "Approve pending calls (call_id?, always?)."),
    ("POST", "/api/runs/{run_id}/reject", "Reject pending calls (call_id?, message?)."),
    ("POST", "/api/runs/{run_id}/cancel", "Cancel a run."),
    ("POST", "/api/runs/{run_id}/retry", "Retry a failed or cancelled run."),
    ("GET", "/api/runs/{run_id}/events", "The run's durable events as Server-Sent Events."),
    ("GET", "/api/runs/{run_id}/steps", "The run's recorded model and tool calls, in order."),
    ("GET", "/api/runs/{run_id}/conversation", "The run's conversation as of its last stop."),
]


def openapi_schema() -> dict[str, Any]:
    """A small OpenAPI 3.1 description of the JSON API."""
    error = {"$ref": "#/components/schemas/Error"}
    run = {"$ref": "#/components/schemas/Run"}

    def answer(description: str, schema: dict[str, Any]) -> dict[str, Any]:
        return {"description": description, "content": {"application/json": {"schema": schema}}}

    errors = {
        "401": answer("missing or wrong bearer token", error),
        "404": answer("no such run (or route)", error),
        "409": answer(
            "the decision or action conflicts with the run's state, or nothing is pending "
            "(NothingPendingError)",
            error,
        ),
        "413": answer(f"the body is larger than {MAX_BODY_BYTES} bytes", error),
        "422": answer("a malformed request (the message says what is wrong)", error),
        "503": answer(
            "the database is unavailable, or read-only here (decisions: ReadOnlyDatabaseError)",
            error,
        ),
    }
    run_id = {
        "name": "run_id",
        "in": "path",
        "required": True,
        "description": "percent-encoded: a '/' in the id is sent as %2F; ids '.' and '..' "
        "(which URL parsers remove from paths) go by /api/run?id=",
        "schema": {"type": "string"},
    }

    def decision(props: dict[str, Any], summary: str) -> dict[str, Any]:
        return {
            "summary": summary,
            "parameters": [run_id],
            "requestBody": {
                "required": False,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": props,
                        }
                    }
                },
            },
            "responses": {"200": answer("the run after the decision", run), **errors},
        }

    call_id = {"type": "string", "description": "one call (default: every pending call)"}
    steer_op = {"parameters": [run_id], "responses": {"200": answer("the run", run), **errors}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Timestep approval inbox", "version": "1"},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "properties": {
                        "error": {
                            "type": "object",
                            "properties": {
                                "type": {"type": "string"},
                                "message": {"type": "string"},
                            },
                        }
                    },
                },
                "Run": {
                    "type": "object",
                    "description": "RunRecord.as_dict(): run_id, agent, status, segment, "
                    "created_at, updated_at, usage, final_output, pending_approvals (call_id, "
                    "tool_name, arguments, agent, decision, message), error, owner, note, "
                    "version (id, label, pinned, moves)",
                },
            },
        },
        "security": [{"bearer": []}],
        "paths": {
            "/api/runs": {
                "get": {
                    "summary": API_ROUTES[0][2],
                    "parameters": [
                        {"name": "status", "in": "query", "schema": {"type": "string"}},
                        {"name": "agent", "in": "query", "schema": {"type": "string"}},
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                        },
                        {
                            "name": "offset",
                            "in": "query",
                            "description": "skip this many (the previous page's next_offset)",
                            "schema": {"type": "integer", "minimum": 0},
                        },
                    ],
                    "responses": {
                        "200": answer(
                            "runs",
                            {
                                "type": "object",
                                "properties": {
                                    "runs": {"type": "array", "items": run},
                                    "next_offset": {"type": ["integer", "null"]},
                                },
                            },
                        ),
                        **errors,
                    },
                }
            },
            "/api/runs/{run_id}": {
                "get": {
                    "summary": API_ROUTES[1][2],
                    "parameters": [run_id],
                    "responses": {"200": answer("the run", run), **errors},
                }
            },
            "/api/runs/{run_id}/approve": {
                "post": decision(
                    {"call_id": call_id, "always": {"type": "boolean"}}, API_ROUTES[2][2]
                )
            },
            "/api/runs/{run_id}/reject": {
                "post": decision(
                    {"call_id": call_id, "message": {"type": "string"}}, API_ROUTES[3][2]
                )
            },
            "/api/runs/{run_id}/cancel": {"post": {"summary": API_ROUTES[4][2], **steer_op}},
            "/api/runs/{run_id}/retry": {"post": {"summary": API_ROUTES[5][2], **steer_op}},
            "/api/runs/{run_id}/steps": {
                "get": {
                    "summary": API_ROUTES[7][2],
                    "parameters": [
                        run_id,
                        {"name": "all", "in": "query", "schema": {"type": "boolean"}},
                    ],
                    "responses": {
                        "200": answer(
                            "steps (segment, step, kind, name, started_at, duration_s, status, "
                            "error)",
                            {"type": "object", "properties": {"steps": {"type": "array"}}},
                        ),
                        **errors,
                    },
                }
            },
            "/api/runs/{run_id}/conversation": {
                "get": {
                    "summary": API_ROUTES[8][2],
                    "parameters": [run_id],
                    "responses": {
                        "200": answer(
                            "entries (kind: message with role and text, tool_call, tool_output, "
                            "approval_request, handoff)",
                            {"type": "object", "properties": {"conversation": {"type": "array"}}},
                        ),
                        **errors,
                    },
                }
            },
            "/api/run": {
                "get": {
                    "summary": "One run, its id in the query: /api/run?id=RUN_ID. Every "
                    "/api/runs/{run_id}/ACTION route is also /api/run/ACTION?id=RUN_ID (the "
                    "page uses these: any run id travels in a query).",
                    "parameters": [
                        {
                            "name": "id",
                            "in": "query",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    "responses": {"200": answer("the run", run), **errors},
                }
            },
            "/api/runs/{run_id}/events": {
                "get": {
                    "summary": API_ROUTES[6][2],
                    "description": "Each event's `id` is its stream offset; a reconnect with "
                    "`Last-Event-ID` (or `?offset=N`) resumes after it with no duplicate and no "
                    "gap. The stream ends with a `timestep.run_ended` event when the run finishes "
                    "or parks.",
                    "parameters": [
                        run_id,
                        {"name": "offset", "in": "query", "schema": {"type": "integer"}},
                        {"name": "Last-Event-ID", "in": "header", "schema": {"type": "string"}},
                    ],
                    "responses": {
                        "200": {
                            "description": "Server-Sent Events",
                            "content": {"text/event-stream": {}},
                        },
                        **errors,
                    },
                }
            },
        },
    }


def _static(name: str) -> str:
    return resources.files(__package__).joinpath(f"static/{name}").read_text(encoding="utf-8")


CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
"""The page's policy: its script and style are files served next to it, nothing inline."""

STATIC = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"}


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
        raise _BadRequest("the run id in the path is not percent-encoded UTF-8") from None
    if not run_id:
        raise _NotFound("no run id in the path")
    return run_id, segments[1].decode("ascii") if len(segments) == 2 else None


class _NotFound(Exception):
    """A path under /api that names no route: answered 404 in the JSON format."""


_ROUTES: dict[tuple[str, str | None], tuple[Handler, dict[str, str]]] = {
    ("GET", None): (show_run, {}),
    ("GET", "events"): (events, {}),
    ("GET", "steps"): (steps, {}),
    ("GET", "conversation"): (conversation, {}),
    ("POST", "approve"): (decide, {"decision": "approve"}),
    ("POST", "reject"): (decide, {"decision": "reject"}),
    ("POST", "cancel"): (steer, {"action": "cancel"}),
    ("POST", "retry"): (steer, {"action": "retry"}),
}


async def _dispatch(request: Request, run_id: str, action: str | None) -> Response:
    found = _ROUTES.get((request.method, action))
    if found is None:
        allowed = sorted(m for m, a in _ROUTES if a == action)
        return _error(405, "MethodNotAllowed", f"use {' or '.join(allowed)} here")
    handler, params = found
    request.path_params.update(run_id=run_id, **params)
    return await handler(request)


async def run_by_path(request: Request) -> Response:
    return await _dispatch(request, *_run_in_path(request))


async def run_by_query(request: Request) -> Response:
    """`/api/run[/{action}]?id=RUN_ID`: the same routes with the run id in the query, which
    any id can travel in (the page uses it)."""
    run_id = request.query_params.get("id")
    if not run_id:
        raise _BadRequest("id (the run id) is required: /api/run?id=RUN_ID")
    action = request.path_params.get("action")
    if action is not None and action not in ACTIONS:
        raise _NotFound(f"no such route; actions: {', '.join(ACTIONS)}")
    return await _dispatch(request, run_id, action)


async def _not_found(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 404
    if status == 405:
        return _error(405, "MethodNotAllowed", "this route does not take that method")
    return _error(404, "NotFound", "no such route (the routes: /openapi.json)")


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
            return _error(404, "NotFound", "no such file")
        return Response(files[name], media_type=STATIC[name], headers=headers)

    async def openapi(request: Request) -> Response:
        return JSONResponse(schema)

    def guarded(handler: Handler) -> Handler:
        return _guarded(chosen, handler)

    routes = [
        Route("/", index, methods=["GET"]),
        Route("/static/{name}", static, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/api/runs", guarded(list_runs_endpoint), methods=["GET"]),
        Route("/api/run", guarded(run_by_query), methods=["GET"]),
        Route("/api/run/{action}", guarded(run_by_query), methods=["GET", "POST"]),
        Route("/api/runs/{rest:path}", guarded(run_by_path), methods=["GET", "POST"]),
    ]
    return Starlette(routes=routes, exception_handlers={404: _not_found, 405: _not_found})
