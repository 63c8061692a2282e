"""The inbox against bad requests: body size, malformed input, every run id, tokens, errors
without paths, a read-only database, the page's CSP, `serve` failures."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

import timestep
from timestep import InvalidArgumentError
from timestep.web import app
from timestep.web._routes import MAX_BODY_BYTES

from .helpers import ExecutionLog
from .pgcluster import free_port
from .processes import ROOT, cli, env_for, read_only_copy
from .test_approvals import mail_agent
from .test_web import AUTH, TOKEN, client, error_of, park

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def test_body_size_limit_is_413(timestep_db: str, tmp_path: Path) -> None:
    _, call_id = await park(tmp_path, "big")
    async with client() as http:
        message = "x" * (50 * 1024 * 1024)
        declared = await http.post(
            "/api/runs/big/reject", json={"call_id": call_id, "message": message}
        )
        assert declared.status_code == 413, declared.text[:200]
        assert error_of(declared)["type"] == "PayloadTooLarge"

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
            yield b'{"message": "'
            for _ in range(MAX_BODY_BYTES // 1024 + 1):
                yield b"y" * 1024
            yield b'"}'

        streamed = await http.post("/api/runs/big/reject", content=chunks())
        assert streamed.status_code == 413
        assert str(MAX_BODY_BYTES) in error_of(streamed)["message"]
        fits = await http.post(
            "/api/runs/big/reject", json={"call_id": call_id, "message": "z" * 60_000}
        )
        assert fits.status_code == 200
    record = await timestep.get_run("big")
    assert record.pending_approvals[0]["message"] == "z" * 60_000  # type: ignore[typeddict-item]


async def test_malformed_inputs_are_422_json(timestep_db: str, tmp_path: Path) -> None:
    await park(tmp_path, "bad")
    async with client() as http:
        deep = await http.post("/api/runs/bad/approve", content=b"[" * 100_000 + b"]" * 100_000)
        assert deep.status_code == 422, deep.text[:200]
        assert "nested too deeply" in error_of(deep)["message"]
        deep_object = b'{"call_id": ' + b'{"a":' * 100_000 + b"1" + b"}" * 100_001
        assert (await http.post("/api/runs/bad/approve", content=deep_object)).status_code == 422
        assert (await http.post("/api/runs/bad/approve", content=b"\xff\xfe")).status_code == 422
        for params in [
            {"offset": "9223372036854775808"},
            {"offset": "99999999999999999999999999999999999999"},
            {"offset": "1e3"},
            {"offset": "+5"},
            {"offset": "\u0663"},  # an Arabic-Indic digit, which int() would take
            {"offset": "1_0"},
            {"limit": "9" * 5000},
            {"limit": ""},
        ]:
            answer = await http.get("/api/runs", params=params)
            assert answer.status_code == 422, (params, answer.text)
            assert error_of(answer)["type"] == "InvalidRequest"
        for last in ["9223372036854775808", "-5", "x"]:
            answer = await http.get("/api/runs/bad/events", headers={"Last-Event-ID": last})
            assert answer.status_code in (409, 422), answer.text  # 409: not a streamed run
        huge = await http.get("/api/runs/bad/events", params={"offset": str(2**63)})
        assert huge.status_code in (409, 422)
        for method, path in [("GET", "/api/nothing"), ("GET", "/api/runs/a/b/c")]:
            answer = await http.request(method, path)
            assert answer.status_code == 404 and error_of(answer)["type"] == "NotFound"
        wrong_method = await http.delete("/api/runs")
        assert wrong_method.status_code == 405
        assert error_of(wrong_method)["type"] == "MethodNotAllowed"
        get_approve = await http.get("/api/runs/bad/approve")
        assert get_approve.status_code == 405 and "POST" in error_of(get_approve)["message"]
        no_id = await http.get("/api/run")
        assert no_id.status_code == 422 and "id (the run id) is required" in no_id.text


RUN_IDS = ["a/b", ".", "..", "../x", "a/b/approve", "q?x=1#frag", "100%", " sp ace", "\u202eid"]


async def test_every_run_id_is_reachable(timestep_db: str, tmp_path: Path) -> None:
    log = ExecutionLog(tmp_path / "log.jsonl")
    agent = mail_agent(log, [[("send_email", {"to": "bob"})]])
    for run_id in RUN_IDS:
        await timestep.run_agent(agent, "mail", run_id=run_id)
    async with client() as http:
        for index, run_id in enumerate(RUN_IDS):
            by_query = await http.get("/api/run", params={"id": run_id})
            assert by_query.status_code == 200, (run_id, by_query.text)
            assert by_query.json()["run_id"] == run_id
            encoded = quote(run_id, safe="")
            if run_id not in (".", ".."):  # URL parsers remove dot segments from a path
                by_path = await http.get(f"/api/runs/{encoded}")
                assert by_path.status_code == 200, (run_id, by_path.text)
                assert by_path.json()["run_id"] == run_id
                steps = await http.get(f"/api/runs/{encoded}/steps")
                assert steps.status_code == 200 and steps.json()["steps"]
            talk = await http.get("/api/run/conversation", params={"id": run_id})
            assert talk.status_code == 200 and talk.json()["conversation"]
            kind = "approve" if index % 2 else "reject"
            decided = await http.post(f"/api/run/{kind}", params={"id": run_id})
            assert decided.status_code == 200, (run_id, decided.text)
            assert decided.json()["pending_approvals"][0]["decision"] == kind
        unencoded = await http.get("/api/runs/a/b")
        assert unencoded.status_code == 404 and "%2F" in error_of(unencoded)["message"]


async def test_tokens_are_compared_exactly_and_in_utf8(
    timestep_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for padded in (" padded-token-0123456789 ", "trailing\t", "new\nline"):
        with pytest.raises(InvalidArgumentError):
            app(token=padded)
        monkeypatch.setenv("TIMESTEP_TOKEN", padded)
        with pytest.raises(InvalidArgumentError):
            app()
    token = "pässwörd-令牌-0123456789abcdef"
    transport = httpx.ASGITransport(app=app(token=token))

    async def status(header: bytes) -> int:
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://inbox.test",
            headers={"Authorization": header},  # type: ignore[dict-item]
        ) as http:
            return (await http.get("/api/runs")).status_code

    assert await status(b"Bearer " + token.encode("utf-8")) == 200
    assert await status(b"bearer " + token.encode("utf-8")) == 200  # the scheme is a word
    assert await status(b"Bearer  " + token.encode("utf-8")) == 401  # one space, not two
    assert await status(b"Bearer " + token.encode("utf-8") + b"x") == 401
    assert await status(b"Bearer " + token.encode("utf-8")[:-1]) == 401
    assert await status(b"Bearer " + "pässwörd".encode("latin-1")) == 401


async def test_errors_name_no_files_and_nothing_pending_is_409(
    timestep_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import timestep.runs
    from timestep import DatabaseUnavailableError

    _, call_id = await park(tmp_path, "done")
    async with client() as http:
        assert (await http.post("/api/runs/done/approve")).status_code == 200
        await timestep.resume("done")
        again = await http.post("/api/runs/done/approve")
        assert again.status_code == 409
        assert error_of(again)["type"] == "NothingPendingError"
        assert "no call is pending" in error_of(again)["message"]
        repeat = await http.post("/api/runs/done/approve", json={"call_id": call_id})
        assert repeat.status_code == 200  # the same decision on the same call: a no-op

        path = str(tmp_path / "secret-place" / "timestep.sqlite")

        async def unavailable(*args: Any, **kwargs: Any) -> Any:
            raise DatabaseUnavailableError(f"cannot open the database at {path!r}")

        monkeypatch.setattr(timestep.runs, "list_runs", unavailable)
        answer = await http.get("/api/runs")
        assert answer.status_code == 503
        assert "secret-place" not in answer.text and str(tmp_path) not in answer.text
        assert error_of(answer)["type"] == "DatabaseUnavailableError"


async def test_page_csp_has_no_unsafe_inline(timestep_db: str) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app(token=TOKEN)), base_url="http://inbox.test"
    ) as http:
        page = await http.get("/")
        policy = page.headers["content-security-policy"]
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
        assert "script-src 'self'" in policy and "style-src 'self'" in policy
        assert "<script>" not in page.text and "<style>" not in page.text
        assert " style=" not in page.text and " onclick=" not in page.text
        for name, kind in (("app.js", "javascript"), ("app.css", "css")):
            served = await http.get(f"/static/{name}")
            assert served.status_code == 200 and kind in served.headers["content-type"]
            assert served.headers["x-content-type-options"] == "nosniff"
        assert (await http.get("/static/../_app.py")).status_code == 404
        assert (await http.get("/static/index.html")).status_code == 404


SLOW = 60
"""Seconds a request may take on a loaded machine (the first read of steps imports DBOS)."""


def _serve(env: dict[str, str], *args: str, prefix: list[str] | None = None) -> Any:
    return subprocess.Popen(
        [*(prefix or []), sys.executable, "-m", "timestep.cli", "serve", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_serve_failures_are_one_error_line(database_url: str, tmp_path: Path) -> None:
    env = env_for(database_url, tmp_path / "log.jsonl")
    env.pop("TIMESTEP_TOKEN", None)
    port = free_port()
    holder = _serve(env, "--port", str(port), "--token", TOKEN, "--create")
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        busy = cli(env, "serve", "--port", str(port), "--token", TOKEN, "--create")
        assert busy.returncode == 1
        assert busy.stderr.splitlines() == [
            f"timestep: error: cannot serve on 127.0.0.1:{port}: Address already in use "
            "(another process listens there: stop it, or choose --port)"
        ]
    finally:
        holder.terminate()
        holder.communicate(timeout=30)
    weak = cli(env, "serve", "--host", "0.0.0.0", "--port", str(port), "--token", "a")
    assert weak.returncode == 1 and len(weak.stderr.splitlines()) == 1
    assert "weak token" in weak.stderr
    padded = cli({**env, "TIMESTEP_TOKEN": " padded-0123456789abcdefgh "}, "serve")
    assert padded.returncode == 1 and "whitespace" in padded.stderr
    bad_port = cli(env, "serve", "--port", "70000", "--token", TOKEN)
    assert bad_port.returncode == 1 and "--port must be between 1 and 65535" in bad_port.stderr


@pytest.mark.skipif(shutil.which("setpriv") is None and os.geteuid() == 0, reason="no setpriv")
def test_serve_reads_a_read_only_database_and_refuses_decisions(
    database_url: str, tmp_path: Path
) -> None:
    env = env_for(database_url, tmp_path / "log.jsonl")
    env.pop("TIMESTEP_TOKEN", None)
    parked = cli(env, "run", "tests.apps.mail_app:mailer", "mail bob", "--run-id", "ro-1")
    assert parked.returncode == 3, parked.stderr
    source_path = Path(database_url.removeprefix("sqlite:///"))
    with read_only_copy(source_path) as (db, prefix):
        shared = db.parent
        port = free_port()
        ro_env = {**env, "TIMESTEP_DB_URL": f"sqlite:///{db}", "HOME": str(shared)}
        server = _serve(ro_env, "--port", str(port), "--token", TOKEN, prefix=prefix)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.time() + 60
            while time.time() < deadline and server.poll() is None:
                try:
                    httpx.get(f"{base}/openapi.json", timeout=2)
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            assert server.poll() is None, server.communicate()
            listed = httpx.get(f"{base}/api/runs", headers=AUTH, timeout=SLOW)
            assert listed.status_code == 200, listed.text
            assert [r["run_id"] for r in listed.json()["runs"]] == ["ro-1"]
            steps = httpx.get(f"{base}/api/runs/ro-1/steps", headers=AUTH, timeout=SLOW)
            assert steps.status_code == 200
            refused = httpx.post(f"{base}/api/runs/ro-1/approve", headers=AUTH, timeout=SLOW)
            assert refused.status_code == 503, refused.text
            assert refused.json()["error"]["type"] == "ReadOnlyDatabaseError"
            assert "read-only" in refused.json()["error"]["message"]
            assert str(shared) not in refused.text
            cancelled = httpx.post(f"{base}/api/runs/ro-1/cancel", headers=AUTH, timeout=SLOW)
            assert cancelled.status_code == 503
        finally:
            server.terminate()
            _, err = server.communicate(timeout=30)
    assert "the database is read-only here" in err
    assert json.loads(cli(env, "runs", "show", "ro-1", "--json").stdout)["status"] == (
        "awaiting_approval"
    )
