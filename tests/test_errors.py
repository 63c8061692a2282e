"""One error hierarchy: every error class in the package derives from `TimestepError`, lives in
`timestep/errors.py` and is exported; each carries the HTTP status and CLI exit code that the
inbox and the `timestep` command use; and argument mistakes are also the builtin errors callers
already catch."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest
from agents import Agent

import timestep
import timestep.errors
from timestep.cli import common as cli_common
from timestep.cli.failures import exit_code
from timestep.web._errors import status_of as _status_of

from .helpers import TurnModel

NOT_TIMESTEP_ERRORS = {
    # Private to the HTTP layer: `_guarded` turns it into a 422 answer before any other handler
    # sees it; it never leaves timestep/web/.
    "timestep.web._routes.BadRequest",
    # The same for a body over the limit (413) and a path that names no route (404).
    "timestep.web._routes.TooLarge",
    "timestep.web._app._NotFound",
}

DEFINED_OUTSIDE_ERRORS = {
    # Also the Agents SDK's `UserError` (what the SDK's MultiProvider raises for the same
    # mistake): timestep/errors.py imports no dependency, so that the `timestep` command and
    # `import timestep` stay free of the Agents SDK.
    "timestep.models.multi_provider.UnknownModelPrefixError",
}

NOT_EXPORTED = {
    # Raised only by `timestep` commands and caught by the CLI's main: not library API.
    "CommandError",
}

STATUS_AND_EXIT_CODE = {
    # The HTTP status and exit code of every class that does not answer 500 with exit code 1.
    # The inbox cannot serve without its database, whatever is wrong with it.
    "ConfigurationError": (503, 1),
    "DatabaseUnavailableError": (503, 1),
    "ReadOnlyDatabaseError": (503, 1),
    "InvalidArgumentError": (422, 1),
    "InvalidRunIdError": (422, 1),
    "RunExistsError": (422, 1),
    "RunNotFoundError": (404, 1),
    "InterruptionException": (500, cli_common.EXIT_AWAITING_APPROVAL),
    "LifecycleError": (409, 1),
    "IncompatibleVersionError": (409, 1),
    "DecisionError": (409, 1),
    "NothingPendingError": (409, cli_common.EXIT_NOTHING_PENDING),
    "RejectionNotAppliedError": (409, 1),
    "ModelConfigurationError": (422, 1),
    "UnknownModelPrefixError": (422, 1),
}


def _package_modules() -> list[str]:
    names = ["timestep"]
    for info in pkgutil.walk_packages(timestep.__path__, "timestep."):
        if info.name.rsplit(".", 1)[-1] != "__main__":  # running it is its only effect
            names.append(info.name)
    return names


def _error_classes() -> dict[str, type[BaseException]]:
    """Every exception class defined at the top level of a module of the package, by its
    dotted name."""
    found = {}
    for name in _package_modules():
        module = importlib.import_module(name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, BaseException) and cls.__module__ == name:
                found[f"{name}.{cls.__qualname__}"] = cls
    return found


ERRORS = _error_classes()


def _timestep_errors() -> dict[str, type[timestep.TimestepError]]:
    return {c.__name__: c for c in ERRORS.values() if issubclass(c, timestep.TimestepError)}


def test_the_walk_finds_every_module_of_the_package() -> None:
    root = Path(timestep.__file__).parent
    files = {
        ".".join(("timestep", *p.relative_to(root).with_suffix("").parts)).removesuffix(".__init__")
        for p in root.rglob("*.py")
        if p.name != "__main__.py" and "node_modules" not in p.parts
    }
    assert set(_package_modules()) == files
    assert "timestep.errors.TimestepError" in ERRORS
    assert "timestep.web._routes.BadRequest" in ERRORS


def test_every_error_class_derives_from_one_base_and_lives_in_errors() -> None:
    for dotted, cls in ERRORS.items():
        if dotted in NOT_TIMESTEP_ERRORS:
            assert not issubclass(cls, timestep.TimestepError), f"{dotted}: drop its exception"
            continue
        assert issubclass(cls, timestep.TimestepError), dotted
        where = cls.__module__
        assert where == "timestep.errors" or dotted in DEFINED_OUTSIDE_ERRORS, (
            f"{dotted} belongs in timestep/errors.py"
        )
    for dotted in NOT_TIMESTEP_ERRORS | DEFINED_OUTSIDE_ERRORS:
        assert dotted in ERRORS, f"{dotted} no longer exists: drop its exception"


def test_every_public_error_is_exported() -> None:
    for dotted, cls in ERRORS.items():
        name = cls.__name__
        if dotted in NOT_TIMESTEP_ERRORS or name in NOT_EXPORTED:
            continue
        assert getattr(timestep, name) is cls, f"{name} is not exported"
        assert name in timestep.__all__, name
    for name in NOT_EXPORTED:
        assert name not in timestep.__all__


def test_status_and_exit_code_are_attributes_that_the_inbox_and_cli_use() -> None:
    assert timestep.TimestepError.http_status == 500
    assert timestep.TimestepError.exit_code == cli_common.EXIT_ERROR
    errors = {
        cls.__name__: cls for cls in ERRORS.values() if issubclass(cls, timestep.TimestepError)
    }
    assert set(STATUS_AND_EXIT_CODE) <= set(errors)
    for name, cls in errors.items():
        expected = STATUS_AND_EXIT_CODE.get(name, (500, cli_common.EXIT_ERROR))
        assert (cls.http_status, cls.exit_code) == expected, name
        error = cls.__new__(cls)  # no constructor arguments needed to ask for its status
        assert _status_of(error) == cls.http_status, name
        assert exit_code(error) == cls.exit_code, name
    # Errors that are not Timestep's: a ValueError is a 422 over HTTP; the CLI exits 1.
    assert _status_of(ValueError("x")) == 422
    assert _status_of(KeyError("x")) == 500
    assert exit_code(OSError("x")) == cli_common.EXIT_ERROR


def _drawn_tree() -> dict[str, tuple[str | None, list[str]]]:
    """errors.py's hierarchy drawing: class name -> (its parent in the drawing, numbers)."""
    doc = timestep.errors.__doc__ or ""
    drawn: dict[str, tuple[str | None, list[str]]] = {}
    parents: list[tuple[int, str]] = []
    for line in doc.splitlines():
        row = re.match(r"^( *)[*+\-.] (\w+)(.*)$", line)
        if row is None:
            continue
        indent, name, rest = len(row.group(1)), row.group(2), row.group(3)
        while parents and parents[-1][0] >= indent:
            parents.pop()
        numbers = re.findall(r"(?<![\w.])\d{1,3}(?![\w.])", rest.split("(awaiting")[0])
        drawn[name] = (parents[-1][1] if parents else None, numbers)
        parents.append((indent, name))
    return drawn


def test_the_hierarchy_drawn_in_errors_py_is_the_hierarchy() -> None:
    drawn = _drawn_tree()
    errors = {
        cls.__name__: cls for cls in ERRORS.values() if issubclass(cls, timestep.TimestepError)
    }
    assert set(drawn) == set(errors)
    for name, (parent, numbers) in drawn.items():
        cls = errors[name]
        if parent is None:
            assert cls is timestep.TimestepError
            continue
        assert cls.__bases__[0] is errors[parent], f"{name} is drawn under {parent}"
        own = [str(cls.__dict__[a]) for a in ("http_status", "exit_code") if a in cls.__dict__]
        assert numbers == own, f"{name}: drawn {numbers}, sets {own}"


async def test_argument_mistakes_are_value_and_type_errors(timestep_db: str) -> None:
    agent = Agent(name="Plain", model=TurnModel([], final="ok"))
    with pytest.raises(TypeError, match="expects an agents.Agent"):
        await timestep.run_agent("not an agent", "hi")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="run_input must be"):
        await timestep.run_agent(agent, 42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="approval_timeout must be a positive number"):
        await timestep.run_agent(agent, "hi", approval_timeout=-1)
    with pytest.raises(ValueError, match="limit must be at least 1"):
        await timestep.list_runs(limit=0)
    with pytest.raises(ValueError, match="unknown run status"):
        await timestep.list_runs(status="done")
    with pytest.raises(ValueError, match="submit needs a JSON context"):
        await timestep.submit(agent, "hi", context=object())
    # Nothing was stored by the refused calls.
    assert await timestep.list_runs() == []
