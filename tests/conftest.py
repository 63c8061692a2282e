"""Shared test infrastructure: database fixtures (no library-specific logic here), and the
`processes` marker (tests that start processes run first; `-m "not processes"` skips them).

Fixtures:

* ``postgres_cluster_url`` (session): URL of a PostgreSQL server whose user may
  CREATE DATABASE. ``TIMESTEP_TEST_DB_URL`` when set, else a throwaway cluster
  started by ``tests.pgcluster.PostgresCluster``. When Postgres cannot be
  provided: ``pytest.fail`` under ``CI=true``, ``pytest.skip`` otherwise.
* ``database_url`` (function, parametrized ``sqlite`` / ``postgres``):
  ``sqlite:///<tmp_path>/timestep.sqlite`` or a fresh, empty PostgreSQL database
  (``postgresql://...``).
* ``postgres_url`` (function): a fresh, empty PostgreSQL database only.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:  # `pytest` (not `python -m pytest`) does not add the cwd
    sys.path.insert(0, str(_ROOT))

from tests.components import unavailable  # noqa: E402  (the one CI rule)
from tests.pgcluster import (  # noqa: E402
    PostgresCluster,
    PostgresClusterError,
    create_database,
    drop_database,
    normalize_url,
)

# The fake Ollama server's fixtures (local_ollama, cloud_ollama, ollama_env), for every module.
pytest_plugins = ["tests.fake_ollama"]

TEST_DB_URL_ENV = "TIMESTEP_TEST_DB_URL"


class _PostgresServer:
    """The session's Postgres server and the databases created on it."""

    def __init__(self, url: str, external: bool) -> None:
        self.url = url
        self.external = external
        self.created: list[str] = []

    def fresh_database(self) -> str:
        name = f"timestep_test_{os.getpid()}_{uuid.uuid4().hex[:12]}"
        url = create_database(self.url, name)
        self.created.append(name)
        return url


@pytest.fixture(scope="session")
def _postgres_server() -> Iterator[_PostgresServer]:
    external = os.environ.get(TEST_DB_URL_ENV, "").strip()
    if external:
        try:
            server = _PostgresServer(normalize_url(external), external=True)
        except ValueError as exc:
            pytest.fail(f"{TEST_DB_URL_ENV} is invalid: {exc}", pytrace=False)
        try:
            psycopg.connect(server.url, connect_timeout=10).close()
        except psycopg.OperationalError as exc:
            unavailable(f"cannot reach {TEST_DB_URL_ENV} ({server.url}): {exc}")
        yield server
        for name in server.created:
            try:
                drop_database(server.url, name)
            except Exception as exc:  # cleanup must not mask the test results
                print(f"warning: could not drop test database {name}: {exc}", file=sys.stderr)
        return

    cluster = start_cluster(fsync=False)
    try:
        yield _PostgresServer(cluster.url, external=False)
    finally:
        cluster.stop()  # deletes the whole cluster, databases included


def start_cluster(*, fsync: bool = True) -> PostgresCluster:
    """A throwaway PostgreSQL cluster, started (skip locally, fail under CI, when impossible).

    The suite's shared cluster runs with `fsync = off`: a commit still reaches the kernel before
    it returns, so every crash a test makes (of a client process, or of the server itself) loses
    nothing; only an OS crash could, which no test makes. A commit then costs about 0.5 ms
    instead of 8 ms on this machine's disk (measured under load). Benchmarks keep fsync on.
    """
    cluster = PostgresCluster(settings={} if fsync else {"fsync": "off"})
    try:
        cluster.start()
    except PostgresClusterError as exc:
        cluster.stop()
        unavailable(f"PostgreSQL is not available: {exc}")
    return cluster


@pytest.fixture(scope="session")
def postgres_cluster_url(_postgres_server: _PostgresServer) -> str:
    """A server URL (``postgresql://user@host:port/db``) whose user may CREATE DATABASE."""
    return _postgres_server.url


def _fresh_postgres_database(request: pytest.FixtureRequest) -> str:
    server: _PostgresServer = request.getfixturevalue("_postgres_server")
    if not server.external:
        return server.fresh_database()  # our own cluster: any error is a real failure
    try:
        return server.fresh_database()
    except psycopg.OperationalError as exc:  # external server unreachable
        unavailable(f"cannot reach {TEST_DB_URL_ENV} ({server.url}): {exc}")
        raise  # unreachable: unavailable() always raises


@pytest.fixture(params=["sqlite", "postgres"], ids=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database: ``sqlite:///<tmp>/timestep.sqlite`` or ``postgresql://...``."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/timestep.sqlite"
    return _fresh_postgres_database(request)


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest) -> str:
    """A fresh, empty PostgreSQL database URL (``postgresql://...``)."""
    return _fresh_postgres_database(request)


@pytest.fixture
def timestep_db(database_url: str) -> Iterator[str]:
    """Timestep configured on a fresh database (SQLite and PostgreSQL), reset afterwards."""
    import timestep
    from timestep._engine import launch

    launch.reset_for_tests()
    timestep.configure(database_url=database_url)
    yield database_url
    launch.reset_for_tests()


PROCESS_MODULES = {
    "tests.test_approvals",
    "tests.test_benchmarks",
    "tests.test_cli",
    "tests.test_crash_recovery",
    "tests.test_database_restart",
    "tests.test_models_durable",
    "tests.test_ownership",
    "tests.test_streaming",
    "tests.test_web_browser",
    "tests.test_web_live",
    "tests.interop.test_cli_handover",
    "tests.interop.test_pglite_import",
    "tests.interop.test_typescript_interop",
}
"""Modules whose tests start processes (the CLI, workers, crash children, Node, a browser), a
few in-process tests among them included; elsewhere such a test is marked `processes` itself."""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "processes: the test starts processes (CLI, workers, crash children, Node, a browser)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the tests of PROCESS_MODULES `processes`, and run every `processes` test first.

    They are the long ones: started first, the two xdist workers share them and finish on
    short in-process tests together, instead of one worker idling while the other runs a
    long test at the end. The order within each group stays the collection order.
    """
    for item in items:
        module = getattr(item, "module", None)
        if module is not None and module.__name__ in PROCESS_MODULES:
            item.add_marker(pytest.mark.processes)
    items.sort(key=lambda item: item.get_closest_marker("processes") is None)


_STARTED = pytest.StashKey[float]()


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_STARTED] = time.time()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Name the folder where the browser tests saved this run's screenshots of the inbox page
    (tests/test_web_browser.py), so that a person can look at them."""
    from tests.test_web_browser import SCREENSHOTS

    started = config.stash.get(_STARTED, 0.0)
    saved = sorted(p.name for p in SCREENSHOTS.glob("*.png") if p.stat().st_mtime >= started)
    if saved:
        terminalreporter.write_line(
            f"inbox page screenshots ({len(saved)}): {SCREENSHOTS} ({', '.join(saved)})"
        )
