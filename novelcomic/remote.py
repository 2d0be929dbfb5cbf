"""The one HTTP layer every remote engine uses: the LLM client, the OpenAI-compatible image and
speech backends, ComfyUI — and the one retry loop and "server down" breaker of the code base
(edge-tts, which talks over its own websocket library, uses the same loop and breaker).

What it gives:

- :class:`RemoteClient` over httpx, built from a :class:`RemoteConfig`: a ``base_url``, a short
  connect timeout and a configurable read timeout, the key read from the environment variable the
  backend option ``api_key_env`` names (never from project.yaml: :func:`refuse_inline_key`), extra
  headers, and an optional per-server limit of requests in flight (``concurrency``, shared by every
  client of the process with the same ``base_url``).
- retries with exponential backoff on connection errors, timeouts, 429 and 5xx; a ``Retry-After``
  header (seconds or an HTTP date) is honoured, capped at ``max_retry_after``. The loop itself is
  :func:`retrying`, usable by code that does not speak HTTP through httpx.
- a process-wide breaker (:data:`BREAKER`) keyed by ``base_url``: when a call's attempts all ended
  without an HTTP answer (refused, unreachable, timed out, dropped), later calls to the same server
  fail at once with one line naming the URL, and one call is let through every ``probe_interval``
  seconds; any HTTP answer closes it.
- helpers: :meth:`RemoteClient.get_json` / :meth:`post_json` / :meth:`post_multipart` (files as
  :class:`Upload`) / :meth:`download` (bytes, or streamed to a file) / :meth:`poll` (wait on an
  asynchronous task id).

Every failure is a :class:`RemoteError` (a :class:`novelcomic.errors.BackendError`) whose message
is one line naming the URL; no httpx exception escapes. :class:`ServerDown` means no HTTP answer
(or the breaker is open), :class:`HTTPStatusError` an answer with a bad status (``.status``).

Paths: ``"images/edits"`` and ``"/images/edits"`` are both appended to ``base_url``; a full
``http(s)://`` URL is used as given (and gets no key unless it is on the same host as ``base_url``:
a key is never sent to a CDN an answer points to). :meth:`RemoteClient.root_url` resolves a path
from the server's root instead (``/v1/tasks/{id}`` on a relay whose base is ``…/v1``).

Usage::

    from novelcomic.remote import RemoteClient, RemoteConfig, Upload

    client = RemoteClient(RemoteConfig(
        base_url="http://127.0.0.1:8188", label="ComfyUI server",
        api_key_env="COMFY_TOKEN",             # None/"" : no Authorization header
        timeout=120, retries=3, concurrency=2,
    ))
    info = client.get_json("/object_info")
    up = client.post_multipart("/upload/image", data={"overwrite": "true"},
                               files=[Upload("image", "ref-1a2b.png", png_bytes, "image/png")])
    queued = client.post_json("/prompt", {"prompt": graph, "client_id": cid})
    hist = client.poll(f"/history/{queued['prompt_id']}",
                       done=lambda h: h.get(queued["prompt_id"]) or None, interval=0.5, timeout=600)
    png = client.download("/view", params={"filename": name, "type": "output"})
    client.close()   # or use it as a context manager

Tests reset the breaker with :func:`reset_breaker` (optionally with a fake clock).
"""

from __future__ import annotations

import email.utils
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from novelcomic.errors import BackendError, NovelcomicError

if TYPE_CHECKING:
    import httpx

T = TypeVar("T")

PROBE_INTERVAL = 60.0  # seconds before a server found down is asked again (one call at a time)
DEFAULT_CONNECT_TIMEOUT = 8.0
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504, 520, 521, 522, 523, 524, 529})
MAX_DOWNLOAD = 512 * 1024 * 1024


# --------------------------------------------------------------------------- errors


class RemoteError(BackendError):
    """A remote call failed; the message is one line naming the URL."""

    def __init__(self, message: str, *, url: str = "", **kwargs: Any) -> None:
        self.url = url
        super().__init__(message, **kwargs)


class ServerDown(RemoteError):
    """No HTTP answer after every attempt (refused, unreachable, timed out, dropped), or the server
    was found down earlier in this process and is not asked again yet."""


class HTTPStatusError(RemoteError):
    """The server answered with a status the caller does not accept."""

    def __init__(self, message: str, *, url: str = "", status: int = 0, body: str = "") -> None:
        self.status = status
        self.body = body
        super().__init__(message, url=url)


def snippet(text: str | bytes, limit: int = 300) -> str:
    """``text`` on one line, at most ``limit`` characters (an error body for a message)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    one = " ".join(text.split())
    return one if len(one) <= limit else one[:limit] + "…"


def refuse_inline_key(value: object, field: str) -> None:
    """A backend's ``api_key`` option: refused, whatever it holds (keys live in the environment)."""
    if value is not None:
        raise NovelcomicError(
            "a key does not belong in project.yaml: put it in an environment variable and name that variable "
            "with api_key_env (e.g. api_key_env: OPENAI_API_KEY)", field=field,
        )


def require_key(api_key_env: str | None, field: str, what: str = "this server") -> None:
    """Raise a one-line :class:`NovelcomicError` when ``api_key_env`` names an unset variable."""
    if api_key_env and not os.environ.get(api_key_env, "").strip():
        raise NovelcomicError(
            f"the environment variable {api_key_env} is not set: {what} needs its key there "
            f"(or set api_key_env: none for a server without a key)", field=field,
        )


def env_name(value: object, field: str) -> str | None:
    """An ``api_key_env`` option checked: a variable name, or None for ``none``/``null``/empty."""
    if value is None or value in ("", "none", "None", False):
        return None
    if not isinstance(value, str) or not value.replace("_", "").isalnum():
        raise NovelcomicError(f"api_key_env {value!r} must be the name of an environment variable", field=field)
    return value


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (delta-seconds or an HTTP date), else None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


# --------------------------------------------------------------------------- the one retry loop


@dataclass(frozen=True)
class RetryPolicy:
    """``retries`` attempts after the first; ``backoff`` seconds before the first retry, doubled
    each time up to ``max_backoff``; a server's ``Retry-After`` wins when longer, up to
    ``max_retry_after``."""

    retries: int = 3
    backoff: float = 1.0
    max_backoff: float = 30.0
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        if self.retries < 0 or self.backoff < 0:
            raise ValueError(f"retries {self.retries!r} and backoff {self.backoff!r} must be ≥ 0")


@dataclass
class Attempt:
    """One try in :func:`retrying`: ``number`` counts from 0; ``last`` when no retry follows.
    Call :meth:`wait_at_least` with a server's ``Retry-After`` before going on to the next."""

    number: int
    last: bool
    retry_after: float | None = None

    def wait_at_least(self, seconds: float | None) -> None:
        self.retry_after = seconds


def retrying(policy: RetryPolicy, sleep: Callable[[float], None] = time.sleep) -> Iterator[Attempt]:
    """The retry loop of the code base::

        for attempt in retrying(policy):
            try:
                return do_it()
            except Flaky as exc:
                attempt.wait_at_least(retry_after_of(exc))   # optional
                error = exc                                  # then loop on; break to give up
        raise ...

    It sleeps between attempts (``sleep`` is injectable) and stops after ``policy.retries + 1``.
    """
    for number in range(policy.retries + 1):
        attempt = Attempt(number, number == policy.retries)
        yield attempt
        if attempt.last:
            return
        wait = min(policy.backoff * 2**number, policy.max_backoff)
        if attempt.retry_after is not None:
            wait = max(wait, min(attempt.retry_after, policy.max_retry_after))
        if wait > 0:
            sleep(wait)


# --------------------------------------------------------------------------- the breaker


@dataclass(frozen=True)
class Outage:
    """A server found down: since when, why, and when it was last tried (clock seconds)."""

    since: float
    reason: str
    last_try: float


GateState = Literal["go", "probe", "skip"]


class Breaker:
    """Servers found down, by key (a base URL), shared by the whole process: Prefect runs one task
    per shot, each with its own backend, and none of them should wait out the retries again on a
    server already found down. Thread-safe; ``clock`` is injectable for tests."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._down: dict[str, Outage] = {}

    def check(self, key: str, probe_interval: float = PROBE_INTERVAL) -> tuple[GateState, Outage | None]:
        """``("go", None)`` when ``key`` is not down; ``("probe", outage)`` when it is but a try is
        due (this caller makes it; the others keep skipping); ``("skip", outage)`` otherwise."""
        with self._lock:
            outage = self._down.get(key)
            if outage is None:
                return "go", None
            now = self.clock()
            if now - outage.last_try >= probe_interval:
                self._down[key] = Outage(outage.since, outage.reason, now)
                return "probe", outage
            return "skip", outage

    def trip(self, key: str, reason: str) -> None:
        with self._lock:
            now = self.clock()
            old = self._down.get(key)
            self._down[key] = Outage(old.since if old else now, reason, now)

    def close(self, key: str) -> None:
        with self._lock:
            self._down.pop(key, None)

    def outage(self, key: str) -> Outage | None:
        with self._lock:
            return self._down.get(key)

    def reset(self, clock: Callable[[], float] | None = None) -> None:
        """Forget every outage (and optionally swap the clock)."""
        with self._lock:
            self._down.clear()
            if clock is not None:
                self.clock = clock

    def gate(self, key: str) -> "Gate":
        return Gate(self, key)


@dataclass(frozen=True)
class Gate:
    """The breaker seen from one key (edge-tts's service, one server)."""

    breaker: Breaker
    key: str

    def check(self, probe_interval: float = PROBE_INTERVAL) -> tuple[GateState, Outage | None]:
        return self.breaker.check(self.key, probe_interval)

    def trip(self, reason: str) -> None:
        self.breaker.trip(self.key, reason)

    def close(self) -> None:
        self.breaker.close(self.key)

    @property
    def outage(self) -> Outage | None:
        return self.breaker.outage(self.key)


BREAKER = Breaker()


def reset_breaker(clock: Callable[[], float] | None = None) -> Breaker:
    """Forget every server found down (tests; long-lived processes); returns :data:`BREAKER`."""
    BREAKER.reset(clock if clock is not None else time.monotonic)
    return BREAKER


# --------------------------------------------------------------------------- per-server limits

_SLOTS: dict[str, threading.BoundedSemaphore] = {}
_SLOTS_LOCK = threading.Lock()


def _slots(key: str, n: int) -> threading.BoundedSemaphore:
    with _SLOTS_LOCK:
        sem = _SLOTS.get(key)
        if sem is None:
            sem = _SLOTS[key] = threading.BoundedSemaphore(n)
        return sem


# --------------------------------------------------------------------------- the client


@dataclass(frozen=True)
class RemoteConfig:
    """How to talk to one server.

    ``label`` names it in messages ("image server", "LLM server"). ``timeout``: seconds to wait for
    an answer once connected (read/write); ``connect_timeout``: seconds to connect. ``api_key_env``:
    the variable holding the key, read at each request; sent as ``Authorization: Bearer <key>``
    (``auth_header``/``auth_scheme`` change that; an empty scheme sends the bare key). No header
    when unset. ``concurrency``: requests in flight to this ``base_url`` in the whole process
    (None: no limit). ``probe_interval``: see :class:`Breaker`.
    """

    base_url: str
    label: str = "server"
    api_key_env: str | None = None
    timeout: float = 60.0
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    retries: int = 3
    backoff: float = 1.0
    max_backoff: float = 30.0
    max_retry_after: float = 60.0
    probe_interval: float = PROBE_INTERVAL
    concurrency: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    auth_header: str = "Authorization"
    auth_scheme: str = "Bearer"

    def __post_init__(self) -> None:
        if not isinstance(self.base_url, str) or not self.base_url.startswith(("http://", "https://")):
            raise NovelcomicError(f"base_url {self.base_url!r} must be an http(s) URL")
        if self.timeout <= 0 or self.connect_timeout <= 0:
            raise NovelcomicError(f"timeout {self.timeout!r} must be positive")
        if self.concurrency is not None and self.concurrency < 1:
            raise NovelcomicError(f"concurrency {self.concurrency!r} must be 1 or more")

    @property
    def key(self) -> str:
        """The breaker's key: the base URL without a trailing slash."""
        return self.base_url.rstrip("/")

    @property
    def policy(self) -> RetryPolicy:
        return RetryPolicy(self.retries, self.backoff, self.max_backoff, self.max_retry_after)


@dataclass(frozen=True)
class Upload:
    """One file part of a multipart request (``field`` may repeat: ``image[]``)."""

    field: str
    filename: str
    content: bytes
    content_type: str = "application/octet-stream"


@dataclass
class Reply:
    """An HTTP answer, read whole."""

    status: int
    url: str
    content: bytes
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    label: str = "server"

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body as JSON; a :class:`RemoteError` naming the URL when it is not."""
        import json

        try:
            return json.loads(self.content)
        except ValueError:
            raise RemoteError(
                f"{self.label} at {self.url} sent a body that is not JSON (HTTP {self.status}): {snippet(self.content)}",
                url=self.url,
            ) from None


class RemoteClient:
    """HTTP calls to one server with the layer's timeouts, auth, retries and breaker.

    Thread-safe (one httpx connection pool, created on first use). ``sleep`` and ``breaker`` are
    injectable for tests; ``transport`` (an httpx transport) too.
    """

    def __init__(
        self,
        config: RemoteConfig,
        *,
        sleep: Callable[[float], None] = time.sleep,
        breaker: Breaker | None = None,
        transport: Any = None,
    ) -> None:
        self.config = config
        self.sleep = sleep
        self.breaker = breaker or BREAKER
        self._transport = transport
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()
        self.attempts = 0  # attempts made by the last request (all threads together; for tests)

    # ------------------------------------------------------------------ plumbing

    def __enter__(self) -> "RemoteClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def _http(self) -> "httpx.Client":
        with self._lock:
            if self._client is None:
                import httpx

                c = self.config
                timeout = httpx.Timeout(c.timeout, connect=c.connect_timeout)
                self._client = httpx.Client(timeout=timeout, transport=self._transport, follow_redirects=True)
            return self._client

    def url(self, path: str) -> str:
        """``path`` under ``base_url`` (a full URL is kept)."""
        if path.startswith(("http://", "https://")):
            return path
        return self.config.key + "/" + path.lstrip("/") if path else self.config.key

    def root_url(self, path: str) -> str:
        """``path`` from the server's root (scheme://host:port), a full URL kept."""
        if path.startswith(("http://", "https://")):
            return path
        from urllib.parse import urlsplit

        parts = urlsplit(self.config.base_url)
        return f"{parts.scheme}://{parts.netloc}/{path.lstrip('/')}"

    def api_key(self) -> str:
        env = self.config.api_key_env
        return os.environ.get(env, "").strip() if env else ""

    def _same_host(self, url: str) -> bool:
        from urllib.parse import urlsplit

        return urlsplit(url).netloc == urlsplit(self.config.base_url).netloc

    def _headers(self, url: str, extra: Mapping[str, str] | None) -> dict[str, str]:
        headers = {**self.config.headers, **(extra or {})}
        key = self.api_key()
        if key and self._same_host(url):
            scheme = self.config.auth_scheme
            headers[self.config.auth_header] = f"{scheme} {key}" if scheme else key
        return headers

    def status_error(self, status: int, url: str, body: str) -> HTTPStatusError:
        """The one-line error for an answer with a bad ``status`` (401/403 name the key's variable)."""
        label, env = self.config.label, self.config.api_key_env
        if status in (401, 403):
            if env and not self.api_key():
                hint = f"set the environment variable {env}"
            elif env:
                hint = f"check the key in {env}"
            else:
                hint = "the server wants a key: name its environment variable with api_key_env"
            return HTTPStatusError(f"{label} at {url} refused the request (HTTP {status}): {hint}",
                                   url=url, status=status, body=body)
        return HTTPStatusError(f"{label} at {url} answered HTTP {status}: {snippet(body)}", url=url, status=status, body=body)

    # ------------------------------------------------------------------ the call

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: Mapping[str, Any] | None = None,
        files: list[Upload] | None = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        check: bool = True,
        stream_to: Path | None = None,
        max_bytes: int = MAX_DOWNLOAD,
    ) -> Reply:
        """One HTTP call with retries. Returns the :class:`Reply`; a status ≥ 400 raises
        :class:`HTTPStatusError` when ``check`` (else it is returned, except retryable statuses,
        which are retried and then raised). ``stream_to``: write the body to that file as it
        arrives (the Reply's ``content`` is then empty). ``timeout``: this call's read timeout."""
        import httpx

        c = self.config
        url = self.url(path)
        state, outage = self.breaker.check(c.key, c.probe_interval)
        if state == "skip" and outage is not None:
            raise ServerDown(
                f"{c.label} at {c.key} did not answer earlier in this run ({outage.reason}); "
                f"asked again every {c.probe_interval:g} s", url=url,
            )
        probing = state == "probe"
        multipart = [(u.field, (u.filename, u.content, u.content_type)) for u in files] if files else None
        per_call = httpx.Timeout(timeout, connect=c.connect_timeout) if timeout is not None else None
        last_error, last_status, answered, connect_only = "", None, False, True
        tries = 0
        slot = _slots(c.key, c.concurrency) if c.concurrency else None
        for attempt in retrying(c.policy, self.sleep):
            tries += 1
            self.attempts = tries
            try:
                if slot is not None:
                    slot.acquire()
                try:
                    reply = self._send(method, url, json=json, data=data, files=multipart, params=params,
                                       headers=self._headers(url, headers), timeout=per_call,
                                       stream_to=stream_to, max_bytes=max_bytes)
                finally:
                    if slot is not None:
                        slot.release()
            except httpx.TransportError as exc:
                if not isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
                    connect_only = False
                last_error = _describe(exc, timeout or c.timeout)
                if probing:  # the one try of a probe: still down
                    break
                continue
            answered = True
            self.breaker.close(c.key)
            probing = False
            if reply.status in RETRY_STATUSES:
                last_status, last_error, connect_only = reply.status, snippet(reply.content), False
                attempt.wait_at_least(parse_retry_after(reply.headers.get("retry-after")))
                continue
            if reply.status >= 400 and check:
                raise self.status_error(reply.status, url, reply.text)
            return reply
        plural = f"{tries} attempt{'s' if tries != 1 else ''}"
        if not answered:
            self.breaker.trip(c.key, last_error)
            if connect_only:
                raise ServerDown(f"cannot reach {c.label} at {url} ({plural}; last error: {last_error}): "
                                 f"is the server running?", url=url)
            raise ServerDown(f"{c.label} at {url} failed after {plural}: no HTTP answer; last error: {last_error}", url=url)
        status = f"HTTP {last_status}" if last_status is not None else "no HTTP status"
        raise HTTPStatusError(f"{c.label} at {url} failed after {plural}: last status {status}; last error: {last_error}",
                              url=url, status=last_status or 0, body=last_error)

    def _send(self, method: str, url: str, *, stream_to: Path | None, max_bytes: int, timeout: Any,
              **kwargs: Any) -> Reply:
        http = self._http()
        extra = {"timeout": timeout} if timeout is not None else {}
        with http.stream(method, url, **kwargs, **extra) as resp:
            headers = {k.lower(): v for k, v in resp.headers.items()}
            if stream_to is not None and resp.status_code < 400:
                size = 0
                tmp = Path(stream_to).with_name(Path(stream_to).name + ".part")
                try:
                    with open(tmp, "wb") as fh:
                        for chunk in resp.iter_bytes():
                            size += len(chunk)
                            if size > max_bytes:
                                raise RemoteError(f"{self.config.label} at {url} sent more than {max_bytes} bytes", url=url)
                            fh.write(chunk)
                    os.replace(tmp, stream_to)
                finally:
                    tmp.unlink(missing_ok=True)
                return Reply(resp.status_code, url, b"", headers, self.config.label)
            body = bytearray()
            for chunk in resp.iter_bytes():
                body.extend(chunk)
                if len(body) > max_bytes:
                    raise RemoteError(f"{self.config.label} at {url} sent more than {max_bytes} bytes", url=url)
            return Reply(resp.status_code, url, bytes(body), headers, self.config.label)

    # ------------------------------------------------------------------ helpers

    def get_json(self, path: str, *, params: Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
        return self.request("GET", path, params=params, **kwargs).json()

    def post_json(self, path: str, body: Any, **kwargs: Any) -> Any:
        return self.request("POST", path, json=body, **kwargs).json()

    def post_multipart(self, path: str, *, data: Mapping[str, Any] | None = None, files: list[Upload],
                       **kwargs: Any) -> Any:
        """POST ``multipart/form-data``: the ``data`` fields (lists repeat the field) and ``files``."""
        return self.request("POST", path, data=data, files=files, **kwargs).json()

    def download(self, path: str, *, dest: Path | None = None, params: Mapping[str, Any] | None = None,
                 max_bytes: int = MAX_DOWNLOAD, **kwargs: Any) -> bytes:
        """GET a body as bytes; with ``dest``, streamed into that file (written whole or not at all)
        and b"" returned."""
        reply = self.request("GET", path, params=params, stream_to=dest, max_bytes=max_bytes, **kwargs)
        return reply.content

    def poll(
        self,
        path: str,
        done: Callable[[Any], T | None],
        *,
        interval: float = 1.0,
        timeout: float = 600.0,
        what: str = "task",
    ) -> T:
        """GET ``path`` (JSON) every ``interval`` seconds until ``done(answer)`` returns something
        other than None, and return that. ``done`` raises to report a failed task. After
        ``timeout`` seconds a :class:`RemoteError` says the task did not finish."""
        clock = time.monotonic
        start = clock()
        url = self.url(path)
        while True:
            result = done(self.get_json(path))
            if result is not None:
                return result
            if clock() - start + interval > timeout:
                raise RemoteError(f"{self.config.label} at {url}: the {what} did not finish within {timeout:g} s", url=url)
            self.sleep(interval)


def _describe(exc: BaseException, timeout: float) -> str:
    """``ConnectError: [Errno 111] Connection refused`` on one line; timeouts say how long."""
    import httpx

    name = type(exc).__name__
    if isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.ConnectTimeout):
        return f"timed out after {timeout:g} s"
    message = snippet(str(exc), 200)
    return f"{name}: {message}" if message else name


__all__ = [
    "BREAKER", "Attempt", "Breaker", "Gate", "HTTPStatusError", "Outage", "PROBE_INTERVAL", "RETRY_STATUSES",
    "RemoteClient", "RemoteConfig", "RemoteError", "Reply", "RetryPolicy", "ServerDown", "Upload", "env_name",
    "parse_retry_after", "refuse_inline_key", "require_key", "reset_breaker", "retrying", "snippet",
]
