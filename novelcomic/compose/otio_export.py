"""A chapter's timeline as OpenTimelineIO, for finishing it in an editor (DaVinci Resolve, Premiere
via adapters, Kdenlive, OTIO's own viewer).

- track "Video": one clip per shot, referencing the shot's still, lasting its whole frames, with its
  camera move, mood, transition and effect in ``metadata["novelcomic"]``; non-cut transitions are
  OTIO transitions centred on the cut (as the composer draws them);
- track "Voice": the line WAVs at their positions (gaps between them);
- markers on the video track: one per subtitle cue, named with its text;
- track "Music" (when given, as ``novelcomic export NAME --to otio`` does): the chapter's music bed
  as one clip from 0 s, its mix level in ``metadata["novelcomic"]["volume_db"]``;
- subtitle markers on the timeline itself (its stack: editors show them on the ruler), one per
  cue, named with the text as shown (speaker's name in front of dialogue), with the speaker and
  word timings in their metadata; the SRT file is named in the timeline's metadata;
- the rendered segment files and the composed MP4 are listed in the timeline's metadata.

Times are rational at the video's frame rate (audio positions keep their fractional frames).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from novelcomic.compose.base import Timeline
from novelcomic.fsutil import atomic_write_text

if TYPE_CHECKING:
    from novelcomic.project import Project


@dataclass(frozen=True)
class MusicClip:
    """Background music on the timeline: ``path`` plays from ``start`` for ``duration`` seconds at
    ``volume_db`` (the composer's level before ducking)."""

    path: Path
    start: float
    duration: float
    volume_db: float = 0.0


def export_otio(
    tl: Timeline,
    path: Path,
    *,
    title: str = "",
    video: Path | None = None,
    segments: Sequence[tuple[int, int, Path]] = (),
    music: Sequence[MusicClip] = (),
    srt: Path | None = None,
    language: str | None = None,
) -> Path:
    """Write ``tl`` as an ``.otio`` file at ``path`` (atomically) and return the path.

    ``segments`` are (first frame, frame count, file) of the composer's segments, kept as metadata.
    ``music``: clips of a "Music" track; ``srt``: the subtitle file named in the metadata;
    ``language`` decides how a speaker's name is put in front of dialogue in the subtitle markers
    (default: ``zh`` for a cue with Chinese characters, else ``en``).
    """
    from novelcomic.compose.subtitles import display_text

    import opentimelineio as otio

    from novelcomic.audio import wav_duration
    from novelcomic.compose.ffmpeg_composer import clip_frames, plan_boundaries

    fps = tl.fps
    here = Path(path).resolve().parent

    def url(file: str | Path) -> str:
        """A media file relative to the .otio (POSIX), so the project can be copied or moved;
        an absolute file URL only for a file on another drive."""
        target = Path(file).resolve()
        try:
            return Path(os.path.relpath(target, here)).as_posix()
        except ValueError:  # pragma: no cover - Windows, another drive
            return target.as_uri()

    def rt(frames: float) -> otio.opentime.RationalTime:
        return otio.opentime.RationalTime(frames, fps)

    timeline = otio.schema.Timeline(name=title or path.stem)
    timeline.metadata["novelcomic"] = {
        "width": tl.width, "height": tl.height, "fps": fps, "transition_seconds": tl.transition_seconds,
        "video": url(video) if video else None,
        "segments": [{"start_frame": s, "frames": n, "file": url(f)} for s, n, f in segments],
        "subtitles": url(srt) if srt else None,
    }
    frames = clip_frames(tl)
    bounds = plan_boundaries(tl, frames)
    vtrack = otio.schema.Track(name="Video", kind=otio.schema.TrackKind.Video)
    for i, (clip, n) in enumerate(zip(tl.clips, frames)):
        ref = otio.schema.ExternalReference(target_url=url(clip.image))
        item = otio.schema.Clip(name=clip.shot_id, media_reference=ref, source_range=otio.opentime.TimeRange(rt(0), rt(n)))
        item.metadata["novelcomic"] = {
            "motion": clip.motion, "motion_speed": clip.motion_speed, "mood": clip.mood,
            "transition": clip.transition, "effect": clip.effect, "start": clip.start,
        }
        vtrack.append(item)
        if i < len(bounds) and bounds[i].xfade:
            b = bounds[i]
            vtrack.append(otio.schema.Transition(
                name=clip.transition, transition_type=otio.schema.TransitionTypes.SMPTE_Dissolve,
                in_offset=rt(b.before), out_offset=rt(b.after), metadata={"novelcomic": {"xfade": b.xfade}},
            ))
    for cue in tl.cues:
        marker = otio.schema.Marker(
            name=cue.text, marked_range=otio.opentime.TimeRange(rt(cue.start * fps), rt((cue.end - cue.start) * fps)),
            color=otio.schema.MarkerColor.YELLOW if cue.is_narration else otio.schema.MarkerColor.GREEN,
            metadata={"novelcomic": {"speaker": cue.speaker, "speaker_name": cue.speaker_name}},
        )
        vtrack.markers.append(marker)

    atrack = otio.schema.Track(name="Voice", kind=otio.schema.TrackKind.Audio)
    at = 0.0  # in frames
    for start, wav in sorted((s, Path(p)) for c in tl.clips for s, p in c.audio):
        begin = start * fps
        if begin > at + 1e-6:
            atrack.append(otio.schema.Gap(source_range=otio.opentime.TimeRange(rt(0), rt(begin - at))))
            at = begin
        length = wav_duration(wav) * fps
        ref = otio.schema.ExternalReference(target_url=url(wav))
        atrack.append(otio.schema.Clip(name=wav.stem, media_reference=ref, source_range=otio.opentime.TimeRange(rt(0), rt(length))))
        at += length
    timeline.tracks.append(vtrack)
    timeline.tracks.append(atrack)
    if music:
        mtrack = otio.schema.Track(name="Music", kind=otio.schema.TrackKind.Audio)
        at = 0.0
        for m in sorted(music, key=lambda m: m.start):
            if m.start * fps > at + 1e-6:
                mtrack.append(otio.schema.Gap(source_range=otio.opentime.TimeRange(rt(0), rt(m.start * fps - at))))
                at = m.start * fps
            ref = otio.schema.ExternalReference(target_url=url(m.path))
            item = otio.schema.Clip(name=Path(m.path).stem, media_reference=ref,
                                    source_range=otio.opentime.TimeRange(rt(0), rt(m.duration * fps)))
            item.metadata["novelcomic"] = {"volume_db": m.volume_db}
            mtrack.append(item)
            at += m.duration * fps
        timeline.tracks.append(mtrack)
    for cue in tl.cues:
        timeline.tracks.markers.append(otio.schema.Marker(
            name=display_text(cue, language or ("zh" if any("\u4e00" <= ch <= "\u9fff" for ch in cue.text) else "en")),
            marked_range=otio.opentime.TimeRange(rt(cue.start * fps), rt((cue.end - cue.start) * fps)),
            color=otio.schema.MarkerColor.YELLOW if cue.is_narration else otio.schema.MarkerColor.GREEN,
            metadata={"novelcomic": {"kind": "subtitle", "text": cue.text, "speaker": cue.speaker,
                                     "speaker_name": cue.speaker_name, "words": [list(w) for w in cue.words]}},
        ))
    return atomic_write_text(path, otio.adapters.write_to_string(timeline, "otio_json"))


def export_chapter_otio(project: Project, chapter: str, out_dir: Path) -> Path:
    """``out_dir/<chapter>.otio`` for ``novelcomic export --to otio``: the compose stage's timeline
    with the music bed (written beside it as ``<chapter>.music.wav``) and subtitle markers."""
    from novelcomic.compose.jianying_export import chapter_cut, write_music_bed

    cut = chapter_cut(project, chapter)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    bed = write_music_bed(cut, out_dir / f"{chapter}.music.wav")
    music = [MusicClip(bed.path, 0.0, bed.duration, bed.volume_db)] if bed else []
    return export_otio(cut.timeline, out_dir / f"{chapter}.otio", title=cut.title,
                       video=cut.video if cut.video.is_file() else None, music=music,
                       srt=cut.srt if cut.srt.is_file() else None, language=cut.language)


__all__ = ["MusicClip", "export_chapter_otio", "export_otio"]
