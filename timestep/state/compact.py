"""How a run's RunState is stored: without the copies the SDK's document repeats, and the
states a run parks with as changes to the one before.

The SDK's RunState JSON holds each tool output twice in a tool-output item (the item's
`output` and its raw item's) and, while no session is used, the whole `generated_items` list
again as `session_items`: about five times the conversation. `pack` drops the copies (and
marks where they were); `unpack` restores the exact document. Both are plain JSON: nothing
else is changed, and an unpacked document is what the SDK wrote.

A run that stops for approval stores the state it parked with at every stop (a replay or a fork
of the next segment starts from it). Stored whole, stop k would repeat everything before it,
and a run's bytes would grow with the square of its stops. `diff` keeps what changed between
two JSON values instead, lists that only grew as what was appended, and `patch` applies it: a
run's parked states cost about one copy of the run.
"""

from __future__ import annotations

import json
from typing import Any

PACKED = "$timestep.packed"
"""Marks a packed document (the SDK never writes keys that start with `$timestep`)."""

_SAME_AS_GENERATED = {"$timestep.same_as": "generated_items"}
_OUTPUT_IN_RAW_ITEM = "$timestep.output_in_raw_item"
_GENERATED_ITEM = "$timestep.generated_item"


def _pack_item(item: Any) -> Any:
    raw = item.get("raw_item") if isinstance(item, dict) else None
    if (
        isinstance(raw, dict)
        and item.get("type") == "tool_call_output_item"
        and "output" in item
        and item["output"] == raw.get("output")
    ):
        packed = {k: v for k, v in item.items() if k != "output"}
        packed[_OUTPUT_IN_RAW_ITEM] = True
        return packed
    return item


def _unpack_item(item: Any) -> Any:
    if isinstance(item, dict) and item.get(_OUTPUT_IN_RAW_ITEM):
        restored = {k: v for k, v in item.items() if k != _OUTPUT_IN_RAW_ITEM}
        restored["output"] = item["raw_item"]["output"]
        return restored
    return item


def pack(state: dict[str, Any]) -> dict[str, Any]:
    """`state` (the SDK's RunState JSON) without the copies it repeats."""
    if PACKED in state:
        return state
    packed = dict(state)
    generated = state.get("generated_items")
    session = state.get("session_items")
    if isinstance(generated, list):
        packed["generated_items"] = [_pack_item(item) for item in generated]
        if session == generated:
            packed["session_items"] = _SAME_AS_GENERATED
        elif isinstance(session, list):
            # Session items are mostly generated items again: each such one by its index.
            index = {_key(item): i for i, item in enumerate(generated)}
            packed["session_items"] = [
                {_GENERATED_ITEM: index[_key(item)]} if _key(item) in index else _pack_item(item)
                for item in session
            ]
    packed[PACKED] = 1
    return packed


def _key(item: Any) -> str:
    return json.dumps(item, sort_keys=True)


def unpack(stored: dict[str, Any]) -> dict[str, Any]:
    """The SDK's RunState JSON from what `pack` made (a document that is not packed, as stored
    by earlier versions, is returned as it is)."""
    if PACKED not in stored:
        return stored
    state = {k: v for k, v in stored.items() if k != PACKED}
    generated = state.get("generated_items")
    session = state.get("session_items")
    if isinstance(generated, list):
        items = [_unpack_item(item) for item in generated]
        state["generated_items"] = items
        if session == _SAME_AS_GENERATED:
            state["session_items"] = list(items)
        elif isinstance(session, list):
            state["session_items"] = [
                items[item[_GENERATED_ITEM]]
                if isinstance(item, dict) and _GENERATED_ITEM in item
                else _unpack_item(item)
                for item in session
            ]
    return state


def diff(old: Any, new: Any) -> dict[str, Any]:
    """What turns `old` into `new` (JSON values), for `patch`: dicts key by key, lists by their
    unchanged start, then item by item, then what was appended."""
    if isinstance(old, dict) and isinstance(new, dict):
        changed = {
            key: diff(old.get(key), value)
            for key, value in new.items()
            if key not in old or old[key] != value
        }
        dropped = [key for key in old if key not in new]
        return {"$dict": changed, "$drop": dropped} if dropped else {"$dict": changed}
    if isinstance(old, list) and isinstance(new, list):
        common = min(len(old), len(new))
        kept = 0
        while kept < common and old[kept] == new[kept]:
            kept += 1
        return {
            "$keep": kept,
            "$each": [diff(old[i], new[i]) for i in range(kept, common)],
            "$then": new[common:],
        }
    return {"$set": new}


def patch(old: Any, change: dict[str, Any]) -> Any:
    """`old` changed by `change` (from `diff(old, new)`): `new`."""
    if "$set" in change:
        return change["$set"]
    if "$keep" in change:
        kept = change["$keep"]
        each = [patch(old[kept + i], inner) for i, inner in enumerate(change["$each"])]
        return [*old[:kept], *each, *change["$then"]]
    dropped = change.get("$drop", ())
    result = {key: value for key, value in old.items() if key not in dropped}
    for key, inner in change["$dict"].items():
        result[key] = patch(old.get(key), inner)
    return result
