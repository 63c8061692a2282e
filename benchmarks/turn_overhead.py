#!/usr/bin/env python
"""Per-turn overhead of a durable agent run: plain SDK, Timestep, DBOSRunner, and the DBOS floor.

An instant, deterministic model drives an agent through N function-tool turns (one tool call
per turn, then a final message). Each figure is the median, over `--repetitions` repetitions
after `--warmup` unmeasured ones, of the wall time of a whole run divided by N, printed with its
interquartile range [q1-q3]. Ratios are medians of per-repetition ratios (both runs of a ratio
come from the same repetition), with their interquartile range.

Variants (see benchmarks/README.md):

* ``plain`` / ``plain_streamed`` -- ``agents.Runner.run`` / ``Runner.run_streamed``; no database.
* ``timestep`` / ``timestep_streamed`` -- ``timestep.run_agent`` (``stream=True`` for the
  second, its events consumed), a fresh run id per repetition.
* ``floor``      -- a bare ``@DBOS.workflow`` doing 2N empty ``@DBOS.step`` calls: what DBOS alone
  costs for N model steps plus N tool steps (in Timestep's DBOS instance).
* ``dbosrunner`` -- dbos-openai-agents' ``DBOSRunner.run`` inside a user ``@DBOS.workflow``, with
  the tool body a ``@DBOS.step`` under ``@function_tool`` (the nearest peer, tools recorded).
* ``floor_pickle`` -- the floor again, in DBOSRunner's DBOS instance (a control).
* ``bare_steps`` -- the plain agent run inside a ``@DBOS.workflow``, with an empty
  ``DBOS.run_step_async`` step before each model call and around each tool body: the SDK and
  DBOS's 2N + 1 steps interleaved, recording nothing (a control: no durable wrapper of the SDK
  on DBOS's step API can cost less).

Every repetition runs every variant once, in an order rotated from one repetition to the next.
DBOSRunner cannot run in Timestep's DBOS instance (its model step returns the SDK's
``ModelResponse``, which ``DBOSPortableJSONSerializer`` rejects) and a process holds one DBOS
instance, so ``dbosrunner`` and ``floor_pickle`` run in a helper process (this script with
``--helper``) launched on the same database with DBOS's default (pickle) serializer; this
process asks it for one run at a time, in turn with its own variants, and the helper times
the run itself.

``--before DIR`` adds ``timestep`` and ``timestep_streamed`` of an earlier checkout and of this
one, each side in a helper process of its own (Timestep's DBOS instance, ``timestep`` imported
from its checkout), interleaved with the rest: before and after from one run. ``--compare FILE``
prints every ratio beside those of an earlier run's saved ``--json`` output.

Usage (from the repository root)::

    .venv/bin/python benchmarks/turn_overhead.py [--json] [--turns 20] [--repetitions 60]
        [--warmup 2] [--backends sqlite,postgres] [--before DIR] [--compare FILE]

Postgres: ``TIMESTEP_BENCH_PG_URL`` (a server URL whose user may CREATE DATABASE; the fresh
database made on it is dropped afterwards) when set, else a throwaway cluster from
``tests/pgcluster.py``. No timing thresholds: this script only reports.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

REPO_ROOT = Path(__file__).resolve().parent.parent


def _timestep_checkout() -> Path:
    """The checkout whose `timestep` this process imports: this script's own, or for a helper
    measuring another commit (`--before`), the one given by `--timestep-from DIR`."""
    if "--timestep-from" in sys.argv[:-1]:
        return Path(sys.argv[sys.argv.index("--timestep-from") + 1]).resolve()
    return REPO_ROOT


if str(_timestep_checkout()) not in sys.path:
    sys.path.insert(0, str(_timestep_checkout()))

import sqlalchemy as sa  # noqa: E402
from _compare import compare, load_report  # noqa: E402
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

HERE = ("plain", "plain_streamed", "timestep", "timestep_streamed", "floor", "bare_steps")
"""Variants run in this process, in Timestep's DBOS instance (the plain ones use none)."""
IN_HELPER = ("dbosrunner", "floor_pickle")
"""Variants run in the helper process, in DBOSRunner's (pickle) DBOS instance."""
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


async def _nothing() -> None:
    return None


class BareStepModel(InstantModel):
    """The instant model with an empty DBOS step before each call (the `bare_steps` control)."""

    async def get_response(
        self, system_instructions: Any, input: Any, *args: Any, **kwargs: Any
    ) -> ModelResponse:
        await DBOS.run_step_async({"name": "bench.bare_model"}, _nothing)
        return await super().get_response(system_instructions, input, *args, **kwargs)


async def _acknowledge(i: int) -> str:
    return f"ok {i}"


@function_tool(name_override="step")
async def bare_step(i: int) -> str:
    """Acknowledge step i."""
    return await DBOS.run_step_async({"name": "bench.bare_tool"}, _acknowledge, i)


@dataclass
class Agents:
    n_turns: int
    plain: Agent[Any] = field(init=False)
    timestep: Agent[Any] = field(init=False)
    dbosrunner: Agent[Any] = field(init=False)
    bare_steps: Agent[Any] = field(init=False)

    def __post_init__(self) -> None:
        self.plain = self._agent("bench-plain", plain_step)
        self.timestep = self._agent("bench-timestep", plain_step)
        self.dbosrunner = self._agent("bench-dbosrunner", dbos_step)
        self.bare_steps = self._agent("bench-bare-steps", bare_step, BareStepModel(self.n_turns))

    def _agent(self, name: str, tool: FunctionTool, model: Model | None = None) -> Agent[Any]:
        return Agent(
            name=name,
            instructions="bench",
            model=model or InstantModel(self.n_turns),
            tools=[tool],
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


@DBOS.workflow(name="bench.bare_steps_run")
async def bare_steps_workflow(text: str) -> str:
    agents = _bench_agents()
    result = await Runner.run(agents.bare_steps, text, max_turns=agents.max_turns)
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


async def run_bare_steps() -> None:
    _check(await bare_steps_workflow("go"))


async def run_floor() -> None:
    n_steps = 2 * _bench_agents().n_turns
    if await floor_workflow(n_steps) != n_steps:
        raise RuntimeError("floor workflow returned a wrong step count")


FIRST_EVENT_MS: list[float] = []
"""Set by the streamed runs: ms from the call to the first event of the last run."""


async def _consume(result: Any, started: float) -> None:
    first = True
    async for _event in result.stream_events():
        if first:
            FIRST_EVENT_MS.append((time.perf_counter() - started) * 1000.0)
            first = False
    _check(result.final_output)


async def run_plain_streamed() -> None:
    agents = _bench_agents()
    started = time.perf_counter()
    result = Runner.run_streamed(agents.plain, "go", max_turns=agents.max_turns)
    await _consume(result, started)


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
    await _consume(result, started)


def _check(final_output: Any) -> None:
    if final_output != "done":
        raise RuntimeError(f"benchmark run ended with {final_output!r}, expected 'done'")


RUNS: dict[str, Callable[[], Awaitable[None]]] = {
    "plain": run_plain,
    "timestep": run_timestep,
    "dbosrunner": run_dbosrunner,
    "floor": run_floor,
    "floor_pickle": run_floor,
    "bare_steps": run_bare_steps,
    "plain_streamed": run_plain_streamed,
    "timestep_streamed": run_timestep_streamed,
}


async def _time_one(run: Callable[[], Awaitable[None]]) -> float:
    """Seconds one run takes, after a garbage collection (so that one run's garbage is not
    collected during another's)."""
    gc.collect()
    start = time.perf_counter()
    await run()
    return time.perf_counter() - start


@dataclass
class Samples:
    """Per repetition: ms per turn of each variant, and ms to the first event of the streamed."""

    per_turn: dict[str, list[float]] = field(default_factory=dict)
    first_event: dict[str, list[float]] = field(default_factory=dict)


class Helper:
    """A helper process that runs some variants in a DBOS instance of its own and times them.

    `kind` "pickle": DBOSRunner's (pickle) DBOS instance, for `IN_HELPER`. `kind` "timestep":
    Timestep's own instance, with `timestep` imported from the checkout `timestep_from` (for
    `--before`: one helper per checkout, so that neither side is this process)."""

    def __init__(
        self, url: str, n_turns: int, kind: str = "pickle", timestep_from: Path | None = None
    ) -> None:
        command = [sys.executable, str(Path(__file__).resolve()), "--helper", url]
        command += ["--turns", str(n_turns), "--helper-kind", kind]
        if timestep_from is not None:
            command += ["--timestep-from", str(timestep_from)]
        self.process = subprocess.Popen(
            command, cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        if self._reply() != "ready":
            raise RuntimeError("the benchmark helper did not start")

    def _reply(self) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the benchmark helper exited ({self.process.wait()})")
        return line.strip()

    def time_one(self, variant: str) -> tuple[float, float | None]:
        """Seconds one run of `variant` took in the helper (timed there), and for a streamed
        variant the ms to its first event."""
        assert self.process.stdin is not None
        self.process.stdin.write(variant + "\n")
        self.process.stdin.flush()
        seconds, first_event = json.loads(self._reply())
        return float(seconds), first_event

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        if self.process.wait(timeout=120) != 0:
            raise RuntimeError(f"the benchmark helper failed ({self.process.returncode})")


BEFORE_AFTER = {
    "timestep_before": ("before", "timestep"),
    "timestep_streamed_before": ("before", "timestep_streamed"),
    "timestep_after": ("after", "timestep"),
    "timestep_streamed_after": ("after", "timestep_streamed"),
}
"""With `--before`: variant -> (the helper that runs it, the variant it runs there)."""


async def measure(
    helpers: dict[str, Helper], n_turns: int, repetitions: int, warmup: int
) -> Samples:
    """Every variant once per repetition, in an order rotated each repetition, so that drift
    on a noisy machine spreads over all of them alike. `helpers` by name: "pickle" runs
    `IN_HELPER`; "before" and "after" (with `--before`) run `BEFORE_AFTER`."""
    variants = HERE + (IN_HELPER if "pickle" in helpers else ())
    if "before" in helpers:
        variants += tuple(BEFORE_AFTER)
    samples = Samples({name: [] for name in variants}, {})
    for index in range(warmup + repetitions):
        shift = index % len(variants)
        for name in variants[shift:] + variants[:shift]:
            first_event: float | None = None
            if name in IN_HELPER:
                seconds, _ = helpers["pickle"].time_one(name)
            elif name in BEFORE_AFTER:
                side, variant = BEFORE_AFTER[name]
                seconds, first_event = helpers[side].time_one(variant)
            else:
                seconds = await _time_one(RUNS[name])
                if name.endswith("_streamed"):
                    first_event = FIRST_EVENT_MS[-1]
            if index < warmup:
                continue
            samples.per_turn[name].append(seconds * 1000.0 / n_turns)
            if first_event is not None:
                samples.first_event.setdefault(name, []).append(first_event)
    return samples


def helper_main(url: str, n_turns: int, kind: str) -> int:
    """`--helper URL`: launch a DBOS instance on `url` (DBOSRunner's for `kind` "pickle",
    Timestep's for "timestep"), then run one variant per line read from stdin and answer with
    a JSON [seconds, ms to the first event or null], until stdin closes."""
    global _agents
    _agents = Agents(n_turns)
    protocol = sys.stdout
    allowed = IN_HELPER if kind == "pickle" else ("timestep", "timestep_streamed")
    with contextlib.redirect_stdout(sys.stderr):
        _quiet_logging()
        engine = use_pickle_dbos(url) if kind == "pickle" else None
        if engine is None:
            use_timestep_dbos(url)
        loop = asyncio.new_event_loop()
        try:
            print("ready", file=protocol, flush=True)
            for line in sys.stdin:
                variant = line.strip()
                if variant not in allowed:
                    raise SystemExit(f"the {kind} helper runs {allowed}, not {variant!r}")
                seconds = loop.run_until_complete(_time_one(RUNS[variant]))
                first_event = FIRST_EVENT_MS[-1] if variant.endswith("_streamed") else None
                print(json.dumps([seconds, first_event]), file=protocol, flush=True)
        finally:
            loop.close()
            launch.reset_for_tests()
            if engine is not None:
                engine.dispose()
    return 0


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


def bench_backend(
    url: str, n_turns: int, repetitions: int, warmup: int, before: Path | None = None
) -> Samples:
    """Samples of every variant on the database at `url`.

    DBOS is launched outside any event loop and the variants measured in a fresh loop: DBOS
    makes its own thread pool the loop's default executor, which `DBOS.destroy()` shuts down.
    """
    use_timestep_dbos(url)
    helpers: dict[str, Helper] = {}
    try:
        helpers["pickle"] = Helper(url, n_turns)
        if before is not None:
            helpers["before"] = Helper(url, n_turns, "timestep", before)
            helpers["after"] = Helper(url, n_turns, "timestep", REPO_ROOT)
        return asyncio.run(measure(helpers, n_turns, repetitions, warmup))
    finally:
        for helper in helpers.values():
            helper.close()
        launch.reset_for_tests()


def spread(values: list[float]) -> dict[str, float]:
    """Median and interquartile range of `values`."""
    if len(values) == 1:
        return {"median": values[0], "q1": values[0], "q3": values[0]}
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return {"median": median, "q1": q1, "q3": q3}


def _rounded(figures: dict[str, float]) -> dict[str, float]:
    return {key: round(value, 3) for key, value in figures.items()}


def _ratio(tops: list[float], bottoms: list[float]) -> dict[str, float]:
    """Median and spread of the per-repetition ratios (both sides from the same repetition)."""
    return spread([top / bottom for top, bottom in zip(tops, bottoms, strict=True)])


def _sum(*samples: list[float]) -> list[float]:
    return [sum(values) for values in zip(*samples, strict=True)]


def _section(
    figures: dict[str, list[float]], ratios: dict[str, dict[str, float]]
) -> dict[str, Any]:
    """A report section: each figure's median and each ratio's, then all of their spreads."""
    section: dict[str, Any] = {
        name: round(statistics.median(values), 3) for name, values in figures.items()
    }
    section.update({name: round(figure["median"], 3) for name, figure in ratios.items()})
    section["spread"] = {
        **{name: _rounded(spread(values)) for name, values in figures.items()},
        **{name: _rounded(figure) for name, figure in ratios.items()},
    }
    return section


def backend_report(samples: Samples) -> dict[str, Any]:
    """Medians, spreads and ratios of one backend's samples, as the JSON has them."""
    per_turn = samples.per_turn
    ts, bare, dbosrunner = per_turn["timestep"], per_turn["bare_steps"], per_turn["dbosrunner"]
    plain, floor = per_turn["plain"], per_turn["floor"]
    plain_plus_floor = _sum(plain, floor)
    streamed, plain_streamed = per_turn["timestep_streamed"], per_turn["plain_streamed"]
    first = samples.first_event["timestep_streamed"]
    first_plain = samples.first_event["plain_streamed"]
    ratios = {
        "ratio_vs_plain": _ratio(ts, plain),
        "ratio_vs_dbosrunner": _ratio(ts, dbosrunner),
        "ratio_vs_floor": _ratio(ts, floor),
        "ratio_vs_plain_plus_floor": _ratio(ts, plain_plus_floor),
        "ratio_vs_bare_steps": _ratio(ts, bare),
        "bare_steps_vs_plain_plus_floor": _ratio(bare, plain_plus_floor),
        "dbosrunner_vs_plain_plus_floor": _ratio(dbosrunner, plain_plus_floor),
    }
    streamed_ratios = {
        "ratio_streamed_vs_timestep": _ratio(streamed, ts),
        "ratio_vs_plain": _ratio(streamed, plain_streamed),
        "first_event_ratio_vs_plain": _ratio(first, first_plain),
        # One recorded step: half a floor turn (the floor records two steps a turn).
        "first_event_ratio_vs_plain_plus_step": _ratio(
            first, _sum(first_plain, [turn / 2 for turn in floor])
        ),
    }
    report: dict[str, Any] = {
        f"{name}_ms_per_turn": round(statistics.median(per_turn[name]), 3)
        for name in ("plain", "timestep", "dbosrunner", "floor", "floor_pickle", "bare_steps")
    }
    report.update({name: round(figures["median"], 3) for name, figures in ratios.items()})
    report["spread"] = {
        **{f"{name}_ms_per_turn": _rounded(spread(per_turn[name])) for name in per_turn},
        **{name: _rounded(figures) for name, figures in ratios.items()},
    }
    report["streamed"] = _section(
        {
            "timestep_ms_per_turn": streamed,
            "plain_ms_per_turn": plain_streamed,
            "first_event_ms": first,
            "first_event_plain_ms": first_plain,
        },
        streamed_ratios,
    )
    if "timestep_before" in per_turn:
        report["before_after"] = before_after_report(samples)
    return report


def before_after_report(samples: Samples) -> dict[str, Any]:
    """`--before`: Timestep of this checkout against Timestep of the other, each in a helper
    process of its own, run for run in the same repetitions."""
    per_turn, first_event = samples.per_turn, samples.first_event
    figures = {
        "timestep_before_ms_per_turn": per_turn["timestep_before"],
        "timestep_after_ms_per_turn": per_turn["timestep_after"],
        "streamed_before_ms_per_turn": per_turn["timestep_streamed_before"],
        "streamed_after_ms_per_turn": per_turn["timestep_streamed_after"],
        "first_event_before_ms": first_event["timestep_streamed_before"],
        "first_event_after_ms": first_event["timestep_streamed_after"],
    }
    ratios = {
        "ratio_after_vs_before": _ratio(
            figures["timestep_after_ms_per_turn"], figures["timestep_before_ms_per_turn"]
        ),
        "streamed_ratio_after_vs_before": _ratio(
            figures["streamed_after_ms_per_turn"], figures["streamed_before_ms_per_turn"]
        ),
        "first_event_ratio_after_vs_before": _ratio(
            figures["first_event_after_ms"], figures["first_event_before_ms"]
        ),
    }
    return _section(figures, ratios)


def run_benchmark(
    backends: list[str],
    n_turns: int,
    repetitions: int,
    warmup: int,
    log: TextIO,
    before: Path | None = None,
) -> dict[str, Any]:
    global _agents
    _agents = Agents(n_turns)
    report: dict[str, Any] = {"n_turns": n_turns, "repetitions": repetitions, "warmup": warmup}
    if before is not None:
        report["before"] = str(before)
    # How busy the machine was: figures from a loaded machine move with its load.
    report["load_1m_before"] = round(os.getloadavg()[0], 2)
    plain_samples: list[float] = []
    for backend in backends:
        print(f"{backend}: {warmup} warm-up + {repetitions} repetitions ...", file=log)
        if backend == "sqlite":
            with tempfile.TemporaryDirectory(prefix="timestep-bench-") as tmp:
                samples = bench_backend(
                    f"sqlite:///{tmp}/bench.sqlite", n_turns, repetitions, warmup, before
                )
        else:
            from tests.pgcluster import bench_postgres_server, create_database, drop_database

            with bench_postgres_server() as server:
                name = f"timestep_bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
                url = create_database(server, name)
                try:
                    samples = bench_backend(url, n_turns, repetitions, warmup, before)
                finally:
                    # On a server of the user's (TIMESTEP_BENCH_PG_URL) nothing is left behind.
                    drop_database(server, name)
        plain_samples += samples.per_turn["plain"]
        report[backend] = backend_report(samples)
    # Plain runs use no database: measured with every backend's repetitions, shown once too.
    report["plain_ms_per_turn"] = round(statistics.median(plain_samples), 3)
    report["load_1m_after"] = round(os.getloadavg()[0], 2)
    return report


# --- output -------------------------------------------------------------------------------------


def _cell(value: float, figures: dict[str, float], unit: str = "") -> str:
    return f"{value:.2f}{unit} [{figures['q1']:.2f}-{figures['q3']:.2f}]"


def format_table(report: dict[str, Any], backends: list[str]) -> str:
    n, reps = report["n_turns"], report["repetitions"]
    width = 26
    header = f"{'ms per turn: median [q1-q3]':<36}" + "".join(f"{b:>{width}}" for b in backends)
    rows = [
        f"Turn overhead: {n} tool turns per run, {reps} repetitions, variants interleaved",
        f"(1-minute load average {report['load_1m_before']} before, "
        f"{report['load_1m_after']} after, on {os.cpu_count()} CPUs)",
        "",
        header,
        "-" * len(header),
    ]

    def row(label: str, key: str, section: str | None = None, unit: str = "") -> None:
        cells = []
        for backend in backends:
            figures = report[backend] if section is None else report[backend][section]
            cells.append(f"{_cell(figures[key], figures['spread'][key], unit):>{width}}")
        rows.append(f"{label:<36}" + "".join(cells))

    labels = {
        "plain": "plain Runner.run",
        "timestep": "timestep run_agent",
        "dbosrunner": "DBOSRunner (+ tool step)",
        "floor": "DBOS floor (2N empty steps)",
        "floor_pickle": "  floor, DBOSRunner's instance",
        "bare_steps": "bare steps (SDK + 2N+1 empty steps)",
    }
    for variant, label in labels.items():
        row(label, f"{variant}_ms_per_turn")
    rows.append("")
    for ratio in ("ratio_vs_plain", "ratio_vs_dbosrunner", "ratio_vs_floor"):
        row("timestep / " + ratio.removeprefix("ratio_vs_"), ratio, unit="x")
    row("timestep / (plain + floor)", "ratio_vs_plain_plus_floor", unit="x")
    row("timestep / bare steps", "ratio_vs_bare_steps", unit="x")
    row("bare steps / (plain + floor)", "bare_steps_vs_plain_plus_floor", unit="x")
    row("DBOSRunner / (plain + floor)", "dbosrunner_vs_plain_plus_floor", unit="x")
    rows += ["", "streamed (run_streamed / run_agent(stream=True))"]
    row("plain run_streamed, ms/turn", "plain_ms_per_turn", "streamed")
    row("timestep streamed, ms/turn", "timestep_ms_per_turn", "streamed")
    row("timestep streamed / timestep", "ratio_streamed_vs_timestep", "streamed", "x")
    row("timestep streamed / plain streamed", "ratio_vs_plain", "streamed", "x")
    row("plain, first event ms", "first_event_plain_ms", "streamed")
    row("timestep, first event ms", "first_event_ms", "streamed")
    row("first event, timestep / plain", "first_event_ratio_vs_plain", "streamed", "x")
    row(
        "first event / (plain + 1 step)",
        "first_event_ratio_vs_plain_plus_step",
        "streamed",
        "x",
    )
    if "before" in report:
        rows += ["", f"before ({report['before']}) / after (this checkout), each in a helper"]
        row("timestep before, ms/turn", "timestep_before_ms_per_turn", "before_after")
        row("timestep after, ms/turn", "timestep_after_ms_per_turn", "before_after")
        row("  after / before", "ratio_after_vs_before", "before_after", "x")
        row("streamed before, ms/turn", "streamed_before_ms_per_turn", "before_after")
        row("streamed after, ms/turn", "streamed_after_ms_per_turn", "before_after")
        row("  after / before", "streamed_ratio_after_vs_before", "before_after", "x")
        row("first event before, ms", "first_event_before_ms", "before_after")
        row("first event after, ms", "first_event_after_ms", "before_after")
        row("  after / before", "first_event_ratio_after_vs_before", "before_after", "x")
    return "\n".join(rows)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--json", action="store_true", help="print one JSON object as last line")
    parser.add_argument("--turns", type=int, default=20, help="tool turns per run (default 20)")
    parser.add_argument(
        "--repetitions", type=int, default=60, help="measured runs per variant (default 60)"
    )
    parser.add_argument(
        "--warmup", type=int, default=2, help="unmeasured repetitions first (default 2)"
    )
    parser.add_argument(
        "--backends", default="sqlite,postgres", help="comma-separated: sqlite,postgres"
    )
    parser.add_argument(
        "--compare",
        metavar="FILE",
        help="an earlier run's --json output: print every ratio beside it, with the difference",
    )
    parser.add_argument(
        "--before",
        metavar="DIR",
        type=Path,
        help="a checkout of an earlier commit (same database schema): its Timestep is timed "
        "run for run against this checkout's, each in a helper process",
    )
    parser.add_argument("--helper", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--helper-kind", default="pickle", help=argparse.SUPPRESS)
    parser.add_argument("--timestep-from", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown or not backends:
        parser.error(f"--backends takes a comma-separated subset of {','.join(BACKENDS)}")
    if args.turns < 1 or args.repetitions < 1 or args.warmup < 0:
        parser.error("--turns and --repetitions must be >= 1, --warmup >= 0")
    if args.before is not None and not (args.before / "timestep" / "__init__.py").is_file():
        parser.error(f"--before {args.before}: no timestep package there (a checkout's root)")
    args.backend_list = backends
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.helper:
        return helper_main(args.helper, args.turns, args.helper_kind)
    earlier = load_report(args.compare) if args.compare else None
    out = sys.stdout
    # Anything a library prints while we measure goes to stderr; stdout carries only the table
    # and, with --json, the JSON line last.
    with contextlib.redirect_stdout(sys.stderr):
        _quiet_logging()
        report = run_benchmark(
            args.backend_list,
            args.turns,
            args.repetitions,
            args.warmup,
            sys.stderr,
            args.before.resolve() if args.before is not None else None,
        )
    print(format_table(report, args.backend_list), file=out)
    if earlier is not None:
        print("\n" + compare(report, earlier, args.backend_list), file=out)
    if args.json:
        print(json.dumps(report), file=out)
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
