"""`timestep serve`: the approval inbox (JSON API, Server-Sent Events, a web page) on uvicorn."""

from __future__ import annotations

import argparse
import errno
import ipaddress
import secrets
import socket
from typing import Any

from ..errors import InvalidArgumentError, ServeError
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


MIN_REMOTE_TOKEN_CHARACTERS = 24
"""The shortest token accepted on a host beyond loopback (a generated one has 43)."""


def _check_remote_token(token: str, host: str) -> None:
    if len(token) < MIN_REMOTE_TOKEN_CHARACTERS or len(set(token)) < 8:
        raise InvalidArgumentError(
            f"refusing to serve on {host} with a weak token: beyond loopback the token needs at "
            f"least {MIN_REMOTE_TOKEN_CHARACTERS} characters, 8 of them different (for example "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
        )


def _listen(host: str, port: int) -> socket.socket:
    """The bound listening socket, or one error line saying why not (port in use, ...)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except (socket.gaierror, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ServeError(f"cannot serve on {host}:{port}: {reason}") from None
    listener = socket.socket(family, kind, proto)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
        listener.listen(128)
    except OSError as exc:
        listener.close()
        reason = exc.strerror or str(exc)
        if exc.errno == errno.EADDRINUSE:
            reason += " (another process listens there: stop it, or choose --port)"
        raise ServeError(f"cannot serve on {host}:{port}: {reason}") from None
    listener.set_inheritable(True)
    return listener


def serve(args: argparse.Namespace, out: Output) -> int:
    import uvicorn

    from ..state import storage
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
    elif not is_loopback(args.host):
        _check_remote_token(token, args.host)
    if not 0 < args.port < 65536:
        raise InvalidArgumentError(f"--port must be between 1 and 65535, got {args.port}")
    if storage.unwritable_sqlite_file():
        # Reading works on a file this process may not write; decisions answer 503.
        storage.open_read_only()
        out.note("the database is read-only here: the inbox shows runs; decisions answer 503")
    inbox = app(token=token)
    listener = _listen(args.host, args.port)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    out.note(
        f"approval inbox on http://{shown}:{args.port}/ (send 'Authorization: Bearer TOKEN'; "
        f"the page: http://{shown}:{args.port}/#token=TOKEN)"
    )
    server = uvicorn.Server(
        uvicorn.Config(
            inbox,
            log_level="info" if args.access_log or option(args, "verbose", False) else "warning",
            access_log=bool(args.access_log),
            proxy_headers=False,
            server_header=False,
        )
    )
    try:
        server.run(sockets=[listener])
    except SystemExit as exc:  # uvicorn exits on a failed startup
        raise ServeError(f"the inbox could not start (uvicorn exit status {exc.code})") from None
    finally:
        listener.close()
    if not server.started:
        raise ServeError("the inbox stopped before it started")
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
