"""`timestep serve`: the approval inbox (JSON API, Server-Sent Events, a web page) on uvicorn."""

from __future__ import annotations

import argparse
import errno
import ipaddress
import secrets
import socket
from typing import Any

from ..errors import DatabaseUnavailableError, InvalidArgumentError, ServeError
from .common import EXIT_OK, Output, option

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
GRACEFUL_SHUTDOWN_SECONDS = 2


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


def _check_database_exists(create: bool) -> None:
    """Refuse a SQLite file or a PostgreSQL database that does not exist (a mistyped --db would
    otherwise serve a new, empty database and an empty inbox) unless `--create` asks for one."""
    from .. import config
    from ..state import storage
    from ..state.database import ensure_postgres_database, parse_database_url

    target = parse_database_url(config.database_url())
    if not target.is_sqlite:
        ensure_postgres_database(target, create=create)  # before anything opens (creates) it
        return
    missing = storage.missing_sqlite_file()
    if missing is None or create:
        return
    raise DatabaseUnavailableError(
        f"no Timestep database at {str(missing)!r} (from {config.database_url_source()}): "
        "nothing has run with it yet, or the path is mistyped. Give the database runs were "
        "recorded in, or `timestep serve --create` to serve a new, empty one"
    )


def serve(args: argparse.Namespace, out: Output) -> int:
    import uvicorn

    from ..state import storage
    from ..web import TOKEN_ENV, app, resolve_token

    token = resolve_token(args.token)
    generated = token is None
    if token is None:
        if not is_loopback(args.host):
            raise InvalidArgumentError(
                f"refusing to serve on {args.host} without a token: give --token or "
                "TIMESTEP_TOKEN (a generated token is only used on a loopback address)"
            )
        token = secrets.token_urlsafe(32)
    elif not is_loopback(args.host):
        _check_remote_token(token, args.host)
    if not 0 < args.port < 65536:
        raise InvalidArgumentError(f"--port must be between 1 and 65535, got {args.port}")
    _check_database_exists(bool(args.create))
    if storage.unwritable_sqlite_file():
        # Reading works on a file this process may not write; decisions answer 503.
        storage.open_read_only()
        out.note("the database is read-only here: the inbox shows runs; decisions answer 503")
    inbox = app(token=token)
    listener = _listen(args.host, args.port)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    address = f"http://{shown}:{args.port}/"
    if generated:
        # The one place the generated token is ever shown: the page's link carries it (the
        # page drops it from the address bar at once); API clients send it as a bearer token.
        out.note(
            f"approval inbox on {address}#token={token} (a generated token, shown only here; "
            "API clients send it as 'Authorization: Bearer <token>')"
        )
    else:
        out.note(
            f"approval inbox on {address} (the page asks for the token given by "
            f"{'--token' if args.token is not None else TOKEN_ENV}; API clients send it as "
            "'Authorization: Bearer <token>')"
        )
    server = uvicorn.Server(
        uvicorn.Config(
            inbox,
            log_level="info" if args.access_log or option(args, "verbose", False) else "warning",
            access_log=bool(args.access_log),
            proxy_headers=False,
            server_header=False,
            # Open pages hold event streams that never end by themselves: on Ctrl-C or
            # SIGTERM they are closed after this many seconds instead of waited for.
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
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
        "--create",
        action="store_true",
        help="create the SQLite database when it does not exist (default: refuse, so that a "
        "mistyped --db is not served as an empty inbox)",
    )
    parser.add_argument(
        "--access-log",
        action="store_true",
        help="log one line per request (method, path, status; never headers)",
    )
    parser.set_defaults(handler=serve)
