"""How runs, steps and stream events look on a terminal (rich tables, a spinner).

`rich` is imported when something is drawn, not when the CLI starts.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .safe import cell, visible

if TYPE_CHECKING:
    from rich.console import Console
    from rich.status import Status

    from ..state.records import PendingApproval, RunRecord

FINISHED = ("completed", "failed", "cancelled", "awaiting_approval")


def console(stderr: bool = False) -> Console:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return Console(file=stream, stderr=stderr)
    # Piped or captured: no colours, and wide enough that rows stay on one line.
    width = int(os.environ.get("COLUMNS", "0") or 0) or 200
    return Console(file=stream, width=width, no_color=True, highlight=False, soft_wrap=False)


def show(renderable: Any) -> None:
    """Print a table on stdout: as is on a terminal; piped, without colours or the padding
    rich adds after the last column."""
    if sys.stdout.isatty():
        console().print(renderable)
        return
    import io

    from rich.console import Console

    # Rows stay whole (no wrapping) so that scripts can grep them; --json is the stable form.
    buffer = io.StringIO()
    width = 1000
    Console(file=buffer, width=width, no_color=True, highlight=False).print(renderable)
    for line in buffer.getvalue().splitlines():
        print(line.rstrip(), flush=True)


def when(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def run_duration(record: RunRecord) -> float:
    end = record.updated_at if record.status in FINISHED else time.time()
    return max(0.0, end - record.created_at)


def usage_line(usage: dict[str, Any]) -> str:
    if not usage:
        return "-"
    return (
        f"{usage.get('requests', 0)} req, {usage.get('input_tokens', 0)} in / "
        f"{usage.get('output_tokens', 0)} out"
    )


NO_MODEL_YET = "(agent's; none called yet)"
"""The model column of a run that has called no model here and was started without a model
name (an imported state): its agent's own model is used when it goes on."""


def model_of(record: RunRecord) -> str:
    """The model the run was started with, else the models it has called so far."""
    chosen = record.overrides
    if chosen is not None and (chosen.agent or chosen.run_config):
        return chosen.agent or chosen.run_config or NO_MODEL_YET
    return ", ".join(record.usage_by_model) or NO_MODEL_YET


def call_line(pending: PendingApproval) -> str:
    decision = pending.get("decision")
    state = {None: "pending", "approve": "approved", "reject": "rejected"}[decision]
    return visible(f"{state} {pending['call_id']}: {pending['tool_name']}({pending['arguments']})")


def _detail(record: RunRecord) -> str:
    if record.error:
        return record.error.splitlines()[0]
    undecided = [p for p in record.pending_approvals if p.get("decision") is None]
    if record.status == "awaiting_approval" and undecided:
        return "; ".join(f"{p['tool_name']}({p['arguments']})" for p in undecided)
    return record.note or ""


def runs_table(found: list[RunRecord]) -> None:
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for name, justify in (
        ("RUN", "left"),
        ("STATUS", "left"),
        ("AGENT", "left"),
        ("VERSION", "left"),  # issue 23: the agent version the run is on
        ("MODEL", "left"),
        ("UPDATED", "left"),
        ("DURATION", "right"),
        ("USAGE", "right"),
        ("ERROR / WAITING FOR / NEXT", "left"),
    ):
        table.add_column(name, justify=justify, no_wrap=name != "ERROR / WAITING FOR / NEXT")  # type: ignore[arg-type]
    for record in found:
        table.add_row(
            cell(record.run_id),
            cell(record.status),
            cell(record.agent_name),
            cell(record.version_label or record.version),
            cell(model_of(record)),
            when(record.updated_at),
            duration(run_duration(record)),
            usage_line(record.usage),
            cell(_detail(record)),
        )
    show(table)


def version_line(record: RunRecord) -> str:
    label = f" ({record.version_label})" if record.version_label else ""
    return record.version + label + (", pinned" if record.pinned else "")


def record_detail(record: RunRecord) -> None:
    from rich.table import Table

    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    rows: list[tuple[str, str]] = [
        ("run", record.run_id),
        ("status", record.status),
        ("agent", record.agent_name),
        ("version", version_line(record)),  # issue 23: version, pin and moves
        *(("", f"moved {move.describe()}, {when(move.at)}") for move in record.version_moves),
        ("model", model_of(record)),
        ("segments", str(record.segment)),
        ("created", when(record.created_at)),
        ("updated", when(record.updated_at)),
        ("duration", duration(run_duration(record))),
        ("usage", usage_line(record.usage)),
    ]
    for model, used in record.usage_by_model.items():
        rows.append(("", f"{model}: {usage_line(used.as_dict())}"))
    if record.final_output is not None:
        rows.append(("output", json.dumps(record.final_output, ensure_ascii=False)))
    if record.error:
        rows.append(("error", record.error))
    if record.owner is not None:
        owner = record.owner
        where = f" (pid {owner.pid} on {owner.host})" if owner.pid else ""
        state = "alive" if owner.alive else "DEAD"
        rows.append(("owner", f"{owner.executor_id}{where}: {state}, {owner.reason}"))
    if record.note:
        rows.append(("next", record.note))
    for pending in record.pending_approvals:
        rows.append(("call", f"{call_line(pending)}  (agent {pending['agent']})"))
    for key, value in rows:
        table.add_row(key, cell(value))
    show(table)


def steps_table(steps: Sequence[Mapping[str, Any]]) -> None:
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for name, justify in (
        ("SEGMENT", "right"),
        ("STEP", "right"),
        ("KIND", "left"),
        ("NAME", "left"),
        ("STARTED", "left"),
        ("DURATION", "right"),
        ("STATUS", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for step in steps:
        started = step["started_at"]
        table.add_row(
            str(step["segment"]),
            str(step["step"]),
            cell(step["kind"]),
            cell(step["name"]),
            when(started) if started else "-",
            "-" if step["duration_s"] is None else f"{step['duration_s']:.3f}s",
            cell(step["status"] if step["error"] is None else f"error: {step['error']}"),
        )
    show(table)


class StreamPrinter:
    """Renders a run's events as they come: the model's text on stdout as it arrives, tool
    calls starting and ending on stderr, and a spinner (on a terminal) while a model thinks.

    Takes events as JSON dicts: those of `timestep.stream_events` (`runs tail`) or a live SDK
    stream encoded the same way (`run --stream`)."""

    def __init__(self) -> None:
        self._err = console(stderr=True)
        self._status: Status | None = None
        self._names: dict[str, str] = {}
        self._mid_line = False
        self.text_seen = False

    def waiting(self, what: str = "waiting for the model") -> None:
        if self._status is None and self._err.is_terminal:
            self._status = self._err.status(what, spinner="dots")
            self._status.start()

    def _stop(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None

    def _line(self, text: str) -> None:
        self._stop()
        if self._mid_line:
            print(flush=True)
            self._mid_line = False
        print(visible(text), file=sys.stderr, flush=True)

    def feed(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        data = event.get("data") or {}
        if kind == "timestep.model_call":
            self.waiting()
        elif kind == "raw_response_event" and data.get("type") == "response.output_text.delta":
            self._stop()
            print(visible(data.get("delta", ""), keep_newlines=True), end="", flush=True)
            self._mid_line = self.text_seen = True
        elif kind == "run_item_stream_event":
            self._item(event.get("name", ""), event.get("item") or {})
        elif kind == "timestep.partial_output_discarded":
            self._line("[the model call above was interrupted by a crash and runs again]")
        elif kind == "timestep.run_ended":
            self._line(f"[run {event.get('status')}]")

    def _item(self, name: str, item: dict[str, Any]) -> None:
        raw = item.get("raw_item") or {}
        if name == "tool_called":
            call_id = raw.get("call_id") or ""
            tool = raw.get("name") or "tool"
            self._names[call_id] = tool
            self._line(f"→ {tool}({raw.get('arguments', '')})")
            self.waiting(f"running {tool}")
        elif name == "tool_output":
            call_id = raw.get("call_id") or ""
            tool = self._names.get(call_id, "tool")
            self._line(f"← {tool}: {item.get('output')}")
            self.waiting()
        elif name == "tool_approval_requested":
            self._line(f"‖ {raw.get('name', 'tool')}({raw.get('arguments', '')}) awaits approval")
        elif name == "handoff_occured":
            self._line(f"[handoff from agent {item.get('agent')}]")

    def close(self) -> None:
        self._stop()
        if self._mid_line:
            print(flush=True)
            self._mid_line = False
