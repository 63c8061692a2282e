#!/usr/bin/env python
"""Per-turn overhead of a durable agent run: plain SDK, Timestep, DBOSRunner, and the DBOS floor.

An instant, deterministic model drives an agent through N function-tool turns (one tool call
per turn, then a final message). Every variant runs the same agent shape in this one process;
each figure is the median over several repetitions (after a warm-up) of the wall time of a
whole run divided by N.

Variants (see benchmarks/README.md):

* ``plain``      -- ``agents.Runner.run``; no database (measured once, shown for every backend).
* ``timestep``   -- ``timestep.run_agent`` with a fresh run id per repetition.
* ``dbosrunner`` -- dbos-openai-agents' ``DBOSRunner.run`` inside a user ``@DBOS.workflow``, with
  the tool body a ``@DBOS.step`` under ``@function_tool`` (the nearest peer, tools recorded).
* ``floor``      -- a bare ``@DBOS.workflow`` doing 2N empty ``@DBOS.step`` calls: what DBOS alone
  costs for N model steps plus N tool steps.

Timestep and the floor run against the DBOS instance that ``timestep._engine.launch.ensure_dbos()``
launches (Timestep's engine, JSON serializer and application version). DBOSRunner cannot run in
that instance: its model step returns the SDK's ``ModelResponse``, which
``DBOSPortableJSONSerializer`` rejects. So it runs in a second instance launched on the same
database with the same engine, name and application version but DBOS's default (pickle)
serializer, where the floor is measured again (``floor_pickle``) as a control for drift between
the two phases. The DBOSRunner and floor workflows are registered at import, before any launch.

Usage (from the repository root)::

    .venv/bin/python benchmarks/turn_overhead.py [--json] [--turns 20] [--repetitions 5]
        [--warmup 1] [--backends sqlite,postgres]

Postgres: ``TIMESTEP_BENCH_PG_URL`` (a server URL whose user may CREATE DATABASE; the fresh
database made on it is dropped afterwards) when set, else a throwaway cluster from
``tests/pgcluster.py``. No timing thresholds: this script only reports.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import sqlalchemy as sa  # noqa: E402
from agents import (  # noqa: E402
    Agent,
    FunctionTool,
    Model,
    ModelResponse,
    Runner,
    Usage,
    function_tool,
    set_tracing_disabled,
)
from agents.testing import assistant_message, function_call  # noqa: E402
from dbos import DBOS, DBOSConfig  # noqa: E402
from dbos_openai_agents import DBOSRunner  # noqa: E402

import timestep  # noqa: E402
from timestep import config  # noqa: E402
from timestep._engine import launch  # noqa: E402
from timestep.models._responses import completed_event  # noqa: E402
from timestep.state.database import create_engine, parse_database_url  # noqa: E402

VARIANTS = ("timestep", "dbosrunner", "floor", "floor_pickle")
BACKENDS = ("sqlite", "postgres")

# The SDK's default trace exporter needs an OpenAI key; tracing is off for every variant alike.
set_tracing_disabled(True)


# --- the scripted model and the tool ------------------------------------------------------------


def _tool_outputs_seen(input_items: Any) -> int:
    if isinstance(input_items, str):
        return 0
    count = 0
    for item in input_items:
        kind = item.get("type") if isinstance(item, dict) else getattr(item, "type", None)
        if kind == "function_call_output":
            count += 1
    return count


class InstantModel(Model):
    """Answers at once, by turn: with k < n tool outputs in its input it calls the tool once
    (call id ``call_k``); after n outputs it gives the final message. Every repetition of a run
    therefore asks and answers exactly the same things, and a replay would too."""

    def __init__(self, n_turns: int) -> None:
        self.n_turns = n_turns

    async def get_response(
        self, system_instructions: Any, input: Any, *args: Any, **kwargs: Any
    ) -> ModelResponse:
        turn = _tool_outputs_seen(input)
        if turn < self.n_turns:
            output: list[Any] = [function_call("step", {"i": turn}, call_id=f"call_{turn}")]
        else:
            output = [assistant_message("done")]
        return ModelResponse(
            output=output,
            usage=Usage(requests=1, input_tokens=10, output_tokens=5, total_tokens=15),
            response_id=f"resp_{turn}",
        )

    async def stream_response(  # type: ignore[override]
        self, system_instructions: Any, input: Any, *args: Any, **kwargs: Any
    ) -> Any:
        """The same answer as one `response.completed` event: the streamed variants measure
        the streaming machinery, not a model's token rate."""
        response = await self.get_response(system_instructions, input, *args, **kwargs)
        yield completed_event(response)


@function_tool(name_override="step")
async def plain_step(i: int) -> str:
    """Acknowledge step i."""
    return f"ok {i}"


# dbos-openai-agents does not record tools itself: its docs have the user stack @DBOS.step
# under @function_tool so that the tool body is a step.
@function_tool(name_override="step")
@DBOS.step(name="bench.dbosrunner_tool")
async def dbos_step(i: int) -> str:
    """Acknowledge step i."""
    return f"ok {i}"


@dataclass
class Agents:
    n_turns: int
    plain: Agent[Any] = field(init=False)
    timestep: Agent[Any] = field(init=False)
    dbosrunner: Agent[Any] = field(init=False)

    def __post_init__(self) -> None:
        self.plain = self._agent("bench-plain", plain_step)
        self.timestep = self._agent("bench-timestep", plain_step)
        self.dbosrunner = self._agent("bench-dbosrunner", dbos_step)

    def _agent(self, name: str, tool: FunctionTool) -> Agent[Any]:
        return Agent(
            name=name, instructions="bench", model=InstantModel(self.n_turns), tools=[tool]
        )

    @property
    def max_turns(self) -> int:
        return self.n_turns + 5


_agents: Agents | None = None


def _bench_agents() -> Agents:
    assert _agents is not None, "set by main() before any run"
    return _agents


# --- workflows registered before launch ---------------------------------------------------------


@DBOS.workflow(name="bench.dbosrunner_run")
async def dbosrunner_workflow(text: str) -> str:
    agents = _bench_agents()
    result = await DBOSRunner.run(agents.dbosrunner, text, max_turns=agents.max_turns)
    return str(result.final_output)


@DBOS.step(name="bench.empty_step")
async def empty_step() -> None:
    return None


@DBOS.workflow(name="bench.floor")
async def floor_workflow(n_steps: int) -> int:
    for _ in range(n_steps):
        await empty_step()
    return n_steps


# --- the runs -----------------------------------------------------------------------------------


async def run_plain() -> None:
    agents = _bench_agents()
    result = await Runner.run(agents.plain, "go", max_turns=agents.max_turns)
    _check(result.final_output)


async def run_timestep() -> None:
    agents = _bench_agents()
    result = await timestep.run_agent(
        agents.timestep, "go", run_id=f"bench-{uuid.uuid4()}", max_turns=agents.max_turns
    )
    _check(result.final_output)


async def run_dbosrunner() -> None:
    _check(await dbosrunner_workflow("go"))


async def run_floor() -> None:
    n_steps = 2 * _bench_agents().n_turns
    if await floor_workflow(n_steps) != n_steps:
        raise RuntimeError("floor workflow returned a wrong step count")


FIRST_EVENT_MS: dict[str, list[float]] = {"plain_streamed": [], "timestep_streamed": []}


async def _consume(name: str, result: Any, started: float) -> None:
    first = True
    async for _event in result.stream_events():
        if first:
            FIRST_EVENT_MS[name].append((time.perf_counter() - started) * 1000.0)
            first = False
    _check(result.final_output)


async def run_plain_streamed() -> None:
    agents = _bench_agents()
    started = time.perf_counter()
    result = Runner.run_streamed(agents.plain, "go", max_turns=agents.max_turns)
    await _consume("plain_streamed", result, started)


async def run_timestep_streamed() -> None:
    agents = _bench_agents()
    started = time.perf_counter()
    result = await timestep.run_agent(
        agents.timestep,
        "go",
        stream=True,
        run_id=f"bench-{uuid.uuid4()}",
        max_turns=agents.max_turns,
    )
    await _consume("timestep_streamed", result, started)


def _check(final_output: Any) -> None:
    if final_output != "done":
        raise RuntimeError(f"benchmark run ended with {final_output!r}, expected 'done'")


RUNS: dict[str, Callable[[], Awaitable[None]]] = {
    "plain": run_plain,
    "timestep": run_timestep,
    "dbosrunner": run_dbosrunner,
    "floor": run_floor,
    "floor_pickle": run_floor,
    "plain_streamed": run_plain_streamed,
    "timestep_streamed": run_timestep_streamed,
}


async def _time_one(run: Callable[[], Awaitable[None]]) -> float:
    start = time.perf_counter()
    await run()
    return time.perf_counter() - start


async def measure(
    variants: tuple[str, ...], n_turns: int, repetitions: int, warmup: int
) -> dict[str, float]:
    """Median ms per turn of each variant; repetitions interleave the variants round-robin so
    that drift on a noisy machine spreads over all of them alike."""
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for index in range(warmup + repetitions):
        for name in variants:
            seconds = await _time_one(RUNS[name])
            if index >= warmup:
                samples[name].append(seconds * 1000.0 / n_turns)
    return {name: statistics.median(values) for name, values in samples.items()}


# --- backends -----------------------------------------------------------------------------------


def _quiet_logging() -> None:
    """Route every stdout log handler to stderr and keep DBOS and the SDK at WARNING."""
    for name in ("dbos", "openai.agents", "openai", "httpx", "timestep"):
        logging.getLogger(name).setLevel(logging.WARNING)
    loggers = [logging.getLogger()] + [
        logger
        for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream in (
                sys.__stdout__,
                sys.stdout,
            ):
                handler.setStream(sys.stderr)


def use_timestep_dbos(url: str) -> None:
    """Switch Timestep to `url` the way the test suite does, and let it launch DBOS."""
    launch.reset_for_tests()
    timestep.configure(database_url=url)
    launch.ensure_dbos()
    _quiet_logging()


def use_pickle_dbos(url: str) -> sa.Engine:
    """Launch DBOS on `url` as Timestep does, except with DBOS's default (pickle) serializer.

    DBOSRunner records the SDK's `ModelResponse` objects as step outputs, which
    `DBOSPortableJSONSerializer` rejects (TypeError: not portable JSON serializable), so it
    cannot run in Timestep's instance. This instance has the same name, engine (WAL SQLite or a
    20-connection Postgres pool), application version and executor id; only the serializer
    differs. Returns the engine, which the caller disposes after `reset_for_tests()`.
    """
    launch.reset_for_tests()
    timestep.configure(database_url=url)
    target = parse_database_url(url)
    engine = create_engine(target, pool_size=20)
    dbos_config: DBOSConfig = {
        "name": config.APP_NAME,
        "system_database_engine": engine,
        "application_version": config.settings().application_version,
        "log_level": "WARNING",
    }
    executor = config.executor_id()
    if executor:
        dbos_config["executor_id"] = executor
    DBOS(config=dbos_config)
    DBOS.launch()
    _quiet_logging()
    return engine


def bench_backend(url: str, n_turns: int, repetitions: int, warmup: int) -> dict[str, float]:
    """Medians of the DBOS variants on the database at `url`.

    Each phase launches DBOS outside any event loop and measures in a fresh loop: DBOS makes its
    own thread pool the loop's default executor, which `DBOS.destroy()` shuts down.
    """
    medians: dict[str, float] = {}
    # Phase 1: Timestep's own DBOS instance (JSON serializer).
    use_timestep_dbos(url)
    try:
        medians.update(
            asyncio.run(
                measure(
                    ("timestep", "floor", "timestep_streamed", "plain_streamed"),
                    n_turns,
                    repetitions,
                    warmup,
                )
            )
        )
    finally:
        launch.reset_for_tests()
    # Phase 2: the same configuration with the pickle serializer, which DBOSRunner needs; the
    # floor is measured again as a control for drift between the phases.
    engine = use_pickle_dbos(url)
    try:
        medians.update(
            asyncio.run(measure(("dbosrunner", "floor_pickle"), n_turns, repetitions, warmup))
        )
    finally:
        launch.reset_for_tests()
        engine.dispose()
    return medians


def run_benchmark(
    backends: list[str], n_turns: int, repetitions: int, warmup: int, log: TextIO
) -> dict[str, Any]:
    global _agents
    _agents = Agents(n_turns)
    report: dict[str, Any] = {"n_turns": n_turns, "repetitions": repetitions}
    print(f"plain Runner.run: {warmup} warm-up + {repetitions} repetitions ...", file=log)
    plain = asyncio.run(measure(("plain",), n_turns, repetitions, warmup))["plain"]
    report["plain_ms_per_turn"] = round(plain, 3)
    for backend in backends:
        print(f"{backend}: {warmup} warm-up + {repetitions} repetitions ...", file=log)
        if backend == "sqlite":
            with tempfile.TemporaryDirectory(prefix="timestep-bench-") as tmp:
                medians = bench_backend(
                    f"sqlite:///{tmp}/bench.sqlite", n_turns, repetitions, warmup
                )
        else:
            from tests.pgcluster import bench_postgres_server, create_database, drop_database

            with bench_postgres_server() as server:
                name = f"timestep_bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
                url = create_database(server, name)
                try:
                    medians = bench_backend(url, n_turns, repetitions, warmup)
                finally:
                    # On a server of the user's (TIMESTEP_BENCH_PG_URL) nothing is left behind.
                    drop_database(server, name)
        ts = medians["timestep"]
        report[backend] = {
            "timestep_ms_per_turn": round(ts, 3),
            "dbosrunner_ms_per_turn": round(medians["dbosrunner"], 3),
            "floor_ms_per_turn": round(medians["floor"], 3),
            "floor_pickle_ms_per_turn": round(medians["floor_pickle"], 3),
            "ratio_vs_plain": round(ts / plain, 3),
            "ratio_vs_dbosrunner": round(ts / medians["dbosrunner"], 3),
            "ratio_vs_floor": round(ts / medians["floor"], 3),
            "streamed": _streamed_report(medians),
        }
    return report


def _streamed_report(medians: dict[str, float]) -> dict[str, float]:
    """Streamed variants of this backend: per-turn cost and time to the first event."""
    first = {name: statistics.median(values) for name, values in FIRST_EVENT_MS.items()}
    for values in FIRST_EVENT_MS.values():
        values.clear()
    streamed, plain = medians["timestep_streamed"], medians["plain_streamed"]
    return {
        "timestep_ms_per_turn": round(streamed, 3),
        "plain_ms_per_turn": round(plain, 3),
        "ratio_vs_plain": round(streamed / plain, 3),
        "timestep_first_event_ms": round(first["timestep_streamed"], 3),
        "plain_first_event_ms": round(first["plain_streamed"], 3),
        "first_event_ratio_vs_plain": round(
            first["timestep_streamed"] / first["plain_streamed"], 3
        ),
    }


# --- output -------------------------------------------------------------------------------------


def format_table(report: dict[str, Any], backends: list[str]) -> str:
    n, reps = report["n_turns"], report["repetitions"]
    plain = report["plain_ms_per_turn"]
    header = f"{'ms per turn (median)':<34}" + "".join(f"{b:>12}" for b in backends)
    rows = [
        f"Turn overhead: {n} tool turns per run, median of {reps} repetitions",
        "",
        header,
        "-" * len(header),
        f"{'plain Runner.run':<34}" + "".join(f"{plain:>12.2f}" for _ in backends),
    ]
    labels = {
        "timestep": "timestep run_agent",
        "dbosrunner": "DBOSRunner (+ tool step)",
        "floor": "DBOS floor (2N empty steps)",
        "floor_pickle": "  floor, DBOSRunner's instance",
    }
    for variant in VARIANTS:
        key = f"{variant}_ms_per_turn"
        rows.append(
            f"{labels[variant]:<34}" + "".join(f"{report[b][key]:>12.2f}" for b in backends)
        )
    rows.append("")
    for ratio in ("ratio_vs_plain", "ratio_vs_dbosrunner", "ratio_vs_floor"):
        label = "timestep / " + ratio.removeprefix("ratio_vs_")
        rows.append(f"{label:<34}" + "".join(f"{report[b][ratio]:>11.2f}x" for b in backends))
    rows += ["", "streamed (run_streamed / run_agent(stream=True))"]
    streamed_rows = {
        "plain_ms_per_turn": ("plain run_streamed, ms/turn", ".2f"),
        "timestep_ms_per_turn": ("timestep streamed, ms/turn", ".2f"),
        "ratio_vs_plain": ("timestep / plain", ".2f"),
        "plain_first_event_ms": ("plain, first event ms", ".2f"),
        "timestep_first_event_ms": ("timestep, first event ms", ".2f"),
        "first_event_ratio_vs_plain": ("first event, timestep / plain", ".2f"),
    }
    for key, (label, fmt) in streamed_rows.items():
        rows.append(
            f"{label:<34}" + "".join(f"{report[b]['streamed'][key]:>12{fmt}}" for b in backends)
        )
    return "\n".join(rows)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--json", action="store_true", help="print one JSON object as last line")
    parser.add_argument("--turns", type=int, default=20, help="tool turns per run (default 20)")
    parser.add_argument(
        "--repetitions", type=int, default=5, help="measured runs per variant (default 5)"
    )
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured runs first (default 1)")
    parser.add_argument(
        "--backends", default="sqlite,postgres", help="comma-separated: sqlite,postgres"
    )
    args = parser.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown or not backends:
        parser.error(f"--backends takes a comma-separated subset of {','.join(BACKENDS)}")
    if args.turns < 1 or args.repetitions < 1 or args.warmup < 0:
        parser.error("--turns and --repetitions must be >= 1, --warmup >= 0")
    args.backend_list = backends
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = sys.stdout
    # Anything a library prints while we measure goes to stderr; stdout carries only the table
    # and, with --json, the JSON line last.
    with contextlib.redirect_stdout(sys.stderr):
        _quiet_logging()
        report = run_benchmark(
            args.backend_list, args.turns, args.repetitions, args.warmup, sys.stderr
        )
    print(format_table(report, args.backend_list), file=out)
    if args.json:
        print(json.dumps(report), file=out)
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
