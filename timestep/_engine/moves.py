"""Moving a run to another version of its agent: the verdict on one run, and the move.

A run is on one version, the fingerprint of the graph it records (`versions`). A process whose
registered graph for the run's agent differs may take the run over when the run is compatible
with it (`versions.incompatibilities`) and not pinned: the run then records the new graph, a
`VersionMove`, and its queued continuation moves to the new version's queue, in one
transaction. Otherwise nothing changes and the caller is told exactly why.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import IncompatibleVersionError
from ..state import records
from ..state.run_record import RunRecord, version_id
from ..state.storage import storage_engine
from . import registry, versions
from .naming import segment_workflow_id

if TYPE_CHECKING:
    from agents import Agent


@dataclass(frozen=True)
class Verdict:
    """Whether run `run_id` may go on under another version of its agent, and why not."""

    run_id: str
    status: str
    version: str
    """The run's graph fingerprint."""
    label: str | None
    to_version: str
    """The fingerprint of the graph it was judged against."""
    to_label: str | None
    problems: list[str]
    """Every incompatibility (empty when compatible)."""
    pinned: bool

    @property
    def same(self) -> bool:
        return self.version == self.to_version

    @property
    def movable(self) -> bool:
        return not self.same and not self.pinned and not self.problems and not self.finished

    @property
    def finished(self) -> bool:
        return self.status == "completed"

    def describe(self) -> str:
        """One line for a person: what would happen to the run, and why."""
        here = version_id(self.version, self.label)
        there = version_id(self.to_version, self.to_label)
        if self.same:
            return f"already on {here}"
        if self.problems:
            return f"incompatible with {there}: " + "; ".join(self.problems)
        if self.pinned:
            return f"pinned to {here}; compatible with {there}"
        if self.finished:
            return f"completed on {here}; nothing to move"
        return f"compatible: moves from {here} to {there}"

    def refusal(self) -> IncompatibleVersionError:
        return IncompatibleVersionError(
            self.run_id,
            version_id(self.version, self.label),
            version_id(self.to_version, self.to_label),
            self.problems,
            pinned=self.pinned,
        )


def judge(record: RunRecord, agent: Agent[Any]) -> tuple[Verdict, dict[str, Any]]:
    """The verdict on `record` under `agent`'s graph, and that graph (a blocking call: it may
    read the run's state)."""
    graph = registry.describe_graph(agent)
    fingerprint = registry.fingerprint(graph)
    problems: list[str] = []
    if fingerprint != record.fingerprint:
        state = records.load_state(storage_engine(), record.run_id)
        problems = versions.incompatibilities(record.graph, graph, state, record.pending_approvals)
    label = registry.version_of(agent.name)
    verdict = Verdict(
        run_id=record.run_id,
        status=record.status,
        version=record.fingerprint,
        label=record.version_label,
        to_version=fingerprint,
        to_label=label[1] if label is not None and label[0] == fingerprint else None,
        problems=problems,
        pinned=record.pinned,
    )
    return verdict, graph


def move(record: RunRecord, verdict: Verdict, graph: dict[str, Any]) -> bool:
    """Move a run judged movable to the verdict's version (a blocking call); False when a
    process of its old version took its continuation meanwhile, or another caller moved it."""
    from .queues import queue_mover

    parked = record.status == "awaiting_approval"
    # A parked run's next segment exists only when an approval deadline queued it, delayed.
    next_segment = record.segment + 1 if parked else record.segment
    mover = queue_mover(
        segment_workflow_id(record.run_id, next_segment),
        record.agent_name,
        verdict.to_version,
        required=record.status == "running",
    )
    return records.move_version(
        storage_engine(),
        record.run_id,
        record.fingerprint,
        graph,
        verdict.to_version,
        verdict.to_label,
        mover,
    )


def adopt_version(record: RunRecord, agent: Agent[Any]) -> RunRecord:
    """The run, ready to go on under `agent` in this process (a blocking call).

    The same version: the record as it is. A compatible, unpinned run: moved to this version
    (unless a process of its version has taken its continuation already: that process finishes
    it, and the caller waits for it). Otherwise `IncompatibleVersionError` naming every
    incompatibility, with nothing changed.
    """
    verdict, graph = judge(record, agent)
    if verdict.same or (verdict.finished and not verdict.problems):
        return record
    if verdict.pinned or verdict.problems:
        raise verdict.refusal()
    move(record, verdict, graph)
    return records.get(storage_engine(), record.run_id)


async def adopt_version_async(record: RunRecord, agent: Agent[Any]) -> RunRecord:
    if registry.version_of(agent.name) == (record.fingerprint, record.version_label):
        return record  # the common case: no thread hop
    return await asyncio.to_thread(adopt_version, record, agent)
