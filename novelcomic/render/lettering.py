"""Comic lettering as a layer over any backend's frame: speech bubbles, narration captions and
sound effects, placed so that no bubble ever covers a face.

Every image backend returns a plain picture plus, where it knows them, the boxes where each
character was drawn (``ImageResult.regions``). :func:`letter_shot` reads the shot's lines and
letters them over that picture:

- one speech bubble per dialogue line of a character on screen (at most :data:`MAX_BUBBLES`),
  placed near its speaker with a tail pointing at the speaker's face;
- a rectangular caption box for narration (top-left corner first), and for a line spoken by
  someone who is not on screen (``"Name: line"``);
- a big stylised sound effect (``轰！``, ``BANG!``) when a line or the source passage holds an
  onomatopoeia from a small list.

Faces are approximated as the top :data:`FACE_FRACTION` of each character's region (a backend
that knows better passes ``faces``). Positions are chosen from candidates across the frame: a
candidate is rejected if it touches a face, another lettering item, the frame edge or the bottom
:data:`SUBTITLE_BAND` (burned-in subtitles go there); the cheapest remaining one (near the
speaker, high in the frame, off the characters' bodies) wins. With a ``safe`` area (the part of
the still that the shot's camera move keeps on screen and clear of the subtitles, see
:func:`novelcomic.compose.motion.safe_area`), "the frame" is that area: nothing lettered is cut by
the move or slides under the subtitles. A text that finds no room at any
size is dropped rather than drawn over a face (:attr:`LetteringPlan.dropped` lists it).

Planning (:func:`plan_lettering`) and drawing (:func:`draw_lettering`) are separate so a caller
can inspect where everything goes. All sizes are relative to the frame, so the same call works
on a 64-pixel thumbnail and on a supersampled 4K canvas.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from novelcomic.errors import NovelcomicError
from novelcomic.models import Line, Scene, Shot

if TYPE_CHECKING:
    from PIL.Image import Image
    from PIL.ImageFont import FreeTypeFont, ImageFont

    Font = FreeTypeFont | ImageFont

Box = tuple[int, int, int, int]
FBox = tuple[float, float, float, float]
Point = tuple[float, float]
RGB = tuple[int, int, int]

#: Fraction of the frame height at the bottom where subtitles are burned in: no lettering there.
SUBTITLE_BAND = 0.22
#: The top fraction of a character's region taken as its face when no face box is given.
FACE_FRACTION = 0.22
#: At most this many speech bubbles on one shot; further lines are heard and subtitled only.
MAX_BUBBLES = 3
#: At most this many caption boxes (narration, off-screen speakers) on one shot.
MAX_CAPTIONS = 2

INK: RGB = (34, 28, 36)
PAPER: RGB = (252, 251, 247)
CAPTION: RGB = (255, 244, 206)
GUTTER: RGB = (248, 246, 240)
TEXT: RGB = (22, 20, 26)
WHISPER_INK: RGB = (118, 114, 126)
SFX_FILL: RGB = (255, 214, 64)
SFX_LOUD_FILL: RGB = (236, 72, 52)

_LOUD = ("angry", "excited", "surprised")
_SCALES = (1.0, 0.82, 0.66, 0.52)
_NO_LINE_START = set("，。！？、；：）》」』”’…,.!?;:)]}%")

# Onomatopoeia: Chinese forms are matched as substrings (single characters only where they are
# almost never anything else, or followed by '!'), English ones as whole words.
_SFX_ZH: tuple[tuple[str, str], ...] = (
    ("轰隆", "轰隆！"), ("轰！", "轰！"), ("轰!", "轰！"), ("噼里啪啦", "噼里啪啦！"), ("哗啦", "哗啦！"),
    ("咔嚓", "咔嚓！"), ("哐当", "哐当！"), ("咣当", "咣当！"), ("当啷", "当啷！"), ("扑通", "扑通！"),
    ("砰", "砰！"), ("嘭", "嘭！"), ("啪", "啪！"), ("咚", "咚！"), ("嗖", "嗖！"), ("铛", "铛！"),
)
_SFX_EN = ("kaboom", "bang", "boom", "crash", "thud", "thump", "wham", "whoosh", "splash", "clang", "pow", "bam")
_SFX_EN_RE = re.compile(r"\b(" + "|".join(_SFX_EN) + r")\b", re.IGNORECASE)


# --------------------------------------------------------------------------- fonts and wrapping


class LetterFonts:
    """Lettering fonts by pixel size, loaded once per frame (never shared between threads).

    ``preferred`` is a family name or a font file; default: a CJK font found on the system. An
    English project falls back to Pillow's built-in font when no CJK font exists.
    """

    def __init__(self, preferred: str | None, language: str) -> None:
        if preferred is not None and not isinstance(preferred, str):
            raise NovelcomicError(f"font {preferred!r} must be a family name or a file")
        self.preferred, self.language = preferred, language
        self._cache: dict[int, Font] = {}

    def get(self, size: float) -> "Font":
        from PIL import ImageFont

        from novelcomic.fonts import pil_font

        size = max(6, int(round(size)))
        if size not in self._cache:
            try:
                self._cache[size] = pil_font(size, self.preferred)
            except (NovelcomicError, OSError):
                if self.language != "en":
                    raise
                self._cache[size] = ImageFont.load_default(size)  # Latin-only fallback for English projects
        return self._cache[size]


def wrap_text(text: str, font: "Font", max_width: float) -> list[str]:
    """Break ``text`` into lines no wider than ``max_width``: between Chinese words (the subtitles'
    rule: 灯笼 is never split), at spaces for Latin words, never starting a line with closing
    punctuation."""
    from novelcomic.compose.subtitles import break_tokens

    tokens = break_tokens(text.replace("\n", " "), "zh")
    lines: list[str] = []
    cur = ""
    for tok in tokens:
        if tok.isspace():
            if cur:
                cur += " "
            continue
        if font.getlength(cur + tok) <= max_width or not cur.strip() or tok in _NO_LINE_START:
            cur += tok
            continue
        lines.append(cur.rstrip())
        cur = tok
    if cur.strip():
        lines.append(cur.rstrip())
    return [piece for line in lines for piece in _split_long(line, font, max_width)]


def _split_long(line: str, font: "Font", max_width: float) -> list[str]:
    """A single word wider than the box is cut by characters."""
    if font.getlength(line) <= max_width * 1.08:
        return [line]
    out, cur = [], ""
    for ch in line:
        if cur and font.getlength(cur + ch) > max_width:
            out.append(cur)
            cur = ""
        cur += ch
    return out + ([cur] if cur else [])


# --------------------------------------------------------------------------- sound effects


def find_sound_effect(texts: Iterable[str], language: str = "zh") -> str | None:
    """The lettering for the first onomatopoeia in ``texts`` (``"砰！"``, ``"BANG!"``), or None.

    Chinese forms are listed so that they are not parts of ordinary words (轰 only as 轰隆 or
    轰！, never in 轰动); English ones match whole words only, case-insensitively.
    """
    for text in texts:
        if not text:
            continue
        found = [(i, shown) for key, shown in _SFX_ZH if (i := text.find(key)) >= 0]
        m = _SFX_EN_RE.search(text)
        if m:
            found.append((m.start(), m.group(1).upper() + "!"))
        if found:
            return min(found)[1]
    return None


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class LetterItem:
    """One lettered element and where it goes, in pixels of the frame."""

    kind: Literal["bubble", "caption", "sfx"]
    text: str
    box: FBox  # the body: the bubble or caption rectangle, the effect's text box
    footprint: FBox  # everything drawn except a bubble's tail (outline, burst, shadow)
    lines: tuple[str, ...] = ()
    font_size: int = 0
    line_height: float = 0.0
    pad: float = 0.0
    speaker: str | None = None
    emotion: str = "neutral"
    tail: tuple[Point, Point, Point] | None = None  # base, tip, base
    angle: float = 0.0  # sound effects are tilted


@dataclass
class LetteringPlan:
    size: tuple[int, int]
    items: list[LetterItem] = field(default_factory=list)
    faces: dict[str, FBox] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)  # texts that found no room anywhere

    def of_kind(self, kind: str) -> list[LetterItem]:
        return [i for i in self.items if i.kind == kind]


def face_boxes(
    regions: Mapping[str, Sequence[float]], faces: Mapping[str, Sequence[float]] | None = None
) -> dict[str, FBox]:
    """Each character's face: the top :data:`FACE_FRACTION` of its region, joined with an exact
    face box where one is given (a backend that drew the head, a face detector)."""
    out: dict[str, FBox] = {}
    for cid, box in regions.items():
        l, t, r, b = _check_box(box, f"region of {cid!r}")
        out[cid] = (l, t, r, t + (b - t) * FACE_FRACTION)
    for cid, box in (faces or {}).items():
        f = _check_box(box, f"face of {cid!r}")
        out[cid] = _union(out[cid], f) if cid in out else f
    return out


def plan_lettering(
    size: tuple[int, int],
    shot: Shot,
    regions: Mapping[str, Sequence[float]],
    speaker_names: Mapping[str, str],
    language: str,
    *,
    fonts: LetterFonts | None = None,
    font: str | None = None,
    faces: Mapping[str, Sequence[float]] | None = None,
    max_bubbles: int = MAX_BUBBLES,
    safe: Sequence[float] | None = None,
) -> LetteringPlan:
    """Where each bubble, caption and sound effect of ``shot`` goes on a frame of ``size``.

    ``safe``: (left, top, right, bottom) as fractions of the frame, the area lettering stays in
    (default: the whole frame above :data:`SUBTITLE_BAND`).
    """
    w, h = size
    if w <= 0 or h <= 0:
        raise NovelcomicError(f"frame size {w}x{h} must be positive")
    if not isinstance(max_bubbles, int) or max_bubbles < 0:
        raise NovelcomicError(f"max_bubbles {max_bubbles!r} must be a whole number of at least 0")
    area = check_safe_area(safe)
    fonts = fonts or LetterFonts(font, language)
    face = face_boxes(regions, faces)
    bodies = {cid: _check_box(b, f"region of {cid!r}") for cid, b in regions.items()}
    planner = _Planner(w, h, face, bodies, fonts, language, area)
    bubbles, captions = _sort_lines(shot, set(bodies), speaker_names, language, max_bubbles)
    plan = LetteringPlan(size=(w, h), faces=face)
    n_bubbles = len(bubbles)
    # Reading order is top to bottom: when someone on screen speaks before the narration, the
    # bubbles are placed first and the captions go low; otherwise captions take the top.
    spoken_first = bool(bubbles) and bool(shot.lines) and shot.lines[0] is bubbles[0]

    def place_captions() -> None:
        for text in captions:
            below = max((b.box[3] for b in plan.of_kind("bubble")), default=None) if spoken_first else None
            item = planner.caption(text, sharing=n_bubbles > 0 or len(captions) > 1, below=below)
            _keep(plan, planner, item, text)

    if not spoken_first:
        place_captions()
    for line in bubbles:
        item = planner.bubble(line, n_bubbles)
        _keep(plan, planner, item, line.text)
    if spoken_first:
        place_captions()
    effect = find_sound_effect([ln.text for ln in shot.lines] + [shot.source], language)
    if effect:
        _keep(plan, planner, planner.sound_effect(effect), effect)
    return plan


def shot_safe_area(scene: Scene, shot: Shot) -> FBox:
    """The area of ``shot``'s still that its camera move keeps on screen and clear of the
    subtitles, whatever its place in the chapter and its length (see
    :func:`novelcomic.compose.motion.safe_area`)."""
    from novelcomic.compose.motion import safe_area

    return safe_area(shot.camera.size, shot.camera.motion, shot.mood or scene.mood, SUBTITLE_BAND)


def check_safe_area(safe: Sequence[float] | None) -> FBox:
    """``safe`` as a checked (left, top, right, bottom) in fractions, its bottom never below the
    subtitle band; None: the whole frame above the band."""
    if safe is None:
        return (0.0, 0.0, 1.0, 1.0 - SUBTITLE_BAND)
    try:
        l, t, r, b = (float(v) for v in safe)
    except (TypeError, ValueError):
        raise NovelcomicError(f"safe area {safe!r} must be (left, top, right, bottom) fractions of the frame") from None
    if not (0.0 <= l < r <= 1.0 and 0.0 <= t < b <= 1.0) or r - l < 0.2 or b - t < 0.2:
        raise NovelcomicError(
            f"safe area {tuple(safe)!r} must be (left, top, right, bottom) in 0..1, at least 0.2 wide and tall"
        )
    return (l, t, r, min(b, 1.0 - SUBTITLE_BAND))


def _keep(plan: LetteringPlan, planner: "_Planner", item: LetterItem | None, text: str) -> None:
    if item is None:
        plan.dropped.append(text)
        return
    plan.items.append(item)
    planner.taken.append(item.footprint)
    if item.tail:  # later items keep off the tail too
        xs, ys = [p[0] for p in item.tail], [p[1] for p in item.tail]
        planner.taken.append((min(xs), min(ys), max(xs), max(ys)))


def _sort_lines(
    shot: Shot, on_screen: set[str], names: Mapping[str, str], language: str, max_bubbles: int
) -> tuple[list[Line], list[str]]:
    """Dialogue of characters on screen → bubbles; narration and off-screen voices → captions."""
    bubbles: list[Line] = []
    narration: list[str] = []
    off_screen: list[str] = []
    colon = ": " if language == "en" else "："
    for line in shot.lines:
        if line.is_narration:
            narration.append(line.text.strip())
        elif line.speaker in on_screen:
            if len(bubbles) < max_bubbles:
                bubbles.append(line)
        else:
            off_screen.append(f"{names.get(line.speaker, line.speaker)}{colon}{line.text.strip()}")
    captions: list[str] = []
    if narration:
        captions.append((" " if language == "en" else "").join(narration))
    captions.extend(off_screen)
    return bubbles, captions[:MAX_CAPTIONS]


class _Planner:
    """Chooses positions; ``taken`` grows as items are placed."""

    def __init__(
        self, w: int, h: int, faces: dict[str, FBox], bodies: dict[str, FBox], fonts: LetterFonts, language: str,
        area: FBox = (0.0, 0.0, 1.0, 1.0 - SUBTITLE_BAND),
    ) -> None:
        self.w, self.h = w, h
        self.unit = min(w, h)
        self.faces, self.bodies, self.fonts, self.language = faces, bodies, fonts, language
        self.margin = self.unit * 0.05
        self.gap = self.unit * 0.02
        self.lw = max(1.0, round(self.unit * 0.005))
        # the area lettering stays in, in pixels: x0..x1 across, y0..limit_y down
        self.x0, self.x1, self.y0 = area[0] * w, area[2] * w, area[1] * h
        self.aw = self.x1 - self.x0  # its width
        self.limit_y = h * area[3] - self.unit * 0.015
        self.taken: list[FBox] = []
        self.step = max(2.0, self.unit * 0.025)

    # -- text fitting

    def _fit(self, text: str, max_w: float, max_h: float, pad: float, base: float) -> tuple[int, list[str], float]:
        """The largest font (down to 60% of ``base``) whose wrapped text fits; then cut with '…'."""
        size = base
        while True:
            font = self.fonts.get(size)
            lines = wrap_text(text, font, max_w - 2 * pad)
            line_h = round(size) * 1.32
            if len(lines) * line_h + 2 * pad <= max_h or size <= base * 0.6:
                break
            size *= 0.9
        max_lines = max(1, int((max_h - 2 * pad) // line_h))
        if len(lines) > max_lines:
            lines = lines[:max_lines]
            last = lines[-1]
            while last and font.getlength(last + "…") > max_w - 2 * pad:
                last = last[:-1]
            lines[-1] = last + "…"
        return max(6, int(round(size))), lines, line_h

    def _measure(self, lines: list[str], size: int) -> float:
        font = self.fonts.get(size)
        return max(font.getlength(s) for s in lines)

    # -- constraints

    def _free(self, fp: FBox, extra: Sequence[FBox] = ()) -> bool:
        l, t, r, b = fp
        edge = self.unit * 0.02
        if l < self.x0 + edge or t < self.y0 + edge or r > self.x1 - edge or b > self.limit_y:
            return False
        if any(_overlaps(fp, _grow(f, self.gap)) for f in self.faces.values()):
            return False
        return not any(_overlaps(fp, _grow(o, self.gap * 0.5)) for o in (*self.taken, *extra))

    def _body_overlap(self, fp: FBox) -> float:
        area = max(1.0, (fp[2] - fp[0]) * (fp[3] - fp[1]))
        return sum(_intersection(fp, b) for b in self.bodies.values()) / area

    def _positions(self, iw: float, ih: float, prefer_x: float | None) -> list[tuple[float, float]]:
        m = self.margin
        x_hi, y_hi = self.x1 - m - iw, self.limit_y - ih
        if x_hi < self.x0 + m * 0.4 or y_hi < self.y0 + m * 0.4:
            return []
        x_lo = min(self.x0 + m, x_hi)
        xs = {x_lo, x_hi, (x_lo + x_hi) / 2}
        xs.update(x_lo + (x_hi - x_lo) * i / 10 for i in range(11))
        if prefer_x is not None:
            xs.add(min(max(prefer_x - iw / 2, x_lo), x_hi))
        y_lo = min(self.y0 + m, y_hi)
        ys = [y_lo + k * self.step for k in range(int(max(0.0, y_hi - y_lo) // self.step) + 1)]
        return [(x, y) for y in ys for x in sorted(xs)]

    # -- captions

    def caption(self, text: str, sharing: bool, below: float | None = None) -> LetterItem | None:
        """A caption box, as high as it fits; with ``below`` (the bottom of the bubbles said before
        it), as close under that as it fits, so the page reads in the order it is heard."""
        w, h, unit = self.w, self.h, self.unit
        full = self.aw - 2 * self.margin
        full = min(full, unit * 1.2) if w > h else full
        for scale in _SCALES:
            max_w = (full * (0.66 if sharing else 1.0)) * (0.85 + 0.15 * scale)
            max_h = h * (0.2 if sharing else 0.28) * (0.7 + 0.3 * scale)
            pad = unit * 0.028 * scale
            size, lines, line_h = self._fit(text, max_w, max_h, pad, unit * 0.05 * scale)
            iw = self._measure(lines, size) + 2 * pad
            ih = len(lines) * line_h + 2 * pad
            shadow = unit * 0.012
            best = None
            for x, y in self._positions(iw, ih, None):
                box = (x, y, x + iw, y + ih)
                fp = (x - self.lw, y - self.lw, x + iw + shadow + self.lw, y + ih + shadow + self.lw)
                if not self._free(fp):
                    continue
                height = (y - self.y0 - self.margin) if below is None else (
                    abs(y - below - self.gap) + (0 if y >= below else h))  # under the bubbles, near them
                cost = height / h * 1.5 + (x - self.x0 - self.margin) / w * 0.4 + self._body_overlap(fp) * 0.5
                if best is None or cost < best[0]:
                    best = (cost, box, fp)
            if best:
                _, box, fp = best
                return LetterItem("caption", text, box, fp, tuple(lines), size, line_h, pad)
        return None

    # -- bubbles

    def bubble(self, line: Line, n_bubbles: int) -> LetterItem | None:
        w, h, unit = self.w, self.h, self.unit
        face = self.faces[line.speaker]
        head_x = (face[0] + face[2]) / 2
        loud = line.emotion in _LOUD
        portrait = h >= w
        share = 1.0 if n_bubbles <= 1 else 0.72
        for scale in _SCALES:
            max_w = (min(w * (0.84 if portrait else 0.5), self.aw - 2 * self.margin)) * share * (0.8 + 0.2 * scale)
            max_h = h * 0.26 * (0.7 + 0.3 * scale)
            pad = unit * (0.05 if loud else 0.035) * scale
            size, lines, line_h = self._fit(line.text, max_w, max_h, pad, unit * 0.05 * scale)
            iw = self._measure(lines, size) + 2 * pad
            ih = len(lines) * line_h + 2 * pad
            if loud:  # the burst reaches ~1.2x the half extents beyond the box
                ex, ey = iw * 0.11 + self.lw * 2, ih * 0.125 + self.lw * 2
            else:
                ex = ey = self.lw * 1.5
            scored = []
            for x, y in self._positions(iw + 2 * ex, ih + 2 * ey, head_x):
                box = (x + ex, y + ey, x + ex + iw, y + ey + ih)
                fp = (x, y, x + iw + 2 * ex, y + ih + 2 * ey)
                if not self._free(fp):
                    continue
                cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
                cost = (
                    abs(cx - head_x) / w
                    + (y - self.y0 - self.margin) / h * 1.2
                    + (0.8 if cy > face[1] else 0.0)
                    + self._body_overlap(fp) * 0.5
                )
                scored.append((cost, box, fp))
            scored.sort(key=lambda s: s[0])
            for _, box, fp in scored[:60]:
                tail = self._tail(box, line.speaker)
                if tail is not None:
                    return LetterItem(
                        "bubble", line.text, box, fp, tuple(lines), size, line_h, pad,
                        speaker=line.speaker, emotion=line.emotion, tail=tail,
                    )
        return None

    def _tail(self, box: FBox, speaker: str) -> tuple[Point, Point, Point] | None:
        """A tail from the bubble toward the speaker's face, stopping short of it; None when it
        would cross another face, another item or the subtitle band."""
        l, t, r, b = box
        face = self.faces[speaker]
        cx, cy = (face[0] + face[2]) / 2, (face[1] + face[3]) / 2
        bw, bh = r - l, b - t
        if face[1] >= b:
            anchor = (min(max(cx, l + bw * 0.25), r - bw * 0.25), b)
        elif face[3] <= t:
            anchor = (min(max(cx, l + bw * 0.25), r - bw * 0.25), t)
        elif cx > r:
            anchor = (r, min(max(cy, t + bh * 0.3), b - bh * 0.3))
        else:
            anchor = (l, min(max(cy, t + bh * 0.3), b - bh * 0.3))
        dx, dy = cx - anchor[0], cy - anchor[1]
        dist = math.hypot(dx, dy)
        if dist < 1e-6:
            return None
        ux, uy = dx / dist, dy / dist
        stop = self.gap * 0.6 + self.lw * 2  # the tip's ink stays this far from the face
        entry = _ray_entry(anchor, (ux, uy), _grow(face, stop))
        if entry is None:
            return None
        length = min(entry, self.h * 0.2)
        if uy > 0:
            length = min(length, (self.limit_y - anchor[1]) / uy)
        length = max(length, 0.0)
        if length < self.unit * 0.012:
            return None
        tip = (anchor[0] + ux * length, anchor[1] + uy * length)
        half = min(bw * 0.1, self.unit * 0.035)
        inset = self.lw * 4
        px, py = -uy, ux
        base1 = (anchor[0] - ux * inset + px * half, anchor[1] - uy * inset + py * half)
        base2 = (anchor[0] - ux * inset - px * half, anchor[1] - uy * inset - py * half)
        # every point of the tail's two edges must stay clear of faces, other items and the band
        others = [_grow(f, self.lw * 1.5) for cid, f in self.faces.items()]
        others += [_grow(o, self.lw) for o in self.taken]
        for base in (base1, base2):
            for k in range(1, 17):
                f = k / 16
                p = (base[0] + (tip[0] - base[0]) * f, base[1] + (tip[1] - base[1]) * f)
                if _inside(p, box):
                    continue
                if p[1] > self.limit_y + 0.5 or any(_inside(p, o) for o in others):
                    return None
        return (base1, tip, base2)

    # -- sound effects

    def sound_effect(self, text: str) -> LetterItem | None:
        w, h, unit = self.w, self.h, self.unit
        angle = -8.0 if _hash_int("sfx:" + text) % 2 else 8.0
        for scale in (1.0, 0.8, 0.62, 0.48, 0.36):
            size = max(8, int(round(unit * 0.14 * scale)))
            font = self.fonts.get(size)
            stroke = max(1, round(size * 0.08))
            tw, th = font.getlength(text) + 2 * stroke, size * 1.25 + 2 * stroke
            rw, rh = _rotated_size(tw, th, angle)
            if rw > self.aw - 2 * self.margin:
                continue
            best = None
            for x, y in self._positions(rw, rh, w * 0.75):
                fp = (x, y, x + rw, y + rh)
                if not self._free(fp):
                    continue
                cost = ((y - self.y0 - self.margin) / h + abs((x + rw / 2) - w * 0.72) / w * 0.5
                        + self._body_overlap(fp) * 0.4)
                if best is None or cost < best[0]:
                    best = (cost, fp)
            if best:
                fp = best[1]
                return LetterItem("sfx", text, fp, fp, (text,), size, size * 1.25, float(stroke), angle=angle)
        return None


# --------------------------------------------------------------------------- drawing


def draw_lettering(image: "Image", plan: LetteringPlan, fonts: LetterFonts) -> None:
    """Draw ``plan`` onto ``image`` in place (captions, then bubbles, then the sound effect)."""
    from PIL import ImageDraw

    if image.size != plan.size:
        raise NovelcomicError(f"lettering was planned for {plan.size}, the image is {image.size}")
    draw = ImageDraw.Draw(image)
    unit = min(image.size)
    lw = max(1, round(unit * 0.005))
    for item in plan.items:
        if item.kind == "caption":
            _draw_caption(draw, item, fonts, unit, lw)
    for item in plan.items:
        if item.kind == "bubble":
            _draw_bubble(draw, item, fonts, unit, lw)
    for item in plan.items:
        if item.kind == "sfx":
            _draw_sfx(image, item, fonts)


def _draw_text(draw: "ImageDraw.ImageDraw", item: LetterItem, fonts: LetterFonts, centred: bool, fill: RGB) -> None:
    font = fonts.get(item.font_size)
    l, t, r, _ = item.box
    for i, text in enumerate(item.lines):
        x = l + item.pad if not centred else l + (r - l - font.getlength(text)) / 2
        draw.text((x, t + item.pad + i * item.line_height + item.line_height * 0.12), text, font=font, fill=fill)


def _draw_caption(draw: "ImageDraw.ImageDraw", item: LetterItem, fonts: LetterFonts, unit: int, lw: int) -> None:
    l, t, r, b = item.box
    shadow = unit * 0.012
    draw.rectangle((l + shadow, t + shadow, r + shadow, b + shadow), fill=(40, 36, 44))
    draw.rectangle((l, t, r, b), fill=CAPTION, outline=INK, width=lw)
    _draw_text(draw, item, fonts, False, TEXT)


def _draw_bubble(draw: "ImageDraw.ImageDraw", item: LetterItem, fonts: LetterFonts, unit: int, lw: int) -> None:
    """Ink the union of bubble and tail, then fill both white: one clean outline around the pair."""
    l, t, r, b = item.box
    ink = WHISPER_INK if item.emotion == "whisper" else INK
    radius = min((b - t) / 2, (r - l) / 2, unit * 0.09)
    tail = list(item.tail) if item.tail else None
    if tail:
        draw.line(tail, fill=ink, width=lw * 2, joint="curve")
    if item.emotion in _LOUD:
        spiky = _spiky_points(item.box, item.text)
        draw.polygon(spiky, fill=ink, outline=ink, width=lw * 2)
        if tail:
            draw.polygon(tail, fill=PAPER)
        draw.polygon(spiky, fill=PAPER)
    else:
        draw.rounded_rectangle((l - lw, t - lw, r + lw, b + lw), radius=radius + lw, fill=ink)
        if tail:
            draw.polygon(tail, fill=PAPER)
        draw.rounded_rectangle((l, t, r, b), radius=radius, fill=PAPER)
    _draw_text(draw, item, fonts, True, TEXT)


def _draw_sfx(image: "Image", item: LetterItem, fonts: LetterFonts) -> None:
    """Big outlined letters on a transparent layer, tilted and pasted into the footprint."""
    from PIL import Image as PILImage
    from PIL import ImageDraw

    font = fonts.get(item.font_size)
    stroke = int(item.pad)
    tw = int(math.ceil(font.getlength(item.text) + 2 * stroke))
    th = int(math.ceil(item.line_height + 2 * stroke))
    layer = PILImage.new("RGBA", (max(1, tw), max(1, th)), (0, 0, 0, 0))
    fill = SFX_LOUD_FILL if _hash_int("colour:" + item.text) % 2 else SFX_FILL
    ImageDraw.Draw(layer).text(
        (stroke, stroke + item.line_height * 0.05), item.text, font=font, fill=fill + (255,),
        stroke_width=stroke, stroke_fill=INK + (255,),
    )
    layer = layer.rotate(item.angle, resample=PILImage.BICUBIC, expand=True)
    l, t, r, b = item.footprint
    # centre the rotated layer in the footprint, cropped to it so nothing spills out
    ox = int(round(l + (r - l - layer.width) / 2))
    oy = int(round(t + (b - t - layer.height) / 2))
    fl, ft, fr, fb = (int(math.floor(l)), int(math.floor(t)), int(math.ceil(r)), int(math.ceil(b)))
    crop = layer.crop((fl - ox, ft - oy, fr - ox, fb - oy))
    base = image if image.mode == "RGBA" else None
    if base is not None:
        base.alpha_composite(crop, (fl, ft))
    else:
        image.paste(crop.convert("RGB"), (fl, ft), mask=crop.getchannel("A"))


def _spiky_points(box: FBox, text: str) -> list[Point]:
    """A burst outline around ``box`` for shouted lines (the same text gives the same burst)."""
    l, t, r, b = box
    cx, cy = (l + r) / 2, (t + b) / 2
    rx, ry = (r - l) / 2 * 1.02, (b - t) / 2 * 1.05
    rng = random.Random(_hash_int("burst:" + text))
    n = 22
    pts = []
    for i in range(n * 2):
        a = math.pi * i / n
        k = 1.12 + rng.uniform(0, 0.06) if i % 2 == 0 else 0.97
        pts.append((cx + math.cos(a) * rx * k, cy + math.sin(a) * ry * k))
    return pts


# --------------------------------------------------------------------------- public entry points


def letter_shot(
    image: "Image",
    shot: Shot,
    regions: Mapping[str, Sequence[float]],
    speaker_names: Mapping[str, str],
    language: str,
    *,
    font: str | None = None,
    faces: Mapping[str, Sequence[float]] | None = None,
    max_bubbles: int = MAX_BUBBLES,
    fonts: LetterFonts | None = None,
    safe: Sequence[float] | None = None,
) -> "Image":
    """A copy of ``image`` with ``shot``'s lines lettered over it (see the module docstring).

    ``regions`` maps character ids to where each was drawn, (left, top, right, bottom) in pixels of
    ``image``; characters without a region count as off screen (their lines become captions).
    ``safe``: the area lettering stays in, as in :func:`plan_lettering`.
    """
    from PIL import Image as PILImage

    if not isinstance(image, PILImage.Image):
        raise NovelcomicError(f"letter_shot needs a PIL image, got {type(image).__name__}")
    fonts = fonts or LetterFonts(font, language)
    out = image.convert("RGB") if image.mode not in ("RGB", "RGBA") else image.copy()
    plan = plan_lettering(out.size, shot, regions, speaker_names, language, fonts=fonts, faces=faces,
                          max_bubbles=max_bubbles, safe=safe)
    draw_lettering(out, plan, fonts)
    return out


def panel_border(image: "Image") -> None:
    """Draw a light gutter and an ink frame line around ``image`` in place, like a comic panel."""
    from PIL import ImageDraw

    w, h = image.size
    unit = min(w, h)
    gutter, line = max(2, round(unit * 0.012)), max(2, round(unit * 0.0045))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, w - 1, h - 1), outline=GUTTER, width=gutter)
    draw.rectangle((gutter, gutter, w - 1 - gutter, h - 1 - gutter), outline=INK, width=line)


def letter_panel(image: "Image") -> "Image":
    """A copy of ``image`` framed as a comic panel: a paper gutter around an ink border."""
    out = image.convert("RGB") if image.mode not in ("RGB", "RGBA") else image.copy()
    panel_border(out)
    return out


# --------------------------------------------------------------------------- geometry


def _hash_int(text: str) -> int:
    """A stable 64-bit number for ``text`` (Python's hash() is salted per process)."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def _check_box(box: Sequence[float], what: str) -> FBox:
    try:
        l, t, r, b = (float(v) for v in box)
    except (TypeError, ValueError):
        raise NovelcomicError(f"{what} {box!r} must be (left, top, right, bottom)") from None
    if r <= l or b <= t:
        raise NovelcomicError(f"{what} {box!r} is empty: right must exceed left and bottom top")
    return (l, t, r, b)


def _grow(box: FBox, d: float) -> FBox:
    return (box[0] - d, box[1] - d, box[2] + d, box[3] + d)


def _union(a: FBox, b: FBox) -> FBox:
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def _overlaps(a: FBox, b: FBox) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _intersection(a: FBox, b: FBox) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return w * h if w > 0 and h > 0 else 0.0


def _inside(p: Point, box: FBox) -> bool:
    return box[0] <= p[0] <= box[2] and box[1] <= p[1] <= box[3]


def _ray_entry(origin: Point, direction: Point, box: FBox) -> float | None:
    """Distance along the ray to where it enters ``box`` (slab method); None if it misses."""
    lo, hi = 0.0, math.inf
    for o, d, a, b in ((origin[0], direction[0], box[0], box[2]), (origin[1], direction[1], box[1], box[3])):
        if abs(d) < 1e-12:
            if not a <= o <= b:
                return None
            continue
        t1, t2 = (a - o) / d, (b - o) / d
        lo, hi = max(lo, min(t1, t2)), min(hi, max(t1, t2))
    return lo if lo <= hi else None


def _rotated_size(w: float, h: float, angle: float) -> tuple[float, float]:
    a = math.radians(abs(angle))
    return (w * math.cos(a) + h * math.sin(a) + 2, w * math.sin(a) + h * math.cos(a) + 2)


__all__ = [
    "FACE_FRACTION", "MAX_BUBBLES", "SUBTITLE_BAND", "LetterFonts", "LetterItem", "LetteringPlan",
    "draw_lettering", "face_boxes", "find_sound_effect", "letter_panel", "letter_shot", "panel_border",
    "plan_lettering", "wrap_text",
]
