"""Test support: deterministic models, execution logs, and a fresh Timestep per database."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agents import Model, ModelResponse, Usage
from agents.testing import assistant_message, function_call
from agents.tracing import Span, Trace, TracingProcessor


class ExecutionLog:
    """Appends one JSON line per real execution; survives the process that wrote it."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def write(self, kind: str, **fields: Any) -> None:
        if str(self.path) == os.devnull:
            return
        with open(self.path, "a") as handle:
            handle.write(json.dumps({"kind": kind, **fields}) + "\n")
            # In the kernel once flushed: the line survives the process (os._exit, SIGKILL);
            # an fsync would only guard against an OS crash, which no test makes.
            handle.flush()

    def entries(self, kind: str | None = None) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        lines = [json.loads(line) for line in self.path.read_text().splitlines() if line]
        return [line for line in lines if kind is None or line["kind"] == kind]


def tool_outputs(input_items: Any) -> list[str]:
    """The outputs of the tool calls in a model input, in order."""
    if isinstance(input_items, str):
        return []
    outputs = []
    for item in input_items:
        item_type = item.get("type") if isinstance(item, dict) else getattr(item, "type", None)
        if item_type == "function_call_output":
            output = item.get("output") if isinstance(item, dict) else item.output
            outputs.append(output if isinstance(output, str) else json.dumps(output))
    return outputs


class TurnModel(Model):
    """A model whose reply depends only on its input, so a replayed run asks the same things.

    Turn k (k tool outputs seen so far, counted in calls of `calls_per_turn`) asks for the tool
    calls in `script[k]`; past the script it answers `final`. Each real call is logged.
    """

    def __init__(
        self,
        script: list[list[tuple[str, dict[str, Any]]]],
        final: str = "done",
        log: ExecutionLog | None = None,
        on_call: Callable[[int], None] | None = None,
    ) -> None:
        self.script = script
        self.final = final
        self.log = log
        self.on_call = on_call
        self.calls = 0

    def _turn(self, input_items: Any) -> int:
        seen, turn = len(tool_outputs(input_items)), 0
        while turn < len(self.script) and seen >= len(self.script[turn]):
            seen -= len(self.script[turn])
            turn += 1
        return turn

    async def get_response(
        self, system_instructions: Any, input: Any, *args: Any, **kwargs: Any
    ) -> ModelResponse:
        turn = self._turn(input)
        self.calls += 1
        if self.log:
            self.log.write("model", turn=turn, tool_outputs=tool_outputs(input))
        if self.on_call:
            self.on_call(turn)
        if turn < len(self.script):
            output = [
                function_call(name, arguments, call_id=f"call_{turn}_{index}")
                for index, (name, arguments) in enumerate(self.script[turn])
            ]
        else:
            output = [assistant_message(self.final)]
        return ModelResponse(
            output=output,
            usage=Usage(requests=1, input_tokens=10, output_tokens=5, total_tokens=15),
            response_id=f"resp_{turn}",
        )

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("TurnModel does not stream")


class StreamingTurnModel(TurnModel):
    """A `TurnModel` that also streams: the final answer arrives one word per delta.

    `on_delta(turn, index)` runs before each delta is yielded (crash tests stop there).
    """

    def __init__(
        self,
        *args: Any,
        delay: float = 0.0,
        on_delta: Callable[[int, int], None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.delay = delay
        self.on_delta = on_delta

    async def stream_response(  # type: ignore[override]
        self, system_instructions: Any, input: Any, *args: Any, **kwargs: Any
    ) -> Any:
        import asyncio

        from timestep.models._responses import completed_event, word_delta

        response = await self.get_response(system_instructions, input, *args, **kwargs)
        turn = self._turn(input)
        if turn >= len(self.script):
            words = self.final.split(" ")
            for index in range(len(words)):
                if self.on_delta:
                    self.on_delta(turn, index)
                await asyncio.sleep(self.delay)
                yield word_delta(words, index, "scripted-message")
        yield completed_event(response)


class SpanCollector(TracingProcessor):
    """Keeps the spans that end, in memory; exports nothing."""

    def __init__(self) -> None:
        self.spans: list[Span[Any]] = []

    def on_trace_start(self, trace: Trace) -> None:
        pass

    def on_trace_end(self, trace: Trace) -> None:
        pass

    def on_span_start(self, span: Span[Any]) -> None:
        pass

    def on_span_end(self, span: Span[Any]) -> None:
        self.spans.append(span)

    def shutdown(self) -> None:
        pass

    def force_flush(self) -> None:
        pass
