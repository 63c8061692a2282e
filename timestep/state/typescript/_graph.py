"""The Python agent graph as the adapter needs it: names, function tools and handoff names.

Both SDKs resolve serialized agents by name (with unique names the identity key *is* the
name) and tools by name, so a state can only be converted against a graph that contains
every agent and tool it mentions. Handoff tool names differ between the SDKs for the same
target (`transfer_to_mailer` in Python, `transfer_to_Mailer` in JS), so calls are renamed to
the receiving SDK's name; a handoff with a custom `tool_name_override` keeps its name (the
TypeScript agent must then use the same override).
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from agents import Agent, FunctionTool, Handoff

from ..._compat import agents as agents_compat
from ._errors import StateConversionError


def js_default_handoff_name(agent_name: str) -> str:
    # @openai/agents-core handoff.mjs: `transfer_to_${toFunctionToolName(agent.name)}`.
    return "transfer_to_" + re.sub(r"[^a-zA-Z0-9]", "_", re.sub(r"\s", "_", agent_name))


@dataclass
class AgentGraph:
    agents: dict[str, Agent[Any]] = field(default_factory=dict)
    function_tools: dict[str, dict[str, FunctionTool]] = field(default_factory=dict)
    # Per source agent: python handoff tool name -> (js tool name, target agent name).
    handoffs: dict[str, dict[str, tuple[str, str]]] = field(default_factory=dict)

    @classmethod
    def of(cls, start: Agent[Any]) -> AgentGraph:
        graph = cls()
        queue: deque[Agent[Any]] = deque([start])
        seen: set[int] = set()
        while queue:
            agent = queue.popleft()
            if id(agent) in seen:
                continue
            seen.add(id(agent))
            if agent.name in graph.agents:
                raise StateConversionError(
                    f"agent graph: two agents are named {agent.name!r}; the TypeScript adapter "
                    "identifies agents by name, so names must be unique"
                )
            graph.agents[agent.name] = agent
            graph.function_tools[agent.name] = {
                tool.name: tool for tool in agent.tools if isinstance(tool, FunctionTool)
            }
            graph.handoffs[agent.name] = {}
            for entry in agent.handoffs:
                target = _handoff_target(entry)
                if isinstance(entry, Handoff):
                    py_name, target_name = entry.tool_name, entry.agent_name
                else:
                    py_name, target_name = Handoff.default_tool_name(entry), entry.name
                custom = py_name != _default_tool_name_for(target_name)
                js_name = py_name if custom else js_default_handoff_name(target_name)
                graph.handoffs[agent.name][py_name] = (js_name, target_name)
                if target is not None:
                    queue.append(target)
        return graph

    def require_agent(self, name: Any, where: str) -> Agent[Any]:
        if not isinstance(name, str) or name not in self.agents:
            raise StateConversionError(
                f"{where}: agent {name!r} is not in the agent graph given to the adapter "
                f"(agents: {sorted(self.agents)})"
            )
        return self.agents[name]

    def require_tool(self, agent_name: str, tool_name: Any, where: str) -> FunctionTool:
        tools = self.function_tools.get(agent_name, {})
        tool = tools.get(tool_name) if isinstance(tool_name, str) else None
        if tool is None:
            raise StateConversionError(
                f"{where}: agent {agent_name!r} has no function tool {tool_name!r} "
                f"(tools: {sorted(self.function_tools.get(agent_name, {}))})"
            )
        return tool

    def py_to_js_name(self, name: str) -> str:
        for table in self.handoffs.values():
            if name in table:
                return table[name][0]
        return name

    def js_to_py_name(self, name: str) -> str:
        for table in self.handoffs.values():
            for py_name, (js_name, _) in table.items():
                if js_name == name:
                    return py_name
        return name

    def is_handoff(self, agent_name: str, py_tool_name: str) -> bool:
        return py_tool_name in self.handoffs.get(agent_name, {})


def _handoff_target(entry: Any) -> Agent[Any] | None:
    if isinstance(entry, Agent):
        return entry
    # Without the handoff's target (an SDK-private weak reference) the walk stops here.
    return agents_compat.handoff_target(entry)


def _default_tool_name_for(agent_name: str) -> str:
    return Handoff.default_tool_name(_NamedAgent(agent_name))  # type: ignore[arg-type]


class _NamedAgent:
    """Just enough of an agent for `Handoff.default_tool_name`, which only reads `.name`."""

    def __init__(self, name: str) -> None:
        self.name = name
