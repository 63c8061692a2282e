"""The benchmark scripts clean up after themselves and the README keeps no figures by hand.

Timing figures are never asserted (the scripts only report); this runs the cheapest
configuration once, against the test PostgreSQL server, for what it leaves behind.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parent.parent


def _databases(server_url: str) -> set[str]:
    with psycopg.connect(server_url, autocommit=True) as connection:
        return {row[0] for row in connection.execute("SELECT datname FROM pg_database")}


def test_turn_overhead_drops_the_postgres_database_it_creates(postgres_cluster_url: str) -> None:
    before = _databases(postgres_cluster_url)
    done = subprocess.run(
        [
            sys.executable,
            "benchmarks/turn_overhead.py",
            "--json",
            "--backends",
            "postgres",
            "--turns",
            "1",
            "--repetitions",
            "1",
            "--warmup",
            "0",
            # This checkout as its own "before": the helper processes of both sides start,
            # measure and report.
            "--before",
            str(ROOT),
        ],
        cwd=ROOT,
        env={**os.environ, "TIMESTEP_BENCH_PG_URL": postgres_cluster_url},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    postgres = report["postgres"]
    assert postgres["timestep_ms_per_turn"] > 0  # it measured something
    # Every variant ran, the helper process's too, and the figures the README lists are there.
    for key in ("plain", "timestep", "dbosrunner", "floor", "floor_pickle", "bare_steps"):
        assert postgres[f"{key}_ms_per_turn"] > 0, key
    assert postgres["ratio_vs_plain_plus_floor"] == pytest.approx(
        postgres["timestep_ms_per_turn"]
        / (postgres["plain_ms_per_turn"] + postgres["floor_ms_per_turn"]),
        rel=0.01,
    )
    assert postgres["ratio_vs_bare_steps"] == pytest.approx(
        postgres["timestep_ms_per_turn"] / postgres["bare_steps_ms_per_turn"], rel=0.01
    )
    assert report["before"] == str(ROOT)
    before_after = postgres["before_after"]
    for key in ("timestep", "streamed"):
        assert before_after[f"{key}_before_ms_per_turn"] > 0, key
        assert before_after[f"{key}_after_ms_per_turn"] > 0, key
    assert before_after["ratio_after_vs_before"] == pytest.approx(
        before_after["timestep_after_ms_per_turn"] / before_after["timestep_before_ms_per_turn"],
        rel=0.01,
    )
    assert before_after["first_event_before_ms"] > 0 and before_after["first_event_after_ms"] > 0
    streamed = postgres["streamed"]
    assert streamed["first_event_ms"] > 0 and streamed["first_event_plain_ms"] > 0
    assert streamed["ratio_streamed_vs_timestep"] == pytest.approx(
        streamed["timestep_ms_per_turn"] / postgres["timestep_ms_per_turn"], rel=0.01
    )
    spread = postgres["spread"]["ratio_vs_dbosrunner"]
    assert spread["q1"] <= spread["median"] <= spread["q3"]
    leftover = {name for name in _databases(postgres_cluster_url) - before}
    assert not {name for name in leftover if name.startswith("timestep_bench_")}, leftover


def test_benchmarks_readme_keeps_no_measured_figures() -> None:
    """Figures are printed by the scripts; a table of numbers in the README goes stale."""
    text = (ROOT / "benchmarks" / "README.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("|")]
    figures = [row for row in rows if re.search(r"\|\s*\d+\.\d+\s*\|", row)]
    assert figures == []
    assert "Measured" not in text


def test_parked_runs_decisions_table_and_options() -> None:
    """The decisions-per-second figures print with their spread (the JSON carries them)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import parked_runs
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    spread = {"median": 50.0, "min": 40.0, "max": 60.0}
    counts = {"median": 2.0, "min": 2.0, "max": 2.0}
    cell = {
        "sequential_per_s": spread,
        "concurrent_per_s": {"median": 90.0, "min": 80.0, "max": 99.0},
        "statements_per_approve": {
            "timestep": {"median": 3.0, "min": 3.0, "max": 4.0},
            "dbos": counts,
            "total": {"median": 5.0, "min": 5.0, "max": 6.0},
            "commits": {"median": 1.0, "min": 1.0, "max": 1.0},
        },
    }
    table = parked_runs.format_decisions({"sqlite": cell})
    row = table.splitlines()[-1].split()
    assert row[:5] == ["sqlite", "50", "[40-60]", "90", "[80-99]"], table
    assert row[5:] == ["5", "[5-6]", "(3+2)", "1"], table
    args = parked_runs.parse_args(["--decisions-only", "--decisions", "20", "--decide-rounds", "2"])
    assert (args.decisions_only, args.decisions, args.decide_rounds) == (True, 20, 2)


def test_turn_overhead_compares_every_ratio_with_an_earlier_run(tmp_path: Path) -> None:
    """`--compare` reads an earlier run's saved `--json` output and says, ratio by ratio,
    whether the two runs agree within 10%."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import _compare
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    backend = {path.split(".")[-1]: 1.0 for path in _compare.RATIOS if "." not in path}
    backend["streamed"] = {path.split(".")[-1]: 2.0 for path in _compare.RATIOS if "." in path}
    now = {"sqlite": backend}
    earlier = json.loads(json.dumps(now))
    earlier["sqlite"]["ratio_vs_plain"] = 1.05  # within 10%
    earlier["sqlite"]["streamed"]["ratio_vs_plain"] = 3.0  # 40% apart
    saved = tmp_path / "earlier.txt"
    saved.write_text("the table\n" + json.dumps(earlier) + "\n")
    text = _compare.compare(now, _compare.load_report(str(saved)), ["sqlite"])
    lines = {line.split()[1]: line for line in text.splitlines() if line.startswith("sqlite ")}
    assert lines["ratio_vs_plain"].split()[-2:] == ["-4.9%", "yes"], text
    assert lines["streamed.ratio_vs_plain"].split()[-2:] == ["-40.0%", "NO"], text
    total = len(_compare.RATIOS)
    assert text.splitlines()[-1] == f"{total - 1} of {total} ratios agree within 10%"
    saved.write_text("no report here\n")
    with pytest.raises(SystemExit, match="not a JSON report"):
        _compare.load_report(str(saved))
