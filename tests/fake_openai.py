"""A local stand-in for the OpenAI Responses API (`POST /v1/responses`), for offline tests.

It speaks HTTP/1.1 with keep-alive, as api.openai.com does, so a client's pooled connections
stay open between requests: that is what exposes an HTTP client shared across event loops.
Every reply is one assistant message with the text given to `FakeOpenAI(reply=...)`.

It also keeps conversations (`/v1/conversations`, the Conversations API that
`OpenAIConversationsSession` uses): create, list items (one page, `order`, `limit`), add items,
delete an item, delete a conversation. `conversations` maps each conversation id to its items.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


class FakeOpenAI:
    def __init__(self, reply: str = "pong") -> None:
        self.reply = reply
        self.requests: list[dict[str, Any]] = []  # {"path", "headers" (lower-case), "body"}
        self.conversations: dict[str, list[dict[str, Any]]] = {}
        self._items_made = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        """The base URL to give as `base_url` / `OPENAI_BASE_URL`."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _response(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            index = len(self.requests)
        return {
            "id": f"resp_{index}",
            "object": "response",
            "created_at": 0,
            "model": body.get("model", "gpt-4.1"),
            "status": "completed",
            "output": [
                {
                    "type": "message",
                    "id": f"msg_{index}",
                    "role": "assistant",
                    "status": "completed",
                    "content": [{"type": "output_text", "text": self.reply, "annotations": []}],
                }
            ],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "usage": {
                "input_tokens": 1,
                "output_tokens": 1,
                "total_tokens": 2,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens_details": {"reasoning_tokens": 0},
            },
        }

    def _conversation(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        """(status, JSON reply) of a Conversations API request; `path` without the query."""
        parts = path.split("/")[3:]  # after "", "v1", "conversations"
        with self._lock:
            if method == "POST" and not parts:
                conversation_id = f"conv_{len(self.conversations) + 1}"
                self.conversations[conversation_id] = []
                for item in body.get("items") or []:
                    self.conversations[conversation_id].append(self._stored_item(item))
                return 200, _conversation_object(conversation_id)
            items = self.conversations.get(parts[0]) if parts else None
            if items is None:
                return 404, {"error": {"message": "no such conversation", "type": "not_found"}}
            if method == "DELETE" and len(parts) == 1:
                del self.conversations[parts[0]]
                return 200, {"id": parts[0], "object": "conversation.deleted", "deleted": True}
            if method == "POST" and parts[1:] == ["items"]:
                added = [self._stored_item(item) for item in body.get("items") or []]
                items.extend(added)
                return 200, _page(added)
            if method == "DELETE" and len(parts) == 3:
                items[:] = [item for item in items if item["id"] != parts[2]]
                return 200, _conversation_object(parts[0])
        return 404, {"error": {"message": f"{method} {path}", "type": "not_found"}}

    def _stored_item(self, item: dict[str, Any]) -> dict[str, Any]:
        self._items_made += 1
        stored = {"id": f"item_{self._items_made}", **item}
        if "role" in stored and "type" not in stored:
            stored["type"] = "message"
        return stored

    def _list_items(self, path: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        conversation_id = path.split("/")[3]
        with self._lock:
            items = list(self.conversations.get(conversation_id) or [])
        if query.get("order", ["desc"])[0] == "desc":
            items.reverse()
        if "limit" in query:
            items = items[: int(query["limit"][0])]
        return 200, _page(items)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: connections are pooled by the client

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _reply(self, status: int, reply: Any) -> None:
                payload = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _body(self) -> dict[str, Any]:
                length = int(self.headers.get("content-length") or 0)
                body: dict[str, Any] = json.loads(self.rfile.read(length) or b"{}")
                return body

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if url.path.startswith("/v1/conversations/") and url.path.endswith("/items"):
                    self._reply(*fake._list_items(url.path, parse_qs(url.query)))
                else:
                    self._reply(404, {"error": {"message": self.path, "type": "not_found"}})

            def do_DELETE(self) -> None:
                self._reply(*fake._conversation("DELETE", urlsplit(self.path).path, {}))

            def do_POST(self) -> None:
                body = self._body()
                path = urlsplit(self.path).path
                if path.startswith("/v1/conversations"):
                    self._reply(*fake._conversation("POST", path, body))
                    return
                payload = json.dumps(fake._response(body)).encode()
                with fake._lock:
                    fake.requests.append(
                        {
                            "path": self.path,
                            "headers": {k.lower(): v for k, v in self.headers.items()},
                            "body": body,
                        }
                    )
                status = 200 if self.path.endswith("/responses") else 404
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        return Handler


def _conversation_object(conversation_id: str) -> dict[str, Any]:
    return {"id": conversation_id, "object": "conversation", "created_at": 0, "metadata": {}}


def _page(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "object": "list",
        "data": items,
        "first_id": items[0]["id"] if items else None,
        "last_id": items[-1]["id"] if items else None,
        "has_more": False,
    }
