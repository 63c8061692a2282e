"""Starting and continuing durable runs: `run_agent`, `submit` and `consume_result`."""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import json
import logging
from typing import Any, Literal, TypeVar, overload

from agents import Agent, RunConfig, RunHooks, RunResult, RunResultStreaming, RunState
from agents.memory import Session
from agents.result import RunResultBase
from dbos import WorkflowHandleAsync
from pydantic_core import PydanticSerializationError, to_jsonable_python

from . import _engine as engine
from ._compat import dbos as dbos_compat
from ._compat.agents import application_context
from ._engine import (
    Attachments,
    LiveStream,
    PendingCallRef,
    RunInput,
    SegmentRequest,
    approval_fields,
    run_id_or_new,
    segment_workflow_id,
    start_segment,  # importing it registers Timestep's DBOS workflows (see `register_agent`)
)
from .context import ContextStorage, declared_for, state_json
from .errors import (
    AgentMismatchError,
    ArgumentTypeError,
    InterruptionException,
    InvalidArgumentError,
    RunCancelledError,
    RunExistsError,
    RunInterruptedError,
    TimestepError,
)
from .result import DurableRunResult, DurableRunResultStreaming, rebuild_result
from .state import records
from .state.records import RunOverrides
from .state.storage import storage_engine

logger = logging.getLogger("timestep")

register_agent = engine.register_agent
"""`timestep.register_agent`, resolved through this module: importing it registers Timestep's
DBOS workflows (`start_segment` above), whatever else the application has imported, before the
application launches its own DBOS (whose start-up recovery needs them)."""

OnExisting = Literal["return", "error"]
"""What `run_agent` does with an existing run id started with another input or model: go on
with the recorded run (with a warning), or raise `RunExistsError`."""


def launch() -> None:
    """Launch DBOS in this process: it joins the fleet as an owner with a heartbeat.

    From then on it takes over the runs of dead processes and works the queues of the agents it
    has registered (`register_agent`). `run_agent` launches on first use; call this in a process
    that should take part without starting a run. Safe to call from a coroutine.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        engine.ensure_dbos()
        return
    # DBOS's synchronous start-up calls refuse to run on a thread with a running event loop.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(engine.ensure_dbos).result()


def _json_or_none(value: Any) -> tuple[Any, bool]:
    """(JSON form of `value`, True) when it round-trips as JSON, else (None, False)."""
    if value is None or isinstance(value, (dict, list, str, int, float, bool)):
        try:
            return to_jsonable_python(value), True
        except PydanticSerializationError:
            return None, False
    return None, False


def _run_overrides(agent: Agent[Any], run_config: RunConfig | None) -> RunOverrides | None:
    """The model names to keep with the run, so later segments elsewhere use them too."""
    agent_model = agent.model if isinstance(agent.model, str) and agent.model else None
    config_model = run_config.model if run_config is not None else None
    config_name = config_model if isinstance(config_model, str) and config_model else None
    if agent_model is None and config_name is None:
        return None
    return RunOverrides(agent=agent_model, run_config=config_name)


def _input_hash(request: RunInput) -> str | None:
    """A fingerprint of a new run's input (None for a RunState: it continues a run)."""
    if "input" not in request:
        return None
    text = json.dumps(request["input"], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _check_reuse(
    record: records.RunRecord,
    input_hash: str | None,
    models: RunOverrides | None,
    on_existing: OnExisting,
) -> None:
    """Say so when an existing run id comes back with another input or model."""
    differs = []
    if input_hash is not None and record.input_hash is not None and input_hash != record.input_hash:
        differs.append("input")
    recorded = record.overrides
    if (
        models is not None
        and recorded is not None
        and (models.agent, models.run_config) != (recorded.agent, recorded.run_config)
    ):
        differs.append("model")
    if not differs:
        return
    what = " and ".join(differs)
    message = (
        f"run {record.run_id!r} already exists ({record.status}) and was started with another "
        f"{what}; pass a new run_id to start another run"
    )
    if on_existing == "error":
        raise RunExistsError(message)
    logger.warning("timestep: %s; going on with the recorded run", message)


async def _create_or_check(
    agent: Agent[Any],
    run_id: str,
    approval_timeout: float | None,
    streamed: bool,
    models: RunOverrides | None,
    input_hash: str | None = None,
) -> tuple[records.RunRecord, bool]:
    """The run's record: created now, or the existing one checked against `agent`'s graph."""
    if approval_timeout is not None and not approval_timeout > 0:
        raise InvalidArgumentError(
            f"approval_timeout must be a positive number of seconds, got {approval_timeout}"
        )
    graph = engine.describe_graph(agent)
    fingerprint = engine.fingerprint(graph)
    version = engine.version_of(agent.name)
    record, created = await asyncio.to_thread(
        records.create_or_find,
        storage_engine(),
        run_id,
        agent.name,
        graph,
        fingerprint,
        approval_timeout,
        streamed,
        models,
        input_hash,
        version[1] if version is not None and version[0] == fingerprint else None,
        engine.app_module_of(agent.name),
    )
    if not created and record.fingerprint != fingerprint:
        if record.agent_name != agent.name:
            raise AgentMismatchError(run_id, engine.graph_differences(record.graph, graph))
        # Another version of the run's agent: the run goes on here if it is compatible
        # (recorded as a move), else IncompatibleVersionError says why, changing nothing.
        record = await engine.adopt_version_async(record, agent)
    return record, created


async def _record_for(
    agent: Agent[Any],
    run_id: str,
    given: RunInput,
    approval_timeout: float | None,
    streamed: bool,
    models: RunOverrides | None,
    on_existing: OnExisting,
) -> tuple[records.RunRecord, bool]:
    """`run_agent`'s and `submit`'s run record: created, or the existing one checked against
    the agent's graph and against the input and model it was started with."""
    input_hash = _input_hash(given)
    record, created = await _create_or_check(
        agent, run_id, approval_timeout, streamed, models, input_hash
    )
    if not created:
        _check_reuse(record, input_hash, models, on_existing)
    return record, created


def _stored_context(storage: ContextStorage | None, context: Any) -> tuple[Any, bool]:
    """The context as the run stores it, and whether it can be stored (JSON, or declared)."""
    if storage is not None:
        return storage.dump(context), True
    return _json_or_none(context)


def _input_request(run_input: Any, storage: ContextStorage | None = None) -> RunInput:
    if isinstance(run_input, RunState):
        return RunInput(
            state=state_json(run_input, storage),
            pending=[
                PendingCallRef(call_id=approval_fields(item)["call_id"])
                for item in run_input.get_interruptions()
            ],
        )
    if isinstance(run_input, str):
        return RunInput(input=run_input)
    if isinstance(run_input, list):
        try:
            return RunInput(input=to_jsonable_python(run_input))
        except PydanticSerializationError as exc:
            raise InvalidArgumentError(
                f"run_input holds an item that cannot be stored as JSON: {exc}"
            ) from exc
    raise ArgumentTypeError(
        f"run_input must be a string, a list of input items or a RunState, "
        f"not {type(run_input).__name__}"
    )


@overload
async def run_agent(
    agent: Agent[Any],
    run_input: str | list[Any] | RunState[Any],
    session: Session | None = None,
    stream: Literal[False] = False,
    *,
    run_id: str | None = None,
    run_config: RunConfig | None = None,
    context: Any = None,
    max_turns: int | None = None,
    hooks: RunHooks[Any] | None = None,
    raise_on_interruption: bool = False,
    approval_timeout: float | None = None,
    on_existing: OnExisting = "return",
    context_storage: ContextStorage | None = None,
) -> DurableRunResult: ...


@overload
async def run_agent(
    agent: Agent[Any],
    run_input: str | list[Any] | RunState[Any],
    session: Session | None,
    stream: Literal[True],
    *,
    run_id: str | None = None,
    run_config: RunConfig | None = None,
    context: Any = None,
    max_turns: int | None = None,
    hooks: RunHooks[Any] | None = None,
    raise_on_interruption: bool = False,
    approval_timeout: float | None = None,
    on_existing: OnExisting = "return",
    context_storage: ContextStorage | None = None,
) -> DurableRunResultStreaming: ...


@overload
async def run_agent(
    agent: Agent[Any],
    run_input: str | list[Any] | RunState[Any],
    session: Session | None = None,
    *,
    stream: Literal[True],
    run_id: str | None = None,
    run_config: RunConfig | None = None,
    context: Any = None,
    max_turns: int | None = None,
    hooks: RunHooks[Any] | None = None,
    raise_on_interruption: bool = False,
    approval_timeout: float | None = None,
    on_existing: OnExisting = "return",
    context_storage: ContextStorage | None = None,
) -> DurableRunResultStreaming: ...


@overload
async def run_agent(
    agent: Agent[Any],
    run_input: str | list[Any] | RunState[Any],
    session: Session | None = None,
    stream: bool = False,
    *,
    run_id: str | None = None,
    run_config: RunConfig | None = None,
    context: Any = None,
    max_turns: int | None = None,
    hooks: RunHooks[Any] | None = None,
    raise_on_interruption: bool = False,
    approval_timeout: float | None = None,
    on_existing: OnExisting = "return",
    context_storage: ContextStorage | None = None,
) -> DurableRunResult | DurableRunResultStreaming: ...


async def run_agent(
    agent: Agent[Any],
    run_input: str | list[Any] | RunState[Any],
    session: Session | None = None,
    stream: bool = False,
    *,
    run_id: str | None = None,
    run_config: RunConfig | None = None,
    context: Any = None,
    max_turns: int | None = None,
    hooks: RunHooks[Any] | None = None,
    raise_on_interruption: bool = False,
    approval_timeout: float | None = None,
    on_existing: OnExisting = "return",
    context_storage: ContextStorage | None = None,
) -> DurableRunResult | DurableRunResultStreaming:
    """Run `agent` durably and return its result: the SDK's result with `run_id`.

    Every model call, function-tool call and session read or write is a recorded step. If the
    process dies, calling `run_agent` again with the same `run_id` (or restarting a process that
    registers the same agents) finishes the run from its records: recorded steps are never
    executed again; a step that was in flight when the process died runs again.

    The result is a `DurableRunResult` (a `RunResult`), or with `stream=True` a
    `DurableRunResultStreaming` (a `RunResultStreaming`), whose `stream_events()` yields events
    as they happen; every event also goes to the run's durable stream, which any process can
    read with `timestep.stream_events(run_id)`. When the run finished earlier or another live
    process runs it, that outcome is waited for and the streaming result is rebuilt from the
    stored state, complete: its `stream_events()` yields nothing.

    A run id that another live process is running is never executed here: the call waits for
    its outcome. When that process dies, this call takes the run over (once its lease runs
    out, or at once if its process is seen gone on this host) and finishes it here, streaming
    live with `stream=True`.

    Calling `run_agent` with the id of a finished run returns its stored result without running
    anything. Passing a `RunState` (timestep 2026.0.x's resume form: load, approve, run) with the
    `run_id` of a run parked for approval continues that run; without `run_id` it starts a new
    run from the state. An existing id started with another version of the agent's graph
    goes on under this one when its history and pending calls are valid here (the run records
    the move; see "Deploying new agent code" in the README), else `IncompatibleVersionError`
    (an `AgentMismatchError`) names every incompatibility and nothing changes; an id started
    with another starting agent raises `AgentMismatchError`. With `raise_on_interruption=True`,
    a run that stops for approval raises `InterruptionException` instead of returning a
    result with `interruptions`.

    Reusing the id of an existing run with another input or model logs a warning and goes on
    with the recorded run; `on_existing="error"` raises `RunExistsError` instead.

    With `approval_timeout` (seconds), each stop for approval waits that long at most: then the
    undecided calls are rejected with a stated message and the run continues on a worker. The
    timer is stored in the database and survives restarts.

    The context is stored with the run (see "What Timestep stores" in the README);
    `context_storage` (`timestep.ContextStorage`, shorthand for `register_agent(agent,
    context_storage=...)`) declares its stored form and the secret fields that are never stored.
    """
    if not isinstance(agent, Agent):
        raise ArgumentTypeError(f"run_agent expects an agents.Agent, got {type(agent).__name__}")
    run_id = run_id_or_new(run_id)
    engine.carry_on()  # a process that went on after SIGINT (a notebook) runs again
    engine.register_agent(agent, context_storage=context_storage)
    storage = declared_for(agent.name)
    live_context = context
    if live_context is None and isinstance(run_input, RunState):
        live_context = application_context(run_input)  # timestep 2026.0.x's resume form carries it
    if storage is not None and live_context is not None:
        storage.check_secrets(live_context, f"run {run_id!r}")
    given = _input_request(run_input, storage)
    context_json, context_is_json = _stored_context(storage, context)
    if not engine.dbos_ready():
        await asyncio.to_thread(engine.ensure_dbos)
    await engine.listen_for_registered_agents_async()
    database = storage_engine()
    record, created = await _record_for(
        agent,
        run_id,
        given,
        approval_timeout,
        stream,
        _run_overrides(agent, run_config),
        on_existing,
    )
    segment = record.segment
    if not created and record.status == "awaiting_approval" and isinstance(run_input, RunState):
        # The 2026.0.x resume form on a parked run: the state carries the decisions; the run
        # continues in a new segment (exactly one caller moves it there).
        if await asyncio.to_thread(records.advance_segment, database, run_id, segment):
            segment += 1
    descriptor = engine.session_descriptor(session)
    request = SegmentRequest(
        **given,
        run_id=run_id,
        segment=segment,
        agent=agent.name,
        max_turns=max_turns,
        stream=record.streamed,
        approval_timeout=record.approval_timeout,
        context=context_json,
        session=descriptor,
        needs_attachments=bool(
            run_config is not None
            or hooks is not None
            or not context_is_json
            or (session is not None and descriptor is None)
            # Secret fields nobody can supply from the records: recovery waits for the caller.
            or (storage is not None and storage.secret_fields and storage.deserializer is None)
        ),
    )
    workflow_id = segment_workflow_id(run_id, segment)
    handle = await start_segment(
        run_id,
        segment,
        request,
        Attachments(
            session=session,
            context=live_context,
            has_context=live_context is not None,
            run_config=run_config,
            hooks=hooks,
            agent=agent,
        ),
    )
    watcher = None if dbos_compat.runs_here(handle) else _watch_owner(workflow_id)
    try:
        if stream:
            live = await _live_stream(workflow_id, handle)
            if live is not None:
                return _until_recorded(live, run_id, workflow_id, handle)
        result = await collect_result(agent, run_id, workflow_id, handle, streamed=stream)
    finally:
        if watcher is not None:
            watcher.cancel()
    if raise_on_interruption and result.interruptions:
        stored = await asyncio.to_thread(records.get, database, run_id)
        raise InterruptionException(run_id=run_id, pending=stored.pending_approvals)
    return result


async def submit(
    agent: Agent[Any],
    run_input: str | list[Any],
    *,
    run_id: str | None = None,
    context: Any = None,
    max_turns: int | None = None,
    approval_timeout: float | None = None,
) -> str:
    """Queue a run for any process that has `agent` (a worker) and return its run id at once.

    The run goes on the agent's DBOS queue; this process neither launches DBOS nor runs it.
    Follow it with `get_run`, `stream_events` or `resume`. Submitting an existing run id again
    queues nothing. `context` must be JSON (the worker has nothing else of this process).
    """
    if not isinstance(agent, Agent):
        raise ArgumentTypeError(f"submit expects an agents.Agent, got {type(agent).__name__}")
    if isinstance(run_input, RunState):
        raise InvalidArgumentError(
            "submit takes a string or input items; continue a parked RunState with run_agent"
        )
    given = _input_request(run_input)
    storage = declared_for(agent.name)
    if storage is not None and context is not None:
        storage.check_secrets(context, "submit")  # a worker re-supplies them, never the record
    context_json, context_is_json = _stored_context(storage, context)
    if not context_is_json:
        raise InvalidArgumentError(
            f"submit needs a JSON context (a worker runs the run), not {type(context).__name__}; "
            "use run_agent to run with this context in this process"
        )
    run_id = run_id_or_new(run_id)
    record, _ = await _record_for(
        agent, run_id, given, approval_timeout, False, _run_overrides(agent, None), "return"
    )
    request = SegmentRequest(
        **given,
        run_id=run_id,
        segment=1,
        agent=agent.name,
        max_turns=max_turns,
        stream=False,
        approval_timeout=record.approval_timeout,
        context=context_json,
        session=None,
        needs_attachments=False,
    )
    if record.segment == 1 and record.status == "running":
        await engine.enqueue_segment(
            segment_workflow_id(run_id, 1), agent.name, record.fingerprint, request
        )
    return run_id


def _watch_owner(workflow_id: str) -> asyncio.Task[None]:
    """While another process owns the segment: take it over (to run here) once that owner is
    dead. Cancelled when the caller has its result."""
    owner = engine.process_fleet()

    async def watch() -> None:
        if owner is None:
            return
        while True:
            try:
                await asyncio.to_thread(owner.take_over_if_dead, workflow_id)
            except Exception as exc:  # the database may be away for a while: keep watching
                logger.warning("timestep: checking the owner of %s failed: %s", workflow_id, exc)
            await asyncio.sleep(min(1.0, owner.heartbeat_interval))

    return asyncio.ensure_future(watch())


async def _live_stream(workflow_id: str, handle: WorkflowHandleAsync[Any]) -> LiveStream | None:
    """The streaming result of a segment running in this process, as soon as it starts.

    None when the segment does not run here: it finished before, or another process runs it.
    """
    published = engine.expect_live_stream(workflow_id)
    finished = asyncio.ensure_future(handle.get_result())
    try:
        await asyncio.wait({published, finished}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        finished.cancel()
    return engine.take_live_stream(workflow_id)


def _until_recorded(
    live: LiveStream, run_id: str, workflow_id: str, handle: WorkflowHandleAsync[Any]
) -> DurableRunResultStreaming:
    """The live streaming result, whose `stream_events()` ends only once the segment is recorded.

    The SDK's stream ends with the run loop; the segment still flushes the durable stream and
    records the outcome after that. A caller that returns right after the last event (and so
    ends its event loop) must not cancel that work.
    """

    async def recorded() -> None:
        try:
            await handle.get_result()
        except Exception:
            original = engine.take_live_error(workflow_id)
            if original is not None:
                raise original from None
            raise

    return DurableRunResultStreaming.adopt(live.result, run_id, recorded, live.loop)


@overload
async def collect_result(
    agent: Agent[Any],
    run_id: str,
    workflow_id: str,
    handle: WorkflowHandleAsync[Any],
    streamed: Literal[False] = False,
) -> DurableRunResult: ...


@overload
async def collect_result(
    agent: Agent[Any],
    run_id: str,
    workflow_id: str,
    handle: WorkflowHandleAsync[Any],
    streamed: bool,
) -> DurableRunResult | DurableRunResultStreaming: ...


async def collect_result(
    agent: Agent[Any],
    run_id: str,
    workflow_id: str,
    handle: WorkflowHandleAsync[Any],
    streamed: bool = False,
) -> DurableRunResult | DurableRunResultStreaming:
    """Wait for a segment and return the run's result: live when it ran here, else rebuilt
    (a finished streaming result when `streamed`)."""
    database = storage_engine()
    try:
        await _wait_stoppable(run_id, handle)
    except (RunCancelledError, RunInterruptedError):
        raise
    except Exception as exc:
        original = engine.take_live_error(workflow_id)
        record = await asyncio.to_thread(records.get, database, run_id)
        if record.status == "cancelled" or dbos_compat.is_awaited_cancellation(exc):
            raise RunCancelledError(run_id) from None
        if original is not None:
            raise original from None
        tripwire = engine.tripwire_from_record(record.error, agent)
        if tripwire is not None:
            raise tripwire from None
        raise TimestepError(f"run {run_id!r} failed: {record.error or exc}") from exc
    live = engine.take_live_result(workflow_id)
    if isinstance(live, RunResult) and not streamed:
        return DurableRunResult.adopt(live, run_id)
    record = await asyncio.to_thread(records.get, database, run_id)
    state = await asyncio.to_thread(records.load_state, database, run_id)
    return await rebuild_result(agent, run_id, state, record.final_output, streamed)


async def _wait_stoppable(run_id: str, handle: WorkflowHandleAsync[Any]) -> None:
    """Wait for the segment's outcome. SIGINT/SIGTERM meanwhile stop this process without
    throwing away a tool call in flight (`stopping`); `cancel(run_id)` here ends the wait at
    once with `RunCancelledError`, whatever the segment is still finishing."""
    engine.carry_on()
    outcome = asyncio.ensure_future(handle.get_result())
    with engine.cancellation_of(run_id) as ended:
        async with engine.signals_deferred():
            try:
                await asyncio.wait({outcome, ended}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                # Only this wait ends: the segment's own task goes on (DBOS shields it).
                outcome.cancel()
    if outcome.done() and not outcome.cancelled():
        outcome.result()
        return
    if ended.result() == "stopped":
        raise RunInterruptedError(run_id)
    raise RunCancelledError(run_id)


ResultT = TypeVar("ResultT", bound=RunResultBase)


async def consume_result(result: ResultT) -> ResultT:
    """Drain a streaming result's events (a no-op for a finished result) and return it."""
    if isinstance(result, RunResultStreaming):
        async for _event in result.stream_events():
            pass
    return result
