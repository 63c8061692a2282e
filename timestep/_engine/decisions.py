"""Recorded decisions into the SDK's approvals: the one place the approval rule lives.

The rule: **a rejection always wins.** A call that a person (or an approval deadline, or a
decision carried in by an imported state) rejected never runs, whatever was decided about any
other call, in whatever order the decisions were made or the calls are listed, with or without
`always`.

Why it needs a rule: the SDK keeps decisions per tool. An "always" approval
(`approve_tool(..., always_approve=True)`) replaces the tool's record with a sticky approval and
drops the per-call rejections already on it, so applying the decisions in the order of the
interruptions let a rejected call run when a later call of the same tool was approved with
`always`. A per-call rejection applied after a sticky approval is kept and checked first. So the
approvals are applied first, then the rejections, and then every rejected call is checked to
resolve to "rejected" in the state; if one does not (an SDK that changed its bookkeeping), the
segment fails closed with `RejectionNotAppliedError` instead of running it.

What `always` then means: the tool is approved for the calls of it that come later in the run
(they no longer stop for approval); a call of it rejected in the same batch stays rejected.
While another call of the same tool in the batch is still undecided (a state exported for
hand-over before every call was decided), `always` is applied as an approval of its own call
only: the SDK's sticky approval would otherwise decide the undecided call too, and the process
that imports the state would run it without anyone having approved it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from agents import RunState, ToolApprovalItem

from .._compat import agents as agents_compat
from ..errors import RejectionNotAppliedError


def call_id_of(item: ToolApprovalItem) -> str | None:
    raw = item.raw_item
    if isinstance(raw, dict):
        value = raw.get("call_id") or raw.get("id")
    else:
        value = getattr(raw, "call_id", None) or getattr(raw, "id", None)
    return value if isinstance(value, str) else None


def apply_decisions(state: RunState[Any, Any], decisions: Iterable[Mapping[str, Any]]) -> None:
    """Apply recorded `decisions` (dicts with call_id, decision, always, message) to the
    pending calls of `state`: approvals first, rejections last, then check that every rejected
    call is rejected in the state. Calls without a decision are left as the state has them."""
    by_call = {d["call_id"]: d for d in decisions}
    decided = [
        (item, by_call[call_id])
        for item in state.get_interruptions()
        if (call_id := call_id_of(item)) is not None and call_id in by_call
    ]
    undecided_tools = {
        item.tool_name for item in state.get_interruptions() if call_id_of(item) not in by_call
    }
    for item, decision in decided:
        if decision["decision"] == "approve":
            always = bool(decision.get("always")) and item.tool_name not in undecided_tools
            state.approve(item, always_approve=always)
    rejected = [(item, d) for item, d in decided if d["decision"] != "approve"]
    for item, decision in rejected:
        state.reject(item, rejection_message=decision.get("message"))
    context = agents_compat.state_context(state)
    for item, decision in rejected:
        status = (
            None
            if context is None
            else context.get_approval_status(
                item.tool_name or "", decision["call_id"], existing_pending=item
            )
        )
        if status is not False:
            raise RejectionNotAppliedError(
                f"call {decision['call_id']!r} ({item.tool_name}) was rejected but the run state "
                "does not hold the rejection; the run stops here rather than run it"
            )
