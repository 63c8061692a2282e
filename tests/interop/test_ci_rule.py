"""One CI rule for every missing component: `CI=1`, `CI=yes` and `CI=true` fail, never skip."""

from __future__ import annotations

import pytest

from tests.components import in_ci

from . import conftest


@pytest.mark.parametrize("value", ["true", "1", "yes", "TRUE", " Yes "])
def test_ci_values_that_mean_ci(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CI", value)
    assert in_ci()


@pytest.mark.parametrize("value", ["", "0", "false", "no"])
def test_values_that_do_not(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CI", value)
    assert not in_ci()


@pytest.mark.parametrize(
    ("value", "outcome"),
    [("1", pytest.fail.Exception), ("yes", pytest.fail.Exception), ("", pytest.skip.Exception)],
)
def test_missing_node_fails_the_interop_tests_under_ci(
    monkeypatch: pytest.MonkeyPatch, value: str, outcome: type[BaseException]
) -> None:
    monkeypatch.setenv("CI", value)
    monkeypatch.setattr(conftest.shutil, "which", lambda name: None)
    with pytest.raises(outcome, match="Node.js and npm"):
        conftest.find_node_project()
