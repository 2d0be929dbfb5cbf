"""Any OpenAI-compatible chat-completions server: Ollama, vLLM, LM Studio, llama.cpp server,
DeepSeek, OpenAI.

One HTTP call per :meth:`OpenAIBackend.complete` (``POST {base_url}/chat/completions``) with
retries, backoff, Retry-After and the "server down" breaker of :mod:`novelcomic.remote`. JSON output is
requested the strongest way the server accepts: ``response_format`` ``json_schema``, then
``json_object``, then nothing; a server that rejects one (HTTP 400 about ``response_format``)
is asked the next way, and the instance remembers what worked.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from novelcomic import remote
from novelcomic.errors import BackendError, NovelcomicError
from novelcomic.llm.base import Message

JsonMode = Literal["schema", "object", "none"]
JSON_MODES: tuple[JsonMode, ...] = ("schema", "object", "none")
MAX_RETRY_AFTER = 30.0
REPROBE_SECONDS = 60.0  # a server that did not answer is asked again (once) after this long


UNREACHABLE = remote.BREAKER  # the process-wide breaker of novelcomic.remote, keyed by base URL


def forget_unreachable(clock: Any = time.monotonic) -> remote.Breaker:
    """Start over (tests): no server is remembered as down; returns the (shared) breaker."""
    return remote.reset_breaker(clock)


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
        self._client: remote.RemoteClient | None = None

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
            if status >= 400:
                raise self.client().status_error(status, self.url, text)
            return _content(data, text, self.url)

    # ------------------------------------------------------------------ transport

    def client(self) -> remote.RemoteClient:
        """The shared HTTP layer's client for this server (created once per instance)."""
        if self._client is None:
            self._client = remote.RemoteClient(remote.RemoteConfig(
                base_url=self.base_url, label="LLM server", api_key_env=self.api_key_env or None,
                timeout=self.timeout, connect_timeout=min(self.timeout, remote.DEFAULT_CONNECT_TIMEOUT),
                retries=self.retries, backoff=self.backoff, max_retry_after=MAX_RETRY_AFTER,
                probe_interval=REPROBE_SECONDS, headers={"Content-Type": "application/json", **self.extra_headers},
            ))
        return self._client

    def _post(self, body: dict[str, Any]) -> tuple[int, Any, str]:
        """POST through :mod:`novelcomic.remote` (retries on timeouts, connection errors, 429 and
        5xx; the process-wide breaker); returns (status, parsed JSON or None, text) of the answer.
        A 4xx is returned for :meth:`complete` to read (``response_format`` refusals, keys)."""
        reply = self.client().request("POST", "chat/completions", json=body, check=False)
        text = reply.text
        try:
            data = reply.json()
        except remote.RemoteError:
            data = None
        return reply.status, data, text


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
        raise BackendError(f"LLM server at {url} sent an answer without choices[0].message: {remote.snippet(text)}") from None
    content = message.get("content") if isinstance(message, dict) else None
    if content is None:
        return ""
    if isinstance(content, list):  # some servers send content parts
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return str(content)
