"""Any OpenAI-compatible chat-completions server: Ollama, vLLM, LM Studio, llama.cpp server,
DeepSeek, OpenAI.

One HTTP call per :meth:`OpenAIBackend.complete` (``POST {base_url}/chat/completions``) with
retries and exponential backoff on timeouts, connection errors, 429 and 5xx. JSON output is
requested the strongest way the server accepts: ``response_format`` ``json_schema``, then
``json_object``, then nothing; a server that rejects one (HTTP 400 about ``response_format``)
is asked the next way, and the instance remembers what worked.
"""

from __future__ import annotations

import os
import time
from typing import Any, Literal

from novelcomic.errors import BackendError, NovelcomicError
from novelcomic.llm.base import Message

JsonMode = Literal["schema", "object", "none"]
JSON_MODES: tuple[JsonMode, ...] = ("schema", "object", "none")
MAX_RETRY_AFTER = 30.0
REPROBE_SECONDS = 60.0  # a server that did not answer is asked again (once) after this long


class Unreachable:
    """Servers that gave no HTTP answer after all retries, by URL, shared by every instance in
    the process: Prefect runs one task per shot, each with its own backend, and none of them
    should wait out the retries again on a server already found down. One call is let through
    every :data:`REPROBE_SECONDS`; any answer clears the URL."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        import threading

        self.clock = clock
        self._lock = threading.Lock()
        self._down: dict[str, tuple[float, str]] = {}

    def check(self, url: str) -> None:
        """Raise at once if ``url`` was found down less than REPROBE_SECONDS ago."""
        with self._lock:
            seen = self._down.get(url)
            if seen is None:
                return
            since, reason = seen
            if self.clock() - since >= REPROBE_SECONDS:
                self._down[url] = (self.clock(), reason)  # this call probes; the others keep failing fast
                return
        raise BackendError(f"LLM server at {url} did not answer earlier in this run ({reason}); "
                           f"asked again every {REPROBE_SECONDS:g} s")

    def mark(self, url: str, reason: str) -> None:
        with self._lock:
            self._down[url] = (self.clock(), reason)

    def clear(self, url: str) -> None:
        with self._lock:
            self._down.pop(url, None)


UNREACHABLE = Unreachable()


def forget_unreachable(clock: Any = time.monotonic) -> Unreachable:
    """Start over (tests): no server is remembered as down; returns the fresh memory."""
    global UNREACHABLE
    UNREACHABLE = Unreachable(clock)
    return UNREACHABLE


class OpenAIBackend:
    """Chat completions over HTTP (httpx).

    ``api_key_env`` names the environment variable holding the key; it is read when a request is
    made, and no ``Authorization`` header is sent when it is unset (local servers need none).
    ``json_mode`` is the strongest JSON request to try first. ``context_tokens`` tells planners
    how much text fits in one request.
    """

    name = "openai"

    def __init__(
        self,
        base_url: str = "http://localhost:11434/v1",
        model: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        timeout: float = 60.0,
        retries: int = 3,
        backoff: float = 1.0,
        json_mode: JsonMode = "schema",
        context_tokens: int = 8192,
        extra_headers: dict[str, str] | None = None,
        api_key: str | None = None,
    ) -> None:
        if api_key is not None:
            raise NovelcomicError(
                "a key does not belong in project.yaml: put it in an environment variable and name that variable "
                "with api_key_env (e.g. api_key_env: DEEPSEEK_API_KEY)", field="llm.options.api_key"
            )
        if not model or not isinstance(model, str):
            raise NovelcomicError(
                "the openai LLM backend needs a model name (e.g. model: qwen2.5:7b for Ollama)", field="llm.options.model"
            )
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise NovelcomicError(f"base_url {base_url!r} must be an http(s) URL", field="llm.options.base_url")
        if json_mode not in JSON_MODES:
            raise NovelcomicError(f"json_mode {json_mode!r} must be one of {', '.join(JSON_MODES)}", field="llm.options.json_mode")
        if timeout <= 0:
            raise NovelcomicError(f"timeout {timeout!r} must be positive", field="llm.options.timeout")
        if retries < 0:
            raise NovelcomicError(f"retries {retries!r} must be 0 or more", field="llm.options.retries")
        if context_tokens < 512:
            raise NovelcomicError(f"context_tokens {context_tokens!r} is too small (at least 512)", field="llm.options.context_tokens")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key_env = api_key_env
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.backoff = float(backoff)
        self.json_mode: JsonMode = json_mode
        self.context_tokens = int(context_tokens)
        self.extra_headers = dict(extra_headers or {})

    @property
    def url(self) -> str:
        return f"{self.base_url}/chat/completions"

    def complete(
        self,
        messages: list[Message],
        *,
        json_schema: dict[str, Any] | None = None,
        temperature: float = 0.2,
        max_tokens: int | None = None,
    ) -> str:
        """The assistant message's text. Raises BackendError when the server cannot answer."""
        if not messages:
            raise ValueError("complete() needs at least one message")
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "temperature": temperature,
            "stream": False,
        }
        if max_tokens is not None:
            payload["max_tokens"] = int(max_tokens)
        while True:
            mode = self.json_mode if json_schema is not None else "none"
            body = dict(payload)
            fmt = _response_format(mode, json_schema)
            if fmt is not None:
                body["response_format"] = fmt
            status, data, text = self._post(body)
            if status == 400 and fmt is not None and "response_format" in text.lower().replace(" ", "_"):
                # The server does not take this kind of response_format: ask the next weaker way.
                self.json_mode = JSON_MODES[JSON_MODES.index(mode) + 1]
                continue
            if status == 401 or status == 403:
                hint = (
                    f"set the environment variable {self.api_key_env}"
                    if not os.environ.get(self.api_key_env)
                    else f"check the key in {self.api_key_env}"
                )
                raise BackendError(f"LLM server at {self.url} refused the request (HTTP {status}): {hint}")
            if status >= 400:
                raise BackendError(f"LLM server at {self.url} answered HTTP {status}: {_snippet(text)}")
            return _content(data, text, self.url)

    # ------------------------------------------------------------------ transport

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", **self.extra_headers}
        key = os.environ.get(self.api_key_env, "") if self.api_key_env else ""
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _post(self, body: dict[str, Any]) -> tuple[int, Any, str]:
        """POST with retries; returns (status, parsed JSON or None, text) of the final answer.

        Retried: timeouts, connection errors, 429 and 5xx. After the last attempt a BackendError
        names the URL, the last status and the last error.
        """
        import httpx

        UNREACHABLE.check(self.url)
        last_error = ""
        last_status: int | None = None
        only_connect_errors = True
        attempts = self.retries + 1
        with httpx.Client(timeout=self.timeout) as client:
            for attempt in range(attempts):
                wait = self.backoff * (2**attempt)
                try:
                    resp = client.post(self.url, json=body, headers=self._headers())
                except httpx.TimeoutException:
                    only_connect_errors = False
                    last_error = f"timed out after {self.timeout:g} s"
                except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.NetworkError) as exc:
                    if not isinstance(exc, httpx.ConnectError):
                        only_connect_errors = False
                    last_error = f"{type(exc).__name__}: {exc}"
                else:
                    text = resp.text
                    if resp.status_code == 429 or resp.status_code >= 500:
                        only_connect_errors = False
                        last_status = resp.status_code
                        last_error = _snippet(text)
                        retry_after = resp.headers.get("retry-after", "")
                        if retry_after.replace(".", "", 1).isdigit():
                            wait = max(wait, min(float(retry_after), MAX_RETRY_AFTER))
                    else:
                        UNREACHABLE.clear(self.url)
                        try:
                            data = resp.json()
                        except ValueError:
                            data = None
                        return resp.status_code, data, text
                if attempt + 1 < attempts:
                    time.sleep(wait)
        tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
        if last_status is None:  # no HTTP answer at all (refused, unreachable, timed out)
            UNREACHABLE.mark(self.url, last_error)
        if only_connect_errors:
            raise BackendError(
                f"cannot reach LLM server at {self.url} ({tries}; last error: {last_error}): is the server running?"
            )
        status = f"HTTP {last_status}" if last_status is not None else "no HTTP status"
        raise BackendError(f"LLM server at {self.url} failed after {tries}: last status {status}; last error: {last_error}")


def _response_format(mode: JsonMode, schema: dict[str, Any] | None) -> dict[str, Any] | None:
    if schema is None or mode == "none":
        return None
    if mode == "object":
        return {"type": "json_object"}
    name = str(schema.get("title") or "answer")
    safe = "".join(c if c.isalnum() or c in "_-" else "_" for c in name)[:64] or "answer"
    return {"type": "json_schema", "json_schema": {"name": safe, "schema": schema, "strict": False}}


def _content(data: Any, text: str, url: str) -> str:
    try:
        message = data["choices"][0]["message"]
    except (TypeError, KeyError, IndexError):
        raise BackendError(f"LLM server at {url} sent an answer without choices[0].message: {_snippet(text)}") from None
    content = message.get("content") if isinstance(message, dict) else None
    if content is None:
        return ""
    if isinstance(content, list):  # some servers send content parts
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return str(content)


def _snippet(text: str, limit: int = 300) -> str:
    one = " ".join(text.split())
    return one if len(one) <= limit else one[:limit] + "…"
