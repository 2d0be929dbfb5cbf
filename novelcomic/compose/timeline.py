"""From storyboard + voiced lines + shot images to a :class:`Timeline`.

Timing rules:

- a shot lasts ``lead_in`` + its lines (with ``gap`` between them) + ``tail``, at least its
  ``duration_hint``, at least :data:`MIN_SHOT_SECONDS`, rounded up to whole frames;
- clips follow each other: the video is exactly the sum of the shots. Transitions are drawn
  *around* each cut (half before, half after, inside the two shots), so they never eat time;
- every line's audio starts at its absolute time, and its subtitle cue spans exactly that audio.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

from novelcomic.compose.base import Clip, ClipVideo, Cue, LineAudio, TalkSpec, Timeline
from novelcomic.compose.motion import motion_speed, resolve_motion
from novelcomic.errors import NovelcomicError
from novelcomic.models import Storyboard

MIN_SHOT_SECONDS = 1.5


def build_timeline(
    storyboard: Storyboard,
    line_audio: Mapping[str, list[LineAudio]],
    images: Mapping[str, Path],
    *,
    width: int,
    height: int,
    fps: int,
    transition_seconds: float = 0.5,
    lead_in: float = 0.3,
    gap: float = 0.25,
    tail: float = 0.45,
    videos: Mapping[str, ClipVideo] | None = None,
    figures: Mapping[str, list[dict]] | None = None,
) -> Timeline:
    """Lay the chapter's shots end to end and place every line's audio and cue.

    ``line_audio`` maps shot id → the shot's voiced lines in order (may be absent for a shot
    without lines); ``images`` maps shot id → the shot's still. ``videos``: shot id → the clip
    playing instead of its still (static camera); ``figures``: shot id → the animatic's recorded
    figures, for the talking animatic (a shot with a clip does not talk).
    """
    _check_frame(width, height, fps)
    for name, value in (("transition_seconds", transition_seconds), ("lead_in", lead_in), ("gap", gap), ("tail", tail)):
        if not math.isfinite(value) or value < 0:
            raise NovelcomicError(f"{name} must be a non-negative number of seconds, got {value!r}")
    shots = storyboard.shots()
    if not shots:
        raise NovelcomicError(f"chapter {storyboard.chapter!r} has no shots: nothing to compose")

    clips: list[Clip] = []
    cues: list[Cue] = []
    frame = 0
    prev_scene = None
    in_scene = 0  # position in its scene: deleting or adding a shot changes no other scene's moves
    for scene, shot in shots:
        image = _image_for(storyboard.chapter, shot.id, images)
        lines = _lines_for(storyboard.chapter, shot.id, len(shot.lines), line_audio)
        frames = shot_frames(lines, shot.duration_hint, fps, lead_in=lead_in, gap=gap, tail=tail)
        start = frame / fps
        placements, shot_cues = _place_lines(lines, start + lead_in, gap)
        first_in_scene = scene is not prev_scene
        in_scene = 0 if first_in_scene else in_scene + 1
        prev_scene = scene
        motion = resolve_motion(shot.camera.size, shot.camera.motion, first_in_scene=first_in_scene, index=in_scene)
        mood = shot.mood or scene.mood
        video = (videos or {}).get(shot.id)
        figs = (figures or {}).get(shot.id)
        talk = None
        if video is not None:
            motion = "static"  # the clip moves by itself
        elif figs:
            talk = TalkSpec(tuple(figs), tuple(
                (t, line.duration, line.speaker, Path(line.path)) for (t, _), line in zip(placements, lines)))
        clips.append(
            Clip(
                shot_id=shot.id,
                image=image,
                start=start,
                duration=frames / fps,
                motion=motion,
                transition=shot.transition,
                mood=mood,
                audio=placements,
                effect=getattr(shot, "effect", None),
                motion_speed=motion_speed(mood),
                video=video,
                talk=talk,
            )
        )
        cues.extend(shot_cues)
        frame += frames
    return Timeline(width=width, height=height, fps=fps, clips=clips, cues=cues, transition_seconds=transition_seconds)


def shot_frames(
    lines: list[LineAudio], duration_hint: float | None, fps: int, *, lead_in: float, gap: float, tail: float
) -> int:
    """How many frames a shot with ``lines`` lasts (see the module docstring)."""
    seconds = MIN_SHOT_SECONDS
    if lines:
        spoken = sum(line.duration for line in lines) + gap * (len(lines) - 1)
        seconds = max(seconds, lead_in + spoken + tail)
    if duration_hint:
        seconds = max(seconds, duration_hint)
    return max(1, math.ceil(seconds * fps - 1e-6))


def _place_lines(lines: list[LineAudio], first_start: float, gap: float) -> tuple[list[tuple[float, Path]], list[Cue]]:
    placements: list[tuple[float, Path]] = []
    cues: list[Cue] = []
    t = first_start
    for line in lines:
        placements.append((t, line.path))
        if line.duration > 0:
            words = [(t + a, t + b, w) for a, b, w in line.words]
            cues.append(
                Cue(start=t, end=t + line.duration, text=line.text, speaker=line.speaker, speaker_name=line.speaker_name, words=words)
            )
        t += line.duration + gap
    return placements, cues


def _check_frame(width: int, height: int, fps: int) -> None:
    if not isinstance(width, int) or not isinstance(height, int) or width < 64 or height < 64 or width % 2 or height % 2:
        raise NovelcomicError(f"video size {width}x{height} must be even numbers of at least 64 pixels", field="resolution")
    if not isinstance(fps, int) or not 1 <= fps <= 120:
        raise NovelcomicError(f"fps must be a whole number from 1 to 120, got {fps!r}", field="fps")


def _image_for(chapter: str, shot_id: str, images: Mapping[str, Path]) -> Path:
    path = images.get(shot_id)
    if path is None:
        raise NovelcomicError(f"shot {shot_id} of chapter {chapter} has no image")
    path = Path(path)
    if not path.is_file():
        raise NovelcomicError(f"image {path} of shot {shot_id} (chapter {chapter}) does not exist")
    return path


def _lines_for(chapter: str, shot_id: str, expected: int, line_audio: Mapping[str, list[LineAudio]]) -> list[LineAudio]:
    lines = list(line_audio.get(shot_id, []))
    if len(lines) != expected:
        raise NovelcomicError(
            f"shot {shot_id} of chapter {chapter} has {expected} line(s) but {len(lines)} voiced: run the voice stage"
        )
    for i, line in enumerate(lines):
        if not math.isfinite(line.duration) or line.duration < 0:
            raise NovelcomicError(f"line {i + 1} of shot {shot_id} has a bad duration {line.duration!r}")
        if not Path(line.path).is_file():
            raise NovelcomicError(f"audio {line.path} of line {i + 1} of shot {shot_id} does not exist")
    return lines
