"""Typed answers from any language model: ask with a JSON schema, parse forgivingly, validate with
pydantic, and when the answer is wrong show the model its own output and the errors and ask again.

Every backend's answers go through :func:`generate_structured`, so a small local model and a
hosted API get the same robustness. Parsing tolerates what models commonly wrap JSON in (Markdown
fences, prose before and after), trailing commas, and “smart” quotes used *as JSON delimiters*
(smart quotes inside a JSON string are text and are kept: Chinese dialogue is full of them).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from novelcomic.errors import BackendError
from novelcomic.llm.base import LLMBackend, Message

T = TypeVar("T", bound=BaseModel)

MAX_ERRORS_SHOWN = 12
MAX_OUTPUT_SHOWN = 6000
FENCE_RE = re.compile(r"```[ \t]*(?:json|JSON|json5)?[ \t]*\n?(.*?)```", re.DOTALL)
SMART_OPEN = "“"
SMART_CLOSE = "”"


class LLMOutputError(BackendError):
    """The model never produced a valid answer within the allowed attempts."""

    def __init__(self, message: str, *, errors: list[str], output: str, attempts: int) -> None:
        super().__init__(message)
        self.errors = errors
        self.output = output
        self.attempts = attempts


class JSONParseError(ValueError):
    """The text holds no parseable JSON; the message says where it broke."""


@dataclass
class StructuredTrace:
    """What happened while getting one structured answer (for logs: "repaired after 1 retry")."""

    what: str = ""
    attempts: int = 0
    errors: list[list[str]] = field(default_factory=list)  # the errors of each failed attempt
    outputs: list[str] = field(default_factory=list)  # the raw answer of each attempt

    @property
    def repairs(self) -> int:
        """How many repair rounds were needed (0: the first answer was valid)."""
        return max(0, self.attempts - 1)

    def summary(self) -> str:
        label = self.what or "answer"
        if self.repairs == 0:
            return f"{label}: valid on the first attempt"
        return f"{label}: repaired after {self.repairs} {'retry' if self.repairs == 1 else 'retries'}"


# --------------------------------------------------------------------------- parsing


def extract_json(text: str) -> Any:
    """The JSON value in a model's answer.

    Tries, in order: the text as is; the inside of a ```json fence; the outermost ``{…}`` /
    ``[…]``; each of those after normalising smart-quote delimiters and dropping trailing commas.
    Raises :class:`JSONParseError` naming the first problem when nothing parses.
    """
    candidates: list[str] = [text.strip()]
    candidates += [m.group(1).strip() for m in FENCE_RE.finditer(text)]
    for c in list(candidates):
        outer = _outermost(c)
        if outer and outer not in candidates:
            candidates.append(outer)
    first_error: json.JSONDecodeError | None = None
    for c in candidates:
        if not c:
            continue
        for variant in (c, _normalise(c)):
            try:
                return json.loads(variant)
            except json.JSONDecodeError as exc:
                first_error = first_error or exc
    if first_error is None:
        raise JSONParseError("the answer is empty; expected a JSON object")
    return _raise_parse(candidates, first_error)


def _raise_parse(candidates: list[str], err: json.JSONDecodeError) -> Any:
    if not any(("{" in c or "[" in c) for c in candidates):
        raise JSONParseError("the answer contains no JSON object (no '{' found)")
    raise JSONParseError(f"invalid JSON: {err.msg} at line {err.lineno} column {err.colno}")


def _outermost(text: str) -> str | None:
    """From the first ``{`` or ``[`` to its matching bracket (string-aware), or to the last
    closing bracket of the same kind when the brackets never balance."""
    starts = [i for i in (text.find("{"), text.find("[")) if i >= 0]
    if not starts:
        return None
    start = min(starts)
    opener = text[start]
    closer = "}" if opener == "{" else "]"
    depth = 0
    in_str: str | None = None
    escape = False
    for i in range(start, len(text)):
        ch = text[i]
        if in_str:
            if escape:
                escape = False
            elif ch == "\\":
                escape = True
            elif ch == in_str:
                in_str = None
            continue
        if ch == '"':
            in_str = '"'
        elif ch == SMART_OPEN:
            in_str = SMART_CLOSE
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            if depth == 0:
                return text[start : i + 1]
    end = text.rfind(closer)
    return text[start : end + 1] if end > start else None


def _normalise(text: str) -> str:
    """Smart quotes that delimit JSON strings → ``"``; trailing commas before ``}``/``]`` dropped.

    String-aware: a smart quote inside a ``"…"`` string is text and stays; a ``"`` inside a
    ``“…”`` string is escaped.
    """
    out: list[str] = []
    in_str: str | None = None
    escape = False
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if in_str:
            if escape:
                escape = False
                out.append(ch)
            elif ch == "\\":
                escape = True
                out.append(ch)
            elif ch == in_str:
                in_str = None
                out.append('"')
            elif ch == '"' and in_str == SMART_CLOSE:
                out.append('\\"')
            else:
                out.append(ch)
        elif ch == '"':
            in_str = '"'
            out.append(ch)
        elif ch == SMART_OPEN:
            in_str = SMART_CLOSE
            out.append('"')
        elif ch == ",":
            j = i + 1
            while j < n and text[j] in " \t\r\n":
                j += 1
            if j < n and text[j] in "}]":
                i += 1
                continue  # trailing comma
            out.append(ch)
        else:
            out.append(ch)
        i += 1
    return "".join(out)


# --------------------------------------------------------------------------- validation


def format_validation_errors(exc: ValidationError) -> list[str]:
    """Concise ``path: message`` lines (``scenes.0.shots.2.shot_size: Input should be …``)."""
    lines = []
    for e in exc.errors():
        loc = ".".join(str(p) for p in e.get("loc", ())) or "(root)"
        msg = e.get("msg", "invalid")
        got = e.get("input")
        shown = ""
        if e.get("type") not in ("missing",) and isinstance(got, (str, int, float, bool)) and got is not None:
            shown = f" (got {json.dumps(got, ensure_ascii=False)[:60]})"
        lines.append(f"{loc}: {msg}{shown}")
    if len(lines) > MAX_ERRORS_SHOWN:
        lines = lines[:MAX_ERRORS_SHOWN] + [f"… and {len(lines) - MAX_ERRORS_SHOWN} more errors"]
    return lines


def parse_as(text: str, model_cls: type[T]) -> T:
    """Parse and validate one answer; raises JSONParseError or pydantic ValidationError."""
    data = extract_json(text)
    return model_cls.model_validate(data)


def schema_instruction(model_cls: type[BaseModel]) -> str:
    """The instruction (with the compact JSON schema) appended to the prompt, so backends that
    cannot enforce a schema still tell the model what to write."""
    schema = json.dumps(model_cls.model_json_schema(), ensure_ascii=False, separators=(",", ":"))
    return (
        "Answer with a single JSON object and nothing else (no Markdown, no comments). "
        f"It must match this JSON schema:\n{schema}"
    )


def generate_structured(
    llm: LLMBackend,
    messages: list[Message],
    model_cls: type[T],
    *,
    attempts: int = 3,
    what: str = "",
    temperature: float = 0.2,
    max_tokens: int | None = None,
    include_schema: bool = True,
    trace: StructuredTrace | None = None,
) -> T:
    """Ask ``llm`` for an instance of ``model_cls``; repair invalid answers up to ``attempts`` times.

    The request carries the model's JSON schema (``json_schema=`` for backends that enforce it,
    and, with ``include_schema``, in the prompt). An answer that does not parse or validate is
    sent back in a repair round: the model sees its own output and the errors with field paths.
    Pass a :class:`StructuredTrace` to learn how many attempts it took. After ``attempts`` failed
    answers raises :class:`LLMOutputError` with the last errors. Transport failures
    (``BackendError``) propagate at once: retrying them is the backend's job.
    """
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, got {attempts}")
    trace = trace if trace is not None else StructuredTrace()
    trace.what = trace.what or what
    schema = model_cls.model_json_schema()
    convo = list(messages)
    if include_schema:
        convo.append(Message("system", schema_instruction(model_cls)))
    errors: list[str] = []
    output = ""
    for n in range(1, attempts + 1):
        trace.attempts = n
        output = llm.complete(convo, json_schema=schema, temperature=temperature, max_tokens=max_tokens)
        trace.outputs.append(output)
        try:
            return parse_as(output, model_cls)
        except JSONParseError as exc:
            errors = [str(exc)]
        except ValidationError as exc:
            errors = format_validation_errors(exc)
        trace.errors.append(errors)
        shown = output if len(output) <= MAX_OUTPUT_SHOWN else output[:MAX_OUTPUT_SHOWN] + "\n…(truncated)"
        convo = list(convo) + [
            Message("assistant", shown),
            Message(
                "user",
                "Your answer is not valid:\n"
                + "\n".join(f"- {e}" for e in errors)
                + "\nWrite the whole answer again as one corrected JSON object that matches the schema. "
                "Only the JSON, nothing else.",
            ),
        ]
    label = f" for {what}" if what else ""
    raise LLMOutputError(
        f"the language model gave no valid answer{label} after {attempts} attempt{'s' if attempts != 1 else ''}: "
        + "; ".join(errors[:3]),
        errors=errors,
        output=output,
        attempts=attempts,
    )
