"""Split a cleaned novel into chapters.

A heading is a short line of its own: 第十二章 标题 / 第1回：标题 / 第１２节 / 楔子 / 番外一 …,
optionally behind a ``《书名》目录`` or ``正文`` prefix, or ``Chapter 12`` / ``CHAPTER XII.`` /
``Chapter Twelve: Title`` / ``Part One`` / ``PROLOGUE``. A sentence that mentions 第三章 in
passing is not a heading (it does not start the line, or it reads like a sentence).

A table of contents (a run of headings with no text between them, or headings repeated later
with only a line or two under them) makes no chapters. Text before the first heading becomes a
prologue chapter only when it is substantial. Without headings the text is cut into parts of
about ``max_chars`` at paragraph boundaries.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field


@dataclass
class Chapter:
    """One chapter: ``id`` ("01", "02" …), ``title`` (the heading), ``text`` (without the heading),
    ``volume`` (the 卷/部/Book/Part heading it belongs to, ``""`` when none)."""

    id: str
    title: str
    text: str
    volume: str = ""


class ChapterList(list):  # type: ignore[type-arg]
    """The chapters, a plain list, plus ``warnings``: sentences a caller can show the user
    (e.g. that no headings were found and the text was cut by size)."""

    def __init__(self, chapters: list[Chapter] | None = None, warnings: list[str] | None = None) -> None:
        super().__init__(chapters or [])
        self.warnings: list[str] = list(warnings or [])


@dataclass(frozen=True)
class Heading:
    """A heading line found in the text."""

    line: int  # index of the heading line
    head: str  # "第十二章", "Chapter 12": compared to find a table of contents
    title: str  # the normalised heading text, e.g. "第十二章 风起"
    end: int  # index of the first body line (after a title on the next line, if one was taken)
    volume_level: bool = False  # 卷/部/集/篇, Book/Part/Volume: may group the chapters after it
    volume: str = ""  # "第一卷" of a "第一卷 第三章 标题" line


# --------------------------------------------------------------------------- heading patterns

_ZH_NUM = r"(?:[0-9０-９]+|[零〇一二两兩三四五六七八九十百千万萬壹贰貳叁參肆伍陆陸柒捌玖拾佰仟]+)"
# "《书名》目录 " / "正文 " / "正文卷 " before the heading.
_ZH_PREFIX = r"(?:《[^》]{1,40}》\s*)?(?:(?:目录|目錄|正文卷?|全文)[\s:：]*)?"
_SEP = r"[\s:：、.．_\-—–·]*"
_ZH_CHAPTER_RE = re.compile(
    rf"^{_ZH_PREFIX}(?P<head>第\s*{_ZH_NUM}\s*[章回节節卷集部篇话話]"
    rf"(?:\s*第\s*{_ZH_NUM}\s*[章回节節集话話])?)(?P<sep>{_SEP})(?P<title>.*)$"
)
# 卷一 / 上卷 / 下部: volume headings without 第.
_ZH_VOLUME_RE = re.compile(
    rf"^{_ZH_PREFIX}(?P<head>卷\s*{_ZH_NUM}|[上中下]\s*[卷部册])(?P<sep>{_SEP})(?P<title>.*)$"
)
_ZH_SPECIAL_RE = re.compile(
    rf"^{_ZH_PREFIX}(?P<head>楔子|序章|序言|序幕|引子|引言|前言|尾声|尾聲|终章|終章|后记|後記"
    rf"|番外(?:篇)?(?:\s*{_ZH_NUM})?|序)(?P<sep>{_SEP})(?P<title>.*)$"
)
# A title glued to 第X章 without a separator must not read like the rest of a sentence
# (第三节课上…, 第二回合…, 第一部分…).
_ZH_GLUED_BAD_START = frozenset("的了是在中里內内后後前和与與也都就还還又被把给給时時合课課目程数數体體会會团團分车車，,。；;！？!?")

_EN_ONES = "one|two|three|four|five|six|seven|eight|nine"
_EN_TEENS = "ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen"
_EN_TENS = "twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety"
_EN_WORDNUM = (
    rf"(?:(?:one\s+)?hundred(?:\s+(?:and\s+)?(?:(?:{_EN_TENS})(?:[\s-](?:{_EN_ONES}))?|{_EN_TEENS}|{_EN_ONES}))?"
    rf"|(?:{_EN_TENS})(?:[\s-](?:{_EN_ONES}))?|{_EN_TEENS}|{_EN_ONES})"
)
# Non-empty (the lookbehind), and the whole word (the lookahead): "Chapter Civil" is no numeral.
_ROMAN = r"(?=[mdclxvi]+\b)m{0,4}(?:cm|cd|d?c{0,3})(?:xc|xl|l?x{0,3})(?:ix|iv|v?i{0,3})(?<=[mdclxvi])"
_EN_NUM = rf"(?:\d+|{_EN_WORDNUM}|{_ROMAN})"
_EN_CHAPTER_RE = re.compile(
    rf"^(?P<head>(?:chapter|chap\.|ch\.|part|book|volume|vol\.)\s*{_EN_NUM})\b(?P<sep>\s*[.:\-—–]?\s*)(?P<title>.*)$",
    re.IGNORECASE,
)
_EN_SPECIAL_RE = re.compile(
    r"^(?P<head>prologue|epilogue|preface|foreword|afterword|introduction|interlude)\b(?P<sep>\s*[.:\-—–]?\s*)"
    r"(?P<title>.*)$",
    re.IGNORECASE,
)

_ZH_VOLUME_UNITS = "卷部集篇册"
_EN_VOLUME_WORDS = ("part", "book", "volume", "vol.")

# Site decoration around a heading: 【某某网】第3章 标题 (求收藏) / 第3章 标题 www.xxx.com.
_SITE_PREFIX_RE = re.compile(
    r"^(?:[【\[〖〔｛{][^】\]〗〕｝}]{1,24}[】\]〗〕｝}]"
    r"|(?:https?://|www\.)\S+|[A-Za-z0-9][A-Za-z0-9\-]*(?:\.[A-Za-z0-9\-]+)*\.(?:com|net|org|cc|cn|info|me|la|tw)\S*)"
    r"[\s:：|｜\-—_]*"
)
_SITE_SUFFIX_RE = re.compile(
    r"[\s\-—_|｜]*(?:[（(【\[〖][^）)】\]〗]{0,30}?"
    r"(?:求|收藏|月票|推荐|订阅|打赏|加更|更新|首发|爆发|[一二三四五六七八九十两\d]更|红包|盟主|票|网|站|www|\.com|vip|VIP)"
    r"[^）)】\]〗]{0,30}[）)】\]〗]"
    r"|(?:https?://|www\.)\S+)$",
    re.IGNORECASE,
)
# A table of contents' dot leaders and page number: "第一章 开端 ………… 12", "Chapter 1 . . . . 5".
_LEADERS_RE = re.compile(r"\s*(?:[.·…．。_\-]\s*){3,}\d*\s*$|\s{2,}\d{1,4}\s*$")

_ZH_MAX_LINE = 60
_ZH_MAX_TITLE = 30
_EN_MAX_LINE = 80
_EN_MAX_TITLE = 60
_SUBTITLE_MAX = 50
_SENTENCE_END = tuple("。.!?！？,，;；:：\"”’」』")
_BRACKETS = (("【", "】"), ("[", "]"), ("〖", "〗"), ("〔", "〕"))

# A chapter right after a run of empty ones (a table of contents), whose heading appears again
# later and that holds fewer characters than this, is the TOC's last entry with a stray line
# ("正文", the book title) under it, not a chapter.
_TOC_BODY_MAX = 100
_PROLOGUE_MIN = 200

_SENTENCE_RE = re.compile(r"[^。！？!?…；;.]*(?:[。！？!?…；;.]+[”」』’\"')）]*\s*|$)")
_WS_RE = re.compile(r"\s+")


def split_chapters(text: str, language: str | None = None, max_chars: int = 3000) -> ChapterList:
    """Split cleaned text into chapters (see the module docstring).

    ``language`` ("zh"/"en", detected when None) only chooses the wording of made-up titles
    ("序章"/"Prologue", "第N部分"/"Part N"); both languages' headings are recognised either way.
    Ids are sequential, zero-padded to the width of the largest (at least two digits).
    Returns an empty list for empty text. The result is a list with ``warnings`` (see
    :class:`ChapterList`): without headings the text is cut at scene breaks and paragraph ends
    near ``max_chars`` (:func:`split_at_breaks`), and a warning says so.

    The same as :func:`iter_sections`, which reads the text line by line, twice.
    """
    if max_chars < 1:
        raise ValueError("max_chars must be positive")
    if language is None:
        from novelcomic.ingest.clean import detect_language

        language = detect_language(text)
    warnings: list[str] = []
    sections = list(iter_sections(lambda: iter(text.split("\n")), language, max_chars, warnings))
    width = chapter_id_width(len(sections))
    chapters = [
        Chapter(id=str(i + 1).zfill(width), title=title, text=body, volume=volume)
        for i, (title, body, volume) in enumerate(sections)
    ]
    return ChapterList(chapters, warnings)


def chapter_id_width(count: int) -> int:
    """Digits in a chapter id when there are ``count`` chapters (at least two)."""
    return max(2, len(str(count)))


def iter_sections(
    lines: Callable[[], Iterable[str]], language: str, max_chars: int, warnings: list[str]
) -> Iterator[tuple[str, str, str]]:
    """``(title, body, volume)`` of each chapter in order, as :func:`split_chapters` finds them.

    ``lines`` gives the text's lines (``text.split("\\n")``) each time it is called: once to find
    the headings and measure what lies between them (kept: a few numbers per heading), once
    more to gather each chapter's body, handed out as soon as it is complete. Memory holds one
    chapter, not the book. ``warnings`` gets the warning of a text without headings at the end.
    """
    if max_chars < 1:
        raise ValueError("max_chars must be positive")
    scan = _scan_lines(lines())
    headings = scan.headings()
    plan = _plan_sections(scan, headings, language) if headings else []
    if plan:
        yield from _gather(lines(), plan)
        return
    kinds: set[int] = set()
    count = 0
    for piece in _pieces_at_breaks(lines(), max_chars, scan.blanks < scan.nonblank * 0.2, scan.blanks > 0, kinds):
        count += 1
        yield _part_title(count, language), piece, ""
    if count:
        where = " and ".join(_BREAK_NAMES[k] for k in sorted(kinds, reverse=True)) or "paragraph ends"
        warnings.append(
            f"no chapter headings found: the text was cut into {count} part(s) of at most "
            f"about {max_chars} characters at {where}"
        )


# --------------------------------------------------------------------------- headings


def parse_heading(line: str) -> tuple[str, str] | None:
    """``(head, title)`` when ``line`` is a chapter heading, else None.

    ``head`` is the structural part ("第十二章", "CHAPTER XII"); ``title`` the whole normalised
    heading without any 《书名》/正文 prefix, site decoration (``【某某网】``, ``(求收藏)``, a URL)
    or table-of-contents leaders ("第十二章 风起", "CHAPTER XII").
    """
    match = _match_heading(line)
    return None if match is None else (match[0], match[1])


def _match_heading(line: str) -> tuple[str, str, bool, str] | None:
    """``(head, title, volume_level, volume)`` of a heading line (see :func:`parse_heading`)."""
    line = _unwrap(line.strip())
    if not line or len(line) > 160:
        return None  # a heading is short; a 20,000-character line is prose (and must not cost seconds)
    bare = _LEADERS_RE.sub("", _SITE_SUFFIX_RE.sub("", line)).strip() or line
    found = _match_bare(bare)
    if found is None:
        prefix = _SITE_PREFIX_RE.match(bare)
        if prefix and prefix.end() < len(bare):
            found = _match_bare(bare[prefix.end() :])
    return found


def _match_bare(line: str) -> tuple[str, str, bool, str] | None:
    line = _unwrap(line)
    if len(line) <= _ZH_MAX_LINE:
        for regex, special in ((_ZH_CHAPTER_RE, False), (_ZH_VOLUME_RE, True), (_ZH_SPECIAL_RE, True)):
            m = regex.match(line)
            if m and _zh_title_ok(m["sep"], m["title"].strip(), special and not m["head"].startswith("番外")):
                head = _normalise(m["head"])
                parts = re.findall(rf"第\s*{_ZH_NUM}\s*[{_ZH_VOLUME_UNITS}章回节節话話]", head)
                volume = _normalise(parts[0]) if len(parts) == 2 and parts[0][-1] in _ZH_VOLUME_UNITS else ""
                level = regex is not _ZH_SPECIAL_RE and head[-1] in _ZH_VOLUME_UNITS
                return head, _join(m["head"], m["sep"], m["title"]), level, volume
    if len(line) <= _EN_MAX_LINE:
        for regex in (_EN_CHAPTER_RE, _EN_SPECIAL_RE):
            m = regex.match(line)
            if m and _en_title_ok(m["sep"], m["title"].strip()):
                head = _normalise(m["head"])
                level = head.lower().startswith(_EN_VOLUME_WORDS)
                return head, _join(m["head"], m["sep"], m["title"]), level, ""
    return None


def _unwrap(line: str) -> str:
    """``【第一章 xx】`` → ``第一章 xx``."""
    for left, right in _BRACKETS:
        if line.startswith(left) and line.endswith(right):
            return line[len(left) : -len(right)].strip()
    return line


def _zh_title_ok(sep: str, title: str, title_needs_sep: bool) -> bool:
    """A Chinese heading's title reads like a title, not like the rest of a sentence."""
    if not title:
        return True
    if len(title) > _ZH_MAX_TITLE or "。" in title or title.endswith(("，", ",")) or title.count("，") > 1:
        return False
    if not sep:
        return not title_needs_sep and title[0] not in _ZH_GLUED_BAD_START
    return True


def _en_title_ok(sep: str, title: str) -> bool:
    """An English heading's title is short and, without a separator, starts with a capital."""
    if not title:
        return True
    if len(title) > _EN_MAX_TITLE or title.endswith((",", ";")) or len(title.split()) > 10:
        return False
    if not sep.strip():
        if not sep:
            return False  # "Chapter12abc", "Prologues"
        first = title[0]
        return first.isupper() or first.isdigit() or first in "\"'“‘(["
    return True


def _normalise(s: str) -> str:
    return _WS_RE.sub(" ", s).strip()


def _join(head: str, sep: str, title: str) -> str:
    """``head`` + ``title`` with whitespace collapsed; a separator other than spaces is kept as written."""
    head, title = _normalise(head), _normalise(title)
    if not title:
        return head.rstrip(".:：-—– ")
    mark = sep.strip()
    if not mark:
        return f"{head} {title}"
    before = " " if sep[:1].isspace() else ""
    after = " " if sep[-1:].isspace() else ""
    return f"{head}{before}{mark}{after}{title}"  # "第1回：标题", "Chapter 1 - Title", "Chapter 2: Title"


def find_headings(lines: list[str]) -> list[Heading]:
    """Every heading line, with a title taken from the next line when the heading has none.

    ``CHAPTER I.`` followed directly by ``Down the Rabbit-Hole`` and then a blank line is one
    heading: "CHAPTER I: Down the Rabbit-Hole"; so is ``第一回`` followed by its 回目
    ``宴桃园豪杰三结义 斩黄巾英雄首立功``, or ``Chapter 3`` by a title-case ``The Storm``.
    """
    return [c.heading for c in _scan_lines(lines).headings()]


_SIZE_CAP = max(_PROLOGUE_MIN, _TOC_BODY_MAX) + 1  # sizes are only compared with these


@dataclass
class _Measure:
    """What the chapter rules look at in some lines: a letter anywhere, the size (capped)."""

    alpha: bool = False
    size: int = 0

    def add(self, line: str) -> None:
        if not self.alpha and any(c.isalpha() for c in line):
            self.alpha = True
        if self.size < _SIZE_CAP:
            self.size = min(_SIZE_CAP, self.size + len(_WS_RE.sub("", line)))

    def __add__(self, other: _Measure) -> _Measure:
        return _Measure(self.alpha or other.alpha, min(_SIZE_CAP, self.size + other.size))


@dataclass
class _Candidate:
    """A heading line and what follows it, before its title line (if any) is known."""

    line: int
    head: str
    title: str
    volume_level: bool
    volume: str
    sub: str | None = None  # the next line, when it could be this bare heading's title
    sub_then_text: bool = False  # the line after that is not blank
    first: _Measure | None = None  # the line after the heading
    rest: _Measure = field(default_factory=_Measure)  # the lines after that, up to the next heading
    heading: Heading = field(init=False)
    body: _Measure = field(init=False)


@dataclass
class _LineScan:
    """One pass over the lines: heading candidates, the preamble, counts for the size-based cut."""

    candidates: list[_Candidate]
    preamble: _Measure
    count: int  # lines
    last_text: int  # index of the last non-blank line (-1: none)
    nonblank: int
    blanks: int  # blank lines between non-blank ones, each run counted once (split_at_breaks)

    def headings(self) -> list[_Candidate]:
        """The candidates with their title line settled (see find_headings)."""
        for c in self.candidates:
            end, title = c.line + 1, c.title
            if c.title == c.head and c.sub is not None and self.last_text > c.line + 1:
                if not c.sub_then_text or _reads_as_title(c.sub):
                    joiner = ": " if c.head[:1].isascii() else " "
                    title, end = f"{c.head}{joiner}{_normalise(c.sub)}", c.line + 2
            c.heading = Heading(
                line=c.line, head=c.head, title=title, end=end, volume_level=c.volume_level, volume=c.volume
            )
            body = c.rest if end == c.line + 2 or c.first is None else c.first + c.rest
            c.body = body
        return self.candidates


def _scan_lines(lines: Iterable[str]) -> _LineScan:
    candidates: list[_Candidate] = []
    preamble = _Measure()
    count = nonblank = blanks = 0
    last_text = -1
    blank_pending = False
    for i, line in enumerate(lines):
        count += 1
        stripped = line.strip()
        if stripped:
            nonblank += 1
            if blank_pending:
                blanks += 1
                blank_pending = False
        elif last_text == i - 1 and i:
            blank_pending = True
        if stripped:
            last_text = i
        last = candidates[-1] if candidates else None
        parsed = _match_heading(line)
        if last is not None and last.line == i - 2 and last.sub is not None:
            last.sub_then_text = bool(stripped)
        if parsed is not None:
            head, title, level, volume = parsed
            candidates.append(_Candidate(i, head, title, level, volume))
            continue
        if last is None:
            preamble.add(line)
        elif last.line == i - 1:
            last.first = _Measure()
            last.first.add(line)
            if (
                stripped
                and len(stripped) <= _SUBTITLE_MAX
                and not stripped.endswith(_SENTENCE_END)
            ):  # not a heading either: that line would be a candidate
                last.sub = stripped
        else:
            last.rest.add(line)
    return _LineScan(candidates, preamble, count, last_text, nonblank, blanks)


_ZH_TITLE_RE = re.compile(r"^[\u3400-\u9fff《》·\s]{2,30}$")
_EN_TITLE_SMALL = frozenset("a an the of in on at to and or but for with by from as into".split())


def _reads_as_title(line: str) -> bool:
    """A title by its look: 宴桃园豪杰三结义 斩黄巾英雄首立功 / The Pool of Tears / THE STORM."""
    if _ZH_TITLE_RE.match(line):
        return True
    words = re.findall(r"[A-Za-z][A-Za-z'’\-]*", line)
    if not words or len(words) > 8 or not re.fullmatch(r"[A-Za-z0-9'’\-,:;!?&\s]+", line):
        return False
    return words[0][0].isupper() and all(w[0].isupper() or w.lower() in _EN_TITLE_SMALL for w in words)


# --------------------------------------------------------------------------- sections


@dataclass
class _Planned:
    """A chapter to be: its title, volume and the line ranges its body is made of (joined by a
    blank line: a volume's short introduction, then the chapter)."""

    title: str
    volume: str
    ranges: list[tuple[int, int]]


def _plan_sections(scan: _LineScan, candidates: list[_Candidate], language: str) -> list[_Planned]:
    """The chapters of a text with headings, from the line scan alone.

    Table-of-contents entries are dropped: headings with no text under them (a run of them, or
    one with only a page number), and the TOC's last entry followed by a stray line or two when
    its heading appears again later. A volume heading (卷/部/Book/Part) followed by chapter
    headings groups them: it becomes no chapter of its own unless substantial text stands under
    it; a short introduction goes in front of its first chapter.
    """
    out: list[_Planned] = []
    if scan.preamble.size > _PROLOGUE_MIN:
        out.append(_Planned("序章" if language == "zh" else "Prologue", "", [(0, candidates[0].line)]))
    last_of_head = {c.head: k for k, c in enumerate(candidates)}
    volume = ""
    intro: tuple[int, int] | None = None
    previous_empty = False
    kept: list[tuple[Heading, list[tuple[int, int]], str]] = []
    for k, c in enumerate(candidates):
        h = c.heading
        stop = candidates[k + 1].line if k + 1 < len(candidates) else scan.count
        body = (h.end, stop)
        empty = not c.body.alpha  # nothing, or a TOC's page number
        following = candidates[k + 1] if k + 1 < len(candidates) else None
        if h.volume_level and following is not None and not following.volume_level:
            volume = h.title  # groups the chapters after it
            if not empty and c.body.size > _PROLOGUE_MIN:
                kept.append((h, [body], ""))
            elif not empty:
                intro = body
            continue
        if empty:
            previous_empty = True
            continue  # a table-of-contents entry
        toc_tail = previous_empty and c.body.size < _TOC_BODY_MAX and last_of_head[h.head] > k
        previous_empty = False
        if toc_tail:
            continue  # the last TOC entry, with a stray line ("正文") before the real chapter
        ranges = [body]
        if intro is not None:
            ranges, intro = [intro, body], None
        kept.append((h, ranges, h.volume or volume))
    # Numbering that starts again in every volume: say which volume in the title.
    volumes_of: dict[str, set[str]] = {}
    for h, _, vol in kept:
        volumes_of.setdefault(h.head, set()).add(vol)
    for h, ranges, vol in kept:
        title = h.title
        if vol and len(volumes_of[h.head]) > 1 and not h.volume:
            title = f"{vol} {title}"
        out.append(_Planned(title, vol, ranges))
    return out


def _gather(lines: Iterable[str], plan: list[_Planned]) -> Iterator[tuple[str, str, str]]:
    """``(title, body, volume)`` of each planned chapter, as soon as its last line has been read.

    The ranges of all chapters follow one another without overlapping, in the chapters' order.
    """
    spans = [(a, b, s, j) for s, p in enumerate(plan) for j, (a, b) in enumerate(p.ranges)]
    parts: list[str] = []
    buf: list[str] = []
    pos = 0

    def close() -> tuple[str, str, str] | None:
        nonlocal buf, parts, pos
        _, _, s, j = spans[pos]
        parts.append(_body(buf))
        buf, pos = [], pos + 1
        if j < len(plan[s].ranges) - 1:
            return None
        body, parts = "\n\n".join(parts), []
        return plan[s].title, body, plan[s].volume

    for i, line in enumerate(lines):
        while pos < len(spans) and i >= spans[pos][1]:
            if (section := close()) is not None:
                yield section
        if pos < len(spans) and spans[pos][0] <= i:
            buf.append(line)
    while pos < len(spans):
        if (section := close()) is not None:
            yield section


def _body(lines: list[str]) -> str:
    return "\n".join(lines).strip("\n").strip()


def _part_title(n: int, language: str) -> str:
    return f"第{n}部分" if language == "zh" else f"Part {n}"


# --------------------------------------------------------------------------- size-based split


_SCENE_BREAK_RE = re.compile(r"^(?:[*＊#＃~～〜=＝·•◇◆○●☆★※§◎\-－—_＿]\s*){3,}$")
# Kinds of cut, strongest first, as the warning names them.
_BREAK_NAMES = {3: "scene breaks", 2: "blank lines", 1: "paragraph ends"}


def split_at_breaks(text: str, max_chars: int) -> tuple[list[str], list[str]]:
    """Cut a text that has no headings into pieces of at most about ``max_chars`` characters.

    Each cut falls at the strongest break in the second half of the allowed size: a scene-break
    line (``* * *``, ``～～～``, ``◇◇◇``), else a blank line (when paragraphs are not separated by
    blank lines anyway, a blank line is a section break), else the end of a paragraph; a
    paragraph longer than ``max_chars`` is cut between sentences (:func:`split_by_size`).
    Scene-break lines at the edges of a piece are dropped. Returns the pieces and the kinds of
    break used (for the warning).
    """
    scan = _scan_lines(text.split("\n"))
    kinds: set[int] = set()
    pieces = list(_pieces_at_breaks(text.split("\n"), max_chars, scan.blanks < scan.nonblank * 0.2, scan.blanks > 0, kinds))
    return pieces, [_BREAK_NAMES[k] for k in sorted(kinds, reverse=True)]


_Unit = tuple[int, bool, str]  # strength of the break before a paragraph, a blank line before it, the paragraph


def _units(lines: Iterable[str], blank_is_section: bool) -> Iterator[_Unit]:
    """The paragraphs of :func:`split_at_breaks`, with the break before each."""
    strength, blank = 0, False
    started = False  # blank lines before the first text are not breaks (the text is stripped)
    for line in lines:
        stripped = line.strip()
        if not stripped:
            if started:
                strength, blank = max(strength, 2 if blank_is_section else 1), True
            continue
        started = True
        if _SCENE_BREAK_RE.match(stripped):
            strength, blank = 3, True
            continue
        yield strength, blank, stripped
        strength, blank = 0, False


def _pieces_at_breaks(
    lines: Iterable[str], max_chars: int, blank_is_section: bool, blank_lines: bool, kinds: set[int]
) -> Iterator[str]:
    """The pieces of :func:`split_at_breaks`, one at a time (``kinds`` gets the breaks used);
    memory holds about one piece."""
    current: list[_Unit] = []
    size = 0
    out: deque[str] = deque()  # the last two pieces: the very last may join the one before

    def emit(units: list[_Unit]) -> Iterator[str]:
        body = _join_units(units)
        for piece in split_by_size(body, max_chars) if len(body) > max_chars else [body]:
            out.append(piece)
            if len(out) > 2:
                yield out.popleft()

    first = True
    for strength, blank, para in _units(lines, blank_is_section):
        unit = (0 if first else max(strength, 1), blank, para)
        first = False
        if current and size + len(unit[2]) + 1 + unit[1] > max_chars:
            # Cut at the strongest break in the second half of the piece (the latest of equals).
            candidates = [(unit[0], len(current))]
            running = 0
            for i, (s_i, _, p_i) in enumerate(current):
                if i and running >= max_chars // 2:
                    candidates.append((s_i, i))
                running += len(p_i) + 2
            best, at = max(candidates)
            yield from emit(current[:at])
            kinds.add(best)
            current = current[at:]
            size = len(_join_units(current))
        size += len(unit[2]) + (1 + unit[1] if current else 0)
        current.append(unit)
    if current:
        yield from emit(current)
    if len(out) > 1 and len(out[-1]) < max_chars // 5 and len(out[-2]) + len(out[-1]) + 2 <= max_chars:
        tail = out.pop()
        out[-1] = f"{out[-1]}\n\n{tail}" if blank_lines else f"{out[-1]}\n{tail}"
    yield from out


def _join_units(units: list[tuple[int, bool, str]]) -> str:
    """Paragraphs back into text, with a blank line where there was one (or a scene break)."""
    parts: list[str] = []
    for i, (_, blank, para) in enumerate(units):
        if i:
            parts.append("\n\n" if blank else "\n")
        parts.append(para)
    return "".join(parts)


def split_by_size(text: str, max_chars: int) -> list[str]:
    """Cut ``text`` into pieces of at most about ``max_chars`` characters.

    Cuts fall between paragraphs (blank-line separated blocks, else lines); a paragraph longer
    than ``max_chars`` is cut between sentences, and a sentence longer than that at
    ``max_chars``. A last piece shorter than a fifth of ``max_chars`` joins the one before.
    """
    text = text.strip()
    if not text:
        return []
    pieces = [p.strip() for p in _pack(text, max_chars, 0) if p.strip()]
    if len(pieces) > 1 and len(pieces[-1]) < max_chars // 5:
        tail = pieces.pop()
        # Rejoin with whatever separated the two in the text (a sentence cut has none).
        joiner = next((j for j in ("\n\n", "\n", " ") if f"{pieces[-1]}{j}{tail}" in text), "")
        pieces[-1] = f"{pieces[-1]}{joiner}{tail}"
    return pieces


_LEVELS: tuple[str, ...] = ("\n\n", "\n", "sentence")


def _split_level(text: str, level: int) -> tuple[list[str], str]:
    """Split at the given level, returning the parts and the string that rejoins them."""
    kind = _LEVELS[level]
    if kind == "sentence":
        return [m.group(0) for m in _SENTENCE_RE.finditer(text) if m.group(0)], ""
    return [p for p in text.split(kind) if p.strip()], kind


def _pack(text: str, max_chars: int, level: int) -> list[str]:
    """Greedy packing of ``text``'s parts at ``level`` into pieces of at most ``max_chars``."""
    if len(text) <= max_chars:
        return [text]
    if level >= len(_LEVELS):
        return [text[i : i + max_chars] for i in range(0, len(text), max_chars)]
    parts, joiner = _split_level(text, level)
    if len(parts) <= 1:
        return _pack(text, max_chars, level + 1)
    out: list[str] = []
    current = ""
    for part in parts:
        if len(part) > max_chars:
            if current:
                out.append(current)
                current = ""
            out.extend(_pack(part, max_chars, level + 1))
        elif not current:
            current = part
        elif len(current) + len(joiner) + len(part) <= max_chars:
            current = f"{current}{joiner}{part}"
        else:
            out.append(current)
            current = part
    if current:
        out.append(current)
    return out
