"""How a character's LoRA reaches rendering (no torch here: the pipeline imports this for hashes).

- :func:`lora_digest`: what a LoRA *is*, for the shot hash: the SHA-256 of its weights, so a
  retrained file re-draws that character's shots, while moving the project (a new absolute path)
  re-draws nothing. Remembered per process until the file changes (mtime, size).
- :func:`with_triggers`: the prompt with the trigger words of the characters whose LoRA is loaded.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from novelcomic.fsutil import file_digest as _file_digest

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".ckpt")


def lora_digest(path: str | os.PathLike[str]) -> str | None:
    """``sha256:<hex>`` of a LoRA file, or of the weight files in a LoRA directory (names and
    contents); None when ``path`` is not on disk (a hub id, a missing file: hashed as written)."""
    p = Path(path)
    if p.is_file():
        return "sha256:" + _file_digest(p)
    if p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix in WEIGHT_SUFFIXES)
        if not files:
            return None
        parts = [f"{f.relative_to(p).as_posix()}={_file_digest(f)}" for f in files]
        from novelcomic.fsutil import sha256_bytes

        return "sha256:" + sha256_bytes("\n".join(parts).encode("utf-8"))
    return None


def lora_look(look: Mapping[str, Any]) -> dict[str, Any]:
    """A character's look (``pipeline.character_look``, LoRA path resolved) with the LoRA's path
    replaced by its content digest where the file is on disk."""
    out = dict(look)
    lora = out.get("lora")
    if isinstance(lora, str) and lora:
        digest = lora_digest(lora)
        if digest is not None:
            out["lora"] = digest
    return out


def with_triggers(prompt: str, characters: Iterable[Any]) -> str:
    """``prompt`` with the ``lora_trigger`` of each character that has a LoRA put first (once)."""
    words = []
    for c in characters:
        trigger = (getattr(c, "lora_trigger", None) or "").strip()
        if getattr(c, "lora", None) and trigger and trigger not in words and trigger not in prompt.split(", "):
            words.append(trigger)
    if not words:
        return prompt
    return ", ".join([*words, prompt]) if prompt else ", ".join(words)


__all__ = ["lora_digest", "lora_look", "with_triggers"]
