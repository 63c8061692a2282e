"""Agents known to this process, by name, and the fingerprint of an agent graph.

Agents hold code and cannot be stored; a run records its starting agent's name and a description
of the whole graph it can reach (agents, their tools with parameter schemas, handoffs). Recovery
and resumption look the agent up here and refuse a graph that differs from the recorded one.
"""

from __future__ import annotations

import hashlib
import json
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where used: deciders and inspectors never load the Agents SDK
    from agents import Agent

from .. import context
from ..context import ContextStorage
from ..errors import AgentMismatchError, ArgumentTypeError, InvalidArgumentError, TimestepError
from ..state.run_record import version_id

_agents: dict[str, Agent[Any]] = {}
_modules: dict[str, str] = {}
"""The module each agent was registered from, when `register_module` registered it."""
_labels: dict[str, str] = {}
_versions: dict[str, str] = {}
"""Fingerprint of each registered agent's graph, computed on first use after registration."""
_lock = threading.Lock()


def walk_agents(agent: Agent[Any], *, through_agent_tools: bool = False) -> list[Agent[Any]]:
    """Every agent reachable from `agent` through handoffs (and, when asked, through the
    agents its tools run: `Agent.as_tool`), `agent` first."""
    from agents import Agent, Handoff

    from .._compat.agents import agent_of_agent_tool, handoff_target

    seen: dict[int, Agent[Any]] = {}
    pending: list[Agent[Any]] = [agent]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen[id(current)] = current
        for handoff in current.handoffs:
            if isinstance(handoff, Agent):
                pending.append(handoff)
            elif isinstance(handoff, Handoff):
                resolved = handoff_target(handoff)
                if resolved is not None:
                    pending.append(resolved)
        if through_agent_tools:
            for tool in current.tools:
                inner = agent_of_agent_tool(tool)
                if inner is not None:
                    pending.append(inner)
    return list(seen.values())


def register_agent(
    agent: Agent[Any],
    *,
    context_storage: ContextStorage | None = None,
    version: str | None = None,
) -> None:
    """Make `agent` and every agent it hands off to available to runs in this process.

    Registering another agent under a name already taken replaces it (a redefinition in a
    notebook); runs recorded against the old graph are then refused by the fingerprint check.

    `context_storage` declares how the context of runs starting with `agent` is stored
    (`timestep.ContextStorage`: secret fields never stored, a serializer and deserializer).
    Registering again without it keeps the declaration made before.

    `version` labels this code of `agent` (a release name, a date): runs started or moved here
    record it next to the graph fingerprint, which is what decides where a run may go on (see
    "Deploying new agent code" in the README). Registering again without it keeps the label.
    """
    from agents import Agent

    if not isinstance(agent, Agent):
        raise ArgumentTypeError(
            f"register_agent expects an agents.Agent, got {type(agent).__name__}"
        )
    if context_storage is not None and not isinstance(context_storage, ContextStorage):
        raise ArgumentTypeError(
            "context_storage must be a timestep.ContextStorage, not "
            f"{type(context_storage).__name__}"
        )
    if version is not None and (not isinstance(version, str) or not version.strip()):
        raise InvalidArgumentError(f"version must be a non-empty string, got {version!r}")
    from .mcp_servers import note_loops

    note_loops(walk_agents(agent, through_agent_tools=True))
    with _lock:
        for reachable in walk_agents(agent):
            _agents[reachable.name] = reachable
            _versions.pop(reachable.name, None)
        if context_storage is not None:
            context.declare(agent.name, context_storage)
        if version is not None:
            _labels[agent.name] = version


def version_of(name: str) -> tuple[str, str | None] | None:
    """(graph fingerprint, label) of the agent registered as `name`; None if there is none."""
    agent = _agents.get(name)
    if agent is None:
        return None
    found = _versions.get(name)
    if found is None:
        found = fingerprint(describe_graph(agent))
        with _lock:
            if _agents.get(name) is agent:
                _versions[name] = found
    return found, _labels.get(name)


def module_of(name: str) -> str | None:
    """The module agent `name` was registered from by `register_module` (None: registered by
    `register_agent` directly, which does not know it)."""
    return _modules.get(name)


def get_agent(name: str) -> Agent[Any] | None:
    return _agents.get(name)


def registered_agents() -> list[Agent[Any]]:
    with _lock:
        return list(_agents.values())


def registered_names() -> list[str]:
    return sorted(_agents)


def advertised_names() -> list[str]:
    """What this process's heartbeat lists: each registered agent's name, and `name@version`
    (`run_record.version_id` of its graph's fingerprint), so that peers and `runs list` know
    which versions a live process can run."""
    names = registered_names()
    versions = []
    for name in names:
        found = version_of(name)
        if found is not None:
            versions.append(f"{name}@{version_id(found[0])}")
    return [*names, *versions]


def _tool_description(tool: Any) -> dict[str, Any]:
    from agents import FunctionTool

    if isinstance(tool, FunctionTool):
        return {"type": "function", "parameters": tool.params_json_schema}
    return {"type": type(tool).__name__}


def describe_graph(agent: Agent[Any]) -> dict[str, Any]:
    """A JSON description of the agent graph: what must match for a run to replay."""
    from agents import Agent

    agents: dict[str, Any] = {}
    for reachable in walk_agents(agent):
        handoff_names = []
        for handoff in reachable.handoffs:
            if isinstance(handoff, Agent):
                handoff_names.append(handoff.name)
            else:
                handoff_names.append(handoff.agent_name)
        agents[reachable.name] = {
            "tools": {
                getattr(tool, "name", type(tool).__name__): _tool_description(tool)
                for tool in reachable.tools
            },
            "handoffs": sorted(handoff_names),
        }
    description: dict[str, Any] = {"start": agent.name, "agents": agents}
    storage = context.declared_for(agent.name)
    declared = storage.describe() if storage is not None else None
    if declared is not None:
        description["context"] = declared  # names only: what a process must re-supply
    return description


def fingerprint(description: dict[str, Any]) -> str:
    canonical = json.dumps(description, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def graph_differences(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Human-readable differences between two graph descriptions (empty when they match)."""
    diffs: list[str] = []
    if recorded.get("start") != current.get("start"):
        diffs.append(f"starting agent was {recorded.get('start')!r}, now {current.get('start')!r}")
    old_secrets = (recorded.get("context") or {}).get("secret_fields", [])
    new_secrets = (current.get("context") or {}).get("secret_fields", [])
    if old_secrets != new_secrets:
        diffs.append(
            f"the run's context has secret fields {old_secrets} (never stored), this process "
            f"declares {new_secrets}: register the agent with register_agent(agent, "
            f"context_storage=timestep.ContextStorage(secret_fields=...)) as the run was started"
        )
    old_agents, new_agents = recorded.get("agents", {}), current.get("agents", {})
    for name in sorted(set(old_agents) - set(new_agents)):
        diffs.append(f"agent {name!r} is missing")
    for name in sorted(set(new_agents) - set(old_agents)):
        diffs.append(f"agent {name!r} was not in the run")
    for name in sorted(set(old_agents) & set(new_agents)):
        old, new = old_agents[name], new_agents[name]
        for tool in sorted(set(old["tools"]) - set(new["tools"])):
            diffs.append(f"agent {name!r} lost tool {tool!r}")
        for tool in sorted(set(new["tools"]) - set(old["tools"])):
            diffs.append(f"agent {name!r} gained tool {tool!r}")
        for tool in sorted(set(old["tools"]) & set(new["tools"])):
            if old["tools"][tool] != new["tools"][tool]:
                diffs.append(f"agent {name!r} tool {tool!r} has a different parameter schema")
        if old["handoffs"] != new["handoffs"]:
            diffs.append(
                f"agent {name!r} hands off to {new['handoffs']} instead of {old['handoffs']}"
            )
    return diffs


def check_graph(run_id: str, recorded: dict[str, Any], agent: Agent[Any]) -> None:
    """Raise `AgentMismatchError` when `agent`'s graph differs from the recorded one."""
    differences = graph_differences(recorded, describe_graph(agent))
    if differences:
        raise AgentMismatchError(run_id, differences)


def register_module(module_name: str) -> list[Agent[Any]]:
    """Import `module_name` and register every `Agent` at its top level.

    The module may also call `register_agent` itself; those agents count too. Raises
    `TimestepError` when the module cannot be imported or defines no agent at all.
    """
    import importlib
    import os
    import sys

    from agents import Agent

    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # `--app myapp` names a module of the current project
    before = set(_agents)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise TimestepError(f"cannot import app module {module_name!r}: {exc}") from exc
    found = [value for value in vars(module).values() if isinstance(value, Agent)]
    for agent in found:
        register_agent(agent)
    with _lock:
        for name in set(_agents) - before | {a.name for a in found}:
            _modules.setdefault(name, module_name)
    if not found and set(_agents) == before:
        raise TimestepError(
            f"module {module_name!r} defines no Agent at its top level and registers none"
        )
    return found


def resolve_agent_reference(reference: str) -> Agent[Any]:
    """The agent named by `MODULE:ATTRIBUTE` (the `timestep run` syntax)."""
    from agents import Agent

    module_name, _, attribute = reference.partition(":")
    if not module_name or not attribute:
        raise InvalidArgumentError(f"agent reference {reference!r} must look like MODULE:ATTRIBUTE")
    register_module(module_name)
    import importlib

    agent = getattr(importlib.import_module(module_name), attribute, None)
    if not isinstance(agent, Agent):
        raise ArgumentTypeError(f"{reference!r} is not an agents.Agent")
    return agent
