"""The `timestep` command as a user runs it: real subprocesses on a fresh SQLite database.

Exit codes, `--json` on every command (errors too), one error line without tracebacks, what
commands import, read-only behaviour, `runs steps`, `run --stream`, `resume`, the worker.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from timestep.errors import RunNotFoundError

from .processes import cli, read_only_copy

ROOT = Path(__file__).resolve().parent.parent
ARITHMETIC = "What is 12 * 7, then add 5?"
MAIL = "Email bob@example.com that the build is green"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    environment = {
        **os.environ,
        "TIMESTEP_DB_URL": f"sqlite:///{tmp_path / 'cli.sqlite'}",
        "PYTHONPATH": str(ROOT),
        "TIMESTEP_DEMO_MODEL_SECONDS": "0",
        "TIMESTEP_DEMO_TOOL_SECONDS": "0",
        "TIMESTEP_LEASE_SECONDS": "2",
    }
    environment.pop("OPENAI_API_KEY", None)
    environment.pop("COLUMNS", None)
    return environment


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


def assert_one_error_line(done: subprocess.CompletedProcess[str], *needles: str) -> str:
    lines = error_lines(done.stderr)
    assert done.returncode == 1, done.stdout + done.stderr
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("timestep: error: "), done.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert "Traceback" not in done.stderr + done.stdout
    return lines[0]


# --- start-up: what commands import -------------------------------------------------------


PROBE = """
import json, sys
from timestep.cli.main import main
for argv in json.loads(sys.argv[1]):
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    print(json.dumps({"code": code, "agents": "agents" in sys.modules,
                      "dbos": "dbos" in sys.modules, "sqlalchemy": "sqlalchemy" in sys.modules}),
          file=sys.stderr)
"""


def probes(env: dict[str, str], *commands: list[str]) -> list[dict[str, Any]]:
    """Run `commands` one after the other in one fresh process: after each, its exit code and
    which of the heavy packages the process has loaded so far. Imports only accumulate, so a
    package that is not loaded after a command was loaded by none of the commands before it."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(commands)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    reports = [line for line in done.stderr.strip().splitlines() if line.startswith('{"code"')]
    assert len(reports) == len(commands), done.stderr
    return [json.loads(line) for line in reports]


def probe(env: dict[str, str], *args: str) -> dict[str, Any]:
    return probes(env, list(args))[0]


def test_inspecting_and_deciding_import_neither_the_sdk_nor_dbos(env: dict[str, str]) -> None:
    assert cli(env, "run", "timestep.demo:assistant", ARITHMETIC, "--run-id", "a-1").returncode == 0
    assert cli(env, "run", "timestep.demo:mailer", MAIL, "--run-id", "m-1").returncode == 3
    # On a SQLite file they read with the standard library's sqlite3: not even SQLAlchemy.
    # (One process for the commands that load nothing, then the stored state's export.)
    reading = (["--help"], ["--version"], ["runs", "--help"])
    reading += (["runs", "list"], ["runs", "show", "a-1"], ["runs", "show", "m-1", "--json"])
    *loaded, exported = probes(env, *reading, ["state", "export", "m-1"])  # no decisions yet
    for args, report in zip(reading, loaded, strict=True):
        assert report == {"code": 0, "agents": False, "dbos": False, "sqlalchemy": False}, args
    assert exported == {"code": 0, "agents": False, "dbos": False, "sqlalchemy": True}
    decided = probe(env, "approve", "m-1")
    assert decided["code"] == 0 and decided["agents"] is False  # DBOS's client queues the rest
    # A decision that queues nothing imports neither: a repeat, one on a run with nothing
    # pending (exit code 4), a conflicting one (an error).
    repeated, nothing, conflicting = probes(
        env, ["approve", "m-1", "call_demo_0"], ["approve", "m-1"], ["reject", "m-1"]
    )
    assert repeated == {"code": 0, "agents": False, "dbos": False, "sqlalchemy": True}
    assert nothing == {"code": 4, "agents": False, "dbos": False, "sqlalchemy": True}
    assert conflicting == {"code": 1, "agents": False, "dbos": False, "sqlalchemy": True}


def test_sqlite_reads_agree_with_the_storage_engine(env: dict[str, str]) -> None:
    """`runs list/show` read a SQLite file without SQLAlchemy: the same records as the engine."""
    from timestep import configure
    from timestep.state import records, schema, sqlite_reads, storage

    assert sqlite_reads.SCHEMA_VERSION == schema.MIGRATIONS[-1][0]
    assert cli(env, "run", "timestep.demo:assistant", ARITHMETIC, "--run-id", "a-1").returncode == 0
    assert cli(env, "run", "timestep.demo:mailer", MAIL, "--run-id", "m-1").returncode == 3
    assert cli(env, "run", "timestep.demo:mailer", MAIL, "--run-id", "m-2").returncode == 3
    assert cli(env, "reject", "m-2", "--message", "not now").returncode == 0
    storage.reset()  # an engine another test of this process left
    configure(database_url=env["TIMESTEP_DB_URL"])
    try:
        storage.open_read_only()
        reads = storage.sqlite_reads()
        assert reads is not None
        engine = storage.storage_engine()
        assert storage.sqlite_reads() is reads  # kept once made
        for status in (None, "completed", "awaiting_approval", "running"):
            lite = reads.list_records(status, 10, None, 0)
            assert lite == records.list_records(engine, status, 10), status
        assert [r.run_id for r in reads.list_records(None, 1, "DemoMailer", 1)] == ["m-1"]
        for run_id in ("a-1", "m-1", "m-2"):
            assert reads.get(run_id) == records.get(engine, run_id)
        decided = reads.decisions_for("m-2", 1)
        assert decided == records.decisions_for(engine, "m-2", 1)
        assert (
            decided["call_demo_0"].message == "not now" and decided["call_demo_0"].always is False
        )
        with pytest.raises(RunNotFoundError):
            reads.get("nope")
    finally:
        storage.reset()


def test_deciding_one_of_two_calls_imports_neither_the_sdk_nor_dbos(env: dict[str, str]) -> None:
    """Only the decision that lets a run continue imports DBOS (its client queues the run)."""
    from timestep import configure
    from timestep.state import records, storage

    # A real parked run first: like every parked run's, its segment made DBOS's tables.
    assert cli(env, "run", "timestep.demo:mailer", MAIL, "--run-id", "m-1").returncode == 3
    configure(database_url=env["TIMESTEP_DB_URL"])
    try:
        engine = storage.storage_engine()
        pending: list[records.PendingApproval] = [
            {"call_id": f"call-{n}", "tool_name": "send_email", "arguments": "{}", "agent": "A"}
            for n in (1, 2)
        ]
        records.insert_parked(
            engine, "two", "A", {}, "", state={}, pending=pending, usage={}, decided=[]
        )
    finally:
        storage.reset()
        configure(database_url=None)
    first = probe(env, "approve", "two", "call-1")
    assert first == {"code": 0, "agents": False, "dbos": False, "sqlalchemy": True}
    assert "still awaiting_approval" in cli(env, "approve", "two", "call-1").stdout
    last = probe(env, "reject", "two", "call-2")
    assert last["code"] == 0 and last["dbos"] is True and last["agents"] is False
    shown = json.loads(cli(env, "runs", "show", "two", "--json").stdout)
    assert shown["status"] == "running" and shown["segment"] == 2
    assert [c["decision"] for c in shown["pending_approvals"]] == ["approve", "reject"]


_RESOLVE = (
    "from dbos.cli.cli import _resolve_db_url; print(_resolve_db_url(system_database_url=None))"
)


@pytest.mark.parametrize("given", ["TIMESTEP_DB_URL", "XDG_DATA_HOME", "neither"])
def test_dbos_config_names_timestep_database(
    env: dict[str, str], tmp_path: Path, given: str
) -> None:
    """DBOS's CLI reads the repository's dbos-config.yaml (with its own ${VAR} substitution)
    and finds the database `timestep db-url` names: TIMESTEP_DB_URL, else the default file."""
    environment = {k: v for k, v in env.items() if k not in ("TIMESTEP_DB_URL", "XDG_DATA_HOME")}
    environment["HOME"] = str(tmp_path)
    if given == "TIMESTEP_DB_URL":
        environment[given] = "postgresql://someone:secret@db.example:5432/runs"
    elif given == "XDG_DATA_HOME":
        environment[given] = str(tmp_path / "data")
    resolved = subprocess.run(
        [sys.executable, "-c", _RESOLVE], cwd=ROOT, env=environment, capture_output=True, text=True
    )
    assert resolved.returncode == 0, resolved.stderr
    assert resolved.stdout.strip() == cli(environment, "db-url").stdout.strip()


def test_dbos_workflow_list_finds_runs_in_the_default_database(
    env: dict[str, str], tmp_path: Path
) -> None:
    environment = {k: v for k, v in env.items() if k not in ("TIMESTEP_DB_URL", "XDG_DATA_HOME")}
    environment["HOME"] = str(tmp_path)
    assert (
        cli(environment, "run", "timestep.demo:assistant", ARITHMETIC, "--run-id", "d-1").returncode
        == 0
    )
    app = tmp_path / "app"
    app.mkdir()
    shutil.copy(ROOT / "dbos-config.yaml", app / "dbos-config.yaml")
    listed = subprocess.run(
        [str(Path(sys.executable).parent / "dbos"), "workflow", "list"],
        cwd=app,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listed.returncode == 0, listed.stderr
    assert "d-1" in listed.stdout
    assert list(app.iterdir()) == [app / "dbos-config.yaml"]  # no ./timestep.sqlite


def test_version(env: dict[str, str]) -> None:
    from importlib.metadata import version

    done = cli(env, "--version")
    assert done.returncode == 0 and done.stdout.strip() == f"timestep {version('timestep')}"


def test_statuses_spelled_out_for_help_agree_with_the_records() -> None:
    from timestep.cli.runs import STATUSES
    from timestep.state.records import STATUSES as RECORDED

    assert STATUSES == RECORDED


# --- exit codes and --json -----------------------------------------------------------------


def test_exit_codes_and_json_on_run_approve_resume(env: dict[str, str]) -> None:
    done = cli(env, "run", "timestep.demo:assistant", ARITHMETIC, "--run-id", "a-1", "--json")
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["status"] == "completed" and "The answer is 89." in record["final_output"]

    parked = cli(env, "run", "timestep.demo:mailer", MAIL, "--run-id", "m-1", "--json")
    assert parked.returncode == 3, parked.stderr  # awaiting approval, not a usage error (2)
    pending = json.loads(parked.stdout)["pending_approvals"]
    assert [p["tool_name"] for p in pending] == ["send_email"]

    approved = cli(env, "approve", "m-1", "--json")
    assert approved.returncode == 0, approved.stderr
    assert json.loads(approved.stdout)["status"] == "running"
    resumed = cli(env, "resume", "m-1", "--app", "timestep.demo", "--json")
    assert resumed.returncode == 0, resumed.stderr
    finished = json.loads(resumed.stdout)
    assert (
        finished["status"] == "completed" and "sent to bob@example.com" in finished["final_output"]
    )

    cli(env, "run", "timestep.demo:mailer", MAIL, "--run-id", "m-2")
    rejected = cli(env, "reject", "m-2", "--message", "not today", "--json")
    assert rejected.returncode == 0, rejected.stderr
    assert json.loads(rejected.stdout)["pending_approvals"][0]["decision"] == "reject"


def test_usage_errors_exit_2_and_are_json_under_json(env: dict[str, str]) -> None:
    plain = cli(env, "runs", "bogus")
    assert plain.returncode == 2 and "invalid choice" in plain.stderr
    as_json = cli(env, "runs", "show", "--json")
    assert as_json.returncode == 2
    error = json.loads(as_json.stdout)["error"]
    assert error["type"] == "UsageError" and error["exit_code"] == 2


def test_errors_are_json_under_json(env: dict[str, str]) -> None:
    cli(env, "run", "timestep.demo:assistant", ARITHMETIC, "--run-id", "a-1")
    done = cli(env, "runs", "show", "nope", "--json")
    assert done.returncode == 1 and done.stderr == ""
    error = json.loads(done.stdout)["error"]
    assert error["type"] == "RunNotFoundError" and "nope" in error["message"]


def test_state_export_and_import_with_json(env: dict[str, str], tmp_path: Path) -> None:
    assert cli(env, "run", "timestep.demo:mailer", MAIL, "--run-id", "m-1").returncode == 3
    state_file = tmp_path / "state.json"
    exported = cli(env, "state", "export", "m-1", "-o", str(state_file), "--json")
    assert exported.returncode == 0, exported.stderr
    assert json.loads(exported.stdout) == {
        "run_id": "m-1",
        "format": "python",
        "path": str(state_file),
    }
    imported = cli(
        env,
        "state",
        "import",
        str(state_file),
        "--app",
        "timestep.demo",
        "--run-id",
        "m-copy",
        "--json",
    )
    assert imported.returncode == 0, imported.stderr
    record = json.loads(imported.stdout)
    assert (record["run_id"], record["status"]) == ("m-copy", "awaiting_approval")


def test_global_options_after_the_subcommand(env: dict[str, str], tmp_path: Path) -> None:
    other = f"sqlite:///{tmp_path / 'other.sqlite'}"
    ran = cli(env, "run", "timestep.demo:assistant", ARITHMETIC, "--run-id", "o-1", "--db", other)
    assert ran.returncode == 0, ran.stderr
    listed = cli(env, "runs", "list", "--db", other, "--json")
    assert [r["run_id"] for r in json.loads(listed.stdout)] == ["o-1"]
    before = cli(env, "--db", other, "--json", "runs", "list")
    assert json.loads(before.stdout) == json.loads(listed.stdout)


# --- one error line -------------------------------------------------------------------------


def test_missing_openai_key_says_what_to_do(env: dict[str, str]) -> None:
    done = cli(env, "run", "examples.assistant:assistant", "hi")
    assert_one_error_line(done, "OPENAI_API_KEY", "--model ollama/", "timestep.demo")


def test_sdk_user_error_is_one_line(env: dict[str, str]) -> None:
    done = cli(env, "run", "examples.assistant:assistant", "hi", "--model", "ollama/")
    assert_one_error_line(done, "needs a model name")


def test_model_behavior_error_is_one_line_and_verbose_shows_the_traceback(
    env: dict[str, str],
) -> None:
    done = cli(env, "run", "tests.apps.cli_app:misbehaving", "hi", "--run-id", "mb-1")
    assert_one_error_line(done, "no_such_tool", "runs retry")
    assert "Exception encountered in asynchronous workflow" not in done.stderr
    verbose = cli(env, "run", "tests.apps.cli_app:misbehaving", "hi", "--run-id", "mb-2", "-v")
    assert verbose.returncode == 1 and "Traceback" in verbose.stderr
    assert verbose.stderr.strip().splitlines()[-1].startswith("timestep: error: ")


def test_a_plain_exception_in_a_run_is_one_line_and_the_log_file_has_dbos_records(
    env: dict[str, str], tmp_path: Path
) -> None:
    log = tmp_path / "cli.log"
    done = cli(
        env, "run", "tests.apps.cli_app:crashing", "hi", "--run-id", "c-1", "--log-file", str(log)
    )
    assert_one_error_line(done, "ValueError", "broke on purpose")
    assert "Exception encountered in asynchronous workflow" in log.read_text()
    listed = json.loads(cli(env, "runs", "show", "c-1", "--json").stdout)
    assert listed["status"] == "failed"


def test_a_bad_agent_reference_is_one_line(env: dict[str, str]) -> None:
    assert_one_error_line(cli(env, "run", "no_such_module:agent", "hi"), "no_such_module")


def test_ctrl_c_is_one_line_with_exit_130(env: dict[str, str]) -> None:
    slow = {**env, "TIMESTEP_DEMO_TOOL_SECONDS": "30"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "timestep.cli",
            "run",
            "timestep.demo:assistant",
            ARITHMETIC,
            "--run-id",
            "int-1",
        ],
        cwd=ROOT,
        env=slow,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    seen = []
    for line in process.stderr:  # wait until the first tool runs
        seen.append(line)
        if "[tool multiply] executing" in line:
            break
    process.send_signal(signal.SIGINT)
    _out, rest = process.communicate(timeout=60)
    stderr = "".join(seen) + rest
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1].startswith("timestep: error: interrupted")


# --- read-only commands ---------------------------------------------------------------------


def test_a_mistyped_database_path_is_an_error_and_creates_nothing(
    env: dict[str, str], tmp_path: Path
) -> None:
    typo = tmp_path / "tpyo.sqlite"
    for args in (["runs", "list"], ["runs", "show", "x"], ["runs", "steps", "x"]):
        done = cli(env, *args, "--db", f"sqlite:///{typo}")
        assert_one_error_line(done, "no Timestep database", str(typo))
        assert not typo.exists()


def test_runs_list_on_a_fresh_machine_creates_no_database(
    env: dict[str, str], tmp_path: Path
) -> None:
    fresh = {k: v for k, v in env.items() if k != "TIMESTEP_DB_URL"}
    fresh["XDG_DATA_HOME"] = str(tmp_path / "data")
    fresh["HOME"] = str(tmp_path)
    done = cli(fresh, "runs", "list")
    assert done.returncode == 0 and "no runs yet" in done.stdout
    assert not (tmp_path / "data").exists()


@pytest.mark.skipif(shutil.which("setpriv") is None and os.geteuid() == 0, reason="no setpriv")
def test_a_read_only_database_file_can_be_listed_and_shown(
    env: dict[str, str], tmp_path: Path
) -> None:
    assert cli(env, "run", "timestep.demo:assistant", ARITHMETIC, "--run-id", "a-1").returncode == 0
    with read_only_copy(tmp_path / "cli.sqlite") as (db, prefix):
        shared = db.parent
        ro_env = {**env, "TIMESTEP_DB_URL": f"sqlite:///{db}", "HOME": str(shared)}
        for args in (["runs", "list", "--json"], ["runs", "show", "a-1", "--json"]):
            done = subprocess.run(
                [*prefix, sys.executable, "-m", "timestep.cli", *args],
                cwd=ROOT,
                env=ro_env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert done.returncode == 0, done.stderr
            found = json.loads(done.stdout)
            assert (found[0] if isinstance(found, list) else found)["run_id"] == "a-1"
        assert sorted(p.name for p in shared.iterdir()) == ["ro.sqlite"]


# --- tables, steps, streaming -------------------------------------------------------------


def test_runs_list_is_a_table_sorted_by_update_time(env: dict[str, str]) -> None:
    cli(env, "run", "timestep.demo:mailer", MAIL, "--run-id", "first-parked")
    cli(env, "run", "timestep.demo:assistant", ARITHMETIC, "--run-id", "a-1")
    cli(env, "approve", "first-parked")  # updated last
    lines = cli(env, "runs", "list").stdout.splitlines()
    header = lines[0].split()
    assert header[:8] == [
        *("RUN", "STATUS", "AGENT", "VERSION", "MODEL", "UPDATED", "DURATION", "USAGE")
    ]
    rows = [line for line in lines[2:] if line.strip()]
    assert [row.split()[0] for row in rows] == ["first-parked", "a-1"]
    status_column = lines[0].index("STATUS")
    assert all(row[status_column - 1] == " " for row in rows)  # aligned columns
    listed = json.loads(cli(env, "runs", "list", "--json").stdout)
    updated = [r["updated_at"] for r in listed]
    assert updated == sorted(updated, reverse=True)


def test_runs_steps_lists_model_and_tool_calls(env: dict[str, str]) -> None:
    cli(env, "run", "timestep.demo:assistant", ARITHMETIC, "--run-id", "a-1")
    steps = json.loads(cli(env, "runs", "steps", "a-1", "--json").stdout)
    assert [(s["kind"], s["name"]) for s in steps] == [
        ("model", "-> multiply"),
        ("tool", "multiply"),
        ("model", "-> add"),
        ("tool", "add"),
        ("model", "-> message"),
    ]
    assert all(s["status"] == "done" and s["segment"] == 1 for s in steps)
    table = cli(env, "runs", "steps", "a-1").stdout
    assert table.splitlines()[0].split() == [
        "SEGMENT",
        "STEP",
        "KIND",
        "NAME",
        "STARTED",
        "DURATION",
        "STATUS",
    ]


def test_run_stream_prints_text_and_tool_calls_as_they_happen(env: dict[str, str]) -> None:
    done = cli(env, "run", "timestep.demo:assistant", ARITHMETIC, "--stream", "--run-id", "s-1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[demo model] 12 * 7 = 84, then 84 + 5 = 89. The answer is 89."
    events = [line for line in done.stderr.splitlines() if line[:1] in "→←"]
    assert events == [
        '→ multiply({"a": 12.0, "b": 7.0})',
        "← multiply: 84.0",
        '→ add({"a": 84.0, "b": 5.0})',
        "← add: 89.0",
    ]
    tail = cli(env, "runs", "tail", "s-1")
    assert "The answer is 89." in tail.stdout and "[run completed]" in tail.stderr


def test_worker_command_runs_an_approved_continuation(env: dict[str, str]) -> None:
    assert cli(env, "run", "timestep.demo:mailer", MAIL, "--run-id", "w-1").returncode == 3
    worker = subprocess.Popen(
        [sys.executable, "-m", "timestep.cli", "worker", "--app", "timestep.demo"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert cli(env, "approve", "w-1").returncode == 0
        deadline = time.monotonic() + 60
        status = ""
        while time.monotonic() < deadline and status != "completed":
            status = json.loads(cli(env, "runs", "show", "w-1", "--json").stdout)["status"]
            time.sleep(0.3)
        assert status == "completed"
    finally:
        worker.send_signal(signal.SIGTERM)
        _out, stderr = worker.communicate(timeout=60)
    assert worker.returncode == 0, stderr
    assert "worker ready" in stderr and "Workflow already exists" not in stderr


# --- the README's offline quickstart, exactly as written -----------------------------------


def _readme_blocks() -> list[list[str]]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Install and run", 1)[1].split("\n## ", 1)[0]
    blocks = [part.split("```", 1)[0] for part in section.split("```bash\n")[1:]]
    return [[line for line in block.splitlines() if line.strip()] for block in blocks]


def test_readme_offline_quickstart(tmp_path: Path) -> None:
    install, durability = _readme_blocks()[:2]
    assert len(install) == 1 and install[0].startswith("python3 -m venv .venv && ")
    first_run = install[0][install[0].index(".venv/bin/timestep") :]  # the install is done
    bin_dir = f"{Path(sys.executable).parent}/"
    environment = {
        k: v for k, v in os.environ.items() if k not in ("TIMESTEP_DB_URL", "OPENAI_API_KEY")
    }
    environment.update(
        HOME=str(tmp_path),
        XDG_DATA_HOME=str(tmp_path / "data"),
        TIMESTEP_DEMO_MODEL_SECONDS="0",
        TIMESTEP_DEMO_TOOL_SECONDS="0",
    )

    def shell(line: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-c", line.replace(".venv/bin/", bin_dir)],
            cwd=ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
        )

    done = shell(first_run)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[demo model] 12 * 7 = 84, then 84 + 5 = 89. The answer is 89."
    assert (tmp_path / "data" / "timestep" / "timestep.sqlite").is_file()

    results = [shell(line) for line in durability]
    crashed, steps, again, parked, approved, resumed, listed = results
    assert crashed.returncode == 137 and "[tool add] executing 84 + 5" in crashed.stderr
    kinds = [line.split()[2:4] for line in steps.stdout.splitlines()[2:]]
    assert kinds == [["model", "->"], ["tool", "multiply"], ["model", "->"]]  # add not recorded
    assert again.returncode == 0 and "The answer is 89." in again.stdout
    executed = [line for line in again.stderr.splitlines() if line.startswith("[tool ")]
    assert executed == ["[tool add] executing 84 + 5"]  # multiply was not executed again
    assert parked.returncode == 3 and "awaits approval" in parked.stdout
    assert approved.returncode == 0 and "run is now running" in approved.stdout
    assert resumed.returncode == 0, resumed.stderr
    assert "send_email answered: sent to bob@example.com" in resumed.stdout
    assert listed.returncode == 0
    assert [line.split()[:2] for line in listed.stdout.splitlines()[2:5]] == [
        ["demo-3", "completed"],
        ["demo-2", "completed"],
        ["demo-1", "completed"],
    ]


# --- the rough edges a newcomer met (issue 27) ----------------------------------------------


def test_every_command_has_a_description() -> None:
    import argparse

    from timestep.cli.main import build_parser

    def walk(parser: argparse.ArgumentParser, path: str) -> list[str]:
        missing = [] if parser.description else [path]
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    missing += walk(sub, f"{path} {name}")
        return missing

    assert walk(build_parser(), "timestep") == []


def test_a_wrong_agent_reference_is_said_before_the_sdk_is_imported(env: dict[str, str]) -> None:
    reports = probes(
        env,
        ["run", "timestep.demo", "hi"],
        ["run", "timestep.no_such_module:assistant", "hi"],
        ["run", "no_such_package.app:assistant", "hi"],
        ["resume", "r-1", "--app", "no_such_module"],
    )
    assert [r["code"] for r in reports] == [1, 1, 1, 1]
    assert not any(r["agents"] or r["dbos"] for r in reports), reports
    shape = assert_one_error_line(cli(env, "run", "timestep.demo", "hi"), "MODULE:AGENT")
    assert "timestep.demo:assistant" in shape
    assert_one_error_line(cli(env, "run", "timestep.demox:a", "hi"), "'timestep.demox'")


def test_hints_name_the_module_and_one_worker_command(env: dict[str, str]) -> None:
    """A parked run's hint names the module it was run from; a re-run prints no DBOS warning;
    after a decision with no live worker, every hint says `timestep worker`; tailing a run
    that was not streamed says so."""
    first = cli(env, "run", "timestep.demo:mailer", MAIL, "--run-id", "h-1")
    again = cli(env, "run", "timestep.demo:mailer", MAIL, "--run-id", "h-1")
    for done in (first, again):
        assert done.returncode == 3, done.stderr
        assert "timestep resume h-1 --app timestep.demo" in done.stdout
        assert "timestep worker --app timestep.demo" in done.stdout
        assert "MODULE" not in done.stdout
        assert done.stderr == ""  # no "Workflow already exists in queue" from DBOS
    tail = cli(env, "runs", "tail", "h-1")
    assert_one_error_line(tail, "not started with streaming", "timestep runs steps h-1")
    approved = cli(env, "approve", "h-1")
    assert approved.returncode == 0, approved.stderr
    # The run recorded the module its agent came from: the hints after a decision name it.
    assert "timestep worker --app timestep.demo" in approved.stderr
    assert "timestep resume h-1 --app timestep.demo" in approved.stderr
    shown = cli(env, "runs", "show", "h-1", "--json")
    assert json.loads(shown.stdout)["app_module"] == "timestep.demo"
    assert "timestep worker --app timestep.demo" in json.loads(shown.stdout)["note"]
    for done in (first, approved, shown):
        assert "python -m workflows" not in done.stdout + done.stderr


def test_database_errors_name_where_the_url_came_from(env: dict[str, str], tmp_path: Path) -> None:
    unreachable = "postgresql://nobody@127.0.0.1:1/timestep"
    given = cli(env, "--db", unreachable, "runs", "list")
    assert_one_error_line(given, "127.0.0.1:1", "given by --db")
    from_env = cli({**env, "TIMESTEP_DB_URL": unreachable}, "runs", "list")
    assert_one_error_line(from_env, "given by TIMESTEP_DB_URL")
    typo = tmp_path / "tpyo.sqlite"
    listed = cli(env, "runs", "list", "--db", f"sqlite:///{typo}")
    assert_one_error_line(listed, str(typo), "(from --db)")
    # `serve` refuses it too (an empty inbox for a typo), unless asked to create it.
    served = cli(env, "serve", "--db", f"sqlite:///{typo}", "--port", "1")
    assert_one_error_line(served, str(typo), "--create")
    assert not typo.exists()


def test_serve_refuses_a_postgres_database_that_does_not_exist(
    env: dict[str, str], postgres_url: str
) -> None:
    import sqlalchemy as sa

    missing = postgres_url.rsplit("/", 1)[0] + "/timestep_tpyo"
    served = cli(env, "serve", "--db", missing, "--port", "1")
    assert_one_error_line(served, "'timestep_tpyo'", "--create")
    admin = sa.create_engine(postgres_url)
    try:
        with admin.connect() as connection:
            found = connection.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = 'timestep_tpyo'")
            ).first()
    finally:
        admin.dispose()
    assert found is None  # nothing was created


def test_an_imported_run_says_no_model_was_called_yet() -> None:
    from timestep.cli.render import NO_MODEL_YET, model_of
    from timestep.state.run_record import ModelUsage, RunRecord

    imported = RunRecord("i-1", "Mailer", "awaiting_approval", 1.0, 1.0)
    assert model_of(imported) == NO_MODEL_YET
    ran = RunRecord("r-1", "Mailer", "completed", 1.0, 2.0, usage_by_model={"m": ModelUsage(1)})
    assert model_of(ran) == "m"
