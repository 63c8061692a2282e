"""The run record's per-segment model usage, merged into the stored JSON by the outcome's
UPDATE itself (no read first). SQLite and PostgreSQL."""

from __future__ import annotations

import json

import sqlalchemy as sa

from timestep.state import records
from timestep.state.schema import runs
from timestep.state.storage import storage_engine


def _stored_usage(engine: sa.Engine, run_id: str) -> dict[str, object]:
    with engine.connect() as connection:
        text = connection.execute(
            sa.select(runs.c.model_usage).where(runs.c.run_id == run_id)
        ).scalar_one()
    return json.loads(text) if text else {}


def test_segment_usage_is_merged_per_segment_and_guarded_by_the_segment(
    timestep_db: str,
) -> None:
    engine = storage_engine()
    records.create_or_find(engine, "usage-1", "Agent", {"start": "Agent"}, "f" * 64)
    one = {"m-a": records.ModelUsage(2, 20, 10, 30)}
    records.write_outcome(
        engine, "usage-1", 1, records.SegmentOutcome(status="awaiting_approval", segment_usage=one)
    )
    assert _stored_usage(engine, "usage-1") == {"1": {"m-a": one["m-a"].as_dict()}}

    # A replay of segment 1 recounts the same calls: the segment's entry is replaced.
    records.write_outcome(
        engine, "usage-1", 1, records.SegmentOutcome(status="awaiting_approval", segment_usage=one)
    )
    assert records.advance_segment(engine, "usage-1", 1)
    two = {"m-a": records.ModelUsage(1, 5, 5, 10), 'm "b"': records.ModelUsage(1, 1, 1, 2)}
    records.write_outcome(
        engine, "usage-1", 2, records.SegmentOutcome(status="completed", segment_usage=two)
    )
    # A stale write for a segment the run has moved past changes nothing.
    records.write_outcome(
        engine,
        "usage-1",
        1,
        records.SegmentOutcome(
            status="failed", segment_usage={"x": records.ModelUsage(9, 9, 9, 9)}
        ),
    )

    record = records.get(engine, "usage-1")
    assert record.status == "completed"
    assert _stored_usage(engine, "usage-1") == {
        "1": {"m-a": one["m-a"].as_dict()},
        "2": {name: usage.as_dict() for name, usage in two.items()},
    }
    assert record.usage_by_model == {
        "m-a": records.ModelUsage(3, 25, 15, 40),
        'm "b"': records.ModelUsage(1, 1, 1, 2),
    }


def test_a_forks_inherited_usage_is_kept_when_its_segment_records(timestep_db: str) -> None:
    engine = storage_engine()
    records.create_or_find(engine, "orig", "Agent", {"start": "Agent"}, "f" * 64)
    records.write_outcome(
        engine,
        "orig",
        1,
        records.SegmentOutcome(
            status="completed", segment_usage={"m": records.ModelUsage(1, 1, 1, 2)}
        ),
    )
    original = records.get(engine, "orig")
    assert records.create_fork(
        engine,
        original,
        "branch",
        None,
        from_segment=2,
        version=records.RunVersion(original.graph, original.fingerprint),
    )
    records.write_outcome(
        engine,
        "branch",
        1,
        records.SegmentOutcome(
            status="completed", segment_usage={"n": records.ModelUsage(1, 2, 3, 5)}
        ),
    )
    assert records.get(engine, "branch").usage_by_model == {
        "m": records.ModelUsage(1, 1, 1, 2),
        "n": records.ModelUsage(1, 2, 3, 5),
    }


def test_a_version_move_is_one_guarded_transaction(timestep_db: str) -> None:
    """A run moves once from the version it is on, never when pinned, and not at all when its
    queued continuation could not move with it (a process of its version took it)."""
    engine = storage_engine()
    records.create_or_find(
        engine, "v-1", "Agent", {"start": "Agent"}, "a" * 64, version_label="one"
    )
    new_graph = {"start": "Agent", "agents": {}}
    assert not records.move_version(
        engine, "v-1", "a" * 64, new_graph, "b" * 64, "two", lambda c: False
    )
    assert records.get(engine, "v-1").fingerprint == "a" * 64
    records.set_pinned(engine, "v-1", True)
    assert not records.move_version(engine, "v-1", "a" * 64, new_graph, "b" * 64, "two")
    records.set_pinned(engine, "v-1", False)
    assert records.move_version(engine, "v-1", "a" * 64, new_graph, "b" * 64, "two", lambda c: True)
    assert not records.move_version(engine, "v-1", "a" * 64, new_graph, "c" * 64, "three")
    moved = records.get(engine, "v-1")
    assert (moved.fingerprint, moved.graph, moved.version_label) == ("b" * 64, new_graph, "two")
    (move,) = moved.version_moves
    assert (move.from_version, move.from_label, move.to_label, move.segment) == (
        "a" * 64,
        "one",
        "two",
        1,
    )
