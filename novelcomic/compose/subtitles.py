"""Subtitles: SRT for players and platforms, ASS for burning in with libass.

The SRT has exactly one cue per voiced line, timed to its audio. The ASS is laid out for the
frame: text wrapped to the frame's width (Chinese by display width, with 避头尾 — no line starts
with closing punctuation nor ends with opening punctuation; English on word boundaries), at most
two lines per cue (longer cues become consecutive cues sharing the line's time in proportion to
their length), bottom-centred in the bottom band, outlined. Narration and dialogue have their own
styles; dialogue starts with the speaker's name in a colour of its own.

With karaoke on and word timings known (edge-tts gives them), each word lights up as it is spoken
(ASS ``\\k`` tags: words not yet spoken are grey).
"""

from __future__ import annotations

import math
import re
import unicodedata
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path

from novelcomic.compose.base import Cue
from novelcomic.fsutil import atomic_write_text

# 避头尾: characters that may not start a line / may not end one.
CLOSING = set("，。！？、；：”’）》」』】〕〉…—～·,.!?;:)]}%") | {"\u2026"}
OPENING = set("“‘（《「『【〔〈([{")
BREAK_AFTER = set("，。！？、；：,.!?;:")  # preferred places to break a line
MAX_LINES = 2

NARRATION_COLOUR = (255, 246, 228)  # warm white
DIALOGUE_COLOUR = (255, 255, 255)
SPEAKER_COLOURS = [
    (255, 214, 102),  # gold
    (128, 208, 255),  # sky
    (255, 153, 194),  # pink
    (140, 230, 170),  # mint
    (196, 176, 255),  # lavender
    (255, 178, 120),  # orange
]


# --------------------------------------------------------------------------- measuring and wrapping


def char_units(ch: str, language: str = "zh") -> int:
    """Display width of one character: 2 for full-width (and, in Chinese text, ambiguous) ones."""
    eaw = unicodedata.east_asian_width(ch)
    if eaw in ("W", "F") or (eaw == "A" and language == "zh"):
        return 2
    return 1


def text_units(text: str, language: str = "zh") -> int:
    """Display width of ``text`` in half-width units."""
    return sum(char_units(c, language) for c in text)


_TOKEN_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’\-.]*|\s+|.", re.S)


_CJK_RE = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
MAX_WORD = 4  # a Chinese word longer than this may still be broken (rare: long names, 成语 chains)


def break_tokens(text: str, language: str = "zh") -> list[str]:
    """Unbreakable pieces: a Latin word or number, a run of spaces, a Chinese word (jieba, up to
    :data:`MAX_WORD` characters, so that 儿子 or 叮叮当当 is never split over two lines), or any
    other single character."""
    if language != "zh" or not _CJK_RE.search(text):
        return _TOKEN_RE.findall(text)
    out: list[str] = []
    for word in _segment(text):
        if _CJK_RE.search(word) and len(word) <= MAX_WORD and all(_CJK_RE.match(c) for c in word):
            out.append(word)
        else:
            out.extend(_TOKEN_RE.findall(word))
    return out


def _segment(text: str) -> list[str]:
    """jieba's words of ``text`` (imported on first use: importing novelcomic stays cheap)."""
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    return jieba.lcut(text, HMM=False)


def wrap_text(text: str, max_units: int, language: str = "zh") -> list[str]:
    """Break ``text`` into lines of at most ``max_units`` display units.

    Lines are balanced (a two-line cue gets two similar lines), break preferably after
    punctuation, and obey 避头尾: closing punctuation that would start a line hangs at the end of
    the previous one, opening punctuation that would end a line moves to the next. English breaks
    on spaces only (a word longer than a line is cut). Existing newlines are kept as breaks.
    """
    if max_units < 2:
        raise ValueError(f"max_units must be at least 2, got {max_units}")
    lines: list[str] = []
    for para in text.replace("\r", "").split("\n"):
        para = para.strip()
        if not para:
            continue
        total = text_units(para, language)
        count = max(1, math.ceil(total / max_units))
        balanced = min(max_units, math.ceil(total / count) + 1)
        candidates = [  # best first; the first with the fewest lines wins
            _wrap_paragraph(para, target, max_units, language, prefer_punctuation=punct)
            for target in (balanced, max_units)
            for punct in (True, False)
        ]
        fewest = min(len(c) for c in candidates)
        lines.extend(next(c for c in candidates if len(c) == fewest))
    return lines


def _wrap_paragraph(text: str, target: int, max_units: int, language: str, *, prefer_punctuation: bool) -> list[str]:
    tokens = break_tokens(text, language)
    lines: list[list[str]] = [[]]
    width = 0
    for tok in tokens:
        w = text_units(tok, language)
        current = lines[-1]
        if tok.isspace():
            if current:
                current.append(tok)
                width += w
            continue
        if current and width + w > target and tok not in CLOSING:  # closing punctuation hangs (避头尾)
            carry = _break_point(current, target, language) if prefer_punctuation else len(current)
            while carry > 1 and current[carry - 1] in OPENING:  # an opening mark goes down with its words
                carry -= 1
            lines[-1], moved = current[:carry], current[carry:]
            lines.append(moved)
            current = lines[-1]
            width = text_units("".join(moved), language)
        if w > max_units:  # a word longer than a whole line: cut it
            for piece in _cut(tok, max_units, language):
                if current and width + text_units(piece, language) > max_units:
                    lines.append([])
                    current, width = lines[-1], 0
                current.append(piece)
                width += text_units(piece, language)
            continue
        current.append(tok)
        width += w
    out = ["".join(line).strip() for line in lines]
    return _kinsoku([line for line in out if line])


def _break_point(line: list[str], target: int, language: str) -> int:
    """Where to end ``line`` (index into its tokens): after late punctuation if any, else at its end."""
    width = 0
    best = len(line)
    for i, tok in enumerate(line):
        width += text_units(tok, language)
        if (tok in BREAK_AFTER or tok.isspace()) and width >= 0.6 * target and i < len(line) - 1:
            best = i + 1
    return best


def _cut(word: str, size: int, language: str) -> list[str]:
    pieces, cur = [], ""
    for ch in word:
        if cur and text_units(cur + ch, language) > size:
            pieces.append(cur)
            cur = ""
        cur += ch
    if cur:
        pieces.append(cur)
    return pieces


def _kinsoku(lines: list[str]) -> list[str]:
    """Move leading closing punctuation up a line and trailing opening punctuation down a line."""
    lines = list(lines)
    for i in range(1, len(lines)):
        head = 0
        while head < len(lines[i]) and lines[i][head] in CLOSING:
            head += 1
        if head:
            lines[i - 1] += lines[i][:head]
            lines[i] = lines[i][head:].lstrip()
    for i in range(len(lines) - 1):
        tail = len(lines[i])
        while tail > 0 and lines[i][tail - 1] in OPENING:
            tail -= 1
        if tail < len(lines[i]):
            lines[i + 1] = lines[i][tail:] + lines[i + 1]
            lines[i] = lines[i][:tail].rstrip()
    return [line for line in lines if line]


# --------------------------------------------------------------------------- layout


def default_font_size(width: int, height: int) -> int:
    """Subtitle size in pixels for a frame: 6.5% of its shorter side (70 px at 1080p)."""
    return max(12, round(min(width, height) * 0.065))


def margins(width: int, height: int) -> tuple[int, int]:
    """(side margin, bottom margin) in pixels: the text sits in the frame's bottom band."""
    portrait = height > width
    return round(width * 0.06), round(height * (0.12 if portrait else 0.07))


def max_line_units(width: int, height: int, font_size: int) -> int:
    """How many half-width units fit on one subtitle line."""
    side, _ = margins(width, height)
    return max(4, int((width - 2 * side) / (font_size * 0.5)) - 1)


def display_text(cue: Cue, language: str = "zh") -> str:
    """What a cue shows: dialogue is prefixed with the speaker's name."""
    if cue.is_narration or not cue.speaker_name:
        return cue.text.strip()
    return f"{cue.speaker_name}{_name_sep(language)}{cue.text.strip()}"


def _name_sep(language: str) -> str:
    return "：" if language == "zh" else ": "


def layout_cues(cues: Iterable[Cue], width: int, height: int, font_size: int | None = None, language: str = "zh") -> list[Cue]:
    """Cues as the ASS shows them: text (name included) wrapped into ≤2 lines joined by ``\\n``;
    a longer one split into consecutive cues over its time, proportionally to their length."""
    size = font_size or default_font_size(width, height)
    units = max_line_units(width, height, size)
    out: list[Cue] = []
    for cue in cues:
        chunks = cue_chunks(display_text(cue, language), units, language)
        if chunks:
            out.extend(_spread(cue, chunks, language))
    return out


SENTENCE_END = set("。！？；!?;…")


def cue_chunks(text: str, max_units: int, language: str = "zh") -> list[str]:
    """``text`` as screenfuls of at most :data:`MAX_LINES` wrapped lines (joined by ``\\n``).

    Whole sentences are packed together while they fit; a sentence too long for one screen is
    split at commas, and a clause still too long at line breaks.
    """
    screens: list[str] = []
    current = ""
    for piece in _pieces(text, SENTENCE_END):
        if current and len(wrap_text(current + piece, max_units, language)) > MAX_LINES:
            screens.append(current)
            current = ""
        current += piece
        if len(wrap_text(current, max_units, language)) > MAX_LINES:
            screens.extend(_split_long(current, max_units, language))
            current = ""
    if current.strip():
        screens.append(current)
    return ["\n".join(wrap_text(s, max_units, language)) for s in screens if s.strip()]


def _split_long(text: str, max_units: int, language: str) -> list[str]:
    screens, current = [], ""
    for clause in _pieces(text, BREAK_AFTER):
        if current and len(wrap_text(current + clause, max_units, language)) > MAX_LINES:
            screens.append(current)
            current = ""
        current += clause
    if current:
        lines = wrap_text(current, max_units, language)
        if len(lines) > MAX_LINES:
            joiner = "" if language == "zh" else " "
            screens.extend(joiner.join(lines[i : i + MAX_LINES]) for i in range(0, len(lines), MAX_LINES))
        else:
            screens.append(current)
    return screens


def _pieces(text: str, enders: set[str]) -> list[str]:
    """Split after any of ``enders`` (keeping closing quotes/brackets with the piece they end)."""
    pieces, cur, i = [], "", 0
    while i < len(text):
        cur += text[i]
        if text[i] in enders:
            while i + 1 < len(text) and (text[i + 1] in CLOSING or text[i + 1].isspace()):
                i += 1
                cur += text[i]
            pieces.append(cur)
            cur = ""
        i += 1
    if cur:
        pieces.append(cur)
    return pieces


def _spread(cue: Cue, chunks: list[str], language: str) -> list[Cue]:
    weights = [max(1, text_units(c.replace("\n", ""), language)) for c in chunks]
    total = sum(weights)
    out, t, acc = [], cue.start, 0
    for chunk, w in zip(chunks, weights):
        acc += w
        end = cue.end if acc == total else cue.start + (cue.end - cue.start) * acc / total
        out.append(replace(cue, start=t, end=end, text=chunk))
        t = end
    return out


# --------------------------------------------------------------------------- SRT


def srt_time(seconds: float) -> str:
    """``HH:MM:SS,mmm``."""
    ms = max(0, round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d},{ms:03d}"


def srt_document(cues: Sequence[Cue]) -> str:
    """One SRT entry per cue, numbered from 1, in time order."""
    blocks = []
    for i, cue in enumerate(sorted(cues, key=lambda c: c.start), 1):
        text = "\n".join(ln for ln in cue.text.replace("\r", "").split("\n") if ln.strip()) or " "
        blocks.append(f"{i}\n{srt_time(cue.start)} --> {srt_time(cue.end)}\n{text}\n")
    return "\n".join(blocks)


def write_srt(cues: Sequence[Cue], path: str | Path) -> Path:
    """Write ``cues`` as UTF-8 SRT, atomically."""
    return atomic_write_text(path, srt_document(cues))


# --------------------------------------------------------------------------- ASS


def ass_time(seconds: float) -> str:
    """``H:MM:SS.cc`` (ASS counts centiseconds), rounded down: a time on a frame boundary then
    never lands after that frame (frames are 3.3 cs apart at 30 fps), so an event that starts
    where a segment starts shows on the segment's first frame, wherever the segment sits."""
    cs = max(0, math.floor(seconds * 100 + 1e-6))
    h, rest = divmod(cs, 360_000)
    m, rest = divmod(rest, 6000)
    s, cs = divmod(rest, 100)
    return f"{h:d}:{m:02d}:{s:02d}.{cs:02d}"


def ass_colour(rgb: tuple[int, int, int], alpha: int = 0) -> str:
    """``&HAABBGGRR`` as styles want it."""
    r, g, b = rgb
    return f"&H{alpha:02X}{b:02X}{g:02X}{r:02X}"


def speaker_colour(speaker: str) -> tuple[int, int, int]:
    """A stable colour per speaker id (the same in every run and every segment)."""
    return SPEAKER_COLOURS[zlib.crc32(speaker.encode("utf-8")) % len(SPEAKER_COLOURS)]


def ass_header(width: int, height: int, font_family: str, font_size: int) -> str:
    side, bottom = margins(width, height)
    outline = max(1.0, round(font_size * 0.09, 1))
    shadow = max(0.5, round(font_size * 0.04, 1))
    fmt = (
        "Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, "
        "Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, "
        "MarginL, MarginR, MarginV, Encoding"
    )

    def style(name: str, colour: tuple[int, int, int]) -> str:
        return (
            f"Style: {name},{font_family},{font_size},{ass_colour(colour)},{ass_colour(colour)},"
            f"{ass_colour((0, 0, 0))},{ass_colour((0, 0, 0), 0x60)},0,0,0,0,100,100,0,0,1,{outline},{shadow},"
            f"2,{side},{side},{bottom},1"
        )

    return "\n".join(
        [
            "[Script Info]",
            "; written by novelcomic",
            "ScriptType: v4.00+",
            f"PlayResX: {width}",
            f"PlayResY: {height}",
            "WrapStyle: 2",
            "ScaledBorderAndShadow: yes",
            "",
            "[V4+ Styles]",
            fmt,
            style("Narration", NARRATION_COLOUR),
            style("Dialogue", DIALOGUE_COLOUR),
            "",
            "[Events]",
            "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text",
        ]
    )


def _ass_escape(text: str) -> str:
    return text.replace("\\", "＼").replace("{", "｛").replace("}", "｝").replace("\n", "\\N")


KARAOKE_UNSPOKEN = (150, 150, 150)


def karaoke_body(text: str, start: float, end: float, words: Sequence[tuple[float, float, str]]) -> str | None:
    """``text`` with ``\\k`` tags lighting each word at its time, or None when no word is found in it.

    ``words`` are (start, end, word) on the same clock as ``start``/``end``; only words overlapping
    [start, end] are matched, in order, against ``text`` (case-insensitive). Text between words
    (punctuation, spaces, the speaker's name) lights up with the word before it.
    """
    pieces: list[list] = []  # [text, time it lights up]
    cursor = 0
    low = text.lower()
    for ws, we, word in sorted(words):
        word = word.strip()
        if not word or we <= start - 0.05 or ws >= end + 0.05:
            continue
        idx = low.find(word.lower(), cursor)
        if idx < 0:
            continue
        lead = text[cursor:idx]
        if lead:
            if pieces:
                pieces[-1][0] += lead
            else:
                pieces.append([lead, start])
        at = min(max(ws, start, pieces[-1][1] if pieces else start), end)
        pieces.append([text[idx : idx + len(word)], at])
        cursor = idx + len(word)
    if not any(p[0].strip() for p in pieces) or cursor == 0:
        return None
    pieces[-1][0] += text[cursor:]
    if pieces[0][1] > start:  # \\k counts from the event's start: wait for the first word
        pieces.insert(0, ["", start])
    out = []
    for i, (piece, at) in enumerate(pieces):
        nxt = pieces[i + 1][1] if i + 1 < len(pieces) else end
        out.append(f"{{\\k{max(0, round((nxt - at) * 100))}}}{_ass_escape(piece)}")
    r, g, b = KARAOKE_UNSPOKEN
    return f"{{\\2c&H{b:02X}{g:02X}{r:02X}&}}" + "".join(out)


def ass_event(cue: Cue, language: str = "zh", karaoke: bool = False) -> str:
    """One ``Dialogue:`` line; a dialogue cue that starts with its speaker's name gets it coloured.

    With ``karaoke`` and word timings on the cue, the words light up as they are spoken.
    """
    style = "Narration" if cue.is_narration else "Dialogue"
    text = cue.text
    prefix = f"{cue.speaker_name}{_name_sep(language)}" if cue.speaker_name and not cue.is_narration else ""
    head = prefix.rstrip() if prefix and text.startswith(prefix.rstrip()) else ""
    body_text = text[len(head) :]
    body = (karaoke_body(body_text, cue.start, cue.end, cue.words) if karaoke and cue.words else None) or _ass_escape(body_text)
    if head:
        r, g, b = speaker_colour(cue.speaker)
        rendered = f"{{\\c&H{b:02X}{g:02X}{r:02X}&}}{_ass_escape(head)}{{\\r}}{body}"
    else:
        rendered = body
    name = cue.speaker.replace(",", " ")
    return f"Dialogue: 0,{ass_time(cue.start)},{ass_time(cue.end)},{style},{name},0,0,0,,{rendered}"


def ass_document(
    laid_out: Iterable[Cue],
    width: int,
    height: int,
    font_family: str,
    font_size: int | None = None,
    language: str = "zh",
    karaoke: bool = False,
) -> str:
    """An ASS script for cues already passed through :func:`layout_cues` (``karaoke``: see :func:`ass_event`)."""
    size = font_size or default_font_size(width, height)
    events = [ass_event(c, language, karaoke) for c in sorted(laid_out, key=lambda c: c.start) if c.end > c.start]
    return ass_header(width, height, font_family, size) + "\n" + "\n".join(events) + "\n"


def write_ass(
    cues: Sequence[Cue],
    path: str | Path,
    width: int,
    height: int,
    font_family: str,
    font_size: int | None = None,
    language: str = "zh",
    karaoke: bool = False,
) -> Path:
    """Lay out ``cues`` for a ``width``×``height`` frame and write them as an ASS script, atomically."""
    laid = layout_cues(cues, width, height, font_size, language)
    return atomic_write_text(path, ass_document(laid, width, height, font_family, font_size, language, karaoke))
