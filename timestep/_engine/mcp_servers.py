"""MCP servers in a durable run: every tool call is a recorded step, on the server's own loop.

The SDK does not list MCP tools in `agent.tools`: each turn it asks the agent's `mcp_servers`
for their tools and turns them into function tools that call `server.call_tool`. So the durable
copy of an agent gets its servers wrapped in a `DurableMCPServer`:

- `call_tool` is a DBOS step at the step id reserved for its call (as for function tools), so a
  finished call is replayed from its record and never sent to the server again. The call id
  comes from the SDK's own `tool_meta_resolver` hook, which the SDK invokes with the tool's
  context right before `call_tool`; the request's `_meta` carries the idempotency key
  (`IDEMPOTENCY_META_KEY`: `RUN_ID:CALL_ID`) so that a server can deduplicate the one call that
  may run again (the call in flight when a process died).
- `list_tools` is asked live on every turn, replays included (it is not recorded): a replay sees
  the server's present tool list. A recorded call is replayed whatever the list says, but the
  SDK refuses a model's call of a tool that the list no longer has.
- An MCP client session belongs to the event loop that connected it: its reader task runs
  there, and an answer awaited from another loop arrives only when the session's read timeout
  expires. A segment runs on whatever loop takes it (DBOS's own thread after a takeover or for a
  continuation), so every request is sent on the loop the server was handed to Timestep from
  (`note_loops`, called by `register_agent` and `run_agent`).
- A worker connects the MCP servers of the agents it registers itself, on a loop of its own
  (`ServerHost`): an app module only declares them.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import threading
import weakref
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from agents.mcp import MCPServer
from dbos import DBOS
from mcp.types import CallToolResult

from .._compat import agents as agents_compat
from . import stopping
from .codecs import decode_tool_output, encode_tool_output
from .segment import (
    TOOL_STEP,
    current_segment,
    enter_tool_call,
    fire_hooks,
    in_workflow_body,
    leave_tool_call,
)

if TYPE_CHECKING:
    from agents import Agent
    from agents.mcp.util import MCPToolMetaContext

T = TypeVar("T")

logger = logging.getLogger("timestep")

IDEMPOTENCY_META_KEY = "timestep/idempotency_key"
"""The `_meta` key of an MCP tool request that carries `RUN_ID:CALL_ID`."""

_call_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "timestep_mcp_call_id", default=None
)

_owner_loops: weakref.WeakKeyDictionary[MCPServer, asyncio.AbstractEventLoop] = (
    weakref.WeakKeyDictionary()
)


def note_loops(agents: list[Agent[Any]]) -> None:
    """Remember the running loop as the home of these agents' MCP servers (a server whose
    home loop is still open keeps it: the loop that connected it is the first to hand it over)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    for agent in agents:
        for server in agent.mcp_servers:
            home = _owner_loops.get(server)
            if home is None or home.is_closed():
                _owner_loops[server] = loop


async def _on_home_loop(server: MCPServer, call: Callable[[], Awaitable[T]]) -> T:
    home = _owner_loops.get(server)
    here = asyncio.get_running_loop()
    if home is None or home is here or home.is_closed() or not home.is_running():
        return await call()

    async def run() -> T:
        return await call()

    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(run(), home))


class DurableMCPServer(MCPServer):
    """An agent's MCP server as a durable run uses it (see the module's docstring).

    Everything but the calls below is the wrapped server's own (its name, approval policy,
    guardrails, structured-content setting): this wrapper adds no configuration of its own.
    """

    def __init__(self, inner: MCPServer) -> None:
        # No `super().__init__`: its attributes would shadow the wrapped server's. The one
        # attribute of its own is the SDK's hook that tells it the call id (`_resolve_meta`).
        self._inner = inner
        self.tool_meta_resolver = self._resolve_meta

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    @property
    def inner(self) -> MCPServer:
        return self._inner

    @property
    def name(self) -> str:
        return self._inner.name

    @property
    def cached_tools(self) -> Any:
        return self._inner.cached_tools

    # The SDK asks a server for its approval policy and failure formatter through these
    # (private) methods when it turns the server's tools into function tools.
    def _get_needs_approval_for_tool(self, tool: Any, agent: Any) -> Any:
        return agents_compat.mcp_approval_policy(self._inner, tool, agent)

    def _get_failure_error_function(self, default: Any) -> Any:
        return agents_compat.mcp_failure_error_function(self._inner, default)

    async def _resolve_meta(self, context: MCPToolMetaContext) -> dict[str, Any] | None:
        # The SDK awaits this in the tool call's task just before it starts `call_tool` in a
        # task of its own, which inherits the variable set here.
        call_id = getattr(context.run_context, "tool_call_id", None)
        _call_id.set(call_id if isinstance(call_id, str) else None)
        resolver = self._inner.tool_meta_resolver
        if resolver is None:
            return None
        meta = resolver(context)
        return await meta if inspect.isawaitable(meta) else meta

    async def connect(self) -> None:
        await self._inner.connect()
        _owner_loops[self._inner] = asyncio.get_running_loop()

    async def cleanup(self) -> None:
        await _on_home_loop(self._inner, self._inner.cleanup)

    async def list_tools(self, run_context: Any = None, agent: Any = None) -> Any:
        return await _on_home_loop(self._inner, lambda: self._inner.list_tools(run_context, agent))

    async def list_prompts(self) -> Any:
        return await _on_home_loop(self._inner, self._inner.list_prompts)

    async def get_prompt(self, name: str, arguments: dict[str, Any] | None = None) -> Any:
        return await _on_home_loop(self._inner, lambda: self._inner.get_prompt(name, arguments))

    async def list_resources(self, cursor: str | None = None) -> Any:
        return await _on_home_loop(self._inner, lambda: self._inner.list_resources(cursor))

    async def list_resource_templates(self, cursor: str | None = None) -> Any:
        return await _on_home_loop(self._inner, lambda: self._inner.list_resource_templates(cursor))

    async def read_resource(self, uri: Any) -> Any:
        return await _on_home_loop(self._inner, lambda: self._inner.read_resource(uri))

    async def call_tool(
        self, tool_name: str, arguments: dict[str, Any] | None, meta: dict[str, Any] | None = None
    ) -> CallToolResult:
        segment = current_segment()
        call_id = _call_id.get()
        if segment is None or call_id is None or not in_workflow_body():
            return await self._send(tool_name, arguments, meta)
        meta = {**(meta or {}), IDEMPOTENCY_META_KEY: f"{segment.run_id}:{call_id}"}
        ran: list[bool] = []

        async def call() -> dict[str, Any]:
            ran.append(True)
            result = await self._send(tool_name, arguments, meta)
            return encode_tool_output(
                tool_name, call_id, result.model_dump(mode="json", by_alias=True)
            )

        reserved = segment.tool_slots.pop(call_id, None)
        await stopping.gate()
        token = enter_tool_call(segment.run_id, call_id)
        try:
            if reserved is not None:
                record = await reserved.run_async(TOOL_STEP, call)
            else:
                record = await DBOS.run_step_async(TOOL_STEP, call)
        finally:
            leave_tool_call(token)
        if not ran:
            segment.replayed_calls.add(call_id)
        result = CallToolResult.model_validate(decode_tool_output(record, call_id))
        fire_hooks("tool", call_id)
        return result

    async def _send(
        self, tool_name: str, arguments: dict[str, Any] | None, meta: dict[str, Any] | None
    ) -> CallToolResult:
        if meta is None:
            return await _on_home_loop(
                self._inner, lambda: self._inner.call_tool(tool_name, arguments)
            )
        return await _on_home_loop(
            self._inner, lambda: self._inner.call_tool(tool_name, arguments, meta=meta)
        )


def durable_servers(servers: list[MCPServer]) -> list[MCPServer]:
    return [s if isinstance(s, DurableMCPServer) else DurableMCPServer(s) for s in servers]


class ServerHost:
    """A thread running an event loop of its own, on which a worker connects the MCP servers of
    its agents (and closes them when it stops): the servers' home loop (`note_loops`)."""

    CONNECT_TIMEOUT_SECONDS = 60.0

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.servers: list[MCPServer] = []
        threading.Thread(target=self.loop.run_forever, name="timestep-mcp", daemon=True).start()

    def connect(self, agents: list[Agent[Any]]) -> None:
        """Connect every MCP server of `agents` that has no home loop yet (raises what the
        server's `connect` raises)."""
        for agent in agents:
            for server in agent.mcp_servers:
                if server in _owner_loops or server in self.servers:
                    continue
                done = asyncio.run_coroutine_threadsafe(server.connect(), self.loop)
                done.result(timeout=self.CONNECT_TIMEOUT_SECONDS)
                _owner_loops[server] = self.loop
                self.servers.append(server)
                logger.info("timestep: MCP server %r connected", server.name)

    def close(self) -> None:
        for server in reversed(self.servers):
            try:
                asyncio.run_coroutine_threadsafe(server.cleanup(), self.loop).result(timeout=30)
            except Exception as exc:  # closing is best effort: the process is exiting
                logger.warning("timestep: closing MCP server %r failed: %s", server.name, exc)
        self.loop.call_soon_threadsafe(self.loop.stop)
