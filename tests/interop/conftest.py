"""Node.js side of the interop suite: find Node, install the pinned @openai/agents, run scripts.

The Node project in this folder pins @openai/agents 0.20.0 with its lock file; it is installed
with `npm ci` the first time the suite runs. Without Node the interop tests are skipped locally
and fail under `CI=true` (a missing component is a failure in CI, not a silent pass).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

INTEROP_DIR = Path(__file__).resolve().parent


def _missing(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (required under CI=true)")
    pytest.skip(reason)


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
    node = shutil.which("node")
    npm = shutil.which("npm")
    if node is None or npm is None:
        _missing("Node.js and npm are needed for the TypeScript interop tests")
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
                _missing(f"`npm ci` failed in {INTEROP_DIR}:\n{installed.stderr[-2000:]}")
    return NodeProject(node)
