"""A local causal language model run with 🤗 transformers (a model directory or a hub id).

The model and tokenizer are loaded on the first call (so creating the backend is cheap) through
:func:`load_model`, an ``lru_cache``'d loader keyed by (model, device, dtype, trust_remote_code):
several backends naming the same model share one copy. Prompts go through the tokenizer's chat
template (``add_generation_prompt=True``) and only the newly generated tokens are decoded.

``constrained=True`` decodes with `outlines <https://github.com/dottxt-ai/outlines>`_ so the output
always matches the JSON schema; outlines is optional and checked when the backend is created.
"""

from __future__ import annotations

import importlib.util
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from novelcomic.errors import BackendError, NovelcomicError
from novelcomic.devices import DTYPES
from novelcomic.llm.base import Message

DEVICES = ("auto", "cpu", "cuda", "mps")
DEFAULT_CONTEXT = 4096
MAX_CONTEXT = 32768


class TransformersBackend:
    """``AutoModelForCausalLM`` + ``AutoTokenizer`` from ``model`` (a local directory or hub id).

    ``device``: auto (cuda → mps → cpu), cpu, cuda, cuda:N or mps. ``dtype``: auto (bf16/fp16 on
    CUDA, fp16 on MPS, fp32 on CPU) or float32/float16/bfloat16. ``context_tokens``: default the
    model config's ``max_position_embeddings`` (capped at 32768).
    """

    name = "transformers"

    def __init__(
        self,
        model: str,
        device: str = "auto",
        dtype: str = "auto",
        max_new_tokens: int = 1024,
        trust_remote_code: bool = False,
        context_tokens: int | None = None,
        constrained: bool = False,
    ) -> None:
        if not model or not isinstance(model, str):
            raise NovelcomicError("the transformers LLM backend needs model: a model directory or hub id", field="llm.options.model")
        if device not in DEVICES and not device.startswith("cuda:"):
            raise NovelcomicError(f"device {device!r} must be one of {', '.join(DEVICES)} or cuda:N", field="llm.options.device")
        if dtype != "auto" and dtype not in DTYPES:
            raise NovelcomicError(f"dtype {dtype!r} must be auto or one of {', '.join(sorted(DTYPES))}", field="llm.options.dtype")
        if max_new_tokens < 1:
            raise NovelcomicError(f"max_new_tokens {max_new_tokens!r} must be positive", field="llm.options.max_new_tokens")
        if context_tokens is not None and context_tokens < 256:
            raise NovelcomicError(f"context_tokens {context_tokens!r} is too small (at least 256)", field="llm.options.context_tokens")
        if constrained and importlib.util.find_spec("outlines") is None:
            raise NovelcomicError(
                "constrained: true needs the outlines package: pip install outlines (or set constrained: false)",
                field="llm.options.constrained",
            )
        self.model = model
        self.device = device
        self.dtype = dtype
        self.max_new_tokens = int(max_new_tokens)
        self.trust_remote_code = bool(trust_remote_code)
        self.constrained = bool(constrained)
        self._context_tokens = context_tokens

    # ------------------------------------------------------------------ public

    @property
    def context_tokens(self) -> int:
        """Prompt + answer tokens the model takes (from its config when not given)."""
        if self._context_tokens is None:
            self._context_tokens = _config_context(self.model, self.trust_remote_code)
        return self._context_tokens

    def complete(
        self,
        messages: list[Message],
        *,
        json_schema: dict[str, Any] | None = None,
        temperature: float = 0.2,
        max_tokens: int | None = None,
    ) -> str:
        """Generate the assistant's answer to ``messages`` (greedy when temperature is 0)."""
        import torch

        if not messages:
            raise ValueError("complete() needs at least one message")
        loaded = load_model(self.model, _resolve_device(self.device), _resolve_dtype(self.device, self.dtype), self.trust_remote_code)
        tok, lm = loaded.tokenizer, loaded.model
        prompt = _chat_prompt(tok, messages)
        new_tokens = min(max_tokens or self.max_new_tokens, self.max_new_tokens)
        if self.constrained and json_schema is not None:
            return _outlines_generate(lm, tok, prompt, json_schema, new_tokens)
        enc = tok(prompt, return_tensors="pt", add_special_tokens=False)
        n_in = enc["input_ids"].shape[1]
        if n_in + new_tokens > self.context_tokens:
            raise BackendError(
                f"the prompt is {n_in} tokens; with {new_tokens} new tokens it exceeds {self.model}'s context of "
                f"{self.context_tokens} tokens (use a smaller chunk_tokens for the planner)"
            )
        enc = {k: v.to(lm.device) for k, v in enc.items()}
        gen: dict[str, Any] = {"max_new_tokens": new_tokens, "do_sample": temperature > 0}
        if temperature > 0:
            gen["temperature"] = float(temperature)
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        if pad is not None:
            gen["pad_token_id"] = pad
        try:
            with torch.inference_mode():
                out = lm.generate(**enc, **gen)
        except RuntimeError as exc:
            raise BackendError(f"generation with {self.model} failed: {exc}") from exc
        return tok.decode(out[0][n_in:], skip_special_tokens=True)


# --------------------------------------------------------------------------- loading


class LoadedModel:
    """A tokenizer and a model in eval mode, on their device."""

    def __init__(self, tokenizer: Any, model: Any) -> None:
        self.tokenizer = tokenizer
        self.model = model


def _check_source(model: str) -> None:
    """A name that can only be a path (absolute, ./, ~, or more than one '/') must exist."""
    path = Path(model).expanduser()
    if path.is_dir():
        return
    if model.startswith((".", "/", "~")) or path.is_absolute() or model.count("/") > 1:
        raise BackendError(f"LLM model directory {model} does not exist", field="llm.options.model")


@lru_cache(maxsize=2)
def load_model(model: str, device: str, dtype: str, trust_remote_code: bool = False) -> LoadedModel:
    """Load (once per process and key) the tokenizer and model. Raises BackendError naming the
    model when the directory is missing or the hub id cannot be fetched (offline)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _check_source(model)
    source = str(Path(model).expanduser()) if Path(model).expanduser().is_dir() else model
    try:
        tok = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
        lm = AutoModelForCausalLM.from_pretrained(source, dtype=getattr(torch, dtype), trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BackendError(
            f"cannot load LLM model {model}: {first} (offline? download it first, e.g. `hf download {model} "
            f"--local-dir DIR`, and set model: DIR)"
        ) from exc
    lm.to(device)
    lm.eval()
    return LoadedModel(tok, lm)


def _config_context(model: str, trust_remote_code: bool) -> int:
    from transformers import AutoConfig

    _check_source(model)
    try:
        cfg = AutoConfig.from_pretrained(str(Path(model).expanduser()) if Path(model).expanduser().is_dir() else model,
                                         trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise BackendError(f"cannot load LLM model {model}: {str(exc).strip().splitlines()[0] if str(exc).strip() else exc!r}") from exc
    n = getattr(cfg, "max_position_embeddings", None) or DEFAULT_CONTEXT
    return int(min(n, MAX_CONTEXT))


def _resolve_device(device: str) -> str:
    if device != "auto":
        return device
    from novelcomic.devices import auto_device

    return auto_device()


def _resolve_dtype(device: str, dtype: str) -> str:
    if dtype != "auto":
        return DTYPES[dtype]
    from novelcomic.devices import auto_dtype

    return auto_dtype(_resolve_device(device))


def _chat_prompt(tok: Any, messages: list[Message]) -> str:
    msgs = [{"role": m.role, "content": m.content} for m in messages]
    if getattr(tok, "chat_template", None):
        return tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    # No template (a base model): a plain transcript the model continues as the assistant.
    return "".join(f"{m['role']}: {m['content']}\n" for m in msgs) + "assistant: "


def _outlines_generate(lm: Any, tok: Any, prompt: str, schema: dict[str, Any], max_new_tokens: int) -> str:
    """Schema-constrained decoding with outlines 1.x (``from_transformers`` + ``JsonSchema``)."""
    import outlines
    from outlines.types import JsonSchema

    om = outlines.from_transformers(lm, tok)
    result = om(prompt, JsonSchema(json.dumps(schema)), max_new_tokens=max_new_tokens)
    return result if isinstance(result, str) else json.dumps(result, ensure_ascii=False)
