#!/usr/bin/env python
"""How long `timestep` commands take to start and answer, side by side with references.

Each command runs as a fresh subprocess `--repeats` times (after one unmeasured warm-up), in
round-robin order so that a change in machine load hits every command alike. The table shows
the median wall time with [min-max] and, for `timestep` commands, the ratio to
`dbos workflow list` on the same database (the issue's goal: `runs list` at most half of it).

`timestep approve RUN` is measured on runs parked by the demo mailer, one fresh run per
measurement: the approval is the run's last pending decision, so the command records it and
queues the continuation (DBOS's client is imported for that; nothing runs it, no worker lives).

References: `python -c pass` (the interpreter alone), `python -c "import timestep"` (the whole
library: what every command imported before the CLI was made lazy), `dbos --help` and
`dbos workflow list` on the same database.

With `--before DIR` (a checkout of an earlier commit, e.g. `git worktree add /tmp/before
COMMIT`), the same `timestep` commands also run from that tree (`PYTHONPATH=DIR python -m
timestep.cli`), so before and after figures come from one run on one machine.

Usage (from the repository root)::

    .venv/bin/python benchmarks/cli_startup.py [--repeats 7] [--before DIR] [--json]

A fresh SQLite database with a few completed runs of the offline demo agent is made in a
temporary directory first. The script reports; it asserts nothing about timing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _timed(command: list[str], env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    # Not in the repository: `python -m` puts the working directory first on sys.path, which
    # would shadow the `--before` tree given in PYTHONPATH.
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr}")
    return elapsed


MAIL = "Email bob@example.com that the build is green"


def _populate(env: dict[str, str], runs: int, parked: list[str], cwd: Path) -> None:
    """`runs` completed demo runs, and one run parked for approval per id in `parked`."""
    jobs = [
        ("timestep.demo:assistant", "What is 12 * 7, then add 5?", f"bench-{i}", 0)
        for i in range(runs)
    ] + [("timestep.demo:mailer", MAIL, run_id, 3) for run_id in parked]
    for agent, text, run_id, code in jobs:
        done = subprocess.run(
            [sys.executable, "-m", "timestep.cli", "run", agent, text, "--run-id", run_id],
            env=env,
            cwd=cwd,
            capture_output=True,
        )
        if done.returncode != code:
            raise SystemExit(f"populating {run_id} failed ({done.returncode}):\n{done.stderr}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="measured runs per command")
    parser.add_argument("--runs", type=int, default=5, help="demo runs in the database")
    parser.add_argument("--before", metavar="DIR", help="an earlier checkout to compare with")
    parser.add_argument("--json", action="store_true", help="also print one JSON line (last)")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="timestep-cli-bench-"))
    try:
        db = workdir / "bench.sqlite"
        env = {**os.environ, "TIMESTEP_DB_URL": f"sqlite:///{db}", "PYTHONPATH": str(ROOT)}
        env.pop("OPENAI_API_KEY", None)
        # `timestep approve` decides a parked run once: each measured approve (and warm-up) gets
        # its own, on the run's only pending call, so that it queues the continuation.
        variants = ["after"] + (["before"] if args.before else [])
        parked = [f"park-{v}-{i}" for v in variants for i in range(args.repeats + 1)]
        print(
            f"populating {db} with {args.runs} demo runs and {len(parked)} parked runs ...",
            file=sys.stderr,
        )
        _populate(env, args.runs, [], workdir)
        # Their own database: an approved run is queued (running), and `runs list` would then
        # also ask DBOS who runs it, which the listing of completed runs measured here does not.
        approve_env = {**env, "TIMESTEP_DB_URL": f"sqlite:///{workdir / 'approve.sqlite'}"}
        _populate(approve_env, 0, parked, workdir)
        py = sys.executable
        dbos = str(Path(py).parent / "dbos")
        after = [py, "-m", "timestep.cli"]
        commands: dict[str, tuple[list[str], dict[str, str]]] = {
            "python -c pass": ([py, "-c", "pass"], env),
            "python -c 'import timestep'": ([py, "-c", "import timestep"], env),
            "dbos --help": ([dbos, "--help"], env),
            "dbos workflow list": ([dbos, "workflow", "list", "-s", f"sqlite:///{db}"], env),
        }
        subcommands = {
            "--help": ["--help"],
            "runs list": ["runs", "list"],
            "runs show": ["runs", "show", "bench-0"],
        }
        for label, argv in subcommands.items():
            commands[f"timestep {label}"] = (after + argv, env)
        commands["timestep approve"] = (after + ["approve", "park-after-{round}"], approve_env)
        if args.before:
            before_env = {**env, "PYTHONPATH": str(Path(args.before).resolve())}
            for label, argv in subcommands.items():
                commands[f"timestep {label} (before)"] = (after + argv, before_env)
            commands["timestep approve (before)"] = (
                after + ["approve", "park-before-{round}"],
                {**approve_env, "PYTHONPATH": before_env["PYTHONPATH"]},
            )

        def argv_of(command: list[str], round_number: int) -> list[str]:
            return [part.replace("{round}", str(round_number)) for part in command]

        samples: dict[str, list[float]] = {name: [] for name in commands}
        for command, command_env in commands.values():  # warm-up (page cache, .pyc)
            _timed(argv_of(command, args.repeats), command_env, workdir)
        for round_number in range(args.repeats):
            print(f"round {round_number + 1}/{args.repeats}", file=sys.stderr)
            for name, (command, command_env) in commands.items():
                samples[name].append(_timed(argv_of(command, round_number), command_env, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    reference = statistics.median(samples["dbos workflow list"])
    figures = {}
    print(f"{'command':<36} {'median s':>9} {'[min-max]':>15} {'/ dbos workflow list':>21}")
    for name, values in samples.items():
        median = statistics.median(values)
        ratio = median / reference
        figures[name] = {
            "median_s": round(median, 4),
            "min_s": round(min(values), 4),
            "max_s": round(max(values), 4),
            "ratio_vs_dbos_workflow_list": round(ratio, 3),
        }
        spread = f"[{min(values):.3f}-{max(values):.3f}]"
        print(f"{name:<36} {median:>9.3f} {spread:>15} {ratio:>21.2f}")
    load = os.getloadavg()[0]
    print(f"({args.repeats} runs each, 1-minute load average {load:.2f} at the end)")
    if args.json:
        print(json.dumps({"repeats": args.repeats, "load_1m": load, "commands": figures}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
