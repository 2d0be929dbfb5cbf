"""The embedded default image backend: an "animatic" drawn with Pillow, no model needed.

Every character is drawn from its :class:`~novelcomic.render.look.CharacterLook`, which depends
only on the character, so a character looks the same on its sheet and in every shot. A shot is a
comic panel: a backdrop for the location (sky, horizon and silhouettes chosen from the
location's words, or a room), a mood tint, the characters arranged left to right and framed by
the camera size, and the shot's lines lettered by :mod:`novelcomic.render.lettering` (speech
bubbles whose tails point at their speakers and never cover a face, narration captions, sound
effects). The bottom :data:`SUBTITLE_BAND` of the frame is kept free of lettering because
burned-in subtitles go there.

Frames are drawn at ``supersample`` times the requested size and reduced, which anti-aliases
shapes and text. Everything is deterministic: the location's id decides its scenery, the seed
only moves clouds and stars.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from novelcomic.errors import NovelcomicError
from novelcomic.models import Line, Location, Prop, Shot
from novelcomic.render.base import ImageCapabilities, ImageResult, SheetRequest, ShotRequest, check_size
from novelcomic.render.lettering import (
    SUBTITLE_BAND,
    LetterFonts,
    check_safe_area,
    draw_lettering,
    panel_border,
    plan_lettering,
    wrap_text,
)
from novelcomic.render.look import (
    INK,
    RGB,
    CharacterLook,
    DrawnFigure,
    Framing,
    Pose,
    chin_to_cut,
    draw_character,
    figure_aspect,
    figure_box,
    figure_scale,
    head_box,
    look_for,
    mix,
    named_colours,
    shade,
)

Box = tuple[int, int, int, int]
FBox = tuple[float, float, float, float]

MIN_SIZE, MAX_SIZE = 64, 8192

SHEET_BG: RGB = (243, 241, 235)

_FRAMING: dict[str, Framing] = {
    "extreme_wide": "full", "wide": "full", "full": "full",
    "medium": "medium", "close_up": "bust", "extreme_close_up": "face",
}
_MOOD_EXPRESSION = {"joyful": "happy", "sad": "sad", "action": "angry"}
_POSE_LABELS = {
    "zh": {"front": "正面", "three_quarter": "四分之三侧", "side": "侧面", "back": "背面", "face": "面部"},
    "en": {"front": "front", "three_quarter": "three-quarter", "side": "side", "back": "back", "face": "face"},
}
_SWATCH_LABELS = {
    "zh": {"skin": "肤色", "hair": "发色", "clothing": "服装", "accent": "点缀", "lower": "下装"},
    "en": {"skin": "skin", "hair": "hair", "clothing": "clothing", "accent": "accent", "lower": "lower"},
}


class AnimaticBackend:
    """Pillow-drawn character sheets and comic-panel shots (``stages.render.backend: animatic``).

    Options (``stages.render.options`` in project.yaml):

    - ``lettering``: letter the shot's lines (bubbles, captions, sound effects; default true)
    - ``border``: draw the panel border (default true)
    - ``supersample``: draw at this multiple of the size and reduce, 1-4 (default 2)
    - ``font``: a font family or file for lettering (default: a CJK font found on the system)
    """

    name = "animatic"
    # draws from the shot itself (no written prompt), letters its stills, and can hand back the
    # still before lettering for the animate stage
    capabilities = ImageCapabilities(prompts=False, plain_still=True)

    def __init__(
        self, lettering: bool = True, border: bool = True, supersample: int = 2, font: str | None = None
    ) -> None:
        where = "stages.render.options."
        for key, value in (("lettering", lettering), ("border", border)):
            if not isinstance(value, bool):
                raise NovelcomicError(f"{key} must be true or false, not {value!r}", field=where + key)
        if not isinstance(supersample, int) or isinstance(supersample, bool) or not 1 <= supersample <= 4:
            raise NovelcomicError(f"supersample {supersample!r} must be 1 to 4", field=where + "supersample")
        if font is not None and not isinstance(font, str):
            raise NovelcomicError(f"font {font!r} must be a family name or a file", field=where + "font")
        self.lettering = lettering
        self.border = border
        self.supersample = supersample
        self.font = font
        # set by the render stage while the animate stage is on: the unlettered still comes back
        # in meta["plain_image"] (the pipeline saves it and takes it out of the record)
        self.keep_plain = False

    # ----------------------------------------------------------------- checks

    def check_inputs(self, request: SheetRequest | ShotRequest) -> None:
        """Reject a request this backend cannot draw, with an error naming the bad value."""
        if not isinstance(request, (SheetRequest, ShotRequest)):
            raise NovelcomicError(f"expected a SheetRequest or ShotRequest, got {type(request).__name__}")
        _check_dimensions(request.width, request.height)
        if not isinstance(request.seed, int):
            raise NovelcomicError(f"seed {request.seed!r} must be an integer")
        if not isinstance(request.style, list) or not all(isinstance(s, str) for s in request.style):
            raise NovelcomicError(f"style {request.style!r} must be a list of style names")
        if isinstance(request, ShotRequest):
            _check_shot_request(request)

    # ----------------------------------------------------------------- design

    def design_character(self, request: SheetRequest) -> ImageResult:
        """A turnaround sheet: name on top, front / three-quarter / side / back / face, palette swatches."""
        self.check_inputs(request)
        ss = self.supersample
        look = look_for(request.character, character_period(request, request.character), request.language)
        canvas = Image.new("RGB", (request.width * ss, request.height * ss), SHEET_BG)
        fonts = LetterFonts(self.font, request.language)
        sheet = _SheetPainter(canvas, look, request, fonts)
        regions = sheet.paint()
        image = _reduce(canvas, ss)
        return ImageResult(
            image=image,
            seed=request.seed,
            regions={k: _scale_box(v, ss, image.size) for k, v in regions.items()},
            meta={"backend": self.name, "look": _look_meta(look)},
        )

    # ----------------------------------------------------------------- render

    def render_shot(self, request: ShotRequest) -> ImageResult:
        """A comic panel for one shot; ``regions`` maps each drawn character id to its box."""
        self.check_inputs(request)
        ss = self.supersample
        w, h = request.width * ss, request.height * ss
        shot = request.shot
        scenery = _Scenery.for_request(request)
        ground = scenery.ground_y(h, shot.camera.angle)
        canvas = _Backdrop(scenery, w, h, request.seed, shot.camera.angle).paint()
        _apply_mood(canvas, shot.mood or request.scene.mood)
        looks = {
            ref.character.id: look_for(ref.character, character_period(request, ref.character), request.language)
            for ref in request.characters
        }
        safe = check_safe_area(request.safe_area)
        placements = _layout(shot, looks, w, h, ground, safe)
        for p in placements:
            if p.speaker:
                _glow(canvas, p.box)
        prop_boxes = _draw_props(canvas, request.props, placements, w, h, ground, scenery.region)
        groups = {ref.character.id for ref in request.characters if getattr(ref.character, "group", False)}
        drawn = _draw_figures(canvas, placements, groups)
        line = key_line(shot)
        plan = None
        lettering = self.lettering and request.lettering
        plain = None
        if lettering and shot.lines and self.keep_plain:
            bare = canvas.copy()  # what the lettering will be drawn over, with the same border
            if self.border:
                panel_border(bare)
            plain = _reduce(bare, ss)
        if lettering and shot.lines:
            # lettered at the supersampled size (anti-aliased text); faces are the drawn heads
            fonts = LetterFonts(self.font, request.language)
            plan = plan_lettering(
                canvas.size, shot, {cid: fig.box for cid, fig in drawn.items()}, request.speaker_names,
                request.language, fonts=fonts, faces={cid: fig.head for cid, fig in drawn.items()}, safe=safe,
            )
            draw_lettering(canvas, plan, fonts)
        if self.border:
            panel_border(canvas)
        image = _reduce(canvas, ss)
        return ImageResult(
            image=image,
            seed=request.seed,
            regions={cid: _scale_box(fig.box, ss, image.size) for cid, fig in drawn.items()},
            meta={
                "backend": self.name,
                "key_line": line.text if line and lettering else None,
                "lettered": lettering,
                "lettering": [item.text for item in plan.items] if plan else [],
                "time_of_day": scenery.time,
                "interior": scenery.interior,
                "scenery": list(scenery.elements),
                "kind": scenery.kind,
                "region": scenery.region,
                "weather": scenery.weather,
                "props": {pid: _scale_box(b, ss, image.size) for pid, b in prop_boxes.items()},
                # where each figure's eyes and mouth are, for the talking animatic (compose/talking.py)
                "figures": [face_marks(p, ss) for p in placements if p.character_id in drawn],
                **({"plain_image": plain} if plain is not None else {}),
            },
        )


# --------------------------------------------------------------------------- input checks


def face_marks(p: "_Placement", ss: int) -> dict[str, Any]:
    """Where a drawn figure's head, eyes and mouth are, in pixels of the reduced image: the same
    arithmetic :func:`~novelcomic.render.look.draw_character` places them by (its figure units
    mapped into the placement's box). A figure seen from the back has no eyes or mouth."""
    from novelcomic.render.look import _fit_figure, _geometry

    look = p.look
    left, top, right, bottom = (int(round(v)) for v in p.box)
    bw, bh = right - left, bottom - top
    s, oy = _fit_figure(look, p.framing, bw, bh)
    g = _geometry(look, p.pose)

    def px(x: float, y: float) -> list[float]:
        return [round((left + bw / 2 + p.facing * x * s) / ss, 2), round((top + oy + y * s) / ss, 2)]

    head = px(-g.head_rx, g.head_cy - g.head_ry) + px(g.head_rx, g.head_cy + g.head_ry)
    head = [min(head[0], head[2]), head[1], max(head[0], head[2]), head[3]]
    out: dict[str, Any] = {"id": p.character_id, "speaker": p.speaker, "head": head,
                           "box": [round(v / ss, 1) for v in p.box], "unit": round(s / ss, 3)}
    if p.pose == "back":
        return out
    if look.animal:
        dx = {"front": 0.0, "three_quarter": 0.016, "side": 0.0}[p.pose]
        eye_y = g.head_cy - g.head_ry * 0.12
        mouth = (g.head_rx * 0.55 * 1.6 if p.pose == "side" else dx * 1.3, g.head_cy + g.head_ry * 0.45 + 0.012)
    else:
        dx = 0.016 if p.pose == "three_quarter" else 0.0
        eye_y = g.head_cy + 0.01 + (0.012 if look.age == "child" else 0.0)
        mouth = (g.head_rx * 0.62 if p.pose == "side" else dx, g.head_cy + 0.046)
    if p.pose == "side":
        eyes = [(g.head_rx * 0.6, 1.0)]
    elif p.pose == "three_quarter":
        eyes = [(-0.021 + dx, 0.75), (0.025 + dx, 1.0)]
    else:
        eyes = [(-0.024, 1.0), (0.024, 1.0)]
    grow = 1.3 if look.age == "child" and not look.animal else 1.0
    out["eyes"] = [px(x, eye_y) + [round(0.0075 * w * grow * s / ss, 2), round(0.0105 * s / ss, 2)] for x, w in eyes]
    out["mouth"] = px(*mouth) + [round(0.013 * s / ss, 2)]
    out["skin"] = list((look.fur or look.skin) if look.animal else look.skin)
    return out


def _check_dimensions(width: Any, height: Any) -> None:
    if not isinstance(width, int) or not isinstance(height, int):
        raise NovelcomicError(f"image size {width!r}x{height!r} must be whole pixels")
    check_size(width, height)
    if min(width, height) < MIN_SIZE or max(width, height) > MAX_SIZE:
        raise NovelcomicError(f"image size {width}x{height} must be between {MIN_SIZE} and {MAX_SIZE} pixels a side")


def _check_shot_request(request: ShotRequest) -> None:
    shot = request.shot
    got = [getattr(ref.character, "id", repr(ref)) for ref in request.characters]
    if got != list(shot.characters):
        raise NovelcomicError(
            f"shot {shot.id!r} lists characters {list(shot.characters)!r} but the request carries {got!r}"
        )
    props = [p.id for p in request.props]
    if props != list(shot.props):
        raise NovelcomicError(f"shot {shot.id!r} lists props {list(shot.props)!r} but the request carries {props!r}")
    wanted = shot.location or request.scene.location
    if request.location is not None and wanted is not None and request.location.id != wanted:
        raise NovelcomicError(
            f"shot {shot.id!r} is at location {wanted!r} but the request carries {request.location.id!r}"
        )


# --------------------------------------------------------------------------- small helpers


def _hash_int(text: str) -> int:
    """A stable 64-bit number for ``text`` (Python's hash() is salted per process)."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def _reduce(canvas: Image.Image, ss: int) -> Image.Image:
    return canvas.reduce(ss) if ss > 1 else canvas


def _scale_box(box: Sequence[float], ss: int, size: tuple[int, int]) -> Box:
    l, t, r, b = (v / ss for v in box)
    return (
        max(0, min(size[0], math.floor(l))), max(0, min(size[1], math.floor(t))),
        max(0, min(size[0], math.ceil(r))), max(0, min(size[1], math.ceil(b))),
    )


def _look_meta(look: CharacterLook) -> dict[str, Any]:
    return {
        "clothing": list(look.clothing), "accent": list(look.accent), "hair": list(look.hair),
        "skin": list(look.skin), "hair_style": look.hair_style, "garment": look.garment,
        "species": look.species, "region": look.region,
    }


def _words(*parts: str) -> str:
    return " ".join(p for p in parts if p).lower()


def _has(words: str, keys: Sequence[str]) -> bool:
    return any((re.search(k, words) if k.startswith("\\b") else k in words) for k in keys)


# --------------------------------------------------------------------------- scenery


_ELEMENT_WORDS: dict[str, tuple[str, ...]] = {
    "mountains": ("山", "峰", "岭", "崖", "谷", "峦", r"\bmountain", r"\bhills?\b", r"\bpeak", r"\bcliff", r"\bvalley"),
    "water": ("河", "江", "湖", "海", "水", "溪", "潭", "渡", "港", "泉", r"\briver", r"\blake", r"\bsea\b", r"\bwater",
              r"\bstream", r"\bshore", r"\bharbou?r", r"\bpond", r"\bbay\b", r"\bocean", r"\bferry"),
    "temple": ("寺", "庙", "塔", "观", "宫", "殿", "祠", r"\btemple", r"\bshrine", r"\bpagoda", r"\bpalace", r"\btower",
               r"\bmonastery"),
    "village": ("村", "镇", "庄", "屋", "宅", "院", "家", "店", "客栈", r"\bvillage", r"\btown", r"\bhouse", r"\bhome",
                r"\bfarm", r"\bcottage", r"\byard", r"\binn\b"),
    "street": ("街", "市", "巷", "城", "坊", r"\bstreet", r"\bmarket", r"\bcity", r"\balley", r"\broad", r"\blane"),
    "forest": ("林", "树", "森", "竹", "园", r"\bforest", r"\btrees?\b", r"\bwoods?\b", r"\bbamboo", r"\bgarden",
               r"\bgrove", r"\borchard", r"\bpark\b"),
    "bridge": ("桥", r"\bbridge"),
    "fields": ("田", "野", "原", "草", r"\bfield", r"\bmeadow", r"\bplain", r"\bgrass"),
}
_SKY: dict[str, tuple[RGB, RGB, float]] = {  # top, horizon, light level
    "day": ((98, 160, 222), (204, 228, 242), 1.0),
    "dawn": ((122, 134, 200), (250, 206, 178), 0.86),
    "dusk": ((62, 60, 130), (246, 148, 92), 0.7),
    "night": ((12, 16, 42), (46, 60, 104), 0.52),
}
_WALLS: tuple[RGB, ...] = ((214, 196, 160), (188, 198, 178), (206, 186, 170), (176, 160, 140))
_SUN_AND_MOON: dict[str, RGB] = {
    "day": (255, 250, 222), "night": (242, 238, 210), "dusk": (255, 196, 120), "dawn": (255, 214, 160),
}


@dataclass(frozen=True)
class _Scenery:
    """What a location looks like: its kind (sea, cave, palace …), the book's region (how
    buildings look), time of day and weather (only when set or stated: else plain daylight),
    inside or out, and the elements to draw for a place of unknown kind."""

    key: str
    words: str
    time: str
    interior: bool
    elements: tuple[str, ...]
    kind: str = "unknown"
    region: str = "china"
    weather: str = "unknown"

    @classmethod
    def for_request(cls, request: ShotRequest) -> "_Scenery":
        from novelcomic.plan.world import location_kind, time_and_weather

        lang = request.language if request.language in ("zh", "en") else "zh"
        loc: Location | None = request.location
        if loc is not None:
            key = loc.id + "/" + loc.name
            words = _words(loc.id, loc.name, " ".join(loc.aliases), loc.description)
            kind = loc.kind if loc.kind != "unknown" else location_kind(loc.name, loc.description, lang)
            if kind == "unknown":
                kind = next((k for k in (location_kind(a, "", lang) for a in loc.aliases) if k != "unknown"), "unknown")
            stated_time, stated_weather = time_and_weather(" ".join([loc.name, *loc.aliases, loc.description]), lang)
            time = loc.time_of_day if loc.time_of_day != "unknown" else stated_time
            weather = loc.weather if loc.weather != "unknown" else stated_weather
            interior = loc.interior or kind == "interior"
        else:
            key = request.shot.location or request.scene.location or f"{request.chapter}/{request.scene.id}"
            words = _words(key, request.scene.summary)
            kind, time, weather, interior = "unknown", "unknown", "unknown", False
            if not (request.shot.location or request.scene.location):  # nobody named a place
                kind = unnamed_place_kind(request.scene, lang)
                interior = kind == "interior"
        time = time if time in _SKY else "day"  # unknown: plain daylight
        if interior:
            weather = "unknown"  # the weather outside is not drawn in a room
        region = request_region(request)
        elements = () if interior else ((kind,) if kind != "unknown" else _elements(words, key))
        return cls(key, words, time, interior, elements, kind, region, weather)

    def ground_y(self, h: int, angle: str) -> int:
        """Where figures' feet meet the horizon line (interiors: where the wall meets the floor)."""
        base = 0.62 if self.interior else 0.56
        if self.kind != "unknown" and not self.interior:  # each place its own horizon
            base += ((_hash_int("horizon:" + self.key) % 9) - 4) * 0.006
        base += {"low": 0.09, "high": -0.1, "overhead": -0.2}.get(angle, 0.0)
        return round(h * base)


def unnamed_place_kind(scene: Any, lang: str) -> str:
    """The kind of place of a scene that names none, the same for all its shots: what the words of
    its summary and lines suggest (两军/厮杀: a battlefield, fire and tea: a room), else a room when
    people talk in it (a conversation with no place named is most often indoors: the Bennets'
    opening talk), else unknown (scenery from the words, as before)."""
    from novelcomic.plan.world import location_kind

    shots = list(getattr(scene, "shots", []) or [])
    text = " ".join([scene.summary or ""] + [ln.text for shot in shots for ln in shot.lines])
    kind = location_kind("", text, lang) if text.strip() else "unknown"
    if kind != "unknown":
        return kind
    talking = sum(1 for shot in shots for ln in shot.lines if not ln.is_narration)
    return "interior" if talking >= 2 else "unknown"


def request_region(request: SheetRequest | ShotRequest) -> str:
    """Where the pictures' buildings and clothes come from (see world.period_region): the
    request's ``period`` when the pipeline passes one, else the period its own words suggest,
    else the language's (zh: China)."""
    from novelcomic.plan.world import period_region
    from novelcomic.render.prompts import request_period

    lang = request.language if request.language in ("zh", "en") else "zh"
    return period_region(request_period(request), lang)


def character_period(request: SheetRequest | ShotRequest, character: Any) -> str:
    """The period a character's clothes follow: the request's, else what the character's own
    words suggest — the same on its sheet and in every shot."""
    from novelcomic.plan.world import detect_period

    period = getattr(request, "period", None)
    if period and period not in ("auto", "unknown"):
        return period
    lang = request.language if request.language in ("zh", "en") else "zh"
    text = " ".join([character.appearance, character.description])
    return detect_period(text, lang) if text.strip() else "unknown"


def _elements(words: str, key: str) -> tuple[str, ...]:
    found = tuple(name for name, keys in _ELEMENT_WORDS.items() if _has(words, keys))
    if found:
        return found
    rng = random.Random(_hash_int("elements:" + key))
    return tuple(sorted(rng.sample(["mountains", "forest", "fields", "village"], 2)))


class _Backdrop:
    """Paints a location: sky or walls, then silhouettes back to front."""

    def __init__(self, scenery: _Scenery, w: int, h: int, seed: int, angle: str) -> None:
        self.sc, self.w, self.h = scenery, w, h
        self.horizon = scenery.ground_y(h, angle)
        self.place = random.Random(_hash_int("place:" + scenery.key))  # the location's fixed layout
        self.weather = random.Random(_hash_int(f"weather:{seed}:{scenery.key}"))  # clouds, stars
        self.top, self.bottom, self.light = _SKY[scenery.time]
        self.image = Image.new("RGB", (w, h), self.bottom)
        self.draw = ImageDraw.Draw(self.image)
        self.unit = min(w, h)
        self.clouds = True

    def paint(self) -> Image.Image:
        if not _paint_place(self):
            if self.sc.interior:
                self._interior()
            else:
                self._exterior()
        return self.image

    # -- helpers

    def _circle(self, x: float, y: float, r: float, fill: RGB) -> None:
        self.draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)

    def _lit(self, c: RGB, far: float = 0.0) -> RGB:
        """``c`` under this time's light, faded toward the horizon sky by ``far`` (0 near, 1 gone)."""
        lit = shade(c, self.light)
        if self.sc.time == "night":
            lit = mix(lit, (34, 46, 90), 0.35)
        return mix(lit, self.bottom, far)

    def _gradient(self, box: Box, top: RGB, bottom: RGB) -> None:
        l, t, r, b = box
        if b <= t or r <= l:
            return
        strip = Image.new("RGB", (1, 256))
        strip.putdata([mix(top, bottom, i / 255) for i in range(256)])
        self.image.paste(strip.resize((r - l, b - t), Image.Resampling.BILINEAR), (l, t))

    # -- outside

    def _exterior(self) -> None:
        w, h, hz = self.w, self.h, self.horizon
        self._gradient((0, 0, w, hz), self.top, self.bottom)
        self._sky_objects()
        els = self.sc.elements
        if "mountains" in els:
            self._mountains()
        ground = (168, 146, 110) if ("street" in els or "village" in els) and "fields" not in els else (112, 150, 84)
        self._gradient((0, hz, w, h), self._lit(ground, 0.35), self._lit(shade(ground, 0.82)))
        if "water" in els:
            self._water()
        if "temple" in els:
            self._pagoda()
        if "village" in els or "street" in els:
            self._houses(street="street" in els)
        if "forest" in els:
            self._trees()
        if "bridge" in els:
            self._bridge()
        if "fields" in els:
            self._field_rows()

    def _sky_objects(self) -> None:
        w, hz, u = self.w, self.horizon, self.unit
        rng = self.weather
        if self.sc.time == "night":
            for _ in range(60):
                x, y = rng.uniform(0, w), rng.uniform(0, hz * 0.9)
                self._circle(x, y, rng.choice((1, 1, 1.5, 2)) * u / 700, (236, 236, 210))
        body_x = w * (0.2 + 0.6 * self.place.random())
        body_y = hz * (0.22 if self.sc.time in ("day", "night") else 0.72)
        r = u * 0.055
        colour = _SUN_AND_MOON[self.sc.time]
        self._circle(body_x, body_y, r * 1.6, mix(mix(colour, self.bottom, 0.55), self.top, 0.4))
        self._circle(body_x, body_y, r, colour)
        if self.sc.time != "night" and self.clouds:
            for _ in range(rng.randint(2, 4)):
                self._cloud(rng.uniform(-0.1, 1.1) * w, rng.uniform(0.08, 0.5) * hz, rng.uniform(0.12, 0.22) * w)

    def _cloud(self, x: float, y: float, size: float) -> None:
        colour = mix(self.bottom, (255, 255, 255), 0.6 if self.sc.time == "day" else 0.35)
        rng = self.weather
        for i in range(5):
            cx = x + (i - 2) * size * 0.22
            r = size * (0.22 if i in (1, 2, 3) else 0.15) * rng.uniform(0.85, 1.15)
            self.draw.ellipse((cx - r, y - r * 0.8, cx + r, y + r * 0.5), fill=colour)
        self.draw.rectangle((x - size * 0.55, y, x + size * 0.55, y + size * 0.1), fill=colour)

    def _mountains(self) -> None:
        w, hz = self.w, self.horizon
        base: RGB = (92, 112, 132)
        for layer, far in enumerate((0.7, 0.42)):
            rng = self.place
            peaks = rng.randint(3, 5)
            pts = [(0.0, float(hz))]
            for i in range(peaks * 2 + 1):
                x = w * i / (peaks * 2)
                height = (0.22 - 0.06 * layer) * self.h * (rng.uniform(0.6, 1.0) if i % 2 else rng.uniform(0.1, 0.35))
                pts.append((x + rng.uniform(-0.04, 0.04) * w, hz - height))
            pts.append((float(w), float(hz)))
            self.draw.polygon(pts, fill=self._lit(base, far))
            if layer == 0 and self.sc.time != "night":  # snow caps on the far range
                for x, y in pts[2:-1:2]:
                    d = (hz - y) * 0.16
                    snow = self._lit((236, 238, 242), far)
                    self.draw.polygon([(x, y), (x - d * 0.8, y + d), (x + d * 0.8, y + d)], fill=snow)

    def _water(self) -> None:
        w, h, hz = self.w, self.h, self.horizon
        bottom = hz + round((h - hz) * 0.14)
        self._gradient((0, hz, w, bottom), mix(self.bottom, (70, 120, 170), 0.35), self._lit((58, 104, 150)))
        rng = self.place
        shine = mix(self.bottom, (255, 255, 255), 0.5)
        bank = self._lit((196, 182, 140), 0.2)
        self.draw.line((0, bottom, w, bottom), fill=bank, width=max(2, round(self.unit / 120)))
        for _ in range(10):
            y = rng.uniform(hz + 4, bottom - 4)
            x = rng.uniform(0, w)
            length = w * rng.uniform(0.04, 0.12)
            self.draw.line((x, y, x + length, y), fill=shine, width=max(1, round(self.unit / 400)))

    def _pagoda(self) -> None:
        if self.sc.region not in ("china", "fantasy_east"):  # a church spire
            x = self.w * (0.12 + 0.76 * self.place.random())
            stone, roof = self._lit((176, 170, 158), 0.25), self._lit((80, 84, 96), 0.25)
            tw, th = self.unit * 0.07, self.unit * 0.2
            self.draw.rectangle((x - tw / 2, self.horizon - th, x + tw / 2, self.horizon), fill=stone)
            self.draw.polygon([(x - tw * 0.6, self.horizon - th), (x, self.horizon - th - self.unit * 0.16),
                               (x + tw * 0.6, self.horizon - th)], fill=roof)
            return
        rng = self.place
        x = self.w * (0.12 + 0.76 * rng.random())
        tiers, width, y = 5, self.unit * 0.16, float(self.horizon)
        wall, roof = self._lit((196, 176, 150), 0.25), self._lit((62, 52, 58), 0.25)
        for i in range(tiers):
            tw = width * (1 - i * 0.13)
            th = self.unit * 0.05
            self.draw.rectangle((x - tw * 0.32, y - th, x + tw * 0.32, y), fill=wall)
            self._roof(x, y - th, tw, th * 0.45, roof)
            y -= th * 1.25
        self.draw.line((x, y, x, y - self.unit * 0.05), fill=roof, width=max(2, round(self.unit / 200)))

    def _roof(self, x: float, y: float, width: float, height: float, colour: RGB) -> None:
        """A Chinese roof: a trapezoid whose eaves flick up at the ends."""
        half = width / 2
        outline = [(-1.08, -0.7), (-0.95, -0.1), (-0.55, -0.95), (0.55, -0.95), (0.95, -0.1), (1.08, -0.7),
                   (0.85, 0.15), (-0.85, 0.15)]
        self.draw.polygon([(x + half * dx, y + height * dy) for dx, dy in outline], fill=colour)

    def _houses(self, street: bool) -> None:
        if self.sc.region not in ("china", "fantasy_east"):  # brick, stone or glass: never a Chinese roof
            place, rng = _Place(self), self.place
            for x in sorted(rng.uniform(0.0, 1.0) * self.w for _ in range(rng.randint(4, 6) if street else rng.randint(2, 4))):
                place.building(x, self.horizon + self.unit * 0.01, self.unit * rng.uniform(0.13, 0.2),
                               self.unit * rng.uniform(0.1, 0.15), 0.3, storeys=2 if street else 1)
            return
        rng = self.place
        count = rng.randint(4, 6) if street else rng.randint(2, 4)
        xs = sorted(rng.uniform(0.0, 1.0) * self.w for _ in range(count))
        night = self.sc.time in ("night", "dusk")
        for x in xs:
            hw = self.unit * rng.uniform(0.12, 0.2)
            hh = self.unit * rng.uniform(0.09, 0.14)
            base = self.horizon + self.unit * 0.01
            wall = self._lit((222, 210, 186), 0.3)
            self.draw.rectangle((x - hw / 2, base - hh, x + hw / 2, base), fill=wall)
            self._roof(x, base - hh, hw * 1.25, hh * 0.55, self._lit((70, 62, 70), 0.25))
            window = (252, 208, 110) if night else self._lit((90, 76, 66), 0.3)
            ww = hw * 0.16
            self.draw.rectangle((x - ww, base - hh * 0.7, x + ww, base - hh * 0.3), fill=window)
            if street and night:
                self._lantern(x + hw * 0.42, base - hh * 0.95, self.unit * 0.018)

    def _lantern(self, x: float, y: float, r: float) -> None:
        self.draw.line((x, y - r * 2, x, y - r), fill=INK, width=max(1, round(r / 6)))
        self.draw.ellipse((x - r, y - r, x + r, y + r * 1.3), fill=(232, 74, 52))
        band = y + r * 0.15
        self.draw.line((x - r * 0.8, band, x + r * 0.8, band), fill=(255, 196, 96), width=max(1, round(r / 5)))

    def _trees(self) -> None:
        rng = self.place
        bamboo = "竹" in self.sc.words or "bamboo" in self.sc.words
        for i in range(rng.randint(12, 16) if bamboo else rng.randint(5, 8)):
            x = self.w * rng.uniform(-0.05, 1.05)
            near = i % 3 == 0
            scale = self.unit * (0.2 if near else 0.13) * rng.uniform(0.8, 1.2)
            base = self.horizon + (self.h - self.horizon) * (0.14 if near else 0.03)
            far = 0.05 if near else 0.3
            if bamboo:
                self._bamboo(x, base, scale * 1.6, far)
            elif rng.random() < 0.5:
                self._pine(x, base, scale, far)
            else:
                self._round_tree(x, base, scale, far)

    def _pine(self, x: float, base: float, size: float, far: float) -> None:
        trunk, leaf = self._lit((96, 70, 50), far), self._lit((46, 100, 70), far)
        self.draw.rectangle((x - size * 0.05, base - size * 0.3, x + size * 0.05, base), fill=trunk)
        for i in range(3):
            y = base - size * (0.25 + i * 0.28)
            half = size * (0.36 - i * 0.08)
            self.draw.polygon([(x - half, y), (x, y - size * 0.42), (x + half, y)], fill=leaf)

    def _round_tree(self, x: float, base: float, size: float, far: float) -> None:
        trunk, leaf = self._lit((104, 76, 52), far), self._lit((78, 130, 70), far)
        self.draw.rectangle((x - size * 0.05, base - size * 0.5, x + size * 0.05, base), fill=trunk)
        for dx, dy, r in ((0, -0.78, 0.3), (-0.18, -0.62, 0.22), (0.18, -0.6, 0.24)):
            cx, cy, rr = x + dx * size, base + dy * size, r * size
            self.draw.ellipse((cx - rr, cy - rr, cx + rr, cy + rr), fill=leaf)

    def _bamboo(self, x: float, base: float, size: float, far: float) -> None:
        stem, leaf = self._lit((108, 150, 80), far), self._lit((64, 120, 62), far)
        width = max(2, size * 0.035)
        self.draw.rectangle((x - width / 2, base - size, x + width / 2, base), fill=stem)
        for j in range(1, 5):
            y = base - size * j / 5
            node = self._lit((60, 90, 50), far)
            self.draw.line((x - width / 2, y, x + width / 2, y), fill=node, width=max(1, round(width / 4)))
            blade = [(x, y), (x + size * 0.16, y - size * 0.05), (x + size * 0.05, y + size * 0.01)]
            self.draw.polygon(blade, fill=leaf)

    def _bridge(self) -> None:
        cx = self.w * (0.3 + 0.4 * self.place.random())
        span, rise = self.unit * 0.5, self.unit * 0.08
        y = self.horizon + (self.h - self.horizon) * 0.12
        colour = self._lit((160, 100, 70), 0.15)
        box = (cx - span / 2, y - rise, cx + span / 2, y + rise)
        self.draw.arc(box, 180, 360, fill=colour, width=max(3, round(self.unit / 60)))
        self.draw.arc((box[0], box[1] - self.unit * 0.04, box[2], box[3] - self.unit * 0.04), 200, 340, fill=colour,
                      width=max(2, round(self.unit / 160)))

    def _field_rows(self) -> None:
        hz, h = self.horizon, self.h
        colour = self._lit((96, 132, 70), 0.1)
        for i in range(1, 7):
            y = hz + (h - hz) * (i / 7) ** 1.6
            self.draw.line((0, y, self.w, y), fill=colour, width=max(1, round(self.unit / 300 * i ** 0.5)))

    # -- inside

    def _interior(self) -> None:
        w, h, floor = self.w, self.h, self.horizon
        words = self.sc.words
        palace = _has(words, ("殿", "宫", "堂", r"\bhall", r"\bpalace", r"\bthrone"))
        if palace:
            wall: RGB = (150, 56, 50)
        elif _has(words, ("客栈", "酒", "店", r"\binn\b", r"\btavern")):
            wall = (176, 134, 92)
        else:
            wall = _WALLS[self.place.randrange(len(_WALLS))]
        dim = self._room_light
        if self.sc.kind != "unknown":  # each room its own colours
            v = random.Random(_hash_int("tint:" + self.sc.key))
            tint = (v.randint(40, 230), v.randint(40, 230), v.randint(40, 230))
            wall = mix(wall, tint, v.uniform(0.2, 0.35))
        else:
            tint = (132, 94, 62)
        self._gradient((0, 0, w, floor), dim(mix(wall, (255, 255, 255), 0.12)), dim(wall))
        self.draw.rectangle((0, floor - h * 0.05, w, floor), fill=dim(shade(wall, 0.78)))
        self._floor(dim(mix((132, 94, 62), tint, 0.2)))
        side = self.place.random() < 0.5
        self._window(w * (0.72 if side else 0.28), floor * 0.48, self.unit * 0.26)
        self._scroll_or_door(w * (0.24 if side else 0.76), floor)
        if palace:
            half = self.unit * 0.035
            for x in (w * 0.06, w * 0.94):
                self.draw.rectangle((x - half, 0, x + half, floor + h * 0.02), fill=dim((168, 40, 36)))
        if self.sc.time == "night":
            self._candle_glow()

    def _room_light(self, c: RGB) -> RGB:
        """Rooms are lit by lamps at night: darker, the warm glow is added afterwards."""
        return shade(c, 0.62) if self.sc.time == "night" else c

    def _floor(self, wood: RGB) -> None:
        w, h, floor = self.w, self.h, self.horizon
        self._gradient((0, floor, w, h), shade(wood, 0.85), wood)
        line, width, vx = shade(wood, 0.72), max(1, round(self.unit / 400)), w / 2
        for i in range(-6, 7):  # boards converging on the middle of the back wall
            self.draw.line((vx + i * w * 0.06, floor, vx + i * w * 0.28, h), fill=line, width=width)

    def _window(self, x: float, y: float, size: float) -> None:
        sky_top, sky_bottom, _ = _SKY[self.sc.time]
        l, t, r, b = x - size / 2, y - size / 2, x + size / 2, y + size / 2
        frame: RGB = (92, 62, 44)
        self.draw.rectangle((l - size * 0.05, t - size * 0.05, r + size * 0.05, b + size * 0.05), fill=frame)
        self._gradient((round(l), round(t), round(r), round(b)), sky_top, sky_bottom)
        if self.sc.time == "night":
            self._circle(x + size * 0.1, t + size * 0.25, size * 0.12, (240, 236, 206))
        lw = max(1, round(size / 40))
        for i in range(1, 4):
            self.draw.line((l + size * i / 4, t, l + size * i / 4, b), fill=frame, width=lw)
            self.draw.line((l, t + size * i / 4, r, t + size * i / 4), fill=frame, width=lw)

    def _scroll_or_door(self, x: float, floor: float) -> None:
        dim = self._room_light
        if self.place.random() < 0.5:  # a door
            dw, dh = self.unit * 0.2, floor * 0.5
            self.draw.rectangle((x - dw / 2, floor - dh, x + dw / 2, floor), fill=dim((104, 70, 48)))
            self.draw.line((x, floor - dh, x, floor), fill=dim((70, 46, 32)), width=max(1, round(self.unit / 250)))
        else:  # a hanging landscape scroll
            sw, sh = self.unit * 0.12, floor * 0.34
            top = floor * 0.3
            self.draw.rectangle((x - sw / 2, top, x + sw / 2, top + sh), fill=dim((240, 232, 210)))
            hills = [(-0.4, 0.8), (-0.1, 0.45), (0.1, 0.65), (0.25, 0.5), (0.4, 0.8)]
            self.draw.polygon([(x + sw * dx, top + sh * dy) for dx, dy in hills], fill=dim((120, 128, 120)))
            self.draw.rectangle((x - sw * 0.6, top - sh * 0.04, x + sw * 0.6, top), fill=dim((90, 60, 40)))

    def _candle_glow(self) -> None:
        self.image.paste((255, 176, 90), mask=_radial_mask(self.image.size, (0.5, 0.55), 0.6, 90))


# --------------------------------------------------------------------------- places by kind

_OVERCAST: dict[str, tuple[RGB, RGB, float]] = {  # weather → sky top, horizon, light
    "rain": ((108, 118, 132), (168, 176, 184), 0.78),
    "storm": ((44, 48, 62), (96, 102, 116), 0.6),
    "snow": ((176, 184, 196), (226, 230, 236), 0.95),
    "fog": ((196, 200, 204), (224, 226, 226), 0.9),
}
#: A room of books: a library, a study (书房), a bookshop.
_LIBRARY_WORDS = ("书房", "书斋", "书院", "藏书", "书阁", "书楼", "书肆", r"\blibrary", r"\bstudy\b", r"\bbookshop",
                  r"\bbook-?room")
_GROUND: dict[str, RGB] = {
    "mountain": (112, 132, 92), "forest": (70, 110, 62), "river": (110, 150, 84), "village": (150, 160, 96),
    "field": (128, 166, 78), "battlefield": (170, 150, 112), "palace": (196, 190, 176), "temple": (184, 176, 160),
    "city_street": (150, 146, 140), "sea": (222, 206, 160), "sky": (236, 240, 246),
}


def _paint_place(bd: "_Backdrop") -> bool:
    """Paint the backdrop of a place of known kind (and any place's weather); False: the generic
    painter draws it (a place of unknown kind and no weather)."""
    sc = bd.sc
    if sc.kind == "unknown" and sc.weather == "unknown":
        return False
    place = _Place(bd)
    if sc.kind == "unknown":
        place.overcast()
        bd._interior() if sc.interior else bd._exterior()
    elif sc.kind == "cave":
        place.cave()
    elif sc.interior:
        place.room()
    else:
        place.overcast()
        getattr(place, sc.kind)()
    place.weather()
    return True


class _Place:
    """Backdrops by kind of place, in the buildings of the book's region; each place's colours
    and layout vary with its id and name, so two places of one kind never look alike."""

    def __init__(self, bd: "_Backdrop") -> None:
        self.bd, self.sc, self.draw = bd, bd.sc, bd.draw
        self.w, self.h, self.hz, self.u = bd.w, bd.h, bd.horizon, bd.unit
        self.rng = random.Random(_hash_int("layout:" + bd.sc.key))
        v = random.Random(_hash_int("tint:" + bd.sc.key))
        self.tint: RGB = (v.randint(40, 230), v.randint(40, 230), v.randint(40, 230))
        self.amount = v.uniform(0.1, 0.22)
        self.region = bd.sc.region
        self.east = self.region in ("china", "fantasy_east")

    # -- colour and sky

    def c(self, colour: RGB, far: float = 0.0) -> RGB:
        """``colour`` with this place's tint, under the light of its time and weather."""
        return self.bd._lit(mix(colour, self.tint, self.amount), far)

    def overcast(self) -> None:
        if self.sc.weather in _OVERCAST and not self.sc.interior:
            top, bottom, light = _OVERCAST[self.sc.weather]
            if self.sc.time != "day":
                t0, b0, l0 = _SKY[self.sc.time]
                top, bottom, light = mix(top, t0, 0.6), mix(bottom, b0, 0.6), min(light, l0)
            self.bd.top, self.bd.bottom, self.bd.light = top, bottom, light
        tint = mix(self.tint, (255, 255, 255), 0.5)
        self.bd.top, self.bd.bottom = mix(self.bd.top, tint, 0.12), mix(self.bd.bottom, tint, 0.08)

    def _sky(self, horizon: int | None = None) -> None:
        hz = self.hz if horizon is None else horizon
        self.bd._gradient((0, 0, self.w, hz), self.bd.top, self.bd.bottom)
        if self.sc.weather in ("rain", "storm", "fog", "snow"):
            rng = self.bd.weather
            for _ in range(rng.randint(3, 5)):  # a lid of grey cloud
                self.bd._cloud(rng.uniform(-0.1, 1.1) * self.w, rng.uniform(0.02, 0.3) * hz, rng.uniform(0.3, 0.5) * self.w)
            return
        self.bd.clouds = self.sc.weather != "clear"
        self.bd._sky_objects()

    def ground(self, colour: RGB, top: int | None = None) -> None:
        t = self.hz if top is None else top
        self.bd._gradient((0, t, self.w, self.h), self.c(colour, 0.3), self.c(shade(colour, 0.8)))

    def poly(self, pts: Sequence[tuple[float, float]], colour: RGB) -> None:
        self.draw.polygon([(float(x), float(y)) for x, y in pts], fill=colour)

    def rect(self, l: float, t: float, r: float, b: float, colour: RGB) -> None:
        self.draw.rectangle((l, t, r, b), fill=colour)

    def lw(self, f: float = 1.0) -> int:
        return max(1, round(self.u / 220 * f))

    def hills(self, colour: RGB, height: float, far: float, peaks: int, sharp: bool = False) -> None:
        pts = [(0.0, float(self.hz))]
        for i in range(peaks * 2 + 1):
            x = self.w * i / (peaks * 2) + self.rng.uniform(-0.03, 0.03) * self.w
            top = self.rng.uniform(0.55, 1.0) if i % 2 else self.rng.uniform(0.1, 0.4)
            pts.append((x, self.hz - height * self.h * top))
        pts.append((float(self.w), float(self.hz)))
        if not sharp:
            pts = _smooth(pts)
        self.poly(pts, self.c(colour, far))

    # -- buildings in the region's style

    def building(self, x: float, base: float, bw: float, bh: float, far: float = 0.25, storeys: int = 1) -> None:
        night = self.sc.time in ("night", "dusk")
        glow: RGB = (252, 208, 110)
        r = self.region
        if r in ("china", "fantasy_east"):
            wall = self.c((228, 220, 200), far)
            self.rect(x - bw / 2, base - bh, x + bw / 2, base, wall)
            self.rect(x - bw / 2, base - bh * 0.12, x + bw / 2, base, self.c((120, 100, 86), far))
            self.bd._roof(x, base - bh, bw * 1.3, bh * 0.5, self.c((66, 62, 72), far))
            for k in (-0.25, 0.25):
                ww = bw * 0.13
                self.rect(x + k * bw - ww, base - bh * 0.72, x + k * bw + ww, base - bh * 0.35,
                          glow if night else self.c((120, 84, 62), far))
            return
        if r == "modern":
            wall = self.c(self.rng.choice(((178, 190, 204), (200, 196, 188), (150, 164, 180), (210, 204, 196))), far)
            self.rect(x - bw / 2, base - bh, x + bw / 2, base, wall)
            cols, rows = max(2, round(bw / (self.u * 0.04))), max(2, round(bh / (self.u * 0.05)))
            win = glow if night else self.c((120, 160, 196), far)
            for i in range(cols):
                for j in range(rows):
                    if night and self.rng.random() < 0.35:
                        continue
                    wx = x - bw / 2 + bw * (i + 0.25) / cols
                    wy = base - bh + bh * (j + 0.2) / rows
                    self.rect(wx, wy, wx + bw / cols * 0.5, wy + bh / rows * 0.55, win)
            return
        # England, a western fantasy, an English book of unknown period: brick or stone, pitched roofs
        brick = self.rng.choice(((160, 84, 64), (176, 104, 76), (196, 184, 160), (150, 140, 130)))
        if r == "fantasy_west":
            brick = (232, 222, 196)
        wall = self.c(brick, far)
        self.rect(x - bw / 2, base - bh, x + bw / 2, base, wall)
        roof = self.c((70, 74, 86) if r != "fantasy_west" else (120, 70, 50), far)
        rise = bh * (0.45 if r == "fantasy_west" else 0.32)
        self.poly([(x - bw * 0.56, base - bh), (x, base - bh - rise), (x + bw * 0.56, base - bh)], roof)
        cx = x + bw * 0.28
        self.rect(cx - bw * 0.05, base - bh - rise * 0.9, cx + bw * 0.05, base - bh - rise * 0.4, shade(wall, 0.8))
        if r == "fantasy_west":
            beam = self.c((70, 50, 40), far)
            for k in (-0.5, 0.0, 0.5):
                self.draw.line((x + k * bw, base - bh, x + k * bw, base), fill=beam, width=self.lw(1.4))
        win = glow if night else self.c((64, 74, 96), far)
        frame = self.c((236, 232, 224), far)
        for s_ in range(storeys):
            wy = base - bh * (0.78 - s_ * 0.42) if storeys > 1 else base - bh * 0.7
            for k in (-0.28, 0.28):
                ww, wh = bw * 0.12, bh * 0.16
                self.rect(x + k * bw - ww - 2, wy - 2, x + k * bw + ww + 2, wy + wh + 2, frame)
                self.rect(x + k * bw - ww, wy, x + k * bw + ww, wy + wh, win)
        self.rect(x - bw * 0.08, base - bh * 0.3, x + bw * 0.08, base, self.c((70, 56, 50), far))

    def gas_lamp(self, x: float, base: float, size: float) -> None:
        post = (40, 40, 46)
        self.draw.line((x, base, x, base - size), fill=post, width=self.lw(1.6))
        glass = (252, 220, 140) if self.sc.time in ("night", "dusk") else (220, 224, 210)
        self.poly([(x - size * 0.08, base - size), (x + size * 0.08, base - size), (x + size * 0.06, base - size * 1.16),
                   (x - size * 0.06, base - size * 1.16)], glass)
        self.poly([(x - size * 0.1, base - size * 1.16), (x + size * 0.1, base - size * 1.16), (x, base - size * 1.24)], post)

    def flag(self, x: float, base: float, size: float, colour: RGB) -> None:
        self.draw.line((x, base, x, base - size), fill=(70, 54, 40), width=self.lw(1.2))
        if self.east:
            self.poly([(x, base - size), (x + size * 0.38, base - size * 0.9), (x, base - size * 0.62)], colour)
        else:
            self.rect(x, base - size, x + size * 0.32, base - size * 0.76, colour)

    def tree(self, x: float, base: float, size: float, far: float) -> None:
        if self.east and self.rng.random() < 0.5:
            self.bd._pine(x, base, size, far)
        elif "竹" in self.sc.words or "bamboo" in self.sc.words:
            self.bd._bamboo(x, base, size * 1.5, far)
        else:
            self.bd._round_tree(x, base, size, far)

    # -- kinds

    def sea(self) -> None:
        hz = self.hz = self.bd.horizon = round(self.h * (0.42 + self.rng.uniform(-0.03, 0.03)))
        self._sky()
        if self.rng.random() < 0.6:  # a far island or headland
            x = self.rng.uniform(0.1, 0.9) * self.w
            iw, ih = self.w * self.rng.uniform(0.2, 0.4), self.h * self.rng.uniform(0.03, 0.07)
            self.poly(_smooth([(x - iw / 2, hz), (x - iw * 0.2, hz - ih), (x + iw * 0.1, hz - ih * 0.7), (x + iw / 2, hz)]),
                      self.c((90, 110, 110), 0.6))
        deep, near = self.c((40, 96, 150), 0.2), self.c((60, 140, 170))
        self.bd._gradient((0, hz, self.w, self.h), deep, near)
        foam = mix(self.bd.bottom, (255, 255, 255), 0.6)
        for i in range(18):
            y = hz + (self.h - hz) * (i / 18) ** 1.5 + self.rng.uniform(0, 6)
            x = self.rng.uniform(-0.1, 1.0) * self.w
            span = self.w * self.rng.uniform(0.05, 0.16) * (0.4 + i / 18)
            self.draw.arc((x, y - span * 0.12, x + span, y + span * 0.12), 200, 340, fill=foam, width=self.lw(0.8 + i / 9))
        self._ship(self.rng.uniform(0.15, 0.85) * self.w, hz + (self.h - hz) * 0.08, self.u * self.rng.uniform(0.1, 0.16))
        if self.rng.random() < 0.5:  # a strip of beach in front
            top = self.h - (self.h - hz) * 0.18
            self.poly(_smooth([(0, top + 20), (self.w * 0.4, top), (self.w, top + 30), (self.w, self.h), (0, self.h)]),
                      self.c(_GROUND["sea"]))

    def _ship(self, x: float, y: float, size: float) -> None:
        hull = self.c((96, 66, 46), 0.3)
        self.poly([(x - size, y - size * 0.15), (x + size, y - size * 0.15), (x + size * 0.7, y), (x - size * 0.7, y)], hull)
        sail = self.c((236, 226, 200), 0.3)
        self.draw.line((x, y - size * 0.15, x, y - size * 1.3), fill=hull, width=self.lw())
        if self.east:  # a junk's battened sail
            self.poly([(x + size * 0.05, y - size * 1.25), (x + size * 0.6, y - size * 1.1), (x + size * 0.55, y - size * 0.25),
                       (x + size * 0.05, y - size * 0.25)], self.c((200, 120, 80), 0.3))
            for k in range(1, 5):
                yy = y - size * (0.25 + k * 0.2)
                self.draw.line((x + size * 0.05, yy, x + size * 0.58, yy - size * 0.03), fill=hull, width=self.lw(0.6))
        else:
            for k in (0.3, 0.75):
                self.rect(x - size * 0.4, y - size * (k + 0.45), x + size * 0.4, y - size * k, sail)

    def mountain(self) -> None:
        self._sky()
        self.hills((120, 136, 156), 0.42, 0.65, 3, sharp=True)
        if self.sc.time != "night":
            for _ in range(3):  # a band of mist between the ranges
                y = self.hz - self.h * self.rng.uniform(0.05, 0.2)
                self.draw.ellipse((self.rng.uniform(-0.3, 0.6) * self.w, y - self.u * 0.02,
                                   self.rng.uniform(0.5, 1.3) * self.w, y + self.u * 0.02),
                                  fill=mix(self.bd.bottom, (255, 255, 255), 0.4))
        self.hills((84, 104, 96), 0.26, 0.3, 4, sharp=True)
        self.ground(_GROUND["mountain"])
        for _ in range(self.rng.randint(2, 4)):
            self.tree(self.rng.uniform(0, 1) * self.w, self.hz + self.u * 0.02, self.u * 0.12, 0.3)
        rock = self.c((128, 120, 112))
        for side in (-1, 1):  # near rocks framing the view
            x = self.w * (0.5 + side * self.rng.uniform(0.38, 0.5))
            r = self.u * self.rng.uniform(0.12, 0.2)
            self.poly([(x - r, self.h), (x - r * 0.6, self.h - r * 0.9), (x + r * 0.2, self.h - r), (x + r, self.h)], rock)

    def cave(self) -> None:
        w, h = self.w, self.h
        rock, dark = self.c((96, 84, 76)), self.c((46, 40, 40))
        self.bd._gradient((0, 0, w, h), dark, rock)
        # the mouth: the outside light in an arch
        mx = w * self.rng.uniform(0.35, 0.65)
        mw, top = w * self.rng.uniform(0.35, 0.55), h * self.rng.uniform(0.16, 0.26)
        floor = self.hz
        outside = _SKY[self.sc.time][1]
        arch = _smooth([(mx - mw / 2, floor), (mx - mw * 0.45, top + h * 0.1), (mx - mw * 0.2, top), (mx + mw * 0.15, top + h * 0.02),
                        (mx + mw * 0.45, top + h * 0.12), (mx + mw / 2, floor)])
        self.poly(arch, mix(outside, (255, 255, 255), 0.2))
        if _has(self.sc.words, ("水帘", "瀑", r"\bwaterfall", r"\bfalls\b")):  # a curtain of water over the mouth
            water = (200, 228, 240)
            for i in range(14):
                x = mx - mw * 0.45 + mw * 0.9 * i / 13
                self.draw.line((x, top + h * 0.04, x + self.rng.uniform(-3, 3), floor), fill=water, width=self.lw(1.4))
        for _ in range(self.rng.randint(7, 11)):  # stalactites
            x, length = self.rng.uniform(0, 1) * w, h * self.rng.uniform(0.06, 0.16)
            half = self.u * self.rng.uniform(0.015, 0.035)
            self.poly([(x - half, 0), (x + half, 0), (x, length)], self.c((120, 108, 98)))
        self.bd._gradient((0, floor, w, h), self.c((110, 98, 88)), self.c((70, 62, 58)))
        for _ in range(self.rng.randint(3, 5)):  # boulders on the floor
            x, r = self.rng.uniform(0, 1) * w, self.u * self.rng.uniform(0.04, 0.09)
            y = floor + (h - floor) * self.rng.uniform(0.1, 0.7)
            self.draw.ellipse((x - r, y - r * 0.6, x + r, y + r * 0.4), fill=self.c((84, 76, 70)))
        if self.sc.time == "night":
            self.bd._candle_glow()

    def forest(self) -> None:
        self._sky()
        self.ground(_GROUND["forest"])
        for layer, (n, size, far) in enumerate(((14, 0.16, 0.45), (9, 0.22, 0.2), (5, 0.32, 0.0))):
            for _ in range(n):
                x = self.rng.uniform(-0.08, 1.08) * self.w
                base = self.hz + (self.h - self.hz) * (0.02 + 0.14 * layer) + self.rng.uniform(0, 4)
                self.tree(x, base, self.u * size * self.rng.uniform(0.8, 1.2), far)
        if self.sc.time in ("day", "dawn") and self.sc.weather == "unknown":  # shafts of light
            glow = Image.new("L", (self.w, self.h), 0)
            gd = ImageDraw.Draw(glow)
            for _ in range(3):
                x = self.rng.uniform(0.1, 0.9) * self.w
                gd.polygon([(x, 0), (x + self.w * 0.08, 0), (x + self.w * 0.2, self.h), (x + self.w * 0.1, self.h)], fill=40)
            self.bd.image.paste((255, 250, 220), mask=glow)

    def river(self) -> None:
        self._sky()
        self.hills((110, 140, 120), 0.12, 0.5, 3)
        self.ground(_GROUND["river"])
        hz, h, w = self.hz, self.h, self.w
        cx = w * self.rng.choice((self.rng.uniform(0.15, 0.3), self.rng.uniform(0.7, 0.85)))  # the bank in the middle
        bend = (w / 2 - cx) * self.rng.uniform(-0.6, -0.2)
        left = _smooth([(cx - w * 0.02, hz), (cx - w * 0.12 + bend, hz + (h - hz) * 0.4), (cx - w * 0.55, h)])
        right = _smooth([(cx + w * 0.55, h), (cx + w * 0.12 + bend, hz + (h - hz) * 0.4), (cx + w * 0.02, hz)])
        self.poly(left + right, self.c((70, 130, 170), 0.1))
        shine = mix(self.bd.bottom, (255, 255, 255), 0.55)
        for i in range(10):
            y = hz + (h - hz) * (i + 0.5) / 10
            t = (y - hz) / (h - hz)
            x = cx + bend * math.sin(t * math.pi) * 0.8 + self.rng.uniform(-0.1, 0.1) * w * t
            self.draw.line((x - w * 0.05 * t, y, x + w * 0.05 * t, y), fill=shine, width=self.lw(0.6 + t))
        for _ in range(self.rng.randint(8, 14)):  # reeds on the banks
            side = self.rng.choice((-1, 1))
            y = hz + (h - hz) * self.rng.uniform(0.3, 1.0)
            t = (y - hz) / (h - hz)
            x = cx + side * w * (0.1 + 0.5 * t) + self.rng.uniform(-0.05, 0.05) * w
            self.draw.line((x, y, x + side * 4, y - self.u * 0.06 * (0.5 + t)), fill=self.c((96, 120, 60)), width=self.lw())
        if self.rng.random() < 0.5:
            self.bd._bridge()

    def palace(self) -> None:
        self._sky()
        lawn = self.region in ("england", "neutral", "fantasy_west")
        self.ground((118, 156, 88) if lawn else _GROUND["palace"])
        x = self.w * self.rng.uniform(0.4, 0.6)
        base = self.hz + self.u * 0.02
        bw = self.w * self.rng.uniform(0.7, 0.95)
        r = self.region
        if r in ("china", "fantasy_east"):
            steps = self.c((236, 232, 222), 0.1)
            self.poly([(x - bw * 0.55, base), (x + bw * 0.55, base), (x + bw * 0.45, base - self.u * 0.06),
                       (x - bw * 0.45, base - self.u * 0.06)], steps)
            top = base - self.u * 0.06
            hh = self.u * self.rng.uniform(0.16, 0.22)
            self.rect(x - bw * 0.4, top - hh, x + bw * 0.4, top, self.c((170, 52, 46), 0.1))
            for i in range(7):
                cx = x - bw * 0.36 + bw * 0.72 * i / 6
                self.rect(cx - self.u * 0.01, top - hh, cx + self.u * 0.01, top, self.c((120, 30, 30), 0.1))
            roof = self.c((214, 164, 52), 0.1)
            self.bd._roof(x, top - hh, bw * 1.05, hh * 0.55, roof)
            self.bd._roof(x, top - hh * 1.5, bw * 0.7, hh * 0.45, roof)
            if r == "fantasy_east":  # a palace in the clouds
                for _ in range(6):
                    self.bd._cloud(self.rng.uniform(0, 1) * self.w, base + self.rng.uniform(-0.02, 0.08) * self.h,
                                   self.w * self.rng.uniform(0.3, 0.5))
        elif r == "fantasy_west":
            stone = self.c((170, 166, 160), 0.15)
            hh = self.u * 0.28
            self.rect(x - bw * 0.35, base - hh, x + bw * 0.35, base, stone)
            for k in (-0.4, -0.13, 0.13, 0.4):
                tx, th = x + k * bw, hh * (1.5 if abs(k) < 0.2 else 1.25)
                self.rect(tx - bw * 0.06, base - th, tx + bw * 0.06, base, shade(stone, 0.92))
                self.poly([(tx - bw * 0.08, base - th), (tx, base - th - self.u * 0.1), (tx + bw * 0.08, base - th)],
                          self.c((60, 70, 120), 0.15))
                self.flag(tx, base - th - self.u * 0.1, self.u * 0.08, self.c((200, 50, 50)))
            self.draw.rectangle((x - bw * 0.06, base - hh * 0.45, x + bw * 0.06, base), fill=self.c((60, 44, 36)))
        elif r == "modern":
            for k in (-0.3, 0.0, 0.3):
                self.building(x + k * bw, base, bw * 0.3, self.u * self.rng.uniform(0.4, 0.7), 0.15)
        else:  # a Georgian / Victorian stately home: columns and a pediment
            stone = self.c((214, 204, 180), 0.15)
            hh = self.u * self.rng.uniform(0.2, 0.26)
            self.rect(x - bw * 0.45, base - hh, x + bw * 0.45, base, stone)
            self.rect(x - bw * 0.47, base - hh - self.u * 0.02, x + bw * 0.47, base - hh, shade(stone, 0.85))
            self.poly([(x - bw * 0.16, base - hh), (x, base - hh - self.u * 0.08), (x + bw * 0.16, base - hh)], shade(stone, 0.92))
            for i in range(4):
                cx = x - bw * 0.12 + bw * 0.24 * i / 3
                self.rect(cx - self.u * 0.008, base - hh, cx + self.u * 0.008, base, mix(stone, (255, 255, 255), 0.4))
            night = self.sc.time in ("night", "dusk")
            for row in (0.25, 0.62):
                for i in range(8):
                    wx = x - bw * 0.42 + bw * 0.84 * (i + 0.5) / 8
                    if abs(wx - x) < bw * 0.15:
                        continue
                    self.rect(wx - bw * 0.02, base - hh * (1 - row) - hh * 0.12, wx + bw * 0.02, base - hh * (1 - row),
                              (252, 208, 110) if night else self.c((70, 80, 100), 0.15))
            for k in (-0.6, 0.6):  # clipped trees on the lawn
                self.bd._round_tree(x + k * bw * 0.75, base + self.u * 0.05, self.u * 0.14, 0.05)

    def temple(self) -> None:
        self._sky()
        self.hills((110, 130, 120), 0.14, 0.55, 3)
        self.ground(_GROUND["temple"])
        x = self.w * self.rng.uniform(0.3, 0.7)
        base = self.hz + self.u * 0.02
        if self.east:
            self.bd._pagoda()
            hw, hh = self.u * 0.36, self.u * 0.14
            self.rect(x - hw / 2, base - hh, x + hw / 2, base, self.c((186, 60, 50), 0.15))
            self.bd._roof(x, base - hh, hw * 1.3, hh * 0.55, self.c((70, 64, 70), 0.15))
            self.rect(x - hw * 0.12, base - hh * 0.7, x + hw * 0.12, base, self.c((90, 40, 36), 0.15))
            for dx in (-0.6, 0.6):  # incense burners / stone lanterns
                lx = x + dx * hw
                self.rect(lx - self.u * 0.012, base - self.u * 0.06, lx + self.u * 0.012, base + self.u * 0.02,
                          self.c((150, 146, 138)))
        else:  # a stone church with a spire and a pointed window
            stone = self.c((176, 170, 158), 0.15)
            nw, nh = self.u * 0.42, self.u * 0.16
            self.rect(x - nw / 2, base - nh, x + nw / 2, base, stone)
            self.poly([(x - nw * 0.55, base - nh), (x, base - nh - self.u * 0.08), (x + nw * 0.55, base - nh)],
                      self.c((80, 84, 96), 0.15))
            tx = x - nw / 2
            tw, th = self.u * 0.11, self.u * 0.3
            self.rect(tx - tw / 2, base - th, tx + tw / 2, base, shade(stone, 0.94))
            self.poly([(tx - tw * 0.6, base - th), (tx, base - th - self.u * 0.22), (tx + tw * 0.6, base - th)],
                      self.c((80, 84, 96), 0.15))
            for k in (-0.2, 0.15, 0.35):
                wx = x + k * nw
                self.draw.pieslice((wx - self.u * 0.02, base - nh * 0.8, wx + self.u * 0.02, base - nh * 0.5), 180, 360,
                                   fill=self.c((90, 110, 150), 0.15))
                self.rect(wx - self.u * 0.02, base - nh * 0.65, wx + self.u * 0.02, base - nh * 0.3, self.c((90, 110, 150), 0.15))
            for _ in range(self.rng.randint(3, 6)):  # gravestones
                gx, gy = self.rng.uniform(0, 1) * self.w, base + (self.h - base) * self.rng.uniform(0.05, 0.3)
                self.draw.rounded_rectangle((gx - self.u * 0.012, gy - self.u * 0.03, gx + self.u * 0.012, gy),
                                            radius=self.u * 0.01, fill=self.c((150, 150, 146)))

    def city_street(self) -> None:
        self._sky()
        w, h, hz = self.w, self.h, self.hz
        vx = w * self.rng.uniform(0.4, 0.6)
        road = self.c((120, 116, 112) if self.region == "modern" else (156, 146, 132))
        self.ground(_GROUND["city_street"])
        self.poly([(vx - w * 0.03, hz), (vx + w * 0.03, hz), (w * 0.85, h), (w * 0.15, h)], road)
        if self.region == "modern":
            for i in range(6):
                t0, t1 = (i / 6) ** 1.6, ((i + 0.5) / 6) ** 1.6
                self.draw.line((vx, hz + (h - hz) * t0, vx + (w * 0.5 - vx) * t0, hz + (h - hz) * t1),
                               fill=(236, 232, 210), width=self.lw(0.6 + i * 0.5))
        elif self.region in ("england", "neutral", "fantasy_west"):  # cobbles
            for i in range(1, 12):
                y = hz + (h - hz) * (i / 12) ** 1.5
                self.draw.line((0, y, w, y), fill=shade(road, 0.9), width=self.lw(0.5))
        # two rows of buildings in perspective, nearest last
        for side in (-1, 1):
            for i in range(6, -1, -1):
                t = (i + 1) / 7
                x = vx + side * (w * 0.08 + w * 0.55 * (1 - t) ** 1.3)
                size = self.u * (0.12 + 0.32 * (1 - t))
                base = hz + (h - hz) * 0.12 * (1 - t)
                tall = {"modern": 2.4, "china": 0.8, "fantasy_east": 0.8}.get(self.region, 1.2)
                self.building(x, base, size, size * tall * self.rng.uniform(0.8, 1.2), far=0.35 * t,
                              storeys=2 if self.region in ("england", "neutral") else 1)
                if self.region in ("england", "neutral") and i % 2 == 0:
                    self.gas_lamp(x - side * size * 0.6, base + self.u * 0.02, self.u * 0.18 * (1.2 - t))
                elif self.east and i % 2 == 0:
                    self.bd._lantern(x - side * size * 0.45, base - size * 0.7, self.u * 0.015 * (1.4 - t))
                    self.flag(x - side * size * 0.55, base, size * 0.7, self.c(self.rng.choice(((190, 60, 50), (60, 110, 160), (220, 180, 60)))))
                elif self.region == "modern" and i % 3 == 0:
                    self.gas_lamp(x - side * size * 0.6, base + self.u * 0.02, self.u * 0.22 * (1.2 - t))

    def village(self) -> None:
        self._sky()
        self.hills((110, 140, 110), 0.1, 0.5, 3)
        self.ground(_GROUND["village"])
        n = self.rng.randint(3, 5)
        for i in range(n):
            x = self.w * (i + 0.5) / n + self.rng.uniform(-0.06, 0.06) * self.w
            size = self.u * self.rng.uniform(0.16, 0.24)
            base = self.hz + self.u * self.rng.uniform(0.0, 0.05)
            if self.region == "england" and self.rng.random() < 0.6:
                self._cottage(x, base, size)
            else:
                self.building(x, base, size, size * 0.6)
        if self.region in ("england", "neutral") and self.rng.random() < 0.7:  # the parish church's spire
            x = self.rng.uniform(0.1, 0.9) * self.w
            self.poly([(x - self.u * 0.02, self.hz), (x, self.hz - self.u * 0.3), (x + self.u * 0.02, self.hz)],
                      self.c((120, 120, 124), 0.5))
        for _ in range(self.rng.randint(2, 4)):
            self.tree(self.rng.uniform(0, 1) * self.w, self.hz + self.u * 0.08, self.u * 0.16, 0.1)
        fence = self.c((140, 110, 80))
        y = self.hz + (self.h - self.hz) * 0.3
        self.draw.line((0, y, self.w, y), fill=fence, width=self.lw())
        for i in range(16):
            x = self.w * i / 15
            self.draw.line((x, y - self.u * 0.03, x, y + self.u * 0.01), fill=fence, width=self.lw())

    def _cottage(self, x: float, base: float, size: float) -> None:
        wall = self.c((236, 228, 206), 0.25)
        self.rect(x - size / 2, base - size * 0.5, x + size / 2, base, wall)
        beam = self.c((84, 62, 48), 0.25)
        for k in (-0.5, -0.15, 0.2, 0.5):
            self.draw.line((x + k * size, base - size * 0.5, x + k * size, base), fill=beam, width=self.lw(1.2))
        thatch = self.c((196, 160, 96), 0.25)
        self.draw.chord((x - size * 0.62, base - size * 1.0, x + size * 0.62, base - size * 0.28), 180, 360, fill=thatch)
        self.rect(x - size * 0.1, base - size * 0.3, x + size * 0.1, base, self.c((90, 64, 50), 0.25))

    def battlefield(self) -> None:
        self._sky()
        self.hills((130, 120, 100), 0.1, 0.55, 4)
        self.ground(_GROUND["battlefield"])
        colours = [self.c(c) for c in ((196, 56, 46), (232, 196, 70), (60, 96, 168), (40, 40, 46))]
        for _ in range(self.rng.randint(3, 6)):  # tents on the far side
            x, r = self.rng.uniform(0, 1) * self.w, self.u * self.rng.uniform(0.04, 0.06)
            self.poly([(x - r, self.hz + 2), (x, self.hz - r * 1.1), (x + r, self.hz + 2)], self.c((220, 210, 190), 0.4))
        for i in range(self.rng.randint(10, 16)):  # banners and spears of two armies
            side = i % 2
            x = self.w * (self.rng.uniform(0.0, 0.4) + 0.6 * side)
            base = self.hz + (self.h - self.hz) * self.rng.uniform(0.02, 0.3)
            size = self.u * self.rng.uniform(0.12, 0.22)
            if self.rng.random() < 0.5:
                self.flag(x, base, size, colours[side * 2 + (i // 2) % 2])
            else:
                self.draw.line((x, base, x + size * 0.1, base - size * 1.2), fill=(70, 60, 50), width=self.lw())
        haze = Image.new("L", (self.w, self.h), 0)  # dust over the field
        ImageDraw.Draw(haze).rectangle((0, self.hz - self.u * 0.06, self.w, self.hz + (self.h - self.hz) * 0.4), fill=60)
        self.bd.image.paste(self.c((220, 200, 160)), mask=haze)

    def sky(self) -> None:
        """Up in the sky: a sea of cloud below, no ground."""
        self.bd._gradient((0, 0, self.w, self.h), self.bd.top, mix(self.bd.bottom, (255, 255, 255), 0.3))
        self.bd._sky_objects()
        sea = mix(self.bd.bottom, (255, 255, 255), 0.7 if self.sc.time == "day" else 0.3)
        for i in range(4):
            y = self.hz + (self.h - self.hz) * i / 4
            for _ in range(5):
                self.bd._cloud(self.rng.uniform(-0.1, 1.1) * self.w, y, self.w * self.rng.uniform(0.3, 0.6))
        self.rect(0, self.hz + (self.h - self.hz) * 0.35, self.w, self.h, sea)
        if self.region == "fantasy_east" or _has(self.sc.words, ("天宫", "天庭", "仙", r"\bheaven")):
            x, base = self.rng.uniform(0.2, 0.8) * self.w, self.hz - self.u * 0.02
            hw = self.u * 0.3
            self.rect(x - hw / 2, base - self.u * 0.1, x + hw / 2, base, self.c((190, 60, 52), 0.5))
            self.bd._roof(x, base - self.u * 0.1, hw * 1.3, self.u * 0.06, self.c((220, 172, 60), 0.5))

    def field(self) -> None:
        self._sky()
        self.hills((120, 150, 110), 0.08, 0.55, 4)
        self.ground(_GROUND["field"])
        hz, h, w = self.hz, self.h, self.w
        vx = w * self.rng.uniform(0.3, 0.7)
        path = self.c((196, 176, 132))
        self.poly([(vx - w * 0.01, hz), (vx + w * 0.01, hz), (w * 0.62, h), (w * 0.38, h)], path)
        row = self.c((100, 140, 64))
        for i in range(1, 9):
            y = hz + (h - hz) * (i / 9) ** 1.6
            self.draw.line((0, y, w, y), fill=row, width=self.lw(0.5 + i * 0.2))
        if self.region in ("england", "neutral"):
            for _ in range(2):  # hedgerows
                y = hz + (h - hz) * self.rng.uniform(0.05, 0.2)
                self.draw.rounded_rectangle((0, y - self.u * 0.02, w, y + self.u * 0.01), radius=self.u * 0.015,
                                            fill=self.c((70, 110, 60), 0.3))
        for _ in range(self.rng.randint(1, 3)):
            self.tree(self.rng.uniform(0, 1) * w, hz + self.u * 0.03, self.u * 0.14, 0.25)

    # -- rooms

    def room(self) -> None:
        """A room in the region's style; a palace or temple seen from inside gets its hall."""
        bd, w, h, floor = self.bd, self.w, self.h, self.hz
        kind, r = self.sc.kind, self.region
        books = _has(self.sc.words, _LIBRARY_WORDS)
        if self.east or kind in ("palace", "temple") and r not in ("england", "modern", "neutral", "fantasy_west"):
            bd._interior()
            if kind == "temple":
                self._altar(w * 0.5, floor)
            if books:
                self._bookcase(w * (0.2 if self.rng.random() < 0.5 else 0.8), floor, self.u * 0.3, floor * 0.62)
            return
        dim = bd._room_light
        if r == "modern":
            wall: RGB = mix((232, 230, 224), self.tint, 0.12)
            bd._gradient((0, 0, w, floor), dim(wall), dim(shade(wall, 0.92)))
            bd._gradient((0, floor, w, h), dim((176, 170, 160)), dim((150, 144, 136)))
            x = w * self.rng.uniform(0.3, 0.7)
            ww, wh = self.u * 0.5, floor * 0.55
            top = floor * 0.18
            sky_top, sky_bottom, _ = _SKY[self.sc.time]
            bd._gradient((round(x - ww / 2), round(top), round(x + ww / 2), round(top + wh)), sky_top, sky_bottom)
            for i in range(6):  # the skyline through the window
                bx = x - ww / 2 + ww * i / 6
                bh = wh * self.rng.uniform(0.3, 0.8)
                self.rect(bx, top + wh - bh, bx + ww / 6 * 0.8, top + wh, mix(sky_bottom, (60, 70, 90), 0.5))
            self.draw.rectangle((x - ww / 2, top, x + ww / 2, top + wh), outline=dim((90, 90, 96)), width=self.lw(2))
            self.draw.line((x, top, x, top + wh), fill=dim((90, 90, 96)), width=self.lw(1.5))
            sx = w * (0.15 if x > w / 2 else 0.85)  # a lamp
            self.draw.line((sx, floor + h * 0.02, sx, floor - floor * 0.35), fill=dim((60, 60, 66)), width=self.lw(1.5))
            self.poly([(sx - self.u * 0.05, floor - floor * 0.35), (sx + self.u * 0.05, floor - floor * 0.35),
                       (sx + self.u * 0.03, floor - floor * 0.45), (sx - self.u * 0.03, floor - floor * 0.45)], dim((240, 226, 190)))
        else:  # a Georgian / Victorian room: wallpaper, wainscot, fireplace, portrait, sash window
            paper = mix(self.rng.choice(((170, 186, 160), (196, 170, 150), (150, 170, 190), (210, 196, 160))), self.tint, 0.15)
            if r == "fantasy_west" or kind in ("palace", "temple") and r == "fantasy_west":
                paper = (150, 140, 128)
            bd._gradient((0, 0, w, floor), dim(paper), dim(shade(paper, 0.9)))
            stripe = dim(shade(paper, 0.9))
            for i in range(0, 40):
                x = w * i / 40
                self.draw.line((x, 0, x, floor * 0.7), fill=stripe, width=self.lw(0.8))
            self.rect(0, floor * 0.7, w, floor, dim((236, 230, 216)))
            self.draw.line((0, floor * 0.7, w, floor * 0.7), fill=dim((150, 130, 110)), width=self.lw(1.5))
            bd._floor(dim((120, 80, 52)))
            rug = dim(mix((150, 50, 50), self.tint, 0.3))
            self.poly([(w * 0.2, floor + (h - floor) * 0.25), (w * 0.8, floor + (h - floor) * 0.25), (w * 0.95, h * 0.98),
                       (w * 0.05, h * 0.98)], rug)
            side = self.rng.random() < 0.5
            fx = w * (0.26 if side else 0.74)  # the fireplace
            fw, fh = self.u * 0.3, floor * 0.32
            self.rect(fx - fw / 2, floor - fh, fx + fw / 2, floor, dim((230, 224, 210)))
            self.rect(fx - fw * 0.3, floor - fh * 0.7, fx + fw * 0.3, floor, (40, 30, 28))
            self.draw.ellipse((fx - fw * 0.18, floor - fh * 0.35, fx + fw * 0.18, floor - fh * 0.02), fill=(246, 150, 60))
            self.rect(fx - fw * 0.58, floor - fh - self.u * 0.015, fx + fw * 0.58, floor - fh, dim((200, 190, 176)))
            pw, ph = self.u * 0.14, floor * 0.22  # a portrait above it
            self.rect(fx - pw / 2, floor - fh - ph * 1.25, fx + pw / 2, floor - fh - ph * 0.25, dim((170, 130, 60)))
            self.rect(fx - pw * 0.4, floor - fh - ph * 1.17, fx + pw * 0.4, floor - fh - ph * 0.33, dim((70, 60, 54)))
            self.draw.ellipse((fx - pw * 0.14, floor - fh - ph * 1.05, fx + pw * 0.14, floor - fh - ph * 0.7),
                              fill=dim((230, 200, 170)))
            wx = w * (0.72 if side else 0.28)
            ww, wh = self.u * 0.2, floor * 0.5
            top = floor * 0.12
            sky_top, sky_bottom, _ = _SKY[self.sc.time]
            bd._gradient((round(wx - ww / 2), round(top), round(wx + ww / 2), round(top + wh)), sky_top, sky_bottom)
            frame = dim((244, 240, 232))
            self.draw.rectangle((wx - ww / 2, top, wx + ww / 2, top + wh), outline=frame, width=self.lw(2))
            for k in (1, 2):
                self.draw.line((wx - ww / 2, top + wh * k / 3, wx + ww / 2, top + wh * k / 3), fill=frame, width=self.lw())
            self.draw.line((wx, top, wx, top + wh), fill=frame, width=self.lw())
            curtain = dim(mix((120, 40, 50), self.tint, 0.3))
            for s_ in (-1, 1):
                cx = wx + s_ * ww * 0.62
                self.poly([(cx - ww * 0.15, top - floor * 0.04), (cx + ww * 0.15, top - floor * 0.04),
                           (cx + ww * 0.1 * s_, top + wh * 1.1), (cx - ww * 0.12 * s_, top + wh * 1.1)], curtain)
            if kind == "temple":
                self._altar(w * 0.5, floor)
            if books:  # shelves of books from the floor up, where the window and its curtains were
                self._bookcase(wx, floor, ww * 1.9, floor * 0.92)
            if self.sc.time in ("night", "dusk"):
                bd._candle_glow()

    def _bookcase(self, x: float, floor: float, width: float, height: float) -> None:
        """Shelves of books (of bound scrolls and stitched volumes in old China)."""
        dim = self.bd._room_light
        wood = dim(mix((104, 70, 46), self.tint, 0.1))
        l, t, r = x - width / 2, floor - height, x + width / 2
        self.rect(l, t, r, floor, wood)
        rows = 5
        inner = width * 0.06
        spines = ((140, 40, 44), (46, 70, 110), (60, 100, 66), (160, 120, 60), (96, 60, 90), (200, 190, 160))
        rng = random.Random(_hash_int("books:" + self.sc.key))
        for i in range(rows):
            st, sb = t + height * (i + 0.08) / rows, t + height * (i + 0.92) / rows
            self.rect(l + inner, st, r - inner, sb, dim(shade(wood, 0.55)))
            bx = l + inner
            while bx < r - inner - width * 0.03:
                bw = width * rng.uniform(0.03, 0.06)
                if self.east:  # scroll ends and stacked stitched volumes
                    rr = min(bw, sb - st) * 0.45
                    self.draw.ellipse((bx, sb - rr * 2, bx + rr * 2, sb), fill=dim(rng.choice(((236, 226, 200), (210, 190, 150)))),
                                      outline=dim((120, 90, 60)))
                    bx += rr * 2 + width * 0.01
                    continue
                top = st + (sb - st) * rng.uniform(0.0, 0.25)
                self.rect(bx, top, min(bx + bw, r - inner), sb, dim(rng.choice(spines)))
                bx += bw + width * 0.004

    def _altar(self, x: float, floor: float) -> None:
        aw = self.u * 0.3
        self.rect(x - aw / 2, floor - self.u * 0.1, x + aw / 2, floor, self.c((150, 60, 50)))
        for dx in (-0.35, 0.35):
            cx = x + dx * aw
            self.rect(cx - self.u * 0.006, floor - self.u * 0.16, cx + self.u * 0.006, floor - self.u * 0.1, (240, 234, 220))
            self.draw.ellipse((cx - self.u * 0.008, floor - self.u * 0.18, cx + self.u * 0.008, floor - self.u * 0.16),
                              fill=(252, 200, 90))

    # -- weather

    def weather(self) -> None:
        kind, wx = self.sc.kind, self.sc.weather
        if self.sc.interior or kind == "cave" or wx in ("unknown", "clear"):
            return
        w, h, rng = self.w, self.h, self.bd.weather
        image = self.bd.image
        if wx == "fog":
            mask = Image.new("L", (1, 256))
            mask.putdata([round(150 * max(0.0, 1 - abs(i / 255 - self.hz / h) * 2.2)) + 40 for i in range(256)])
            image.paste((226, 228, 230), mask=mask.resize((w, h)))
            return
        layer = Image.new("L", (w, h), 0)
        d = ImageDraw.Draw(layer)
        if wx in ("rain", "storm"):
            n = 260 if wx == "storm" else 170
            slant = 0.35 if wx == "storm" else 0.18
            for _ in range(n):
                x, y = rng.uniform(-0.2, 1.0) * w, rng.uniform(0, 1) * h
                length = self.u * rng.uniform(0.04, 0.08)
                d.line((x, y, x + length * slant, y + length), fill=150, width=max(1, round(self.u / 500)))
            image.paste((214, 222, 236), mask=layer)
            if wx == "storm":  # one bolt of lightning
                x = rng.uniform(0.2, 0.8) * w
                pts = [(x, 0.0)]
                while pts[-1][1] < self.hz * 0.8:
                    pts.append((pts[-1][0] + rng.uniform(-0.06, 0.06) * w, pts[-1][1] + self.hz * rng.uniform(0.08, 0.16)))
                ImageDraw.Draw(image).line(pts, fill=(250, 250, 220), width=max(2, round(self.u / 150)), joint="curve")
        elif wx == "snow":
            ground = Image.new("L", (w, h), 0)
            ImageDraw.Draw(ground).rectangle((0, self.hz, w, h), fill=120)
            image.paste((244, 246, 250), mask=ground)
            for _ in range(220):
                x, y, r = rng.uniform(0, 1) * w, rng.uniform(0, 1) * h, self.u * rng.uniform(0.003, 0.008)
                d.ellipse((x - r, y - r, x + r, y + r), fill=230)
            image.paste((255, 255, 255), mask=layer)
        elif wx == "wind":
            for _ in range(26):
                x, y = rng.uniform(-0.2, 1.0) * w, rng.uniform(0.05, 0.9) * h
                length = w * rng.uniform(0.08, 0.2)
                d.arc((x, y - self.u * 0.02, x + length, y + self.u * 0.02), 200, 340, fill=170, width=max(1, round(self.u / 400)))
            image.paste((246, 246, 240), mask=layer)
            leaf = self.c((120, 150, 60))
            draw = ImageDraw.Draw(image)
            for _ in range(14):
                x, y, r = rng.uniform(0, 1) * w, rng.uniform(0.1, 0.8) * h, self.u * 0.008
                draw.ellipse((x - r * 1.6, y - r, x + r * 1.6, y + r), fill=leaf)


def _smooth(points: Sequence[tuple[float, float]], rounds: int = 2) -> list[tuple[float, float]]:
    """Chaikin's corner cutting: a rounded outline through ``points`` (ends kept)."""
    pts = list(points)
    for _ in range(rounds):
        out = [pts[0]]
        for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
            out += [(x0 * 0.75 + x1 * 0.25, y0 * 0.75 + y1 * 0.25), (x0 * 0.25 + x1 * 0.75, y0 * 0.25 + y1 * 0.75)]
        out.append(pts[-1])
        pts = out
    return pts


# --------------------------------------------------------------------------- mood


_MOOD_TINTS: dict[str, tuple[RGB, float, float, float]] = {  # colour, blend, brightness, saturation
    "tense": ((28, 48, 96), 0.24, 0.82, 0.85),
    "sad": ((92, 104, 126), 0.22, 0.9, 0.55),
    "joyful": ((255, 188, 106), 0.16, 1.06, 1.12),
    "mysterious": ((72, 38, 116), 0.3, 0.8, 0.9),
    "action": ((224, 92, 44), 0.16, 1.0, 1.1),
}


def _apply_mood(canvas: Image.Image, mood: str) -> None:
    """Tint the backdrop for the mood (characters are drawn after, so their colours stay true)."""
    if mood not in _MOOD_TINTS:
        return
    canvas.paste(canvas.convert("RGB", _mood_matrix(*_MOOD_TINTS[mood])))
    if mood in ("tense", "mysterious", "sad"):
        canvas.paste((8, 8, 16), mask=_radial_mask(canvas.size, (0.5, 0.5), 0.95, 110, invert=True))
    if mood == "action":
        _speed_lines(canvas)


def _mood_matrix(colour: RGB, amount: float, brightness: float, saturation: float) -> tuple[float, ...]:
    """One colour matrix for: saturation change, blend ``amount`` toward ``colour``, brightness.

    out = brightness · ((1 - amount) · (luma + saturation · (in - luma)) + amount · colour)
    """
    luma = (0.299, 0.587, 0.114)
    keep = brightness * (1 - amount)
    rows: list[float] = []
    for c in range(3):
        row = [keep * (1 - saturation) * luma[k] + (keep * saturation if k == c else 0.0) for k in range(3)]
        rows += row + [brightness * amount * colour[c]]
    return tuple(rows)


def _radial_mask(
    size: tuple[int, int], centre: tuple[float, float], radius: float, strength: int, invert: bool = False
) -> Image.Image:
    """A soft round mask, ``strength`` at the centre fading to 0 at ``radius`` (or, inverted, dark
    toward the edges), computed small and scaled up."""
    small = 64
    ys, xs = np.mgrid[0:small, 0:small] / small
    d = np.hypot(xs - centre[0], ys - centre[1]) / radius
    v = np.clip((d - 0.55) / 0.45, 0, 1) if invert else np.clip(1 - d, 0, 1) ** 2
    mask = Image.fromarray(np.round(v * strength).astype(np.uint8))
    return mask.resize(size, Image.Resampling.BILINEAR)


def _speed_lines(canvas: Image.Image) -> None:
    w, h = canvas.size
    draw = ImageDraw.Draw(canvas)
    rng = random.Random(_hash_int(f"speed:{w}x{h}"))
    cx, cy = w / 2, h * 0.5
    for i in range(48):
        a = 2 * math.pi * i / 48 + rng.uniform(-0.03, 0.03)
        r0 = max(w, h) * rng.uniform(0.38, 0.5)
        r1 = max(w, h) * 0.9
        draw.line((cx + math.cos(a) * r0, cy + math.sin(a) * r0, cx + math.cos(a) * r1, cy + math.sin(a) * r1),
                  fill=(250, 244, 230), width=max(1, round(min(w, h) / 300)))


def _glow(canvas: Image.Image, box: FBox) -> None:
    """A soft light behind the speaker so the eye finds them first."""
    l, t, r, b = box
    pad = (r - l) * 0.25
    region = (
        max(0, round(l - pad)), max(0, round(t - pad)), min(canvas.width, round(r + pad)), min(canvas.height, round(b))
    )
    if region[2] - region[0] < 4 or region[3] - region[1] < 4:
        return
    size = (region[2] - region[0], region[3] - region[1])
    canvas.paste((255, 248, 222), region, mask=_radial_mask(size, (0.5, 0.45), 0.55, 120))


# --------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class _Placement:
    character_id: str
    look: CharacterLook
    box: FBox
    pose: Pose
    facing: int
    framing: Framing
    expression: str
    speaker: bool


def key_line(shot: Shot) -> Line | None:
    """The line lettered on a shot: the first dialogue by a character in it, else the first line."""
    for line in shot.lines:
        if not line.is_narration and line.speaker in shot.characters:
            return line
    return shot.lines[0] if shot.lines else None


def _on_screen_speaker(shot: Shot) -> str | None:
    line = key_line(shot)
    return line.speaker if line is not None and line.speaker in shot.characters else None


def _visible(shot: Shot, speaker: str | None) -> list[str]:
    """Who is drawn: everyone, but close-ups keep two (the speaker and a neighbour), extreme ones one."""
    ids = list(dict.fromkeys(shot.characters))
    keep = {"close_up": 2, "extreme_close_up": 1}.get(shot.camera.size, len(ids))
    if len(ids) <= keep:
        return ids
    lead = speaker if speaker in ids else ids[0]
    i = ids.index(lead)
    chosen = {lead}
    for j in (i + 1, i - 1, i + 2, i - 2):
        if len(chosen) >= keep:
            break
        if 0 <= j < len(ids):
            chosen.add(ids[j])
    return [c for c in ids if c in chosen]


# camera size → (box height for the tallest build as a fraction of the frame, how far the feet sit
# between the horizon and the frame bottom; None: the box bottom is the frame bottom)
_SHOT_SCALE: dict[str, tuple[float, float | None]] = {
    "extreme_wide": (0.2, 0.3),
    "wide": (0.34, 0.5),
    "full": (0.58, 0.92),
    "medium": (0.62, None),
    "close_up": (0.64, None),
    "extreme_close_up": (0.7, None),
}


def _layout(
    shot: Shot, looks: dict[str, CharacterLook], w: int, h: int, ground: int,
    safe: FBox = (0.0, 0.0, 1.0, 1.0 - SUBTITLE_BAND),
) -> list[_Placement]:
    """Boxes, poses and facings for the visible characters, left to right as listed; the speaker
    (if on screen) stands a little larger and nearer. Every face ends above the bottom of the
    ``safe`` area (fractions; below it, subtitles may cover it at some point of the camera move)."""
    speaker = _on_screen_speaker(shot)
    ids = _visible(shot, speaker)
    if not ids:
        return []
    size = shot.camera.size
    framing = _FRAMING[size]
    frac, feet = _SHOT_SCALE[size]
    box_h = h * frac
    aspect = figure_aspect(framing)
    n = len(ids)
    step_factor = {"full": 0.78, "medium": 0.72, "bust": 0.62, "face": 0.6}[framing]
    usable = w * 0.94
    if n * box_h * aspect * step_factor > usable:  # too wide: shrink, but not below half size
        box_h = max(box_h * 0.5, usable / (n * aspect * step_factor))
    box_w = box_h * aspect
    bottom = h * 1.0 if feet is None else ground + (h - ground) * feet
    step = min(usable / n, box_w * (0.95 if size in ("extreme_wide", "wide") else 1.15))
    step = max(step, min(box_w * step_factor, usable / n))
    jitter = ((_hash_int("x:" + shot.id) % 1000) / 1000 - 0.5) * w * 0.16 if size in ("extreme_wide", "wide") else 0.0
    start = w / 2 + jitter - step * (n - 1) / 2
    tallest = max(looks[c].height for c in ids)
    face_limit = h * safe[3] - min(w, h) * 0.02  # faces end above this y
    mood_face = _MOOD_EXPRESSION.get(shot.mood or "", "neutral")
    line = key_line(shot)
    out = []
    for i, cid in enumerate(ids):
        is_speaker = cid == speaker
        grow = 1.06 if is_speaker and n > 1 else 1.0
        if framing in ("bust", "face"):  # close-ups fill the box, so keep a child smaller than an adult here
            grow *= looks[cid].height / tallest
        cx = start + i * step
        bw, bh = box_w * grow, box_h * grow
        b = bottom + (h * 0.012 if is_speaker and feet is not None and n > 1 else 0.0)
        pose, facing = _pose_for(i, n, framing, shot.id)
        expression = line.emotion if is_speaker and line is not None else mood_face
        box = (cx - bw / 2, b - bh, cx + bw / 2, b)
        box, drawn_as = _face_above(looks[cid], box, framing, pose, face_limit, feet is None, ground, h)
        out.append(_Placement(cid, looks[cid], box, pose, facing, drawn_as, expression, is_speaker))
    return out


def _face_above(
    look: CharacterLook, box: FBox, framing: Framing, pose: Pose, limit: float, cut_by_frame: bool, ground: int, h: int
) -> tuple[FBox, Framing]:
    """``box`` (and the framing) changed so the face drawn in it ends above ``limit`` (a y in pixels).

    A figure cut by the frame bottom (medium shots, close-ups) is framed wider at the same size —
    face → head and shoulders → waist up — with the cut now below the frame, so faces keep their
    size and their distance from each other; only a figure too small even for that grows. A
    standing figure steps back, its feet toward the horizon, and grows only when it cannot step
    back far enough."""
    face = head_box(look, box, framing, pose)
    if face[3] <= limit:
        return box, framing
    l, t, r, b = box
    cx = (l + r) / 2
    if cut_by_frame:
        s = figure_scale(look, box, framing)
        order: tuple[Framing, ...] = ("face", "bust", "medium")
        for wider in order[order.index(framing):] if framing in order else ("medium",):
            below = chin_to_cut(look, wider, pose) * s
            if limit + below >= b:
                return figure_box(look, wider, s, cx, limit + below), wider
        return figure_box(look, "medium", (b - limit) / chin_to_cut(look, "medium", pose), cx, b), "medium"
    b = max(b - (face[3] - limit), ground + (h - ground) * 0.08)
    reach = box[3] - face[3]  # from the face's bottom down to the box bottom: grows with the box
    g = max(1.0, (b - limit) / max(reach, 1e-6))
    bw, bh = (r - l) * g, (box[3] - t) * g
    return (cx - bw / 2, b - bh, cx + bw / 2, b), framing


def _pose_for(i: int, n: int, framing: Framing, shot_id: str) -> tuple[Pose, int]:
    """Characters turn toward the middle of the group; a lone figure faces out (or turns a little)."""
    if n == 1:
        if framing in ("full", "face"):
            return "front", 1
        return "three_quarter", 1 if _hash_int("facing:" + shot_id) % 2 else -1
    middle = (n - 1) / 2
    if i == middle:
        return "front", 1
    return "three_quarter", 1 if i < middle else -1


def _draw_figures(
    canvas: Image.Image, placements: list[_Placement], groups: set[str] | frozenset[str] = frozenset()
) -> dict[str, DrawnFigure]:
    """Draw listeners first and the speaker last (in front); returns where each landed. A group
    (soldiers, 黄巾, 众猴) is a crowd: two more of its figures stand behind, a little smaller."""
    drawn: dict[str, DrawnFigure] = {}
    for p in sorted(placements, key=lambda p: p.speaker):
        if p.character_id in groups:
            _draw_crowd(canvas, p)
        if p.framing == "full":
            _ground_shadow(canvas, p.box)
        gesture = p.speaker and p.framing in ("full", "medium")
        drawn[p.character_id] = draw_character(
            canvas, p.look, p.box, p.pose, p.expression, facing=p.facing, framing=p.framing,
            gesture=gesture, supersample=1,
        )
    return drawn


def _draw_crowd(canvas: Image.Image, p: _Placement) -> None:
    """Two members of a group behind its front figure, left and right, smaller and in shade."""
    l, t, r, b = p.box
    bw, bh = r - l, b - t
    for side, k in ((-1, 0.86), (1, 0.8)):
        cx = (l + r) / 2 + side * bw * 0.42
        top = b - bh * k - bh * 0.04  # a step further back
        box = (cx - bw * k / 2, top, cx + bw * k / 2, top + bh * k)
        look = dataclasses.replace(p.look, clothing=shade(p.look.clothing, 0.82), lower=shade(p.look.lower, 0.82))
        draw_character(canvas, look, box, "three_quarter", p.expression, facing=-side, framing=p.framing, supersample=1)


def _ground_shadow(canvas: Image.Image, box: FBox) -> None:
    l, t, r, b = box
    cx, rw, rh = (l + r) / 2, (r - l) * 0.32, (b - t) * 0.025
    region = (round(cx - rw), round(b - rh * 1.6), round(cx + rw), round(b + rh * 0.4))
    if region[2] <= region[0] or region[3] <= region[1]:
        return
    mask = Image.new("L", (region[2] - region[0], region[3] - region[1]), 0)
    ImageDraw.Draw(mask).ellipse((0, 0, mask.width - 1, mask.height - 1), fill=90)
    canvas.paste((20, 20, 30), region, mask=mask)


# --------------------------------------------------------------------------- props


_PROP_KINDS: dict[str, tuple[str, ...]] = {
    "sword": ("剑", "刀", r"\bsword", r"\bblade", r"\bdagger", r"\bknife"),
    "lantern": ("灯", r"\blantern", r"\blamp"),
    "scroll": ("书", "信", "卷", "图", "纸", r"\bbook", r"\bletter", r"\bscroll", r"\bmap\b", r"\bpaper"),
    "cup": ("杯", "酒", "茶", "碗", r"\bcup", r"\bwine", r"\btea\b", r"\bbowl", r"\bmug"),
    "box": ("盒", "箱", "匣", r"\bbox", r"\bchest", r"\bcase"),
    "key": ("钥", "锁", r"\bkey\b", r"\block\b"),
    "umbrella": ("伞", r"\bumbrella", r"\bparasol"),
}


def _prop_kind(prop: Prop) -> str:
    words = _words(prop.id, prop.name, " ".join(prop.aliases), prop.appearance)
    for kind, keys in _PROP_KINDS.items():
        if _has(words, keys):
            return kind
    return "gem"


def _draw_props(
    canvas: Image.Image, props: list[Prop], placements: list[_Placement], w: int, h: int, ground: int,
    region: str = "china",
) -> dict[str, Box]:
    """Props as simple icons: large in the middle of an empty shot, small at the side otherwise."""
    boxes: dict[str, Box] = {}
    if not props:
        return boxes
    unit = min(w, h)
    if not placements:
        size = unit * (0.34 if len(props) == 1 else 0.22)
        base = ground + (h - ground) * 0.35
        xs = [w * (i + 1) / (len(props) + 1) for i in range(len(props))]
    else:
        size = unit * 0.14
        base = min(h * 0.76, ground + (h - ground) * 0.6)
        speaker_x = next(((p.box[0] + p.box[2]) / 2 for p in placements if p.speaker), w / 2)
        side = 0.1 if speaker_x > w / 2 else 0.9
        xs = [w * (side + (0.12 if side < 0.5 else -0.12) * i) for i in range(len(props))]
    draw = ImageDraw.Draw(canvas)
    for prop, x in zip(props, xs):
        box = (round(x - size / 2), round(base - size), round(x + size / 2), round(base))
        if not placements:  # alone in the shot: the prop is the subject, give it the light
            _glow(canvas, (box[0], box[1], box[2], box[3] + size * 0.2))
        colours = named_colours(prop.appearance + " " + prop.name)
        kind = _prop_kind(prop)
        if kind == "scroll" and region not in ("china", "fantasy_east"):  # a western book or letter, not a scroll
            kind = "letter" if _has(_words(prop.id, prop.name, prop.appearance), ("信", r"\bletter", r"\bnote\b", r"\bpaper")) \
                else "book"
        _prop_icon(draw, kind, box, colours[0] if colours else None)
        boxes[prop.id] = box
    return boxes


def _prop_icon(draw: ImageDraw.ImageDraw, kind: str, box: Box, colour: RGB | None) -> None:
    l, t, r, b = box
    cx, cy, s = (l + r) / 2, (t + b) / 2, r - l
    lw = max(2, round(s / 40))
    ink = dict(outline=INK, width=lw)
    if kind == "sword":
        guard = b - s * 0.3
        draw.polygon([(cx - s * 0.08, guard), (cx + s * 0.08, guard), (cx, t)], fill=colour or (210, 214, 222), **ink)
        draw.rectangle((cx - s * 0.18, b - s * 0.32, cx + s * 0.18, b - s * 0.26), fill=(200, 160, 60), **ink)
        draw.rectangle((cx - s * 0.04, b - s * 0.26, cx + s * 0.04, b), fill=(120, 70, 40), **ink)
    elif kind == "lantern":
        draw.line((cx, t, cx, t + s * 0.15), fill=INK, width=lw)
        draw.ellipse((l + s * 0.18, t + s * 0.15, r - s * 0.18, b - s * 0.1), fill=colour or (230, 70, 50), **ink)
        draw.rectangle((cx - s * 0.16, b - s * 0.14, cx + s * 0.16, b - s * 0.06), fill=(200, 160, 60), **ink)
        draw.line((l + s * 0.22, cy, r - s * 0.22, cy), fill=(255, 210, 110), width=lw)
    elif kind == "scroll":
        draw.rectangle((l + s * 0.12, t + s * 0.25, r - s * 0.12, b - s * 0.2), fill=colour or (240, 228, 196), **ink)
        for x in (l + s * 0.12, r - s * 0.12):
            draw.ellipse((x - s * 0.06, t + s * 0.2, x + s * 0.06, b - s * 0.15), fill=(150, 100, 60), **ink)
        for i in range(3):
            y = t + s * (0.38 + i * 0.1)
            draw.line((l + s * 0.25, y, r - s * 0.25, y), fill=(110, 100, 90), width=max(1, lw // 2))
    elif kind == "book":
        cover = colour or (120, 40, 44)
        draw.rectangle((l + s * 0.2, t + s * 0.22, r - s * 0.2, b - s * 0.12), fill=cover, **ink)
        draw.rectangle((l + s * 0.2, t + s * 0.22, l + s * 0.3, b - s * 0.12), fill=shade(cover, 0.7), **ink)
        draw.line((l + s * 0.4, t + s * 0.36, r - s * 0.3, t + s * 0.36), fill=(214, 180, 90), width=lw)
    elif kind == "letter":
        paper = colour or (244, 238, 222)
        draw.rectangle((l + s * 0.12, t + s * 0.3, r - s * 0.12, b - s * 0.2), fill=paper, **ink)
        draw.line((l + s * 0.12, t + s * 0.3, cx, cy + s * 0.05, r - s * 0.12, t + s * 0.3), fill=INK, width=lw)
        draw.ellipse((cx - s * 0.06, cy - s * 0.02, cx + s * 0.06, cy + s * 0.1), fill=(170, 30, 40))
    elif kind == "cup":
        rim, foot = t + s * 0.35, b - s * 0.1
        draw.polygon([(l + s * 0.2, rim), (r - s * 0.2, rim), (r - s * 0.3, foot), (l + s * 0.3, foot)],
                     fill=colour or (236, 236, 226), **ink)
    elif kind == "box":
        draw.rectangle((l + s * 0.1, t + s * 0.35, r - s * 0.1, b - s * 0.05), fill=colour or (150, 90, 50), **ink)
        draw.rectangle((l + s * 0.08, t + s * 0.28, r - s * 0.08, t + s * 0.42), fill=(200, 160, 60), **ink)
    elif kind == "key":
        metal = colour or (210, 170, 60)
        draw.ellipse((l + s * 0.1, t + s * 0.3, l + s * 0.45, t + s * 0.65), fill=None, outline=metal, width=lw * 3)
        draw.line((l + s * 0.45, cy, r - s * 0.1, cy), fill=metal, width=lw * 3)
    elif kind == "umbrella":
        canopy = (l + s * 0.05, t + s * 0.1, r - s * 0.05, b - s * 0.1)
        draw.pieslice(canopy, 180, 360, fill=colour or (200, 70, 60), **ink)
        draw.line((cx, cy, cx, b), fill=INK, width=lw)
    else:  # a gem / pendant
        c = colour or (90, 190, 150)
        draw.polygon([(cx, t + s * 0.15), (r - s * 0.2, cy), (cx, b - s * 0.1), (l + s * 0.2, cy)], fill=c, **ink)
        draw.polygon([(cx, t + s * 0.15), (cx + s * 0.1, cy), (cx, b - s * 0.1)], fill=mix(c, (255, 255, 255), 0.35))


# --------------------------------------------------------------------------- the character sheet


class _SheetPainter:
    """Lays out a turnaround sheet: title band, pose cells, swatch band."""

    CELLS: tuple[tuple[str, Pose, Framing], ...] = (
        ("front", "front", "full"), ("three_quarter", "three_quarter", "full"), ("side", "side", "full"),
        ("back", "back", "full"), ("face", "front", "bust"),
    )

    def __init__(self, canvas: Image.Image, look: CharacterLook, request: SheetRequest, fonts: LetterFonts) -> None:
        self.canvas, self.look, self.request, self.fonts = canvas, look, request, fonts
        self.w, self.h = canvas.size
        self.unit = min(self.w, self.h)
        self.draw = ImageDraw.Draw(canvas)
        self.lang = request.language if request.language in _POSE_LABELS else "en"

    def paint(self) -> dict[str, Box]:
        title_h = self._title()
        swatch_h = self.h * 0.13
        regions = self._cells(title_h, self.h - swatch_h)
        self._swatches(self.h - swatch_h)
        return regions

    def _title(self) -> float:
        name = self.request.character.name
        size = round(self.unit * 0.075)
        font = self.fonts.get(size)
        while font.getlength(name) > self.w * 0.9 and size > 8:
            size = round(size * 0.9)
            font = self.fonts.get(size)
        y = self.unit * 0.03
        self.draw.text(((self.w - font.getlength(name)) / 2, y), name, font=font, fill=INK)
        y += size * 1.25
        appearance = self.request.character.appearance.strip()
        if appearance:
            small = self.fonts.get(round(self.unit * 0.028))
            text = wrap_text(appearance, small, self.w * 0.86)[:2]
            for i, s in enumerate(text):
                xy = ((self.w - small.getlength(s)) / 2, y + i * self.unit * 0.036)
                self.draw.text(xy, s, font=small, fill=(96, 90, 100))
            y += len(text) * self.unit * 0.036
        return y + self.unit * 0.02

    def _cells(self, top: float, bottom: float) -> dict[str, Box]:
        cols = 5 if self.w >= self.h * 1.2 else 3
        rows = math.ceil(len(self.CELLS) / cols)
        margin = self.unit * 0.025
        cw = (self.w - margin * (cols + 1)) / cols
        ch = (bottom - top - margin * rows) / rows
        label_font = self.fonts.get(round(self.unit * 0.026))
        regions: dict[str, Box] = {}
        for i, (key, pose, framing) in enumerate(self.CELLS):
            c, r = i % cols, i // cols
            l, t = margin + c * (cw + margin), top + r * (ch + margin)
            self.draw.rounded_rectangle((l, t, l + cw, t + ch), radius=self.unit * 0.012, fill=(251, 250, 247),
                                        outline=(214, 210, 202), width=max(1, round(self.unit * 0.002)))
            label_h = self.unit * 0.045
            box = (l + cw * 0.06, t + ch * 0.04, l + cw * 0.94, t + ch - label_h)
            if framing == "full":
                _ground_shadow(self.canvas, box)
            fig = draw_character(self.canvas, self.look, box, pose, "neutral", facing=1, framing=framing, supersample=1)
            regions[key] = fig.box
            label = _POSE_LABELS[self.lang][key]
            xy = (l + (cw - label_font.getlength(label)) / 2, t + ch - label_h * 0.85)
            self.draw.text(xy, label, font=label_font, fill=(110, 104, 114))
        return regions

    def _swatches(self, top: float) -> None:
        palette = self.look.palette
        size = self.h * 0.06
        gap = self.unit * 0.03
        font = self.fonts.get(round(self.unit * 0.024))
        labels = _SWATCH_LABELS[self.lang]
        total = len(palette) * size + (len(palette) - 1) * gap * 2.2
        x = (self.w - total) / 2
        for role, colour in palette:
            self.draw.rounded_rectangle((x, top, x + size, top + size), radius=size * 0.15, fill=colour, outline=INK,
                                        width=max(1, round(self.unit * 0.003)))
            label = labels[role]
            xy = (x + (size - font.getlength(label)) / 2, top + size * 1.1)
            self.draw.text(xy, label, font=font, fill=(96, 90, 100))
            x += size + gap * 2.2


__all__ = ["AnimaticBackend", "SUBTITLE_BAND", "key_line", "wrap_text"]

