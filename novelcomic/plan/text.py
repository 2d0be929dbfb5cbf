"""Text utilities for planners: language detection, paragraphs and scene breaks, quotes, sentences.

Everything here is pure and offline. Offsets are kept so that a planner can point back at the
passage of the chapter each piece came from (``Shot.source``).

- :func:`split_paragraphs`: non-empty lines → :class:`Paragraph` (with scene-break/blank-line flags)
- :func:`split_quotes`: a paragraph → narration and quote :class:`Segment` s
  (“” 「」 『』 ‘’ "" and, cautiously, straight ``'…'``)
- :func:`sentence_spans` / :func:`split_sentences`: Chinese (。！？…… + closing quotes) and English;
  a sentence longer than :data:`LINE_MAX` is cut at clause boundaries (；;： first, then ，,、 and
  dashes), never inside a clause
- :func:`ends_mid_clause` / :func:`lines_cut_mid_clause`: whether a storyboard line ends where
  the text has no clause boundary (the measure for "lines cut mid-clause")
- :func:`split_chapters`: a minimal chapter-heading splitter (第X章 / Chapter N) for tests and tools
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Lang = Literal["zh", "en"]

CJK_RE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
LATIN_RE = re.compile(r"[A-Za-z]")
SCENE_BREAK_RE = re.compile(r"^\s*(?:[*＊#＃~～=＝·•◇◆○●☆★※§]\s*){3,}$|^\s*[-—_]{3,}\s*$")
CHAPTER_HEADING_RE = re.compile(
    r"^\s*(?:第\s*[0-9０-９零〇一二两三四五六七八九十百千]+\s*[章回节卷幕]"
    r"|(?:chapter|CHAPTER|Chapter)\s+(?:\d+|[IVXLCDM]+|[A-Za-z]+)\b)[^\n]*$"
)

# Opening quote mark → closing mark. Straight quotes are handled separately.
QUOTE_PAIRS: dict[str, str] = {"“": "”", "「": "」", "『": "』", "‘": "’", "«": "»"}
CLOSING_QUOTES = "”」』’\"'»）)】"
ZH_TERMINALS = "。！？!?…；"
EN_ABBREVIATIONS = frozenset(
    {"mr", "mrs", "ms", "dr", "st", "jr", "sr", "prof", "capt", "col", "gen", "lt", "sgt", "mt", "vs", "etc", "no"}
)


@dataclass(frozen=True)
class Paragraph:
    """One non-empty line of a chapter.

    ``start``/``end`` are offsets in the chapter text; ``scene_break_before`` is true when a
    ``***``-style line precedes it, ``blank_before`` when at least one blank line does.
    """

    text: str
    start: int
    end: int
    scene_break_before: bool = False
    blank_before: bool = False


@dataclass(frozen=True)
class Segment:
    """A run of narration or one quotation inside a paragraph.

    For quotes ``text`` is the inside of the quote marks (stripped) and ``raw`` includes them;
    for narration both are the same. ``start``/``end`` cover ``raw`` in the chapter text.
    """

    kind: Literal["narration", "quote"]
    text: str
    raw: str
    start: int
    end: int

    @property
    def is_quote(self) -> bool:
        return self.kind == "quote"


# --------------------------------------------------------------------------- language


def detect_language(text: str) -> Lang:
    """``"zh"`` when CJK characters make up a fair share of the letters, else ``"en"``."""
    sample = text[:20000]
    cjk = len(CJK_RE.findall(sample))
    latin = len(LATIN_RE.findall(sample))
    return "zh" if cjk and cjk * 5 >= latin else "en"


def text_size(text: str, lang: Lang) -> int:
    """How long a piece of text is when spoken: characters for Chinese, words for English."""
    if lang == "zh":
        return len(re.sub(r"\s", "", text))
    return len(text.split())


# --------------------------------------------------------------------------- paragraphs & chapters


def is_scene_break(line: str) -> bool:
    """A line such as ``***``, ``* * *``, ``———`` or ``◇◇◇`` that separates scenes."""
    return bool(line.strip()) and bool(SCENE_BREAK_RE.match(line))


def is_chapter_heading(line: str) -> bool:
    """``第三章 …``, ``第12回``, ``Chapter 4: …``, ``CHAPTER IV``."""
    return bool(CHAPTER_HEADING_RE.match(line)) and len(line.strip()) <= 60


def split_paragraphs(text: str) -> list[Paragraph]:
    """Every non-empty, non-break line as a paragraph, with its offsets and what precedes it."""
    out: list[Paragraph] = []
    pos = 0
    pending_break = False
    pending_blank = False
    for raw in text.splitlines(keepends=True):
        line = raw.rstrip("\r\n")
        start = pos
        pos += len(raw)
        stripped = line.strip().strip("\u3000")
        if not stripped:
            pending_blank = True
            continue
        if is_scene_break(stripped):
            pending_break = True
            continue
        lead = len(line) - len(line.lstrip(" \t\u3000"))
        p_start = start + lead
        out.append(Paragraph(stripped, p_start, p_start + len(stripped), pending_break, pending_blank))
        pending_break = pending_blank = False
    return out


def paragraph_groups(paragraphs: list[Paragraph]) -> list[list[int]]:
    """Indices of paragraphs grouped into blank-line-separated blocks.

    When no block holds more than one paragraph (one paragraph per line with no blank lines,
    or a blank line after every paragraph) every paragraph is its own group.
    """
    groups: list[list[int]] = []
    for i, p in enumerate(paragraphs):
        if not groups or p.blank_before or p.scene_break_before:
            groups.append([i])
        else:
            groups[-1].append(i)
    if len(groups) <= 1 or all(len(g) == 1 for g in groups):
        return [[i] for i in range(len(paragraphs))]
    return groups


def strip_heading(text: str, title: str = "") -> tuple[int, str]:
    """Offset where the body starts, and the heading found (``""`` when none).

    A first non-empty line that is a chapter heading (or equals ``title``) is skipped.
    """
    offset = 0
    for raw in text.splitlines(keepends=True):
        line = raw.strip().strip("\u3000")
        if not line:
            offset += len(raw)
            continue
        if is_chapter_heading(line) or (title and line == title.strip()):
            return offset + len(raw), line
        break
    return 0, ""


def heading_title(heading: str) -> str:
    """The title part of a heading: ``第一章 河边`` → ``河边``, ``Chapter 1: The Bird`` → ``The Bird``."""
    m = re.match(
        r"^\s*(?:第\s*[0-9０-９零〇一二两三四五六七八九十百千]+\s*[章回节卷幕]|(?:chapter)\s+\S+?)[\s:：.,、—-]*(.*)$",
        heading,
        re.IGNORECASE,
    )
    return (m.group(1) if m else heading).strip()


def split_chapters(text: str) -> list[tuple[str, str]]:
    """A minimal splitter on chapter headings: ``[(heading, body), …]``.

    Text before the first heading is dropped when it is short (a title line); this is a helper
    for tests and tools, the ingest stage has the real splitter.
    """
    chapters: list[tuple[str, str]] = []
    heading: str | None = None
    body: list[str] = []
    for line in text.splitlines():
        if is_chapter_heading(line.strip()):
            if heading is not None:
                chapters.append((heading, "\n".join(body).strip("\n")))
            heading, body = line.strip(), []
        else:
            body.append(line)
    if heading is not None:
        chapters.append((heading, "\n".join(body).strip("\n")))
    elif text.strip():
        chapters.append(("", text.strip("\n")))
    return chapters


# --------------------------------------------------------------------------- quotes


def _straight_single_spans(text: str) -> list[tuple[int, int]]:
    """``'…'`` quotes, only opening after a space/start and closing after punctuation."""
    spans: list[tuple[int, int]] = []
    for m in re.finditer(r"(?:(?<=^)|(?<=[\s(\[—:]))'(?=\S)(.+?)(?<=[.,!?;:…—-])'(?![A-Za-z])", text):
        spans.append((m.start(), m.end()))
    return spans


def _quote_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of every quotation in ``text``, marks included; unclosed quotes run to the end."""
    spans: list[tuple[int, int]] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in QUOTE_PAIRS:
            close = QUOTE_PAIRS[ch]
            j = _find_close(text, i + 1, close)
            spans.append((i, j + 1 if j >= 0 else n))
            i = (j + 1) if j >= 0 else n
            continue
        if ch == '"':
            j = text.find('"', i + 1)
            spans.append((i, j + 1 if j >= 0 else n))
            i = (j + 1) if j >= 0 else n
            continue
        i += 1
    if not spans and "'" in text:
        spans = _straight_single_spans(text)
    return spans


def _find_close(text: str, start: int, close: str) -> int:
    """Index of the closing mark; for ’ one that is not an apostrophe inside a word."""
    j = start
    while True:
        j = text.find(close, j)
        if j < 0 or close != "’":
            return j
        before = text[j - 1] if j > 0 else " "
        after = text[j + 1] if j + 1 < len(text) else " "
        if not (before.isalpha() and after.isalpha()):
            return j
        j += 1


def split_quotes(text: str, offset: int = 0) -> list[Segment]:
    """Narration and quote segments of one paragraph, in order; empty narration is dropped.

    ``offset`` is added to every position (the paragraph's start in the chapter).
    """
    segments: list[Segment] = []
    pos = 0
    for a, b in _quote_spans(text):
        if a > pos:
            _add_narration(segments, text[pos:a], offset + pos)
        raw = text[a:b]
        inner = (raw[1:-1] if _closes(raw) else raw[1:]).strip()
        if inner:
            segments.append(Segment("quote", inner, raw, offset + a, offset + b))
        pos = b
    if pos < len(text):
        _add_narration(segments, text[pos:], offset + pos)
    return segments


def _closes(raw: str) -> bool:
    opener = raw[0]
    closer = QUOTE_PAIRS.get(opener, opener)
    return len(raw) >= 2 and raw[-1] == closer


def _add_narration(segments: list[Segment], piece: str, start: int) -> None:
    lead = len(piece) - len(piece.lstrip())
    stripped = piece.strip()
    if stripped:
        segments.append(Segment("narration", stripped, stripped, start + lead, start + lead + len(stripped)))


# --------------------------------------------------------------------------- sentences


# A storyboard line longer than this (characters for Chinese, words for English) is cut at
# clause boundaries: about what a viewer reads in one subtitle or hears in one breath group.
LINE_MAX: dict[str, int] = {"zh": 80, "en": 45}
# Clause boundaries, strongest first: a cut goes after one of these.
_STRONG_CLAUSE_RE = {"zh": re.compile(r"[；;：:]+[”」』’）)]*"), "en": re.compile(r"[;:]+[\"”’)]*(?=\s)")}
_WEAK_CLAUSE_RE = {
    "zh": re.compile(r"(?:[，,、]|——|—)+[”」』’）)]*"),
    "en": re.compile(r"(?:,|\s--|--(?=\s)|\s?—|\s–)[\"”’)]*(?=\s)"),
}
# Where a line may end: sentence and clause punctuation, a dash, an ellipsis.
CLAUSE_END = frozenset("。！？；，、,.!?;:：…—–")
_LINE_CLOSERS = "”’」』\"'»›"
_TRAILING_MARKUP = "_*~＿"


def sentence_spans(text: str, lang: Lang, max_size: int | None = -1) -> list[tuple[int, int]]:
    """``(start, end)`` of each sentence of ``text`` (whitespace around them excluded).

    A sentence longer than ``max_size`` (:func:`text_size`; default :data:`LINE_MAX` for the
    language, None for no limit) is cut at clause boundaries (:func:`clause_spans`).
    """
    cuts = _zh_cuts(text) if lang == "zh" else _en_cuts(text)
    spans: list[tuple[int, int]] = []
    prev = 0
    for cut in [*cuts, len(text)]:
        piece = text[prev:cut]
        if piece.strip():
            lead = len(piece) - len(piece.lstrip())
            spans.append((prev + lead, prev + len(piece.rstrip())))
        prev = cut
    limit = LINE_MAX.get(lang, 0) if max_size == -1 else max_size
    if not limit:
        return spans
    out: list[tuple[int, int]] = []
    for a, b in spans:
        out.extend(clause_spans(text, lang, limit, a, b))
    return out


def clause_spans(text: str, lang: Lang, max_size: int, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """``text[start:end]`` cut at clause boundaries into pieces of at most ``max_size`` where it can be.

    A cut goes after a semicolon or colon when one splits the span into pieces of a fair size,
    else after a comma, 、 or dash; the cut nearest the middle wins, and each side is cut again
    if still too long. A span with no boundary stays whole: a line is never cut inside a clause.
    """
    end = len(text) if end is None else end
    if text_size(text[start:end], lang) <= max_size:
        return [(start, end)]
    least = max(1, max_size // 4)  # no piece smaller than this
    middle = (start + end) / 2
    for regex in (_STRONG_CLAUSE_RE[lang], _WEAK_CLAUSE_RE[lang]):
        cuts = [
            m.end()
            for m in regex.finditer(text, start, end)
            if m.end() < end
            and text_size(text[start : m.end()], lang) >= least
            and text_size(text[m.end() : end], lang) >= least
            and not _inside_quote(text, start, m.end())
        ]
        if cuts:
            cut = min(cuts, key=lambda c: abs(c - middle))
            right = cut + len(text[cut:end]) - len(text[cut:end].lstrip())
            return clause_spans(text, lang, max_size, start, cut) + clause_spans(text, lang, max_size, right, end)
    if text_size(text[start:end], lang) > 3 * max_size and not _inside_quote(text, start, end):
        # no boundary at all (a text without punctuation): a hard cut between words beats a page-long shot
        cut = _hard_cut(text, lang, start, end, max_size)
        if start < cut < end:
            return [(start, cut)] + clause_spans(text, lang, max_size, cut, end)
    return [(start, end)]


def _hard_cut(text: str, lang: Lang, start: int, end: int, max_size: int) -> int:
    """Where to cut a span with no clause boundary: after ``max_size`` characters (Chinese) or at
    the space after ``max_size`` words (English)."""
    if lang == "zh":
        return start + max_size
    spaces = [m.start() for m in re.finditer(r"\s+", text[start:end])]
    return start + spaces[max_size - 1] + 1 if len(spaces) >= max_size else end


def _inside_quote(text: str, start: int, pos: int) -> bool:
    """Whether ``pos`` lies inside a quotation opened after ``start``."""
    piece = text[start:pos]
    for opener, closer in QUOTE_PAIRS.items():
        if opener != "‘" and piece.count(opener) > piece.count(closer):
            return True
    return piece.count('"') % 2 == 1


def ends_mid_clause(text: str, lang: Lang = "zh") -> bool:
    """Whether a storyboard line ends without a clause boundary.

    A line may end with sentence or clause punctuation (。！？；，、.!?;:), an ellipsis, a dash,
    or a closing quote; emphasis markup (``_word_``) and closing brackets after such a mark are
    looked through. ``lang`` is accepted for symmetry (both languages' marks count either way).
    """
    t = text.rstrip().rstrip(_TRAILING_MARKUP).rstrip()
    if not t:
        return False
    if t[-1] in _LINE_CLOSERS:
        return False
    if t[-1] in ")）]】〕":
        t = t[:-1].rstrip().rstrip(_TRAILING_MARKUP)
        return not (t[-1:] in CLAUSE_END or t[-1:] in _LINE_CLOSERS)
    if t.endswith("--"):
        return False
    return t[-1] not in CLAUSE_END


def lines_cut_mid_clause(lines: list[str], source: str, lang: Lang) -> list[int]:
    """Indices of the ``lines`` (storyboard lines of one chapter, in order) that end where the
    ``source`` (the chapter text) has no clause boundary.

    Planners add a full stop to a narration line and change a quote's last comma to one, so the
    line's own last mark proves nothing: the words of the line are found in the source (after
    the previous line's) and the character after them is looked at: clause punctuation, a
    quotation mark (closing, or opening a quote the line leads into) or the paragraph's end is a
    boundary. A line whose words are not found is judged by its text alone (:func:`ends_mid_clause`).
    """
    flat = _WS_ANY_RE.sub(lambda m: "\n" if "\n" in m.group() else " ", source)  # a paragraph end stays
    cursor = 0
    bad: list[int] = []
    for i, line in enumerate(lines):
        words = _WS_ANY_RE.sub(" ", line).strip().rstrip(_TRAILING_MARKUP + "。.，,").rstrip()
        if "\n" in words:
            words = words.rsplit("\n", 1)[-1]
        if not words:
            continue
        at = flat.find(words, cursor)
        if at < 0:
            at = flat.find(words)
        if at < 0:  # not in the source as it stands: the line's own end is all there is to judge
            if ends_mid_clause(line, lang):
                bad.append(i)
            continue
        cursor = at + len(words)
        after = flat[cursor:].lstrip(" " + _TRAILING_MARKUP)
        if after and ends_mid_clause(words, lang) and after[0] not in CLAUSE_END and after[0] not in _BOUNDARY_AFTER:
            bad.append(i)
    return bad


_WS_ANY_RE = re.compile(r"\s+")
# What may follow a line's words in the source: the end of the paragraph, a closing quote, or
# the opening of a quotation the line introduces (大呼“逆贼休走！” → 大呼 / 逆贼休走！).
_BOUNDARY_AFTER = frozenset(_LINE_CLOSERS + "\n" + "".join(QUOTE_PAIRS) + "\"'-—–")  # and a dash (--recollecting herself--)


def split_sentences(text: str, lang: Lang) -> list[str]:
    """Sentences of ``text``: Chinese after 。！？…… (and a closing quote), English after .!? ."""
    return [text[a:b] for a, b in sentence_spans(text, lang)]


def _zh_cuts(text: str) -> list[int]:
    cuts = []
    for m in re.finditer(rf"[{ZH_TERMINALS}]+[{re.escape(CLOSING_QUOTES)}]*", text):
        cuts.append(m.end())
    return cuts


def _en_cuts(text: str) -> list[int]:
    cuts = []
    for m in re.finditer(rf"[.!?…]+[{re.escape(CLOSING_QUOTES)}]*(?=\s+[\"“‘'(\[A-Z0-9]|\s*$)", text):
        word = re.search(r"([A-Za-z]+)\.$", text[max(0, m.start() - 12) : m.end()])
        if word and m.group().startswith(".") and word.group(1).lower() in EN_ABBREVIATIONS:
            continue
        if re.search(r"\b[A-Z]\.$", text[max(0, m.start() - 2) : m.end()]):  # an initial: "J. R."
            continue
        cuts.append(m.end())
    return cuts


def clauses(text: str, lang: Lang) -> list[str]:
    """``text`` split on commas, semicolons and sentence ends (the pieces keep no delimiter)."""
    pattern = r"[，,；;。！？!?：:、…]+" if lang == "zh" else r"[,;:.!?]+\s*|\s+—\s*"
    return [c.strip() for c in re.split(pattern, text) if c.strip()]
