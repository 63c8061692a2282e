"""A throwaway PostgreSQL cluster for tests and benchmarks.

Importable from tests (``from tests.pgcluster import PostgresCluster``) and from
benchmark scripts that put the repository root on ``sys.path``. It has no
dependency on the ``timestep`` package; ``psycopg`` is imported lazily and only
needed for ``create_database``/``drop_database``.

The cluster:

* lives in a fresh temporary directory (data, unix socket and log directories
  inside it) that ``stop()`` deletes;
* listens on a free loopback TCP port (127.0.0.1) with ``trust`` auth and the
  superuser ``postgres``;
* keeps ``fsync = on`` (benchmarks measure durable commits);
* runs as an unprivileged OS user when the caller is root, because ``initdb``,
  ``pg_ctl`` and ``postgres`` refuse to run as root (``postgres`` by default,
  else ``nobody``; override with ``TIMESTEP_PG_OS_USER``).

Usage::

    with PostgresCluster() as pg:
        url = pg.create_database("mydb")   # postgresql://postgres@127.0.0.1:PORT/mydb
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "PgBinaries",
    "PostgresBinariesNotFound",
    "PostgresCluster",
    "PostgresClusterError",
    "create_database",
    "drop_database",
    "find_pg_binaries",
    "normalize_url",
    "postgres_cluster",
    "url_with_database",
]

_REQUIRED = ("initdb", "pg_ctl", "postgres")
_DB_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_SUPERUSER = "postgres"
_DEBIAN_GLOB = "/usr/lib/postgresql/*/bin"
# Unix socket paths are limited to ~107 bytes; keep the base dir short.
_MAX_SOCKET_DIR_LEN = 80


class PostgresClusterError(RuntimeError):
    """The throwaway cluster could not be created, started or stopped."""


class PostgresBinariesNotFound(PostgresClusterError):
    """initdb / pg_ctl / postgres were not found."""


@dataclass(frozen=True)
class PgBinaries:
    bindir: Path
    initdb: Path
    pg_ctl: Path
    postgres: Path
    version: str  # e.g. "15.18"

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])


def _version_of(initdb: Path) -> str:
    try:
        out = subprocess.run(
            [str(initdb), "--version"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise PostgresBinariesNotFound(f"{initdb} --version failed: {exc}") from exc
    match = re.search(r"(\d+(?:\.\d+)*)", out)
    if not match:
        raise PostgresBinariesNotFound(f"cannot parse version from {initdb} --version: {out!r}")
    return match.group(1)


def _binaries_in(bindir: Path) -> PgBinaries | None:
    paths = [bindir / name for name in _REQUIRED]
    if not all(p.is_file() and os.access(p, os.X_OK) for p in paths):
        return None
    initdb, pg_ctl, postgres = paths
    return PgBinaries(bindir, initdb, pg_ctl, postgres, _version_of(initdb))


def find_pg_binaries() -> PgBinaries:
    """Locate initdb, pg_ctl and postgres.

    Looks on ``PATH`` first (symlinks are resolved, so ``/usr/local/bin/initdb ->
    /usr/lib/postgresql/15/bin/initdb`` yields that bin dir), then in
    ``/usr/lib/postgresql/*/bin`` (newest major version first). All three must
    live in the same directory because ``pg_ctl`` execs the ``postgres`` beside it.
    """
    tried: list[str] = []
    initdb = shutil.which("initdb")
    if initdb:
        bindir = Path(initdb).resolve().parent
        tried.append(str(bindir))
        found = _binaries_in(bindir)
        if found:
            return found

    def _major(path: str) -> tuple[int, ...]:
        part = Path(path).parent.name
        return tuple(int(x) for x in re.findall(r"\d+", part)) or (0,)

    for candidate in sorted(glob.glob(_DEBIAN_GLOB), key=_major, reverse=True):
        tried.append(candidate)
        found = _binaries_in(Path(candidate))
        if found:
            return found
    raise PostgresBinariesNotFound(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found on PATH or in "
        f"{_DEBIAN_GLOB} (looked in: {', '.join(tried) or 'nothing found'}). "
        "Install them (Debian: apt-get install -y postgresql) or set TIMESTEP_TEST_DB_URL "
        "to an existing server."
    )


def free_port() -> int:
    """A loopback TCP port nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _traversable_by_others(path: Path) -> bool:
    """True when every ancestor of ``path`` (inclusive) has the o+x bit."""
    for p in [path, *path.parents]:
        try:
            if not os.stat(p).st_mode & stat.S_IXOTH:
                return False
        except OSError:
            return False
    return True


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (our child that was never reaped) counts as dead.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def normalize_url(url: str) -> str:
    """``postgresql+psycopg://`` / ``postgres://`` -> ``postgresql://`` (what psycopg accepts)."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme == "postgres":
        scheme = "postgresql"
    if scheme != "postgresql":
        raise ValueError(f"not a PostgreSQL URL: {url!r}")
    return urlunsplit(parts._replace(scheme=scheme))


def url_with_database(server_url: str, name: str) -> str:
    """The same server URL (normalized to ``postgresql://``) pointing at database ``name``."""
    parts = urlsplit(normalize_url(server_url))
    return urlunsplit(parts._replace(path="/" + name))


def _check_db_name(name: str) -> None:
    if not _DB_NAME_RE.match(name):
        raise ValueError(f"database name must match {_DB_NAME_RE.pattern}: {name!r}")


def create_database(server_url: str, name: str) -> str:
    """CREATE DATABASE ``name`` on the server at ``server_url``; return its URL."""
    import psycopg
    from psycopg import sql

    _check_db_name(name)
    with psycopg.connect(normalize_url(server_url), autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return url_with_database(server_url, name)


def drop_database(server_url: str, name: str) -> None:
    """DROP DATABASE IF EXISTS ``name`` WITH (FORCE) (terminates open connections)."""
    import psycopg
    from psycopg import sql

    _check_db_name(name)
    with psycopg.connect(normalize_url(server_url), autocommit=True, connect_timeout=10) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


class PostgresCluster:
    """A throwaway PostgreSQL cluster. Use as a context manager or call start()/stop().

    ``stop()`` is idempotent, also runs when ``start()`` fails, and is registered
    with ``atexit`` (only in the process that started the cluster, so forked
    children exiting do not tear it down).
    """

    def __init__(
        self,
        *,
        binaries: PgBinaries | None = None,
        os_user: str | None = None,
        max_connections: int = 200,
        settings: dict[str, str] | None = None,
        start_timeout: float = 60.0,
    ) -> None:
        self._binaries = binaries
        self._os_user_name = os_user
        self.max_connections = max_connections
        self.extra_settings = dict(settings or {})
        self.start_timeout = start_timeout
        self.base_dir: Path | None = None
        self.port: int | None = None
        self._uid: int | None = None
        self._gid: int | None = None
        self._owner_pid: int | None = None
        self._running = False
        self._atexit_registered = False

    # -- public API -----------------------------------------------------------

    @property
    def binaries(self) -> PgBinaries:
        if self._binaries is None:
            self._binaries = find_pg_binaries()
        return self._binaries

    @property
    def data_dir(self) -> Path:
        return self._base / "data"

    @property
    def socket_dir(self) -> Path:
        return self._base / "sock"

    @property
    def log_path(self) -> Path:
        return self._base / "log" / "postgres.log"

    @property
    def url(self) -> str:
        """``postgresql://postgres@127.0.0.1:PORT/postgres`` (trust auth, superuser)."""
        return self.url_for("postgres")

    def url_for(self, database: str) -> str:
        if self.port is None:
            raise PostgresClusterError("cluster not started")
        return f"postgresql://{_SUPERUSER}@127.0.0.1:{self.port}/{database}"

    @property
    def pid(self) -> int | None:
        """PID of the postmaster (from postmaster.pid), or None."""
        if self.base_dir is None:
            return None
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    @property
    def running(self) -> bool:
        return self._running

    def create_database(self, name: str) -> str:
        """CREATE DATABASE ``name``; return ``postgresql://postgres@127.0.0.1:PORT/name``."""
        return create_database(self.url, name)

    def drop_database(self, name: str) -> None:
        drop_database(self.url, name)

    def start(self) -> PostgresCluster:
        if self._running:
            return self
        binaries = self.binaries  # raises PostgresBinariesNotFound
        self._owner_pid = os.getpid()
        if not self._atexit_registered:
            atexit.register(self._atexit_stop)
            self._atexit_registered = True
        try:
            self._resolve_os_user()
            self._make_dirs()
            self._initdb(binaries)
            self._start_server(binaries)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the server (fast, then immediate, then SIGKILL) and delete the temp dir."""
        base = self.base_dir
        if base is None:
            return
        try:
            if self.data_dir.is_dir() and (self.data_dir / "postmaster.pid").exists():
                self._shutdown()
        finally:
            self._running = False
            self.base_dir = None
            shutil.rmtree(base, ignore_errors=True)

    def crash(self) -> None:
        """Stop the server as a crash would (``pg_ctl stop -m immediate``), keeping its data."""
        self._run(
            [str(self.binaries.pg_ctl), "stop", "-D", str(self.data_dir), "-m", "immediate", "-w"],
            timeout=60,
        )

    def restart_after_crash(self) -> None:
        """Start the server again on the same port and data (it runs crash recovery)."""
        proc = self._pg_ctl_start(self.binaries)
        if proc.returncode != 0:
            raise PostgresClusterError(f"pg_ctl start failed: {proc.stderr}\n{self._log_tail()}")

    def __enter__(self) -> PostgresCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return (
            f"PostgresCluster(port={self.port}, base_dir={self.base_dir}, running={self._running})"
        )

    # -- internals ------------------------------------------------------------

    @property
    def _base(self) -> Path:
        if self.base_dir is None:
            raise PostgresClusterError("cluster not started")
        return self.base_dir

    def _atexit_stop(self) -> None:
        if os.getpid() == self._owner_pid:
            with contextlib.suppress(Exception):
                self.stop()

    def _resolve_os_user(self) -> None:
        if os.geteuid() != 0:
            self._uid = self._gid = None  # run as ourselves
            return
        names = (
            [self._os_user_name]
            if self._os_user_name
            else [n for n in (os.environ.get("TIMESTEP_PG_OS_USER"), "postgres", "nobody") if n]
        )
        for name in names:
            try:
                pw = pwd.getpwnam(name)
            except KeyError:
                continue
            if pw.pw_uid == 0:
                continue
            self._uid, self._gid = pw.pw_uid, pw.pw_gid
            return
        raise PostgresClusterError(
            f"running as root but none of the OS users {names} exists (PostgreSQL refuses to "
            "run as root); create one, e.g. `useradd --system postgres`"
        )

    def _make_dirs(self) -> None:
        parent: str | None = None
        default_tmp = Path(tempfile.gettempdir())
        too_long = len(str(default_tmp)) > _MAX_SOCKET_DIR_LEN - 30
        if too_long or (self._uid is not None and not _traversable_by_others(default_tmp)):
            parent = "/tmp"
        base = Path(tempfile.mkdtemp(prefix="timestep-pg-", dir=parent))
        self.base_dir = base
        if self._uid is not None and not _traversable_by_others(base.parent):
            raise PostgresClusterError(
                f"{base.parent} is not traversable by uid {self._uid}; set TMPDIR to a "
                "world-traversable directory such as /tmp"
            )
        base.chmod(0o755)  # mkdtemp makes it 0700; the server user must traverse it
        for sub, mode in (("data", 0o700), ("sock", 0o755), ("log", 0o755)):
            d = base / sub
            d.mkdir(mode=mode)
            d.chmod(mode)
            if self._uid is not None and self._gid is not None:
                os.chown(d, self._uid, self._gid)

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(LC_ALL="C", LANG="C", TZ="UTC")
        if self._uid is not None:
            env["HOME"] = str(self._base)
            env["USER"] = env["LOGNAME"] = pwd.getpwuid(self._uid).pw_name
        return env

    def _run(self, argv: list[str], *, timeout: float) -> subprocess.CompletedProcess[str]:
        kwargs: dict[str, Any] = {}
        if self._uid is not None:
            kwargs.update(user=self._uid, group=self._gid, extra_groups=[])
        return subprocess.run(
            argv,
            cwd=str(self._base),
            env=self._env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            start_new_session=True,  # terminal Ctrl-C must not hit the server before stop()
            check=False,
            **kwargs,
        )

    def _initdb(self, binaries: PgBinaries) -> None:
        argv = [
            str(binaries.initdb),
            "-D",
            str(self.data_dir),
            "-U",
            _SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            # Only skips syncing initdb's own files (the cluster is throwaway); the
            # running server keeps fsync = on.
            "--no-sync",
        ]
        if binaries.major >= 14:
            argv.append("--no-instructions")
        proc = self._run(argv, timeout=120)
        if proc.returncode != 0:
            raise PostgresClusterError(
                f"initdb failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            )
        conf = self.data_dir / "postgresql.conf"
        with conf.open("a") as f:
            f.write("\ninclude 'timestep_test.conf'\n")

    def _write_settings(self, port: int) -> None:
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(port),
            "unix_socket_directories": f"'{self.socket_dir}'",
            "max_connections": str(self.max_connections),
            "fsync": "on",
            "synchronous_commit": "on",
            "full_page_writes": "on",
            "logging_collector": "off",
            "log_min_messages": "warning",
        }
        settings.update(self.extra_settings)
        path = self.data_dir / "timestep_test.conf"
        path.write_text("".join(f"{k} = {v}\n" for k, v in settings.items()))
        path.chmod(0o644)
        if self._uid is not None and self._gid is not None:
            os.chown(path, self._uid, self._gid)

    def _start_server(self, binaries: PgBinaries) -> None:
        last_error = ""
        for _attempt in range(5):
            port = free_port()
            self.port = port
            self._write_settings(port)
            proc = self._pg_ctl_start(binaries)
            if proc.returncode == 0:
                self._running = True
                return
            log = self._log_tail()
            last_error = f"pg_ctl start failed (exit {proc.returncode}):\n{proc.stdout}\n" + (
                f"{proc.stderr}\n--- server log ---\n{log}"
            )
            if "already in use" not in log and "could not bind" not in log:
                break  # not a port race: do not retry
            self._shutdown()  # in case a half-started postmaster is around
        raise PostgresClusterError(last_error)

    def _pg_ctl_start(self, binaries: PgBinaries) -> subprocess.CompletedProcess[str]:
        return self._run(
            [
                str(binaries.pg_ctl),
                "start",
                "-w",
                "-t",
                str(int(self.start_timeout)),
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_path),
            ],
            timeout=self.start_timeout + 30,
        )

    def _log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    def _shutdown(self) -> None:
        pid = self.pid
        pg_ctl = self._binaries.pg_ctl if self._binaries else None
        if pg_ctl is not None:
            for mode, timeout in (("fast", 30), ("immediate", 15)):
                try:
                    proc = self._run(
                        [
                            str(pg_ctl),
                            "stop",
                            "-D",
                            str(self.data_dir),
                            "-m",
                            mode,
                            "-w",
                            "-t",
                            str(timeout),
                        ],
                        timeout=timeout + 15,
                    )
                except (OSError, subprocess.SubprocessError):
                    continue
                if proc.returncode == 0 or not (self.data_dir / "postmaster.pid").exists():
                    break
        if pid is not None and _pid_alive(pid):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while _pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)


@contextlib.contextmanager
def postgres_cluster(**kwargs: Any) -> Iterator[PostgresCluster]:
    """``with postgres_cluster() as pg: ...`` (same as ``with PostgresCluster(...)``)."""
    cluster = PostgresCluster(**kwargs)
    try:
        yield cluster.start()
    finally:
        cluster.stop()


BENCH_PG_URL_ENV = "TIMESTEP_BENCH_PG_URL"


@contextlib.contextmanager
def bench_postgres_server() -> Iterator[str]:
    """For benchmarks: `TIMESTEP_BENCH_PG_URL` (a server whose user may create databases), else
    a throwaway cluster, removed afterwards."""
    external = os.environ.get(BENCH_PG_URL_ENV, "").strip()
    if external:
        yield external
        return
    with PostgresCluster() as cluster:
        yield cluster.url
