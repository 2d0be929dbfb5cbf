"""What the composer writes besides the picture: effect shots through moviepy, soft subtitle tracks,
karaoke, the cover, the OpenTimelineIO timeline, the encoder choice, and the whole-book MP4."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import opentimelineio as otio
import pytest
from PIL import Image

from novelcomic.compose.base import ComposeRequest, LineAudio
from novelcomic.compose.book import ffmetadata, join_chapters
from novelcomic.compose.ffmpeg_composer import FFmpegComposer, clip_frames, pick_h264_encoder
from novelcomic.compose.timeline import build_timeline
from novelcomic.errors import NovelcomicError
from novelcomic.ffmpeg import encoder_works, ffprobe_exe, probe, stream_of
from novelcomic.models import Line, MusicConfig, Scene, Shot, Storyboard, SubtitleConfig
from novelcomic.registry import effects
from tests.test_compose import grab_frame, make_still, make_tone

W, H, FPS = 240, 426, 12
TITLE = "第一章 风起青萍"


def _chapter(root: Path, width: int, height: int, *, effect: str | None = "shake") -> tuple:
    root.mkdir(parents=True, exist_ok=True)
    shots = [
        Shot(id="a", lines=[Line(text="你好，世界！")], transition="dissolve"),
        Shot(id="b", lines=[Line(text="风起了。")], transition="wipeleft", effect=effect),
        Shot(id="c", lines=[Line(text="夜深了。")], duration_hint=2.0),
    ]
    sb = Storyboard(chapter="c1", scenes=[Scene(id="s", mood="calm", shots=shots)])
    images = {s.id: make_still(root / f"{s.id}.png", (40 + 30 * i, 50, 90), seed=i) for i, s in enumerate(shots)}
    audio = {}
    for i, s in enumerate(shots):
        wav = make_tone(root / f"{s.id}.wav", 1.0, 400.0 + 100 * i)
        text = s.lines[0].text
        words = [(0.05, 0.45, text[:2]), (0.5, 0.95, text[2:-1])]
        audio[s.id] = [LineAudio(text, "narrator", "", wav, 1.0, words=words)]
    tl = build_timeline(sb, audio, images, width=width, height=height, fps=FPS)
    request = ComposeRequest(
        timeline=tl, out_video=root / "out" / "c1.mp4", out_srt=root / "out" / "c1.srt", work_dir=root / "work" / "c1",
        music=MusicConfig(enabled=False), subtitles=SubtitleConfig(), title=TITLE,
    )
    return tl, request


def count_frames(video: Path) -> int:
    exe = ffprobe_exe()
    assert exe, "these tests need ffprobe"
    out = subprocess.run(
        [exe, "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries", "stream=nb_read_frames",
         "-of", "json", str(video)], capture_output=True, check=True, text=True,
    ).stdout
    return int(json.loads(out)["streams"][0]["nb_read_frames"])


@pytest.fixture(scope="module")
def composed(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("outputs")
    tl, request = _chapter(root, W, H)
    composer = FFmpegComposer(preset="ultrafast", subtitle_mode="both", karaoke=True)
    result = composer.compose(request)
    return {"root": root, "tl": tl, "request": request, "result": result, "composer": composer}


def test_effect_shot_goes_through_moviepy_and_the_concat_stays_valid(composed: dict, tmp_path: Path) -> None:
    tl, result, composer = composed["tl"], composed["result"], composed["composer"]
    plan = composer.plan(composed["request"])
    effect_segs = [s for s in plan if s.effect]
    assert [s.effect for s in effect_segs] == ["shake"] and effect_segs[0].a.image.name == "b.png"
    assert count_frames(result.video) == sum(clip_frames(tl))
    assert count_frames(composed["request"].work_dir / "segments" / effect_segs[0].filename) == effect_segs[0].frames
    # the shake moves the picture between frames, unlike the same shot without the effect
    _, plain = _chapter(tmp_path, W, H, effect=None)
    plain_result = FFmpegComposer(preset="ultrafast", subtitle_mode="track").compose(plain)
    b = tl.clips[1]
    t0 = b.start + 0.45  # inside the body (the dissolve into b ends 0.25 s after the cut)
    t1 = t0 + 1 / FPS
    top = slice(0, int(H * 0.6))  # above the subtitles
    shaken = np.abs(grab_frame(result.video, t0)[top].astype(int) - grab_frame(result.video, t1)[top]).mean()
    still = np.abs(grab_frame(plain_result.video, t0)[top].astype(int) - grab_frame(plain_result.video, t1)[top]).mean()
    assert shaken > 3 * still and shaken > 1.5, (shaken, still)
    # same colours as an ffmpeg-drawn frame of the same still (no colour-matrix shift)
    mid = b.start + b.duration / 2
    assert abs(grab_frame(result.video, mid)[top].mean() - grab_frame(plain_result.video, mid)[top].mean()) < 4


def test_unknown_effect_is_refused_and_builtins_are_registered(tmp_path: Path) -> None:
    _, request = _chapter(tmp_path, W, H, effect="sparkles")
    with pytest.raises(NovelcomicError, match="sparkles"):
        FFmpegComposer().compose(request)
    assert {"shake", "vignette_pulse"} <= set(effects.names())


def test_soft_subtitle_track_and_karaoke(composed: dict) -> None:
    result = composed["result"]
    assert result.subtitle_track
    subs = [s for s in probe(result.video)["streams"] if s["codec_type"] == "subtitle"]
    assert len(subs) == 1 and subs[0]["codec_name"] == "mov_text"
    assert subs[0].get("tags", {}).get("language") == "chi"
    plan = composed["composer"].plan(composed["request"])
    ass = "".join(s.ass for s in plan)
    assert "{\\k" in ass and "\\2c&H969696&" in ass
    # track only: nothing burned, so no segment carries an ASS script
    track_only = FFmpegComposer(preset="ultrafast", subtitle_mode="track").plan(composed["request"])
    assert all(not s.ass for s in track_only)
    with pytest.raises(NovelcomicError, match="subtitle_mode"):
        FFmpegComposer(subtitle_mode="sideways")
    assert not [w for w in result.warnings if "karaoke" in w]  # word timings were there


def test_karaoke_without_word_timings_says_so(tmp_path: Path) -> None:
    import dataclasses

    _, request = _chapter(tmp_path / "nowords", W, H, effect=None)
    request.timeline.cues = [dataclasses.replace(c, words=[]) for c in request.timeline.cues]
    request.cover = request.otio = False
    result = FFmpegComposer(preset="ultrafast", karaoke=True).compose(request)
    assert any("karaoke: true lights nothing up" in w and "espeak" in w for w in result.warnings)


def test_cover_has_the_title_lettered(composed: dict) -> None:
    cover = composed["result"].cover
    assert cover == composed["request"].out_video.with_suffix(".cover.jpg") and cover.is_file()
    with Image.open(cover) as im:
        assert im.size == (W, H) and im.format == "JPEG"
        px = np.asarray(im.convert("RGB"))
    band = px[int(H * 0.12) : int(H * 0.45)]
    assert np.count_nonzero(band.min(axis=2) > 220) > 200  # light lettering on the shaded band
    assert np.count_nonzero(px[int(H * 0.6) :].min(axis=2) > 220) == 0  # the still itself has none


def test_otio_loads_back_with_clips_durations_audio_and_markers(composed: dict) -> None:
    tl, result = composed["tl"], composed["result"]
    loaded = otio.adapters.read_from_file(str(result.otio))
    video, voice = loaded.tracks[0], loaded.tracks[1]
    clips = list(video.find_clips())
    assert [c.name for c in clips] == ["a", "b", "c"]
    assert [c.source_range.duration.to_frames() for c in clips] == clip_frames(tl)
    assert clips[1].metadata["novelcomic"]["effect"] == "shake"
    # media paths are relative to the .otio, so a copied or moved project keeps its timeline
    url = clips[0].media_reference.target_url
    assert not url.startswith("file:") and not Path(url).is_absolute(), url
    assert (Path(result.otio).parent / url).resolve() == tl.clips[0].image.resolve()
    assert abs(video.duration().to_seconds() - tl.duration) < 1e-6
    assert len([t for t in video if isinstance(t, otio.schema.Transition)]) == 2
    lines = list(voice.find_clips())
    assert len(lines) == 3
    for line, (start, _) in zip(lines, [a for c in tl.clips for a in c.audio]):
        assert abs(voice.range_of_child(line).start_time.to_seconds() - start) < 1e-3
        assert abs(line.source_range.duration.to_seconds() - 1.0) < 1e-3
    assert [m.name for m in video.markers] == [c.text for c in tl.cues]
    assert len(loaded.metadata["novelcomic"]["segments"]) == len(composed["composer"].plan(composed["request"]))


def test_encoder_auto_picks_what_works(composed: dict) -> None:
    expected = "h264_nvenc" if encoder_works("h264_nvenc") else "libx264"
    assert pick_h264_encoder() == expected == composed["result"].encoder
    assert not encoder_works("no_such_encoder")
    with pytest.raises(NovelcomicError, match="encoder"):
        FFmpegComposer(encoder="h265_magic")


def test_book_joins_chapters_with_markers(composed: dict, tmp_path: Path) -> None:
    first = composed["result"].video
    # a second 9:16 chapter made with the same settings: joined without re-encoding
    _, req2 = _chapter(tmp_path / "c2", W, H, effect=None)
    second = FFmpegComposer(preset="ultrafast").compose(req2).video
    book = join_chapters([first, second], ["第一章", "第二章"], tmp_path / "book.mp4", title="书")
    assert book.reencoded == []
    exe = ffprobe_exe()
    chapters = json.loads(subprocess.run(
        [exe, "-v", "error", "-show_chapters", "-of", "json", str(book.video)], capture_output=True, check=True, text=True
    ).stdout)["chapters"]
    assert [c["tags"]["title"] for c in chapters] == ["第一章", "第二章"]
    d1 = float(probe(first)["format"]["duration"])
    assert abs(float(chapters[1]["start_time"]) - d1) < 0.05
    total = float(probe(book.video)["format"]["duration"])
    assert abs(total - d1 - float(probe(second)["format"]["duration"])) < 0.1
    assert count_frames(book.video) == count_frames(first) + count_frames(second)
    # a 16:9 chapter is converted to the book's 9:16 frame (fit and pad), then joined
    _, wide_req = _chapter(tmp_path / "wide", H, W, effect=None)
    wide = FFmpegComposer(preset="ultrafast").compose(wide_req).video
    assert (stream_of(probe(wide), "video")["width"], stream_of(probe(wide), "video")["height"]) == (H, W)
    mixed = join_chapters([first, wide], ["一", "二"], tmp_path / "mixed.mp4")
    assert mixed.reencoded == [wide]
    v = stream_of(probe(mixed.video), "video")
    assert (v["width"], v["height"]) == (W, H)
    with pytest.raises(NovelcomicError):
        join_chapters([first], ["a", "b"], tmp_path / "bad.mp4")


def test_ffmetadata_escapes_titles() -> None:
    doc = ffmetadata([("a=b;c", 0.0, 1.5)])
    assert doc.startswith(";FFMETADATA1\n") and "title=a\\=b\\;c" in doc and "END=1500" in doc
