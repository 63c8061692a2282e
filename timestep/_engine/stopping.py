"""Stopping without throwing finished work away: SIGINT/SIGTERM, and `cancel` in this process.

On SIGINT or SIGTERM while a `run_agent`/`resume` call waits on the main thread (or in a
worker), the process stops: no step starts from then on (a segment that reaches its next model
or tool call waits there until the process exits, and is taken over later), tool calls in
flight get the grace period (`timestep.configure(stop_grace_seconds=...)`, 30 s) to finish and
be recorded, those still running then are cancelled, and the signal is delivered as if it had
just arrived (Ctrl-C raises `KeyboardInterrupt`, SIGTERM terminates, a handler of the
application's own runs). A second signal is delivered at once.

Once the signal is delivered, the calls still waiting for a run raise `RunInterruptedError`
(a server that shuts down gracefully must not wait for runs that no longer go on here). A
process that goes on after that (a notebook, after Ctrl-C) starts steps again at its next
`run_agent`/`resume` call, and the runs that waited at their next call go on too.

`cancel(run_id)` in this process makes the `run_agent`/`resume` calls waiting for that run
raise `RunCancelledError` at once, without waiting for the tool in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger("timestep")

SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass
class _Process:
    stopping: threading.Event = field(default_factory=threading.Event)
    tools: dict[asyncio.Task[Any], asyncio.AbstractEventLoop] = field(default_factory=dict)
    """Tool calls in flight in this process: the task running each, and its loop."""
    changed: threading.Condition = field(default_factory=threading.Condition)
    waiters: dict[str, list[asyncio.Future[str]]] = field(default_factory=dict)
    """Futures of `run_agent`/`resume` calls waiting for a run, by run id: set to "cancelled"
    or "stopped"."""
    gates: list[asyncio.Future[None]] = field(default_factory=list)
    """Calls waiting at the gate (released by `carry_on`)."""
    delivered: bool = False
    """The stop's signal was delivered (a process still running after it goes on)."""
    handlers: dict[asyncio.AbstractEventLoop, _Handlers] = field(default_factory=dict)
    on_stop: list[Callable[[], None]] = field(default_factory=list)


@dataclass
class _Handlers:
    previous: dict[int, Any]
    users: int = 1
    finishing: asyncio.Task[None] | None = None


_process = _Process()


def stopping() -> bool:
    """Whether this process is stopping (no step starts any more)."""
    return _process.stopping.is_set()


def begin() -> None:
    """Stop starting steps and taking work in this process (the first step of stopping)."""
    if _process.stopping.is_set():
        return
    logger.warning("timestep: stopping; tool calls in flight finish and are recorded first")
    _process.stopping.set()
    for hook in list(_process.on_stop):
        hook()


def on_stop(hook: Callable[[], None]) -> None:
    """Call `hook` when the process begins to stop (DBOS stops dequeuing work)."""
    if hook not in _process.on_stop:
        _process.on_stop.append(hook)


async def gate() -> None:
    """Where a model or tool call is about to start. Once the process is stopping, the call
    never starts: the segment waits here until the process exits (and is taken over)."""
    if not _process.stopping.is_set():
        return
    waiting: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    with _process.changed:
        _process.gates.append(waiting)
    try:
        await waiting
    finally:
        with _process.changed:
            if waiting in _process.gates:
                _process.gates.remove(waiting)


def carry_on() -> None:
    """At a new `run_agent`/`resume` call: a process that went on after its stop's signal was
    delivered (a notebook after Ctrl-C) starts steps again, and the runs held at the gate go on."""
    if not _process.delivered:
        return
    with _process.changed:
        _process.delivered = False
        _process.stopping.clear()
        gates, _process.gates = _process.gates, []
    for waiting in gates:
        loop = waiting.get_loop()
        if not loop.is_closed():
            loop.call_soon_threadsafe(_wake, waiting, None)


# --- tool calls in flight ---------------------------------------------------------------


def tool_started() -> None:
    try:
        task = asyncio.current_task()
    except RuntimeError:
        return
    if task is None:
        return
    with _process.changed:
        _process.tools[task] = task.get_loop()


def tool_ended() -> None:
    try:
        task = asyncio.current_task()
    except RuntimeError:
        return
    with _process.changed:
        _process.tools.pop(task, None)  # type: ignore[arg-type]
        _process.changed.notify_all()


def wait_for_tools(grace: float) -> bool:
    """Block until no tool call is in flight, for `grace` seconds at most; True when none is."""
    with _process.changed:
        return _process.changed.wait_for(lambda: not _process.tools, timeout=grace)


def cancel_tools() -> int:
    """Cancel the tool calls still in flight (their output is not recorded); how many."""
    with _process.changed:
        flights = list(_process.tools.items())
    for task, loop in flights:
        if not loop.is_closed():
            loop.call_soon_threadsafe(task.cancel)
    return len(flights)


def drain(grace: float) -> None:
    """Let the tool calls in flight finish (and be recorded) for `grace` seconds at most, then
    cancel the rest. Call after `begin()`, from a thread that runs no segment."""
    if wait_for_tools(grace):
        return
    cancelled = cancel_tools()
    logger.warning(
        "timestep: %d tool call(s) still running after the %.0f s grace period were cancelled; "
        "their runs go on where they are taken over",
        cancelled,
        grace,
    )


# --- signals while a call waits -----------------------------------------------------------


@contextlib.asynccontextmanager
async def signals_deferred() -> AsyncIterator[None]:
    """While a `run_agent`/`resume` call waits: SIGINT and SIGTERM stop the process gently
    (see the module's docstring). Only on the main thread (where signals are delivered)."""
    loop = asyncio.get_running_loop()
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    installed = _process.handlers.get(loop)
    if installed is not None:
        installed.users += 1
    else:
        previous: dict[int, Any] = {int(signum): signal.getsignal(signum) for signum in SIGNALS}
        try:
            for signum in SIGNALS:
                loop.add_signal_handler(signum, _on_signal, loop, signum)
        except (NotImplementedError, RuntimeError, ValueError):  # no signals on this loop
            yield
            return
        _process.handlers[loop] = _Handlers(previous)
    try:
        yield
    finally:
        handlers = _process.handlers.get(loop)
        if handlers is not None:
            handlers.users -= 1
            if handlers.users == 0 and handlers.finishing is None:
                _restore(loop)


def _restore(loop: asyncio.AbstractEventLoop) -> dict[int, Any]:
    handlers = _process.handlers.pop(loop, None)
    if handlers is None:
        return {}
    for signum, previous in handlers.previous.items():
        loop.remove_signal_handler(signum)
        signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
    return handlers.previous


def _on_signal(loop: asyncio.AbstractEventLoop, signum: int) -> None:
    handlers = _process.handlers.get(loop)
    if handlers is None:
        return
    if handlers.finishing is not None:  # a second signal: no more waiting
        handlers.finishing.cancel()
        _deliver(loop, signum)
        return
    begin()
    handlers.finishing = loop.create_task(_finish(loop, signum))


async def _finish(loop: asyncio.AbstractEventLoop, signum: int) -> None:
    from .. import config

    await asyncio.to_thread(drain, config.stop_grace_seconds())
    _deliver(loop, signum)


def _deliver(loop: asyncio.AbstractEventLoop, signum: int) -> None:
    _restore(loop)
    _process.delivered = True
    signal.raise_signal(signum)  # its handler runs now: a cancelled main task ends first
    with _process.changed:
        waiting = [f for futures in _process.waiters.values() for f in futures]
    for future in waiting:
        if not future.get_loop().is_closed():
            future.get_loop().call_soon_threadsafe(_wake, future, "stopped")


# --- cancel() while a call waits ----------------------------------------------------------


@contextlib.contextmanager
def cancellation_of(run_id: str) -> Iterator[asyncio.Future[str]]:
    """A future set to "cancelled" when `cancelled_here(run_id)` is called while the caller
    waits, or to "stopped" when the process stops (its signal delivered)."""
    future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    with _process.changed:
        _process.waiters.setdefault(run_id, []).append(future)
    try:
        yield future
    finally:
        with _process.changed:
            waiting = _process.waiters.get(run_id, [])
            if future in waiting:
                waiting.remove(future)
            if not waiting:
                _process.waiters.pop(run_id, None)


def cancelled_here(run_id: str) -> None:
    """Wake the calls of this process that wait for `run_id`: it was cancelled."""
    with _process.changed:
        waiting = list(_process.waiters.get(run_id, []))
    for future in waiting:
        loop = future.get_loop()
        if not loop.is_closed():
            loop.call_soon_threadsafe(_wake, future, "cancelled")


def _wake(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


def reset_for_tests() -> None:
    _process.stopping.clear()
    _process.delivered = False
