"""One line for any failure: what went wrong and what to do, whoever raised it.

Timestep's errors already say both. Errors of the OpenAI client, the Agents SDK and DBOS are
recognised by class (only when their package is loaded: a command that never imported them
cannot have raised them) and given the hint a user needs.
"""

from __future__ import annotations

import sys

from ..errors import TimestepError

OFFLINE_HINT = (
    "or try Timestep offline with its demo model: "
    'timestep run timestep.demo:assistant "What is 12 * 7, then add 5?"'
)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _openai(exc: BaseException) -> str | None:
    if "openai" not in sys.modules:
        return None
    import openai

    if isinstance(exc, openai.AuthenticationError):
        return (
            "OpenAI rejected the API key (HTTP 401): check OPENAI_API_KEY, or use another "
            f"provider, e.g. --model ollama/llama3.2 for a local Ollama; {OFFLINE_HINT}"
        )
    if isinstance(exc, openai.APIConnectionError):
        return (
            f"cannot reach the model provider ({_first_line(exc)}): check the network, or use "
            f"a local model with --model ollama/NAME; {OFFLINE_HINT}"
        )
    if isinstance(exc, openai.APIStatusError):
        return f"the model provider answered HTTP {exc.status_code}: {_first_line(exc)}"
    if isinstance(exc, openai.OpenAIError):
        if "api_key" in str(exc) or "OPENAI_API_KEY" in str(exc):
            return missing_openai_key()
        return f"OpenAI client error: {_first_line(exc)}"
    return None


def missing_openai_key() -> str:
    return (
        "no OpenAI API key: set OPENAI_API_KEY, or run on Ollama with --model ollama/NAME "
        f"(e.g. --model ollama/llama3.2 with `ollama serve`); {OFFLINE_HINT}"
    )


def _agents(exc: BaseException) -> str | None:
    if "agents" not in sys.modules:
        return None
    from agents import exceptions

    if isinstance(exc, exceptions.MaxTurnsExceeded):
        return f"the run used up its turns ({_first_line(exc)}); pass a larger max_turns"
    if isinstance(exc, exceptions.ModelBehaviorError):
        return (
            f"the model did something the Agents SDK cannot use: {_first_line(exc)}; retry the "
            "run (`timestep runs retry RUN`) or use another --model"
        )
    tripwires = (
        exceptions.InputGuardrailTripwireTriggered,
        exceptions.OutputGuardrailTripwireTriggered,
    )
    if isinstance(exc, tripwires):
        return f"a guardrail stopped the run: {_first_line(exc)}"
    if isinstance(exc, exceptions.UserError):
        return f"the Agents SDK refused: {_first_line(exc)}"
    if isinstance(exc, exceptions.AgentsException):
        return f"the Agents SDK failed: {_first_line(exc)}"
    return None


def _dbos(exc: BaseException) -> str | None:
    if "dbos" not in sys.modules:
        return None
    from dbos import error

    if isinstance(exc, error.DBOSException):
        return f"DBOS failed: {_first_line(exc)}"
    return None


def exit_code(exc: BaseException) -> int:
    """The exit code for `exc`: a Timestep error's own `exit_code` (timestep/errors.py), else 1."""
    return exc.exit_code if isinstance(exc, TimestepError) else TimestepError.exit_code


def describe(exc: BaseException) -> str:
    """The one-line message for `exc` (its exit code: `exit_code`)."""
    if isinstance(exc, TimestepError):
        return " ".join(str(exc).split("\n")).strip() or type(exc).__name__
    for describer in (_openai, _agents, _dbos):
        message = describer(exc)
        if message is not None:
            return message
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.strerror or _first_line(exc)}: {exc.filename}"
    return f"{type(exc).__name__}: {_first_line(exc)} (run again with -v for the traceback)"
