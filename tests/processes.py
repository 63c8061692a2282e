"""Driving Timestep as a user does, in separate processes: the CLI and workers."""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from timestep.state import records
from timestep.state.database import create_engine, parse_database_url

from .pgcluster import free_port

ROOT = Path(__file__).resolve().parent.parent


def env_for(database_url: str, log: Path, **extra: str) -> dict[str, str]:
    """The environment of a child process: the database, the execution log, the repo on path."""
    return {
        **os.environ,
        "TIMESTEP_DB_URL": database_url,
        "TIMESTEP_TEST_LOG": str(log),
        "PYTHONPATH": str(ROOT),
        **extra,
    }


def run_module(
    env: dict[str, str], module: str, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`python -m MODULE ARGS...` from the repository root, run to its end, output captured."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@contextlib.contextmanager
def read_only_copy(source: Path) -> Iterator[tuple[Path, list[str]]]:
    """A read-only copy of the SQLite file `source`, alone in a read-only folder outside pytest's
    private (0700) directory, and the command prefix that runs a process as an unprivileged user
    when this one is root (as root every file is writable); removed afterwards."""
    shared = Path(tempfile.mkdtemp(prefix="timestep-ro-"))
    db = shared / "ro.sqlite"
    connection = sqlite3.connect(source)
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # everything in the main file
    connection.close()
    shutil.copy(source, db)
    db.chmod(0o444)
    shared.chmod(0o555)
    prefix = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    try:
        yield db, prefix if os.geteuid() == 0 else []
    finally:
        shared.chmod(0o755)
        shutil.rmtree(shared)


def cli(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return run_module(env, "timestep.cli", *args, timeout=timeout)


def start_stream_app(
    env: dict[str, str], database_url: str, log: Path, *, capture: bool = False
) -> subprocess.Popen[str]:
    """`tests/apps/stream_app.py` running the streamed run `s-1` (its final answer waits at the
    gate file `TIMESTEP_TEST_GATE` names in `env`, when set); with `capture`, its output is
    piped for `communicate()`."""
    output = subprocess.PIPE if capture else subprocess.DEVNULL
    return subprocess.Popen(
        [sys.executable, "-m", "tests.apps.stream_app", database_url, str(log), "s-1", "run"],
        cwd=ROOT,
        env=env,
        stdout=output,
        stderr=output,
        text=True,
    )


_stderr: dict[int, tuple[threading.Thread, list[str]]] = {}


def start_worker(env: dict[str, str], app: str, *args: str) -> subprocess.Popen[str]:
    """A worker process; its stderr is drained as it goes (a full pipe would block its logging)
    and returned by `stop`."""
    process = subprocess.Popen(
        [sys.executable, "-m", "workflows", "--app", app, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    assert process.stderr is not None
    thread = threading.Thread(target=lambda: lines.extend(process.stderr or ()), daemon=True)
    thread.start()
    _stderr[process.pid] = (thread, lines)
    return process


def stop(process: subprocess.Popen[str]) -> tuple[int, str]:
    """SIGTERM a worker and return its exit code and stderr."""
    process.send_signal(signal.SIGTERM)
    return finish_worker(process, timeout=60)


def finish_worker(process: subprocess.Popen[str], timeout: float) -> tuple[int, str]:
    """Wait for a worker to exit (killing it after `timeout`); its exit code and stderr."""
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    thread, lines = _stderr.pop(process.pid)
    thread.join(timeout=10)
    return process.returncode, "".join(lines)


@functools.cache
def _engine(database_url: str) -> sa.Engine:
    return create_engine(parse_database_url(database_url), pool_size=1)


def wait_for_status(
    database_url: str, run_id: str, wanted: str, timeout: float = 90
) -> dict[str, Any]:
    """Poll the run's record (read straight from the database) until it has status `wanted`."""
    deadline = time.time() + timeout
    record = records.find(_engine(database_url), run_id)
    while (record is None or record.status != wanted) and time.time() < deadline:
        assert record is None or record.status in ("running", "awaiting_approval"), record
        time.sleep(0.1)
        record = records.find(_engine(database_url), run_id)
    assert record is not None and record.status == wanted, f"{run_id} is not {wanted}: {record}"
    return record.as_dict()


def record_of(database_url: str, run_id: str) -> dict[str, Any]:
    """The run's record as `timestep runs show --json` prints it, read straight from the DB."""
    return records.get(_engine(database_url), run_id).as_dict()


def submit_runs(database_url: str, runs: dict[str, Any]) -> None:
    """Queue runs (run id -> agent, input "go") for workers with `timestep.submit`, from this
    process, which is left holding no database connection afterwards."""
    import asyncio

    import timestep
    from timestep._engine import launch

    async def submit_all() -> None:
        for run_id, agent in runs.items():
            await timestep.submit(agent, "go", run_id=run_id)

    launch.reset_for_tests()
    timestep.configure(database_url=database_url)
    try:
        asyncio.run(submit_all())
    finally:
        launch.reset_for_tests()


def start_serve(
    env: dict[str, str], *serve_args: str, verbose: bool = False, capture: bool = False
) -> tuple[subprocess.Popen[str], str]:
    """`timestep serve` on a free loopback port with `serve_args`, once it answers; returns the
    process and its base URL. With `capture`, stdout and stderr go to `process.stdout`."""
    url = f"http://127.0.0.1:{(port := free_port())}/"
    output = subprocess.PIPE if capture else subprocess.DEVNULL
    server = subprocess.Popen(
        [sys.executable, "-m", "timestep.cli", *(["-v"] if verbose else []), "serve"]
        + ["--port", str(port), *serve_args],
        cwd=ROOT,
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT if capture else subprocess.DEVNULL,
        text=True,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"timestep serve exited: {server.communicate()}")
        try:
            if httpx.get(url + "openapi.json", timeout=2).status_code == 200:
                return server, url
        except httpx.TransportError:
            time.sleep(0.1)
    server.kill()
    raise AssertionError(f"timestep serve did not answer at {url}: {server.communicate()}")
