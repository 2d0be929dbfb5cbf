"""The project format: pydantic models for every YAML file a user edits.

Files in a project directory and the model each one validates against:

- ``project.yaml``             → :class:`ProjectConfig`
- ``characters.yaml``          → :class:`CharactersFile`
- ``props.yaml``               → :class:`PropsFile`
- ``locations.yaml``           → :class:`LocationsFile`
- ``storyboards/<chapter>.yaml`` → :class:`Storyboard`

``novelcomic schema`` writes the JSON Schema of each; every generated YAML starts with a
``# yaml-language-server: $schema=…`` line pointing at it.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_serializer, model_validator

ID_RE = re.compile(r"^[A-Za-z0-9_\-\u4e00-\u9fff]+$")
NARRATOR = "narrator"
MAX_SEED = 2**32 - 1  # what every image backend (numpy, torch generators) and SQLite take

ShotSize = Literal["extreme_wide", "wide", "full", "medium", "close_up", "extreme_close_up"]
CameraAngle = Literal["eye_level", "high", "low", "overhead", "dutch"]
CameraMotion = Literal["auto", "static", "push_in", "pull_out", "pan_left", "pan_right", "tilt_up", "tilt_down"]
Mood = Literal["calm", "tense", "sad", "joyful", "mysterious", "action"]
Emotion = Literal["neutral", "happy", "sad", "angry", "afraid", "surprised", "whisper", "excited"]
Species = Literal["human", "monkey", "fox", "rabbit", "dragon", "demon", "bird", "cat", "dog", "horse", "tiger", "other"]
Role = Literal["main", "supporting", "minor", "extra"]
Period = Literal["auto", "ancient_china", "victorian_england", "modern_city", "fantasy", "unknown"]
LocationKind = Literal[
    "sea", "mountain", "cave", "forest", "river", "palace", "temple", "city_street", "village",
    "interior", "battlefield", "sky", "field", "unknown",
]
Weather = Literal["clear", "rain", "snow", "fog", "storm", "wind", "unknown"]
# Into the next shot. "dissolve"/"crossfade"/"fade" cross-fade; fades through black or white,
# wipes and slides are drawn by the composer; the rest are ffmpeg xfade transitions of that name.
Transition = Literal[
    "cut", "dissolve", "crossfade", "fade", "fadeblack", "fadewhite", "fadegrays", "fadefast", "fadeslow",
    "wipeleft", "wiperight", "wipeup", "wipedown", "wipetl", "wipetr", "wipebl", "wipebr",
    "slideleft", "slideright", "slideup", "slidedown", "smoothleft", "smoothright", "smoothup", "smoothdown",
    "coverleft", "coverright", "coverup", "coverdown", "revealleft", "revealright", "revealup", "revealdown",
    "circleopen", "circleclose", "circlecrop", "rectcrop", "vertopen", "vertclose", "horzopen", "horzclose",
    "diagtl", "diagtr", "diagbl", "diagbr", "hlslice", "hrslice", "vuslice", "vdslice",
    "hlwind", "hrwind", "vuwind", "vdwind", "radial", "distance", "pixelize", "hblur", "squeezeh", "squeezev", "zoomin",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def _check_id(value: str) -> str:
    if not ID_RE.match(value):
        raise ValueError(f"id {value!r} may hold only letters, digits, '_', '-' and CJK characters")
    return value


# --------------------------------------------------------------------------- project.yaml


class StageSpec(_Model):
    """Which backend a stage uses, with that backend's own options."""

    backend: str
    options: dict[str, Any] = Field(default_factory=dict)


def _stage(name: str) -> Any:
    return Field(default_factory=lambda: StageSpec(backend=name))


class StagesConfig(_Model):
    plan: StageSpec = _stage("heuristic")
    design: StageSpec = _stage("animatic")
    render: StageSpec = _stage("animatic")
    voice: StageSpec = _stage("espeak")
    compose: StageSpec = _stage("ffmpeg")


class ChapterRef(_Model):
    id: str = Field(description="Chapter id, also the stem of chapters/<id>.txt and storyboards/<id>.yaml")
    title: str = ""
    volume: str = Field("", description="The volume (卷/部/Book/Part) the chapter belongs to, as its heading says; empty when none")

    _v = field_validator("id")(classmethod(lambda cls, v: _check_id(v)))


class MusicConfig(_Model):
    enabled: bool = True
    volume_db: float = Field(-18.0, description="BGM level before ducking, dB relative to full scale")
    tracks: dict[str, str] = Field(
        default_factory=dict, description="mood → audio file (relative to the project) overriding the generated loops"
    )


class SubtitleConfig(_Model):
    burn_in: bool = True
    font: str | None = Field(None, description="Font family (or a .ttf/.ttc path); default: a CJK-capable font found on the system")
    font_size: int | None = Field(None, description="Pixels; default scales with the video height")


class LLMConfig(_Model):
    """The language model used for planning, prompt polishing, shot edits and novel writing."""

    backend: str = Field(description="openai | transformers | a plugin's name")
    options: dict[str, Any] = Field(default_factory=dict)


class QAConfig(_Model):
    enabled: bool = False
    embedder: str | None = Field(None, description="CLIP or DINOv2 model directory or hub id")
    min_consistency: float = Field(0.75, description="Shot vs. character sheet similarity below which a shot is re-rolled")
    min_alignment: float = Field(0.2, description="CLIPScore (cosine) below which a shot is re-rolled")
    rerolls: int = Field(2, ge=0, le=10)


class SafetyConfig(_Model):
    enabled: bool = True
    extra_terms: dict[str, list[str]] = Field(default_factory=dict, description="category → extra blocked terms")
    classifier: str | None = Field(None, description="Optional image classifier backend name")


class ReviewConfig(_Model):
    characters: bool = Field(False, description="Pause after character design until each sheet is approved")
    publish: bool = Field(False, description="Pause before a chapter video is published")


class AnimateConfig(_Model):
    """The animate stage (between voice and compose): short image-to-video clips for some shots,
    and the talking animatic (see novelcomic.animate)."""

    backend: str | None = Field(None, description="diffusers | comfyui | a plugin's name; none: no clips (off)")
    options: dict[str, Any] = Field(default_factory=dict)
    shots: Literal["auto", "all", "none"] | list[str] = Field(
        "auto", description="auto: action and close-up shots first, within max_per_chapter; all; none; or a list of shot ids")
    max_per_chapter: int = Field(4, ge=0, le=1000, description="Most clips auto picks per chapter")
    fill: Literal["slow", "hold"] = Field("slow", description="A clip shorter than its shot: slowed (frames blended) or held on its last frame")
    talking: bool | None = Field(None, description="Blinks, mouth flaps and sway on animatic stills; default: on with the animatic render backend")


class ProjectConfig(_Model):
    title: str
    language: Literal["zh", "en"] = "zh"
    aspect: Literal["9:16", "16:9"] = "9:16"
    resolution: tuple[int, int] | None = Field(
        None, description="[width, height]; default 1080x1920 for 9:16, 1920x1080 for 16:9"
    )
    fps: int = Field(30, ge=1, le=120)
    style: list[str] = Field(default_factory=lambda: ["国漫"], description="Named styles (see `novelcomic styles`)")
    period: Period = Field("auto", description="The book's period and region; auto = the one the planner found (locations.yaml)")
    seed: int = Field(0, ge=0, le=MAX_SEED, description="Base seed of every image (0 … 2**32-1); each shot's seed derives from it")
    stages: StagesConfig = Field(default_factory=StagesConfig)
    music: MusicConfig = Field(default_factory=MusicConfig)
    subtitles: SubtitleConfig = Field(default_factory=SubtitleConfig)
    transition_seconds: float = Field(0.5, ge=0, le=3)
    lettering: bool = Field(True, description="Speech bubbles and caption boxes drawn over every shot")
    style_reference: str | None = Field(None, description="An image (relative path) every shot's look follows")
    llm: LLMConfig | None = Field(None, description="Language model for planning/polishing/editing; none = offline heuristics")
    qa: QAConfig = Field(default_factory=QAConfig)
    safety: SafetyConfig = Field(default_factory=SafetyConfig)
    review: ReviewConfig = Field(default_factory=ReviewConfig)
    animate: AnimateConfig = Field(default_factory=AnimateConfig, description="Image-to-video clips and the talking animatic (off: no backend)")
    book: bool = Field(
        False, description="Also join every chapter's video into out/book.mp4, one chapter marker per chapter (no re-encode)"
    )
    novel: str | None = Field(None, description="The source text the chapters were split from (relative path)")
    chapters: list[ChapterRef] = Field(default_factory=list)

    @field_validator("resolution")
    @classmethod
    def _even(cls, v: tuple[int, int] | None) -> tuple[int, int] | None:
        if v is None:
            return v
        w, h = v
        if w < 64 or h < 64 or w % 2 or h % 2:
            raise ValueError(f"resolution {w}x{h} must be even numbers of at least 64 pixels")
        if max(w, h) > 7680 or w * h > 7680 * 4320:
            raise ValueError(f"resolution {w}x{h} is larger than 8K (7680x4320), which the encoders take")
        return v

    @model_validator(mode="after")
    def _default_voice(self) -> "ProjectConfig":
        """No voice stage in project.yaml: piper for English when installed, else espeak (novelcomic.voice.piper)."""
        if "voice" not in self.stages.model_fields_set:
            from novelcomic.voice.piper import default_voice_backend

            backend = default_voice_backend(self.language)
            if self.stages.voice.backend != backend:
                self.stages.__dict__["voice"] = StageSpec(backend=backend)  # still unset: follows the language
        return self

    @property
    def size(self) -> tuple[int, int]:
        if self.resolution:
            return self.resolution
        return (1080, 1920) if self.aspect == "9:16" else (1920, 1080)

    def chapter(self, chapter_id: str) -> ChapterRef:
        for ch in self.chapters:
            if ch.id == chapter_id:
                return ch
        known = ", ".join(c.id for c in self.chapters) or "none"
        raise KeyError(f"no chapter {chapter_id!r} (chapters: {known})")


# --------------------------------------------------------------------------- characters & world


def _unset_left_out(data: Any, *names: str) -> Any:
    """A model's dump without the fields ``names`` while they are unset (None): fields added after
    files were made leave the hashes of what was made before them as they were."""
    if isinstance(data, dict):
        for name in names:
            if name in data and data[name] is None:
                del data[name]
    return data


class VoiceSpec(_Model):
    """How a character sounds. ``voice`` is backend-specific (an espeak voice, an edge-tts name)."""

    gender: Literal["male", "female", "unknown"] = "unknown"
    age: Literal["child", "young", "adult", "old", "unknown"] = "unknown"
    temperament: str = ""
    voice: str | None = None
    pitch: int | None = Field(
        None, ge=-50, le=99,
        description="Backend pitch: espeak 0-99 (50 is normal); edge-tts a change in Hz, -50 … +50",
    )
    rate: int | None = Field(
        None, ge=-100, le=500,
        description="Words per minute (espeak, 80-450) or percent change (edge-tts, -50 … +100); -100 … 500 accepted",
    )
    # For OpenAI-compatible speech servers (voice backend openai); left out of dumps (and so of
    # every hash) while unset, so lines and images made before these fields stay up to date.
    speed: float | None = Field(None, ge=0.25, le=4.0, description="Speaking speed for OpenAI-compatible speech servers (1.0 is normal)")
    reference_audio: str | None = Field(
        None, description="A clip (relative to the project) a voice-cloning speech server makes this voice sound like",
    )
    reference_text: str | None = Field(None, description="What reference_audio says, word for word (CosyVoice needs it)")

    @model_serializer(mode="wrap")
    def _without_unset_additions(self, handler: Any) -> Any:
        return _unset_left_out(handler(self), "speed", "reference_audio", "reference_text")


class Character(_Model):
    id: str
    name: str
    aliases: list[str] = Field(default_factory=list)
    role: Role = Field("supporting", description="main characters first; an extra (a guard, 众猴) is a generic figure with no reference sheet")
    species: Species = Field("human", description="What the character is drawn as")
    group: bool = Field(False, description="A group or generic figure (soldiers, servants): drawn without its own reference sheet")
    appearance: str = Field("", description="Fixed look: hair, clothes, colours, build; used in every image prompt")
    description: str = ""
    voice: VoiceSpec = Field(default_factory=VoiceSpec)
    reference_images: list[str] = Field(
        default_factory=list, description="Images (relative to the project) that pin this character's look; default: the generated sheet"
    )
    lora: str | None = Field(None, description="A LoRA (file or directory) trained on this character")
    lora_scale: float = 1.0
    lora_trigger: str | None = Field(
        None, description="Words the LoRA was trained with, put first in the prompt of this character's shots "
                          "(train-character sets nc_<id>)")

    _v = field_validator("id")(classmethod(lambda cls, v: _check_id(v)))

    @model_serializer(mode="wrap")
    def _without_unset_trigger(self, handler: Any) -> Any:
        return _unset_left_out(handler(self), "lora_trigger")

    @model_validator(mode="after")
    def _not_narrator(self) -> "Character":
        if self.id == NARRATOR:
            raise ValueError(f"{NARRATOR!r} is reserved for the narrator")
        return self


class Prop(_Model):
    id: str
    name: str
    aliases: list[str] = Field(default_factory=list)
    appearance: str = ""
    reference_images: list[str] = Field(default_factory=list)

    _v = field_validator("id")(classmethod(lambda cls, v: _check_id(v)))


class Location(_Model):
    id: str
    name: str
    aliases: list[str] = Field(default_factory=list)
    description: str = ""
    kind: LocationKind = Field("unknown", description="What the place is: the backdrop drawn for it")
    time_of_day: Literal["day", "night", "dusk", "dawn", "unknown"] = "unknown"
    weather: Weather = Field("unknown", description="Only when the text says so")
    interior: bool = False
    reference_images: list[str] | None = Field(
        None, description="Pictures of the place (relative to the project): a multi-reference model draws the "
                          "background after the first, when the shot has room for it")

    _v = field_validator("id")(classmethod(lambda cls, v: _check_id(v)))

    @model_serializer(mode="wrap")
    def _without_unset_references(self, handler: Any) -> Any:
        return _unset_left_out(handler(self), "reference_images")


class CharactersFile(_Model):
    narrator: VoiceSpec = Field(default_factory=VoiceSpec, description="The narrator's voice")
    characters: list[Character] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> "CharactersFile":
        _unique_ids("characters", [c.id for c in self.characters])
        return self

    def by_id(self) -> dict[str, Character]:
        return {c.id: c for c in self.characters}


class PropsFile(_Model):
    props: list[Prop] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> "PropsFile":
        _unique_ids("props", [p.id for p in self.props])
        return self


class LocationsFile(_Model):
    period: Period = Field("unknown", description="The book's period and region, found by the planner: how people, clothes and buildings look")
    locations: list[Location] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> "LocationsFile":
        _unique_ids("locations", [p.id for p in self.locations])
        return self


def _unique_ids(what: str, ids: list[str]) -> None:
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            raise ValueError(f"duplicate {what} id {i!r}")
        seen.add(i)


# --------------------------------------------------------------------------- storyboards


class Camera(_Model):
    size: ShotSize = "medium"
    angle: CameraAngle = "eye_level"
    motion: CameraMotion = "auto"


class Line(_Model):
    """One spoken line: narration when ``speaker`` is ``narrator``, dialogue otherwise."""

    speaker: str = NARRATOR
    text: str = Field(min_length=1, max_length=1000,
                      description="At most 1000 characters (about half a minute spoken): split longer text into several lines or shots")
    emotion: Emotion = "neutral"

    @property
    def is_narration(self) -> bool:
        return self.speaker == NARRATOR


class Shot(_Model):
    id: str
    characters: list[str] = Field(default_factory=list, description="Character ids visible in the shot (may be empty)")
    props: list[str] = Field(default_factory=list)
    location: str | None = Field(None, description="Location id; default: the scene's")
    camera: Camera = Field(default_factory=Camera)
    lines: list[Line] = Field(default_factory=list, description="Narration and dialogue, in the order they are heard")
    mood: Mood | None = Field(None, description="Default: the scene's mood")
    duration_hint: float | None = Field(None, gt=0, le=60, description="Minimum seconds on screen (the audio may make it longer)")
    transition: Transition = Field("dissolve", description="Transition into the next shot")
    image_prompt: str = ""
    negative_prompt: str = ""
    seed: int | None = Field(None, ge=0, le=MAX_SEED, description="This shot's image seed (0 … 2**32-1); default: derived from the project's")
    adapter_scale: float | None = Field(None, ge=0, le=2, description="IP-Adapter strength for this shot")
    effect: str | None = Field(None, description="A registered custom effect (moviepy) for this shot's segment")
    source: str = Field("", description="The passage of the chapter this shot was made from")
    motion: Literal["i2v", "still"] | None = Field(
        None, description="i2v: animate this shot into a clip (animate stage); still: never; default: animate.shots decides")

    _v = field_validator("id")(classmethod(lambda cls, v: _check_id(v)))

    @model_serializer(mode="wrap")
    def _without_unset_motion(self, handler: Any) -> Any:
        return _unset_left_out(handler(self), "motion")


class Scene(_Model):
    id: str
    location: str | None = None
    mood: Mood = "calm"
    summary: str = ""
    shots: list[Shot] = Field(default_factory=list)

    _v = field_validator("id")(classmethod(lambda cls, v: _check_id(v)))


class Storyboard(_Model):
    chapter: str
    title: str = ""
    scenes: list[Scene] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> "Storyboard":
        _unique_ids("scenes", [s.id for s in self.scenes])
        _unique_ids("shots", [sh.id for s in self.scenes for sh in s.shots])
        return self

    def shots(self) -> list[tuple[Scene, Shot]]:
        return [(scene, shot) for scene in self.scenes for shot in scene.shots]

    def shot(self, shot_id: str) -> Shot:
        for _, shot in self.shots():
            if shot.id == shot_id:
                return shot
        raise KeyError(f"no shot {shot_id!r} in chapter {self.chapter!r}")


SCHEMA_MODELS: dict[str, type[BaseModel]] = {
    "project": ProjectConfig,
    "characters": CharactersFile,
    "props": PropsFile,
    "locations": LocationsFile,
    "storyboard": Storyboard,
}
