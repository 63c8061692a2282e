"""Timestep's own tables, beside DBOS's system tables in the same database, and their migrations.

Every column holding structured data is JSON text: nothing in the database is pickled.
Migrations are numbered and applied in order, each once, under a lock so that several processes
starting together do not race.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import sqlalchemy as sa

metadata = sa.MetaData()

runs = sa.Table(
    "timestep_runs",
    metadata,
    sa.Column("run_id", sa.String(255), primary_key=True),
    sa.Column("agent_name", sa.Text, nullable=False),
    sa.Column("graph", sa.Text, nullable=False),  # JSON: the agent graph description
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("segment", sa.Integer, nullable=False, server_default="1"),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("usage", sa.Text),  # JSON: cumulative usage of the run
    sa.Column("final_output", sa.Text),  # JSON
    sa.Column("state", sa.Text),  # JSON: latest RunState (schema of the pinned SDK)
    sa.Column("pending", sa.Text),  # JSON: pending approvals
    sa.Column("error", sa.Text),
    sa.Column("streamed", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("approval_timeout", sa.Float),  # seconds a parked segment waits for decisions
    sa.Column("models", sa.Text),  # JSON: the model names chosen when the run started
    sa.Column("input_hash", sa.String(64)),  # sha256 of the input the run was started with
    sa.Column("model_usage", sa.Text),  # JSON: {segment: {model name: usage}}
    sa.Column("version_label", sa.Text),  # the label of the agent version the run is on
    sa.Column("version_moves", sa.Text),  # JSON: [{from, to, segment, at, ...}] (versions.py)
    sa.Column("pinned", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("app_module", sa.Text),  # the module the agent was registered from, if known
)
sa.Index("timestep_runs_status", runs.c.status, runs.c.updated_at)

decisions = sa.Table(
    "timestep_decisions",
    metadata,
    sa.Column("run_id", sa.String(255), primary_key=True),
    sa.Column("segment", sa.Integer, primary_key=True),
    sa.Column("call_id", sa.String(255), primary_key=True),
    sa.Column("tool_name", sa.Text, nullable=False),
    sa.Column("decision", sa.String(16), nullable=False),  # "approve" | "reject"
    sa.Column("always", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("message", sa.Text),
    sa.Column("decided_at", sa.Float, nullable=False),
)

states = sa.Table(
    "timestep_states",
    metadata,
    sa.Column("key", sa.String(512), primary_key=True),
    sa.Column("agent_name", sa.Text, nullable=False),
    sa.Column("state", sa.Text, nullable=False),  # JSON: RunState.to_json()
    sa.Column("updated_at", sa.Float, nullable=False),
)

parked_states = sa.Table(
    "timestep_parked_states",
    metadata,
    sa.Column("run_id", sa.String(255), primary_key=True),
    sa.Column("segment", sa.Integer, primary_key=True),  # the segment that parked with it
    # The parked state of `base_segment` (NULL: none) this one changes; JSON: compact.diff of
    # the packed states.
    sa.Column("base_segment", sa.Integer),
    sa.Column("change", sa.Text, nullable=False),
)

owners = sa.Table(
    "timestep_owners",
    metadata,
    sa.Column("executor_id", sa.String(255), primary_key=True),
    sa.Column("instance", sa.String(64), nullable=False),  # this start of the process
    sa.Column("host", sa.Text, nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("identity", sa.Text, nullable=False),  # JSON: how a peer on this host checks the pid
    sa.Column("agents", sa.Text, nullable=False),  # JSON: agent names registered there
    sa.Column("lease_seconds", sa.Float, nullable=False),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("heartbeat_at", sa.Float, nullable=False),
    sa.Column("stopped_at", sa.Float),  # a clean shutdown
)

claims = sa.Table(
    "timestep_claims",
    metadata,
    sa.Column("workflow_id", sa.String(512), primary_key=True),
    sa.Column("from_executor", sa.String(255), primary_key=True),  # the dead owner
    sa.Column("claimed_by", sa.String(255), nullable=False),
    sa.Column("epoch", sa.Integer, nullable=False),  # bumped by each re-claim
    sa.Column("claimed_at", sa.Float, nullable=False),
    sa.Column("moved_to", sa.Text),  # the DBOS queue the workflow was resumed on
)

schema_migrations = sa.Table(
    "timestep_schema_migrations",
    sa.MetaData(),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("applied_at", sa.Float, nullable=False),
)


def _v1_initial(connection: sa.Connection) -> None:
    metadata.create_all(connection, tables=[runs, decisions, states])


def _v2_ownership(connection: sa.Connection) -> None:
    metadata.create_all(connection, tables=[owners, claims])


def _add_run_column(connection: sa.Connection, name: str, sql_type: str) -> None:
    # A database created after this column was added already has it (v1 creates the table as
    # defined now).
    columns = {column["name"] for column in sa.inspect(connection).get_columns("timestep_runs")}
    if name not in columns:
        connection.execute(sa.text(f"ALTER TABLE timestep_runs ADD COLUMN {name} {sql_type}"))


def _v3_run_models(connection: sa.Connection) -> None:
    _add_run_column(connection, "models", "TEXT")


def _v4_input_hash(connection: sa.Connection) -> None:
    _add_run_column(connection, "input_hash", "VARCHAR(64)")


def _v5_model_usage(connection: sa.Connection) -> None:
    _add_run_column(connection, "model_usage", "TEXT")


def _v6_parked_states(connection: sa.Connection) -> None:
    metadata.create_all(connection, tables=[parked_states])


def _v7_agent_versions(connection: sa.Connection) -> None:
    _add_run_column(connection, "version_label", "TEXT")
    _add_run_column(connection, "version_moves", "TEXT")
    _add_run_column(connection, "pinned", "BOOLEAN NOT NULL DEFAULT FALSE")


def _v8_app_module(connection: sa.Connection) -> None:
    _add_run_column(connection, "app_module", "TEXT")


MIGRATIONS: list[tuple[int, Callable[[sa.Connection], None]]] = [
    (1, _v1_initial),
    (2, _v2_ownership),
    (3, _v3_run_models),
    (4, _v4_input_hash),
    (5, _v5_model_usage),
    (6, _v6_parked_states),
    (7, _v7_agent_versions),
    (8, _v8_app_module),
]
"""(version, apply) pairs in order. Append new ones; never edit an applied migration."""


def migrate(engine: sa.Engine) -> int:
    """Apply pending migrations; returns the schema version now in force.

    Safe to call from several processes at once: on PostgreSQL an advisory lock serialises the
    migrators; on SQLite a migrator that loses the race to create a table sees the winner's
    migration recorded when it tries again.
    """
    for attempt in range(3):
        try:
            _migrate_once(engine)
            break
        except (sa.exc.OperationalError, sa.exc.IntegrityError, sa.exc.ProgrammingError):
            if attempt == 2:
                raise
    return MIGRATIONS[-1][0]


def _migrate_once(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(774411001)"))
        schema_migrations.create(connection, checkfirst=True)
        applied = set(connection.execute(sa.select(schema_migrations.c.version)).scalars())
        for version, apply in MIGRATIONS:
            if version in applied:
                continue
            apply(connection)
            connection.execute(
                schema_migrations.insert().values(version=version, applied_at=time.time())
            )
