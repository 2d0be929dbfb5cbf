"""Plain prompt building for diffusion backends, used when no LLM polishes the prompts.

A prompt is assembled from fixed word tables: the project's named styles (from the style library,
:func:`novelcomic.styles.load_styles`, when it knows every name; else :data:`STYLE_WORDS`), the shot's camera size
and angle, the mood, the location and time of day, and each visible character's ``appearance``
(their fixed look) listed left to right, which is also the order the diffusers backend lays the
characters out in. A shot's own ``image_prompt`` / ``negative_prompt`` win when set. Nothing here
imports torch; the tables are constants and never change at run time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from novelcomic.errors import NovelcomicError
from novelcomic.models import Character
from novelcomic.render.base import SheetRequest, ShotRequest

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


def _side_names(n: int) -> list[str]:
    if n == 2:
        return ["on the left", "on the right"]
    if n == 3:
        return ["on the left", "in the centre", "on the right"]
    return [f"position {i + 1} from the left" for i in range(n)]


__all__ = [
    "KIND_WORDS", "PERIOD_WORDS", "Prompt", "SPECIES_WORDS", "STYLE_WORDS", "WEATHER_WORDS", "join", "period_words",
    "place_words", "request_period", "sheet_prompt", "shot_prompt", "style_fragments", "style_words",
]
