"""A real MCP server for the tests, logging each real tool execution.

    python -m tests.apps.mcp_server LOG [stdio | sse PORT | streamable-http PORT]

Its `add_entry` tool logs the call with the idempotency key the client sent in the request's
`_meta`. With `TIMESTEP_TEST_MCP_KILL_PARENT=NAME`, the call for entry NAME kills the client
process (a stdio server's parent) right after its side effect: a crash inside an MCP call.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from tests.helpers import ExecutionLog

try:  # mcp >= 2.3
    from mcp.server.mcpserver import Context
    from mcp.server.mcpserver import MCPServer as Server
except ImportError:  # mcp 1.x
    from mcp.server.fastmcp import Context  # type: ignore[no-redef]
    from mcp.server.fastmcp import FastMCP as Server  # type: ignore[no-redef]

IDEMPOTENCY_META_KEY = "timestep/idempotency_key"
"""`timestep._engine.mcp_servers.IDEMPOTENCY_META_KEY` (not imported: the server starts faster
without Timestep; tests/test_sdk_features.py checks that the keys arrive)."""
log = ExecutionLog(sys.argv[1])
transport = sys.argv[2] if len(sys.argv) > 2 else "stdio"
server: Any = Server("ledger")


def _meta(ctx: Any) -> dict[str, Any]:
    meta = getattr(ctx.request_context, "meta", None)
    if meta is None:
        return {}
    if isinstance(meta, dict):
        return meta
    return meta.model_dump() if hasattr(meta, "model_dump") else dict(meta)


@server.tool()
def add_entry(name: str, amount: int, ctx: Context) -> str:
    """Add a ledger entry (the side effect) and return its receipt."""
    log.write("mcp", name=name, amount=amount, key=_meta(ctx).get(IDEMPOTENCY_META_KEY))
    if os.environ.get("TIMESTEP_TEST_MCP_KILL_PARENT") == name:
        log.write("crash", at="mcp_inside")
        os.kill(os.getppid(), signal.SIGKILL)
    return f"receipt {name}:{amount}"


if __name__ == "__main__":
    if transport == "stdio":
        server.run()
    else:
        server.run(transport, host="127.0.0.1", port=int(sys.argv[3]))
