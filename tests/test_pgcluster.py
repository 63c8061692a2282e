"""The throwaway PostgreSQL cluster and the database fixtures."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
import uuid
from pathlib import Path

import psycopg
import pytest

from tests import pgcluster
from tests.pgcluster import (
    PostgresBinariesNotFound,
    PostgresCluster,
    PostgresClusterError,
    create_database,
    drop_database,
    find_pg_binaries,
    normalize_url,
    url_with_database,
)

ROOT = Path(__file__).resolve().parent.parent


def _uid_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])  # real uid
    raise AssertionError(f"no Uid line for pid {pid}")


def _port_open(port: int) -> bool:
    return pgcluster._port_open(port)


def test_find_pg_binaries() -> None:
    b = find_pg_binaries()
    for exe in (b.initdb, b.pg_ctl, b.postgres):
        assert exe.is_file() and os.access(exe, os.X_OK)
        assert exe.parent == b.bindir
    assert b.major >= 13


def test_missing_binaries_raise_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(pgcluster, "_DEBIAN_GLOB", "/nonexistent/postgresql/*/bin")
    with pytest.raises(PostgresBinariesNotFound, match="initdb, pg_ctl, postgres"):
        find_pg_binaries()
    with pytest.raises(PostgresBinariesNotFound):
        PostgresCluster().start()


def test_roundtrip(postgres_url: str) -> None:
    assert postgres_url.startswith("postgresql://")
    with psycopg.connect(postgres_url) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, v text NOT NULL)")
        conn.execute("INSERT INTO t VALUES (1, 'one'), (2, 'two')")
        conn.commit()
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT id, v FROM t ORDER BY id").fetchall() == [
            (1, "one"),
            (2, "two"),
        ]
        # The suite's own cluster skips fsync (tests/conftest.py); an external server is as is.
        if not os.environ.get("TIMESTEP_TEST_DB_URL", "").strip():
            assert conn.execute("SHOW fsync").fetchone() == ("off",)


def test_fresh_databases_are_isolated(postgres_url: str, postgres_cluster_url: str) -> None:
    name = f"timestep_test_iso_{uuid.uuid4().hex[:12]}"
    other = create_database(postgres_cluster_url, name)
    try:
        assert other != postgres_url
        with psycopg.connect(postgres_url, autocommit=True) as a:
            a.execute("CREATE TABLE only_in_a (x int)")
            a.execute("INSERT INTO only_in_a VALUES (1)")
        with psycopg.connect(other, autocommit=True) as b:
            row = b.execute("SELECT to_regclass('public.only_in_a')").fetchone()
            assert row == (None,)
            b.execute("CREATE TABLE only_in_a (x int)")  # same name, no clash
            assert b.execute("SELECT count(*) FROM only_in_a").fetchone() == (0,)
    finally:
        drop_database(postgres_cluster_url, name)


def test_database_url_fixture(database_url: str, request: pytest.FixtureRequest) -> None:
    param = request.node.callspec.params["database_url"]
    if param == "sqlite":
        assert database_url.startswith("sqlite:////")
        assert database_url.endswith("/timestep.sqlite")
        assert Path(database_url.removeprefix("sqlite:///")).parent.is_dir()
    else:
        assert param == "postgres"
        with psycopg.connect(database_url) as conn:
            tables = conn.execute(
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
            ).fetchone()
            assert tables == (0,)  # fresh and empty


def test_url_helpers() -> None:
    assert normalize_url("postgresql+psycopg://u@h:1/db?x=1") == "postgresql://u@h:1/db?x=1"
    assert normalize_url("postgres://u@h/db") == "postgresql://u@h/db"
    assert url_with_database("postgresql+psycopg://u:p@h:5/postgres?sslmode=disable", "x") == (
        "postgresql://u:p@h:5/x?sslmode=disable"
    )
    with pytest.raises(ValueError):
        normalize_url("sqlite:///x")
    with pytest.raises(ValueError):
        create_database("postgresql://u@h/db", "Bad-Name; DROP")


def test_standalone_cluster_lifecycle() -> None:
    with PostgresCluster() as pg:
        base, port, pid = pg.base_dir, pg.port, pg.pid
        assert base is not None and port is not None and pid is not None
        assert pg.url == f"postgresql://postgres@127.0.0.1:{port}/postgres"
        assert pg.socket_dir.parent == base and pg.data_dir.parent == base
        if os.geteuid() == 0:
            assert _uid_of(pid) != 0, "postgres must not run as root"
            assert pg.data_dir.stat().st_uid == _uid_of(pid)
        with psycopg.connect(pg.url) as conn:
            settings: dict[str, str] = dict(
                conn.execute(
                    "SELECT name, setting FROM pg_settings WHERE name IN "
                    "('fsync', 'max_connections', 'listen_addresses', 'unix_socket_directories')"
                ).fetchall()
            )
        assert settings == {
            "fsync": "on",
            "max_connections": "200",
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(pg.socket_dir),
        }
        url = pg.create_database("lifecycle")
        assert url == f"postgresql://postgres@127.0.0.1:{port}/lifecycle"
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == ("lifecycle",)
        assert _port_open(port)
    assert not base.exists(), "temp dir must be deleted"
    assert not _port_open(port), "port must be closed"
    assert not pgcluster._pid_alive(pid), "postmaster must be gone"
    assert not pg.running
    pg.stop()  # idempotent


def test_failed_start_cleans_up(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[Path] = []
    real_mkdtemp = tempfile.mkdtemp

    def recording_mkdtemp(
        suffix: str | None = None, prefix: str | None = None, dir: str | None = None
    ) -> str:
        path = real_mkdtemp(suffix, prefix, dir)
        made.append(Path(path))
        return path

    monkeypatch.setattr(pgcluster.tempfile, "mkdtemp", recording_mkdtemp)
    pg = PostgresCluster(settings={"shared_buffers": "'not a size'"})
    with pytest.raises(PostgresClusterError, match="pg_ctl start failed"):
        pg.start()
    assert len(made) == 1 and not made[0].exists()
    assert pg.base_dir is None and not pg.running


_PROBE_TEST = """
def test_needs_postgres(postgres_url):
    pass
"""


@pytest.mark.processes
@pytest.mark.parametrize("ci", ["true", ""])
def test_unavailable_postgres_fails_under_ci_skips_otherwise(tmp_path: Path, ci: str) -> None:
    """An unreachable TIMESTEP_TEST_DB_URL is a failure under CI=true and a skip otherwise."""
    (tmp_path / "test_probe.py").write_text(textwrap.dedent(_PROBE_TEST))
    closed_port = pgcluster.free_port()  # nothing listens there
    env = {k: v for k, v in os.environ.items() if k not in {"CI", "PYTEST_ADDOPTS"}}
    env.update(
        CI=ci,
        TIMESTEP_TEST_DB_URL=f"postgresql://postgres@127.0.0.1:{closed_port}/postgres",
        PYTHONPATH=str(ROOT),
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "tests.conftest",
            "--rootdir",
            str(tmp_path),
            "-c",
            os.devnull,
            "-rs",
            str(tmp_path / "test_probe.py"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = proc.stdout + proc.stderr
    if ci:
        assert proc.returncode == 1, out
        assert "1 error" in out and "CI is set: a missing component is a failure" in out, out
    else:
        assert proc.returncode == 0, out
        assert "1 skipped" in out and "cannot reach TIMESTEP_TEST_DB_URL" in out, out
