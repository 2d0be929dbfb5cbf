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

import re
import unicodedata

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
_DIALOGUE_CHARS = frozenset("“”「」『』\"")

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
    )
)


def clean_text(text: str) -> str:
    """Normalise whitespace and remove download-site boilerplate; the result ends with one newline.

    Newlines become ``\\n``; tabs, ideographic and other special spaces become single spaces;
    each line loses its indentation and trailing spaces; invisible characters go; boilerplate
    lines (see the module docstring) are dropped; a Project Gutenberg text keeps only what lies
    between its START and END markers; runs of blank lines shrink to one blank line. Scene-break
    lines such as ``***`` or ``——`` stay. Idempotent. Returns ``""`` when nothing is left.
    """
    text = _NEWLINES_RE.sub("\n", text)
    text = _INVISIBLE_RE.sub("", text)
    text, gutenberg = _strip_gutenberg(text)
    lines = [_SPACES_RE.sub(" ", line).strip() for line in text.split("\n")]
    if gutenberg:
        lines = _drop_gutenberg_credits(lines)
    kept = [line for line in lines if not is_boilerplate(line)]
    out = _BLANK_RUN_RE.sub("\n\n", "\n".join(kept)).strip("\n")
    return out + "\n" if out else ""


def _strip_gutenberg(text: str) -> tuple[str, bool]:
    """Keep what lies between the Gutenberg START and END markers; report whether any was found."""
    found = False
    start = _GUTENBERG_START_RE.search(text)
    if start:
        text = text[start.end() :]
        found = True
    end = _GUTENBERG_END_RE.search(text)
    if end:
        text = text[: end.start()]
        found = True
    return text, found


def _drop_gutenberg_credits(lines: list[str]) -> list[str]:
    """Drop "Produced by …" credits among the first non-blank lines of a Gutenberg text."""
    out: list[str] = []
    seen = 0
    for line in lines:
        if line and seen < _GUTENBERG_CREDIT_WINDOW:
            seen += 1
            if _GUTENBERG_CREDIT_RE.match(line):
                continue
        out.append(line)
    return out


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
    if not line or any(c in _DIALOGUE_CHARS for c in line):
        return False
    core = _core(line)
    if not core:
        return False
    if _URL_RE.search(core):
        rest = _PUNCT_SPACE_RE.sub(" ", _URL_RE.sub(" ", core)).strip()
        if not rest or (len(rest.replace(" ", "")) <= _URL_REMAINDER_MAX and _AD_WORDS_RE.search(rest)):
            return True
    return any(p.match(core) for p in _BOILERPLATE_RES)


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
