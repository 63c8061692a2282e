"""JSON codecs for what the steps record: model responses and tool outputs.

Steps record plain JSON (DBOS's portable serializer), never pickle, so a recorded run replays
after a library upgrade within the pinned SDK series and can be read by any tool.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any

from agents.items import ModelResponse, TResponseOutputItem
from agents.usage import deserialize_usage, serialize_usage
from pydantic import BaseModel, TypeAdapter, ValidationError

from ..errors import ReplayMismatchError, ToolOutputNotSerializableError

_output_item = TypeAdapter(TResponseOutputItem)


def _dump_item(item: Any) -> Any:
    if isinstance(item, BaseModel):
        return item.model_dump(mode="json", exclude_unset=True)
    return item


def _load_item(data: Any) -> Any:
    try:
        return _output_item.validate_python(data)
    except ValidationError:
        # Item kinds unknown to the installed openai package stay dicts, as the SDK does.
        return data


def encode_model_response(response: ModelResponse, model_name: str) -> dict[str, Any]:
    return {
        "model": model_name,
        "output": [_dump_item(item) for item in response.output],
        "usage": serialize_usage(response.usage),
        "response_id": response.response_id,
        "request_id": response.request_id,
        "raw_usage": response.raw_usage,
    }


def decode_model_response(data: dict[str, Any]) -> ModelResponse:
    return ModelResponse(
        output=[_load_item(item) for item in data["output"]],
        usage=deserialize_usage(data.get("usage") or {}),
        response_id=data.get("response_id"),
        request_id=data.get("request_id"),
        raw_usage=data.get("raw_usage"),
    )


def recorded_model_name(data: dict[str, Any]) -> str | None:
    """The model a recorded response came from (None for steps recorded before names were)."""
    name = data.get("model")
    return name if isinstance(name, str) else None


def _is_json_value(value: Any) -> bool:
    if value is None or isinstance(value, (str, bool, int, float)):
        return True
    if isinstance(value, list):
        return all(_is_json_value(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_json_value(v) for k, v in value.items())
    return False


def encode_tool_output(tool_name: str, call_id: str, value: Any) -> dict[str, Any]:
    """Encode a tool's return value, or say which tool returned something unstorable."""
    record: dict[str, Any] = {"call_id": call_id, "tool": tool_name}
    if _is_json_value(value):
        record.update(kind="json", value=value)
    elif isinstance(value, BaseModel):
        cls = type(value)
        record.update(
            kind="pydantic",
            type=f"{cls.__module__}:{cls.__qualname__}",
            value=value.model_dump(mode="json"),
        )
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        data = dataclasses.asdict(value)
        if not _is_json_value(data):
            raise ToolOutputNotSerializableError(
                tool_name, value, TypeError("a field holds a non-JSON value")
            )
        record.update(kind="json", value=data)
    elif isinstance(value, (list, tuple)) and all(isinstance(v, BaseModel) for v in value):
        # Lists of SDK output parts (text, image, file) are pydantic models.
        record.update(
            kind="pydantic_list",
            types=[f"{type(v).__module__}:{type(v).__qualname__}" for v in value],
            value=[v.model_dump(mode="json") for v in value],
        )
    else:
        raise ToolOutputNotSerializableError(
            tool_name, value, TypeError(f"{type(value).__name__} is not a JSON type")
        )
    return record


def _import_model(path: str) -> type[BaseModel]:
    module_name, _, qualname = path.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        target = getattr(target, part)
    if not (isinstance(target, type) and issubclass(target, BaseModel)):
        raise ReplayMismatchError(f"recorded tool output type {path} is not a pydantic model")
    return target


def decode_tool_output(record: dict[str, Any], expected_call_id: str) -> Any:
    if record.get("call_id") != expected_call_id:
        raise ReplayMismatchError(
            f"the recorded tool step belongs to call {record.get('call_id')!r} "
            f"({record.get('tool')}), but replay reached call {expected_call_id!r}; the run's "
            "code or model output changed since it was recorded"
        )
    kind = record["kind"]
    if kind == "json":
        return record["value"]
    if kind == "pydantic":
        return _import_model(record["type"]).model_validate(record["value"])
    if kind == "pydantic_list":
        return [
            _import_model(path).model_validate(value)
            for path, value in zip(record["types"], record["value"], strict=True)
        ]
    raise ReplayMismatchError(f"unknown recorded tool output kind {kind!r}")
