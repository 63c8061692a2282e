"""Build the /api/chat request body from the SDK's call arguments and `ModelSettings`.

Where each knob comes from (later wins):
  1. model/provider defaults: `options`, then `num_ctx` / `keep_alive` constructor arguments;
  2. `ModelSettings` fields: temperature, top_p, max_tokens (-> num_predict),
     frequency_penalty, presence_penalty, reasoning.effort (-> think);
  3. `ModelSettings.extra_args`: `keep_alive`, `think` and `format` are request fields, an
     `options` dict is merged into options, and every other key (num_ctx, seed, stop, top_k,
     min_p, repeat_penalty, ...) is an Ollama option.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agents.agent_output import AgentOutputSchemaBase
from agents.model_settings import ModelSettings

from ._ollama_messages import OllamaMessage

_REQUEST_FIELDS = ("keep_alive", "think", "format")

# Ollama's `think` takes a bool or one of these levels (gpt-oss); other SDK efforts are mapped
# onto the nearest one.
_THINK_FOR_EFFORT: dict[str, bool | str] = {
    "none": False,
    "minimal": "low",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "xhigh": "high",
    "max": "high",
}


@dataclass(frozen=True)
class OllamaDefaults:
    """Per-model defaults applied under every call's `ModelSettings`."""

    num_ctx: int | None = None
    """Context window in tokens. Ollama's small default silently truncates long system prompts
    and tool definitions, the most common local-model failure, so set it for agent workloads."""

    keep_alive: float | str | None = None
    """How long the server keeps the model loaded after a call (`"10m"`, seconds, `-1`)."""

    options: Mapping[str, Any] = field(default_factory=dict)
    """Any other Ollama options (https://docs.ollama.com/modelfile#parameter)."""


def think_value(model_settings: ModelSettings) -> bool | str | None:
    """The `think` request field for `reasoning.effort`, or None to keep the model's default."""
    reasoning = model_settings.reasoning
    if reasoning is None or reasoning.effort is None:
        return None
    return _THINK_FOR_EFFORT.get(str(reasoning.effort), True)


def build_payload(
    *,
    model: str,
    messages: list[OllamaMessage],
    tools: list[Any],
    model_settings: ModelSettings,
    output_schema: AgentOutputSchemaBase | None,
    defaults: OllamaDefaults,
    stream: bool,
) -> dict[str, Any]:
    """The JSON body for POST /api/chat."""
    options: dict[str, Any] = dict(defaults.options)
    if defaults.num_ctx is not None:
        options["num_ctx"] = defaults.num_ctx
    for option, value in (
        ("temperature", model_settings.temperature),
        ("top_p", model_settings.top_p),
        ("num_predict", model_settings.max_tokens),
        ("frequency_penalty", model_settings.frequency_penalty),
        ("presence_penalty", model_settings.presence_penalty),
    ):
        if value is not None:
            options[option] = value

    payload: dict[str, Any] = {"model": model, "messages": messages, "stream": stream}
    if defaults.keep_alive is not None:
        payload["keep_alive"] = defaults.keep_alive
    think = think_value(model_settings)
    if think is not None:
        payload["think"] = think
    if output_schema is not None and not output_schema.is_plain_text():
        payload["format"] = output_schema.json_schema()

    for key, value in (model_settings.extra_args or {}).items():
        if key in _REQUEST_FIELDS:
            payload[key] = value
        elif key == "options":
            options.update(value or {})
        else:
            options[key] = value

    # Ollama has no tool_choice; "none" is honoured by not offering the tools at all.
    if tools and model_settings.tool_choice != "none":
        payload["tools"] = tools
    if options:
        payload["options"] = options
    return payload
