"""Plain prompt building for diffusion backends, used when no LLM polishes the prompts.

A prompt is assembled from fixed word tables: the project's named styles (from the style library,
:func:`novelcomic.styles.load_styles`, when it knows every name; else :data:`STYLE_WORDS`), the shot's camera size
and angle, the mood, the location and time of day, and each visible character's ``appearance``
(their fixed look) listed left to right, which is also the order the diffusers backend lays the
characters out in. A shot's own ``image_prompt`` / ``negative_prompt`` win when set. Nothing here
imports torch; the tables are constants and never change at run time.

Each family writes its prompts its own way (:class:`novelcomic.render.families.FamilySpec`):
SD 1.5 / SDXL (anime fine-tunes included) get comma-separated tags, Kolors Chinese tags; the
multi-reference families (FLUX.2 [klein], Qwen-Image-Edit-Plus, FLUX.1 Kontext) get sentences
(:func:`multiref_prompt`, :func:`sentence_sheet_prompt`) that name each character by the number of
its reference image ("Lin from image 1 …"), in Chinese for Qwen in a Chinese project.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from novelcomic.errors import NovelcomicError
from novelcomic.models import Character
from novelcomic.render.base import SheetRequest, ShotRequest

if TYPE_CHECKING:
    from novelcomic.render.families import FamilySpec

#: Named project styles (``style:`` in project.yaml) → prompt words. Unknown names are used as is.
STYLE_WORDS: dict[str, str] = {
    "国漫": "Chinese manhua comic style, donghua, clean lineart, cel shading, vivid colors",
    "manhua": "Chinese manhua comic style, clean lineart, cel shading, vivid colors",
    "anime": "anime style, clean lineart, cel shading",
    "动漫": "anime style, clean lineart, cel shading",
    "水墨": "Chinese ink wash painting, sumi-e, soft brush strokes, muted colors",
    "ink": "Chinese ink wash painting, sumi-e, soft brush strokes, muted colors",
    "水彩": "watercolor illustration, soft edges, paper texture",
    "watercolor": "watercolor illustration, soft edges, paper texture",
    "写实": "realistic digital painting, cinematic lighting, detailed",
    "realistic": "realistic digital painting, cinematic lighting, detailed",
    "comic": "western comic book style, bold ink outlines, halftone shading",
    "漫画": "manga style, black and white ink, screentone",
    "manga": "manga style, black and white ink, screentone",
}
QUALITY_WORDS = "masterpiece, best quality, highly detailed"
CAMERA_WORDS: dict[str, str] = {
    "extreme_wide": "extreme wide shot, small figures in a vast scene",
    "wide": "wide shot",
    "full": "full body shot",
    "medium": "medium shot, waist up",
    "close_up": "close-up, head and shoulders",
    "extreme_close_up": "extreme close-up on the face",
}
ANGLE_WORDS: dict[str, str] = {
    "eye_level": "", "high": "high angle shot", "low": "low angle shot",
    "overhead": "overhead view, bird's-eye view", "dutch": "dutch angle, tilted frame",
}
MOOD_WORDS: dict[str, str] = {
    "calm": "calm atmosphere, soft light",
    "tense": "tense atmosphere, dramatic shadows",
    "sad": "melancholy atmosphere, muted colors",
    "joyful": "joyful atmosphere, warm bright light",
    "mysterious": "mysterious atmosphere, mist, low-key lighting",
    "action": "dynamic action, motion blur, dramatic pose",
}
TIME_WORDS: dict[str, str] = {
    "day": "daytime", "night": "night, moonlight", "dusk": "dusk, sunset glow", "dawn": "dawn, early morning light",
    "unknown": "",
}
#: The book's period and region (models.Period) → words that set buildings and clothes.
PERIOD_WORDS: dict[str, str] = {
    "ancient_china": "ancient China, Han dynasty, hanfu, traditional Chinese architecture",
    "victorian_england": "Victorian England, 19th century English period costume, Georgian and Victorian architecture",
    "modern_city": "modern day, contemporary city, modern clothing",
    "fantasy": "high fantasy world",
    "fantasy_zh": "Chinese xianxia fantasy, ancient China, hanfu, celestial palaces",
}
#: What a place is (models.LocationKind) → words.
KIND_WORDS: dict[str, str] = {
    "sea": "the open sea, ocean waves", "mountain": "mountains, rocky peaks", "cave": "inside a cave, rock walls",
    "forest": "forest, trees", "river": "riverside, flowing river", "palace": "palace", "temple": "temple",
    "city_street": "city street", "village": "village", "interior": "indoors, interior", "battlefield": "battlefield, army banners",
    "sky": "in the sky above the clouds", "field": "open fields", "unknown": "",
}
WEATHER_WORDS: dict[str, str] = {
    "clear": "clear sky", "rain": "rain, raining", "snow": "snow, snowing", "fog": "fog, mist", "storm": "storm, lightning, heavy rain",
    "wind": "strong wind", "unknown": "",
}
#: A non-human character's species → words (they are drawn as characters, so anthropomorphic).
SPECIES_WORDS: dict[str, str] = {
    "monkey": "anthropomorphic monkey, monkey face, fur, long tail", "fox": "fox, fox ears, bushy fox tail",
    "rabbit": "anthropomorphic rabbit, long rabbit ears", "dragon": "Chinese dragon, scales, horns, whiskers",
    "demon": "demon, horns, fangs", "bird": "bird, feathers, beak, wings", "cat": "anthropomorphic cat, cat ears, whiskers",
    "dog": "anthropomorphic dog", "horse": "horse", "tiger": "tiger, stripes", "other": "animal character",
}
#: Always avoided: lettering is drawn by novelcomic, not by the model.
NEGATIVE_WORDS = (
    "lowres, worst quality, blurry, jpeg artifacts, text, letters, watermark, signature, speech bubble, "
    "bad anatomy, bad hands, extra fingers, deformed, disfigured"
)
SHEET_WORDS = (
    "character reference sheet, turnaround, front view, three-quarter view, side view, back view, "
    "full body, standing, same character repeated, neutral background, plain light grey background"
)
SHEET_NEGATIVE = "different characters, busy background, scenery, cropped, cut off"


@dataclass(frozen=True)
class Prompt:
    positive: str
    negative: str


def join(parts: Iterable[str]) -> str:
    """Comma-join the non-empty parts, without repeating a part."""
    seen: list[str] = []
    for p in parts:
        p = p.strip().strip(",").strip()
        if p and p not in seen:
            seen.append(p)
    return ", ".join(seen)


def style_words(style: list[str], family: str = "sd15") -> str:
    return style_fragments(style, family)[0]


def style_fragments(style: list[str], family: str = "sd15") -> tuple[str, str]:
    """(positive, negative) words of the project's styles: the style library's (Chinese ones for
    Kolors), or, when it does not know a name, :data:`STYLE_WORDS` and :data:`NEGATIVE_WORDS`."""
    try:
        from novelcomic.styles import load_styles

        resolved = load_styles().resolve(list(style))
    except (ImportError, NovelcomicError):
        return join(STYLE_WORDS.get(s, s) for s in style), NEGATIVE_WORDS
    positive = resolved.positive_zh if family == "kolors" and resolved.positive_zh else resolved.positive
    return positive, join([resolved.negative, NEGATIVE_WORDS])


def _character_words(c: Character) -> str:
    words = c.appearance.strip() or c.description.strip() or c.name
    species = getattr(c, "species", "human")
    return join([SPECIES_WORDS.get(species, ""), words]) if species != "human" else words


def period_words(period: str | None, language: str = "zh") -> str:
    """Prompt words for the book's period (``fantasy`` in a Chinese book is xianxia)."""
    if period == "fantasy" and language == "zh":
        return PERIOD_WORDS["fantasy_zh"]
    return PERIOD_WORDS.get(period or "", "")


def request_period(request: ShotRequest | SheetRequest) -> str:
    """The book's period for a request: its ``period`` (set by the pipeline: project.yaml over
    locations.yaml) when there is one, else detected from the words the request carries."""
    from novelcomic.plan.world import detect_period

    period = getattr(request, "period", None)
    if period and period not in ("auto", "unknown"):
        return period
    lang = request.language if request.language in ("zh", "en") else "zh"
    if isinstance(request, SheetRequest):
        c = request.character
        text = " ".join([c.appearance, c.description])
    else:
        parts = [request.scene.summary, request.shot.source, request.shot.image_prompt]
        parts += [ln.text for ln in request.shot.lines]
        parts += [ref.character.appearance + " " + ref.character.description for ref in request.characters]
        if request.location is not None:
            parts += [request.location.name, request.location.description]
        text = " ".join(p for p in parts if p)
    return detect_period(text, lang) if text.strip() else "unknown"


def place_words(location: object, language: str = "zh") -> str:
    """Prompt words for a location: its name and description, kind, time of day, weather."""
    if location is None:
        return ""
    from novelcomic.plan.world import location_kind

    kind = getattr(location, "kind", "unknown")
    if kind == "unknown":
        kind = location_kind(location.name, location.description, language)  # type: ignore[attr-defined]
    weather = getattr(location, "weather", "unknown")
    return join([
        location.name, location.description, KIND_WORDS.get(kind, ""),  # type: ignore[attr-defined]
        TIME_WORDS.get(location.time_of_day, ""), WEATHER_WORDS.get(weather, ""),  # type: ignore[attr-defined]
        "interior" if location.interior else "",  # type: ignore[attr-defined]
    ])


def sheet_prompt(
    character: Character, style: list[str], family: str = "sd15", period: str | None = None, language: str = "zh"
) -> Prompt:
    """A turnaround sheet of one character: every view of the same look on a plain background,
    dressed for the book's ``period``."""
    positive, negative = style_fragments(style, family)
    return Prompt(
        join([SHEET_WORDS, _character_words(character), period_words(period, language), positive, QUALITY_WORDS]),
        join([SHEET_NEGATIVE, negative]),
    )


def shot_prompt(request: ShotRequest, family: str = "sd15") -> Prompt:
    """The prompt of one shot: its ``image_prompt`` if set, else built from the storyboard."""
    shot = request.shot
    if request.prompt:  # finished upstream (LLM polishing or the style library's rules)
        return Prompt(request.prompt, join([request.negative_prompt or "", shot.negative_prompt]))
    style_positive, style_negative = style_fragments(request.style, family)
    negative = join([shot.negative_prompt, style_negative])
    if shot.image_prompt.strip():
        return Prompt(join([shot.image_prompt, style_positive]), negative)
    chars = [ref.character for ref in request.characters]
    if not chars:
        people = "no humans, scenery"
    elif len(chars) == 1:
        people = "solo, " + _character_words(chars[0])
    else:
        sides = _side_names(len(chars))
        people = f"{len(chars)} people, " + ", ".join(f"{side}: {_character_words(c)}" for side, c in zip(sides, chars))
    place = place_words(request.location, request.language)
    period = period_words(request_period(request), request.language)
    props = join(p.appearance or p.name for p in request.props)
    return Prompt(
        join([
            style_positive, CAMERA_WORDS.get(shot.camera.size, ""), ANGLE_WORDS.get(shot.camera.angle, ""),
            people, props, place, period, MOOD_WORDS.get(shot.mood or request.scene.mood, ""), QUALITY_WORDS,
        ]),
        negative,
    )


# --------------------------------------------------------------------------- sentences (multi-reference families)

CAMERA_ZH: dict[str, str] = {
    "extreme_wide": "大远景，广阔场景中的小小人物", "wide": "远景", "full": "全身镜头", "medium": "中景，腰部以上",
    "close_up": "近景，头肩特写", "extreme_close_up": "面部大特写",
}
ANGLE_ZH: dict[str, str] = {"eye_level": "", "high": "俯拍", "low": "仰拍", "overhead": "鸟瞰", "dutch": "倾斜构图"}
MOOD_ZH: dict[str, str] = {
    "calm": "气氛平静，光线柔和", "tense": "气氛紧张，阴影强烈", "sad": "气氛忧伤，色调暗淡",
    "joyful": "气氛欢快，光线明亮温暖", "mysterious": "气氛神秘，薄雾弥漫", "action": "动感十足，动作激烈",
}
SIDES_EN = {1: ["in the centre"], 2: ["on the left", "on the right"], 3: ["on the left", "in the centre", "on the right"]}
SIDES_ZH = {1: ["画面中央"], 2: ["左边", "右边"], 3: ["左边", "中间", "右边"]}


@dataclass(frozen=True)
class Reference:
    """One image given to a multi-reference call: its 1-based number there, and whose it is
    (a character, or ``None`` for the location's)."""

    number: int
    path: Path
    character: Character | None = None
    role: str = "character"  # speaker | character | location


def _sentence(text: str, zh: bool) -> str:
    text = text.strip().rstrip("。.,，;；")
    return f"{text}{'。' if zh else '.'}" if text else ""


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text


def multiref_prompt(request: ShotRequest, family: FamilySpec, refs: Sequence[Reference]) -> Prompt:
    """A shot in sentences for a multi-reference family: style, framing, who is where and which
    reference image each one is, the place, the mood; in Chinese where the family reads it and the
    project is Chinese. ``request.prompt`` (written upstream), when set, stands for the scene."""
    lang = family.prompt_language(request.language)
    zh = lang == "zh"
    shot = request.shot
    style_positive, style_negative = style_fragments(request.style, "kolors" if zh else "sdxl")
    numbered = {ref.character.id: ref for ref in refs if ref.character is not None}
    chars = [r.character for r in request.characters]
    sides = (SIDES_ZH if zh else SIDES_EN).get(len(chars)) or [
        (f"从左数第{i + 1}个" if zh else f"position {i + 1} from the left") for i in range(len(chars))]
    people: list[str] = []
    for side, c in zip(sides, chars):
        ref = numbered.get(c.id)
        looks = _character_words(c)
        if zh:
            who = f"{family.label(ref.number, lang)}中的{c.name}" if ref else c.name
            people.append(f"{side}是{who}（{looks}）")
        else:
            who = f"{c.name} from {family.label(ref.number, lang)}" if ref else c.name
            people.append(f"{who} ({looks}) {side}")
    if zh:
        cast = "；".join(people) if people else "画面中没有人物"
    else:
        cast = "; ".join(people) if people else "no people, only the scenery"
    place = place_words(request.location, request.language)
    period = period_words(request_period(request), request.language)
    location_ref = next((r for r in refs if r.character is None), None)
    scene = request.prompt or shot.image_prompt.strip()
    props = join(p.appearance or p.name for p in request.props)
    if zh:
        parts = [
            f"{style_positive}风格插画" if style_positive else "",
            join([CAMERA_ZH.get(shot.camera.size, ""), ANGLE_ZH.get(shot.camera.angle, "")]),
            cast, scene, f"道具：{props}" if props else "",
            f"场景：{join([place, period])}" if place or period else "",
            f"背景参照{family.label(location_ref.number, lang)}" if location_ref else "",
            MOOD_ZH.get(shot.mood or request.scene.mood, ""),
            "保持每个角色的脸、发型和服装与其参考图一致；画成一个完整的场景，不是角色设定图" if numbered else "",
            "画面中不要文字和对话框",
        ]
    else:
        parts = [
            f"{style_positive} illustration" if style_positive else "",
            _cap(join([CAMERA_WORDS.get(shot.camera.size, ""), ANGLE_WORDS.get(shot.camera.angle, "")])),
            _cap(cast), _cap(scene), f"With {props}" if props else "",
            f"Setting: {join([place, period])}" if place or period else "",
            f"The background follows {family.label(location_ref.number, lang)}" if location_ref else "",
            _cap(MOOD_WORDS.get(shot.mood or request.scene.mood, "")),
            "Keep each character's face, hairstyle and clothes exactly as in their reference image; draw one "
            "scene, not a character sheet" if numbered else "",
            "No text, letters or speech bubbles in the picture",
        ]
    positive = " ".join(_sentence(p, zh) for p in parts if p.strip())
    negative = join([request.negative_prompt or "", shot.negative_prompt, style_negative]) if family.negative_prompt else ""
    return Prompt(positive, negative)


def sentence_sheet_prompt(
    character: Character, style: list[str], family: FamilySpec, period: str | None = None, language: str = "zh"
) -> Prompt:
    """A turnaround sheet in sentences, for the multi-reference families' text-to-image."""
    zh = family.prompt_language(language) == "zh"
    style_positive, style_negative = style_fragments(style, "kolors" if zh else "sdxl")
    era = period_words(period, language)
    looks = _character_words(character)
    if zh:
        parts = [f"{character.name}的角色设定图：{looks}",
                 "同一个角色的正面、四分之三侧面、侧面和背面，全身站立，浅灰色纯色背景",
                 f"{style_positive}风格" if style_positive else "", f"时代：{era}" if era else "", "不要文字"]
    else:
        parts = [f"A character reference sheet of {character.name}: {looks}",
                 "Front view, three-quarter view, side view and back view of the same character, full body, "
                 "standing, on a plain light grey background", f"{style_positive}" if style_positive else "",
                 f"Period: {era}" if era else "", "No text"]
    positive = " ".join(_sentence(p, zh) for p in parts if p.strip())
    return Prompt(positive, join([SHEET_NEGATIVE, style_negative]) if family.negative_prompt else "")


def with_triggers(prompt: Prompt, triggers: Iterable[str]) -> Prompt:
    """``prompt`` with LoRA trigger words in front (each once; those already in it are not repeated)."""
    words = [t.strip() for t in triggers if t and t.strip() and t.strip() not in prompt.positive]
    if not words:
        return prompt
    return Prompt(join([*dict.fromkeys(words), prompt.positive]), prompt.negative)


def _side_names(n: int) -> list[str]:
    if n == 2:
        return ["on the left", "on the right"]
    if n == 3:
        return ["on the left", "in the centre", "on the right"]
    return [f"position {i + 1} from the left" for i in range(n)]


__all__ = [
    "KIND_WORDS", "PERIOD_WORDS", "Prompt", "Reference", "SPECIES_WORDS", "STYLE_WORDS", "WEATHER_WORDS", "join",
    "multiref_prompt", "period_words", "place_words", "request_period", "sentence_sheet_prompt", "sheet_prompt",
    "shot_prompt", "style_fragments", "style_words", "with_triggers",
]
