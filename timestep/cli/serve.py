"""`timestep serve`: the approval inbox (JSON API, Server-Sent Events, a web page) on uvicorn."""

from __future__ import annotations

import argparse
import ipaddress
import secrets
from typing import Any

from ..errors import InvalidArgumentError
from .common import EXIT_OK, Output, option

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def is_loopback(host: str) -> bool:
    """Whether `host` names this machine only (127.0.0.0/8, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def serve(args: argparse.Namespace, out: Output) -> int:
    import uvicorn

    from ..web import app, resolve_token

    token = resolve_token(args.token)
    if token is None:
        if not is_loopback(args.host):
            raise InvalidArgumentError(
                f"refusing to serve on {args.host} without a token: give --token or "
                "TIMESTEP_TOKEN (a generated token is only used on a loopback address)"
            )
        token = secrets.token_urlsafe(32)
        out.note(f"generated token (shown once): {token}")
    shown = f"[{args.host}]" if ":" in args.host else args.host
    out.note(
        f"approval inbox on http://{shown}:{args.port}/ (send 'Authorization: Bearer TOKEN'; "
        f"the page: http://{shown}:{args.port}/#token=TOKEN)"
    )
    uvicorn.run(
        app(token=token),
        host=args.host,
        port=args.port,
        log_level="info" if args.access_log or option(args, "verbose", False) else "warning",
        access_log=bool(args.access_log),
        proxy_headers=False,
        server_header=False,
    )
    return EXIT_OK


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "serve",
        parents=[common],
        help="serve the approval inbox over HTTP (JSON API and a web page)",
        description="Serve the approval inbox: a JSON API under /api (runs, pending calls, "
        "approve/reject, cancel/retry, events as Server-Sent Events), its OpenAPI description "
        "at /openapi.json and a web page at /. Every API request needs "
        "'Authorization: Bearer TOKEN'. Without --token or TIMESTEP_TOKEN a token is generated "
        "and printed once, and only a loopback host is allowed.",
    )
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help=f"address to bind (default {DEFAULT_HOST})"
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port to bind (default {DEFAULT_PORT})"
    )
    parser.add_argument(
        "--token",
        help="the bearer token (default: TIMESTEP_TOKEN, else a generated one, printed once)",
    )
    parser.add_argument(
        "--access-log",
        action="store_true",
        help="log one line per request (method, path, status; never headers)",
    )
    parser.set_defaults(handler=serve)
