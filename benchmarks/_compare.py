"""Two runs of `turn_overhead.py` side by side: does each ratio agree within 10%?

No imports beyond the standard library: the test suite checks it without loading the benchmark.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RATIOS = (
    "ratio_vs_plain",
    "ratio_vs_dbosrunner",
    "ratio_vs_floor",
    "ratio_vs_plain_plus_floor",
    "ratio_vs_bare_steps",
    "bare_steps_vs_plain_plus_floor",
    "dbosrunner_vs_plain_plus_floor",
    "streamed.ratio_streamed_vs_timestep",
    "streamed.ratio_vs_plain",
    "streamed.first_event_ratio_vs_plain",
    "streamed.first_event_ratio_vs_plain_plus_step",
)
"""Every ratio of a backend's report, by its path in the JSON."""

AGREEMENT = 0.10
"""Two runs of the script should agree on every ratio within this fraction."""


def _ratio_at(backend_report: dict[str, Any], path: str) -> float | None:
    value: Any = backend_report
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return float(value)


def compare(report: dict[str, Any], earlier: dict[str, Any], backends: list[str]) -> str:
    """Each ratio of this run beside the same ratio of an earlier run of the script, with their
    relative difference (to the mean of the two) and whether it is within `AGREEMENT`."""
    rows = [
        f"{'ratio (this run vs --compare)':<46}{'this':>8}{'earlier':>9}{'diff':>8}  agree",
        "-" * 78,
    ]
    agreed = total = 0
    for backend in backends:
        if backend not in earlier:
            rows.append(f"{backend}: not in the earlier run")
            continue
        for path in RATIOS:
            now, before = _ratio_at(report[backend], path), _ratio_at(earlier[backend], path)
            if now is None or before is None:
                rows.append(f"{backend + ' ' + path:<46}{'(missing in one run)':>25}")
                continue
            difference = (now - before) / ((now + before) / 2)
            within = abs(difference) <= AGREEMENT
            agreed, total = agreed + within, total + 1
            rows.append(
                f"{backend + ' ' + path:<46}{now:>8.3f}{before:>9.3f}{difference:>+8.1%}  "
                + ("yes" if within else "NO")
            )
    rows.append(f"{agreed} of {total} ratios agree within {AGREEMENT:.0%}")
    return "\n".join(rows)


def load_report(path: str) -> dict[str, Any]:
    """The JSON report in `path`: a file holding the JSON, or the saved output of `--json`
    (the JSON is its last line)."""
    lines = Path(path).read_text().strip().splitlines()
    if not lines:
        raise SystemExit(f"--compare: {path} is empty")
    try:
        loaded = json.loads(lines[-1])
    except json.JSONDecodeError as exc:
        raise SystemExit(
            f"--compare: the last line of {path} is not a JSON report ({exc})"
        ) from None
    if not isinstance(loaded, dict):
        raise SystemExit(f"--compare: the last line of {path} is not a JSON object")
    return loaded
