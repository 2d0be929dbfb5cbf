"""A tiny OpenAI-compatible chat-completions server for tests (stdlib http.server in a thread).

It replays queued replies in order — recorded-style responses from ``tests/data/llm/*.json`` or
content built in the test — and can answer an error status, sleep past the client's timeout, or
reject ``response_format`` kinds with HTTP 400. Every request body is recorded.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest

DATA = Path(__file__).parent / "data" / "llm"


def completion(content: str, model: str = "stub") -> dict[str, Any]:
    """An OpenAI chat-completion response body carrying ``content``."""
    return {
        "id": "chatcmpl-stub", "object": "chat.completion", "created": 1767225600, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 100, "total_tokens": 200},
    }


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    delay: float = 0.0


@dataclass
class LLMStub:
    replies: deque[Reply] = field(default_factory=deque)
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    reject_formats: set[str] = field(default_factory=set)  # response_format types answered with 400
    port: int = 0
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # ------------------------------------------------------------------ queueing

    def reply(self, content: str) -> None:
        self.replies.append(Reply(200, completion(content)))

    def reply_json(self, obj: Any) -> None:
        self.reply(json.dumps(obj, ensure_ascii=False))

    def reply_file(self, name: str) -> None:
        """A recorded response body from tests/data/llm/<name>.json."""
        self.replies.append(Reply(200, json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))))

    def error(self, status: int, message: str = "stub error") -> None:
        self.replies.append(Reply(status, {"error": {"message": message, "type": "server_error"}}))

    def hang(self, seconds: float) -> None:
        """Sleep ``seconds`` before answering (past the client's timeout), then answer a 500."""
        self.replies.append(Reply(500, {"error": {"message": "too late"}}, delay=seconds))

    def contents(self, i: int) -> list[str]:
        """The message contents of request ``i``."""
        return [m["content"] for m in self.requests[i]["messages"]]

    # ------------------------------------------------------------------ serving

    def start(self) -> "LLMStub":
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                stub.requests.append(body)
                stub.headers.append(dict(self.headers))
                fmt = (body.get("response_format") or {}).get("type")
                if self.path != "/v1/chat/completions":
                    reply = Reply(404, {"error": {"message": f"no route {self.path}"}})
                elif fmt in stub.reject_formats:
                    reply = Reply(400, {"error": {"message": f"response_format type {fmt} is not supported"}})
                elif stub.replies:
                    reply = stub.replies.popleft()
                else:
                    reply = Reply(500, {"error": {"message": "stub: no reply queued"}})
                if reply.delay:
                    time.sleep(reply.delay)
                data = json.dumps(reply.body, ensure_ascii=False).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@pytest.fixture
def llm_stub() -> Iterator[LLMStub]:
    stub = LLMStub().start()
    try:
        yield stub
    finally:
        stub.stop()


def closed_port_url() -> str:
    """The URL of a port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"
