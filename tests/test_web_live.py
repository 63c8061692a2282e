"""Server-Sent Events from a real `timestep serve` while a streamed run is live in another process:
a client that disconnects mid-run and reconnects with `Last-Event-ID` misses nothing and sees
nothing twice."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx

from .helpers import ExecutionLog
from .processes import env_for, start_serve, start_stream_app, wait_for_status

TOKEN = "live-token-8d1e77"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def read_events(
    response: httpx.Response, stop_after: int | None = None
) -> list[tuple[str | None, dict[str, Any]]]:
    """SSE events (id, data) from a streaming response, until the stream ends, or until
    `stop_after` events with an id were read."""
    found: list[tuple[str | None, dict[str, Any]]] = []
    event_id: str | None = None
    data: dict[str, Any] | None = None
    for line in response.iter_lines():
        if line.startswith("id: "):
            event_id = line[4:]
        elif line.startswith("data: "):
            data = json.loads(line[6:])
        elif line == "" and data is not None:
            found.append((event_id, data))
            event_id, data = None, None
            if stop_after is not None and sum(i is not None for i, _ in found) >= stop_after:
                break
    return found


def test_reconnect_mid_run_with_last_event_id(database_url: str, tmp_path: Path) -> None:
    log_path = tmp_path / "log.jsonl"
    gate = tmp_path / "gate"
    env = env_for(database_url, log_path, TIMESTEP_TEST_GATE=str(gate))
    server, url = start_serve(env, "--token", TOKEN, "--create", capture=True)
    runner = None
    try:
        runner = start_stream_app(env, database_url, log_path, capture=True)
        events_url = url + "api/runs/s-1/events"
        with httpx.Client(headers=AUTH, timeout=120) as http:
            deadline = time.time() + 90
            while http.get(url + "api/runs/s-1").status_code == 404 and time.time() < deadline:
                assert runner.poll() is None, runner.communicate()
                time.sleep(0.1)
            with http.stream("GET", events_url) as first:
                assert first.status_code == 200
                before = read_events(first, stop_after=3)
            # Disconnected while the run is held before its final answer: it is live.
            assert http.get(url + "api/runs/s-1").json()["status"] == "running"
            assert not gate.exists()
            last = [i for i, _ in before if i is not None][-1]
            gate.touch()
            with http.stream("GET", events_url, headers={"Last-Event-ID": last}) as second:
                assert second.status_code == 200
                after = read_events(second)
            wait_for_status(database_url, "s-1", "completed")
            with http.stream("GET", events_url) as whole:
                everything = read_events(whole)
        out, err = runner.communicate(timeout=120)
        assert runner.returncode == 0, err
    finally:
        if runner is not None and runner.poll() is None:
            runner.kill()
            runner.communicate()
        server.terminate()
        server.communicate(timeout=30)

    assert json.loads(out.strip().splitlines()[-1])["deltas"] == "one two three four five"
    log = ExecutionLog(log_path)
    assert log.entries("gate_open") and not log.entries("gate_timeout")
    ids = [i for i, _ in everything if i is not None]
    assert ids == [str(n) for n in range(len(ids))]
    seen = [i for i, _ in before + after if i is not None]
    assert seen == ids  # no duplicate, no gap
    assert [e for i, e in before + after if i is not None] == [
        e for i, e in everything if i is not None
    ]
    assert after[-1][1] == {"offset": None, "type": "timestep.run_ended", "status": "completed"}
    deltas = "".join(
        e["data"]["delta"]
        for _, e in before + after
        if e.get("type") == "raw_response_event"
        and e.get("data", {}).get("type") == "response.output_text.delta"
    )
    assert deltas == "one two three four five"
