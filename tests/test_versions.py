"""Agent versions (issue 23): runs parked on one version of an agent survive the deploys of
others. Compatible new code continues them (the move recorded), incompatible code refuses them
at once with the exact reason and leaves them for a process of their version.

The process tests use `tests/apps/refunds.py`: `Refunder` v1 (`lookup`, `refund` needing
approval), v2 (compatible: instructions and `refund`'s body changed, `audit` added), v3
(`refund` renamed `issue_refund`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from agents import Agent, function_tool, handoff

import timestep
from timestep._engine import describe_graph, judge_version
from timestep._engine.versions import incompatibilities
from timestep.state.run_record import PendingApproval

from .helpers import ExecutionLog, TurnModel
from .processes import cli, env_for, record_of, run_module, start_worker, stop, wait_for_status


def _pending(tool: str, arguments: dict[str, Any], agent: str = "Refunder") -> PendingApproval:
    return PendingApproval(
        call_id="call_1_0", tool_name=tool, arguments=json.dumps(arguments), agent=agent
    )


def _refunder(*tools: Any) -> Agent[Any]:
    return Agent(name="Refunder", tools=list(tools))


@function_tool
def refund(order: str, amount: float) -> str:
    """v1."""
    return "ok"


def _history(tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """A stored RunState's items with one recorded call (the SDK's 1.21 JSON, trimmed)."""
    return {
        "current_agent": {"name": "Refunder"},
        "generated_items": [
            {
                "type": "tool_call_item",
                "agent": {"name": "Refunder"},
                "raw_item": {
                    "type": "function_call",
                    "name": tool,
                    "call_id": "call_0_0",
                    "arguments": json.dumps(arguments),
                },
            }
        ],
    }


def test_schema_changes_are_judged_on_the_recorded_arguments() -> None:
    v1 = describe_graph(_refunder(refund))
    pending = [_pending("refund", {"order": "o-1", "amount": 5})]

    @function_tool(name_override="refund")
    def with_optional(
        order: str, amount: float, note: str | None = None, rush: bool = False
    ) -> str:
        """A new optional parameter (the SDK's strict schema lists it as required)."""
        return "ok"

    assert incompatibilities(v1, describe_graph(_refunder(with_optional)), None, pending) == []

    @function_tool(name_override="refund")
    def with_required(order: str, amount: float, reason: str) -> str:
        """A new required parameter."""
        return "ok"

    assert incompatibilities(v1, describe_graph(_refunder(with_required)), None, pending) == [
        "argument 'reason' of pending call call_1_0 to 'refund' is now required and the "
        "recorded call has none"
    ]

    @function_tool(name_override="refund")
    def amount_as_text(order: str, amount: str) -> str:
        """A parameter's type changed: the recorded call in the history fails it."""
        return "ok"

    assert incompatibilities(
        v1,
        describe_graph(_refunder(amount_as_text)),
        _history("refund", {"order": "o", "amount": 5}),
        [],
    ) == [
        "argument 'amount' of call call_0_0 in the history to 'refund' fails the new schema: "
        "5 is not of type 'string'"
    ]


def test_what_no_longer_exists_is_named() -> None:
    billing = Agent(name="Billing", tools=[refund])
    v1 = describe_graph(Agent(name="Triage", handoffs=[billing]))
    payments = Agent(name="Payments", tools=[refund])
    renamed = describe_graph(Agent(name="Triage", handoffs=[handoff(payments)]))
    state = {
        "current_agent": {"name": "Billing"},
        "generated_items": [
            {
                "type": "handoff_output_item",
                "agent": {"name": "Triage"},
                "source_agent": {"name": "Triage"},
                "target_agent": {"name": "Billing"},
                "raw_item": {"type": "function_call_output", "call_id": "c", "output": "{}"},
            }
        ],
    }
    pending = [_pending("refund", {"order": "o", "amount": 1}, agent="Billing")]
    assert incompatibilities(v1, renamed, state, pending) == [
        "agent 'Billing', in the run's history, no longer exists"
    ]
    # The handoff target renamed before the run ever handed off: nothing recorded names it.
    parked_in_triage = {"current_agent": {"name": "Triage"}, "generated_items": []}
    assert incompatibilities(v1, renamed, parked_in_triage, []) == []
    # Another starting agent is never compatible.
    other_start = describe_graph(Agent(name="Front", handoffs=[billing]))
    assert incompatibilities(v1, other_start, parked_in_triage, [])[0] == (
        "the run starts with agent 'Triage', this graph with 'Front'"
    )


def _drive(env: dict[str, str], version: str, mode: str, *run_ids: str) -> dict[str, Any]:
    """`tests/apps/refunds.py` in a process of `version`: {run id: its outcome line}."""
    done = run_module(env, "tests.apps.refunds", version, mode, *run_ids)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return {line["run_id"]: line for line in lines}


def _executions(log: ExecutionLog) -> list[tuple[str, str, str]]:
    """(tool, version, idempotency key) of every real tool execution."""
    return [(e["name"], e["version"], e["key"]) for e in log.entries("tool")]


@pytest.mark.processes
def test_parked_runs_survive_two_deploys(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path}/timestep.sqlite"
    log = ExecutionLog(tmp_path / "log.jsonl")
    env = env_for(database_url, log.path)

    # 1. v1 parks two runs at `refund`.
    parked = _drive(env, "v1", "start", "R1", "R2")
    assert {r["status"] for r in parked.values()} == {"awaiting_approval"}
    v1 = record_of(database_url, "R1")["version"]
    assert v1["label"] == "v1" and v1["moves"] == []

    # The rollout tools: what v3 and v2 would make of them, nothing changed.
    checked = cli(
        env, "runs", "upgrade", "--agent", "Refunder", "--app", "tests.apps.refunds_v3", "--dry-run"
    )
    assert checked.returncode == 0, checked.stderr
    v3_id = checked.stdout.split("incompatible with ")[1][:12]
    assert checked.stdout.splitlines() == [
        f"{run} (awaiting_approval): incompatible with {v3_id} (v3): tool 'refund' of agent "
        "'Refunder' no longer exists (pending call call_1_0)"
        for run in ("R2", "R1")
    ]
    dry = cli(env, "runs", "upgrade", "R1", "--app", "tests.apps.refunds_v2", "--dry-run", "--json")
    (report,) = json.loads(dry.stdout)
    assert report["compatible"] and not report["moved"] and report["version"] == v1["id"]
    assert record_of(database_url, "R1")["version"] == v1

    # 2. v2: approve + resume R1 here; it finishes on v2's code, the move recorded.
    resumed = _drive(env, "v2", "approve-resume", "R1")["R1"]
    assert resumed == {"run_id": "R1", "status": "completed", "output": "refund handled"}
    (move,) = record_of(database_url, "R1")["version"]["moves"]
    assert (move["from"], move["from_label"], move["to_label"], move["segment"]) == (
        v1["id"],
        "v1",
        "v2",
        2,
    )

    # 3. v3: approve + resume R2 is refused at once with the reason; R2 stays on v1, decided.
    refused = _drive(env, "v3", "approve-resume", "R2")["R2"]
    assert refused["error"] == "IncompatibleVersionError"
    assert refused["message"].startswith(
        f"run 'R2' is on agent version {v1['id']} (v1) and cannot go on under this process's "
        f"version {v3_id} (v3): tool 'refund' of agent 'Refunder' no longer exists (pending call "
        "call_1_0). The run is unchanged"
    )
    r2 = record_of(database_url, "R2")
    assert r2["status"] == "running" and r2["version"] == v1  # decided, queued for v1
    shown = json.loads(cli(env, "runs", "show", "R2", "--json").stdout)
    assert [c["decision"] for c in shown["pending_approvals"]] == ["approve"]
    assert shown["note"].startswith(
        f"queued for a process with agent 'Refunder' at version {v1['id']} (v1)"
    )
    assert "no live process has it" in shown["note"]  # no process of any version is up

    # 4. A v1 worker finishes R2 with v1's code.
    worker = start_worker(env, "tests.apps.refunds_v1")
    try:
        wait_for_status(database_url, "R2", "completed")
    finally:
        stop(worker)
    assert _executions(log) == [
        ("lookup", "v1", "R1:call_0_0"),
        ("lookup", "v1", "R2:call_0_0"),
        ("refund", "v2", "R1:call_1_0"),
        ("refund", "v1", "R2:call_1_0"),
    ]
    # Each model turn of each run ran once: 3 turns x 2 runs.
    assert sorted(e["turn"] for e in log.entries("model")) == [0, 0, 1, 1, 2, 2]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_renamed_handoff_target_refuses_a_run_that_handed_off(timestep_db: str) -> None:
    """Judged on a real parked run: Triage handed off to Billing, which waits on `refund`."""

    def triage(target: Agent[Any]) -> Agent[Any]:
        return Agent(
            name="Triage",
            model=TurnModel([[("transfer_to_billing", {})]], final="-"),
            handoffs=[target],
        )

    billing = Agent(
        name="Billing",
        # Turn 0 is the handoff's output it sees (TurnModel counts tool outputs).
        model=TurnModel([[("-", {})], [("refund", {"order": "o-1", "amount": 5})]], final="-"),
        tools=[timestep_refund],
    )
    result = await timestep.run_agent(triage(billing), "refund o-1", run_id="h-1")
    assert result.interruptions
    record = await timestep.get_run("h-1")
    renamed = triage(Agent(name="Payments", tools=[timestep_refund]))
    verdict, _ = judge_version(record, renamed)
    assert verdict.problems == [
        "agent 'Billing', in the run's history, no longer exists",
    ]
    with pytest.raises(timestep.IncompatibleVersionError) as refused:
        await timestep.run_agent(renamed, "refund o-1", run_id="h-1")
    assert "agent 'Billing', in the run's history, no longer exists" in str(refused.value)
    assert (await timestep.get_run("h-1")).status == "awaiting_approval"
    # Pinned: even compatible code (here the same graph but a new tool) leaves it alone.
    await timestep.pin_run("h-1")
    grown = triage(Agent(name="Billing", tools=[timestep_refund, audit]))
    with pytest.raises(timestep.IncompatibleVersionError, match="it is pinned to version"):
        await timestep.run_agent(grown, "refund o-1", run_id="h-1")
    unchanged = await timestep.get_run("h-1")
    assert unchanged.pinned and unchanged.version_moves == []
    # Unpinned, run_agent with the compatible code moves it there: still parked, now on it.
    await timestep.pin_run("h-1", pinned=False)
    again = await timestep.run_agent(grown, "refund o-1", run_id="h-1")
    assert [i.raw_item.name for i in again.interruptions] == ["refund"]  # type: ignore[union-attr]
    moved = await timestep.get_run("h-1")
    assert moved.status == "awaiting_approval" and moved.version != record.version
    assert [(m.from_version, m.segment) for m in moved.version_moves] == [(record.fingerprint, 1)]


@function_tool(name_override="refund", needs_approval=True)
def timestep_refund(order: str, amount: float) -> str:
    """Refund (needs approval)."""
    return "refunded"


@function_tool
def audit(order: str) -> str:
    """Audit."""
    return "audited"


@pytest.mark.processes
def test_two_versions_live_on_one_postgres_each_run_on_its_own(
    postgres_url: str, tmp_path: Path
) -> None:
    """A v1 and a v2 worker at once: each continuation goes to a worker that has its version,
    and `runs upgrade` (applied) moves a parked run from v1 to v2 first."""
    log = ExecutionLog(tmp_path / "log.jsonl")
    env = env_for(postgres_url, log.path)
    _drive(env, "v1", "start", "Ra", "Rb")
    upgraded = cli(env, "runs", "upgrade", "Rb", "--app", "tests.apps.refunds_v2")
    assert upgraded.returncode == 0, upgraded.stderr
    v1, v2 = record_of(postgres_url, "Ra")["version"], record_of(postgres_url, "Rb")["version"]
    assert upgraded.stdout.strip() == (
        f"Rb (awaiting_approval): moved: from {v1['id']} (v1) to {v2['id']} (v2)"
    )
    workers = [start_worker(env, f"tests.apps.refunds_{v}") for v in ("v1", "v2")]
    try:
        _drive(env, "v1", "approve", "Ra", "Rb")
        for run_id in ("Ra", "Rb"):
            wait_for_status(postgres_url, run_id, "completed")
    finally:
        for worker in workers:
            stop(worker)
    assert sorted(_executions(log)) == [
        ("lookup", "v1", "Ra:call_0_0"),
        ("lookup", "v1", "Rb:call_0_0"),
        ("refund", "v1", "Ra:call_1_0"),
        ("refund", "v2", "Rb:call_1_0"),
    ]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_fork_onto_the_new_graph_is_the_way_out(timestep_db: str) -> None:
    """An incompatible run (v1, waiting on `refund`) forked at turn 1 onto v3: the new run
    reuses the recorded first turn and goes on under v3's graph, on v3's queue."""
    from tests.apps.refunds import build

    v1, v3 = build("v1"), build("v3")
    parked = await timestep.run_agent(v1, "refund order o-1", run_id="f-1")
    assert parked.interruptions
    with pytest.raises(timestep.IncompatibleVersionError, match="fork it onto the new code"):
        await timestep.run_agent(v3, "refund order o-1", run_id="f-1")
    forked = await timestep.fork("f-1", turn=1, new_run_id="f-2", agent=v3)
    original = await timestep.get_run("f-1")
    assert forked.version != original.version and original.status == "awaiting_approval"
    result = await timestep.resume("f-2")
    assert [i.raw_item.name for i in result.interruptions] == ["issue_refund"]  # type: ignore[union-attr]
    assert (await timestep.get_run("f-2")).status == "awaiting_approval"
