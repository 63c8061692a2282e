"""`timestep import-pglite`: timestep 2026.0.x's PGLite store becomes parked runs.

The test builds the store itself with the original's schema (`run_states`, its enum, check and
partial unique index; shared/notes/seed-store.md) in two PGLite databases (`default` and
`db_<session_id>`), under real Node.js with `@electric-sql/pglite`. The saved documents are
schema "1.0" RunStates with the original's top-level keys, made from states the real
@openai/agents 0.20.0 wrote (tests/interop/golden/ts_to_py) by keeping only those keys.
"""

from __future__ import annotations

import copy
import hashlib
import json
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

import timestep
from tests.apps import legacy_app, original_app
from tests.components import unavailable
from timestep import pglite
from timestep.errors import RunNotFoundError, TimestepError
from timestep.state.typescript._original import OriginalDocument
from timestep.state.typescript._original import original_document as original_document_of

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


def pglite_entry(postgres: int) -> Path:
    """The pglite release that import-pglite reads PostgreSQL `postgres` stores with (and the
    Node project it upgrades states with), installed; skip locally, fail under CI, without."""
    try:
        pglite.node_project()
        return pglite.pglite_module(postgres)
    except pglite.PgliteImportError as exc:
        unavailable(str(exc))
        raise


def make_store(entry: Path, root: Path, databases: dict[str, list[dict[str, Any]]]) -> None:
    """Databases with the original's schema, written by the pglite release at `entry`."""
    root.mkdir(parents=True, exist_ok=True)
    spec = {"databases": {str(root / name): rows for name, rows in databases.items()}}
    created = subprocess.run(
        ["node", str(INTEROP_DIR / "pglite_store.mjs"), str(entry)],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert created.returncode == 0, created.stderr


def row(run_id: str, state: Any, *, active: bool = True) -> dict[str, Any]:
    return {"run_id": run_id, "state_type": "interrupted", "state_data": state, "is_active": active}


@pytest.fixture(scope="module")
def legacy_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store whose databases three pglite releases wrote: `default` by the one of PostgreSQL
    18, `db_sess-9` by 19, `db_old` by 16; and `db_pg15`, a database of a PostgreSQL version no
    release known to Timestep opens. Shared: import-pglite only reads (from copies)."""
    root = tmp_path_factory.mktemp("legacy") / "pglite"
    not_paused = original_document("approve_after")
    del not_paused["currentStep"]
    make_store(
        pglite_entry(18),
        root,
        {
            "default": [
                row("legacy-approve", original_document("approve_after")),
                row("legacy-cleared", original_document("approve_after"), active=False),
                row("legacy-broken", {"$schemaVersion": "1.0", "currentTurn": "one"}),
                row("legacy-done", not_paused),
            ]
        },
    )
    make_store(
        pglite_entry(19), root, {"db_sess-9": [row("conv_abc123", original_document("history"))]}
    )
    make_store(
        pglite_entry(16), root, {"db_old": [row("legacy-16", original_document("approve_after"))]}
    )
    (root / "db_pg15").mkdir()
    (root / "db_pg15" / "PG_VERSION").write_text("15\n")
    return root


def tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        digest.update(str(path.relative_to(root)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


LEGACY_IMPORTED = ["conv_abc123", "legacy-16", "legacy-approve"]


def check_legacy_report(root: Path, report: pglite.PgliteImportReport) -> None:
    """What import-pglite finds in `legacy_store`, dry run or not."""
    releases = pglite.pglite_releases()
    assert report.databases == [
        pglite.StoreDatabase(str(root / "db_old"), 16, releases[16]),
        pglite.StoreDatabase(str(root / "db_pg15"), 15, None),
        pglite.StoreDatabase(str(root / "db_sess-9"), 19, releases[19]),
        pglite.StoreDatabase(str(root / "default"), 18, releases[18]),
    ]
    assert sorted(report.imported) == LEGACY_IMPORTED
    reasons = {s.run_id: s.reason for s in report.skipped}
    assert set(reasons) == {"-", "legacy-broken", "legacy-done"}
    assert reasons["-"].startswith("written by PostgreSQL 15 (its PG_VERSION)")
    assert f"PostgreSQL 19 (@electric-sql/pglite {releases[19]})" in reasons["-"]
    assert "@openai/agents cannot load the state (schema '1.0')" in reasons["legacy-broken"]
    assert "not paused for approval" in reasons["legacy-done"]
    assert report.cleared == 1


async def test_import_pglite_store(legacy_store: Path, timestep_db: str) -> None:
    legacy_app.executions.clear()
    legacy_app.model.turns = [{"text": "Sent."}]
    legacy_app.model.problems.clear()
    before = tree_digest(legacy_store)

    report = await pglite.import_pglite(legacy_store, app="tests.apps.legacy_app")
    check_legacy_report(legacy_store, report)
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
    assert tree_digest(legacy_store) == before  # the store is only read


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_dry_run_writes_nothing(legacy_store: Path, timestep_db: str) -> None:
    dry = await pglite.import_pglite(legacy_store, app="tests.apps.legacy_app", dry_run=True)
    check_legacy_report(legacy_store, dry)
    for run_id in LEGACY_IMPORTED:
        with pytest.raises(RunNotFoundError):
            await timestep.get_run(run_id)


async def test_store_of_unknown_postgres_version_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "default").mkdir()
    (tmp_path / "default" / "PG_VERSION").write_text("20\n")
    with pytest.raises(pglite.PgliteImportError, match="written by PostgreSQL 20") as caught:
        await pglite.import_pglite(tmp_path, app="tests.apps.legacy_app")
    assert "no database of the store" in str(caught.value)
    assert isinstance(caught.value, TimestepError)


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


ORIGINAL = INTEROP_DIR / "original"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_store_written_by_the_original_python_package(
    timestep_db: str, tmp_path: Path
) -> None:
    """The PGLite store timestep 2026.0.8 itself wrote (tests/interop/original/README.md):
    PostgreSQL 17 databases, schema "1.0" documents of its Python package."""
    pglite_entry(17)
    with tarfile.open(ORIGINAL / "store.tar.xz") as tar:
        tar.extractall(tmp_path, filter="data")
    root = tmp_path / "pglite"
    written = json.loads((ORIGINAL / "documents.json").read_text())
    active = {row["run_id"]: row["state_data"] for row in written if row["is_active"]}
    assert len(active) == 3 and {row["state_type"] for row in written} == {"checkpoint"}
    original_app.executions.clear()
    original_app.model.turns = [{"text": "It is sunny."} for _ in active]
    original_app.model.inputs.clear()
    original_app.model.problems.clear()

    report = await pglite.import_pglite(root, app="tests.apps.original_app")
    assert {(db.postgres, db.pglite) for db in report.databases} == {
        (17, pglite.pglite_releases()[17])
    }
    assert sorted(report.imported) == sorted(active)
    assert report.skipped == [] and report.cleared == 1

    for run_id, document in active.items():
        call = document["currentStep"]["data"]["interruptions"][0]["rawItem"]
        run = await timestep.get_run(run_id)
        assert run.status == "awaiting_approval"
        assert [(p["call_id"], p["tool_name"], p["arguments"]) for p in run.pending_approvals] == [
            (call["callId"], "get_weather", call["arguments"])
        ]
        await timestep.approve(run_id)
        result = await timestep.resume(run_id)
        assert result.final_output == "It is sunny."
        assert (await timestep.get_run(run_id)).status == "completed"
        resumed_with = original_app.model.inputs[-1]
        assert resumed_with[-1] == {
            "type": "function_call_output",
            "call_id": call["callId"],
            "output": f"sunny in {json.loads(call['arguments'])['city']}",
        }
    assert original_app.executions == [
        {
            "city": json.loads(
                d["currentStep"]["data"]["interruptions"][0]["rawItem"]["arguments"]
            )["city"]
        }
        for d in active.values()
    ]
    assert original_app.model.problems == []
    again = await pglite.import_pglite(root, app="tests.apps.original_app", dry_run=True)
    assert again.imported == []
    assert {s.run_id: s.reason[:33] for s in again.skipped} == {
        run_id: "a run with this id already exists" for run_id in active
    }
    # The session's earlier exchange (a tool call approved and answered) reaches the model.
    conversation = original_app.model.inputs[0]
    assert [item.get("type") for item in conversation[:4]] == [
        "message",
        "function_call",
        "function_call_output",
        "message",
    ]
    assert conversation[2]["output"] == "sunny in Oakland"


def test_original_documents_are_brought_to_the_typescript_item_shapes() -> None:
    """What `original_document` changes in the documents 2026.0.8 wrote, and only that."""
    written = json.loads((ORIGINAL / "documents.json").read_text())
    by_run = {row["run_id"]: row["state_data"] for row in written if row["is_active"]}
    fixed = original_document_of(by_run["conv_1"])
    assert "originalInput[2].output: text output object" in fixed.changes
    assert {"namespace", "caller"} == {
        change.split(":")[0].rsplit(".", 1)[1] for change in fixed.changes if "null" in change
    }
    assert fixed.document["originalInput"][2]["output"] == {
        "type": "text",
        "text": "sunny in Oakland",
    }
    assert "namespace" not in fixed.document["generatedItems"][0]["rawItem"]
    assert original_document_of(fixed.document).changes == []  # nothing left to change
    for run_id, document in by_run.items():
        if run_id != "conv_1":  # written without the null fields and without a session history
            assert original_document_of(document) == OriginalDocument(document, [])
    assert original_document_of("not an object").document == "not an object"
