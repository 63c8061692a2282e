"""The app of `timestep import-pglite` tests: the interop `Mailer` (send_email needs approval,
lookup_address), answering "Sent." once resumed. Executions of its tools land in `executions`."""

from __future__ import annotations

from typing import Any

from tests.interop import _harness

executions: list[dict[str, Any]] = []
model = _harness.ScriptedModel([{"text": "Sent."}])
mailer = _harness.build_agents(model, executions)["Mailer"]
