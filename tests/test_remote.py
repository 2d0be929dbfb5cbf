"""novelcomic.remote against a real HTTP server on 127.0.0.1 (stdlib http.server in a thread).

:class:`OpenAIStub` follows OpenAI's published protocol for the Images API (``/v1/images/
generations`` JSON, ``/v1/images/edits`` multipart with ``image[]`` parts; ``b64_json`` or ``url``
answers), an asynchronous relay (a task id, then ``GET /v1/tasks/{id}`` with EvoLink's shape), and
``/v1/audio/speech`` (WAV bytes, with the placeholder sizes of a streamed WAV), plus SiliconFlow's
``/v1/uploads/audio/voice``. The image and speech tests import it.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import io
import json
import math
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from novelcomic import remote
from novelcomic.errors import BackendError, NovelcomicError
from novelcomic.remote import HTTPStatusError, RemoteClient, RemoteConfig, ServerDown, Upload


# --------------------------------------------------------------------------- the stub server


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: Any = None
    fields: dict[str, list[str]] = field(default_factory=dict)  # multipart text fields
    files: dict[str, list[tuple[str, bytes]]] = field(default_factory=dict)  # multipart files: name → [(filename, bytes)]
    at: float = 0.0


@dataclass
class Failure:
    status: int
    retry_after: str | None = None
    drop: bool = False  # close the connection without an answer


def png_bytes(width: int, height: int, colour: tuple[int, int, int]) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buf, format="PNG")
    return buf.getvalue()


def wav_bytes(seconds: float, rate: int = 24000, streamed: bool = True) -> bytes:
    """A 440 Hz tone as PCM16 mono WAV; ``streamed``: with 0xFFFFFFFF sizes like a streamed WAV."""
    import numpy as np

    n = int(seconds * rate)
    samples = (0.3 * np.sin(2 * math.pi * 440 * np.arange(n) / rate) * 32767).astype("<i2").tobytes()
    riff = 0xFFFFFFFF if streamed else 36 + len(samples)
    data = 0xFFFFFFFF if streamed else len(samples)
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    return b"RIFF" + struct.pack("<I", riff) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", data) + samples


class OpenAIStub:
    """The server. ``mode``: how image requests are answered (``b64`` | ``url`` | ``async``).
    ``key``: the Bearer key required (None: no auth). ``delay``: seconds each answer takes (the
    server's own time). ``fail``: failures to answer first, in order. ``kill_after``: after that
    many image answers the server drops the next connection and shuts down (killed mid-render)."""

    def __init__(self) -> None:
        self.mode = "b64"
        self.key: str | None = None
        self.delay = 0.0
        self.fail: deque[Failure] = deque()
        self.kill_after: int | None = None
        self.polls_before_done = 2
        self.seen: list[Seen] = []
        self.server_times: list[float] = []  # seconds each POST took inside the server (benchmarks)
        self.files: dict[str, bytes] = {}
        self.tasks: dict[str, dict[str, Any]] = {}
        self.images_served = 0
        self.speech_seconds_per_char = 0.08
        self._lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def requests(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path.split("?")[0] == path]

    # ------------------------------------------------------------------ answers

    def image_answer(self, size: str, colour: tuple[int, int, int]) -> dict[str, Any]:
        w, h = (int(v) for v in size.split("x"))
        png = png_bytes(w, h, colour)
        if self.mode == "b64":
            return {"created": 1767225600, "data": [{"b64_json": base64.b64encode(png).decode()}]}
        name = f"img{len(self.files)}.png"
        self.files[name] = png
        url = f"http://127.0.0.1:{self.port}/files/{name}"
        if self.mode == "url":
            return {"created": 1767225600, "data": [{"url": url}]}
        task = f"task-unified-{len(self.tasks)}"
        self.tasks[task] = {"polls": 0, "url": url}
        return {"id": task, "object": "image.generation.task", "status": "pending", "progress": 0}

    def start(self, port: int = 0) -> "OpenAIStub":
        """Serve on ``port`` (0: any free one; a killed server's port to restart it there)."""
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: bytes, ctype: str = "application/json", headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def _json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
                self._send(status, json.dumps(obj).encode(), headers=headers)

            def _read(self) -> Seen:
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                seen = Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body, at=time.monotonic())
                ctype = self.headers.get("Content-Type", "")
                if ctype.startswith("application/json") and body:
                    seen.json = json.loads(body)
                elif ctype.startswith("multipart/form-data"):
                    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                        b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + body)
                    for part in msg.iter_parts():
                        name = part.get_param("name", header="content-disposition")
                        payload = part.get_payload(decode=True)
                        if part.get_filename():
                            seen.files.setdefault(name, []).append((part.get_filename(), payload))
                        else:
                            seen.fields.setdefault(name, []).append(payload.decode())
                with stub._lock:
                    stub.seen.append(seen)
                return seen

            def handle_any(self) -> None:
                start = time.perf_counter()
                try:
                    self._handle()
                finally:
                    if self.command == "POST":
                        stub.server_times.append(time.perf_counter() - start)

            def _handle(self) -> None:
                seen = self._read()
                path = self.path.split("?")[0]
                if path.startswith("/files/"):  # a CDN: no generation time
                    self._send(200, stub.files[path.rsplit("/", 1)[1]], "image/png")
                    return
                if stub.delay:
                    time.sleep(stub.delay)
                if stub.key is not None and seen.headers.get("authorization") != f"Bearer {stub.key}":
                    self._json(401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}})
                    return
                with stub._lock:
                    failure = stub.fail.popleft() if stub.fail else None
                    killing = (path.startswith("/v1/images/") and stub.kill_after is not None
                               and stub.images_served >= stub.kill_after)
                if killing:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    threading.Thread(target=stub.stop, daemon=True).start()
                    return
                if failure is not None:
                    if failure.drop:
                        self.close_connection = True
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return
                    headers = {"Retry-After": failure.retry_after} if failure.retry_after else None
                    self._json(failure.status, {"error": {"message": "Rate limit reached", "type": "requests"}}, headers)
                    return
                if path == "/v1/images/generations":
                    body = seen.json
                    with stub._lock:
                        stub.images_served += 1
                    self._json(200, stub.image_answer(body.get("size", "1024x1024"), (20, 60, 200)))
                elif path == "/v1/images/edits":
                    refs = seen.files.get("image[]", [])
                    size = (seen.fields.get("size") or ["1024x1024"])[0]
                    with stub._lock:
                        stub.images_served += 1
                    # the answer's colour says how many references arrived: green = 40 per image
                    self._json(200, stub.image_answer(size, (200, min(255, 40 * len(refs)), 30)))
                elif path.startswith("/v1/tasks/"):
                    task = stub.tasks.get(path.rsplit("/", 1)[1])
                    if task is None:
                        self._json(404, {"error": {"message": "Task not found or expired", "type": "not_found_error"}})
                        return
                    task["polls"] += 1
                    if task["polls"] <= stub.polls_before_done:
                        self._json(200, {"id": path.rsplit("/", 1)[1], "status": "processing", "progress": 50})
                    else:
                        self._json(200, {"id": path.rsplit("/", 1)[1], "status": "completed", "progress": 100,
                                         "results": [task["url"]], "type": "image"})
                elif path == "/v1/audio/speech":
                    body = seen.json
                    if body.get("response_format", "mp3") != "wav":
                        self._json(400, {"error": {"message": "stub speaks wav only"}})
                        return
                    seconds = max(0.3, len(body["input"]) * stub.speech_seconds_per_char / float(body.get("speed") or 1.0))
                    self._send(200, wav_bytes(seconds), "audio/wav")
                elif path == "/v1/uploads/audio/voice":
                    name = seen.fields["customName"][0]
                    self._json(200, {"uri": f"speech:{name}:stub:{len(seen.files['file'][0][1])}"})
                elif path == "/v1/echo":
                    self._json(200, {"ok": True, "method": self.command})
                else:
                    self._json(404, {"error": {"message": f"no route {path}"}})

            do_GET = do_POST = handle_any

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def stub():  # type: ignore[no-untyped-def]
    s = OpenAIStub().start()
    yield s
    s.stop()


def closed_port_url() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}/v1"


def client(url: str, **kw: Any) -> RemoteClient:
    cfg = {"label": "test server", "retries": 2, "backoff": 0.01, **kw}
    return RemoteClient(RemoteConfig(base_url=url, **cfg))


# --------------------------------------------------------------------------- tests


def test_retry_after_is_honoured_in_seconds_and_as_a_date(stub: OpenAIStub) -> None:
    stub.fail.extend([Failure(429, "0.6"), Failure(503, None)])
    c = client(stub.url, backoff=0.05)
    start = time.monotonic()
    assert c.get_json("echo") == {"ok": True, "method": "GET"}
    hits = stub.requests("/v1/echo")
    assert len(hits) == 3
    assert hits[1].at - hits[0].at >= 0.6  # the server asked for 0.6 s, more than the 0.05 s backoff
    assert hits[2].at - hits[1].at < 0.5  # a 503 without Retry-After: the backoff only (0.1 s)
    # an HTTP date two seconds ahead (whole seconds: wait between 1 and 2 s)
    from email.utils import formatdate

    stub.fail.append(Failure(429, formatdate(time.time() + 2, usegmt=True)))
    before = len(stub.requests("/v1/echo"))
    c.get_json("echo")
    hits = stub.requests("/v1/echo")[before:]
    assert len(hits) == 2 and 1.0 <= hits[1].at - hits[0].at < 2.6
    assert time.monotonic() - start < 6


def test_retry_after_is_capped_and_retries_end_in_one_line(stub: OpenAIStub) -> None:
    stub.fail.extend([Failure(429, "3600")] * 3)
    c = client(stub.url, retries=2, max_retry_after=0.2)
    start = time.monotonic()
    with pytest.raises(HTTPStatusError) as info:
        c.post_json("echo", {"x": 1})
    assert time.monotonic() - start < 2
    msg = str(info.value)
    assert "\n" not in msg and f"test server at {stub.url}/echo failed after 3 attempts: last status HTTP 429" in msg
    assert info.value.status == 429 and len(stub.requests("/v1/echo")) == 3


def test_key_from_env_only_to_its_own_host(stub: OpenAIStub, monkeypatch: pytest.MonkeyPatch) -> None:
    stub.key = "sk-test"
    monkeypatch.delenv("NC_TEST_KEY", raising=False)
    c = client(stub.url, api_key_env="NC_TEST_KEY")
    with pytest.raises(HTTPStatusError, match=r"refused the request \(HTTP 401\): set the environment variable NC_TEST_KEY$"):
        c.get_json("echo")
    monkeypatch.setenv("NC_TEST_KEY", "sk-test")
    assert c.get_json("echo")["ok"] is True
    assert stub.seen[-1].headers["authorization"] == "Bearer sk-test"
    # a full URL on another host (a CDN an answer points to) never gets the key
    other = f"http://localhost:{stub.port}/files/x.png"
    stub.files["x.png"] = b"png"
    assert c.download(other) == b"png"
    assert "authorization" not in stub.seen[-1].headers
    with pytest.raises(NovelcomicError, match="^f: the environment variable NC_MISSING is not set"):
        remote.require_key("NC_MISSING", "f")
    with pytest.raises(NovelcomicError, match="a key does not belong in project.yaml"):
        remote.refuse_inline_key("sk-x", "stages.render.options.api_key")


def test_server_down_one_line_then_the_breaker_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    url = closed_port_url()
    now = [1000.0]
    remote.reset_breaker(clock=lambda: now[0])
    c = client(url, retries=2)
    with pytest.raises(ServerDown) as info:
        c.get_json("echo")
    msg = str(info.value)
    assert msg.startswith(f"cannot reach test server at {url}/echo (3 attempts; last error: ConnectError") and "\n" not in msg
    assert "Traceback" not in msg and c.attempts == 3
    # another client, same server: fails at once, no attempt, one line naming the URL
    other = client(url, retries=5, backoff=1.0)
    start = time.monotonic()
    with pytest.raises(ServerDown, match=rf"^test server at {url} did not answer earlier in this run \(ConnectError"):
        other.get_json("echo")
    assert time.monotonic() - start < 0.05
    # a probe after the interval: one attempt only, still down
    now[0] += remote.PROBE_INTERVAL
    other.attempts = 0
    with pytest.raises(ServerDown, match="cannot reach"):
        other.get_json("echo")
    assert other.attempts == 1
    remote.reset_breaker()


def test_breaker_closes_when_the_server_answers(stub: OpenAIStub) -> None:
    now = [50.0]
    remote.reset_breaker(clock=lambda: now[0])
    remote.BREAKER.trip(stub.url, "ConnectError: refused")
    c = client(stub.url)
    with pytest.raises(ServerDown):
        c.get_json("echo")
    assert stub.requests("/v1/echo") == []
    now[0] += remote.PROBE_INTERVAL
    assert c.get_json("echo")["ok"] is True  # the probe got an answer
    assert remote.BREAKER.outage(stub.url) is None and c.get_json("echo")["ok"] is True
    remote.reset_breaker()


def test_dropped_connection_is_retried(stub: OpenAIStub) -> None:
    stub.fail.append(Failure(0, drop=True))
    c = client(stub.url)
    assert c.post_json("echo", {"a": 1})["ok"] is True
    assert len(stub.requests("/v1/echo")) == 2


def test_multipart_upload_repeats_fields_and_poll_waits_for_the_task(stub: OpenAIStub) -> None:
    c = client(stub.url)
    stub.mode = "async"
    task = c.post_multipart("images/edits", data={"model": "m", "prompt": "p", "size": "64x32"},
                            files=[Upload("image[]", "a.png", png_bytes(8, 8, (1, 2, 3)), "image/png"),
                                   Upload("image[]", "b.png", png_bytes(8, 8, (4, 5, 6)), "image/png")])
    seen = stub.requests("/v1/images/edits")[0]
    assert [name for name, _ in seen.files["image[]"]] == ["a.png", "b.png"] and seen.fields["model"] == ["m"]
    from PIL import Image

    assert Image.open(io.BytesIO(seen.files["image[]"][1][1])).getpixel((0, 0)) == (4, 5, 6)
    assert task["status"] == "pending"
    polled: list[str] = []

    def done(answer: dict) -> list | None:
        polled.append(answer["status"])
        return answer["results"] if answer["status"] == "completed" else None

    results = c.poll(c.root_url(f"/v1/tasks/{task['id']}"), done, interval=0.01, timeout=5)
    assert polled == ["processing", "processing", "completed"]
    png = c.download(results[0])
    assert Image.open(io.BytesIO(png)).size == (64, 32)
    stub.polls_before_done = 10**6
    task2 = c.post_json("images/generations", {"size": "8x8"})
    with pytest.raises(remote.RemoteError, match=r"the task did not finish within 0.1 s"):
        c.poll(f"/tasks/{task2['id']}", lambda a: None, interval=0.03, timeout=0.1)


def test_download_streams_to_a_file(stub: OpenAIStub, tmp_path: Any) -> None:
    stub.files["big.bin"] = bytes(range(256)) * 4096
    dest = tmp_path / "big.bin"
    assert client(stub.url).download(f"http://127.0.0.1:{stub.port}/files/big.bin", dest=dest) == b""
    assert dest.read_bytes() == stub.files["big.bin"] and not list(tmp_path.glob("*.part"))
    with pytest.raises(remote.RemoteError, match="sent more than 1000 bytes"):
        client(stub.url).download(f"http://127.0.0.1:{stub.port}/files/big.bin", max_bytes=1000)


def test_concurrency_limits_requests_in_flight(stub: OpenAIStub) -> None:
    stub.delay = 0.15
    c = client(stub.url, concurrency=2)
    threads = [threading.Thread(target=c.get_json, args=("echo",)) for _ in range(4)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert time.monotonic() - start >= 0.3  # 4 requests, 2 at a time, 0.15 s each
    hits = sorted(s.at for s in stub.requests("/v1/echo"))
    assert hits[2] - hits[0] >= 0.12


def test_a_bad_status_and_a_body_that_is_not_json_are_one_line(stub: OpenAIStub) -> None:
    c = client(stub.url)
    with pytest.raises(HTTPStatusError, match=r"test server at .*/v1/nowhere answered HTTP 404: .*no route") as info:
        c.get_json("nowhere")
    assert info.value.status == 404
    stub.files["t.txt"] = b"<html>oops</html>"
    with pytest.raises(remote.RemoteError, match=r"sent a body that is not JSON \(HTTP 200\): <html>oops</html>"):
        c.get_json(f"http://127.0.0.1:{stub.port}/files/t.txt")


def test_retrying_is_the_one_loop() -> None:
    waits: list[float] = []
    seen = []
    for attempt in remote.retrying(remote.RetryPolicy(retries=3, backoff=0.5, max_backoff=1.5), waits.append):
        seen.append(attempt.number)
        if attempt.number == 1:
            attempt.wait_at_least(4.0)
    assert seen == [0, 1, 2, 3] and waits == [0.5, 4.0, 1.5]
    assert remote.parse_retry_after("7") == 7.0 and remote.parse_retry_after("soon") is None
    assert remote.parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert isinstance(ServerDown("x"), BackendError)
