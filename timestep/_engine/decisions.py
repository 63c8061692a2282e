"""The rules of a parked run: which calls wait, which are decided, how a repeat is judged, and
how recorded decisions become the SDK's approvals. The library, the CLI, HTTP, approval deadlines
and imports all decide through these functions.

Deciders (the CLI, an HTTP handler) import this module without the Agents SDK: it is imported
where a decision is applied to a `RunState`.

The approval rule: **a rejection always wins.** A call that a person (or an approval deadline, or a
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

from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING, Any

from ..errors import DecisionError, RejectionNotAppliedError
from ..state.run_record import Decision, PendingApproval

if TYPE_CHECKING:
    from agents import RunResult, RunResultStreaming, RunState, ToolApprovalItem

DEADLINE_MESSAGE = "The approval deadline passed before anyone decided on this tool call."
"""What the model is told about a call that the approval deadline rejected."""


def undecided(
    pending: Iterable[PendingApproval], decided: Collection[str]
) -> list[PendingApproval]:
    """The pending calls that no decision in `decided` (call ids) covers."""
    return [p for p in pending if p["call_id"] not in decided]


def all_decided(pending: Iterable[PendingApproval], decided: Collection[str]) -> bool:
    """Whether `decided` (call ids) covers every pending call: the run may go on."""
    return not undecided(pending, decided)


def deadline_rejection(pending: PendingApproval) -> Decision:
    """The decision an approval deadline records on a call nobody decided."""
    return Decision(pending["call_id"], pending["tool_name"], "reject", False, DEADLINE_MESSAGE)


def check_repeat(run_id: str, recorded: Decision, wanted: Decision) -> None:
    """A decision on a call that was decided already is a no-op when it repeats the recorded
    one, and `DecisionError` when it differs: a decision is recorded once."""
    if (recorded.decision, recorded.always, recorded.message) != (
        wanted.decision,
        wanted.always,
        wanted.message,
    ):
        raise DecisionError(
            f"call {recorded.call_id!r} ({recorded.tool_name}) of run {run_id!r} was already "
            f"decided: {recorded.decision}"
            + (f" with message {recorded.message!r}" if recorded.message else "")
            + "; a decision is recorded once and cannot be changed"
        )


def call_id_of(item: ToolApprovalItem) -> str | None:
    raw = item.raw_item
    if isinstance(raw, dict):
        value = raw.get("call_id") or raw.get("id")
    else:
        value = getattr(raw, "call_id", None) or getattr(raw, "id", None)
    return value if isinstance(value, str) else None


def approval_fields(item: ToolApprovalItem) -> PendingApproval:
    """Call id, tool name, arguments and agent of a pending approval, as JSON."""
    raw = item.raw_item

    def get(key: str) -> Any:
        return raw.get(key) if isinstance(raw, dict) else getattr(raw, key, None)

    return PendingApproval(
        call_id=call_id_of(item) or "",
        tool_name=item.tool_name or get("name"),
        arguments=get("arguments"),
        agent=item.agent.name,
    )


def pending_approvals(result: RunResult | RunResultStreaming) -> list[PendingApproval]:
    """The calls a segment's result stopped on, as the run record stores them."""
    return [approval_fields(item) for item in result.interruptions]


def apply_decisions(state: RunState[Any, Any], decisions: Iterable[Decision]) -> None:
    """Apply recorded `decisions` to the pending calls of `state`: approvals first, rejections
    last, then check that every rejected call is rejected in the state. Calls without a
    decision are left as the state has them."""
    from .._compat import agents as agents_compat

    by_call = {d.call_id: d for d in decisions}
    decided = [
        (item, by_call[call_id])
        for item in state.get_interruptions()
        if (call_id := call_id_of(item)) is not None and call_id in by_call
    ]
    undecided_tools = {
        item.tool_name for item in state.get_interruptions() if call_id_of(item) not in by_call
    }
    for item, decision in decided:
        if decision.decision == "approve":
            always = decision.always and item.tool_name not in undecided_tools
            state.approve(item, always_approve=always)
    rejected = [(item, d) for item, d in decided if d.decision != "approve"]
    for item, decision in rejected:
        state.reject(item, rejection_message=decision.message)
    context = agents_compat.state_context(state)
    for item, decision in rejected:
        status = (
            None
            if context is None
            else context.get_approval_status(
                item.tool_name or "", decision.call_id, existing_pending=item
            )
        )
        if status is not False:
            raise RejectionNotAppliedError(
                f"call {decision.call_id!r} ({item.tool_name}) was rejected but the run state "
                "does not hold the rejection; the run stops here rather than run it"
            )
