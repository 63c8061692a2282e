"""A small Ollama-speaking HTTP server for offline tests.

Speaks `/api/chat` (NDJSON streaming and single-object replies), `/api/tags` and `/api/show` on
127.0.0.1 with a free port, so the official `ollama` client talks to it unchanged. Replies are
scripted (`FakeOllama.add`); every request is recorded (`FakeOllama.requests`) so tests can
assert on the schemas, messages, options and headers a real server would have received.

    with FakeOllama(models={"llama3.2"}) as server:
        server.add(tool_reply(tool_call("get_weather", {"city": "Paris"})), text_reply("Sunny"))
        ...  # point OLLAMA_HOST / base_url / cloud_url at server.url
        assert server.chat_requests[1]["messages"][-1]["tool_name"] == "get_weather"
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

_CREATED_AT = "2025-01-01T00:00:00.000000Z"


def tool_call(name: str, arguments: Any, *, id: str | None = "auto") -> dict[str, Any]:
    """One tool call as Ollama sends it; `id="auto"` makes a `call_xxxxxxxx` id, None omits it
    (older servers), and a raw string `arguments` is sent as is (to script malformed calls)."""
    call: dict[str, Any] = {"function": {"name": name, "arguments": arguments}}
    if id == "auto":
        id = f"call_{secrets.token_hex(4)}"
    if id is not None:
        call["id"] = id
    return call


@dataclass
class Reply:
    """One scripted answer to a POST /api/chat."""

    text: str = ""
    thinking: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    stream_error: str | None = None
    """Streaming: send the text chunks, then a `{"error": ...}` line on the 200 response."""
    status: int = 200
    """Non-200: reply with this status and `{"error": error_message}` instead."""
    error_message: str = ""
    model: str | None = None
    """Only answer requests for this model (None: any model)."""
    done_reason: str = "stop"
    prompt_eval_count: int = 12
    eval_count: int = 5


def text_reply(text: str, *, thinking: str = "", **kwargs: Any) -> Reply:
    return Reply(text=text, thinking=thinking, **kwargs)


def tool_reply(*calls: dict[str, Any], text: str = "", **kwargs: Any) -> Reply:
    return Reply(text=text, tool_calls=list(calls), **kwargs)


def error_reply(status: int, message: str, **kwargs: Any) -> Reply:
    return Reply(status=status, error_message=message, **kwargs)


@dataclass
class Recorded:
    """A request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    """Header names lower-cased."""
    body: Any


def _pieces(text: str, size: int = 2) -> list[str]:
    """Split text into a few word-ish chunks, the way a model streams tokens."""
    words = text.split(" ")
    out = []
    for i in range(0, len(words), size):
        chunk = " ".join(words[i : i + size])
        out.append(chunk if i + size >= len(words) else chunk + " ")
    return [p for p in out if p]


class FakeOllama:
    """The server; use as a context manager or call start()/stop()."""

    def __init__(
        self, models: Iterable[str] | None = None, *, api_key: str | None = None, port: int = 0
    ):
        """`models`: names the server has (others get 404; None accepts any name).
        `api_key`: when set, requests without `Authorization: Bearer <api_key>` get 401.
        `port`: 0 for a free one; the port of a stopped server to bring "it" back."""
        self.models = set(models) if models is not None else None
        self.api_key = api_key
        self.requests: list[Recorded] = []
        self._replies: list[Reply] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        port = self._server.server_address[1]
        return f"http://127.0.0.1:{port}"

    def start(self) -> FakeOllama:
        # A short poll interval keeps shutdown() (called after every test) fast.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeOllama:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def add(self, *replies: Reply) -> None:
        with self._lock:
            self._replies.extend(replies)

    @property
    def pending(self) -> list[Reply]:
        with self._lock:
            return list(self._replies)

    @property
    def chat_requests(self) -> list[dict[str, Any]]:
        """Bodies of the /api/chat requests, in order."""
        return [r.body for r in self.requests if r.path == "/api/chat"]

    @property
    def chat_headers(self) -> list[dict[str, str]]:
        return [r.headers for r in self.requests if r.path == "/api/chat"]

    def _next_reply(self, model: str) -> Reply | None:
        with self._lock:
            for i, reply in enumerate(self._replies):
                if reply.model in (None, model):
                    return self._replies.pop(i)
        return None

    def _chat_objects(self, model: str, reply: Reply, stream: bool) -> Iterator[dict[str, Any]]:
        def line(message: dict[str, Any], done: bool = False) -> dict[str, Any]:
            return {"model": model, "created_at": _CREATED_AT, "message": message, "done": done}

        final = {
            "done_reason": reply.done_reason,
            "total_duration": 1_000_000,
            "load_duration": 1000,
            "prompt_eval_count": reply.prompt_eval_count,
            "prompt_eval_duration": 1000,
            "eval_count": reply.eval_count,
            "eval_duration": 1000,
        }
        if not stream:
            message: dict[str, Any] = {"role": "assistant", "content": reply.text}
            if reply.thinking:
                message["thinking"] = reply.thinking
            if reply.tool_calls:
                message["tool_calls"] = reply.tool_calls
            yield {**line(message, done=True), **final}
            return
        for piece in _pieces(reply.thinking):
            yield line({"role": "assistant", "content": "", "thinking": piece})
        for piece in _pieces(reply.text):
            yield line({"role": "assistant", "content": piece})
        if reply.stream_error is not None:
            yield {"error": reply.stream_error}
            return
        if reply.tool_calls:
            # Ollama sends a turn's tool calls whole, in one chunk.
            yield line({"role": "assistant", "content": "", "tool_calls": reply.tool_calls})
        yield {**line({"role": "assistant", "content": ""}, done=True), **final}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            # HTTP/1.0: a streamed body simply ends when the connection closes.
            protocol_version = "HTTP/1.0"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send_json(self, status: int, obj: Any) -> None:
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _record(self, body: Any) -> None:
                headers = {k.lower(): v for k, v in self.headers.items()}
                with fake._lock:
                    fake.requests.append(Recorded(self.command, self.path, headers, body))

            def _authorized(self) -> bool:
                if fake.api_key is None:
                    return True
                if self.headers.get("Authorization") == f"Bearer {fake.api_key}":
                    return True
                self._send_json(401, {"error": "unauthorized"})
                return False

            def _known(self, model: str) -> bool:
                if fake.models is None or model in fake.models:
                    return True
                self._send_json(404, {"error": f'model "{model}" not found, try pulling it first'})
                return False

            def do_GET(self) -> None:
                self._record(None)
                if not self._authorized():
                    return
                if self.path == "/api/tags":
                    names = sorted(fake.models or [])
                    self._send_json(
                        200,
                        {
                            "models": [
                                {
                                    "name": n,
                                    "model": n,
                                    "modified_at": _CREATED_AT,
                                    "size": 1,
                                    "digest": "0" * 64,
                                    "details": {"format": "gguf", "family": "llama"},
                                }
                                for n in names
                            ]
                        },
                    )
                elif self.path == "/api/version":
                    self._send_json(200, {"version": "0.12.0-fake"})
                else:
                    self._send_json(404, {"error": "404 page not found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                self._record(body)
                if not self._authorized():
                    return
                if self.path == "/api/show":
                    if self._known(body.get("model", "")):
                        self._send_json(
                            200,
                            {
                                "modelfile": "",
                                "parameters": "",
                                "template": "",
                                "details": {"format": "gguf", "family": "llama"},
                                "model_info": {"llama.context_length": 131072},
                                "capabilities": ["completion", "tools", "thinking"],
                            },
                        )
                    return
                if self.path != "/api/chat":
                    self._send_json(404, {"error": "404 page not found"})
                    return
                model = body.get("model", "")
                if not self._known(model):
                    return
                reply = fake._next_reply(model)
                if reply is None:
                    self._send_json(500, {"error": f"fake ollama: no reply scripted for {model}"})
                    return
                if reply.status != 200:
                    self._send_json(reply.status, {"error": reply.error_message})
                    return
                stream = body.get("stream", True)
                if not stream:
                    if reply.stream_error is not None:
                        self._send_json(500, {"error": reply.stream_error})
                        return
                    self._send_json(200, next(fake._chat_objects(model, reply, stream=False)))
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/x-ndjson")
                self.end_headers()
                for obj in fake._chat_objects(model, reply, stream=True):
                    self.wfile.write(json.dumps(obj).encode() + b"\n")
                    self.wfile.flush()

        return Handler


# --- pytest fixtures (`local_ollama`, `cloud_ollama`, `ollama_env`), registered for the whole
# suite by `pytest_plugins` in tests/conftest.py.

LOCAL_MODELS = frozenset({"llama3.2", "qwen3:8b"})
CLOUD_MODELS = frozenset({"gpt-oss:120b", "kimi-k2"})
CLOUD_KEY = "cloud-secret-key"


@pytest.fixture(name="ollama_env")
def ollama_env_fixture(monkeypatch: pytest.MonkeyPatch) -> None:
    """No Ollama or OpenAI settings leak in from the environment running the tests."""
    for name in ("OLLAMA_HOST", "OLLAMA_API_KEY", "OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(name="local_ollama")
def local_ollama_fixture(ollama_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOllama]:
    """A fake local server, reachable as OLLAMA_HOST."""
    with FakeOllama(models=LOCAL_MODELS) as server:
        monkeypatch.setenv("OLLAMA_HOST", server.url)
        yield server


@pytest.fixture(name="cloud_ollama")
def cloud_ollama_fixture(ollama_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOllama]:
    """A fake Ollama Cloud that requires CLOUD_KEY; OLLAMA_API_KEY is set to that key."""
    with FakeOllama(models=CLOUD_MODELS, api_key=CLOUD_KEY) as server:
        monkeypatch.setenv("OLLAMA_API_KEY", CLOUD_KEY)
        yield server
