"""The approval inbox over HTTP (`timestep.web.app()`), through httpx's ASGI transport."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

import timestep
from timestep import ConfigurationError
from timestep.cli.serve import is_loopback
from timestep.web import app

from .helpers import ExecutionLog
from .processes import cli, env_for
from .test_approvals import mail_agent
from .test_streaming import streamer

TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def client() -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app(token=TOKEN)),
        base_url="http://inbox.test",
        headers=AUTH,
    )


async def park(tmp_path: Path, run_id: str, to: str = "a") -> tuple[Any, str]:
    agent = mail_agent(ExecutionLog(tmp_path / "log.jsonl"), [[("send_email", {"to": to})]])
    result = await timestep.run_agent(agent, f"mail {to}", run_id=run_id)
    return agent, result.interruptions[0].raw_item.call_id


def error_of(response: httpx.Response) -> dict[str, str]:
    assert "set-cookie" not in response.headers
    body: dict[str, dict[str, str]] = response.json()
    return body["error"]


async def test_list_show_approve_and_conflict(timestep_db: str, tmp_path: Path) -> None:
    agent, call_id = await park(tmp_path, "web-1", to="bob@example.com")
    async with client() as http:
        listed = await http.get("/api/runs", params={"status": "awaiting_approval"})
        assert listed.status_code == 200
        assert "set-cookie" not in listed.headers
        [run] = listed.json()["runs"]
        assert run["run_id"] == "web-1" and run["agent"] == "Mailer"
        [call] = run["pending_approvals"]
        assert call["tool_name"] == "send_email" and call["agent"] == "Mailer"
        assert json.loads(call["arguments"]) == {"to": "bob@example.com"}
        assert call["decision"] is None

        by_agent = await http.get("/api/runs", params={"agent": "Mailer", "limit": 1})
        assert [r["run_id"] for r in by_agent.json()["runs"]] == ["web-1"]
        other = await http.get("/api/runs", params={"agent": "Nobody"})
        assert other.json()["runs"] == []
        assert listed.json()["next_offset"] is None
        none_done = await http.get("/api/runs", params={"status": "completed"})
        assert none_done.json()["runs"] == []

        shown = await http.get("/api/runs/web-1")
        assert shown.status_code == 200
        assert shown.json()["status"] == "awaiting_approval"
        talk = (await http.get("/api/runs/web-1/conversation")).json()["conversation"]
        assert talk[0] == {"kind": "message", "role": "user", "text": "mail bob@example.com"}
        assert [e["kind"] for e in talk[1:]] == ["tool_call", "approval_request"]
        assert talk[-1]["tool"] == "send_email" and talk[-1]["call_id"] == call_id
        assert (await http.get("/api/runs/nope/conversation")).status_code == 404

        approved = await http.post("/api/runs/web-1/approve", json={"call_id": call_id})
        assert approved.status_code == 200, approved.text
        assert [c["decision"] for c in approved.json()["pending_approvals"]] == ["approve"]
        again = await http.post("/api/runs/web-1/approve", json={"call_id": call_id})
        assert again.status_code == 200  # the same decision again is a no-op
        conflict = await http.post("/api/runs/web-1/reject", json={"message": "no"})
        assert conflict.status_code == 409
        error = error_of(conflict)
        assert error["type"] == "DecisionError" and "already decided" in error["message"]

    final = await timestep.resume("web-1")
    assert final.final_output == "done"
    async with client() as http:
        done = (await http.get("/api/runs/web-1")).json()
        assert done["status"] == "completed" and done["final_output"] == "done"
        talk = (await http.get("/api/runs/web-1/conversation")).json()["conversation"]
        assert [e["kind"] for e in talk] == ["message", "tool_call", "tool_output", "message"]
        assert talk[-1] == {"kind": "message", "role": "assistant", "text": "done"}
        steps = (await http.get("/api/runs/web-1/steps")).json()["steps"]
        assert [(s["segment"], s["kind"], s["name"]) for s in steps] == [
            (1, "model", "-> send_email"),
            (2, "tool", "send_email"),
            (2, "model", "-> message"),
        ]
        every = (await http.get("/api/runs/web-1/steps", params={"all": "true"})).json()["steps"]
        assert len(every) >= len(steps)
        assert (await http.get("/api/runs/web-1/steps", params={"all": "x"})).status_code == 422
        assert (await http.get("/api/runs/nope/steps")).status_code == 404
        cancel = await http.post("/api/runs/web-1/cancel")
        assert cancel.status_code == 409 and error_of(cancel)["type"] == "LifecycleError"
        retry = await http.post("/api/runs/web-1/retry")
        assert (
            retry.status_code == 409 and "only a failed or cancelled" in error_of(retry)["message"]
        )


async def test_reject_with_message_and_cancel(timestep_db: str, tmp_path: Path) -> None:
    log = ExecutionLog(tmp_path / "log.jsonl")
    agent = mail_agent(log, [[("send_email", {"to": "x"})]])
    await timestep.run_agent(agent, "mail x", run_id="web-r")
    async with client() as http:
        rejected = await http.post("/api/runs/web-r/reject", json={"message": "not today"})
        assert rejected.status_code == 200, rejected.text
        [call] = rejected.json()["pending_approvals"]
        assert (call["decision"], call["message"]) == ("reject", "not today")
    final = await timestep.resume("web-r")
    assert final.final_output == "done"
    assert [e for e in log.entries("tool") if e["name"] == "send_email"] == []
    assert log.entries("model")[-1]["tool_outputs"] == ["not today"]

    await park(tmp_path, "web-c")
    async with client() as http:
        cancelled = await http.post("/api/runs/web-c/cancel")
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "cancelled"
        retried = await http.post("/api/runs/web-c/retry")
        assert retried.status_code == 200, retried.text
        assert retried.json()["status"] == "awaiting_approval"


async def test_unknown_run_bad_token_and_bad_bodies(timestep_db: str, tmp_path: Path) -> None:
    await park(tmp_path, "web-e")
    async with client() as http:
        for method, path in [
            ("GET", "/api/runs/nope"),
            ("POST", "/api/runs/nope/approve"),
            ("POST", "/api/runs/nope/reject"),
            ("POST", "/api/runs/nope/cancel"),
            ("GET", "/api/runs/nope/events"),
        ]:
            response = await http.request(method, path)
            assert response.status_code == 404, (path, response.text)
            assert error_of(response)["type"] == "RunNotFoundError"

        no_call = await http.post("/api/runs/web-e/approve", json={"call_id": "call_nope"})
        assert no_call.status_code == 409
        assert "no pending call 'call_nope'" in error_of(no_call)["message"]

        for headers in [
            {},
            {"Authorization": "Bearer wrong"},
            {"Authorization": f"Basic {TOKEN}"},
            {"Authorization": TOKEN},
            {"Authorization": f"Bearer {TOKEN}x"},
        ]:
            for method, path in [
                ("GET", "/api/runs"),
                ("GET", "/api/runs/web-e"),
                ("POST", "/api/runs/web-e/approve"),
                ("GET", "/api/runs/web-e/events"),
            ]:
                bare = httpx.AsyncClient(
                    transport=http._transport, base_url="http://inbox.test", headers=headers
                )
                async with bare:
                    response = await bare.request(method, path)
                assert response.status_code == 401, (headers, path)
                assert response.headers["www-authenticate"] == "Bearer"
                assert error_of(response)["type"] == "Unauthorized"
        assert (await http.get("/api/runs/web-e")).json()["pending_approvals"][0][
            "decision"
        ] is None

        bad: list[tuple[str, Any, str]] = [
            ("approve", b"{not json", "not JSON"),
            ("approve", b"[1, 2]", "must be a JSON object"),
            ("approve", {"call_id": 3}, "call_id must be a str"),
            ("approve", {"always": "yes"}, "always must be a bool"),
            ("approve", {"message": "hi"}, "unknown field(s) message"),
            ("reject", {"always": True}, "unknown field(s) always"),
            ("reject", {"message": ["x"]}, "message must be a str"),
            ("cancel", {"now": True}, "unknown field(s) now"),
        ]
        for action, body, wanted in bad:
            content = body if isinstance(body, bytes) else json.dumps(body).encode()
            response = await http.post(f"/api/runs/web-e/{action}", content=content)
            assert response.status_code == 422, (body, response.text)
            assert wanted in error_of(response)["message"], (wanted, response.text)
        for params, wanted in [
            ({"limit": "ten"}, "limit must be an integer"),
            ({"limit": "0"}, "limit must be between"),
            ({"status": "sleeping"}, "unknown run status 'sleeping'"),
        ]:
            response = await http.get("/api/runs", params=params)
            assert response.status_code == 422, response.text
            assert wanted in error_of(response)["message"]
        not_streamed = await http.get("/api/runs/web-e/events")
        assert not_streamed.status_code == 409
        assert "not started with stream=True" in error_of(not_streamed)["message"]
        # Nothing bad was recorded: the call still waits.
        assert (await http.get("/api/runs/web-e")).json()["pending_approvals"][0][
            "decision"
        ] is None


async def test_twenty_concurrent_decisions_record_one(timestep_db: str, tmp_path: Path) -> None:
    _, call_id = await park(tmp_path, "web-race")
    async with client() as http:
        responses = await asyncio.gather(
            *(
                http.post(
                    f"/api/runs/web-race/{'approve' if i % 2 == 0 else 'reject'}",
                    json={"call_id": call_id},
                )
                for i in range(20)
            )
        )
        codes = Counter(r.status_code for r in responses)
        assert set(codes) <= {200, 409}, [r.text for r in responses if r.status_code >= 500]
        winners = {r.request.url.path.rsplit("/", 1)[1] for r in responses if r.status_code == 200}
        assert len(winners) == 1  # exactly one kind recorded
        [kind] = winners
        assert codes[200] == 10 and codes[409] == 10
        for r in responses:
            if r.status_code == 409:
                assert r.request.url.path.endswith("reject" if kind == "approve" else "approve")
                assert error_of(r)["type"] == "DecisionError"
        shown = (await http.get("/api/runs/web-race")).json()
        assert [c["decision"] for c in shown["pending_approvals"]] == [kind]


def sse_events(text: str) -> list[tuple[str | None, dict[str, Any]]]:
    found = []
    for block in text.split("\n\n"):
        event_id, data = None, None
        for line in block.splitlines():
            if line.startswith("id: "):
                event_id = line[4:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
        if data is not None:
            found.append((event_id, data))
    return found


async def test_events_resume_from_last_event_id(timestep_db: str, tmp_path: Path) -> None:
    log = ExecutionLog(tmp_path / "log.jsonl")
    result = await timestep.run_agent(streamer(log), "go", stream=True, run_id="web-s")
    await timestep.consume_result(result)
    library = [e async for e in timestep.stream_events("web-s")]
    async with client() as http:
        whole = await http.get("/api/runs/web-s/events")
        assert whole.status_code == 200
        assert whole.headers["content-type"].startswith("text/event-stream")
        events = sse_events(whole.text)
        assert [e for _, e in events] == library
        ids = [i for i, _ in events if i is not None]
        assert ids == [str(n) for n in range(len(ids))] and len(ids) > 5
        assert events[-1][1] == {
            "offset": None,
            "type": "timestep.run_ended",
            "status": "completed",
        }

        for cut in (0, 3, len(ids) - 1):
            again = await http.get("/api/runs/web-s/events", headers={"Last-Event-ID": ids[cut]})
            resumed = sse_events(again.text)
            seen = ids[: cut + 1] + [i for i, _ in resumed if i is not None]
            assert seen == ids  # no duplicate, no gap
            assert resumed[-1][1]["type"] == "timestep.run_ended"
        by_offset = sse_events((await http.get("/api/runs/web-s/events?offset=4")).text)
        assert by_offset[0][0] == "4"
        bad = await http.get("/api/runs/web-s/events", headers={"Last-Event-ID": "x"})
        assert bad.status_code == 422


async def test_page_and_openapi_need_no_token_and_hold_none(timestep_db: str) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app(token=TOKEN)), base_url="http://inbox.test"
    ) as http:
        page = await http.get("/")
        assert page.status_code == 200 and "Timestep approvals" in page.text
        assert TOKEN not in page.text and "set-cookie" not in page.headers
        assert "cookie" not in page.text.lower()
        schema = (await http.get("/openapi.json")).json()
        assert schema["openapi"].startswith("3.")
        assert {"/api/runs", "/api/runs/{run_id}/approve", "/api/runs/{run_id}/events"} <= set(
            schema["paths"]
        )


def test_app_needs_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TIMESTEP_TOKEN", raising=False)
    with pytest.raises(ConfigurationError, match="needs a bearer token"):
        app()
    monkeypatch.setenv("TIMESTEP_TOKEN", "from-env")
    assert app() is not None
    monkeypatch.setenv("TIMESTEP_TOKEN", "  ")
    with pytest.raises(ValueError, match="token is empty"):
        app()


@pytest.mark.processes
def test_loopback_rule(tmp_path: Path) -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert is_loopback("127.0.0.2") and is_loopback("[::1]")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4")
    assert not is_loopback("example.com")
    env = {
        k: v
        for k, v in env_for(f"sqlite:///{tmp_path}/t.sqlite", tmp_path / "log").items()
        if k != "TIMESTEP_TOKEN"
    }
    refused = cli(env, "serve", "--host", "0.0.0.0", "--port", "1")
    assert refused.returncode == 1
    assert "refusing to serve on 0.0.0.0 without a token" in refused.stderr


async def test_mounted_in_another_app(timestep_db: str, tmp_path: Path) -> None:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Mount, Route

    async def hello(request: Any) -> PlainTextResponse:
        return PlainTextResponse("hello")

    outer = Starlette(routes=[Route("/", hello), Mount("/inbox", app=app(token=TOKEN))])
    await park(tmp_path, "web-m")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=outer), base_url="http://host.test", headers=AUTH
    ) as http:
        assert (await http.get("/")).text == "hello"
        page = await http.get("/inbox/")
        assert page.status_code == 200 and "Timestep approvals" in page.text
        # The page's script and requests are relative, so they reach the mounted API.
        assert 'src="static/app.js"' in page.text and '"/static' not in page.text
        script = await http.get("/inbox/static/app.js")
        assert script.status_code == 200 and "javascript" in script.headers["content-type"]
        assert '"api/inbox/live' in script.text and '"/api/' not in script.text
        [run] = (await http.get("/inbox/api/inbox")).json()["pending"]
        assert run["run_id"] == "web-m"
        approved = await http.post("/inbox/api/runs/web-m/approve")
        assert approved.json()["pending_approvals"][0]["decision"] == "approve"
        assert (await http.get("/inbox/api/runs", headers={"Authorization": ""})).status_code == 401


async def test_an_unexpected_error_is_500_json_and_logged_without_the_token(
    timestep_db: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import timestep.runs

    async def broken(run_id: str) -> Any:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(timestep.runs, "get_run", broken)
    async with client() as http:
        response = await http.get("/api/runs/anything")
    assert response.status_code == 500
    assert error_of(response) == {
        "type": "InternalError",
        "message": "internal error (see the server's log)",
    }
    assert "disk on fire" in caplog.text and "GET /api/runs/anything" in caplog.text
    assert TOKEN not in caplog.text


async def test_approve_always_over_http(timestep_db: str, tmp_path: Path) -> None:
    log = ExecutionLog(tmp_path / "log.jsonl")
    agent = mail_agent(log, [[("send_email", {"to": "a"})], [("send_email", {"to": "b"})]])
    await timestep.run_agent(agent, "mail a then b", run_id="web-always")
    async with client() as http:
        approved = await http.post("/api/runs/web-always/approve", json={"always": True})
        assert approved.status_code == 200, approved.text
    final = await timestep.resume("web-always")
    assert final.final_output == "done" and final.interruptions == []
    assert [e["to"] for e in log.entries("tool") if e["name"] == "send_email"] == ["a", "b"]


async def test_paging(timestep_db: str, tmp_path: Path) -> None:
    for index in range(5):
        await park(tmp_path, f"page-{index}")
    async with client() as http:
        seen: list[str] = []
        offset: int | None = 0
        pages = 0
        while offset is not None:
            answer = (await http.get("/api/runs", params={"limit": 2, "offset": offset})).json()
            seen += [r["run_id"] for r in answer["runs"]]
            offset = answer["next_offset"]
            pages += 1
        assert pages == 3
        assert seen == [f"page-{i}" for i in reversed(range(5))]  # most recent first, once each
        by_agent = await http.get("/api/runs", params={"agent": "Mailer", "limit": 3, "offset": 3})
        assert [r["run_id"] for r in by_agent.json()["runs"]] == ["page-1", "page-0"]
        assert by_agent.json()["next_offset"] is None
        bad = await http.get("/api/runs", params={"offset": -1})
        assert bad.status_code == 422 and "offset must be between 0 and" in error_of(bad)["message"]
    # The agent filter is the database's: another agent's newer run is neither listed nor
    # counted against the page.
    await timestep.run_agent(streamer(ExecutionLog(tmp_path / "s.jsonl")), "go", run_id="other")
    async with client() as http:
        mailer = await http.get("/api/runs", params={"agent": "Mailer", "limit": 5})
        assert [r["run_id"] for r in mailer.json()["runs"]] == [
            f"page-{i}" for i in reversed(range(5))
        ]
        assert mailer.json()["next_offset"] is None
        streamed = await http.get("/api/runs", params={"agent": "Streamer"})
        assert [r["run_id"] for r in streamed.json()["runs"]] == ["other"]


async def test_inbox_view_lists_pending_first_searches_pages_and_goes_live(
    timestep_db: str, tmp_path: Path
) -> None:
    """/api/inbox: runs awaiting approval first (and not again among the others), search by
    run id, agent or tool, pages, the selected run with its steps; its live form sends the view
    at once and again when a decision changes it."""
    from timestep.web import _inbox

    await park(tmp_path, "inbox-1", to="a")
    await park(tmp_path, "inbox-2", to="b")
    async with client() as http:
        view = (await http.get("/api/inbox", params={"selected": "inbox-1", "limit": 1})).json()
        assert view["pending_count"] == 2 and not view["pending_more"]
        assert [r["run_id"] for r in view["pending"]] == ["inbox-2", "inbox-1"]
        assert view["runs"] == [] and view["next_offset"] == 1  # the page held a pending run
        selected = view["selected"]
        assert selected["run"]["run_id"] == "inbox-1" and selected["streamed"] is False
        assert [s["kind"] for s in selected["steps"]] == ["model"]
        for search, found in (("INBOX-2", ["inbox-2"]), ("mailer", ["inbox-2", "inbox-1"])):
            shown = (await http.get("/api/inbox", params={"q": search})).json()
            assert [r["run_id"] for r in shown["pending"]] == found
        by_tool = (await http.get("/api/inbox", params={"q": "send_em"})).json()
        assert len(by_tool["pending"]) == 2
        assert (await http.get("/api/inbox", params={"q": "zzz"})).json()["pending"] == []
        gone = (await http.get("/api/inbox", params={"selected": "nope"})).json()["selected"]
        assert gone == {"run_id": "nope", "run": None, "streamed": False, "steps": []}
        bad = await http.get("/api/inbox", params={"status": "parked"})
        assert bad.status_code == 422 and "status must be one of" in error_of(bad)["message"]
        assert (
            await http.get("/api/inbox", headers={"Authorization": "Bearer x"})
        ).status_code == 401

    live = _inbox.live(_inbox.InboxQuery(selected="inbox-1"))
    first = await anext(live)
    assert first["pending_count"] == 2
    await timestep.approve("inbox-1")
    second = await asyncio.wait_for(anext(live), timeout=30)
    await live.aclose()
    assert [r["run_id"] for r in second["pending"]] == ["inbox-2"]
    assert second["selected"]["run"]["status"] != "awaiting_approval"  # this process goes on


def test_openapi_is_made_from_the_route_table() -> None:
    """Every operation of the one table is in /openapi.json with its method, parameters and
    body fields, and every run route is reachable by both spellings."""
    from timestep.web import API_ROUTES, OPERATIONS, openapi_schema
    from timestep.web._routes import RUN_ACTIONS

    schema = openapi_schema()
    for op in OPERATIONS:
        described = schema["paths"][op.path][op.method.lower()]
        assert described["summary"] == op.summary
        names = {p["name"] for p in described.get("parameters", [])}
        assert {p.name for p in op.params} <= names
        if op.on_run:
            assert "run_id" in names and RUN_ACTIONS[(op.method, op.action)] is op
        fields = described.get("requestBody", {}).get("content", {})
        properties = fields.get("application/json", {}).get("schema", {}).get("properties", {})
        assert set(properties) == {f.name for f in op.body or ()}
    assert len(API_ROUTES) == len(OPERATIONS)
    assert {("POST", "approve"), ("GET", "events"), ("GET", None)} <= set(RUN_ACTIONS)
