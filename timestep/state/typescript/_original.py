"""timestep 2026.0.x's own RunState documents, brought to what @openai/agents loads.

The original Python package (2026.0.8) saved schema "1.0" camelCase documents written by its
vendored fork of the Agents SDK: the TypeScript SDK's layout of that time, but with a few
shapes that @openai/agents 0.20.0's `RunState.fromString` refuses with a `ZodError` (measured
on the stores the original wrote, tests/interop/original/):

- protocol items carry the Responses API's unset fields as `null` (`namespace: null`,
  `caller: null` on every function call), where the TypeScript protocol wants them absent;
- `originalInput` holds the earlier turns of a session, whose tool outputs are bare strings
  (`function_call_result.output: "sunny"`) where the protocol wants an output object
  (`{"type": "text", "text": "sunny"}`).

`original_document` fixes exactly these in a copy and says what it changed; everything else
goes to the SDK as written, so that the SDK's own migration (and its refusals) decide the rest.
The documents the original's TypeScript package wrote already load: for them nothing changes.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass
class OriginalDocument:
    """A document ready for `RunState.fromString`, and what was changed to make it so."""

    document: Any
    changes: list[str] = field(default_factory=list)


def original_document(written: Any) -> OriginalDocument:
    """`written` (a `run_states.state_data` of the original) with its items in today's shapes;
    anything but a JSON object is left to the SDK to refuse."""
    document = copy.deepcopy(written)
    out = OriginalDocument(document)
    if not isinstance(document, dict):
        return out
    for where, item in _protocol_items(document):
        for key in [key for key, value in item.items() if value is None]:
            del item[key]
            out.changes.append(f"{where}.{key}: null dropped")
        if item.get("type") == "function_call_result" and isinstance(item.get("output"), str):
            item["output"] = {"type": "text", "text": item["output"]}
            out.changes.append(f"{where}.output: text output object")
    return out


def _protocol_items(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every protocol item of the document (raw items of run items, model outputs, input),
    with where it is."""
    original_input = document.get("originalInput")
    if isinstance(original_input, list):
        yield from _each(original_input, "originalInput")
    yield from _run_items(document.get("generatedItems"), "generatedItems")
    for index, response in enumerate(_list(document.get("modelResponses"))):
        yield from _each(_list(_dict(response).get("output")), f"modelResponses[{index}].output")
    last = _dict(document.get("lastModelResponse"))
    yield from _each(_list(last.get("output")), "lastModelResponse.output")
    processed = _dict(document.get("lastProcessedResponse"))
    yield from _run_items(processed.get("newItems"), "lastProcessedResponse.newItems")
    for kind in ("functions", "handoffs"):
        for index, entry in enumerate(_list(processed.get(kind))):
            call = _dict(entry).get("toolCall")
            if isinstance(call, dict):
                yield f"lastProcessedResponse.{kind}[{index}].toolCall", call
    step = _dict(_dict(document.get("currentStep")).get("data"))
    yield from _run_items(step.get("interruptions"), "currentStep.data.interruptions")


def _run_items(items: Any, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for index, item in enumerate(_list(items)):
        raw = _dict(item).get("rawItem")
        if isinstance(raw, dict):
            yield f"{where}[{index}].rawItem", raw


def _each(items: list[Any], where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for index, item in enumerate(items):
        if isinstance(item, dict):
            yield f"{where}[{index}]", item


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
