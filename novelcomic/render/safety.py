"""A prompt safety filter, run before any image is generated, and a hook for image classifiers.

:func:`check_prompt` looks a text up in term lists by category (``assets/safety/terms.yaml``:
sexual, minors_sexual, violence_gore, self_harm, hate, drugs), in Chinese and English, plus the
project's own ``safety.extra_terms``. Terms in Latin letters match whole words only (with an
optional plural ending), so "ass" never matches "assassin" or "classic"; terms holding Chinese
characters match as substrings, since Chinese has no spaces. A "combination" blocks words that are
harmless alone when another category also matches (a child in a sexual prompt → minors_sexual).

The lists are deliberately short and specific: novels are full of fights, deaths and romance, and
only explicit content should stop a shot. A blocked shot is not generated; the caller raises
:class:`BlockedShotError` or marks the shot blocked in its report.

An image classifier (NSFW detector, say) can be handed to a backend as any callable following
:class:`ImageClassifier`; :func:`check_image` turns its answer into a :class:`SafetyVerdict`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from novelcomic.errors import BackendError, NovelcomicError
from novelcomic.models import SafetyConfig

if TYPE_CHECKING:
    from PIL.Image import Image

#: The built-in term lists (relative to the repository root).
TERMS_FILE = Path(__file__).resolve().parents[2] / "assets" / "safety" / "terms.yaml"

_CJK_RE = re.compile(r"[\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


@dataclass(frozen=True)
class SafetyVerdict:
    """The filter's answer: ``blocked`` with the ``category`` and the ``term`` that matched."""

    blocked: bool
    category: str | None = None
    term: str | None = None
    score: float | None = None  # an image classifier's confidence, when one decided

    @property
    def reason(self) -> str:
        if not self.blocked:
            return "allowed"
        return f"{self.category}: {self.term!r}"


ALLOWED = SafetyVerdict(False)


class BlockedShotError(NovelcomicError):
    """A shot was not generated because its prompt (or image) is on the safety filter's lists."""

    def __init__(self, shot_id: str, category: str | None, term: str | None, *, chapter: str | None = None) -> None:
        self.shot_id, self.category, self.term, self.chapter = shot_id, category, term, chapter
        where = f"shot {shot_id!r}" + (f" of chapter {chapter!r}" if chapter else "")
        hint = (
            f"rewrite the shot's image_prompt in storyboards/{chapter}.yaml" if chapter else "rewrite the shot's prompt"
        )
        super().__init__(
            f"{where} was blocked by the safety filter: category {category!r}, term {term!r}; "
            f"{hint}, or change safety.extra_terms / safety.enabled in project.yaml",
            field="safety",
        )


class ImageClassifier(Protocol):
    """A callable judging a generated image: ``(blocked, label, score)``."""

    def __call__(self, image: "Image") -> tuple[bool, str, float]: ...


# --------------------------------------------------------------------------- term lists


@dataclass(frozen=True)
class _Matcher:
    """One category's terms, compiled: a regex for Latin terms, a tuple for CJK ones."""

    category: str
    latin: re.Pattern[str] | None
    cjk: tuple[str, ...]

    def find(self, text: str, folded: str) -> str | None:
        hits: list[tuple[int, str]] = []
        if self.latin is not None:
            m = self.latin.search(text)
            if m:
                hits.append((m.start(), m.group(0)))
        for term in self.cjk:
            i = folded.find(term)
            if i >= 0:
                hits.append((i, text[i : i + len(term)]))
        return min(hits)[1] if hits else None


@dataclass(frozen=True)
class _Combination:
    category: str
    with_category: str
    matcher: _Matcher


@dataclass(frozen=True)
class TermLists:
    """Compiled term lists: categories in the order they are checked, and combinations."""

    matchers: tuple[_Matcher, ...]
    combinations: tuple[_Combination, ...]

    @property
    def categories(self) -> list[str]:
        return [m.category for m in self.matchers]


def _compile(category: str, terms: Iterable[str]) -> _Matcher:
    latin, cjk = [], []
    for term in terms:
        if not isinstance(term, str) or not term.strip():
            raise NovelcomicError(f"safety term {term!r} in category {category!r} must be a non-empty string")
        term = term.strip()
        (cjk if _CJK_RE.search(term) else latin).append(term)
    pattern = None
    if latin:
        words = sorted({t.lower() for t in latin}, key=len, reverse=True)
        alts = "|".join(r"[\s\-_]+".join(re.escape(p) for p in re.split(r"[\s\-_]+", w)) for w in words)
        # whole words only: no ASCII letter or digit on either side (CJK neighbours are fine)
        pattern = re.compile(rf"(?<![A-Za-z0-9])(?:{alts})(?:e?s)?(?![A-Za-z0-9])", re.IGNORECASE)
    return _Matcher(category, pattern, tuple(dict.fromkeys(t.casefold() for t in cjk)))


def _terms_of(entry: Any, where: str) -> list[str]:
    if entry is None:
        return []
    if isinstance(entry, list):
        return entry
    if isinstance(entry, Mapping):
        out: list[str] = []
        for lang, terms in entry.items():
            if lang == "with":
                continue
            if not isinstance(terms, list):
                raise NovelcomicError(f"{where}.{lang} must be a list of terms, not {terms!r}")
            out.extend(terms)
        return out
    raise NovelcomicError(f"{where} must be a list of terms or a mapping of language → terms, not {entry!r}")


@functools.lru_cache(maxsize=4)
def load_terms(path: str | None = None) -> TermLists:
    """The term lists in ``path`` (default: the built-in ``assets/safety/terms.yaml``), compiled."""
    import yaml

    file = Path(path) if path else TERMS_FILE
    if not file.is_file():
        raise NovelcomicError(f"the safety term lists are missing: {file} not found")
    data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    categories = data.get("categories") or {}
    if not isinstance(categories, Mapping):
        raise NovelcomicError("categories must map category names to term lists", file=file)
    matchers = [_compile(str(cat), _terms_of(entry, f"categories.{cat}")) for cat, entry in categories.items()]
    combos = []
    for cat, entry in (data.get("combinations") or {}).items():
        if not isinstance(entry, Mapping) or not entry.get("with"):
            raise NovelcomicError(f"combinations.{cat} needs 'with: <category>' and its terms", file=file)
        combos.append(_Combination(str(cat), str(entry["with"]), _compile(str(cat), _terms_of(entry, f"combinations.{cat}"))))
    return TermLists(tuple(matchers), tuple(combos))


def _with_extra(base: TermLists, extra: Mapping[str, Sequence[str]]) -> TermLists:
    if not extra:
        return base
    matchers = list(base.matchers)
    for cat, terms in extra.items():
        if isinstance(terms, str) or not isinstance(terms, Sequence):
            raise NovelcomicError(f"safety.extra_terms.{cat} must be a list of terms, not {terms!r}", field="safety.extra_terms")
        matchers.append(_compile(str(cat), list(terms)))
    return TermLists(tuple(matchers), base.combinations)


# --------------------------------------------------------------------------- checks


def check_prompt(text: str, config: SafetyConfig | None = None, *, terms: TermLists | None = None) -> SafetyVerdict:
    """Whether ``text`` (an image prompt) may be generated under ``config``.

    Combinations are checked first (they name the graver category), then every category in the
    order of the term file, then the project's extra terms.
    """
    config = config or SafetyConfig()
    if not isinstance(text, str):
        raise NovelcomicError(f"prompt {text!r} must be text")
    if not config.enabled or not text.strip():
        return ALLOWED
    lists = _with_extra(terms or load_terms(), config.extra_terms)
    folded = text.casefold()
    if len(folded) != len(text):  # casefold changed lengths (ß → ss): keep indexes aligned
        folded = text
    found: dict[str, str] = {}
    for m in lists.matchers:
        hit = m.find(text, folded)
        if hit is not None:
            found.setdefault(m.category, hit)
    for combo in lists.combinations:
        if combo.category in found:  # its own terms matched outright
            return SafetyVerdict(True, combo.category, found[combo.category])
        if combo.with_category in found:
            hit = combo.matcher.find(text, folded)
            if hit is not None:
                return SafetyVerdict(True, combo.category, f"{hit} + {found[combo.with_category]}")
    for category, hit in found.items():
        return SafetyVerdict(True, category, hit)
    return ALLOWED


def check_texts(texts: Iterable[str], config: SafetyConfig | None = None) -> SafetyVerdict:
    """The first blocking verdict among ``texts`` (a prompt and the descriptions it is built from)."""
    for text in texts:
        verdict = check_prompt(text or "", config)
        if verdict.blocked:
            return verdict
    return ALLOWED


def check_image(image: "Image", classifier: ImageClassifier) -> SafetyVerdict:
    """Ask ``classifier`` about a generated image; a malformed answer is a BackendError."""
    try:
        answer = classifier(image)
        blocked, label, score = answer
    except (TypeError, ValueError) as exc:
        raise BackendError(f"image classifier {classifier!r} must return (blocked, label, score): {exc}") from exc
    if not isinstance(blocked, bool):
        raise BackendError(f"image classifier {classifier!r} returned blocked={blocked!r}, expected true or false")
    if not blocked:
        return SafetyVerdict(False, None, None, float(score))
    return SafetyVerdict(True, f"image:{label}", str(label), float(score))


def raise_if_blocked(verdict: SafetyVerdict, shot_id: str, chapter: str | None = None) -> None:
    if verdict.blocked:
        raise BlockedShotError(shot_id, verdict.category, verdict.term, chapter=chapter)


__all__ = [
    "ALLOWED", "BlockedShotError", "ImageClassifier", "SafetyVerdict", "TERMS_FILE", "TermLists",
    "check_image", "check_prompt", "check_texts", "load_terms", "raise_if_blocked",
]
