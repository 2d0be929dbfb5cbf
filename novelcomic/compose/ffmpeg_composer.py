"""The ffmpeg composer: a chapter's timeline → H.264/AAC MP4 + SRT, built from cached segments.

Video is made of *segments*, each encoded once into ``<work_dir>/segments`` under a name that is
a hash of everything that affects its pixels:

- a **body** segment per clip: its still with its camera move, between the transitions;
- a **transition** segment per non-cut boundary: the two neighbouring stills, each still
  moving, blended. Transitions sit *around* the cut (half inside each shot), so the video is
  exactly as long as the timeline.

A still's move runs linearly over all the time it is visible (its body and both transitions),
so the motion is continuous across segment boundaries. Frames are drawn by
:mod:`novelcomic.compose.draw` (which also blends fades, dips, wipes and slides) and piped as raw
yuv420p into an encoder. The segments to render are split into one batch per worker
(:func:`plan_batches`), and each batch has one long-lived ffmpeg (:func:`encoder_args`, built with
ffmpeg-python): starting an H.264 encoder costs more than a short segment takes to encode. It
burns in the batch's subtitles, forces an IDR frame where each segment starts, and the ``segment``
muxer writes each segment to its own file, which is checked and moved into place as soon as it is
closed (a killed run keeps the finished ones). A transition xfade must blend gets a short-lived
ffmpeg (:func:`feeder_args`) that reads both sides stacked and writes into the encoder's pipe.
Each segment's hash covers the cues in its time range, shifted to start at zero, so it depends
only on what the segment shows; a cue crossing a boundary continues seamlessly.

Every segment has an exact number of frames, starts with an IDR frame (closed GOP), and shares
codec parameters and time base with the others, so they are joined by the concat demuxer with
``-c copy``; the soundtrack (see :mod:`novelcomic.compose.audiomix`, also cached by hash) is muxed
in and the MP4 is written with ``+faststart``, atomically. A re-run with nothing changed only
concatenates and muxes; a changed image re-renders its clip's body and neighbouring transitions.
Segment files no longer referenced are removed.

A shot with a custom ``effect`` has its body drawn by moviepy (see :mod:`novelcomic.compose.effects`)
and then passed through the same ffmpeg encode. Subtitles are burned in, carried as a soft
``mov_text`` track, or both (``subtitle_mode``); with ``karaoke`` and word timings, words light up
as they are spoken. Beside the video the composer writes a cover (``<stem>.cover.jpg``: the first
shot with the chapter title lettered on it) and the timeline as OpenTimelineIO (``<stem>.otio``).
"""

from __future__ import annotations

import math
import re
import os
import shutil
import tempfile
from collections.abc import Sequence
from typing import Any
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from novelcomic.compose import audiomix
from novelcomic.compose.base import Clip, ClipVideo, ComposeRequest, ComposeResult, Cue, Timeline
from novelcomic.compose.draw import PlaneCache, blends_here, segment_frames
from novelcomic.compose.motion import MOTIONS, View, motion_views, view_box
from novelcomic.compose.subtitles import ass_document, default_font_size, layout_cues, write_srt
from novelcomic.errors import BackendError, NovelcomicError
from novelcomic.ffmpeg import FFmpegWriter, feed_ffmpeg, ffmpeg_exe, mp4_video_frames, run_ffmpeg
from novelcomic.fonts import FontInfo, find_cjk_font
from novelcomic.fsutil import atomic_path, hash_inputs, sha256_file

RENDER_VERSION = "5"  # bump when the way segments are drawn changes
SEGMENT_DIR = "segments"
ENCODERS = ("auto", "libx264", "h264_nvenc")
SUBTITLE_MODES = ("burn", "track", "both")

# Storyboard transition → xfade transition. "dissolve" is the film term for a cross-fade
# (xfade's own "dissolve" is a pixel-noise effect that looks like an error on drawn art).
TRANSITIONS = {"dissolve": "fade", "fade": "fade", "crossfade": "fade"}
# Dips through a colour spend most of their time on the colour: give them twice the time.
LONG_TRANSITIONS = {"fadeblack": 2.0, "fadewhite": 2.0}
XFADE_NAMES = {
    "fade", "wipeleft", "wiperight", "wipeup", "wipedown", "slideleft", "slideright", "slideup", "slidedown",
    "circlecrop", "rectcrop", "distance", "fadeblack", "fadewhite", "radial", "smoothleft", "smoothright",
    "smoothup", "smoothdown", "circleopen", "circleclose", "vertopen", "vertclose", "horzopen", "horzclose",
    "dissolve", "pixelize", "diagtl", "diagtr", "diagbl", "diagbr", "hlslice", "hrslice", "vuslice", "vdslice",
    "hblur", "fadegrays", "wipetl", "wipetr", "wipebl", "wipebr", "squeezeh", "squeezev", "zoomin", "fadefast",
    "fadeslow", "hlwind", "hrwind", "vuwind", "vdwind", "coverleft", "coverright", "coverup", "coverdown",
    "revealleft", "revealright", "revealup", "revealdown",
}


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class StillView:
    """How one clip's still is drawn inside a segment."""

    image: Path
    image_hash: str
    motion: str
    fps: int
    visible_frames: int  # frames the still is on screen in total (its move spans them)
    offset: int  # index, within those, of the segment's first frame
    speed: float = 1.0  # the camera's speed (see motion.motion_speed)
    video: ClipVideo | None = None  # an animate-stage clip plays instead of the still (compose/clips.py)
    video_hash: str = ""
    talk: Any = None  # a talking.TalkPlan over the still's visible frames (compose/talking.py)

    def key(self) -> list[object]:
        key: list[object] = [self.image_hash, self.motion, self.fps, self.visible_frames, self.offset, round(self.speed, 4)]
        if self.video is not None:  # only then: segments made before clips keep their names
            from novelcomic.compose.clips import timing_key

            key += ["clip", self.video_hash, timing_key(self.video)]
        if self.talk is not None:
            key += ["talk", self.talk.key()]
        return key

    def views(self) -> tuple[View, View]:
        """Where the window is when the still appears and when it disappears."""
        return motion_views(self.motion, self.visible_frames / self.fps, self.speed)

    def edges(self) -> tuple[tuple[float, float, float, float], tuple[float, float, float, float]]:
        """The window (left, top, right, bottom in 0..1) when the still appears and disappears."""
        start, end = self.views()
        return view_box(start), view_box(end)

    def box_at(self, n: int) -> tuple[float, float, float, float]:
        """The window (left, top, right, bottom in 0..1) at the segment's frame ``n``: it slides
        linearly from the first edges to the last over the frames the still is visible."""
        a, b = self.edges()
        p = min(1.0, max(0.0, (n + self.offset) / max(1, self.visible_frames - 1)))
        return tuple(x + (y - x) * p for x, y in zip(a, b))  # type: ignore[return-value]


@dataclass
class Segment:
    """A run of frames [start, start + frames) of the chapter, encoded into one file."""

    kind: str  # "body" | "xfade"
    start: int
    frames: int
    a: StillView
    b: StillView | None = None
    transition: str = ""
    cues: list[Cue] = field(default_factory=list)  # laid out, times relative to the segment start
    ass: str = ""  # the per-segment ASS script ("" = nothing to burn in)
    key: str = ""
    effect: str = ""  # a custom effect drawn by moviepy (body segments only)

    @property
    def filename(self) -> str:
        return f"seg-{self.key}.mp4"


@dataclass(frozen=True)
class Boundary:
    """The transition from clip i to clip i+1: ``before`` frames taken from clip i, ``after`` from i+1."""

    xfade: str  # "" for a cut
    before: int
    after: int

    @property
    def frames(self) -> int:
        return self.before + self.after


def clip_frames(timeline: Timeline) -> list[int]:
    """Each clip's length in whole frames."""
    return [max(1, round(c.duration * timeline.fps)) for c in timeline.clips]


def xfade_name(transition: str, shot_id: str) -> str:
    """The xfade transition for a storyboard transition ("" for a cut)."""
    if transition in ("cut", "", "none"):
        return ""
    name = TRANSITIONS.get(transition, transition)
    if name not in XFADE_NAMES:
        raise NovelcomicError(f"unknown transition {transition!r} after shot {shot_id}", field="transition")
    return name


def plan_boundaries(timeline: Timeline, frames: Sequence[int]) -> list[Boundary]:
    """One :class:`Boundary` per cut, each transition capped at half of either neighbouring clip."""
    out = []
    for i, clip in enumerate(timeline.clips[:-1]):
        name = xfade_name(clip.transition, clip.shot_id)
        wanted = round(timeline.transition_seconds * LONG_TRANSITIONS.get(name, 1.0) * timeline.fps)
        length = min(wanted, frames[i] // 2, frames[i + 1] // 2)
        if not name or length < 2:
            out.append(Boundary("", 0, 0))
        else:
            out.append(Boundary(name, (length + 1) // 2, length // 2))
    return out


def plan_segments(timeline: Timeline, image_hashes: dict[Path, str], video_hashes: dict[Path, str] | None = None) -> list[Segment]:
    """The ordered segments that make up the video (cues, ASS and keys are filled in later).
    ``video_hashes``: the content hash of each clip a timeline clip plays (``Clip.video``)."""
    frames = clip_frames(timeline)
    cut = Boundary("", 0, 0)
    bounds = [cut, *plan_boundaries(timeline, frames), cut]  # bounds[i] leads into clip i
    starts = [sum(frames[:i]) for i in range(len(frames))]
    # each still is visible from the start of the transition into it to the end of the one out of it
    shown = [(starts[i] - bounds[i].before, frames[i] + bounds[i].before + bounds[i + 1].after) for i in range(len(frames))]

    talks: dict[int, object] = {}

    def view(i: int, at: int) -> StillView:
        clip, (first, count) = timeline.clips[i], shown[i]
        video, video_hash, talk = clip.video, "", None
        if video is not None:
            video_hash = (video_hashes or {}).get(video.path) or sha256_file(video.path)
            if video.letters is not None and Path(video.letters).is_file():
                video_hash = hash_inputs(video_hash, sha256_file(video.letters))
        elif clip.talk is not None and clip.talk.figures:
            if i not in talks:
                from novelcomic.compose.talking import plan_talk

                talks[i] = plan_talk(clip.talk, first, count, timeline.fps)
            talk = talks[i]
        return StillView(clip.image, image_hashes[clip.image], clip.motion, timeline.fps, count, at - first, clip.motion_speed,
                         video, video_hash, talk)

    segments: list[Segment] = []
    for i in range(len(frames)):
        into, out_of = bounds[i], bounds[i + 1]
        if into.xfade:
            at = starts[i] - into.before
            segments.append(Segment("xfade", at, into.frames, view(i - 1, at), view(i, at), into.xfade))
        body_start = starts[i] + into.after
        body = Segment("body", body_start, frames[i] - into.after - out_of.before, view(i, body_start))
        body.effect = (timeline.clips[i].effect or "") if timeline.clips[i].video is None else ""  # a clip moves by itself
        segments.append(body)
    return segments


def segment_cues(laid_out: Sequence[Cue], start: float, end: float) -> list[Cue]:
    """The cues showing during [start, end), shifted so the segment starts at zero and clipped to it."""
    out = []
    for cue in laid_out:
        if cue.end > start and cue.start < end:
            words = [(a - start, b - start, w) for a, b, w in cue.words]
            out.append(replace(cue, start=max(0.0, cue.start - start), end=min(cue.end, end) - start, words=words))
    return out


# --------------------------------------------------------------------------- the ffmpeg graphs


def feeder_args(seg: Segment, width: int, height: int, fps: int, effect_input: Path | None = None) -> list[str] | None:
    """ffmpeg's arguments to make ``seg``'s frames (raw yuv420p on stdout), built by ffmpeg-python;
    None when the drawn frames are the segment's frames already (a body without an effect, or a
    transition :mod:`novelcomic.compose.draw` blends itself).

    Any other transition's input is its two sides stacked on stdin: the graph splits and blends
    them with ``xfade``. An effect's input is ``effect_input``, moviepy's
    lossless RGB rendering, converted to BT.709 limited-range yuv420p and padded or cut to length.
    """
    import ffmpeg  # ffmpeg-python: only builds the argument list

    if effect_input is not None:
        v = (ffmpeg.input(str(effect_input)).video
             .filter("scale", out_color_matrix="bt709", out_range="tv").filter("format", "yuv420p")
             .filter("settb", f"1/{fps}").filter("setpts", "N")
             .filter("tpad", stop=-1, stop_mode="clone").filter("trim", end_frame=seg.frames).filter("setpts", "N"))
    elif not blends_here(seg):
        raw = ffmpeg.input("pipe:", f="rawvideo", pix_fmt="yuv420p", s=f"{width}x{height * 2}", framerate=fps).video
        sides = raw.split()
        a = sides[0].crop(0, 0, width, height).filter("setsar", 1)
        b = sides[1].crop(0, height, width, height).filter("setsar", 1)
        v = ffmpeg.filter([a, b], "xfade", transition=seg.transition, duration=f"{seg.frames / fps:.6f}", offset=0)
        v = v.filter("setpts", "N").filter("format", "yuv420p")
    else:
        return None
    return ffmpeg.output(v, "pipe:", f="rawvideo", pix_fmt="yuv420p", **{"frames:v": seg.frames}).get_args()


def encoder_args(
    width: int, height: int, fps: int, frames: Sequence[int], ass_file: str | None, fontsdir: Path | None,
    pattern: str, segment_list: str, video_args: Sequence[str],
) -> list[str]:
    """ffmpeg's arguments for one encoder that turns a batch of segments into segment files, built by ffmpeg-python.

    The frames of the segments come in one after another on stdin as raw yuv420p; subtitles are
    burned in (``ass``, the batch's cues) and the colour tags set; each segment starts with a
    forced IDR frame and the ``segment`` muxer writes it to its own MP4 (``pattern``, numbered from
    0), listing each file in ``segment_list`` (CSV) once it is closed. ``video_args`` are the
    encoder's, shared by every segment so they join with ``-c copy``.
    """
    import ffmpeg  # ffmpeg-python: only builds the argument list

    v = ffmpeg.input("pipe:", f="rawvideo", pix_fmt="yuv420p", s=f"{width}x{height}", framerate=fps).video.filter("setsar", 1)
    if ass_file:
        opts = {"filename": ass_file}
        if fontsdir:
            opts["fontsdir"] = str(fontsdir)
        v = v.filter("ass", **opts)
    v = v.filter("format", "yuv420p").filter(
        "setparams", colorspace="bt709", color_primaries="bt709", color_trc="bt709", range="tv"
    )
    starts = [sum(frames[:i]) for i in range(1, len(frames))]
    options: dict[str, object] = {
        "f": "segment", "segment_format": "mp4", "segment_format_options": f"video_track_timescale={fps * 512}",
        "reset_timestamps": 1, "segment_list": segment_list, "segment_list_type": "csv", "an": None,
        "frames:v": sum(frames),
    }
    if starts:
        options["segment_frames"] = ",".join(map(str, starts))
        # times, not an expression (ffmpeg's evaluator gives up on long ones, ~100 terms); a frame
        # is forced when its time reaches the listed one, so each is rounded *down* to the µs
        micros = [n * 1_000_000 // fps for n in starts]
        options["force_key_frames"] = ",".join(f"{us // 1_000_000}.{us % 1_000_000:06d}" for us in micros)
    args = ffmpeg.output(v, pattern, **options).get_args()
    return [*args[:-1], *video_args, args[-1]]


def plan_batches(todo: Sequence[Segment], workers: int) -> list[list[Segment]]:
    """Split the segments to render (in timeline order) into at most ``workers`` runs of about equal
    work, each encoded by one long-lived encoder (starting an H.264 encoder per segment costs more
    than its short segments take to encode). A transition counts double: two stills are drawn."""
    if not todo:
        return []
    n = max(1, min(workers, len(todo)))
    cost = [s.frames * (2 if s.b is not None else 1) for s in todo]
    total = sum(cost)
    batches: list[list[Segment]] = [[]]
    done = 0
    for seg, c in zip(todo, cost):
        if batches[-1] and len(batches) < n and done >= total * len(batches) / n:
            batches.append([])
        batches[-1].append(seg)
        done += c
    return batches


def shift_cues(cues: Sequence[Cue], by: float) -> list[Cue]:
    """``cues`` moved ``by`` seconds later (with their word timings)."""
    return [replace(c, start=c.start + by, end=c.end + by, words=[(a + by, b + by, w) for a, b, w in c.words]) for c in cues]


# --------------------------------------------------------------------------- the composer


#: x264's presets, and NVENC's (p1…p7 and its older names).
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo",
           "p1", "p2", "p3", "p4", "p5", "p6", "p7", "default", "hp", "hq", "bd", "ll", "llhq", "llhp", "lossless")


def _number(value: object, name: str, kind: type, lo: float, hi: float, unit: str = "") -> Any:
    """``value`` as ``kind`` within ``lo``..``hi``, else one line naming the option and the value."""
    try:
        if isinstance(value, bool):
            raise ValueError
        number = kind(value)
        if kind is int and float(value) != number:
            raise ValueError
    except (TypeError, ValueError):
        raise NovelcomicError(f"{name} must be a number {lo:g}..{hi:g}{unit}, got {value!r}",
                              field=f"stages.compose.options.{name}") from None
    if not lo <= number <= hi:
        raise NovelcomicError(f"{name} must be {lo:g}..{hi:g}{unit}, got {value!r}", field=f"stages.compose.options.{name}")
    return number


class FFmpegComposer:
    """Compose chapters with ffmpeg (see the module docstring).

    Options (``stages.compose.options`` in project.yaml):

    - ``encoder``: ``auto`` (NVENC when ffmpeg has it and a trial encode works, else libx264),
      ``libx264`` or ``h264_nvenc``; ``preset`` (``veryfast``, libx264 only), ``crf`` (23; NVENC's
      ``-cq``), ``threads`` (0 = ffmpeg's choice, per encode), ``extra_video_args`` (appended to
      each segment encode);
    - ``subtitle_mode``: ``burn`` (into the picture), ``track`` (a soft mov_text track) or ``both``;
      ``subtitles.burn_in: false`` in project.yaml turns burning off whatever the mode;
    - ``karaoke``: light each word as it is spoken, when the voice backend gave word timings;
    - ``max_workers``: segments encoded at once (default: CPU count);
    - ``audio_bitrate`` (``192k``), ``loudness`` (−16 LUFS), ``true_peak`` (−1.5 dBTP);
    - ``music_cache_dir``: where generated mood loops are kept (default: ``music.cache`` beside
      the chapter work dirs, shared by chapters).

    After :meth:`compose`, ``rendered`` and ``reused`` name the segment files encoded and reused.
    """

    name = "ffmpeg"

    def __init__(
        self,
        preset: str = "veryfast",
        crf: int = 23,
        encoder: str = "auto",
        threads: int = 0,
        max_workers: int | None = None,
        audio_bitrate: str = "192k",
        loudness: float = -16.0,
        true_peak: float = -1.5,
        music_cache_dir: str | None = None,
        extra_video_args: list[str] | None = None,
        subtitle_mode: str = "burn",
        karaoke: bool = False,
    ) -> None:
        if encoder not in ENCODERS:
            raise NovelcomicError(
                f"encoder must be one of {', '.join(ENCODERS)}, got {encoder!r}", field="stages.compose.options.encoder"
            )
        if subtitle_mode not in SUBTITLE_MODES:
            raise NovelcomicError(
                f"subtitle_mode must be one of {', '.join(SUBTITLE_MODES)}, got {subtitle_mode!r}",
                field="stages.compose.options.subtitle_mode",
            )
        crf = _number(crf, "crf", int, 0, 51)
        threads = _number(threads, "threads", int, 0, 256)
        if max_workers is not None:
            max_workers = _number(max_workers, "max_workers", int, 1, 256)
        loudness = _number(loudness, "loudness", float, -70, -5, " LUFS")
        true_peak = _number(true_peak, "true_peak", float, -9, 0, " dBTP")
        if preset not in PRESETS:
            raise NovelcomicError(f"preset must be one of {', '.join(PRESETS)}, got {preset!r}",
                                  field="stages.compose.options.preset")
        if not isinstance(audio_bitrate, str) or not re.fullmatch(r"\d{2,3}k", audio_bitrate):
            raise NovelcomicError(f"audio_bitrate must look like 192k (32k..320k), got {audio_bitrate!r}",
                                  field="stages.compose.options.audio_bitrate")
        self.preset = preset
        self.crf = int(crf)
        self.encoder = encoder
        self.threads = int(threads)
        self.max_workers = int(max_workers) if max_workers else (os.cpu_count() or 1)
        self.audio_bitrate = audio_bitrate
        self.loudness = float(loudness)
        self.true_peak = float(true_peak)
        self.music_cache_dir = Path(music_cache_dir).expanduser() if music_cache_dir else None
        self.extra_video_args = [str(a) for a in (extra_video_args or [])]
        self.subtitle_mode = subtitle_mode
        self.karaoke = bool(karaoke)
        self.rendered: list[str] = []
        self.reused: list[str] = []

    # ------------------------------------------------------------------ public

    def compose(self, request: ComposeRequest) -> ComposeResult:
        """Render ``request.timeline`` into ``request.out_video`` and ``request.out_srt``."""
        tl = request.timeline
        check_request(request)
        seg_dir = request.work_dir / SEGMENT_DIR
        seg_dir.mkdir(parents=True, exist_ok=True)
        warnings: list[str] = []
        font = self._subtitle_font(request)
        if self.karaoke and font and tl.cues and not any(c.words for c in tl.cues):
            warnings.append("karaoke: true lights nothing up here: the voice backend gave no word timings "
                            "(edge-tts gives them; espeak and silent do not)")

        runs = audiomix.mood_runs(_clip_moods(tl))
        music = self._music_sources(request, {r.mood for r in runs}, warnings) if request.music.enabled else {}

        segments = self._plan(request, font)
        # the soundtrack is mixed (one ffmpeg, one core at most) while the segments are drawn
        with ThreadPoolExecutor(max_workers=1) as side:
            mixing = side.submit(self._soundtrack, request, runs, music, seg_dir)
            self._render_all(segments, seg_dir, request, font)  # on failure, leaving the block waits for the mix
            audio = mixing.result()
        track = self.subtitle_mode in ("track", "both") and bool(tl.cues)
        # the .srt and the .mp4 are replaced together (the .mp4 first, the .srt right after): a run
        # killed before leaves both old ones, never a new .srt beside an old video
        with atomic_path(request.out_srt) as srt_tmp:
            write_srt(tl.cues, srt_tmp)
            with atomic_path(request.out_video) as tmp:
                self._concat_and_mux(segments, audio, tmp, seg_dir, srt_tmp if track else None, request.language)
        remove_stale(seg_dir, {s.filename for s in segments} | {audio.name})
        duration = sum(clip_frames(tl)) / tl.fps
        title = request.title or request.out_video.stem
        cover = write_cover(tl, request.out_video.with_suffix(".cover.jpg"), title, request.subtitles.font) if request.cover else None
        otio_path = None
        if request.otio:
            from novelcomic.compose.otio_export import export_otio

            otio_path = export_otio(
                tl, request.out_video.with_suffix(".otio"), title=title, video=request.out_video,
                segments=[(s.start, s.frames, seg_dir / s.filename) for s in segments],
            )
        return ComposeResult(
            video=request.out_video, srt=request.out_srt, duration=duration, warnings=warnings,
            cover=cover, otio=otio_path, subtitle_track=track, encoder=self.resolved_encoder(),
        )

    def resolved_encoder(self) -> str:
        """The encoder segments are made with (``auto`` resolved on this machine)."""
        return pick_h264_encoder() if self.encoder == "auto" else self.encoder

    def plan(self, request: ComposeRequest) -> list[Segment]:
        """The segments :meth:`compose` would use for ``request``, with their file names (no I/O
        besides hashing the images)."""
        check_request(request)
        return self._plan(request, self._subtitle_font(request))

    def _subtitle_font(self, request: ComposeRequest) -> FontInfo | None:
        """The font to burn subtitles in with, or None when nothing is burned in."""
        if self.subtitle_mode not in ("burn", "both"):
            return None
        return _subtitle_font(request)

    # ------------------------------------------------------------------ video

    def _plan(self, request: ComposeRequest, font: FontInfo | None) -> list[Segment]:
        tl = request.timeline
        hashes = {img: sha256_file(img) for img in {c.image for c in tl.clips}}
        videos = {c.video.path: sha256_file(c.video.path) for c in tl.clips if c.video is not None}
        segments = plan_segments(tl, hashes, videos)
        laid = layout_cues(tl.cues, tl.width, tl.height, self._font_size(request), request.language) if font else []
        for seg in segments:
            seg.cues = segment_cues(laid, seg.start / tl.fps, (seg.start + seg.frames) / tl.fps)
            if seg.cues and font:
                seg.ass = self._ass(request, font, seg.cues)
            seg.key = hash_inputs(
                RENDER_VERSION, seg.kind, seg.frames, tl.width, tl.height, tl.fps, seg.effect,
                seg.a.key(), seg.b.key() if seg.b else None, seg.transition,
                seg.ass, str(font.path) if seg.ass and font else None, self._video_args(tl.fps),
                Path(ffmpeg_exe()).name,  # imageio-ffmpeg's binary is named by version
            )
        return segments

    def _video_args(self, fps: int) -> list[str]:
        """Encoder arguments shared by every segment (they must match for ``-c copy`` joins)."""
        encoder = self.resolved_encoder()
        args = ["-c:v", encoder]
        if encoder == "libx264":
            args += ["-preset", self.preset, "-crf", str(self.crf), "-profile:v", "high"]
        elif encoder == "h264_nvenc":
            args += ["-preset", "p5", "-rc", "vbr", "-cq", str(self.crf), "-b:v", "0", "-profile:v", "high"]
        args += [
            "-pix_fmt", "yuv420p", "-r", str(fps), "-forced-idr", "1",
            "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709", "-color_range", "tv",
        ]
        return args + self.extra_video_args

    def _font_size(self, request: ComposeRequest) -> int:
        tl = request.timeline
        return request.subtitles.font_size or default_font_size(tl.width, tl.height)

    def _ass(self, request: ComposeRequest, font: FontInfo, cues: Sequence[Cue]) -> str:
        """The ASS script burning in ``cues`` (laid out, times relative to where the script starts)."""
        tl = request.timeline
        return ass_document(cues, tl.width, tl.height, font.family, self._font_size(request), request.language, self.karaoke)

    def _render_all(self, segments: list[Segment], seg_dir: Path, request: ComposeRequest, font: FontInfo | None) -> None:
        """Render the segments whose files are missing: in batches, one per worker, in parallel."""
        todo: dict[str, Segment] = {}
        self.rendered, self.reused = [], []
        for seg in segments:
            if (seg_dir / seg.filename).is_file():
                self.reused.append(seg.filename)
            elif seg.filename not in todo:
                todo[seg.filename] = seg
        if not todo:
            return
        batches = plan_batches(list(todo.values()), self.max_workers)
        # x264 is most efficient single-threaded; parallelism comes from the batches
        threads = self.threads or max(1, (os.cpu_count() or 1) // len(batches))
        cache = PlaneCache()  # prepared stills, shared by the segments a still appears in
        with ThreadPoolExecutor(max_workers=len(batches)) as pool:
            futures = [pool.submit(self._render_batch, batch, seg_dir, request, font, cache, threads) for batch in batches]
            try:
                for fut in futures:
                    fut.result()
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
        self.rendered = list(todo)

    def _render_batch(
        self, batch: list[Segment], seg_dir: Path, request: ComposeRequest, font: FontInfo | None, cache: PlaneCache,
        threads: int,
    ) -> None:
        """Encode ``batch`` with one encoder; each segment file is moved into ``seg_dir`` as soon as
        the encoder has closed it, so a killed run keeps what was finished."""
        tl = request.timeline
        with tempfile.TemporaryDirectory(prefix=".batch-", dir=seg_dir) as tmp:
            scratch = Path(tmp)
            offsets = [sum(s.frames for s in batch[:i]) for i in range(len(batch))]
            cues = [c for seg, at in zip(batch, offsets) for c in shift_cues(seg.cues, at / tl.fps)] if font else []
            ass_file = None
            if cues and font:
                (scratch / "cues.ass").write_text(self._ass(request, font, cues), encoding="utf-8")
                ass_file = "cues.ass"
            args = encoder_args(
                tl.width, tl.height, tl.fps, [s.frames for s in batch], ass_file, font.path.parent if font else None,
                "part%05d.mp4", "parts.csv", [*self._video_args(tl.fps), "-threads", str(threads)],
            )
            moved: set[int] = set()

            def collect(finished: bool, salvage: bool = False) -> None:
                """Move the segment files the encoder has listed (all of them once it has exited;
                before that, all but the newest, which may still be being flushed). ``salvage``:
                after a failure, keep the complete ones and leave the one cut short."""
                listing = scratch / "parts.csv"
                rows = listing.read_text(encoding="utf-8").splitlines(keepends=True) if listing.is_file() else []
                names = [r.split(",", 1)[0] for r in rows if r.endswith("\n")]
                for name in names if finished else names[:-1]:
                    i = int(name[len("part"):-len(".mp4")])
                    if i in moved or i >= len(batch):
                        continue
                    if salvage and mp4_video_frames(scratch / name) != batch[i].frames:
                        continue
                    _check_frame_count(scratch / name, batch[i])
                    os.replace(scratch / name, seg_dir / batch[i].filename)
                    moved.add(i)

            what = _describe(batch[0]) if len(batch) == 1 else f"encoding {len(batch)} segments, from {_describe(batch[0])}"
            failure: Exception | None = None
            with FFmpegWriter(args, what, cwd=scratch) as encoder:
                for seg in batch:
                    try:
                        self._feed(seg, encoder, scratch, tl, cache)
                    except Exception as exc:  # the encoder finishes what it has; a dead encoder reports itself
                        failure = exc
                        break
                    collect(finished=False)
            collect(finished=True, salvage=failure is not None)
            if failure is not None:
                raise failure
            missing = [batch[i] for i in range(len(batch)) if i not in moved]
            if missing:
                raise BackendError(f"the encoder wrote no file for {_describe(missing[0])}")

    def _feed(self, seg: Segment, encoder: FFmpegWriter, scratch: Path, tl: Timeline, cache: PlaneCache) -> None:
        """Send ``seg``'s frames into ``encoder``: drawn frames directly; a transition's or an
        effect's through an ffmpeg that writes its output straight into the encoder."""
        if seg.effect:
            from novelcomic.compose.effects import render_effect_frames

            drawn = scratch / "effect.mkv"
            render_effect_frames(seg.a.image, tl.width, tl.height, tl.fps, seg.frames, seg.a.box_at, seg.effect, drawn)
            args = feeder_args(seg, tl.width, tl.height, tl.fps, effect_input=drawn)
            assert args is not None
            encoder.flush()
            run_ffmpeg(args, _describe(seg), cwd=scratch, stdout=encoder.stdin)
            drawn.unlink()
            return
        frames = segment_frames(seg, tl.width, tl.height, cache, scratch)
        args = feeder_args(seg, tl.width, tl.height, tl.fps)
        if args is None:
            for frame in frames:
                encoder.write(frame)
        else:
            encoder.flush()
            feed_ffmpeg(args, frames, _describe(seg), cwd=scratch, stdout=encoder.stdin)

    def _concat_and_mux(
        self, segments: list[Segment], audio: Path, out: Path, seg_dir: Path, srt: Path | None = None, language: str = "zh"
    ) -> None:
        listing = "ffconcat version 1.0\n" + "".join(f"file '{s.filename}'\n" for s in segments)
        with tempfile.NamedTemporaryFile("w", suffix=".ffconcat", prefix=".concat-", dir=seg_dir, delete=False) as fh:
            fh.write(listing)
        subs: list[str] = []
        if srt is not None:
            subs = ["-i", str(srt), "-map", "2:s:0", "-c:s", "mov_text",
                    "-metadata:s:s:0", f"language={ISO639_2.get(language, 'und')}"]
        try:
            run_ffmpeg(
                ["-f", "concat", "-safe", "0", "-i", fh.name, "-i", str(audio), *subs[:2], "-map", "0:v:0", "-map", "1:a:0",
                 *subs[2:], "-c:v", "copy", "-c:a", "copy", "-movflags", "+faststart", "-f", "mp4", str(out)],
                "joining the segments and muxing the soundtrack",
            )
        finally:
            Path(fh.name).unlink(missing_ok=True)

    # ------------------------------------------------------------------ audio

    def _mix_settings(self, request: ComposeRequest) -> audiomix.MixSettings:
        return audiomix.MixSettings(
            music_db=request.music.volume_db, loudness=self.loudness, true_peak=self.true_peak, bitrate=self.audio_bitrate
        )

    def _soundtrack(
        self, request: ComposeRequest, runs: list[audiomix.MoodRun], sources: dict[str, Path], seg_dir: Path
    ) -> Path:
        """The mixed AAC soundtrack, from cache when its inputs are unchanged.

        ``runs`` are the chapter's mood stretches, ``sources`` each mood's music file (empty: no music).
        """
        tl = request.timeline
        duration = sum(clip_frames(tl)) / tl.fps
        placements = [(start, Path(p)) for clip in tl.clips for start, p in clip.audio]
        settings = self._mix_settings(request)
        key = hash_inputs(
            "audio", RENDER_VERSION, round(duration, 6), [(round(s, 6), sha256_file(p)) for s, p in placements],
            [(r.mood, round(r.start, 6), round(r.end, 6)) for r in runs] if sources else None,
            {m: sha256_file(p) for m, p in sorted(sources.items())}, settings.__dict__,
        )
        out = seg_dir / f"audio-{key}.m4a"
        if out.is_file():
            return out
        with tempfile.TemporaryDirectory(prefix=".mix-", dir=seg_dir) as tmp:
            scratch = Path(tmp)
            rate = audiomix.voice_rate([p for _, p in placements])
            voice = audiomix.write_voice_track(placements, duration, rate, settings.speech_db, scratch / "voice.wav", scratch)
            music_wav = None
            if sources:
                loops: dict[str, np.ndarray] = {}

                def loop_for(mood: str) -> np.ndarray:
                    if mood not in loops:
                        raw = audiomix.load_audio(sources[mood], audiomix.MUSIC_RATE, scratch, channels=2)
                        loops[mood] = audiomix.stereo_loop(raw)
                    return loops[mood]

                music_wav = audiomix.write_music_track(runs, loop_for, duration, settings, scratch / "music.wav")
            audiomix.mix_to_aac(voice, music_wav, out, duration, settings, scratch)
        return out

    def _music_sources(self, request: ComposeRequest, moods: set[str], warnings: list[str]) -> dict[str, Path]:
        """mood → audio file: the project's own track when configured, else a generated loop."""
        sources: dict[str, Path] = {}
        missing = []
        for mood in sorted(moods):
            track = request.music.tracks.get(mood)
            if track:
                path = Path(track).expanduser()
                if request.project_dir is not None:  # no file from outside the project (novelcomic.paths)
                    from novelcomic.paths import resolve_user_path

                    path = resolve_user_path(track, request.project_dir, f"music.tracks.{mood}")
                if not path.is_file():
                    raise NovelcomicError(
                        f"music track {track!r} for mood {mood!r} not found ({path})", field=f"music.tracks.{mood}"
                    )
                sources[mood] = path
            else:
                missing.append(mood)
        if missing:
            try:
                from novelcomic.music import ensure_loop
            except ImportError:
                warnings.append(f"no background music for {', '.join(missing)}: novelcomic.music is not available")
                return sources
            cache = self.music_cache_dir or request.work_dir.parent / "music.cache"
            cache.mkdir(parents=True, exist_ok=True)
            for mood in missing:
                sources[mood] = Path(ensure_loop(mood, cache, sample_rate=audiomix.MUSIC_RATE))
        return sources


# --------------------------------------------------------------------------- helpers


def pick_h264_encoder() -> str:
    """``h264_nvenc`` when ffmpeg lists it and a one-frame trial encode works, else ``libx264``."""
    from novelcomic.ffmpeg import encoder_works

    return "h264_nvenc" if encoder_works("h264_nvenc") else "libx264"


def write_cover(tl: Timeline, path: Path, title: str, font: str | None = None) -> Path:
    """The chapter's cover: the first shot's still, cover-scaled to the frame, with ``title``
    lettered large in the upper third (a CJK font, wrapped, outlined). Written atomically as JPEG."""
    from PIL import Image, ImageDraw

    from novelcomic.fonts import pil_font

    w, h = tl.width, tl.height
    with Image.open(tl.clips[0].image) as im:
        im = im.convert("RGB")
        scale = max(w / im.width, h / im.height)
        size = (max(w, round(im.width * scale)), max(h, round(im.height * scale)))
        im = im.resize(size, Image.LANCZOS)
        left, top = (size[0] - w) // 2, (size[1] - h) // 2
        cover = im.crop((left, top, left + w, top + h))
    shade = Image.new("L", (w, h), 0)
    ImageDraw.Draw(shade).rectangle([0, int(h * 0.12), w, int(h * 0.45)], fill=110)
    cover = Image.composite(Image.new("RGB", (w, h), (0, 0, 0)), cover, shade)
    size_px = max(16, round(min(w, h) * 0.11))
    pil = pil_font(size_px, font)
    draw = ImageDraw.Draw(cover)
    from novelcomic.compose.subtitles import wrap_text

    units = max(4, int(w * 0.84 / (size_px * 0.5)))
    lines = wrap_text(title, units) or [title]
    stroke = max(2, size_px // 12)
    line_h = round(size_px * 1.3)
    y = int(h * 0.285) - line_h * len(lines) // 2
    for line in lines:
        draw.text((w / 2, y), line, font=pil, fill=(255, 248, 230), anchor="ma", stroke_width=stroke, stroke_fill=(0, 0, 0))
        y += line_h
    with atomic_path(path) as tmp:
        cover.save(tmp, "JPEG", quality=90)
    return path


ISO639_2 = {"zh": "chi", "en": "eng"}


def _check_frame_count(path: Path, seg: Segment) -> None:
    """A segment must hold exactly its frames, or the joined video would drift."""
    count = mp4_video_frames(path)
    if count != seg.frames:
        raise BackendError(f"{_describe(seg)} produced {count} frames instead of {seg.frames}")


def _subtitle_font(request: ComposeRequest) -> FontInfo | None:
    """The font to burn subtitles in with, or None when nothing is burned in."""
    if not request.subtitles.burn_in or not request.timeline.cues:
        return None
    return find_cjk_font(request.subtitles.font)


def _describe(seg: Segment) -> str:
    if seg.effect:
        return f"rendering {seg.a.image.name} with the {seg.effect} effect ({seg.frames} frames)"
    if seg.b is not None:
        return f"rendering the {seg.transition} transition from {seg.a.image.name} to {seg.b.image.name} ({seg.frames} frames)"
    return f"rendering {seg.a.image.name} with {seg.a.motion} ({seg.frames} frames)"


def _clip_moods(tl: Timeline) -> list[tuple[str, float, float]]:
    frames = clip_frames(tl)
    out, start = [], 0
    for clip, n in zip(tl.clips, frames):
        out.append((clip.mood, start / tl.fps, (start + n) / tl.fps))
        start += n
    return out


def check_request(request: ComposeRequest) -> None:
    """Refuse bad input up front, naming the bad value."""
    tl = request.timeline
    if not tl.clips:
        raise NovelcomicError("the timeline has no clips: nothing to compose")
    if tl.width < 64 or tl.height < 64 or tl.width % 2 or tl.height % 2:
        raise NovelcomicError(f"video size {tl.width}x{tl.height} must be even numbers of at least 64 pixels", field="resolution")
    if not isinstance(tl.fps, int) or not 1 <= tl.fps <= 120:
        raise NovelcomicError(f"fps must be a whole number from 1 to 120, got {tl.fps!r}", field="fps")
    if not math.isfinite(tl.transition_seconds) or tl.transition_seconds < 0:
        raise NovelcomicError(f"transition_seconds must be ≥ 0, got {tl.transition_seconds!r}", field="transition_seconds")
    start = 0
    for clip, frames in zip(tl.clips, clip_frames(tl)):
        _check_clip(clip)
        if abs(clip.start - start / tl.fps) > 0.5 / tl.fps:
            raise NovelcomicError(
                f"shot {clip.shot_id} starts at {clip.start:.3f}s but the clips before it end at {start / tl.fps:.3f}s "
                "(clips play back to back)"
            )
        start += frames


def _check_clip(clip: Clip) -> None:
    if not Path(clip.image).is_file():
        raise NovelcomicError(f"image {clip.image} of shot {clip.shot_id} does not exist")
    if clip.video is not None:
        v = clip.video
        if not Path(v.path).is_file():
            raise NovelcomicError(f"clip {v.path} of shot {clip.shot_id} does not exist")
        if not (math.isfinite(v.fps) and v.fps > 0 and v.frames >= 1):
            raise NovelcomicError(f"clip {v.path} of shot {clip.shot_id} has a bad fps {v.fps!r} or frame count {v.frames!r}")
        if v.fill not in ("slow", "hold"):
            raise NovelcomicError(f"clip fill must be slow or hold, got {v.fill!r}")
    if not math.isfinite(clip.duration) or clip.duration <= 0:
        raise NovelcomicError(f"shot {clip.shot_id} has a bad duration {clip.duration!r}")
    if clip.motion not in MOTIONS:
        raise NovelcomicError(f"shot {clip.shot_id} has an unknown motion {clip.motion!r} (known: {', '.join(MOTIONS)})")
    xfade_name(clip.transition, clip.shot_id)
    if clip.effect:
        from novelcomic.compose.effects import ensure_builtin_effects
        from novelcomic.registry import effects

        ensure_builtin_effects()
        effects.factory(clip.effect)  # an unknown name raises, listing the known ones
    for start, path in clip.audio:
        if not Path(path).is_file():
            raise NovelcomicError(f"audio {path} of shot {clip.shot_id} does not exist")
        if not math.isfinite(start) or start < 0:
            raise NovelcomicError(f"audio {path} of shot {clip.shot_id} has a bad start {start!r}")


def remove_stale(seg_dir: Path, keep: set[str]) -> list[str]:
    """Delete this chapter's segment/soundtrack files not in ``keep`` and any half-written leftovers."""
    removed = []
    for path in seg_dir.iterdir():
        name = path.name
        if path.is_dir() and name.startswith((".ass-", ".mix-")):  # scratch of a killed run
            shutil.rmtree(path, ignore_errors=True)
            removed.append(name)
            continue
        ours = (name.startswith("seg-") and name.endswith(".mp4")) or (name.startswith("audio-") and name.endswith(".m4a"))
        leftover = name.startswith(".") and (".part" in name or name.startswith(".concat-"))
        if path.is_file() and ((ours and name not in keep) or leftover):
            path.unlink(missing_ok=True)
            removed.append(name)
    return removed


__all__ = ["FFmpegComposer", "write_cover", "pick_h264_encoder", "Segment", "StillView", "plan_segments", "segment_cues", "check_request", "remove_stale"]
