"""The durable engine, entered through this module: the operations the use cases need.

The use-case modules (`timestep.run`, `approvals`, `lifecycle`, `runs`, `stream`, `tool`,
`handover`, `store`, `pglite`, `retention`, `upgrade`) import the engine only from here; the
submodules are its internals, free to change. Names are loaded on first use (as
`agents.extensions.memory` loads its sessions): importing the facade costs nothing, so a
decider that only touches the database never imports DBOS or the Agents SDK.

What each group guarantees:

- Launch and stop (`ensure_dbos`, `carry_on`, `signals_deferred`, `cancellation_of`, ...): this
  process's DBOS instance, under an executor id of its own, and its orderly stop.
- Agents (`register_agent`, `describe_graph`, `fingerprint`, ...): the agents this process can
  run, and the graph a run records and is checked against.
- Versions (`version_of`, `judge_version`, `move_to_version`, `adopt_version_async`): whether
  a run recorded under one graph may go on under another, and its move there (recorded, its
  queued continuation moved with it in one transaction).
- Segments (`start_segment`, `enqueue_segment`, `cancel_segment`, `rewind_segment`,
  `fork_segment`, `segment_steps`, `segment_events`, ...): a run segment is a DBOS workflow under
  a deterministic id; every operation on it is idempotent under that id, and works through
  DBOS's client from any process, launched or not.
- The live hand-over (`take_live_result`, `take_live_stream`, ...): what a segment started here
  hands back to its caller in this process (nothing crosses processes that way).
- Decisions (`apply_decisions`, `undecided`, `check_repeat`, ...): the rules of a parked run.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, tuple[str, str]] = {
    # launch and stop
    "ensure_dbos": ("launch", "ensure_dbos"),
    "dbos_ready": ("launch", "dbos_ready"),
    "process_fleet": ("launch", "fleet"),
    "carry_on": ("stopping", "carry_on"),
    "cancellation_of": ("stopping", "cancellation_of"),
    "cancelled_here": ("stopping", "cancelled_here"),
    "signals_deferred": ("stopping", "signals_deferred"),
    "judge_liveness": ("liveness", "judge"),
    # agents
    "register_agent": ("registry", "register_agent"),
    "register_module": ("registry", "register_module"),
    "get_agent": ("registry", "get_agent"),
    "app_module_of": ("registry", "module_of"),
    "describe_graph": ("registry", "describe_graph"),
    "fingerprint": ("registry", "fingerprint"),
    "graph_differences": ("registry", "graph_differences"),
    "check_graph": ("registry", "check_graph"),
    # versions
    "version_of": ("registry", "version_of"),
    "Verdict": ("moves", "Verdict"),
    "judge_version": ("moves", "judge"),
    "move_to_version": ("moves", "move"),
    "adopt_version": ("moves", "adopt_version"),
    "adopt_version_async": ("moves", "adopt_version_async"),
    # segments
    "PendingCallRef": ("requests", "PendingCallRef"),
    "RunInput": ("requests", "RunInput"),
    "SegmentRequest": ("requests", "SegmentRequest"),
    "start_segment": ("start", "start_segment"),
    "listen_for_registered_agents_async": ("queues", "listen_for_registered_agents_async"),
    "enqueue_segment": ("queues", "enqueue_segment"),
    "continuation_enqueuer": ("queues", "continuation_enqueuer"),
    "make_dbos_tables": ("queues", "make_dbos_tables"),
    "segment_status": ("segments", "segment_status"),
    "segment_statuses": ("segments", "segment_statuses"),
    "segment_request": ("segments", "segment_request"),
    "segment_steps": ("segments", "segment_steps"),
    "recorded_model_calls": ("segments", "recorded_model_calls"),
    "cancel_segment": ("segments", "cancel_segment"),
    "resume_segment": ("segments", "resume_segment"),
    "rewind_segment": ("segments", "rewind_segment"),
    "fork_segment": ("segments", "fork_segment"),
    "start_segment_now": ("segments", "start_segment_now"),
    "delete_segments": ("segments", "delete_segments"),
    "segment_events": ("segments", "segment_events"),
    "session_descriptor": ("sessions", "session_descriptor"),
    "tripwire_from_record": ("guardrails", "tripwire_from_record"),
    # the live hand-over
    "Attachments": ("live", "Attachments"),
    "LiveStream": ("live", "LiveStream"),
    "expect_live_stream": ("live", "expect_live_stream"),
    "take_live_error": ("live", "take_live_error"),
    "take_live_result": ("live", "take_live_result"),
    "take_live_stream": ("live", "take_live_stream"),
    # decisions
    "apply_decisions": ("decisions", "apply_decisions"),
    "approval_fields": ("decisions", "approval_fields"),
    "all_decided": ("decisions", "all_decided"),
    "undecided": ("decisions", "undecided"),
    "check_repeat": ("decisions", "check_repeat"),
    # inside tools
    "current_tool_call": ("segment", "current_tool_call"),
    "uninterruptible": ("durable", "uninterruptible"),
    "unrecorded": ("durable", "unrecorded"),
    # names
    "run_id_or_new": ("naming", "run_id_or_new"),
    "segment_workflow_id": ("naming", "segment_workflow_id"),
    "queue_name": ("naming", "queue_name"),
    "VERSION_QUEUE_PREFIX": ("naming", "VERSION_QUEUE_PREFIX"),
    "MODEL_STEP_NAME": ("naming", "MODEL_STEP_NAME"),
    "TOOL_STEP_NAME": ("naming", "TOOL_STEP_NAME"),
    "PROCESS_QUEUE_PREFIX": ("naming", "PROCESS_QUEUE_PREFIX"),
    "MODEL_CALL_MARKER": ("events", "MODEL_CALL_MARKER"),
    "DISCARD_MARKER": ("events", "DISCARD_MARKER"),
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    try:
        module, attribute = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(f"{__name__}.{module}"), attribute)
    globals()[name] = value  # the next lookup does not come here
    return value


if TYPE_CHECKING:  # the names above, for type checkers (`x as x`: re-exported)
    from .decisions import all_decided as all_decided
    from .decisions import apply_decisions as apply_decisions
    from .decisions import approval_fields as approval_fields
    from .decisions import check_repeat as check_repeat
    from .decisions import undecided as undecided
    from .durable import uninterruptible as uninterruptible
    from .durable import unrecorded as unrecorded
    from .events import DISCARD_MARKER as DISCARD_MARKER
    from .events import MODEL_CALL_MARKER as MODEL_CALL_MARKER
    from .guardrails import tripwire_from_record as tripwire_from_record
    from .launch import dbos_ready as dbos_ready
    from .launch import ensure_dbos as ensure_dbos
    from .launch import fleet as process_fleet  # noqa: F401  (re-exported)
    from .live import Attachments as Attachments
    from .live import LiveStream as LiveStream
    from .live import expect_live_stream as expect_live_stream
    from .live import take_live_error as take_live_error
    from .live import take_live_result as take_live_result
    from .live import take_live_stream as take_live_stream
    from .liveness import judge as judge_liveness  # noqa: F401  (re-exported)
    from .moves import Verdict as Verdict
    from .moves import adopt_version as adopt_version
    from .moves import adopt_version_async as adopt_version_async
    from .moves import judge as judge_version  # noqa: F401  (re-exported)
    from .moves import move as move_to_version  # noqa: F401  (re-exported)
    from .naming import MODEL_STEP_NAME as MODEL_STEP_NAME
    from .naming import PROCESS_QUEUE_PREFIX as PROCESS_QUEUE_PREFIX
    from .naming import TOOL_STEP_NAME as TOOL_STEP_NAME
    from .naming import VERSION_QUEUE_PREFIX as VERSION_QUEUE_PREFIX
    from .naming import queue_name as queue_name
    from .naming import run_id_or_new as run_id_or_new
    from .naming import segment_workflow_id as segment_workflow_id
    from .queues import continuation_enqueuer as continuation_enqueuer
    from .queues import enqueue_segment as enqueue_segment
    from .queues import listen_for_registered_agents_async as listen_for_registered_agents_async
    from .queues import make_dbos_tables as make_dbos_tables
    from .registry import check_graph as check_graph
    from .registry import describe_graph as describe_graph
    from .registry import fingerprint as fingerprint
    from .registry import get_agent as get_agent
    from .registry import graph_differences as graph_differences
    from .registry import module_of as app_module_of  # noqa: F401  (re-exported)
    from .registry import register_agent as register_agent
    from .registry import register_module as register_module
    from .registry import version_of as version_of
    from .requests import PendingCallRef as PendingCallRef
    from .requests import RunInput as RunInput
    from .requests import SegmentRequest as SegmentRequest
    from .segment import current_tool_call as current_tool_call
    from .segments import cancel_segment as cancel_segment
    from .segments import delete_segments as delete_segments
    from .segments import fork_segment as fork_segment
    from .segments import recorded_model_calls as recorded_model_calls
    from .segments import resume_segment as resume_segment
    from .segments import rewind_segment as rewind_segment
    from .segments import segment_events as segment_events
    from .segments import segment_request as segment_request
    from .segments import segment_status as segment_status
    from .segments import segment_statuses as segment_statuses
    from .segments import segment_steps as segment_steps
    from .segments import start_segment_now as start_segment_now
    from .sessions import session_descriptor as session_descriptor
    from .start import start_segment as start_segment
    from .stopping import cancellation_of as cancellation_of
    from .stopping import cancelled_here as cancelled_here
    from .stopping import carry_on as carry_on
    from .stopping import signals_deferred as signals_deferred
