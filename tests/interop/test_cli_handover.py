"""The CLI hand-over, end to end: a parked Timestep run finished by a TypeScript script, and a
paused TypeScript run finished by a Timestep worker, following docs/typescript-interop.md.

Everything runs as separate processes, as a user would: `python -m timestep.cli` (run, state
export/import, approve/reject, runs show), the worker `python -m workflows`, and Node running
tests/interop/cli_handover.mjs with the real @openai/agents 0.20.0. The Python agents are
tests/apps/handover_app.py (the interop scenarios' Mailer, playing one cell of
tests/interop/_scenarios.py chosen by TIMESTEP_HANDOVER_CELL); both DB backends.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from agents import Runner, RunState

from tests.helpers import ExecutionLog
from tests.processes import cli, env_for, record_of, start_worker, stop, wait_for_status
from timestep.state import schema
from timestep.state.database import create_engine, parse_database_url

from . import _harness
from ._scenarios import cell_named
from .conftest import INTEROP_DIR, NodeProject
from .test_typescript_interop import expected_usage

ROOT = INTEROP_DIR.parent.parent
APP = "tests.apps.handover_app"
PROMPT = "Email Bob that the build is green."


def node(project: NodeProject, mode: str, state_file: Path, cell: dict[str, Any]) -> dict[str, Any]:
    completed = subprocess.run(
        [project.node, "cli_handover.mjs", mode, str(state_file)],
        input=json.dumps(cell),
        capture_output=True,
        text=True,
        cwd=INTEROP_DIR,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, f"node {mode} failed:\n{completed.stderr}"
    report: dict[str, Any] = json.loads(completed.stdout)
    return report


def park(env: dict[str, str], run_id: str) -> None:
    started = cli(env, "run", f"{APP}:mailer", PROMPT, "--run-id", run_id)
    assert started.returncode == 3, started.stdout + started.stderr  # awaiting approval
    assert "awaits approval" in started.stdout and "call_email_1" in started.stdout


def decide(env: dict[str, str], run_id: str, decision: dict[str, Any]) -> str:
    if decision["approve"]:
        args = ["approve", run_id, decision["call"]] + (
            ["--always"] if decision.get("always") else []
        )
    else:
        args = ["reject", run_id, decision["call"], "--message", decision["message"]]
    decided = cli(env, *args)
    assert decided.returncode == 0, decided.stderr
    return decided.stdout


def sends(log: ExecutionLog) -> list[str]:
    return [e["callId"] for e in log.entries("tool") if e["tool"] == "send_email"]


# --- Python -> TypeScript -----------------------------------------------------------------------

# A decision made in Timestep before the export must leave the run parked (a decision on every
# pending call continues it in Python), so `before` decisions appear only in the two-call cell.
PY_TO_TS = ["approve_after", "reject_after", "two_calls"]


def on_backends(cells: list[str]) -> pytest.MarkDecorator:
    """Every cell on SQLite, the first also on PostgreSQL: the conversion does not depend on
    the backend, and the storage path is covered by the first cell on both."""
    return pytest.mark.parametrize(
        ("database_url", "cell_name"),
        [("sqlite", cell) for cell in cells] + [("postgres", cells[0])],
        indirect=["database_url"],
    )


@on_backends(PY_TO_TS)
def test_python_to_typescript_via_cli(
    database_url: str, tmp_path: Path, node_project: NodeProject, cell_name: str
) -> None:
    cell = cell_named(cell_name)
    log = ExecutionLog(tmp_path / "log.jsonl")
    env = env_for(database_url, log.path, TIMESTEP_HANDOVER_CELL=cell_name)
    park(env, "py-run")
    for decision in cell["before"]:
        assert "run is still awaiting_approval" in decide(env, "py-run", decision)

    state_file = tmp_path / "state.json"
    exported = cli(
        env,
        "state",
        "export",
        "py-run",
        "--format",
        "typescript",
        "--app",
        APP,
        "-o",
        str(state_file),
    )
    assert exported.returncode == 0, exported.stderr
    assert f"to {state_file}" in exported.stdout
    assert json.loads(state_file.read_text())["$schemaVersion"] == "1.22"

    report = node(node_project, "resume", state_file, {**cell, "usage_offset": len(cell["source"])})
    assert report["ok"], report
    expect = cell["expect"]
    assert report["loaded"]["interruptions"] == [
        {"call": call["id"], "tool": "send_email"} for call in cell["source"][0]["calls"]
    ]
    assert report["loaded"]["current_turn"] == len(cell["source"])
    assert report["loaded"]["usage"] == expected_usage(len(cell["source"]))
    assert report["interruptions"] == [], "TypeScript asked again for a decision made in Python"
    assert report["final_output"] == expect["final"]
    ran = [e["callId"] for e in report["executions"] if e["tool"] == "send_email"]
    assert ran == expect["executed"], "approved tools run exactly once in TypeScript"
    assert report["input_problems"] == [], "the TypeScript model got a malformed input"
    last_input = json.dumps(report["model_inputs"][-1])
    for call in cell["source"][0]["calls"]:
        assert call["id"] in last_input
    if "rejected_with" in expect:
        assert expect["rejected_with"] in last_input
    total = len(cell["source"]) + len(cell["resume"])
    assert report["usage"] == expected_usage(total)
    assert report["current_turn"] == total

    assert sends(log) == [], "no tool ran on the Python side"
    assert [e["turn"] for e in log.entries("model")] == [0]
    assert record_of(database_url, "py-run")["status"] == "awaiting_approval"


# --- TypeScript -> Python -----------------------------------------------------------------------

TS_TO_PY = [
    "approve_after",
    "reject_after",
    "approve_before",
    "reject_before",
    "two_calls",
    "always",
]


@on_backends(TS_TO_PY)
def test_typescript_to_python_via_cli(
    database_url: str, tmp_path: Path, node_project: NodeProject, cell_name: str
) -> None:
    cell = cell_named(cell_name)
    log = ExecutionLog(tmp_path / "log.jsonl")
    env = env_for(database_url, log.path, TIMESTEP_HANDOVER_CELL=cell_name)
    state_file = tmp_path / "state.json"
    produced = node(node_project, "produce", state_file, cell)
    assert produced["ok"] and produced["executions"] == [] and produced["input_problems"] == []

    imported = cli(env, "state", "import", str(state_file), "--app", APP, "--run-id", "ts-run")
    assert imported.returncode == 0, imported.stderr
    calls = [call["id"] for call in cell["source"][0]["calls"]]
    undecided = [c for c in calls if c not in {d["call"] for d in cell["before"]}]
    status = "awaiting_approval" if undecided else "running"
    assert f"imported run ts-run ({status})" in imported.stdout
    for call in calls:
        assert call in imported.stdout
    record = record_of(database_url, "ts-run")
    assert [p["call_id"] for p in record["pending_approvals"]] == calls
    assert record["usage"]["requests"] == len(cell["source"])

    for decision in cell["after"]:
        decide(env, "ts-run", decision)
    worker = start_worker(env, APP)
    try:
        record = wait_for_status(database_url, "ts-run", "completed")
    finally:
        code, err = stop(worker)
    assert code == 0, err

    expect = cell["expect"]
    assert record["final_output"] == expect["final"]
    assert sends(log) == expect["executed"], "approved tools run exactly once, rejected never"
    models = log.entries("model")
    assert [m["turn"] for m in models] == list(
        range(len(cell["source"]), len(cell["source"]) + len(cell["resume"]))
    ), "the worker asked the model only for the turns after the hand-over"
    assert [m["problems"] for m in models] == [[] for _ in models], (
        "every function_call is paired with its output, in Python's item protocol"
    )
    last_input = json.dumps(models[-1]["input"])
    for call in calls:
        assert f'"call_id": "{call}", "output"' in last_input
    if "rejected_with" in expect:
        assert expect["rejected_with"] in last_input
    total = len(cell["source"]) + len(cell["resume"])
    usage = expected_usage(total)
    assert record["usage"]["requests"] == usage["requests"]
    assert record["usage"]["input_tokens"] == usage["input_tokens"]
    assert record["usage"]["output_tokens"] == usage["output_tokens"]


# --- the Python form ----------------------------------------------------------------------------


async def test_python_export_round_trip(database_url: str, tmp_path: Path) -> None:
    """`--format python` is Python RunState JSON: the SDK loads it, and `state import` takes it
    back as a new parked run; a decision recorded before the export travels with it."""
    cell = cell_named("two_calls")
    log = ExecutionLog(tmp_path / "log.jsonl")
    env = env_for(database_url, log.path, TIMESTEP_HANDOVER_CELL="two_calls")
    park(env, "py-run")
    plain = cli(env, "state", "export", "py-run", "--format", "python")
    assert plain.returncode == 0, plain.stderr
    assert json.loads(plain.stdout)["$schemaVersion"] == "1.21"

    decide(env, "py-run", cell["before"][0])  # approve call_email_1; call_email_2 stays pending
    without_app = cli(env, "state", "export", "py-run")
    assert without_app.returncode == 1
    assert "has decisions recorded on call_email_1; pass --app MODULE" in without_app.stderr
    state_file = tmp_path / "state.json"
    exported = cli(env, "state", "export", "py-run", "--app", APP, "-o", str(state_file))
    assert exported.returncode == 0, exported.stderr

    executions: list[dict[str, Any]] = []
    model = _harness.ScriptedModel(cell["resume"], usage_offset=1)
    mailer = _harness.build_agents(model, executions)["Mailer"]
    state = await RunState.from_json(mailer, json.loads(state_file.read_text()))
    assert state._current_turn == 1
    assert [i.raw_item.call_id for i in state.get_interruptions()] == [  # type: ignore[union-attr]
        "call_email_1",
        "call_email_2",
    ]
    _harness.apply_decisions(state, cell["after"])  # only call_email_2: call_email_1 is decided
    result = await Runner.run(mailer, state)
    assert result.interruptions == []
    assert result.final_output == cell["expect"]["final"]
    assert [e["callId"] for e in executions if e["tool"] == "send_email"] == ["call_email_1"]
    assert model.problems == []

    reimported = cli(env, "state", "import", str(state_file), "--app", APP, "--run-id", "again")
    assert reimported.returncode == 0, reimported.stderr
    assert "imported run again (awaiting_approval)" in reimported.stdout
    assert [p["call_id"] for p in record_of(database_url, "again")["pending_approvals"]] == [
        "call_email_1",
        "call_email_2",
    ]
    # call_email_1 was decided in the document: only call_email_2 is left to decide.
    repeated = cli(env, "reject", "again", "call_email_1")
    assert repeated.returncode == 1 and "already decided: approve" in repeated.stderr
    assert sends(log) == []


# --- refusals -----------------------------------------------------------------------------------


def test_export_refusals(database_url: str, tmp_path: Path) -> None:
    env = env_for(database_url, tmp_path / "log.jsonl", TIMESTEP_HANDOVER_CELL="approve_after")
    engine = create_engine(parse_database_url(database_url), pool_size=1)
    schema.migrate(engine)  # a Timestep database without that run (a missing one says so)
    engine.dispose()
    unknown = cli(env, "state", "export", "nope")
    assert unknown.returncode == 1
    assert "no run with id 'nope'" in unknown.stderr and "Traceback" not in unknown.stderr

    park(env, "parked")
    no_app = cli(env, "state", "export", "parked", "--format", "typescript")
    assert no_app.returncode == 1
    assert "agent 'Mailer' is not defined here; pass --app MODULE" in no_app.stderr

    # Every call decided: the run continues in Python and can no longer be handed over.
    assert "run is now running" in cli(env, "approve", "parked").stdout
    for args in (["--format", "typescript", "--app", APP], ["--format", "python"]):
        running = cli(env, "state", "export", "parked", *args)
        assert running.returncode == 1
        assert "run 'parked' is running, not awaiting approval" in running.stderr


def _typescript_document(tmp_path: Path, node_project: NodeProject) -> dict[str, Any]:
    produced = tmp_path / "produced.json"
    node(node_project, "produce", produced, cell_named("approve_after"))
    document: dict[str, Any] = json.loads(produced.read_text())
    return document


async def _completed_python_document() -> dict[str, Any]:
    model = _harness.ScriptedModel([{"text": "Nothing to send."}])
    mailer = _harness.build_agents(model, [])["Mailer"]
    result = await Runner.run(mailer, PROMPT)
    document: dict[str, Any] = result.to_state().to_json()
    return document


async def test_import_refusals(
    database_url: str, tmp_path: Path, node_project: NodeProject
) -> None:
    env = env_for(database_url, tmp_path / "log.jsonl", TIMESTEP_HANDOVER_CELL="approve_after")
    good = _typescript_document(tmp_path, node_project)
    text = json.dumps(good)
    cases: dict[str, tuple[str, list[str]]] = {
        "truncated": (text[: len(text) // 2], ["the state file is not JSON"]),
        "ts_version": (
            json.dumps({**good, "$schemaVersion": "1.23"}),
            ["$schemaVersion", "'1.23'", "'1.22'"],
        ),
        "py_version": (
            json.dumps({**(await _completed_python_document()), "$schemaVersion": "1.99"}),
            ["$schemaVersion '1.99'", "'1.21'"],
        ),
        "missing_field": (
            json.dumps({k: v for k, v in good.items() if k != "generatedItems"}),
            ["generatedItems"],
        ),
        "completed": (
            json.dumps(await _completed_python_document()),
            ["not paused for approval"],
        ),
        # An edited state: the pending call now names a tool the agent does not have.
        "tampered_tool": (text.replace('"send_email"', '"drop_tables"'), ["drop_tables"]),
    }
    for name, (content, wanted) in cases.items():
        path = tmp_path / f"{name}.json"
        path.write_text(content)
        refused = cli(env, "state", "import", str(path), "--app", APP, "--run-id", name)
        assert refused.returncode == 1, (name, refused.stdout)
        assert refused.stderr.startswith("timestep: error: "), (name, refused.stderr)
        assert "Traceback" not in refused.stderr, (name, refused.stderr)
        for fragment in wanted:
            assert fragment in refused.stderr, (name, refused.stderr)

    missing = cli(env, "state", "import", str(tmp_path / "absent.json"), "--app", APP)
    assert missing.returncode == 1
    assert "cannot read the state file" in missing.stderr and "Traceback" not in missing.stderr

    if database_url.startswith("sqlite:///"):
        # Every import was refused before it opened the database: not even the file exists.
        assert not Path(database_url.removeprefix("sqlite:///")).exists()
    else:
        listed = cli(env, "runs", "list", "--json")
        assert listed.returncode == 0, listed.stderr
        assert json.loads(listed.stdout) == [], "a refused import creates no run"

    good_file = tmp_path / "good.json"
    good_file.write_text(text)
    first = cli(env, "state", "import", str(good_file), "--app", APP, "--run-id", "twice")
    assert first.returncode == 0, first.stderr
    second = cli(env, "state", "import", str(good_file), "--app", APP, "--run-id", "twice")
    assert second.returncode == 1
    assert "run 'twice' already exists" in second.stderr
