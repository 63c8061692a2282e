"""The TypeScript state adapter's errors (defined in `timestep.errors`) and its refusal helper."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ...errors import TYPESCRIPT_SDK_PAIR, StateConversionError
from ...errors import UnsupportedStateVersionError as UnsupportedStateVersionError

SDK_PAIR = TYPESCRIPT_SDK_PAIR


def refuse_set_fields(
    document: Mapping[str, Any], keys: Iterable[str], *, prefix: str = "", suffix: str = ""
) -> None:
    """Raise on the first of `keys` that is set in `document`: the adapter cannot carry it."""
    for key in keys:
        if document.get(key):
            raise StateConversionError(
                f"{prefix}{key}: not supported by the TypeScript adapter{suffix}"
            )
