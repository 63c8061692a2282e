"""The run record types: what `get_run` and `list_runs` return, and recorded decisions.

No database code here (no SQLAlchemy import): read-only commands that never open an engine
build records from rows too.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Literal, NotRequired, TypedDict, get_args

RunStatus = Literal["running", "awaiting_approval", "completed", "failed", "cancelled"]
STATUSES: tuple[RunStatus, ...] = get_args(RunStatus)

DecisionKind = Literal["approve", "reject"]


class PendingApproval(TypedDict):
    """A tool call a parked run waits for a decision on."""

    call_id: str
    tool_name: str
    arguments: str | None
    """The call's arguments as the model wrote them (JSON text)."""
    agent: str
    """The agent whose tool it is."""
    decision: NotRequired[DecisionKind | None]
    """What was decided, once read with `get_run` / `list_runs` (None: not yet)."""
    message: NotRequired[str | None]
    """The rejection message, for a rejected call."""


@dataclass(frozen=True)
class RunOverrides:
    """What a run was started with instead of its agent's code, kept so that every segment on
    every process uses it (not what the code says there)."""

    agent: str | None = None
    """The starting agent's model name (`timestep run --model`, `agent.clone(model=...)`)."""

    run_config: str | None = None
    """`RunConfig(model=...)` given as a name: the model of every agent of the run."""

    instructions: str | None = None
    """Instructions that replace the starting agent's (`timestep.fork(..., instructions=)`)."""

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclass(frozen=True)
class ModelUsage:
    """Token usage of one model in a run."""

    requests: int = 0
    """Model calls that returned a response (recorded calls replayed by a fork count too)."""

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0

    def __add__(self, other: ModelUsage) -> ModelUsage:
        return ModelUsage(
            self.requests + other.requests,
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.total_tokens + other.total_tokens,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelUsage:
        return cls(**{f.name: int(data.get(f.name) or 0) for f in dataclasses.fields(cls)})

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


def usage_by_model(per_segment: dict[str, dict[str, dict[str, Any]]]) -> dict[str, ModelUsage]:
    """Sum of each model's usage over a run's segments, as stored in `model_usage`."""
    total: dict[str, ModelUsage] = {}
    for by_model in per_segment.values():
        for model, usage in by_model.items():
            total[model] = total.get(model, ModelUsage()) + ModelUsage.from_dict(usage)
    return total


@dataclass(frozen=True)
class RunOwner:
    """The process that runs (or ran) a running run's current segment."""

    executor_id: str
    """Its DBOS executor id."""

    alive: bool
    """False once its lease ran out or its process is known to be gone."""

    reason: str
    """Why it counts as alive or dead (last heartbeat, exited process)."""

    host: str | None = None
    """Host name of the process, when it registered."""

    pid: int | None = None
    """Its process id on that host."""

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


VERSION_CHARS = 12
"""How much of a graph fingerprint names an agent version (on screen and in queue names)."""


def version_id(fingerprint: str, label: str | None = None) -> str:
    """The version people see: the fingerprint's first characters, and the label if any."""
    short = fingerprint[:VERSION_CHARS]
    return f"{short} ({label})" if label else short


@dataclass(frozen=True)
class VersionMove:
    """A run moved from one agent version to a newer, compatible one (`_engine/versions.py`)."""

    from_version: str
    """The graph fingerprint the run was on."""

    to_version: str
    """The graph fingerprint it went on with."""

    segment: int
    """The first segment run on the new version."""

    at: float
    """Seconds since the epoch when it moved."""

    from_label: str | None = None
    to_label: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "from": version_id(self.from_version),
            "to": version_id(self.to_version),
            "from_label": self.from_label,
            "to_label": self.to_label,
            "segment": self.segment,
            "at": self.at,
        }

    def stored(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def describe(self) -> str:
        return (
            f"from {version_id(self.from_version, self.from_label)} to "
            f"{version_id(self.to_version, self.to_label)} at segment {self.segment}"
        )


@dataclass
class RunRecord:
    """One run as stored: what `get_run` and `list_runs` return."""

    run_id: str
    """The run's id (also the DBOS workflow id of its first segment)."""

    agent_name: str
    """Name of the agent the run started with."""

    status: RunStatus
    """One of `running`, `awaiting_approval`, `completed`, `failed`, `cancelled`."""

    created_at: float
    """Seconds since the epoch when the run was first started."""

    updated_at: float
    """Seconds since the epoch of the last change of status or state."""

    segment: int = 1
    """How many segments the run has started (a segment ends at each interruption)."""

    usage: dict[str, Any] = field(default_factory=dict)
    """Token usage of the run so far (requests, input/output/total tokens)."""

    final_output: Any = None
    """The final output, as JSON, once completed."""

    pending_approvals: list[PendingApproval] = field(default_factory=list)
    """Tool calls awaiting a decision: call id, tool name, arguments, agent."""

    error: str | None = None
    """What went wrong, for a failed run."""

    streamed: bool = False
    """Whether the run's segments write their events to a durable stream (`stream=True`)."""

    approval_timeout: float | None = None
    """Seconds each parked segment waits for decisions before undecided calls are rejected."""

    graph: dict[str, Any] = field(default_factory=dict, repr=False)
    """The recorded agent graph description (for the fingerprint check)."""

    fingerprint: str = field(default="", repr=False)
    """sha256 of `graph`: a run continues only with an agent graph of the same fingerprint."""

    overrides: RunOverrides | None = None
    """Model names (and a fork's instructions) chosen when the run started, used by every
    later segment."""

    usage_by_model: dict[str, ModelUsage] = field(default_factory=dict)
    """`usage` split by model name, summed over the run's segments (a retried segment counts
    once; a fork counts the turns it reused under the original's model)."""

    input_hash: str | None = field(default=None, repr=False)
    """sha256 of the input the run started with (to tell a reused run id with another input)."""

    owner: RunOwner | None = None
    """For a running run: the process running its current segment (None while queued)."""

    note: str | None = None
    """What happens next, or what to do, when that is not obvious from the status."""

    version_label: str | None = None
    """The label of the agent version the run is on (`register_agent(agent, version=...)`)."""

    version_moves: list[VersionMove] = field(default_factory=list)
    """Each move of the run to a newer compatible version, oldest first."""

    pinned: bool = False
    """Kept on its version: never moved to another one (`timestep.pin_run`)."""

    app_module: str | None = None
    """The module its agent was registered from (`--app MODULE`, `timestep run MODULE:AGENT`),
    when the starting process knew it: hints name it (`timestep worker --app ...`)."""

    @property
    def version(self) -> str:
        """The agent version the run is on: the first characters of its graph fingerprint."""
        return version_id(self.fingerprint)

    def version_dict(self) -> dict[str, Any]:
        return {
            "id": self.version,
            "label": self.version_label,
            "pinned": self.pinned,
            "moves": [move.as_dict() for move in self.version_moves],
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "agent": self.agent_name,
            "status": self.status,
            "segment": self.segment,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "usage": self.usage,
            "usage_by_model": {name: u.as_dict() for name, u in self.usage_by_model.items()},
            "final_output": self.final_output,
            "pending_approvals": self.pending_approvals,
            "error": self.error,
            "approval_timeout": self.approval_timeout,
            "overrides": None if self.overrides is None else self.overrides.as_dict(),
            "owner": None if self.owner is None else self.owner.as_dict(),
            "note": self.note,
            "version": self.version_dict(),
            "app_module": self.app_module,
        }


def _loads(text: str | None, default: Any) -> Any:
    return json.loads(text) if text else default


RECORD_COLUMNS = (
    "run_id",
    "agent_name",
    "status",
    "created_at",
    "updated_at",
    "segment",
    "usage",
    "final_output",
    "pending",
    "error",
    "approval_timeout",
    "streamed",
    "graph",
    "fingerprint",
    "models",
    "model_usage",
    "input_hash",
    "version_label",
    "version_moves",
    "pinned",
    "app_module",
)
"""The columns of `timestep_runs` a record is read from: all but the (large) RunState."""


def record_from_row(row: Any) -> RunRecord:
    """A record from a row of `timestep_runs` (any row whose columns read as attributes)."""
    return RunRecord(
        run_id=row.run_id,
        agent_name=row.agent_name,
        status=row.status,
        created_at=row.created_at,
        updated_at=row.updated_at,
        segment=row.segment,
        usage=_loads(row.usage, {}),
        final_output=_loads(row.final_output, None),
        pending_approvals=_loads(row.pending, []),
        error=row.error,
        approval_timeout=row.approval_timeout,
        streamed=bool(row.streamed),
        graph=_loads(row.graph, {}),
        fingerprint=row.fingerprint,
        overrides=RunOverrides(**json.loads(row.models)) if row.models else None,
        usage_by_model=usage_by_model(_loads(row.model_usage, {})),
        input_hash=row.input_hash,
        version_label=row.version_label,
        version_moves=[VersionMove(**move) for move in _loads(row.version_moves, [])],
        pinned=bool(row.pinned),
        app_module=row.app_module,
    )


@dataclass
class Decision:
    """A recorded human decision on one pending tool call."""

    call_id: str
    """The tool call decided."""

    tool_name: str
    """The tool the call invokes."""

    decision: DecisionKind
    """`approve` or `reject`."""

    always: bool = False
    """Approve this tool for the rest of the run (approve only)."""

    message: str | None = None
    """What the model is told about a rejection (reject only)."""
