"""Ingest stage: decode, clean and split a novel into chapters; create projects.

The public names are loaded on first use, so ``import novelcomic.ingest`` stays cheap (no
charset-normalizer, SQLModel or pydantic models until a function that needs them is touched).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from novelcomic.ingest.clean import clean_text, detect_language
    from novelcomic.ingest.create import create_project
    from novelcomic.ingest.decode import decode_novel
    from novelcomic.ingest.split import Chapter, split_chapters

__all__ = ["Chapter", "clean_text", "create_project", "decode_novel", "detect_language", "split_chapters"]

_WHERE = {
    "Chapter": "novelcomic.ingest.split",
    "split_chapters": "novelcomic.ingest.split",
    "clean_text": "novelcomic.ingest.clean",
    "detect_language": "novelcomic.ingest.clean",
    "decode_novel": "novelcomic.ingest.decode",
    "create_project": "novelcomic.ingest.create",
}


def __getattr__(name: str) -> Any:
    """Import the submodule that defines ``name`` on first access (PEP 562)."""
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
