"""The JSON API, declared once: each operation's route, handler, parameters, body and answer
in one table (`OPERATIONS`), from which both the routing and the OpenAPI document are made."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from ..errors import LifecycleError, ReadOnlyDatabaseError
from . import _inbox

Handler = Callable[[Request], Awaitable[Response]]

MAX_LIMIT = 1000
MAX_OFFSET = 2**62
"""The largest `offset` (and event offset) accepted; larger ones are a 422."""
MAX_BODY_BYTES = 1024 * 1024
"""The largest request body accepted (1 MiB; a decision is a few hundred bytes); larger: 413."""
_INTEGER = re.compile(r"-?[0-9]{1,30}")
RUN_PREFIX = "/api/runs/{run_id}"


_RUN = {"$ref": "#/components/schemas/Run"}


class BadRequest(Exception):
    """A malformed request: answered 422 with what is wrong."""


class TooLarge(Exception):
    """A body over `MAX_BODY_BYTES`: answered 413."""


@dataclass(frozen=True)
class Param:
    """A query or header parameter."""

    name: str
    schema: dict[str, Any]
    description: str = ""
    where: Literal["query", "header"] = "query"


@dataclass(frozen=True)
class BodyField:
    """A field of a JSON object body (every field optional, no others allowed)."""

    name: str
    kind: type
    description: str = ""


@dataclass(frozen=True)
class Operation:
    """One route of the API: what routing needs and what the OpenAPI document says."""

    method: Literal["GET", "POST"]
    path: str
    """The route; `{run_id}` routes are also `/api/run[/ACTION]?id=RUN_ID`."""
    summary: str
    handler: Handler
    answer: str
    """What a 200 answer holds."""
    answer_schema: dict[str, Any] = field(default_factory=lambda: dict(_RUN))
    params: tuple[Param, ...] = ()
    body: tuple[BodyField, ...] | None = None
    """The JSON body's fields (None: no body taken; an empty object is still accepted)."""
    description: str = ""
    event_stream: bool = False
    """The answer is Server-Sent Events."""

    @property
    def action(self) -> str | None:
        """For a run route: what follows the run id (None for the run itself)."""
        rest = self.path.removeprefix(RUN_PREFIX)
        return rest.lstrip("/") or None

    @property
    def on_run(self) -> bool:
        return self.path.startswith(RUN_PREFIX)


def int_param(request: Request, name: str, default: int, low: int, high: int | None) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not _INTEGER.fullmatch(raw):
        raise BadRequest(f"{name} must be an integer, got {raw[:40]!r}")
    value = int(raw)
    if value < low or (high is not None and value > high):
        limits = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise BadRequest(f"{name} must be {limits}, got {value}")
    return value


async def _read_body(request: Request) -> bytes:
    """The body, refused (413) past `MAX_BODY_BYTES` whatever Content-Length says."""
    too_large = f"the body is larger than {MAX_BODY_BYTES} bytes"
    declared = request.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > MAX_BODY_BYTES:
        raise TooLarge(too_large)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise TooLarge(too_large)
        chunks.append(chunk)
    return b"".join(chunks)


async def read_body(request: Request, fields: tuple[BodyField, ...]) -> dict[str, Any]:
    """The JSON object body (empty allowed), each field of its type, no unknown fields."""
    raw = await _read_body(request)
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f"the body is not JSON: {exc}") from None
    except RecursionError:
        raise BadRequest("the body is not JSON this inbox reads: nested too deeply") from None
    if not isinstance(body, dict):
        raise BadRequest(f"the body must be a JSON object, got {type(body).__name__}")
    allowed = {f.name: f.kind for f in fields}
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise BadRequest(
            f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
        )
    for name, kind in allowed.items():
        value = body.get(name)
        if value is not None and not isinstance(value, kind):
            raise BadRequest(f"{name} must be a {kind.__name__}, got {type(value).__name__}")
    return body


def _body(request: Request) -> dict[str, Any]:
    """The body the dispatcher read and checked against the operation's fields."""
    body: dict[str, Any] = request.state.body
    return body


def _run_id(request: Request) -> str:
    run_id: str = request.path_params["run_id"]
    return run_id


# --- handlers -------------------------------------------------------------------------------


async def list_runs_endpoint(request: Request) -> Response:
    from ..runs import list_runs

    status = request.query_params.get("status") or None
    agent = request.query_params.get("agent") or None
    limit = int_param(request, "limit", 50, 1, MAX_LIMIT)
    offset = int_param(request, "offset", 0, 0, MAX_OFFSET)
    found = await list_runs(status, limit=limit + 1, agent=agent, offset=offset)
    page, more = found[:limit], len(found) > limit
    return JSONResponse(
        {
            "runs": [record.as_dict() for record in page],
            "next_offset": offset + limit if more else None,
        }
    )


def _inbox_query(request: Request) -> _inbox.InboxQuery:
    status = request.query_params.get("status") or None
    if status is not None and status not in _inbox.STATUSES:
        raise BadRequest(f"status must be one of {', '.join(_inbox.STATUSES)}, got {status[:40]!r}")
    return _inbox.InboxQuery(
        status=status,
        search=(request.query_params.get("q") or "").strip()[: _inbox.MAX_SEARCH] or None,
        limit=int_param(request, "limit", 25, 1, _inbox.MAX_PAGE),
        offset=int_param(request, "offset", 0, 0, MAX_OFFSET),
        selected=request.query_params.get("selected") or None,
    )


async def inbox_endpoint(request: Request) -> Response:
    return JSONResponse((await _inbox.view(_inbox_query(request))).as_dict())


async def inbox_live(request: Request) -> Response:
    query = _inbox_query(request)
    return _event_stream(_inbox.live(query))


async def show_run(request: Request) -> Response:
    from ..runs import get_run

    return JSONResponse((await get_run(_run_id(request))).as_dict())


async def steps(request: Request) -> Response:
    from ..runs import recorded_steps

    include_dbos = request.query_params.get("all", "false").lower()
    if include_dbos not in ("true", "false", "1", "0"):
        raise BadRequest(f"all must be true or false, got {include_dbos!r}")
    found = await recorded_steps(_run_id(request), include_dbos=include_dbos in ("true", "1"))
    return JSONResponse({"steps": found})


async def conversation(request: Request) -> Response:
    from ..runs import conversation as recorded_conversation

    return JSONResponse({"conversation": await recorded_conversation(_run_id(request))})


async def _check_writable() -> None:
    import asyncio

    from ..state import storage

    await asyncio.to_thread(storage.storage_engine)
    if not storage.is_writable():
        raise ReadOnlyDatabaseError(
            "the inbox's database is open read-only: decisions and lifecycle actions cannot be "
            "recorded here (serve it from a process that may write the database)"
        )


async def approve(request: Request) -> Response:
    from ..approvals import approve as record_approval
    from ..runs import get_run

    body = _body(request)
    await record_approval(_run_id(request), body.get("call_id"), always=bool(body.get("always")))
    return JSONResponse((await get_run(_run_id(request))).as_dict())


async def reject(request: Request) -> Response:
    from ..approvals import reject as record_rejection
    from ..runs import get_run

    body = _body(request)
    await record_rejection(_run_id(request), body.get("call_id"), message=body.get("message"))
    return JSONResponse((await get_run(_run_id(request))).as_dict())


async def cancel(request: Request) -> Response:
    from ..lifecycle import cancel as cancel_run

    return JSONResponse((await cancel_run(_run_id(request))).as_dict())


async def retry(request: Request) -> Response:
    from ..lifecycle import retry as retry_run

    return JSONResponse((await retry_run(_run_id(request))).as_dict())


def _sse(event: dict[str, Any]) -> str:
    lines = [] if event.get("offset") is None else [f"id: {event['offset']}"]
    lines.append(f"data: {json.dumps(event, default=str, separators=(',', ':'))}")
    return "\n".join(lines) + "\n\n"


def _event_stream(events: AsyncIterator[dict[str, Any]]) -> StreamingResponse:
    async def body() -> AsyncIterator[str]:
        yield "retry: 1000\n\n"
        async for event in events:
            yield _sse(event)

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def events(request: Request) -> Response:
    from ..runs import get_run
    from ..stream import stream_events

    run_id = _run_id(request)
    record = await get_run(run_id)
    if not record.streamed:
        raise LifecycleError(f"run {run_id!r} was not started with stream=True: it has no events")
    last = request.headers.get("last-event-id")
    if last is not None and last.strip():
        offset = int(last) + 1 if _INTEGER.fullmatch(last.strip()) else 0
        if offset < 1 or offset > MAX_OFFSET:
            raise BadRequest(f"Last-Event-ID must be an event offset, got {last[:40]!r}")
    else:
        offset = int_param(request, "offset", 0, 0, MAX_OFFSET)
    return _event_stream(stream_events(run_id, offset))


# --- the table ------------------------------------------------------------------------------

_CALL_ID = BodyField("call_id", str, "one call (default: every pending call)")
_PAGE = (
    Param(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
        "at most this many runs (50)",
    ),
    Param(
        "offset",
        {"type": "integer", "minimum": 0},
        "skip this many (the previous page's next_offset)",
    ),
)
_INBOX_PARAMS = (
    Param("status", {"type": "string", "enum": list(_inbox.STATUSES)}, "only runs with it"),
    Param(
        "q",
        {"type": "string", "maxLength": _inbox.MAX_SEARCH},
        "search: runs whose id, agent or pending tool contains it (case-insensitive), among "
        f"the {_inbox.SEARCH_WINDOW} most recently updated",
    ),
    Param("limit", {"type": "integer", "minimum": 1, "maximum": _inbox.MAX_PAGE}, "page size"),
    Param("offset", {"type": "integer", "minimum": 0}, "skip this many runs of the page list"),
    Param("selected", {"type": "string"}, "a run id: its record and recorded steps come along"),
)

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "GET",
        "/api/runs",
        "List runs, most recently updated first (status, agent, limit, offset).",
        list_runs_endpoint,
        "runs",
        {
            "type": "object",
            "properties": {
                "runs": {"type": "array", "items": _RUN},
                "next_offset": {"type": ["integer", "null"]},
            },
        },
        params=(
            Param("status", {"type": "string"}),
            Param("agent", {"type": "string"}, "the starting agent's name"),
            *_PAGE,
        ),
    ),
    Operation(
        "GET",
        "/api/inbox",
        "What the inbox page shows: runs awaiting approval, a page of runs, a selected run.",
        inbox_endpoint,
        "the view (InboxView: pending_count, pending, runs, next_offset, selected, now)",
        {"$ref": "#/components/schemas/InboxView"},
        params=_INBOX_PARAMS,
    ),
    Operation(
        "GET",
        "/api/inbox/live",
        "The inbox view as Server-Sent Events: sent at once, then whenever it changes.",
        inbox_live,
        "Server-Sent Events, each an InboxView (or {error} while the database fails)",
        params=_INBOX_PARAMS,
        description="The server checks the view every "
        f"{_inbox.TICK_SECONDS:g} s and sends it when anything the page shows changed (a new "
        "run, a status, a decision, a recorded step of the selected run). A page follows it "
        "instead of polling.",
        event_stream=True,
    ),
    Operation(
        "GET",
        RUN_PREFIX,
        "One run: status, pending calls with their decisions.",
        show_run,
        "the run",
    ),
    Operation(
        "POST",
        RUN_PREFIX + "/approve",
        "Approve pending calls (call_id?, always?).",
        approve,
        "the run after the decision",
        body=(
            _CALL_ID,
            BodyField("always", bool, "approve this tool for the rest of the run"),
        ),
    ),
    Operation(
        "POST",
        RUN_PREFIX + "/reject",
        "Reject pending calls (call_id?, message?).",
        reject,
        "the run after the decision",
        body=(_CALL_ID, BodyField("message", str, "what the model is told about the rejection")),
    ),
    Operation("POST", RUN_PREFIX + "/cancel", "Cancel a run.", cancel, "the run", body=()),
    Operation(
        "POST",
        RUN_PREFIX + "/retry",
        "Retry a failed or cancelled run.",
        retry,
        "the run",
        body=(),
    ),
    Operation(
        "GET",
        RUN_PREFIX + "/events",
        "The run's durable events as Server-Sent Events.",
        events,
        "Server-Sent Events",
        params=(
            Param("offset", {"type": "integer"}),
            Param("Last-Event-ID", {"type": "string"}, where="header"),
        ),
        description="Each event's `id` is its stream offset; a reconnect with `Last-Event-ID` "
        "(or `?offset=N`) resumes after it with no duplicate and no gap. The stream ends with a "
        "`timestep.run_ended` event when the run finishes or parks.",
        event_stream=True,
    ),
    Operation(
        "GET",
        RUN_PREFIX + "/steps",
        "The run's recorded model and tool calls, in order.",
        steps,
        "steps (segment, step, kind, name, started_at, duration_s, status, error)",
        {"type": "object", "properties": {"steps": {"type": "array"}}},
        params=(Param("all", {"type": "boolean"}, "also DBOS's own steps"),),
    ),
    Operation(
        "GET",
        RUN_PREFIX + "/conversation",
        "The run's conversation as of its last stop.",
        conversation,
        "entries (kind: message with role and text, tool_call, tool_output, approval_request, "
        "handoff)",
        {"type": "object", "properties": {"conversation": {"type": "array"}}},
    ),
)
"""Every route of the API. A new route is one entry here: routing and /openapi.json follow."""

RUN_ACTIONS: dict[tuple[str, str | None], Operation] = {
    (op.method, op.action): op for op in OPERATIONS if op.on_run
}
"""The run routes by (method, action), for `/api/runs/{id}[/ACTION]` and `/api/run[/ACTION]`."""

ACTIONS = tuple(sorted({a for _, a in RUN_ACTIONS if a is not None}))

API_ROUTES: list[tuple[str, str, str]] = [(op.method, op.path, op.summary) for op in OPERATIONS]
"""(method, path, summary) of every route, as listed in the README."""


async def call(op: Operation, request: Request) -> Response:
    """Run `op`'s handler on `request`: a POST only where the database may be written, its
    body read and checked against the operation's fields first."""
    if op.method == "POST":
        await _check_writable()
        request.state.body = await read_body(request, op.body or ())
    return await op.handler(request)


# --- the OpenAPI document, made from the table ----------------------------------------------

_ERRORS = {
    "401": "missing or wrong bearer token",
    "404": "no such run (or route)",
    "409": "the decision or action conflicts with the run's state, or nothing is pending "
    "(NothingPendingError)",
    "413": f"the body is larger than {MAX_BODY_BYTES} bytes",
    "422": "a malformed request (the message says what is wrong)",
    "503": "the database is unavailable, or read-only here (decisions: ReadOnlyDatabaseError)",
}
_RUN_ID_PARAM = {
    "name": "run_id",
    "in": "path",
    "required": True,
    "description": "percent-encoded: a '/' in the id is sent as %2F; ids '.' and '..' "
    "(which URL parsers remove from paths) go by /api/run?id=",
    "schema": {"type": "string"},
}


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _document(op: Operation) -> dict[str, Any]:
    error = {"$ref": "#/components/schemas/Error"}
    ok = (
        {"description": op.answer, "content": {"text/event-stream": {}}}
        if op.event_stream
        else _json(op.answer, op.answer_schema)
    )
    described: dict[str, Any] = {
        "summary": op.summary,
        "responses": {"200": ok, **{code: _json(text, error) for code, text in _ERRORS.items()}},
    }
    if op.description:
        described["description"] = op.description
    parameters = [_RUN_ID_PARAM] if op.on_run else []
    for param in op.params:
        entry: dict[str, Any] = {"name": param.name, "in": param.where, "schema": param.schema}
        if param.description:
            entry["description"] = param.description
        parameters.append(entry)
    if parameters:
        described["parameters"] = parameters
    if op.body:
        properties = {
            f.name: {"type": _JSON_TYPES[f.kind], "description": f.description} for f in op.body
        }
        described["requestBody"] = {
            "required": False,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": properties,
                    }
                }
            },
        }
    return described


_JSON_TYPES = {str: "string", bool: "boolean", int: "integer"}


def openapi_schema() -> dict[str, Any]:
    """The OpenAPI 3.1 description of the JSON API, made from `OPERATIONS`."""
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method.lower()] = _document(op)
    paths["/api/run"] = {
        "get": {
            "summary": "One run, its id in the query: /api/run?id=RUN_ID. Every "
            "/api/runs/{run_id}/ACTION route is also /api/run/ACTION?id=RUN_ID (the page uses "
            "these: any run id travels in a query).",
            "parameters": [
                {"name": "id", "in": "query", "required": True, "schema": {"type": "string"}}
            ],
            "responses": {"200": _json("the run", _RUN)},
        }
    }
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
                    "created_at, updated_at, usage, usage_by_model, final_output, "
                    "pending_approvals (call_id, tool_name, arguments, agent, decision, "
                    "message), error, owner, note, version (id, label, pinned, moves)",
                },
                "InboxView": _inbox.SCHEMA,
            },
        },
        "security": [{"bearer": []}],
        "paths": paths,
    }
