"""Input and output guardrails in a durable run: each result is a recorded step.

A guardrail may run an agent of its own (a "guardrail agent"): that model call must not be made
again when a segment is replayed. The durable copy of an agent therefore gets copies of its
guardrails whose function runs inside a DBOS step; the step records the function's
`GuardrailFunctionOutput` (its `output_info` as JSON), and a replay returns the record. What
runs inside the step (the guardrail agent's model calls and tools) is not recorded separately:
a crash inside a guardrail runs that guardrail again, and nothing else.

Step ids must come in the same order on replay. Input guardrails normally run concurrently with
the model call; in a durable run they run before it (`run_in_parallel=False`), so a tripped
guardrail also spares the model call. Output guardrails start together, and each reaches its
step without suspending, so their ids follow their order on the agent.

A run that a tripwire stopped raises the SDK's own exception (`InputGuardrailTripwireTriggered`,
`OutputGuardrailTripwireTriggered`) every time it is asked for: live, and from its records in
another process (`tripwire_from_record`).
"""

from __future__ import annotations

import dataclasses
import inspect
import json
from typing import Any

from agents import (
    Agent,
    GuardrailFunctionOutput,
    InputGuardrail,
    InputGuardrailResult,
    InputGuardrailTripwireTriggered,
    OutputGuardrail,
    OutputGuardrailResult,
    OutputGuardrailTripwireTriggered,
)
from dbos import DBOS, StepOptions
from pydantic_core import to_jsonable_python

from .naming import GUARDRAIL_STEP_NAME
from .segment import in_workflow_body

GUARDRAIL_STEP: StepOptions = {"name": GUARDRAIL_STEP_NAME}

_TRIPWIRE_PREFIX = "tripwire of guardrail "


def _recorded(name: str, function: Any) -> Any:
    async def run(context: Any, agent: Any, value: Any) -> GuardrailFunctionOutput:
        if not in_workflow_body():
            output = function(context, agent, value)
            return await output if inspect.isawaitable(output) else output
        live: list[GuardrailFunctionOutput] = []

        async def call() -> dict[str, Any]:
            output = function(context, agent, value)
            result = await output if inspect.isawaitable(output) else output
            live.append(result)
            return {
                "guardrail": name,
                "output_info": to_jsonable_python(result.output_info, fallback=repr),
                "tripwire_triggered": bool(result.tripwire_triggered),
            }

        record = await DBOS.run_step_async(GUARDRAIL_STEP, call)
        if live:
            return live[0]
        return GuardrailFunctionOutput(record["output_info"], record["tripwire_triggered"])

    run.__name__ = name
    return run


def durable_input_guardrails(guardrails: list[InputGuardrail[Any]]) -> list[InputGuardrail[Any]]:
    return [
        dataclasses.replace(
            g,
            guardrail_function=_recorded(g.get_name(), g.guardrail_function),
            name=g.get_name(),
            run_in_parallel=False,
        )
        for g in guardrails
    ]


def durable_output_guardrails(
    guardrails: list[OutputGuardrail[Any]],
) -> list[OutputGuardrail[Any]]:
    return [
        dataclasses.replace(
            g, guardrail_function=_recorded(g.get_name(), g.guardrail_function), name=g.get_name()
        )
        for g in guardrails
    ]


def describe_tripwire(error: BaseException) -> str | None:
    """The failure text stored for a run a tripwire stopped (None for any other failure):
    the exception's type, the guardrail's name and its `output_info`, as JSON."""
    if not isinstance(error, InputGuardrailTripwireTriggered | OutputGuardrailTripwireTriggered):
        return None
    result = error.guardrail_result
    name = json.dumps(result.guardrail.get_name())
    info = json.dumps(to_jsonable_python(result.output.output_info, fallback=repr))
    return f"{type(error).__name__}: {_TRIPWIRE_PREFIX}{name} {info}"


def tripwire_from_record(error: str | None, agent: Agent[Any]) -> Exception | None:
    """The SDK exception for a run whose stored failure is a tripwire (`describe_tripwire`),
    with the guardrail of `agent`'s graph that tripped and its recorded `output_info` (None
    when the failure was something else)."""
    kind, _, rest = (error or "").partition(": ")
    if not rest.startswith(_TRIPWIRE_PREFIX):
        return None
    decoder = json.JSONDecoder()
    try:
        name, end = decoder.raw_decode(rest, len(_TRIPWIRE_PREFIX))
        info, _ = decoder.raw_decode(rest, end + 1)
    except ValueError:
        return None
    from .registry import walk_agents

    output = GuardrailFunctionOutput(output_info=info, tripwire_triggered=True)
    reachable = walk_agents(agent)
    if kind == InputGuardrailTripwireTriggered.__name__:
        inputs = [g for a in reachable for g in a.input_guardrails if g.get_name() == name]
        guardrail = inputs[0] if inputs else InputGuardrail(_never_called, name=name)
        return InputGuardrailTripwireTriggered(InputGuardrailResult(guardrail, output))
    if kind == OutputGuardrailTripwireTriggered.__name__:
        owners = [(g, a) for a in reachable for g in a.output_guardrails if g.get_name() == name]
        found, owner = owners[0] if owners else (OutputGuardrail(_never_called, name=name), agent)
        return OutputGuardrailTripwireTriggered(OutputGuardrailResult(found, None, owner, output))
    return None


def _never_called(*args: Any) -> GuardrailFunctionOutput:
    raise AssertionError("a guardrail rebuilt from a run's records is never run")
