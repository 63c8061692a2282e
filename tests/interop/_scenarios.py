"""The interop matrix: each cell is run in both directions (Python -> TS and TS -> Python).

A cell is plain JSON so that tests/interop/harness.mjs runs exactly the same script:
`source` turns run on the exporting side until the run pauses for approval, `before`
decisions are made there, the state is converted, `after` decisions are made on the
receiving side, which then resumes with the `resume` turns. A `session` cell runs both sides
with a session (Python `SQLiteSession`, TypeScript `MemorySession`); the receiving side's
session starts with the exporting side's items.

`expect` holds what must hold whatever the golden files say: the tools that run on the
receiving side (`executed`), the final output, the last agent, and optionally a rejection
message or tool output the model must see.
"""

from __future__ import annotations

from typing import Any

_TO_BOB = {"to": "bob@example.com", "body": "The build is green."}
_TO_CAROL = {"to": "carol@example.com", "body": "The build is green."}
_REJECTION = "Emails to this address are not allowed."


def _email(call_id: str, args: dict[str, str] = _TO_BOB) -> dict[str, Any]:
    return {"tool": "send_email", "id": call_id, "args": args}


def _cell(name: str, **fields: Any) -> dict[str, Any]:
    cell: dict[str, Any] = {
        "name": name,
        "start": "Mailer",
        "input": "Email Bob that the build is green.",
        "context": None,
        "before": [],
        "after": [],
    }
    cell.update(fields)
    return cell


CELLS: list[dict[str, Any]] = [
    _cell(
        "approve_after",
        source=[{"calls": [_email("call_email_1")]}],
        after=[{"call": "call_email_1", "approve": True}],
        resume=[{"text": "Sent."}],
        expect={"executed": ["call_email_1"], "final": "Sent.", "last_agent": "Mailer"},
    ),
    _cell(
        "reject_after",
        source=[{"calls": [_email("call_email_1")]}],
        after=[{"call": "call_email_1", "approve": False, "message": _REJECTION}],
        resume=[{"text": "I could not send it."}],
        expect={
            "executed": [],
            "final": "I could not send it.",
            "rejected_with": _REJECTION,
            "last_agent": "Mailer",
        },
    ),
    _cell(
        "approve_before",
        source=[{"calls": [_email("call_email_1")]}],
        before=[{"call": "call_email_1", "approve": True}],
        resume=[{"text": "Sent."}],
        expect={"executed": ["call_email_1"], "final": "Sent.", "last_agent": "Mailer"},
    ),
    _cell(
        "reject_before",
        source=[{"calls": [_email("call_email_1")]}],
        before=[{"call": "call_email_1", "approve": False, "message": _REJECTION}],
        resume=[{"text": "I could not send it."}],
        expect={
            "executed": [],
            "final": "I could not send it.",
            "rejected_with": _REJECTION,
            "last_agent": "Mailer",
        },
    ),
    _cell(
        "handoff",
        start="Triage",
        source=[
            {"calls": [{"handoff": "Mailer", "id": "call_handoff_1"}]},
            {"calls": [_email("call_email_1")]},
        ],
        after=[{"call": "call_email_1", "approve": True}],
        resume=[{"text": "Sent."}],
        expect={"executed": ["call_email_1"], "final": "Sent.", "last_agent": "Mailer"},
    ),
    _cell(
        "two_calls",
        source=[{"calls": [_email("call_email_1"), _email("call_email_2", _TO_CAROL)]}],
        before=[{"call": "call_email_1", "approve": True}],
        after=[{"call": "call_email_2", "approve": False, "message": _REJECTION}],
        resume=[{"text": "Sent to Bob only."}],
        expect={
            "executed": ["call_email_1"],
            "final": "Sent to Bob only.",
            "rejected_with": _REJECTION,
            "last_agent": "Mailer",
        },
    ),
    _cell(
        "history",
        input=[
            {"role": "user", "text": "Hi."},
            {"role": "assistant", "text": "Hello, how can I help?"},
            {"role": "user", "text": "Email Bob and tell him the build is green."},
        ],
        source=[
            {"calls": [{"tool": "lookup_address", "id": "call_lookup_1", "args": {"name": "Bob"}}]},
            {"calls": [{"tool": "lookup_address", "id": "call_lookup_2", "args": {"name": "Al"}}]},
            {"calls": [_email("call_email_1")]},
        ],
        after=[{"call": "call_email_1", "approve": True}],
        resume=[{"text": "Sent."}],
        expect={"executed": ["call_email_1"], "final": "Sent.", "last_agent": "Mailer"},
    ),
    _cell(
        "always",
        source=[{"calls": [_email("call_email_1")]}],
        before=[{"call": "call_email_1", "approve": True, "always": True}],
        # The second call, made after the hand-over, must run without a new interruption.
        resume=[{"calls": [_email("call_email_2", _TO_CAROL)]}, {"text": "Both sent."}],
        expect={
            "executed": ["call_email_1", "call_email_2"],
            "final": "Both sent.",
            "last_agent": "Mailer",
        },
    ),
    _cell(
        "custom_context",
        context={"user_id": "u-42", "tenant": "acme"},
        py_context="dataclass",
        source=[{"calls": [_email("call_email_1")]}],
        after=[{"call": "call_email_1", "approve": True}],
        resume=[{"text": "Sent."}],
        expect={
            "executed": ["call_email_1"],
            "final": "Sent.",
            "tool_output": "sent to bob@example.com as u-42",
            "last_agent": "Mailer",
        },
    ),
]

# The same scripts with a session on both sides: the receiving session must hold each item of
# the conversation exactly once (a Python state once carried a per-turn persisted-item count
# that TypeScript reads as a position in the history, and re-saved items already saved).
SESSION_CELLS = [
    {**cell, "name": f"session_{cell['name']}", "session": True}
    for cell in CELLS
    if cell["name"] in ("history", "handoff", "two_calls", "always")
]
CELLS += SESSION_CELLS


def cell_named(name: str) -> dict[str, Any]:
    return next(cell for cell in CELLS if cell["name"] == name)
