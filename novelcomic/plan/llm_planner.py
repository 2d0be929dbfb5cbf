"""The LLM planner: a language model reads each chapter and storyboards it.

For each chapter the text is split into chunks that fit the model's context (with a little
overlap so a scene cut in two keeps its thread); each chunk is sent with the cast known so far and
the model answers a :class:`ChunkAnalysis` (characters, props, locations, scenes → shots → lines),
validated and repaired by :func:`novelcomic.llm.structured.generate_structured`. Chunks are merged
(shots repeated from the overlap are dropped), the cast is merged across chapters and with the
user's own by :class:`novelcomic.plan.bible.Bible`, and names become ids.

A chapter the model keeps answering invalidly (``LLMOutputError`` after ``attempts`` tries) is
planned by the heuristic planner instead, with a warning in ``PlanResult.warnings`` (and in
``LLMPlanner.failures``); the other chapters go on. A transport failure (server down, timeouts
after retries) on the first chapter stops the plan with a ``BackendError``; on a later one, the
chapters planned so far are returned and the rest are named in ``LLMPlanner.unplanned`` (with the
reason in ``LLMPlanner.stopped``), so that what the model already answered is kept.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from novelcomic.errors import BackendError, NovelcomicError
from novelcomic.llm.base import LLMBackend, Message
from novelcomic.models import (
    NARRATOR, Camera, CameraAngle, CameraMotion, Emotion, Line, Mood, Scene, Shot, ShotSize, Storyboard, Transition,
)
from novelcomic.plan.base import ChapterText, PlanRequest, PlanResult
from novelcomic.plan.bible import Bible, is_narrator

log = logging.getLogger("novelcomic")

CJK_RE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef]")
SENTENCE_RE = re.compile(r"[^。！？!?…]*(?:[。！？!?]+|…+)[”’」』\"']*|[^。！？!?…]+$")
EN_SENTENCE_RE = re.compile(r".+?(?:[.!?]+[\"'”’]*(?=\s)|$)", re.DOTALL)
TEXT_KEY_RE = re.compile(r"[\W_]+", re.UNICODE)
MIN_CHUNK_TOKENS = 200
ANSWER_SHARE = 3  # a chunk's answer restates its text as lines plus JSON: ~2x the chunk itself


# --------------------------------------------------------------------------- what the model answers


def _enum_key(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    v = value.strip().lower().replace("-", "_").replace(" ", "_")
    return re.sub(r"_shot$", "", v)


def _normaliser(synonyms: dict[str, str]):  # type: ignore[no-untyped-def]
    def check(cls: type, value: Any) -> Any:  # noqa: ARG001
        v = _enum_key(value)
        return synonyms.get(v, v) if isinstance(v, str) else v

    return classmethod(check)


SIZE_SYNONYMS = {"closeup": "close_up", "close": "close_up", "cu": "close_up", "ecu": "extreme_close_up",
                 "extreme_closeup": "extreme_close_up", "long": "wide", "ls": "wide", "establishing": "extreme_wide",
                 "extreme_long": "extreme_wide", "ms": "medium", "mid": "medium", "medium_close_up": "close_up",
                 "medium_long": "full", "full_body": "full"}
ANGLE_SYNONYMS = {"eye": "eye_level", "eyelevel": "eye_level", "normal": "eye_level", "high_angle": "high",
                  "low_angle": "low", "birds_eye": "overhead", "bird's_eye": "overhead", "top_down": "overhead",
                  "dutch_angle": "dutch", "tilted": "dutch"}
MOTION_SYNONYMS = {"none": "static", "still": "static", "zoom_in": "push_in", "dolly_in": "push_in",
                   "zoom_out": "pull_out", "dolly_out": "pull_out", "pan": "pan_right", "tilt": "tilt_up"}
EMOTION_SYNONYMS = {"calm": "neutral", "normal": "neutral", "joyful": "happy", "glad": "happy", "scared": "afraid",
                    "fearful": "afraid", "fear": "afraid", "mad": "angry", "surprise": "surprised", "whispering": "whisper",
                    "excitement": "excited", "sorrowful": "sad"}
MOOD_SYNONYMS = {"peaceful": "calm", "happy": "joyful", "warm": "joyful", "suspense": "tense", "scary": "tense",
                 "sorrowful": "sad", "melancholy": "sad", "mystery": "mysterious", "magical": "mysterious", "exciting": "action"}
TRANSITION_SYNONYMS = {"hard_cut": "cut", "crossfade": "dissolve", "cross_dissolve": "dissolve", "fade_to_black": "fadeblack",
                       "fade_black": "fadeblack", "wipe": "wipeleft", "slide": "slideleft"}


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore")


class CharacterInfo(_Answer):
    name: str = Field(min_length=1, description="The name the text uses most")
    aliases: list[str] = Field(default_factory=list, description="Other names, titles and nicknames for the same character")
    appearance: str = Field("", description="Fixed look: hair, clothes, colours, build, species")
    gender: Literal["male", "female", "unknown"] = "unknown"
    age: Literal["child", "young", "adult", "old", "unknown"] = "unknown"
    temperament: str = ""
    voice: str = Field("", description="A voice suggestion, e.g. 'bright child's voice'")

    _g = field_validator("gender", "age", mode="before")(_normaliser({"boy": "male", "girl": "female", "man": "male",
                                                                        "woman": "female", "elderly": "old", "teen": "young"}))


class PropInfo(_Answer):
    name: str = Field(min_length=1)
    aliases: list[str] = Field(default_factory=list)
    appearance: str = ""


class LocationInfo(_Answer):
    name: str = Field(min_length=1)
    aliases: list[str] = Field(default_factory=list)
    description: str = ""
    time_of_day: Literal["day", "night", "dusk", "dawn", "unknown"] = "unknown"
    interior: bool | None = None

    _t = field_validator("time_of_day", mode="before")(_normaliser({"evening": "dusk", "morning": "dawn", "daytime": "day",
                                                                    "noon": "day", "nighttime": "night", "sunset": "dusk"}))


class LineInfo(_Answer):
    speaker: str = Field("narrator", description="'narrator' for narration, else the speaking character's name")
    text: str = Field(min_length=1, description="The words, as in the text")
    emotion: Emotion = "neutral"

    _e = field_validator("emotion", mode="before")(_normaliser(EMOTION_SYNONYMS))


class ShotInfo(_Answer):
    characters: list[str] = Field(default_factory=list, description="Names of the characters visible")
    props: list[str] = Field(default_factory=list)
    location: str | None = Field(None, description="Location name when it differs from the scene's")
    size: ShotSize = "medium"
    angle: CameraAngle = "eye_level"
    motion: CameraMotion = "auto"
    lines: list[LineInfo] = Field(default_factory=list)
    mood: Mood | None = None
    duration_hint: float | None = Field(None, description="Minimum seconds on screen")
    transition: Transition = "dissolve"
    visual: str = Field("", description="What the image shows, for the illustrator")

    _s = field_validator("size", mode="before")(_normaliser(SIZE_SYNONYMS))
    _a = field_validator("angle", mode="before")(_normaliser(ANGLE_SYNONYMS))
    _m = field_validator("motion", mode="before")(_normaliser(MOTION_SYNONYMS))
    _mo = field_validator("mood", mode="before")(_normaliser(MOOD_SYNONYMS))
    _t = field_validator("transition", mode="before")(_normaliser(TRANSITION_SYNONYMS))


class SceneInfo(_Answer):
    location: str | None = Field(None, description="Location name")
    mood: Mood = "calm"
    summary: str = ""
    continues_previous: bool = Field(False, description="True when this scene continues the one before this passage")
    shots: list[ShotInfo] = Field(default_factory=list)

    _mo = field_validator("mood", mode="before")(_normaliser(MOOD_SYNONYMS))


class ChunkAnalysis(_Answer):
    """What the model returns for one passage of a chapter."""

    characters: list[CharacterInfo] = Field(default_factory=list)
    props: list[PropInfo] = Field(default_factory=list)
    locations: list[LocationInfo] = Field(default_factory=list)
    scenes: list[SceneInfo] = Field(min_length=1)


# --------------------------------------------------------------------------- chunking


def estimate_tokens(text: str) -> int:
    """Rough token count: CJK characters / 1.5, plus the larger of words × 1.3 and chars / 4 for
    the rest (JSON and code have few spaces)."""
    cjk = len(CJK_RE.findall(text))
    rest = CJK_RE.sub(" ", text)
    other = max(len(rest.split()) * 1.3, len(rest.replace(" ", "")) / 4)
    return int(cjk / 1.5 + other) + 1


@dataclass
class Chunk:
    """``text`` to storyboard, with ``context`` (the end of the previous chunk) for continuity."""

    text: str
    context: str = ""


def split_chunks(text: str, budget_tokens: int, overlap_chars: int = 200) -> list[Chunk]:
    """Split a chapter at paragraph (then sentence, then character) boundaries into chunks of at
    most ``budget_tokens`` estimated tokens; each chunk after the first carries up to
    ``overlap_chars`` of the previous chunk's end (whole paragraphs where they fit) as context."""
    if budget_tokens < 1:
        raise ValueError("budget_tokens must be positive")
    pieces: list[str] = []
    for para in (p.strip() for p in text.splitlines()):
        if para:
            pieces.extend(_fit(para, budget_tokens))
    chunks: list[list[str]] = []
    current: list[str] = []
    for piece in pieces:
        if current and estimate_tokens("\n".join([*current, piece])) > budget_tokens:
            chunks.append(current)
            current = []
        current.append(piece)
    if current:
        chunks.append(current)
    out: list[Chunk] = []
    for i, parts in enumerate(chunks):
        context = _tail(chunks[i - 1], overlap_chars) if i and overlap_chars > 0 else ""
        out.append(Chunk("\n".join(parts), context))
    return out


def _fit(para: str, budget: int) -> list[str]:
    if estimate_tokens(para) <= budget:
        return [para]
    regex = SENTENCE_RE if CJK_RE.search(para) else EN_SENTENCE_RE
    sentences = [s.strip() for s in regex.findall(para) if s.strip()] or [para]
    out: list[str] = []
    cur = ""
    for s in sentences:
        if estimate_tokens(s) > budget:  # one huge sentence: cut by characters
            step = max(1, int(len(s) * budget / estimate_tokens(s)))
            parts = [s[i : i + step] for i in range(0, len(s), step)]
        else:
            parts = [s]
        for p in parts:
            joiner = "" if CJK_RE.search(p) else " "
            if cur and estimate_tokens(cur + joiner + p) > budget:
                out.append(cur)
                cur = ""
            cur = (cur + joiner + p) if cur else p
    if cur:
        out.append(cur)
    return out


def _tail(parts: list[str], limit: int) -> str:
    taken: list[str] = []
    size = 0
    for p in reversed(parts):
        if size + len(p) > limit:
            break
        taken.insert(0, p)
        size += len(p) + 1
    if not taken:
        return parts[-1][-limit:]
    return "\n".join(taken)


def _text_key(text: str) -> str:
    return TEXT_KEY_RE.sub("", text).lower()


# --------------------------------------------------------------------------- the planner


SYSTEM_PROMPT = """\
You are a storyboard artist adapting a novel into a narrated comic video (小说漫): still images with narration and \
dialogue read aloud. Read the passage and answer with:
- characters: everyone who appears or speaks. `name`: the name the story uses most; `aliases`: every other name, \
title or nickname the passage uses for the SAME character; `appearance`: their fixed look (hair, clothes, colours, \
build, species) as the text describes it; gender, age, temperament, and a voice suggestion.
- props: important objects; locations: places (with time of day when known).
- scenes → shots: cover the WHOLE passage in order, nothing skipped and nothing invented. Every sentence becomes a \
line: narration with speaker "narrator", dialogue with the speaker's name exactly as in `characters`. Keep the \
story's own words ({language}). 1-3 lines per shot. In each shot list the characters visible (by name), choose \
size/angle/motion, mood and transition, and describe in `visual` what the picture shows.
Do not make shots from the context before the passage: it was storyboarded already."""

LANGUAGE_NAMES = {"zh": "Chinese", "en": "English"}


@dataclass
class ChapterFailure:
    """A chapter the model could not plan; it was planned by the heuristic planner instead."""

    chapter: str
    errors: list[str]
    attempts: int
    output: str = ""


@dataclass
class _ChapterWork:
    chapter: ChapterText
    parts: list[tuple[Chunk, ChunkAnalysis]] = field(default_factory=list)


class LLMPlanner:
    """Plans chapters with the project's language model (``project.yaml`` ``llm:``).

    ``chunk_tokens``: estimated tokens of chapter text per request (default: what fits the
    model's ``context_tokens`` with room for the prompt and the answer); ``overlap_chars``:
    context carried from one chunk to the next; ``attempts``: answers per chunk before the chapter
    falls back to the heuristic planner; ``temperature``: sampling temperature.
    """

    name = "llm"

    def __init__(self, chunk_tokens: int | None = None, overlap_chars: int = 200, attempts: int = 3,
                 temperature: float = 0.2) -> None:
        if chunk_tokens is not None and chunk_tokens < 50:
            raise NovelcomicError(f"chunk_tokens {chunk_tokens!r} is too small (at least 50)", field="stages.plan.options.chunk_tokens")
        if overlap_chars < 0:
            raise NovelcomicError(f"overlap_chars {overlap_chars!r} must be 0 or more", field="stages.plan.options.overlap_chars")
        if attempts < 1:
            raise NovelcomicError(f"attempts {attempts!r} must be at least 1", field="stages.plan.options.attempts")
        if not 0 <= temperature <= 2:
            raise NovelcomicError(f"temperature {temperature!r} must be between 0 and 2", field="stages.plan.options.temperature")
        self.chunk_tokens = chunk_tokens
        self.overlap_chars = overlap_chars
        self.attempts = attempts
        self.temperature = temperature
        self.failures: list[ChapterFailure] = []
        self.unplanned: list[str] = []  # chapters not reached because the server stopped answering
        self.stopped = ""
        self.traces: list[Any] = []

    def plan(self, request: PlanRequest) -> PlanResult:
        """Plan every chapter of ``request`` (see the module docstring)."""
        from novelcomic.llm.structured import LLMOutputError
        from novelcomic.registry import llms

        from novelcomic.llm.config import SETUP_HINT, llm_from_env

        cfg = request.config
        llm_cfg = cfg.llm or llm_from_env()  # project.yaml first, then NOVELCOMIC_LLM_*
        if llm_cfg is None:
            raise NovelcomicError(f"the llm planner needs a language model: {SETUP_HINT}", file="project.yaml", field="llm")
        llm: LLMBackend = llms.create(llm_cfg.backend, llm_cfg.options)
        lang = cfg.language
        budget = self.chunk_tokens or self._budget(llm, lang)
        bible = Bible(request.characters, request.props, request.locations)
        warnings: list[str] = []
        done: list[_ChapterWork] = []
        failed: list[ChapterText] = []
        self.failures = []
        self.unplanned = []
        self.stopped = ""
        for n, ch in enumerate(request.chapters):
            work = _ChapterWork(ch)
            chunks = split_chunks(ch.text, budget, self.overlap_chars)
            try:
                for i, chunk in enumerate(chunks):
                    analysis = self._ask(llm, lang, ch, chunk, i, len(chunks), bible, work)
                    work.parts.append((chunk, analysis))
            except LLMOutputError as exc:
                self.failures.append(ChapterFailure(ch.id, exc.errors, exc.attempts, exc.output))
                msg = (f"chapter {ch.id}: the language model gave no valid storyboard after {exc.attempts} attempts "
                       f"({'; '.join(exc.errors[:2])}); this chapter was planned by the heuristic planner instead")
                log.debug(msg)  # reported once, through PlanResult.warnings
                warnings.append(msg)
                failed.append(ch)
                continue
            except BackendError as exc:
                if not (done or failed):
                    raise  # nothing planned yet: nothing to keep
                # The server stopped answering: the chapters planned so far are returned (and kept
                # by the pipeline); the rest are left for the next run.
                self.unplanned = [c.id for c in request.chapters[n:]]
                self.stopped = f"the language model stopped answering at chapter {ch.id} ({exc})"
                break
            for _, analysis in work.parts:
                _add_to_bible(bible, analysis)
            done.append(work)
        characters, props, locations = bible.build()
        boards: dict[str, Storyboard] = {}
        for work in done:
            boards[work.chapter.id] = _storyboard(work, bible, warnings)
        if failed:
            from novelcomic.plan.heuristic import HeuristicPlanner

            fallback = HeuristicPlanner().plan(
                PlanRequest(config=cfg, chapters=failed, characters=characters, props=props, locations=locations)
            )
            boards.update(fallback.storyboards)
            characters, props, locations = fallback.characters, fallback.props, fallback.locations
            warnings.extend(fallback.warnings)
        ordered = {ch.id: boards[ch.id] for ch in request.chapters if ch.id in boards}
        return PlanResult(characters=characters, props=props, locations=locations, storyboards=ordered, warnings=warnings)

    # ------------------------------------------------------------------ helpers

    def _budget(self, llm: LLMBackend, lang: str) -> int:
        from novelcomic.llm.structured import schema_instruction

        overhead = estimate_tokens(SYSTEM_PROMPT + schema_instruction(ChunkAnalysis)) + 300
        context = int(getattr(llm, "context_tokens", 8192) or 8192)
        return max(MIN_CHUNK_TOKENS, (context - overhead) // ANSWER_SHARE)

    def _ask(self, llm: LLMBackend, lang: str, ch: ChapterText, chunk: Chunk, index: int, total: int,
             bible: Bible, work: _ChapterWork) -> ChunkAnalysis:
        from novelcomic.llm.structured import StructuredTrace, generate_structured

        known = _known_cast(bible, work)
        parts = [f"Chapter {ch.id}: {ch.title}".rstrip(": "), f"Part {index + 1} of {total}."]
        if known:
            parts.append("Characters known so far (use these names): " + "; ".join(known))
        if chunk.context:
            parts.append(f"Context before the passage (already storyboarded, do not make shots from it):\n{chunk.context}")
        parts.append(f"Passage:\n<<<\n{chunk.text}\n>>>")
        messages = [
            Message("system", SYSTEM_PROMPT.format(language=LANGUAGE_NAMES.get(lang, lang))),
            Message("user", "\n\n".join(parts)),
        ]
        what = f"chapter {ch.id} part {index + 1}/{total}"
        trace = StructuredTrace(what=what)
        self.traces.append(trace)
        result = generate_structured(llm, messages, ChunkAnalysis, attempts=self.attempts, what=what,
                                     temperature=self.temperature, trace=trace)
        if trace.repairs:
            log.info(trace.summary())
        return result


def _known_cast(bible: Bible, work: _ChapterWork) -> list[str]:
    """Names the model should reuse: the bible's (user's + earlier chapters') and this chapter's so far."""
    seen: dict[str, list[str]] = {}
    for name, aliases in bible.names("character"):
        seen.setdefault(name, aliases)
    for _, analysis in work.parts:
        for c in analysis.characters:
            seen.setdefault(c.name, list(c.aliases))
    return [f"{n} (also {', '.join(a)})" if a else n for n, a in seen.items()]


def _add_to_bible(bible: Bible, analysis: ChunkAnalysis) -> None:
    for c in analysis.characters:
        bible.add_character(c.name, c.aliases, appearance=c.appearance, gender=c.gender, age=c.age,
                            temperament=c.temperament, voice=c.voice)
    for p in analysis.props:
        bible.add_prop(p.name, p.aliases, appearance=p.appearance)
    for loc in analysis.locations:
        bible.add_location(loc.name, loc.aliases, description=loc.description, time_of_day=loc.time_of_day,
                           interior=loc.interior)
    for scene in analysis.scenes:  # a location named only in a scene is still a location
        if scene.location:
            bible.add_location(scene.location)


def _storyboard(work: _ChapterWork, bible: Bible, warnings: list[str]) -> Storyboard:
    """Merge a chapter's chunk answers into one storyboard with ids (``s01``, ``s01-01``)."""
    ch = work.chapter
    scenes: list[tuple[str | None, str, str, list[Shot]]] = []  # (location id, mood, summary, shots)
    seen_lines: set[str] = set()
    unknown_speakers: dict[str, int] = {}
    unknown_names: set[str] = set()
    dropped = 0
    for k, (chunk, analysis) in enumerate(work.parts):
        context_key = _text_key(chunk.context)
        for si, scene in enumerate(analysis.scenes):
            loc_id = bible.resolve("location", scene.location)
            shots: list[Shot] = []
            for info in scene.shots:
                lines_info = [ln for ln in info.lines if ln.text.strip()]
                keys = [_text_key(ln.text) for ln in lines_info]
                if k and keys and all(key and key in seen_lines and key in context_key for key in keys):
                    dropped += 1  # repeated from the overlap with the previous chunk
                    continue
                shots.append(_shot(info, lines_info, bible, loc_id, unknown_speakers, unknown_names))
                seen_lines.update(keys)
            if not shots:
                continue
            same_place = loc_id is not None and scenes and scenes[-1][0] == loc_id
            if k and si == 0 and scenes and (scene.continues_previous or same_place):
                scenes[-1][3].extend(shots)
            else:
                scenes.append((loc_id, scene.mood, scene.summary, shots))
    if unknown_speakers:
        names = ", ".join(f"{n!r}" for n in unknown_speakers)
        warnings.append(f"chapter {ch.id}: unknown speaker(s) {names} not in the cast: their lines are read by the narrator")
    if unknown_names:
        warnings.append(f"chapter {ch.id}: unknown name(s) {', '.join(sorted(unknown_names))} left out of shots")
    if dropped:
        log.info("chapter %s: %d shots repeated from chunk overlaps were dropped", ch.id, dropped)
    out: list[Scene] = []
    for si, (loc_id, mood, summary, shots) in enumerate(scenes, start=1):
        sid = f"s{si:02d}"
        renamed = [s.model_copy(update={"id": f"{sid}-{hi:02d}"}) for hi, s in enumerate(shots, start=1)]
        out.append(Scene(id=sid, location=loc_id, mood=mood, summary=summary, shots=renamed))
    if not out:
        warnings.append(f"chapter {ch.id!r} has no text to plan")
    return Storyboard(chapter=ch.id, title=ch.title, scenes=out)


def _join_text(texts: list[str]) -> str:
    """Lines run together as the passage they came from: Chinese without spaces, English with."""
    out = ""
    for t in texts:
        if out and t and out[-1].isascii() and not out[-1].isspace() and t[0].isascii():
            out += " "
        out += t
    return out


def _shot(info: ShotInfo, lines_info: list[LineInfo], bible: Bible, scene_loc: str | None,
          unknown_speakers: dict[str, int], unknown_names: set[str]) -> Shot:
    chars: list[str] = []
    for name in info.characters:
        cid = bible.resolve("character", name)
        if cid is None:
            if not is_narrator(name):
                unknown_names.add(name)
        elif cid not in chars:
            chars.append(cid)
    lines: list[Line] = []
    for ln in lines_info:
        speaker = NARRATOR
        if not is_narrator(ln.speaker):
            cid = bible.resolve("character", ln.speaker)
            if cid is None:
                unknown_speakers[ln.speaker] = unknown_speakers.get(ln.speaker, 0) + 1
            else:
                speaker = cid
                if cid not in chars:
                    chars.append(cid)
        lines.append(Line(speaker=speaker, text=ln.text.strip(), emotion=ln.emotion))
    props = []
    for name in info.props:
        pid = bible.resolve("prop", name)
        if pid and pid not in props:
            props.append(pid)
    loc = bible.resolve("location", info.location) if info.location else None
    duration = info.duration_hint if info.duration_hint and 0 < info.duration_hint <= 60 else None
    source = _join_text([ln.text for ln in lines])
    return Shot(
        id="tmp", characters=chars, props=props, location=loc if loc != scene_loc else None,
        camera=Camera(size=info.size, angle=info.angle, motion=info.motion), lines=lines, mood=info.mood,
        duration_hint=duration, transition=info.transition, image_prompt=info.visual.strip(), source=source[:300],
    )


def chunk_analysis_schema() -> str:
    """The JSON schema the model is asked to follow (for docs and debugging)."""
    return json.dumps(ChunkAnalysis.model_json_schema(), ensure_ascii=False, indent=2)
