"""The one rule for real components that a test cannot get: skip locally, fail under CI.

Every conftest (tests/conftest.py for PostgreSQL, tests/interop/conftest.py for Node.js) and
every test that needs a real component uses these two functions, so `CI=1`, `CI=yes` and
`CI=true` mean the same everywhere.
"""

from __future__ import annotations

import os

import pytest

CI_VALUES = frozenset({"true", "1", "yes"})


def in_ci() -> bool:
    """True under CI (``CI`` is ``true``, ``1`` or ``yes``, any case): a missing real component
    is a failure, not a skip."""
    return os.environ.get("CI", "").strip().lower() in CI_VALUES


def unavailable(reason: str) -> None:
    """Skip locally, fail under CI. Always raises."""
    if in_ci():
        pytest.fail(f"{reason} (CI is set: a missing component is a failure)", pytrace=False)
    pytest.skip(reason)
