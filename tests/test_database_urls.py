"""Database URLs: a password is never shown, and the database name never changes a statement."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import pytest
from agents import Agent, RunState
from agents.run_context import RunContextWrapper
from psycopg import sql

import timestep
from timestep import store as store_module
from timestep.state.database import (
    ensure_postgres_database,
    masked_url,
    parse_database_url,
)

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "Pa55-w0rd-never-shown"


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://postgres:{PASSWORD}@127.0.0.1:5432/db",
        f"postgresql+psycopg://postgres:{PASSWORD}@db.example/timestep?sslmode=require",
        f"postgresql://postgres:{PASSWORD}@127.0.0.1:notaport/db",  # SQLAlchemy cannot parse it
        f"mysql://root:{PASSWORD}@h/db",
    ],
)
def test_masked_url_hides_the_password(url: str) -> None:
    shown = masked_url(url)
    assert PASSWORD not in shown
    assert ":***@" in shown


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://postgres:{PASSWORD}@127.0.0.1:notaport/db",
        f"postgresql://postgres:{PASSWORD}@127.0.0.1",
        f"mysql://root:{PASSWORD}@h/db",
        f"{PASSWORD}@localhost",
    ],
)
def test_url_errors_name_no_password(url: str) -> None:
    with pytest.raises(timestep.ConfigurationError) as caught:
        parse_database_url(url)
    error = caught.value
    chained = [str(error), str(error.__cause__), str(error.__context__)]
    assert all(PASSWORD not in text for text in chained), chained


def test_target_repr_holds_no_password() -> None:
    target = parse_database_url(f"postgresql://postgres:{PASSWORD}@127.0.0.1:5432/db")
    assert PASSWORD not in repr(target)
    assert PASSWORD in target.url  # still usable for connecting


@pytest.mark.parametrize(
    "url_form",
    [
        "postgresql://postgres:{pw}@127.0.0.1:{port}/timestep",  # unreachable server
        "postgresql://postgres:{pw}@127.0.0.1:{port}",  # no database named
        "postgresql://postgres:{pw}@127.0.0.1:port{port}/timestep",
    ],  # a port that is no number
)
@pytest.mark.processes
@pytest.mark.parametrize("command", [["runs", "list"], ["approve", "r-1"]])
def test_cli_prints_no_password(url_form: str, command: list[str]) -> None:
    url = url_form.format(pw=PASSWORD, port=_closed_port())
    done = subprocess.run(
        [sys.executable, "-m", "timestep.cli", "--db", url, *command],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("timestep: error: "), done.stderr
    assert PASSWORD not in done.stderr + done.stdout


async def test_create_database_quotes_the_name(postgres_cluster_url: str) -> None:
    """A database name with a quote and a semicolon is created under exactly that name."""
    name = f'we"ird; DROP DATABASE postgres; -- {uuid.uuid4().hex[:6]}'
    parts = urlsplit(postgres_cluster_url)
    url = urlunsplit(parts._replace(path="/" + quote(name, safe="")))
    target = parse_database_url(url)
    try:
        ensure_postgres_database(target)
        ensure_postgres_database(target)  # exists now: nothing to do
        with psycopg.connect(postgres_cluster_url, autocommit=True) as connection:
            names = {row[0] for row in connection.execute("SELECT datname FROM pg_database")}
        assert name in names
        assert "postgres" in names
        # The database is usable: Timestep's own tables go into it.
        store = timestep.RunStateStore(Agent(name="A"), session_id="s", connection_string=url)
        state = RunState(
            context=RunContextWrapper(context=None),
            original_input="hello",
            starting_agent=store.agent,
            max_turns=3,
        )
        await store.save(state)
        assert (await store.load()).to_json()["original_input"] == "hello"
    finally:
        store_module.dispose_engines()
        with psycopg.connect(postgres_cluster_url, autocommit=True) as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
