"""A rejection always wins: a rejected call never runs, whatever else was approved, in every
order, with `always`, with an approval deadline, with imported decisions, over every interface.

The model makes two calls of the same tool in one turn (`send_email` to the attacker first, to
bob second); the tool logs every real execution, and the tests count them.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

import timestep
from timestep._engine.decisions import apply_decisions
from timestep.state.records import Decision

from .helpers import ExecutionLog
from .processes import cli, env_for, start_worker, stop, wait_for_status
from .test_approvals import mail_agent

ATTACKER, BOB = "attacker@evil.example", "bob@example.com"
TWO_CALLS = [[("send_email", {"to": ATTACKER}), ("send_email", {"to": BOB})]]
CALL = {ATTACKER: "call_0_0", BOB: "call_0_1"}  # TurnModel's call ids: turn 0, index 0 and 1


def sends(log: ExecutionLog) -> list[str]:
    return [e["to"] for e in log.entries("tool") if e["name"] == "send_email"]


async def decide(run_id: str, rejected: str, approved: str, order: str, always: bool) -> None:
    async def reject() -> None:
        await timestep.reject(run_id, CALL[rejected], message="never")

    async def approve() -> None:
        await timestep.approve(run_id, CALL[approved], always=always)

    for step in (reject, approve) if order == "reject-first" else (approve, reject):
        await step()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("always", [True, False], ids=["always", "once"])
@pytest.mark.parametrize("order", ["reject-first", "approve-first"])
@pytest.mark.parametrize("rejected", [ATTACKER, BOB], ids=["reject-1st-call", "reject-2nd-call"])
async def test_library_permutations(
    timestep_db: str, tmp_path: Path, rejected: str, order: str, always: bool
) -> None:
    log = ExecutionLog(tmp_path / "log.jsonl")
    agent = mail_agent(log, TWO_CALLS)
    parked = await timestep.run_agent(agent, "mail both", run_id="perm")
    assert [i.raw_item.call_id for i in parked.interruptions] == [CALL[ATTACKER], CALL[BOB]]
    approved = BOB if rejected == ATTACKER else ATTACKER
    await decide("perm", rejected, approved, order, always)
    final = await timestep.resume("perm")
    assert final.final_output == "done"
    assert sends(log) == [approved]  # the approved call ran once, the rejected one never
    outputs = log.entries("model")[-1]["tool_outputs"]
    assert f"sent to {approved}" in outputs and "never" in outputs


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_always_then_covers_later_calls_only(timestep_db: str, tmp_path: Path) -> None:
    """What `always` means next to a rejection in the same batch: the rejected call stays
    rejected; later calls of the tool run without asking."""
    log = ExecutionLog(tmp_path / "log.jsonl")
    agent = mail_agent(log, [*TWO_CALLS, [("send_email", {"to": "carol@example.com"})]])
    await timestep.run_agent(agent, "mail", run_id="later")
    await timestep.reject("later", CALL[ATTACKER], message="never")
    await timestep.approve("later", CALL[BOB], always=True)
    final = await timestep.resume("later")
    assert (final.final_output, final.interruptions) == ("done", [])
    assert sends(log) == [BOB, "carol@example.com"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("undecided", [ATTACKER, BOB], ids=["1st-call-late", "2nd-call-late"])
async def test_deadline_rejection_wins_over_always(
    timestep_db: str, tmp_path: Path, undecided: str
) -> None:
    log = ExecutionLog(tmp_path / "log.jsonl")
    agent = mail_agent(log, TWO_CALLS)
    await timestep.run_agent(agent, "mail", run_id="late", approval_timeout=1.0)
    approved = BOB if undecided == ATTACKER else ATTACKER
    await timestep.approve("late", CALL[approved], always=True)
    final = await asyncio.wait_for(timestep.resume("late"), timeout=60)
    assert final.final_output == "done"
    assert sends(log) == [approved]
    assert any("approval deadline passed" in o for o in log.entries("model")[-1]["tool_outputs"])


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_the_rule_on_a_bare_state(timestep_db: str, tmp_path: Path) -> None:
    """`apply_decisions` itself, with the decisions listed in either order."""
    log = ExecutionLog(tmp_path / "log.jsonl")
    agent = mail_agent(log, TWO_CALLS)
    parked = await timestep.run_agent(agent, "mail", run_id="bare")
    decisions = [
        Decision(CALL[ATTACKER], "send_email", "reject", False, "no"),
        Decision(CALL[BOB], "send_email", "approve", True, None),
    ]
    for listed in (decisions, decisions[::-1]):
        state = parked.to_state()
        apply_decisions(state, listed)
        context = state._context
        assert context is not None
        status = {
            item.raw_item.call_id: context.get_approval_status(
                "send_email", item.raw_item.call_id, existing_pending=item
            )
            for item in state.get_interruptions()
        }
        assert status == {CALL[ATTACKER]: False, CALL[BOB]: True}


def finish_with_worker(env: dict[str, str], database_url: str, run_id: str) -> dict[str, Any]:
    process = start_worker(env, "tests.apps.mail_app")
    try:
        record = wait_for_status(database_url, run_id, "completed")
    finally:
        code, err = stop(process)
    assert code == 0, err
    return record


@pytest.mark.parametrize("order", ["reject-first", "approve-first"])
def test_cli_decisions_and_a_worker(database_url: str, tmp_path: Path, order: str) -> None:
    """The issue's report: reject the first call, approve the second with --always, from the
    CLI (a process without the agents), and a worker process finishes the run."""
    log_path = tmp_path / "log.jsonl"
    env = env_for(database_url, log_path)
    started = cli(env, "run", "tests.apps.mail_app:double_mailer", "mail", "--run-id", "cli-r")
    assert started.returncode == 3, started.stderr
    decider = {k: v for k, v in env.items() if k != "TIMESTEP_TEST_LOG"}
    steps = [
        ["reject", "cli-r", CALL[ATTACKER], "--message", "never"],
        ["approve", "cli-r", CALL[BOB], "--always"],
    ]
    for args in steps if order == "reject-first" else steps[::-1]:
        done = cli(decider, *args)
        assert done.returncode == 0, done.stderr
    record = finish_with_worker(env, database_url, "cli-r")
    assert record["final_output"] == "mail handled"
    assert sends(ExecutionLog(log_path)) == [BOB]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("order", ["reject-first", "approve-first"])
async def test_http_decisions(timestep_db: str, tmp_path: Path, order: str) -> None:
    from timestep.web import app

    log = ExecutionLog(tmp_path / "log.jsonl")
    agent = mail_agent(log, TWO_CALLS)
    await timestep.run_agent(agent, "mail", run_id="http-r")
    token = "test-token-0123456789"
    bodies = [
        ("reject", {"call_id": CALL[ATTACKER], "message": "never"}),
        ("approve", {"call_id": CALL[BOB], "always": True}),
    ]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app(token=token)),
        base_url="http://inbox.test",
        headers={"Authorization": f"Bearer {token}"},
    ) as http:
        for kind, body in bodies if order == "reject-first" else bodies[::-1]:
            answer = await http.post(f"/api/runs/http-r/{kind}", json=body)
            assert answer.status_code == 200, answer.text
    final = await timestep.resume("http-r")
    assert final.final_output == "done"
    assert sends(log) == [BOB]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("form", ["python", "typescript"])
@pytest.mark.parametrize("first", ["reject", "approve-always"])
def test_imported_decisions(database_url: str, tmp_path: Path, form: str, first: str) -> None:
    """One call decided before the hand-over (carried in the exported state), the other after
    the import, then a worker: `state import` says what arrived decided; the rejection wins."""
    log_path = tmp_path / "log.jsonl"
    env = env_for(database_url, log_path)
    started = cli(env, "run", "tests.apps.mail_app:double_mailer", "mail", "--run-id", "src")
    assert started.returncode == 3, started.stderr
    reject = ["reject", CALL[ATTACKER], "--message", "never"]
    approve = ["approve", CALL[BOB], "--always"]
    before, after = (reject, approve) if first == "reject" else (approve, reject)
    assert cli(env, before[0], "src", *before[1:]).returncode == 0
    exported = tmp_path / "state.json"
    done = cli(
        env,
        "state",
        "export",
        "src",
        "--format",
        form,
        "--app",
        "tests.apps.mail_app",
        "-o",
        str(exported),
    )
    assert done.returncode == 0, done.stderr
    imported = cli(
        env, "state", "import", str(exported), "--app", "tests.apps.mail_app", "--run-id", "dst"
    )
    assert imported.returncode == 0, imported.stderr
    decided_call = before[1]
    state = "rejected" if before[0] == "reject" else "approved"
    assert f"{state} {decided_call}:" in imported.stdout
    assert "(decided in the imported state)" in imported.stdout
    assert f"1 of 2 calls arrived already decided in the state file: {decided_call} {state}" in (
        imported.stderr
    )
    assert cli(env, after[0], "dst", *after[1:]).returncode == 0
    record = finish_with_worker(env, database_url, "dst")
    assert record["final_output"] == "mail handled"
    assert sends(ExecutionLog(log_path)) == [BOB]
    shown = json.loads(cli(env, "runs", "show", "dst", "--json").stdout)
    assert shown["status"] == "completed"
