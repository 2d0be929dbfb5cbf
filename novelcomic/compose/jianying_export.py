"""A chapter as a 剪映 (JianYing) draft, to finish the cut in 剪映 5.x.

One draft folder per chapter, self-contained, so that it can be moved into 剪映's drafts
directory on Windows or macOS::

    <out>/<project>-<chapter>/
        draft_content.json        the timeline (剪映 5.x plain JSON, written by pyJianYingDraft)
        draft_meta_info.json      the draft's name, id and length
        materials/images/         one still per shot
        materials/audio/          one WAV per spoken line
        materials/music/music.wav the chapter's background music, already laid out
        materials/subtitles/      the chapter's SRT (the same cues are the text track)

Tracks (bottom to top): ``shots`` (one photo segment per shot, its camera move as position and
scale keyframes), ``voice`` (one segment per spoken line), ``music`` (one segment), and
``subtitles`` (one text segment per cue, the speaker's name in front of dialogue).

Times are microseconds on the composer's own timeline (:func:`chapter_cut` rebuilds it exactly as
the compose stage does), so every shot, line and cue starts where it does in the MP4 and the draft
ends where the MP4 ends. Shot boundaries are the composer's whole frames, rounded to µs.

Paths: 剪映 stores an absolute ``path`` per material, which breaks when a draft is moved. Files
inside a draft's own folder are written with 剪映's draft-folder token,
``##_draftpath_placeholder_0E685133-18CE-45ED-8CB8-2904A212EC80_##/materials/…``, which 剪映 (and
CapCut) expand to wherever the draft folder is; the draft therefore stays valid when moved.

剪映 6 and later encrypt ``draft_content.json`` (and call it ``draft_info.json`` on macOS): the
target is 5.x, the plain format pyJianYingDraft writes.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from novelcomic.compose.base import Timeline
from novelcomic.errors import NovelcomicError
from novelcomic.fsutil import atomic_write_text
from novelcomic.models import MusicConfig

if TYPE_CHECKING:
    from novelcomic.project import Project

DRAFT_PATH_TOKEN = "##_draftpath_placeholder_0E685133-18CE-45ED-8CB8-2904A212EC80_##"
SEC = 1_000_000
TRACKS = ("shots", "voice", "music", "subtitles")
KEYFRAME_EVERY = 1.0  # seconds between camera keyframes (剪映 interpolates linearly in between)


# --------------------------------------------------------------------------- the chapter's cut


@dataclass
class ChapterCut:
    """What the compose stage composes for a chapter: its timeline and the settings it mixes with."""

    chapter: str
    title: str
    language: str
    timeline: Timeline
    music: MusicConfig
    music_cache_dir: Path
    project_dir: Path
    video: Path  # the chapter's MP4 (may not exist yet)
    srt: Path


def chapter_cut(project: Project, chapter: str) -> ChapterCut:
    """The chapter's timeline, rebuilt from the storyboard and the stored shots and lines exactly
    as :func:`novelcomic.pipeline.compose` builds it (blocked shots left out)."""
    from novelcomic.pipeline import chapter_material

    cfg = project.config()
    timeline = chapter_material(project, chapter).timeline  # the very timeline the composer cuts
    cache = cfg.stages.compose.options.get("music_cache_dir")
    return ChapterCut(
        chapter=chapter, title=cfg.chapter(chapter).title or chapter, language=cfg.language, timeline=timeline,
        music=cfg.music, music_cache_dir=Path(cache).expanduser() if cache else project.work_dir / "music.cache",
        project_dir=project.dir, video=project.video_path(chapter), srt=project.srt_path(chapter),
    )


@dataclass
class MusicBed:
    """The chapter's background music laid out as one file from 0 s, at full level; ``volume_db``
    is the level the composer mixes it at (before ducking under speech)."""

    path: Path
    duration: float
    volume_db: float


def write_music_bed(cut: ChapterCut, out: Path) -> MusicBed | None:
    """The music bed the composer mixes under the chapter (mood loops, crossfades, fades), written
    as a stereo WAV at ``out``; None when music is off."""
    if not cut.music.enabled:
        return None
    from novelcomic.compose import audiomix
    from novelcomic.compose.ffmpeg_composer import FFmpegComposer, _clip_moods, clip_frames
    from novelcomic.compose.base import ComposeRequest
    from novelcomic.fsutil import atomic_path

    tl = cut.timeline
    runs = audiomix.mood_runs(_clip_moods(tl))
    warnings: list[str] = []
    request = ComposeRequest(timeline=tl, out_video=cut.video, out_srt=cut.srt, work_dir=cut.music_cache_dir.parent / cut.chapter,
                             music=cut.music, project_dir=cut.project_dir)
    sources = FFmpegComposer(music_cache_dir=str(cut.music_cache_dir))._music_sources(request, {r.mood for r in runs}, warnings)
    if not sources:
        return None
    duration = sum(clip_frames(tl)) / tl.fps
    loops: dict[str, Any] = {}
    settings = audiomix.MixSettings(music_db=cut.music.volume_db)

    with atomic_path(out) as tmp, tempfile.TemporaryDirectory(prefix=".music-") as scratch_dir:
        scratch = Path(scratch_dir)

        def loop_for(mood: str) -> Any:
            if mood not in loops:
                loops[mood] = audiomix.stereo_loop(audiomix.load_audio(sources[mood], audiomix.MUSIC_RATE, scratch, channels=2))
            return loops[mood]

        audiomix.write_music_track(runs, loop_for, duration, settings, tmp)
    return MusicBed(out, duration, cut.music.volume_db)


# --------------------------------------------------------------------------- camera moves


@dataclass(frozen=True)
class CameraKey:
    """The still's placement at ``offset`` µs into its segment, in 剪映's units: ``scale`` (1 =
    fitted to the canvas) and position in half-canvas units (x right, y up)."""

    offset: int
    scale: float
    x: float
    y: float


def camera_keys(tl: Timeline, index: int, image_size: tuple[int, int]) -> list[CameraKey]:
    """Keyframes that follow clip ``index``'s camera move as the composer draws it: the window
    slides linearly over all frames the still is visible (transitions included); sampled every
    :data:`KEYFRAME_EVERY` seconds and at the segment's two ends. ``[]`` for a static shot."""
    from novelcomic.compose.ffmpeg_composer import clip_frames, plan_boundaries
    from novelcomic.compose.motion import motion_views, view_box

    clip = tl.clips[index]
    if clip.motion == "static":
        return []
    frames = clip_frames(tl)
    bounds = plan_boundaries(tl, frames)
    before = bounds[index - 1].after if index > 0 else 0  # frames of the transition into the clip drawn before it
    after = bounds[index].before if index < len(bounds) else 0
    start = sum(frames[:index])
    first, count = start - before, frames[index] + before + after
    a, b = (view_box(v) for v in motion_views(clip.motion, count / tl.fps, clip.motion_speed))
    iw, ih = image_size
    w, h = tl.width, tl.height
    base = max(w / iw, h / ih) / min(w / iw, h / ih)  # 剪映 fits a photo inside the canvas; the composer fills it
    step = max(1, round(KEYFRAME_EVERY * tl.fps))
    picks = sorted({*range(start, start + frames[index], step), start + frames[index]})
    keys = []
    for f in picks:
        p = min(1.0, max(0.0, (f - first) / max(1, count - 1)))
        left, top, right, bottom = (x + (y - x) * p for x, y in zip(a, b))
        zoom = 1.0 / (right - left)
        cx, cy = (left + right) / 2, (top + bottom) / 2
        keys.append(CameraKey(_us(f, tl.fps) - _us(start, tl.fps), round(base * zoom, 6),
                              round(-2 * zoom * (cx - 0.5), 6), round(2 * zoom * (cy - 0.5), 6)))
    return keys


def _us(frame: int, fps: int) -> int:
    return round(frame * SEC / fps)


# --------------------------------------------------------------------------- the draft


@dataclass
class DraftExport:
    """One written draft."""

    chapter: str
    folder: Path
    shots: int
    lines: int
    cues: int
    duration_us: int
    music: bool


def draft_name(project_name: str, chapter: str) -> str:
    """The draft's folder name (剪映 lists drafts by it)."""
    name = f"{project_name}-{chapter}"
    bad = set('<>:"/\\|?*') | {chr(c) for c in range(32)}
    return "".join("_" if ch in bad else ch for ch in name).strip(" .") or "draft"


def export_jianying(project: Project, chapters: Sequence[str], out_dir: Path) -> list[DraftExport]:
    """One self-contained 剪映 draft folder per chapter under ``out_dir`` (replacing an older one)."""
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NovelcomicError(f"cannot create the export directory {out_dir}: {exc.strerror or exc}", field="--out") from None
    return [write_draft(chapter_cut(project, ch), out_dir, draft_name(project.name, ch)) for ch in chapters]


def write_draft(cut: ChapterCut, out_dir: Path, name: str) -> DraftExport:
    """Write ``cut`` as the draft folder ``out_dir/name``: built beside it, then renamed into place."""
    staging = out_dir / f".{name}.partial-{secrets.token_hex(4)}"
    staging.mkdir(parents=True)
    try:
        result = _build(cut, staging, name)
        final = out_dir / name
        old = out_dir / f".{name}.old-{secrets.token_hex(4)}"
        if final.exists():
            os.replace(final, old)
        os.replace(staging, final)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    result.folder = final
    return result


def _build(cut: ChapterCut, folder: Path, name: str) -> DraftExport:
    import pyJianYingDraft as jy
    from PIL import Image

    from novelcomic.audio import wav_duration
    from novelcomic.compose.ffmpeg_composer import clip_frames
    from novelcomic.compose.subtitles import display_text

    tl = cut.timeline
    fps = tl.fps
    materials = folder / "materials"
    for sub in ("images", "audio", "music", "subtitles"):
        (materials / sub).mkdir(parents=True)
    script = jy.ScriptFile(tl.width, tl.height, fps, maintrack_adsorb=False)
    shots, voice, music, subs = script.append_tracks([
        jy.TrackSpec(jy.TrackType.video, "shots"), jy.TrackSpec(jy.TrackType.audio, "voice"),
        jy.TrackSpec(jy.TrackType.audio, "music"), jy.TrackSpec(jy.TrackType.text, "subtitles"),
    ])

    frames = clip_frames(tl)
    start = 0
    copied: dict[Path, Path] = {}
    for i, (clip, n) in enumerate(zip(tl.clips, frames)):
        image = _copy(Path(clip.image), materials / "images", f"{i + 1:03d}-{clip.shot_id}", copied)
        with Image.open(image) as im:
            size = im.size
        material = jy.VideoMaterial(str(image), material_name=f"{clip.shot_id}{image.suffix}")
        a, b = _us(start, fps), _us(start + n, fps)
        seg = jy.VideoSegment(material, jy.Timerange(a, b - a))
        keys = camera_keys(tl, i, size)
        base = max(tl.width / size[0], tl.height / size[1]) / min(tl.width / size[0], tl.height / size[1])
        if keys:
            for k in keys:
                seg.add_keyframe(jy.KeyframeProperty.uniform_scale, k.offset, k.scale)
                seg.add_keyframe(jy.KeyframeProperty.position_x, k.offset, k.x)
                seg.add_keyframe(jy.KeyframeProperty.position_y, k.offset, k.y)
        elif base != 1.0:
            seg.clip_settings.scale_x = seg.clip_settings.scale_y = base
        script.add_segment(seg, shots)
        start += n
    total_us = _us(start, fps)

    lines = 0
    for s, wav in sorted((s, Path(p)) for c in tl.clips for s, p in c.audio):
        seconds = wav_duration(wav)
        if seconds <= 0:
            continue  # a silent line has no audio to place (and no cue)
        local = _copy(wav, materials / "audio", wav.stem, copied)
        material = jy.AudioMaterial(str(local))
        material.duration = round(seconds * SEC)  # exact, from the WAV header (MediaInfo rounds to ms)
        a = round(s * SEC)
        length = min(round(seconds * SEC), material.duration, total_us - a)
        script.add_segment(jy.AudioSegment(material, jy.Timerange(a, length)), voice)
        lines += 1

    bed = write_music_bed(cut, materials / "music" / "music.wav")
    if bed is not None:
        material = jy.AudioMaterial(str(bed.path))
        material.duration = round(wav_duration(bed.path) * SEC)
        seg = jy.AudioSegment(material, jy.Timerange(0, min(total_us, material.duration)),
                              volume=round(10 ** (bed.volume_db / 20), 4))
        script.add_segment(seg, music)

    style = jy.TextStyle(size=6.0, color=(1.0, 1.0, 1.0), align=1, auto_wrapping=True, max_line_width=0.82)
    for cue in tl.cues:
        a = round(cue.start * SEC)  # start and length rounded as the line's audio segment is: the two line up
        length = min(round((cue.end - cue.start) * SEC), total_us - a)
        text = jy.TextSegment(display_text(cue, cut.language), jy.Timerange(a, length), style=style,
                              border=jy.TextBorder(color=(0.0, 0.0, 0.0), width=40.0),
                              clip_settings=jy.ClipSettings(transform_y=-0.72))
        script.add_segment(text, subs)
    if cut.srt.is_file():
        _copy(cut.srt, materials / "subtitles", cut.chapter, copied)

    script.duration = total_us
    content = json.loads(script.dumps())
    _relocate(content, folder)
    atomic_write_text(folder / "draft_content.json", json.dumps(content, ensure_ascii=False, indent=1))
    _write_meta(folder, name, total_us)
    return DraftExport(cut.chapter, folder, len(tl.clips), lines, len(tl.cues), total_us, bed is not None)


def _copy(src: Path, into: Path, stem: str, copied: dict[Path, Path]) -> Path:
    """``src`` copied into ``into`` as ``stem`` + its suffix (once per source file)."""
    if src in copied:
        return copied[src]
    dst = into / f"{stem}{src.suffix.lower()}"
    shutil.copyfile(src, dst)
    copied[src] = dst
    return dst


def _relocate(content: dict[str, Any], folder: Path) -> None:
    """Material paths inside ``folder`` rewritten with 剪映's draft-folder token (forward slashes)."""
    prefix = str(folder.resolve())
    for group in ("videos", "audios"):
        for m in content.get("materials", {}).get(group, []):
            path = str(m.get("path") or "")
            if not path.startswith(prefix + os.sep):
                raise NovelcomicError(f"material {path!r} is outside the draft folder {folder}")
            m["path"] = DRAFT_PATH_TOKEN + "/" + Path(path).relative_to(prefix).as_posix()


def _write_meta(folder: Path, name: str, duration_us: int) -> None:
    from pyJianYingDraft import assets

    meta = json.loads(Path(assets.get_asset_path("DRAFT_META_TEMPLATE")).read_text(encoding="utf-8"))
    now = int(time.time() * SEC)
    meta.update({
        "draft_id": str(uuid.uuid4()).upper(), "draft_name": name, "tm_duration": duration_us,
        "tm_draft_create": now, "tm_draft_modified": now,
        "draft_fold_path": "", "draft_root_path": "",  # 剪映 fills these in where it finds the folder
    })
    atomic_write_text(folder / "draft_meta_info.json", json.dumps(meta, ensure_ascii=False, indent=1))


def resolve_material_path(path: str, folder: Path) -> Path:
    """A draft material's ``path`` as a file: 剪映's draft-folder token expanded to ``folder``."""
    if path.startswith(DRAFT_PATH_TOKEN):
        return Path(folder) / path[len(DRAFT_PATH_TOKEN):].lstrip("/\\")
    return Path(path)


def load_draft(folder: Path) -> dict[str, Any]:
    """A written draft's ``draft_content.json``, parsed."""
    path = Path(folder) / "draft_content.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise NovelcomicError(f"cannot read the 剪映 draft {path}: {exc}") from None


__all__ = [
    "DRAFT_PATH_TOKEN", "CameraKey", "ChapterCut", "DraftExport", "MusicBed", "camera_keys", "chapter_cut",
    "draft_name", "export_jianying", "load_draft", "resolve_material_path", "write_draft", "write_music_bed",
]
