"""The composer interface and the timeline it consumes.

The timeline is computed from the storyboard and the voice stage's results (see
``novelcomic.compose.timeline.build_timeline``): each shot lasts as long as its lines (plus small
pauses), never less than its ``duration_hint``; a video is exactly the sum of its shots.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from novelcomic.models import MusicConfig, SubtitleConfig


@dataclass
class LineAudio:
    """One voiced line of a shot, as the voice stage made it."""

    text: str
    speaker: str  # character id or "narrator"
    speaker_name: str  # display name ("" for the narrator)
    path: Path  # WAV
    duration: float  # seconds
    words: list[tuple[float, float, str]] = field(default_factory=list)  # (start, end, word) within the WAV


@dataclass
class Cue:
    start: float  # seconds from the start of the chapter video
    end: float
    text: str
    speaker: str
    speaker_name: str = ""
    words: list[tuple[float, float, str]] = field(default_factory=list)  # same clock as start/end (karaoke)

    @property
    def is_narration(self) -> bool:
        return self.speaker == "narrator"


@dataclass(frozen=True)
class ClipVideo:
    """An image-to-video clip that plays instead of a shot's still (novelcomic.animate): an MP4 of
    ``frames`` frames at its own ``fps``, and the still's lettering as a transparent PNG laid over
    its frames. ``fill``: how a clip shorter than the shot fills it (``slow``: slowed with blended
    frames, up to :data:`novelcomic.compose.clips.MAX_SLOW`, then held; ``hold``: held on its last frame)."""

    path: Path
    fps: float
    frames: int
    letters: Path | None = None
    fill: str = "slow"


@dataclass(frozen=True)
class TalkSpec:
    """What the talking animatic draws over a shot's still (novelcomic.compose.talking): the
    figures the animatic recorded (head, eyes, mouth, skin; pixels of the still) and the shot's
    lines as (absolute start, duration, speaker id, WAV)."""

    figures: tuple[dict, ...]
    lines: tuple[tuple[float, float, str, Path], ...] = ()


@dataclass
class Clip:
    shot_id: str
    image: Path
    start: float
    duration: float
    motion: str  # resolved: static | push_in | pull_out | pan_left | pan_right | tilt_up | tilt_down
    transition: str  # into the next clip: cut | dissolve | fade | fadeblack | wipeleft | ...
    mood: str
    audio: list[tuple[float, Path]] = field(default_factory=list)  # (absolute start, WAV)
    effect: str | None = None  # a registered custom effect (novelcomic.registry.effects), drawn by moviepy
    motion_speed: float = 1.0  # how fast the camera moves (action shots move quicker)
    video: ClipVideo | None = None  # an animate-stage clip playing instead of the still (no camera move)
    talk: TalkSpec | None = None  # the talking animatic over the still


@dataclass
class Timeline:
    width: int
    height: int
    fps: int
    clips: list[Clip]
    cues: list[Cue]
    transition_seconds: float = 0.5

    @property
    def duration(self) -> float:
        return sum(c.duration for c in self.clips)


@dataclass
class ComposeRequest:
    timeline: Timeline
    out_video: Path
    out_srt: Path
    work_dir: Path  # scratch space owned by this chapter (segments, mixes); kept for incremental re-runs
    language: str = "zh"
    music: MusicConfig = field(default_factory=MusicConfig)
    subtitles: SubtitleConfig = field(default_factory=SubtitleConfig)
    project_dir: Path | None = None  # for resolving user music files
    title: str = ""  # the chapter's title, lettered on the cover (default: the video's file stem)
    cover: bool = True  # write <video stem>.cover.jpg beside the video
    otio: bool = True  # write the timeline as OpenTimelineIO, <video stem>.otio


@dataclass
class ComposeResult:
    video: Path
    srt: Path
    duration: float
    warnings: list[str] = field(default_factory=list)
    cover: Path | None = None
    otio: Path | None = None
    subtitle_track: bool = False  # the MP4 carries the subtitles as a soft (mov_text) track
    encoder: str = ""  # the video encoder used


class Composer(Protocol):
    name: str

    def compose(self, request: ComposeRequest) -> ComposeResult: ...
