"""The LLM interface. Backends only turn messages into text; parsing, validation and repair are
shared (``novelcomic.llm.structured``), so every backend gets the same robustness."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol


@dataclass
class Message:
    role: Literal["system", "user", "assistant"]
    content: str


class LLMBackend(Protocol):
    name: str
    # Roughly how many tokens of prompt + answer the model takes; chunking uses it.
    context_tokens: int

    def complete(
        self,
        messages: list[Message],
        *,
        json_schema: dict[str, Any] | None = None,
        temperature: float = 0.2,
        max_tokens: int | None = None,
    ) -> str:
        """The model's answer as text. ``json_schema`` asks for JSON matching it where the
        backend can enforce that (response_format, constrained decoding); callers still
        validate. Transport failures raise ``novelcomic.errors.BackendError``."""
        ...
