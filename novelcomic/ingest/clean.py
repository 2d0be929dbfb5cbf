"""Clean a decoded novel: normalise whitespace and drop download-site boilerplate.

Downloaded novels are wrapped in site adverts ("更多精彩小说请访问 www.xxx.com", "本书由某某整理",
"(本章完)", "求月票", Project Gutenberg licences …). Those lines would otherwise be narrated.
Every boilerplate rule matches a *whole line* (after stripping decorative brackets and rules),
so a story sentence that merely mentions 书 or 下载 stays; lines with dialogue quotes are never
treated as boilerplate.

The result has one paragraph per line (or hard-wrapped English lines), no indentation, and at
most one blank line in a row: blank lines mark paragraph and scene breaks and are kept.
"""

from __future__ import annotations

import functools
import os
import re
import unicodedata
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

# --------------------------------------------------------------------------- whitespace

_NEWLINES_RE = re.compile(r"\r\n?|[\u2028\u2029\x0b\x0c\x85]")
# Zero-width characters, BOMs and C0/C1 controls other than \n and \t: invisible, never story.
_INVISIBLE_RE = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f\u200b-\u200d\u2060\ufeff\ufffe]")
# Tabs, ideographic (full-width) space, no-break and other typographic spaces.
_SPACES_RE = re.compile(r"[ \t\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]+")
_BLANK_RUN_RE = re.compile(r"\n{3,}")

# --------------------------------------------------------------------------- Project Gutenberg

_GUTENBERG_START_RE = re.compile(
    r"^\*{3}\s*START OF (?:THE|THIS) PROJECT GUTENBERG E-?BOOK\b.*$", re.IGNORECASE | re.MULTILINE
)
_GUTENBERG_END_RE = re.compile(
    r"^\*{3}\s*END OF (?:THE|THIS) PROJECT GUTENBERG E-?BOOK\b.*$", re.IGNORECASE | re.MULTILINE
)
# Credits that follow the START marker (only looked for in the first lines after it).
_GUTENBERG_CREDIT_RE = re.compile(
    r"^(?:(?:e-?text|html version|this e-?book was)?\s*(?:produced|prepared|transcribed)\s+by\b.*"
    r"|\[?transcriber'?s? note.*)$",
    re.IGNORECASE,
)
_GUTENBERG_CREDIT_WINDOW = 8

# --------------------------------------------------------------------------- boilerplate lines

# Decoration around an advert: brackets, rules, stars. 《》 stay (they hold book titles).
_WRAP_CHARS = " \t【】[]（）()〖〗〔〕{}<>＜＞=＝*＊~～_＿·•|｜#＃-－—–"
_TRAILING_PUNCT_RE = re.compile(r"[。.!！…]+$")
# Dialogue marks: a line carrying them is story, whatever words it contains.
_DIALOGUE_RE = re.compile("[“”「」『』\"]")

_URL_RE = re.compile(
    r"(?:https?://|www\.)\S+"
    r"|(?<![A-Za-z0-9@])[A-Za-z0-9][A-Za-z0-9\-]*(?:\.[A-Za-z0-9\-]+)*"
    r"\.(?:com|net|org|cc|cn|info|biz|me|io|tw|hk|la|co|tv|xyz|top|vip|in|us|so|fun|site|club|ws|mobi)"
    r"\b(?:/\S*)?",
    re.IGNORECASE,
)
# Words that make what is left of a line with a URL an advert ("请访问", "visit … for more").
_AD_WORDS_RE = re.compile(
    r"访问|网址|地址|域名|手机|阅读|下载|首发|最新|更新|免费|小说|章节|书友|收藏|记住|本站|搜索|百度|请|来源|出处"
    r"|官网|网站|书城|书屋|看书|登录|登陆|关注|公众号|微信|全文|全本|txt"
    r"|\b(?:visit|download(?:ed)?|read|free|e-?books?|novels?|more|site|website|source|online|available"
    r"|chapters?|updates?|latest|translations?)\b",
    re.IGNORECASE,
)
_URL_REMAINDER_MAX = 30
_PUNCT_SPACE_RE = re.compile(r"[\s\W_]+")

_NAV_WORD = (
    r"(?:最新章节|无弹窗|全文阅读|全文免费阅读|免费阅读|在线阅读|txt下载|全集下载|全本下载|电子书下载|章节目录|返回目录"
    r"|加入书签|投推荐票|上一章|下一章|上一页|下一页|返回书页|返回列表|目录)"
)

_BOILERPLATE_RES: tuple[re.Pattern[str], ...] = tuple(
    re.compile(p, re.IGNORECASE)
    for p in (
        # 本书由某某整理 / 本书来自某某网 / 本作品由…首发
        r"^本(?:书|小说|作品|电子书|文|txt)?(?:由|来自|来源于?|首发于?|转载自?)[^。]{0,40}?"
        r"(?:整理|提供|制作|收集|收录|首发|分享|上传|发布|转载|打包|排版|校对|网|站)[^。]{0,30}$",
        # disclaimers
        r"^[^。]{0,20}(?:版权归(?:原)?作者(?:所有)?|仅供(?:交流|学习|试读|参考|读者)|下载后\s*24\s*小时内删除)[^。]{0,60}$",
        r"^(?:免责)?声明[:：][^。]{0,80}(?:本站|上传|版权|网友|下载)[^。]{0,80}$",
        r"^本站[^。]{0,60}(?:提供|存储|上传|不承担|仅供|网址|域名|地址|收录|首发)[^。]{0,40}$",
        # 更多精彩小说请访问… / 好看的小说尽在…
        r"^(?:更多|最新|好看|精彩|热门|免费|全本|完本|最快)[^。！？!?]{0,30}?(?:小说|章节|txt|电子书|全文|全集|内容)"
        r"[^。！？!?]{0,30}?(?:请|尽在|就在|访问|登陆|登录|关注|搜索|下载|阅读|百度|点击|在线|网|站|首发|更新|无弹窗|免费)"
        r"[^。！？!?]{0,40}$",
        # navigation bars and lone site phrases: "上一章 | 目录 | 下一章", "最新章节", "TXT下载"
        rf"^{_NAV_WORD}(?:[\s|/丨·、,，:：→←]*{_NAV_WORD})*[\s|/丨·、,，:：]*$",
        # 手机阅读请访问… / 手机用户请浏览…
        r"^(?:手机阅读|手机用户|手机版|手机看书|手机站|手机访问|移动端|wap站?)[^。]{0,50}$",
        # 《书名》txt全集下载 / 全集下载地址：…
        r"^(?:《[^》]{1,40}》)?\s*(?:txt)?\s*(?:全集|全本|电子书|小说|txt)(?:全集|全本)?\s*下载(?:地址)?[^。！？!?]{0,40}$",
        # 本章未完，请点击下一页继续阅读 / 未完待续
        r"^(?:本章未完|本章没完|未完待续)[^。]{0,30}$",
        r"^(?:请)?(?:点击|点)下一页[^。]{0,30}$",
        # author pleas: 求月票、求推荐票、求收藏
        r"^[^。]{0,12}求(?:月票|推荐票|推荐|收藏|订阅|打赏|票票|保底月票|粉红票)[^。]{0,40}$",
        r"^本章完$",
        # QQ groups
        r"^[^。]{0,30}(?:qq|ＱＱ)\s*群[^。]{0,40}$",
        r"^[^。]{0,30}(?:书友|读者|粉丝)群[^。]{0,20}\d{5,}[^。]{0,20}$",
        # well-known sites, "一秒记住…", "记住本站…"
        r"^[^。]{0,20}(?:笔趣阁|顶点小说|八零电子书|txt80|久久小说|奇书网|落霞小说|全本小说网|书包网|棉花糖小说|"
        r"飘天文学|新笔趣阁|番茄小说网)[^。]{0,40}$",
        r"^[^。]{0,12}(?:一秒记住|记住本站|记住网址|记住我们的网址)[^。]{0,50}$",
        # English
        r"^(?:this (?:e-?book|book|novel|text|file) (?:was|is) )?(?:downloaded|provided|brought to you|made available)"
        r" (?:from|by|at)\b.{0,120}$",
        r"^visit (?:us|our (?:site|website|page|blog))\b.{0,100}$",
        r"^(?:for|get|find|read|download) (?:more|the latest|all)\b.{0,30}\b(?:e-?books?|novels?|books|chapters|"
        r"stories|updates)\b.{0,40}\b(?:at|on|visit|from|free|online|here)\b.{0,60}$",
        r"^.{0,60}\bproject gutenberg\b.{0,120}$",
        # site markers around the text: ------章节内容开始------- / 正文结束
        r"^(?:章节|小说|本书|全书|作品)?(?:内容|正文)(?:开始|结束|完)$",
        # 请购买正版 / 请支持正版图书 / 请您购买正版
        r"^(?:请|敬请)(?:您|大家|各位)?(?:购买|支持|订阅|阅读)正版[^。，,]{0,30}$",
    )
)

# A line made only of site metadata labels and numbers: "更新时间:2007-11-16 7:55:51 本章字数:4804",
# "发布时间：2020年1月2日", "字数：3021", "Updated: 2019-03-04 · 2,345 words".
_META_LABEL_RE = re.compile(
    r"(?:本章|全文|章节|全书|本书|总)?(?:更新|发布|发表|上传|创建|修改|首发)(?:时间|日期|于)?"
    r"|(?:本章|全文|章节|全书|本书|总)?(?:字数|点击(?:数|量)?|阅读(?:数|量)|收藏(?:数|量)?|推荐(?:票|数)?|人气)"
    r"|时间|日期|字|\b(?:updated?|posted|published|last\s+updated|word\s*count|words|date|time|on|at)\b",
    re.IGNORECASE,
)
# The labels that make such a line site metadata rather than story (a bare 时间/日期 might be story).
_META_KEY_RE = re.compile(
    r"更新|发布|发表|上传|首发|字数|点击|阅读数|阅读量|收藏|推荐票|人气|\bupdated\b|\bposted\b|\bword\s*count\b|\bwords\b",
    re.IGNORECASE,
)
_META_NUMBER_RE = re.compile(r"[0-9][0-9,]*|[年月日时分秒号點点]|am\b|pm\b", re.IGNORECASE)
_META_MAX = 80


# Plain-text italics as Project Gutenberg and many e-texts write them: _word_ / _a few words_.
_EMPHASIS_RE = re.compile(r"(?<![\w_])_(?=\S)([^_\n]{1,80}?)(?<=\S)_(?![\w_])")


def clean_text(text: str) -> str:
    """Normalise whitespace and remove download-site boilerplate; the result ends with one newline.

    Newlines become ``\\n``; tabs, ideographic and other special spaces become single spaces;
    each line loses its indentation and trailing spaces; invisible characters go; boilerplate
    lines (see the module docstring) are dropped; a Project Gutenberg text keeps only what lies
    between its START and END markers; runs of blank lines shrink to one blank line. Scene-break
    lines such as ``***`` or ``——`` stay. Idempotent. Returns ``""`` when nothing is left.

    The same as :func:`clean_lines`, which does it in passes over a text read a chunk at a time.
    """
    out = list(clean_lines(lambda: (text,), []))
    return "\n".join(out) + "\n" if out else ""


class KeptLines(Protocol):
    """Where the lines that survive boilerplate removal wait for the re-flow pass: a list, or a
    file (:class:`KeptLinesFile`) when the book is big."""

    def append(self, item: tuple[str, int, bool], /) -> None: ...

    def __iter__(self) -> Iterator[tuple[str, int, bool]]: ...


def clean_lines(chunks: Callable[[], Iterable[str]], kept: KeptLines) -> Iterator[str]:
    """The cleaned lines of a text (see :func:`clean_text`), without newlines; a blank line is ``""``.

    ``chunks`` gives the text from its start, in pieces, each time it is called: it is read
    twice here (Gutenberg markers, then the lines), and the kept lines once more from ``kept``
    when the result is iterated. Memory holds a few lines and book-wide counters, not the book.
    """
    markers = find_gutenberg(split_lines(normalise_newlines(chunks())))
    stats = ReflowStats()
    for line, indent in _kept_lines(markers.lines(split_lines(normalise_newlines(chunks()))), markers.found):
        structural = bool(line) and _is_structural(line)
        stats.add(line, indent, structural)
        kept.append((line, indent, structural))
    return _finished(_reflow_stream(iter(kept), stats.params()))


def split_lines(chunks: Iterable[str]) -> Iterator[str]:
    """The pieces of ``"".join(chunks).split("\\n")``, one at a time."""
    pending: list[str] = []
    for chunk in chunks:
        if not chunk:
            continue
        parts = chunk.split("\n")
        if len(parts) == 1:
            pending.append(chunk)
            continue
        pending.append(parts[0])
        yield "".join(pending)
        for i in range(1, len(parts) - 1):
            yield parts[i]
        pending = [parts[-1]]
    yield "".join(pending)


def normalise_newlines(chunks: Iterable[str]) -> Iterator[str]:
    """The text with every kind of line break made ``\\n`` and invisible characters removed."""
    carry = ""
    for chunk in chunks:
        chunk = carry + chunk if carry else chunk
        carry = ""
        if chunk.endswith("\r"):  # maybe the first half of a \r\n
            chunk, carry = chunk[:-1], "\r"
        yield _INVISIBLE_RE.sub("", _NEWLINES_RE.sub("\n", chunk))
    if carry:
        yield "\n"


_STAR_LINE_RE = re.compile(r"\*{3}\s*")
_GUTENBERG_START_TAIL_RE = re.compile(r"START OF (?:THE|THIS) PROJECT GUTENBERG E-?BOOK\b.*$", re.IGNORECASE)
_GUTENBERG_END_TAIL_RE = re.compile(r"END OF (?:THE|THIS) PROJECT GUTENBERG E-?BOOK\b.*$", re.IGNORECASE)


class _MarkerSearch:
    """Finds a Gutenberg marker line by line, as its regex finds it in the whole text: ``***``,
    then any whitespace (blank lines too), then the words."""

    def __init__(self, full: re.Pattern[str], tail: re.Pattern[str]) -> None:
        self.full, self.tail = full, tail
        self.star: int | None = None  # a "***" line followed by nothing but whitespace so far

    def feed(self, i: int, line: str) -> int | None:
        """The index of the line where a marker that ends on line ``i`` begins, else None."""
        if self.star is not None and self.tail.match(line.lstrip()):
            return self.star
        if line.startswith("***") and self.full.match(line):
            return i
        if line.startswith("***") and _STAR_LINE_RE.fullmatch(line):
            self.star = i
        elif line.strip():
            self.star = None
        return None


@dataclass(frozen=True)
class GutenbergMarkers:
    """Where a Project Gutenberg text's START marker ends and its END marker begins (line indices)."""

    start: int | None = None
    end: int | None = None

    @property
    def found(self) -> bool:
        return self.start is not None or self.end is not None

    def lines(self, lines: Iterable[str]) -> Iterator[str]:
        """The lines between the markers, split as the text between them would be."""
        if not self.found:
            yield from lines
            return
        if self.start is not None:
            yield ""  # the rest of the START line
        for i, line in enumerate(lines):
            if self.start is not None and i <= self.start:
                continue
            if self.end is not None and i >= self.end:
                yield ""  # the text up to the END marker ends with a newline
                return
            yield line


def find_gutenberg(lines: Iterable[str]) -> GutenbergMarkers:
    """The first START marker and the first END marker after it (after the start of the text
    when there is no START marker)."""
    start: int | None = None
    first_end: int | None = None
    end: int | None = None
    search_start = _MarkerSearch(_GUTENBERG_START_RE, _GUTENBERG_START_TAIL_RE)
    search_end = _MarkerSearch(_GUTENBERG_END_RE, _GUTENBERG_END_TAIL_RE)
    for i, line in enumerate(lines):
        if start is None:
            if search_start.feed(i, line) is not None:
                start = i
                search_end = _MarkerSearch(_GUTENBERG_END_RE, _GUTENBERG_END_TAIL_RE)
            elif first_end is None:
                first_end = search_end.feed(i, line)
        else:
            end = search_end.feed(i, line)
            if end is not None:
                break
    return GutenbergMarkers(start, end if start is not None else first_end)


def _kept_lines(lines: Iterable[str], gutenberg: bool) -> Iterator[tuple[str, int]]:
    """Each line stripped and whitespace-normalised, with its indentation in columns; without
    boilerplate lines and (in a Gutenberg text) the "Produced by …" credits among the first
    non-blank lines."""
    seen = 0
    for raw in lines:
        raw = raw.rstrip()
        line = _SPACES_RE.sub(" ", raw).strip()
        if gutenberg and line and seen < _GUTENBERG_CREDIT_WINDOW:
            seen += 1
            if _GUTENBERG_CREDIT_RE.match(line):
                continue
        if is_boilerplate(line):
            continue
        yield line, (_indent_width(raw) if line else 0)


def _finished(flowed: Iterable[str]) -> Iterator[str]:
    """At most one blank line in a row, none at either end; plain-text italics (_You_) unmarked."""
    started = blank = False
    for line in flowed:
        if not line:
            blank = started
            continue
        if blank:
            yield ""
        blank, started = False, True
        yield _EMPHASIS_RE.sub(r"\1", line)  # _You_ (plain-text italics) is read and drawn as You


class KeptLinesFile:
    """Kept lines in a file, for a book too big to hold: one ``indent<TAB>structural<TAB>line``
    record a line (a kept line has neither tabs nor newlines)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh = open(path, "w", encoding="utf-8", errors="surrogatepass", newline="")

    def append(self, item: tuple[str, int, bool], /) -> None:
        line, indent, structural = item
        self._fh.write(f"{indent}\t{int(structural)}\t{line}\n")

    def __iter__(self) -> Iterator[tuple[str, int, bool]]:
        if not self._fh.closed:
            self._fh.close()

        def chunks() -> Iterator[str]:
            with open(self.path, encoding="utf-8", errors="surrogatepass", newline="") as fh:
                while chunk := fh.read(1 << 20):
                    yield chunk

        for record in split_lines(chunks()):
            if record:
                indent, structural, line = record.split("\t", 2)
                yield line, int(indent), structural == "1"

    def close(self) -> None:
        self._fh.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


def _core(line: str) -> str:
    """The line without decoration, full-width ASCII folded, and without trailing full stops."""
    core = unicodedata.normalize("NFKC", line)
    core = core.strip(_WRAP_CHARS)
    core = _TRAILING_PUNCT_RE.sub("", core).strip(_WRAP_CHARS)
    return core


def is_boilerplate(line: str) -> bool:
    """Whether a whole (already stripped) line is download-site boilerplate.

    Blank lines, scene breaks (``***``, ``* * *``, ``——``) and lines with dialogue quotes are
    never boilerplate.
    """
    if not line or _DIALOGUE_RE.search(line):
        return False
    from novelcomic.ingest.split import parse_heading

    if parse_heading(line) is not None:
        return False  # 第3章 标题（求收藏）: the splitter strips the decoration
    core = _core(line)
    if not core:
        return False
    if _URL_RE.search(core):
        rest = _PUNCT_SPACE_RE.sub(" ", _URL_RE.sub(" ", core)).strip()
        if not rest or (len(rest.replace(" ", "")) <= _URL_REMAINDER_MAX and _AD_WORDS_RE.search(rest)):
            return True
    return _is_site_metadata(core) or any(p.match(core) for p in _BOILERPLATE_RES)


def _is_site_metadata(core: str) -> bool:
    """``更新时间:2007-11-16 7:55:51 本章字数:4804``: only metadata labels, numbers and dates."""
    if len(core) > _META_MAX or not any(c.isdigit() for c in core) or not _META_KEY_RE.search(core):
        return False
    rest = _META_NUMBER_RE.sub(" ", _META_LABEL_RE.sub(" ", core))
    return not _PUNCT_SPACE_RE.sub("", rest)


# --------------------------------------------------------------------------- re-flow

# Hard-wrapped text (Gutenberg's ~70 columns, Chinese files cut every N characters) has a break
# inside every paragraph. The wrap width is read from the book itself: the lines that run on
# into a next line cluster just under it. A line is joined to the next when it reaches the wrap
# width (for English: the next line's first word would not have fitted on it), the next line is
# not indented (an indented line starts a paragraph, or is verse) and neither is a heading or a
# scene break. Short lines (verse, letters, signatures, lists) keep their breaks.

_WRAP_MIN_INNER = 3  # lines that run on into a next line, at least
_WRAP_MIN_INNER_SHARE = 0.3  # … and this share of the non-blank lines
_WRAP_MIN_WIDTH = 30  # columns: shorter "wraps" are verse
_WRAP_MIN_CLUSTER = 0.5  # share of run-on lines within the band under the wrap width
_WRAP_MAX_OVER = 0.05  # share of run-on lines wider than the wrap width
_WRAP_MIN_OPEN = 0.3  # share of run-on lines that end without closing punctuation
_CLOSING_PUNCT = frozenset("。！？!?.…；;：:”’」』\"')）】》")
_CJK_CHAR_RE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]")
_LOCAL_WRAP_MIN_CHARS = 10  # a Chinese line cut mid-phrase without a book-wide wrap width


def _indent_width(raw: str) -> int:
    """Columns of leading whitespace (tab = 4, ideographic space = 2)."""
    width = 0
    for c in raw:
        if c == "\t":
            width += 4
        elif c == "\u3000":
            width += 2
        elif c.isspace():
            width += 1
        else:
            break
    return width


def display_width(text: str) -> int:
    """Columns ``text`` takes in a monospaced font: wide (CJK, full-width) characters count two."""
    if text.isascii():
        return len(text)
    wide, other = _wide_patterns()
    return len(text) + wide.subn("", text)[1] + sum(map(_is_wide, other.findall(text)))


@functools.lru_cache(maxsize=1 << 16)
def _is_wide(c: str) -> bool:
    return unicodedata.east_asian_width(c) in "WF"


# Blocks made (almost) only of wide characters; each code point is checked once, on first use.
_WIDE_BLOCKS = (
    (0x1100, 0x115F), (0x2E80, 0x303E), (0x3041, 0x33FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xA000, 0xA4CF),
    (0xAC00, 0xD7A3), (0xF900, 0xFAFF), (0xFE30, 0xFE4F), (0xFF00, 0xFF60), (0xFFE0, 0xFFE6),
    (0x20000, 0x2FFFD), (0x30000, 0x3FFFD),
)


@functools.cache
def _wide_patterns() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """A pattern for the wide characters of :data:`_WIDE_BLOCKS` (counted by the regex engine),
    and one for every other non-ASCII character (looked up one by one)."""
    ranges: list[tuple[int, int]] = []
    for lo, hi in _WIDE_BLOCKS:
        start = None
        for cp in range(lo, hi + 1):
            if _is_wide_cp(cp):
                start = cp if start is None else start
            elif start is not None:
                ranges.append((start, cp - 1))
                start = None
        if start is not None:
            ranges.append((start, hi))
    cls = "".join(f"\\U{a:08x}-\\U{b:08x}" for a, b in ranges)
    return re.compile(f"[{cls}]"), re.compile(f"[^\\x00-\\x7f{cls}]")


def _is_wide_cp(cp: int) -> bool:
    return unicodedata.east_asian_width(chr(cp)) in "WF"


def _is_structural(line: str) -> bool:
    """A heading or a scene break: never joined to a neighbour."""
    if not any(c.isalnum() for c in line):
        return True  # "* * *", "——", "◇◇◇"
    from novelcomic.ingest.split import parse_heading

    return parse_heading(line) is not None


def _is_open(line: str) -> bool:
    """The line does not end with sentence or closing punctuation (it runs on)."""
    return line[-1:] not in _CLOSING_PUNCT


def wrap_width(lines: list[str], indents: list[int] | None = None) -> int | None:
    """The column width a book was hard-wrapped at, or None when it was not.

    ``lines`` are stripped lines, ``indents`` their indentation in columns. Looks at the lines
    followed by a non-blank line: in a wrapped book most of them end within a few columns of
    one width, few go past it, and many end mid-sentence.
    """
    indents = indents or [0] * len(lines)
    stats = ReflowStats()
    for line, indent in zip(lines, indents):
        stats.add(line, indent, None)
    return stats.wrap_width()


@dataclass(frozen=True)
class ReflowParams:
    """What :func:`reflow` needs to know about the whole book to decide on each line."""

    width: int | None  # the wrap width (see :func:`wrap_width`)
    base: int  # the smallest indentation of a non-blank line
    punctuated: bool  # see _zh_prose
    blank_paragraphs: bool  # paragraphs are separated by blank lines, not indented


@dataclass
class ReflowStats:
    """Book-wide counts for re-flowing, gathered a line at a time (bounded: counters by width
    and by indentation, not lists of lines)."""

    nonblank: int = 0
    widths: Counter[int] = field(default_factory=Counter)  # width of each line followed by a non-blank one
    open_count: int = 0  # … of which end without closing punctuation
    indents: Counter[int] = field(default_factory=Counter)  # indentation of the non-blank lines
    blank_after: int = 0  # non-blank lines followed by a blank one
    prose: int = 0  # Chinese prose lines (see _zh_prose)
    prose_ended: int = 0  # … that end with sentence punctuation
    _previous: tuple[str, int] | None = None

    def add(self, line: str, indent: int, structural: bool | None) -> None:
        """Count one more line (``structural`` None: only what :func:`wrap_width` needs)."""
        previous = self._previous
        if previous is not None and previous[0]:
            if line:
                self.widths[previous[1] + display_width(previous[0])] += 1
                self.open_count += _is_open(previous[0])
            else:
                self.blank_after += 1
        self._previous = (line, indent)
        if not line:
            return
        self.nonblank += 1
        self.indents[indent] += 1
        if structural is False and _zh_prose(line):
            self.prose += 1
            self.prose_ended += not _zh_ends_mid_phrase(line)

    def wrap_width(self) -> int | None:
        """See :func:`wrap_width`."""
        total = sum(self.widths.values())
        if total < _WRAP_MIN_INNER or total < self.nonblank * _WRAP_MIN_INNER_SHARE:
            return None
        if self.open_count < total * _WRAP_MIN_OPEN:
            return None
        keys = sorted(self.widths)
        upto = [0]  # upto[k]: how many widths are below keys[k]
        for k in keys:
            upto.append(upto[-1] + self.widths[k])
        best_w, best_n = 0, 0
        for idx, w in enumerate(keys):
            if w < _WRAP_MIN_WIDTH:
                continue
            n = upto[idx + 1] - upto[bisect_left(keys, w - _wrap_tolerance(w))]
            if n > best_n or (n == best_n and w > best_w):
                best_w, best_n = w, n
        if best_n < total * _WRAP_MIN_CLUSTER:
            return None
        # The top of the band: the widest width that still has company (a few long lines are noise).
        over = total - upto[bisect_right(keys, best_w)]
        if over > total * _WRAP_MAX_OVER:
            return None
        return best_w

    def params(self) -> ReflowParams:
        base = min(self.indents) if self.indents else 0
        indented = sum(n for ind, n in self.indents.items() if ind > base)
        nonblank = self.nonblank
        return ReflowParams(
            width=self.wrap_width(),
            base=base,
            punctuated=self.prose >= _ZH_PUNCTUATED_MIN and self.prose_ended >= self.prose * _ZH_PUNCTUATED_SHARE,
            blank_paragraphs=self.blank_after >= nonblank * _BLANK_PARAGRAPHS_SHARE
            and indented < nonblank * _INDENTED_PARAGRAPHS_SHARE,
        )


def _wrap_tolerance(width: int) -> int:
    return max(4, round(width * 0.1))


def reflow(lines: list[str], indents: list[int] | None = None) -> list[str]:
    """Join hard-wrapped lines back into paragraphs (see the section comment); blank lines stay.

    ``lines`` are stripped; ``indents`` their original indentation in columns (all 0 when not
    known). Idempotent on its own output.
    """
    indents = indents or [0] * len(lines)
    if len(lines) < 2:
        return list(lines)
    stats = ReflowStats()
    records: list[tuple[str, int, bool]] = []
    for line, indent in zip(lines, indents):
        structural = bool(line) and _is_structural(line)
        stats.add(line, indent, structural)
        records.append((line, indent, structural))
    return list(_reflow_stream(records, stats.params()))


_Line = tuple[str, int, bool]  # a stripped line, its indentation, whether it is structural


def _reflow_stream(lines: Iterable[_Line], params: ReflowParams) -> Iterator[str]:
    """The paragraphs of :func:`reflow`, deciding on each line with its two neighbours in view."""
    before: _Line | None = None
    cur: _Line | None = None
    current = ""
    for nxt in lines:
        if cur is not None:
            current = _glue(current, cur[0]) if current else cur[0]
            if not _joins(before, cur, nxt, params):
                yield current
                current = ""
        before, cur = cur, nxt
    if cur is not None:
        yield _glue(current, cur[0]) if current else cur[0]


def _joins(before: _Line | None, cur: _Line, nxt: _Line, params: ReflowParams) -> bool:
    """Whether ``cur`` runs on into ``nxt`` (``before`` is the line above ``cur``, if any)."""
    line, indent, structural = cur
    next_line, next_indent, next_structural = nxt
    if not line or not next_line or structural or next_structural:
        return False
    if params.width is not None and next_indent <= params.base:
        if _runs_on(line, indent, next_line, params.width, params.blank_paragraphs):
            return True
    return next_indent <= indent and _cut_mid_phrase(before, cur, nxt, params.punctuated)


_BLANK_PARAGRAPHS_SHARE = 0.03
_INDENTED_PARAGRAPHS_SHARE = 0.05


def _runs_on(cur: str, indent: int, nxt: str, width: int, blank_paragraphs: bool = False) -> bool:
    """In a book wrapped at ``width``: ``cur`` was cut to make room, ``nxt`` is its continuation."""
    used = indent + display_width(cur)
    tol = _wrap_tolerance(width)
    if blank_paragraphs and used >= width - 2 * tol:
        return True
    if _CJK_CHAR_RE.match(nxt[0]) or _CJK_CHAR_RE.match(cur[-1]):
        # Chinese is cut at a character count: the line is (nearly) full.
        return used >= width - tol // 2 and (_is_open(cur) or used >= width - 1)
    first_word = nxt.split(" ", 1)[0]
    if used + 1 + display_width(first_word) > width - tol // 2:
        return True  # the next word would not have fitted
    # An uneven wrap: a line that stops mid-sentence, continued in lower case or nearly full.
    return _is_open(cur) and (nxt[0].islower() and used >= width // 2 or used >= width - 2 * tol)


_ZH_MID_PHRASE_END = "，、—"  # besides a character: a Chinese paragraph never ends on these
_ZH_PUNCTUATED_SHARE = 0.9
_ZH_PUNCTUATED_MIN = 20


_ZH_INNER_PUNCT_RE = re.compile("[，。、；]")


def _zh_prose(line: str) -> bool:
    """A Chinese prose line (some length, punctuation inside), not structural: one of those whose
    endings tell whether the book's paragraphs end with sentence punctuation as a rule (then one
    that ends on a character or a comma was cut)."""
    return (
        len(line) >= _LOCAL_WRAP_MIN_CHARS
        and _CJK_CHAR_RE.search(line) is not None
        and _ZH_INNER_PUNCT_RE.search(line, 0, len(line) - 1) is not None
    )


def _zh_ends_mid_phrase(line: str) -> bool:
    return bool(_CJK_CHAR_RE.match(line[-1])) or line[-1] in _ZH_MID_PHRASE_END


def _cut_mid_phrase(before: _Line | None, cur: _Line, nxt: _Line, punctuated: bool) -> bool:
    """A Chinese line cut in the middle of a phrase, in a book with no wrap width (a passage that
    kept its fixed-width lines): it ends on a character (or a comma) and the next line goes on
    with characters; it holds punctuation of its own (prose, not a title); it is not one of two
    parallel lines of verse (same length, punctuation in the same places). Either the book's
    prose lines end with punctuation as a rule, or a neighbour of the same length is cut too."""
    line, indent, _ = cur
    next_line = nxt[0]
    if not (_zh_ends_mid_phrase(line) and (_CJK_CHAR_RE.match(next_line[0]) or next_line[0] in "“「『")):
        return False
    if len(line) < _LOCAL_WRAP_MIN_CHARS or not any(c in _CLOSING_PUNCT or c in "，、" for c in line[:-1]):
        return False
    if _parallel(line, next_line):
        return False
    if punctuated:
        return True
    if not _CJK_CHAR_RE.match(line[-1]):
        return False
    used = indent + display_width(line)
    for other in (before, nxt):
        if other is not None and other[0] and _CJK_CHAR_RE.match(other[0][-1]):
            if abs(other[1] + display_width(other[0]) - used) <= 4:
                return True
    return False


def _parallel(a: str, b: str) -> bool:
    """Two lines of regular verse: the same length, punctuation at the same places."""
    if len(a) != len(b):
        return False
    marks = [i for i, c in enumerate(a) if not (c.isalnum() or _CJK_CHAR_RE.match(c))]
    return marks == [i for i, c in enumerate(b) if not (c.isalnum() or _CJK_CHAR_RE.match(c))]


def _glue(left: str, right: str) -> str:
    """Join a wrapped line to its continuation: no space between Chinese characters or after a
    hyphen or dash that ends a word (``well-`` + ``known``), one space otherwise."""
    a, b = left[-1], right[0]
    if _CJK_CHAR_RE.match(a) or _CJK_CHAR_RE.match(b) or unicodedata.east_asian_width(a) in "WF":
        return left + right
    if a in "—–" or (left.endswith("--")) or (a == "-" and len(left) > 1 and left[-2].isalpha() and b.isalpha()):
        return left + right
    return f"{left} {right}"


# --------------------------------------------------------------------------- language

_CJK_RE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0003134f]")
_LATIN_RE = re.compile(r"[A-Za-z\u00c0-\u024f]")
_ZH_THRESHOLD = 0.25


def detect_language(text: str) -> str:
    """``"zh"`` when CJK characters make up at least a quarter of the letters, else ``"en"``.

    Latin letters count one each (an English word is ~5 letters, a Chinese word ~2 characters),
    so a Chinese text full of English names is still Chinese and an English text with a few
    Chinese names is English. Text with no letters at all is ``"zh"`` (the project default).
    """
    sample = text[:500_000]
    cjk = len(_CJK_RE.findall(sample))
    latin = len(_LATIN_RE.findall(sample))
    if cjk + latin == 0:
        return "zh"
    return "zh" if cjk / (cjk + latin) >= _ZH_THRESHOLD else "en"
