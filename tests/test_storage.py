"""What a run stores grows with its turns, not with its stops: the state a run parks with is kept
as its change from the previous stop, and rebuilt exactly. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import random
import time
from typing import Any

import pytest
import sqlalchemy as sa
from agents import Agent, function_tool

import timestep
import timestep._engine as timestep_engine
from timestep.state import compact, records
from timestep.state.schema import decisions, parked_states, runs
from timestep.state.storage import storage_engine

from .helpers import TurnModel


def _random_json(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.choice(["dict", "list", "str", "int", "none"] if depth < 4 else ["str", "int"])
    if kind == "dict":
        return {
            f"k{rng.randrange(6)}": _random_json(rng, depth + 1) for _ in range(rng.randrange(5))
        }
    if kind == "list":
        return [_random_json(rng, depth + 1) for _ in range(rng.randrange(5))]
    if kind == "str":
        return rng.choice(["a", "b", "$set", "x" * rng.randrange(3)])
    return rng.randrange(3) if kind == "int" else None


def _changed(rng: random.Random, value: Any) -> Any:
    """`value` with some parts replaced, dropped or appended to."""
    if isinstance(value, dict):
        out = {k: _changed(rng, v) for k, v in value.items() if rng.random() > 0.2}
        if rng.random() < 0.3:
            out["new"] = _random_json(rng, 3)
        return out
    if isinstance(value, list):
        out = [_changed(rng, v) if rng.random() < 0.3 else v for v in value]
        return out[: rng.randrange(len(out) + 1)] + [_random_json(rng, 3)] * rng.randrange(3)
    return _random_json(rng, 4) if rng.random() < 0.3 else value


def test_diff_and_patch_rebuild_any_json_value() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        old = _random_json(rng)
        new = _changed(rng, old)
        change = compact.diff(old, new)
        assert compact.patch(old, json.loads(json.dumps(change))) == new


def _reader(turns: int, stops: bool) -> Agent[Any]:
    @function_tool(needs_approval=stops)
    def fetch(page: int) -> str:
        """Fetch a page of about 2 KB."""
        return f"page {page}: " + "lorem ipsum " * 170

    script = [[("fetch", {"page": k})] for k in range(turns)]
    return Agent(name="Reader", model=TurnModel(script, final="read"), tools=[fetch])


async def _read(run_id: str, turns: int, stops: bool) -> list[dict[str, Any]]:
    """Run the reader to its end, approving at every stop; the states it parked with."""
    engine = storage_engine()
    parked = []
    result = await timestep.run_agent(_reader(turns, stops), "read", run_id=run_id, max_turns=99)
    while result.interruptions:
        parked.append(records.load_state(engine, run_id))
        await timestep.approve(run_id)
        result = await timestep.resume(run_id)
    assert result.final_output == "read"
    return parked


def _stored_bytes(run_id: str) -> int:
    """Bytes of the run's row, its kept parked states and its DBOS step outputs."""
    engine = storage_engine()
    with engine.connect() as connection:
        row = connection.execute(sa.select(runs).where(runs.c.run_id == run_id)).one()
        total = sum(len(str(v)) for v in row if v is not None)
        total += connection.execute(
            sa.select(
                sa.func.coalesce(sa.func.sum(sa.func.length(parked_states.c.change)), 0)
            ).where(parked_states.c.run_id == run_id)
        ).scalar_one()
        steps = (
            "dbos.operation_outputs" if engine.dialect.name == "postgresql" else "operation_outputs"
        )
        total += connection.execute(
            sa.text(
                f"SELECT coalesce(sum(length(output)), 0) FROM {steps} "
                "WHERE workflow_uuid = :run OR workflow_uuid LIKE :segments"
            ),
            {"run": run_id, "segments": f"{run_id}:segment-%"},
        ).scalar_one()
    return int(total)


async def test_parked_states_are_kept_as_changes_rebuilt_exactly_and_grow_linearly(
    timestep_db: str,
) -> None:
    engine = storage_engine()
    short = await _read("short", 6, stops=True)
    long = await _read("long", 12, stops=True)
    # Every state the run parked with is rebuilt exactly, long after the run moved on.
    for segment, state in enumerate(long, start=1):
        assert records.parked_state(engine, "long", segment) == state
    with engine.connect() as connection:
        bases = connection.execute(
            sa.select(parked_states.c.segment, parked_states.c.base_segment)
            .where(parked_states.c.run_id == "long")
            .order_by(parked_states.c.segment)
        ).all()
    assert [tuple(b) for b in bases] == [(1, None)] + [(k, k - 1) for k in range(2, 13)]
    assert len(short) == 6
    # Twice the turns and stops store about twice the bytes: each stop stores what is new in it
    # (whole states at every stop would store about four times as much).
    assert _stored_bytes("long") < 2.4 * _stored_bytes("short")


async def test_prune_deletes_finished_runs_and_everything_of_them_but_no_parked_one(
    timestep_db: str, tmp_path: Any
) -> None:
    from .processes import cli, env_for

    engine = storage_engine()
    for run_id in ("done-1", "done-2"):
        await _read(run_id, 2, stops=True)  # two stops each: decisions and parked states
    parked = await timestep.run_agent(_reader(1, True), "read", run_id="parked", max_turns=9)
    assert parked.interruptions

    listed = cli(
        env_for(timestep_db, tmp_path / "log.jsonl"),
        *("runs", "prune", "--older-than", "0", "--dry-run", "--json"),
    )
    assert listed.returncode == 0, listed.stderr
    assert sorted(json.loads(listed.stdout)["runs"]) == ["done-1", "done-2"]
    assert (await timestep.get_run("done-1")).status == "completed"  # a dry run deletes nothing

    report = await timestep.prune_runs(0)
    assert sorted(report.deleted) == ["done-1", "done-2"]
    with engine.connect() as connection:
        for table in (runs, parked_states, decisions):
            left = connection.execute(
                sa.select(sa.func.count()).select_from(table).where(table.c.run_id != "parked")
            ).scalar_one()
            assert left == 0, table.name
    for run_id, segment in (("done-1", 1), ("done-1", 3), ("done-2", 2)):
        assert await timestep_engine.segment_status(run_id, segment) is None
    # The parked run is untouched: it is approved and finishes.
    await timestep.approve("parked")
    assert (await timestep.resume("parked")).final_output == "read"
    assert (await timestep.prune_runs(3600)).deleted == []  # nothing that old


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_worker_started_with_prune_older_than_prunes_finished_runs(
    timestep_db: str, tmp_path: Any
) -> None:
    from .processes import env_for, start_worker, stop

    await _read("old-1", 1, stops=False)
    worker = start_worker(
        env_for(timestep_db, tmp_path / "log.jsonl"),
        "tests.apps.mail_app",
        "--prune-older-than",
        "0",
    )
    try:
        deadline = time.time() + 60
        while await timestep.list_runs():
            assert time.time() < deadline, "the worker pruned nothing in 60 s"
            await asyncio.sleep(0.2)
    finally:
        code, err = stop(worker)
    assert code == 0, err
    assert "pruned 1 finished run(s)" in err
