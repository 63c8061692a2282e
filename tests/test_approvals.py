"""Durable human approval: park, decide from anywhere, resume exactly once."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from agents import Agent, function_tool

import timestep
from timestep import DecisionError

from .helpers import ExecutionLog, TurnModel
from .processes import cli, env_for, finish_worker, start_worker, stop, wait_for_status

ROOT = Path(__file__).resolve().parent.parent


def park(env: dict[str, str], run_id: str) -> None:
    started = cli(env, "run", "tests.apps.mail_app:mailer", "mail bob", "--run-id", run_id)
    assert started.returncode == 3, started.stderr  # awaiting approval
    assert "send_email" in started.stdout and "awaits approval" in started.stdout
    listed = cli(env, "runs", "list", "--status", "awaiting_approval")
    assert run_id in listed.stdout
    assert 'send_email({"to":"bob@example.com","body":"hi"})' in listed.stdout


@pytest.mark.parametrize("decision", ["approve", "reject"])
def test_three_processes_decide_and_finish(
    database_url: str, tmp_path: Path, decision: str
) -> None:
    log_path = tmp_path / "log.jsonl"
    env = env_for(database_url, log_path)
    park(env, "mail-1")

    # The deciding process has no agent code: only the database URL.
    decider_env = {k: v for k, v in env.items() if k != "TIMESTEP_TEST_LOG"}
    args = (
        ["approve", "mail-1"]
        if decision == "approve"
        else ["reject", "mail-1", "--message", "not today"]
    )
    decided = cli(decider_env, *args)
    assert decided.returncode == 0, decided.stderr
    assert "run is now running" in decided.stdout
    # Decided, not yet continued: the call shows its decision, and the run says what goes on.
    shown = json.loads(cli(decider_env, "runs", "show", "mail-1", "--json").stdout)
    assert [c["decision"] for c in shown["pending_approvals"]] == [decision]
    assert shown["note"].startswith("queued for a process with agent 'Mailer'")
    assert "start a worker" in shown["note"]  # no live process has the agent yet
    text = cli(decider_env, "runs", "show", "mail-1").stdout
    assert ("approved " if decision == "approve" else "rejected ") in text

    process = start_worker(env, "tests.apps.mail_app")
    try:
        record = wait_for_status(database_url, "mail-1", "completed")
    finally:
        code, err = stop(process)
    assert code == 0, err
    assert record["final_output"] == "mail handled"
    log = ExecutionLog(log_path)
    sends = [e for e in log.entries("tool") if e["name"] == "send_email"]
    lookups = [e for e in log.entries("tool") if e["name"] == "lookup"]
    assert len(lookups) == 1
    assert len(sends) == (1 if decision == "approve" else 0)
    last_model_input = log.entries("model")[-1]["tool_outputs"]
    assert last_model_input[0] == "bob@example.com"
    assert last_model_input[1] == (
        "sent to bob@example.com" if decision == "approve" else "not today"
    )

    again = cli(decider_env, *args)  # "every pending call" of a run with none pending
    assert again.returncode == 4, again.stderr
    assert again.stderr.startswith("timestep: error: run 'mail-1' is completed: no call is pending")
    assert "approved" not in again.stdout and "rejected" not in again.stdout
    repeat = cli(decider_env, args[0], "mail-1", "call_0_1", *args[2:])
    assert repeat.returncode == 0, repeat.stderr  # the same decision on the call is a no-op
    other = cli(decider_env, "reject" if decision == "approve" else "approve", "mail-1")
    assert other.returncode == 1
    assert "already decided" in other.stderr


def test_worker_killed_during_continuation_finishes_once(database_url: str, tmp_path: Path) -> None:
    log_path = tmp_path / "log.jsonl"
    # A short lease: the second worker takes the dead one's run over when it runs out.
    env = env_for(database_url, log_path, TIMESTEP_LEASE_SECONDS="2")
    park(env, "mail-2")
    assert cli(env, "approve", "mail-2").returncode == 0

    crashing = start_worker({**env, "TIMESTEP_TEST_CRASH": "tool_recorded"}, "tests.apps.mail_app")
    code, err = finish_worker(crashing, timeout=90)
    assert code == 3, err
    log = ExecutionLog(log_path)
    assert [e["at"] for e in log.entries("crash")] == ["tool_recorded"]

    process = start_worker(env, "tests.apps.mail_app")
    try:
        record = wait_for_status(database_url, "mail-2", "completed")
    finally:
        stop(process)
    assert record["final_output"] == "mail handled"
    assert len([e for e in log.entries("tool") if e["name"] == "send_email"]) == 1


def mail_agent(log: ExecutionLog, script: list[list[tuple[str, dict[str, Any]]]]) -> Agent[Any]:
    @function_tool(needs_approval=True)
    def send_email(to: str) -> str:
        log.write("tool", name="send_email", to=to)
        return f"sent to {to}"

    @function_tool
    def lookup(name: str) -> str:
        log.write("tool", name="lookup", who=name)
        return f"{name}@example.com"

    return Agent(
        name="Mailer", model=TurnModel(script, final="done", log=log), tools=[lookup, send_email]
    )


async def test_concurrent_conflicting_decisions_record_one(
    timestep_db: str, tmp_path: Path
) -> None:
    log = ExecutionLog(tmp_path / "log.jsonl")
    agent = mail_agent(log, [[("send_email", {"to": "a"})]])
    result = await timestep.run_agent(agent, "mail a", run_id="race")
    call_id = result.interruptions[0].raw_item.call_id

    async def decide(kind: str) -> str:
        try:
            if kind == "approve":
                await timestep.approve("race", call_id)
            else:
                await timestep.reject("race", call_id, message="no")
        except DecisionError as exc:
            assert "already decided" in str(exc)
            return f"{kind}:refused"
        return f"{kind}:ok"

    outcomes = await asyncio.gather(*[decide("approve" if i % 2 else "reject") for i in range(20)])
    winners = {o.split(":")[0] for o in outcomes if o.endswith(":ok")}
    assert len(winners) == 1
    winner = winners.pop()
    assert all(o == f"{winner}:ok" for o in outcomes if o.startswith(winner))
    assert all(o.endswith(":refused") for o in outcomes if not o.startswith(winner))

    final = await timestep.resume("race")
    assert final.final_output == "done"
    sends = [e for e in log.entries("tool") if e["name"] == "send_email"]
    assert len(sends) == (1 if winner == "approve" else 0)


async def test_parallel_calls_and_always_approve(timestep_db: str, tmp_path: Path) -> None:
    log = ExecutionLog(tmp_path / "log.jsonl")
    agent = mail_agent(
        log,
        [
            [("lookup", {"name": "a"}), ("send_email", {"to": "a"})],
            [("send_email", {"to": "b"}), ("send_email", {"to": "c"})],
        ],
    )
    first = await timestep.run_agent(agent, "mail everyone", run_id="always")
    assert [i.tool_name for i in first.interruptions] == ["send_email"]
    assert [e["name"] for e in log.entries("tool")] == ["lookup"]

    with pytest.raises(DecisionError, match="no pending call 'nope'"):
        await timestep.approve("always", "nope")
    await timestep.approve("always", always=True)
    final = await timestep.resume("always")
    assert final.final_output == "done"
    assert final.interruptions == []
    assert sorted(e["to"] for e in log.entries("tool") if e["name"] == "send_email") == [
        "a",
        "b",
        "c",
    ]
    assert (await timestep.get_run("always")).status == "completed"


async def test_approval_deadline_rejects_and_continues(timestep_db: str, tmp_path: Path) -> None:
    log = ExecutionLog(tmp_path / "log.jsonl")
    agent = mail_agent(log, [[("send_email", {"to": "late"})]])
    parked = await timestep.run_agent(agent, "mail", run_id="deadline", approval_timeout=1.0)
    assert parked.interruptions
    assert (await timestep.get_run("deadline")).approval_timeout == 1.0

    final = await asyncio.wait_for(timestep.resume("deadline"), timeout=60)
    assert final.final_output == "done"
    assert [e for e in log.entries("tool") if e["name"] == "send_email"] == []
    assert "approval deadline passed" in log.entries("model")[-1]["tool_outputs"][0]
    with pytest.raises(DecisionError, match="already decided: reject"):
        await timestep.approve("deadline")


async def test_deciding_before_the_deadline_continues_at_once(
    timestep_db: str, tmp_path: Path
) -> None:
    """The deadline's segment is queued with a delay; the last decision starts it now."""
    log = ExecutionLog(tmp_path / "log.jsonl")
    agent = mail_agent(log, [[("send_email", {"to": "early"})]])
    parked = await timestep.run_agent(agent, "mail", run_id="early", approval_timeout=300.0)
    assert parked.interruptions
    await timestep.approve("early")
    final = await asyncio.wait_for(timestep.resume("early"), timeout=60)
    assert final.final_output == "done"
    assert [e["name"] for e in log.entries("tool") if e["name"] == "send_email"] == ["send_email"]


async def test_seed_flow_with_run_id_continues_the_parked_run(
    timestep_db: str, tmp_path: Path
) -> None:
    log = ExecutionLog(tmp_path / "log.jsonl")
    agent = mail_agent(log, [[("send_email", {"to": "seed"})]])
    parked = await timestep.run_agent(agent, "mail", run_id="seed")
    store = timestep.RunStateStore(agent, run_id="seed")
    await store.save(parked.to_state())
    state = await timestep.RunStateStore(agent, run_id="seed").load()
    state.approve(state.get_interruptions()[0])
    final = await timestep.run_agent(agent, state, run_id="seed")
    assert final.final_output == "done"
    record = await timestep.get_run("seed")
    assert (record.status, record.segment) == ("completed", 2)
    assert len([e for e in log.entries("tool") if e["name"] == "send_email"]) == 1
    again = await timestep.run_agent(agent, state, run_id="seed")
    assert again.final_output == "done"
    assert len([e for e in log.entries("tool") if e["name"] == "send_email"]) == 1
