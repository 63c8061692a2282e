"""Errors of the TypeScript state adapter (re-exported by `timestep.state.typescript`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ...errors import StateError

SDK_PAIR = "openai-agents 0.24.0 (schema 1.21) / @openai/agents 0.20.0 (schema 1.22)"


class StateConversionError(StateError):
    """A run state cannot be converted faithfully between the Python and TypeScript SDKs.

    The message names the offending field (as a path into the source document).
    """


class UnsupportedStateVersionError(StateConversionError):
    """The state's `$schemaVersion` is not the one the adapter's SDK pair writes."""

    def __init__(self, side: str, found: Any, expected: str) -> None:
        super().__init__(
            f"$schemaVersion: {side} state has schema {found!r}, but the adapter converts only "
            f"schema {expected!r} ({SDK_PAIR}); re-save the state with that SDK version"
        )
        self.found = found
        self.expected = expected


def refuse_set_fields(
    document: Mapping[str, Any], keys: Iterable[str], *, prefix: str = "", suffix: str = ""
) -> None:
    """Raise on the first of `keys` that is set in `document`: the adapter cannot carry it."""
    for key in keys:
        if document.get(key):
            raise StateConversionError(
                f"{prefix}{key}: not supported by the TypeScript adapter{suffix}"
            )
