"""`timestep import-pglite`: timestep 2026.0.x's PGLite store becomes parked runs.

The test builds the store itself with the original's schema (`run_states`, its enum, check and
partial unique index; shared/notes/seed-store.md) in two PGLite databases (`default` and
`db_<session_id>`), under real Node.js with `@electric-sql/pglite`. The saved documents are
schema "1.0" RunStates with the original's top-level keys, made from states the real
@openai/agents 0.20.0 wrote (tests/interop/golden/ts_to_py) by keeping only those keys.
"""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

import timestep
from tests.apps import legacy_app
from tests.components import unavailable
from timestep import pglite
from timestep.errors import RunNotFoundError, TimestepError

INTEROP_DIR = Path(__file__).resolve().parent
GOLDEN = INTEROP_DIR / "golden" / "ts_to_py"
ORIGINAL_KEYS = (
    "trace, context, maxTurns, currentStep, currentTurn, currentAgent, originalInput, "
    "generatedItems, modelResponses, toolUseTracker, noActiveAgentRun, lastModelResponse, "
    "inputGuardrailResults, lastProcessedResponse, outputGuardrailResults, "
    "currentTurnPersistedItemCount"
).split(", ")


def original_document(cell: str) -> dict[str, Any]:
    """A JS 0.20.0 state of `cell` cut down to the original's 1.0 layout."""
    written = json.loads((GOLDEN / f"{cell}.json").read_text())["typescript_input"]
    document = {key: copy.deepcopy(written[key]) for key in ORIGINAL_KEYS if key in written}
    document["context"] = {k: document["context"][k] for k in ("usage", "approvals", "context")}
    processed = document.get("lastProcessedResponse") or {}
    for item in [*document["generatedItems"], *processed.get("newItems", [])]:
        item.pop("executionStatus", None)  # execution provenance came after 1.0
    return {"$schemaVersion": "1.0", **document}


@pytest.fixture(scope="module")
def project() -> Path:
    try:
        return pglite.node_project()[1]
    except pglite.PgliteImportError as exc:
        unavailable(str(exc))
        raise


def make_store(project: Path, root: Path, databases: dict[str, list[dict[str, Any]]]) -> None:
    root.mkdir(parents=True)
    spec = {"databases": {str(root / name): rows for name, rows in databases.items()}}
    created = subprocess.run(
        ["node", str(INTEROP_DIR / "pglite_store.mjs"), str(project)],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert created.returncode == 0, created.stderr


def row(run_id: str, state: Any, *, active: bool = True) -> dict[str, Any]:
    return {"run_id": run_id, "state_type": "interrupted", "state_data": state, "is_active": active}


async def test_import_pglite_store(project: Path, timestep_db: str, tmp_path: Path) -> None:
    legacy_app.executions.clear()
    legacy_app.model.turns = [{"text": "Sent."}]
    legacy_app.model.problems.clear()
    root = tmp_path / "pglite"
    not_paused = original_document("approve_after")
    del not_paused["currentStep"]
    make_store(
        project,
        root,
        {
            "default": [
                row("legacy-approve", original_document("approve_after")),
                row("legacy-cleared", original_document("approve_after"), active=False),
                row("legacy-broken", {"$schemaVersion": "1.0", "currentTurn": "one"}),
                row("legacy-done", not_paused),
            ],
            "db_sess-9": [row("conv_abc123", original_document("history"))],
        },
    )

    dry = await pglite.import_pglite(root, app="tests.apps.legacy_app", dry_run=True)
    assert dry.databases == [str(root / "db_sess-9"), str(root / "default")]
    assert sorted(dry.imported) == ["conv_abc123", "legacy-approve"]
    reasons = {s.run_id: s.reason for s in dry.skipped}
    assert set(reasons) == {"legacy-broken", "legacy-done"}
    assert "@openai/agents cannot load the state (schema '1.0')" in reasons["legacy-broken"]
    assert "not paused for approval" in reasons["legacy-done"]
    assert dry.cleared == 1
    for run_id in dry.imported:
        with pytest.raises(RunNotFoundError):
            await timestep.get_run(run_id)  # a dry run writes nothing

    report = await pglite.import_pglite(root, app="tests.apps.legacy_app")
    assert sorted(report.imported) == ["conv_abc123", "legacy-approve"]
    assert {s.run_id for s in report.skipped} == {"legacy-broken", "legacy-done"}
    for run_id in ("legacy-broken", "legacy-done", "legacy-cleared"):
        with pytest.raises(RunNotFoundError):
            await timestep.get_run(run_id)
    history = await timestep.get_run("conv_abc123")
    assert history.status == "awaiting_approval"
    assert [p["call_id"] for p in history.pending_approvals] == ["call_email_1"]

    await timestep.approve("legacy-approve")
    result = await timestep.resume("legacy-approve")
    assert result.final_output == "Sent."
    assert [e["callId"] for e in legacy_app.executions] == ["call_email_1"]
    assert legacy_app.model.problems == []

    again = await pglite.import_pglite(root, app="tests.apps.legacy_app")
    assert again.imported == []
    assert {s.run_id: s.reason for s in again.skipped}["conv_abc123"].startswith(
        "a run with this id already exists"
    )


def test_missing_store_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no PGLite store") as caught:
        pglite.find_databases(tmp_path / "nowhere")
    assert isinstance(caught.value, TimestepError)
    (tmp_path / "empty").mkdir()
    with pytest.raises(pglite.PgliteStoreNotFoundError, match="PG_VERSION"):
        pglite.find_databases(tmp_path / "empty")


def test_cli_import_pglite_reports_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from timestep._engine import launch
    from timestep.cli.main import main

    url = f"sqlite:///{tmp_path}/cli.sqlite"
    try:
        code = main(["--db", url, "import-pglite", str(tmp_path / "nowhere"), "--app", "x"])
    finally:
        launch.reset_for_tests()
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no PGLite store at" in err[0]
