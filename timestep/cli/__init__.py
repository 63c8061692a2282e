"""The `timestep` command line: run agents, inspect runs, decide approvals, move states."""

from .main import main

__all__ = ["main"]
