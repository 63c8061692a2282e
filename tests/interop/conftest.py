"""Node.js side of the interop suite: find Node, install the pinned @openai/agents, run scripts.

The Node project in this folder pins @openai/agents 0.20.0 with its lock file; it is installed
with `npm ci` the first time the suite runs. Without Node the interop tests are skipped locally
and fail under CI (`CI=true`, `1` or `yes`: the one rule of tests/components.py; a missing
component is a failure in CI, not a silent pass).
"""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.components import unavailable

INTEROP_DIR = Path(__file__).resolve().parent


class NodeProject:
    """Runs tests/interop/harness.mjs with the real @openai/agents."""

    def __init__(self, node: str) -> None:
        self.node = node

    def run(self, request: dict[str, Any], timeout: float = 120) -> dict[str, Any]:
        completed = subprocess.run(
            [self.node, "harness.mjs"],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            cwd=INTEROP_DIR,
            timeout=timeout,
            check=False,
        )
        if completed.returncode != 0:
            raise AssertionError(
                f"node harness failed ({completed.returncode}):\n{completed.stderr}"
            )
        result: dict[str, Any] = json.loads(completed.stdout)
        return result


@pytest.fixture(scope="session")
def node_project() -> NodeProject:
    return find_node_project()


def find_node_project() -> NodeProject:
    """Node.js with this folder's pinned packages installed (`npm ci` once); skip locally or fail
    under CI when that is impossible."""
    node = shutil.which("node")
    npm = shutil.which("npm")
    if node is None or npm is None:
        unavailable("Node.js and npm are needed for the TypeScript interop tests")
    assert node is not None and npm is not None
    # pytest-xdist workers share the folder: one installs while the others wait.
    with open(INTEROP_DIR / ".npm-install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (INTEROP_DIR / "node_modules" / "@openai" / "agents").is_dir():
            installed = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund"],
                cwd=INTEROP_DIR,
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            if installed.returncode != 0:
                unavailable(f"`npm ci` failed in {INTEROP_DIR}:\n{installed.stderr[-2000:]}")
    return NodeProject(node)
