"""The approval inbox over HTTP: an ASGI app (JSON API, Server-Sent Events, a web page).

    from timestep.web import app
    inbox = app(token="...")          # or TIMESTEP_TOKEN; mount it in Starlette/FastAPI

Top layer: it uses Timestep's public API only (`timestep.runs`, `timestep.approvals`,
`timestep.lifecycle`, `timestep.stream`), and nothing below it imports it.
"""

from __future__ import annotations

from ._app import TOKEN_ENV, app, resolve_token
from ._routes import API_ROUTES, OPERATIONS, openapi_schema

__all__ = ["API_ROUTES", "OPERATIONS", "TOKEN_ENV", "app", "openapi_schema", "resolve_token"]
