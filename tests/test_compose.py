"""The compose stage: timeline rules, subtitles, and real MP4s made by the ffmpeg composer.

Inputs are generated here (Pillow stills, sine-tone "lines", sine music) at 240×426, 12 fps, so
the real-file checks run in seconds.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from novelcomic.audio import write_wav
from novelcomic.compose.base import Clip, ComposeRequest, Cue, LineAudio, Timeline
from novelcomic.compose.draw import BLENDS
from novelcomic.compose.ffmpeg_composer import (
    TRANSITIONS, FFmpegComposer, check_request, plan_batches, plan_segments, remove_stale, segment_cues,
)
from novelcomic.compose.motion import MOTIONS, motion_views, resolve_motion
from novelcomic.compose.subtitles import (
    CLOSING, OPENING, layout_cues, srt_time, text_units, wrap_text, write_ass, write_srt,
)
from novelcomic.compose.timeline import build_timeline
from novelcomic.errors import BackendError, NovelcomicError
from novelcomic.ffmpeg import ffmpeg_exe, media_duration, mp4_video_frames, parse_ffmpeg_info, probe, run_ffmpeg, stream_of
from novelcomic.models import Camera, Line, MusicConfig, Scene, Shot, Storyboard, SubtitleConfig

W, H, FPS = 240, 426, 12
RATE = 22050
HELLO = "你好，世界！今天天气很好。"

# shot id → (scene, camera size, transition, lines as (speaker, name, text, seconds, tone Hz))
SHOTS = {
    "a": ("s1", "wide", "dissolve", [("narrator", "", HELLO, 1.6, 440.0)]),
    "b": ("s1", "close_up", "fadeblack", [("qing", "阿青", "我们走吧。", 0.8, 660.0), ("narrator", "", "他们出发了。", 1.0, 550.0)]),
    "c": ("s2", "medium", "cut", []),
    "d": ("s2", "medium", "dissolve", [("narrator", "", "夜深了。", 1.2, 770.0)]),
}
ALL_LINES = [line for *_, lines in SHOTS.values() for line in lines]
COLOURS = {"a": (30, 50, 100), "b": (100, 30, 50), "c": (30, 90, 50), "d": (70, 70, 80)}


# --------------------------------------------------------------------------- inputs


def make_still(path: Path, colour: tuple[int, int, int], seed: int = 0) -> Path:
    """A dark still with some mid-tone shapes (never near-white, so subtitles are easy to find)."""
    im = Image.new("RGB", (W, H), colour)
    d = ImageDraw.Draw(im)
    rng = np.random.default_rng(seed)
    for _ in range(12):
        x, y = (int(v) for v in rng.integers(0, [W, H]))
        d.ellipse([x, y, x + 40, y + 40], fill=tuple(min(160, c + 60) for c in colour))
    im.save(path)
    return path


def make_tone(path: Path, seconds: float, hz: float, rate: int = RATE) -> Path:
    t = np.arange(int(round(seconds * rate))) / rate
    write_wav(path, 0.5 * np.sin(2 * np.pi * hz * t), rate)
    return path


def make_music(path: Path, hz: float) -> Path:
    t = np.arange(2 * 44100) / 44100
    tone = 0.3 * np.sin(2 * np.pi * hz * t)
    write_wav(path, np.stack([tone, tone], axis=1), 44100)
    return path


def storyboard() -> Storyboard:
    scenes: dict[str, Scene] = {}
    for shot_id, (scene_id, size, transition, lines) in SHOTS.items():
        scene = scenes.setdefault(scene_id, Scene(id=scene_id, mood="calm" if scene_id == "s1" else "tense"))
        shot = Shot(
            id=shot_id, camera=Camera(size=size), transition=transition,
            lines=[Line(speaker=spk, text=text) for spk, _, text, _, _ in lines],
        )
        scene.shots = [*scene.shots, shot]
    return Storyboard(chapter="c1", scenes=list(scenes.values()))


def make_inputs(root: Path) -> tuple[dict[str, Path], dict[str, list[LineAudio]]]:
    root.mkdir(parents=True, exist_ok=True)
    images, audio = {}, {}
    for i, (shot_id, (_, _, _, lines)) in enumerate(SHOTS.items()):
        images[shot_id] = make_still(root / f"{shot_id}.png", COLOURS[shot_id], seed=i)
        audio[shot_id] = [
            LineAudio(text, spk, name, make_tone(root / f"{shot_id}{k}.wav", secs, hz), secs)
            for k, (spk, name, text, secs, hz) in enumerate(lines)
        ]
    return images, audio


def request_for(root: Path, timeline: Timeline, *, burn_in: bool = True, music: MusicConfig | None = None) -> ComposeRequest:
    if music is None:
        music = MusicConfig(tracks={"calm": str(make_music(root / "calm.wav", 110.0)), "tense": str(make_music(root / "tense.wav", 146.8))})
    return ComposeRequest(
        timeline=timeline, out_video=root / "out" / "c1.mp4", out_srt=root / "out" / "c1.srt", work_dir=root / "work" / "c1",
        music=music, subtitles=SubtitleConfig(burn_in=burn_in), project_dir=root,
    )


# --------------------------------------------------------------------------- reading results


def grab_frame(video: Path, t: float) -> np.ndarray:
    """The RGB frame shown at ``t`` seconds."""
    raw = subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-ss", f"{t:.3f}", "-i", str(video), "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True, check=True,
    ).stdout
    return np.frombuffer(raw, np.uint8).reshape(H, W, 3)


def read_audio(video: Path, rate: int = 48000) -> np.ndarray:
    raw = subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-i", str(video), "-vn", "-ac", "1", "-ar", str(rate), "-f", "f32le", "-"],
        capture_output=True, check=True,
    ).stdout
    return np.frombuffer(raw, np.float32)


def tone_level(samples: np.ndarray, hz: float, rate: int = 48000) -> float:
    """Amplitude of the ``hz`` component of ``samples``."""
    t = np.arange(len(samples)) / rate
    return float(2 * abs(np.mean(samples * np.exp(-2j * np.pi * hz * t))))


def subtitle_pixels(frame: np.ndarray) -> int:
    """Near-white pixels in the bottom band (the stills have none)."""
    band = frame[int(H * 0.7) :]
    return int(np.count_nonzero(band.min(axis=2) > 200))


def parse_srt(text: str) -> list[tuple[float, float, str]]:
    def secs(stamp: str) -> float:
        h, m, rest = stamp.split(":")
        s, ms = rest.split(",")
        return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000

    cues = []
    for block in text.strip().split("\n\n"):
        lines = block.strip().split("\n")
        assert lines[0].isdigit(), block
        start, end = lines[1].split(" --> ")
        assert re.fullmatch(r"\d\d:\d\d:\d\d,\d\d\d", start) and re.fullmatch(r"\d\d:\d\d:\d\d,\d\d\d", end)
        cues.append((secs(start), secs(end), "\n".join(lines[2:])))
    return cues


def top_level_boxes(path: Path) -> list[str]:
    data = path.read_bytes()
    boxes, pos = [], 0
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8].decode("latin-1")
        if size == 1:
            size = int.from_bytes(data[pos + 8 : pos + 16], "big")
        boxes.append(kind)
        if size < 8:
            break
        pos += size
    return boxes


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.glob("seg-*.mp4")}


def part_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if ".part" in p.name]


# --------------------------------------------------------------------------- the composed chapter (shared)


@pytest.fixture(scope="module")
def chapter(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("compose")
    images, audio = make_inputs(root / "in")
    timeline = build_timeline(storyboard(), audio, images, width=W, height=H, fps=FPS)
    composer = FFmpegComposer(preset="ultrafast")
    request = request_for(root, timeline)
    result = composer.compose(request)
    return {
        "root": root, "timeline": timeline, "request": request, "result": result, "composer": composer,
        "images": images, "audio": audio, "first_rendered": list(composer.rendered),
    }


def test_video_stream_is_h264_at_the_timeline_size_and_rate(chapter: dict) -> None:
    tl: Timeline = chapter["timeline"]
    info = probe(chapter["result"].video)
    video, audio = stream_of(info, "video"), stream_of(info, "audio")
    assert video and audio
    assert (video["codec_name"], video["pix_fmt"], video["width"], video["height"]) == ("h264", "yuv420p", W, H)
    assert video["r_frame_rate"] == f"{FPS}/1"
    assert (audio["codec_name"], int(audio["sample_rate"])) == ("aac", 48000)
    assert abs(float(info["format"]["duration"]) - tl.duration) <= 0.1
    assert int(video["nb_frames"]) == round(tl.duration * FPS)
    assert abs(chapter["result"].duration - tl.duration) < 1e-6
    assert abs(media_duration(chapter["result"].video) - tl.duration) <= 0.1


def test_mp4_is_faststart(chapter: dict) -> None:
    boxes = top_level_boxes(chapter["result"].video)
    assert "moov" in boxes and "mdat" in boxes
    assert boxes.index("moov") < boxes.index("mdat")


def test_srt_has_one_cue_per_line_timed_to_its_audio(chapter: dict) -> None:
    tl: Timeline = chapter["timeline"]
    cues = parse_srt(chapter["result"].srt.read_text(encoding="utf-8"))
    texts = [line[2] for line in ALL_LINES]
    assert [c[2] for c in cues] == texts
    placements = [start for clip in tl.clips for start, _ in clip.audio]
    durations = [line[3] for line in ALL_LINES]
    for (start, end, _), placed, secs in zip(cues, placements, durations):
        assert abs(start - placed) <= 0.05
        assert abs(end - (placed + secs)) <= 0.05
        assert 0 <= start < end <= tl.duration
    assert [c[0] for c in cues] == sorted(c[0] for c in cues)


def test_line_audio_is_heard_where_it_is_placed(chapter: dict) -> None:
    tl: Timeline = chapter["timeline"]
    samples = read_audio(chapter["result"].video)
    assert abs(len(samples) / 48000 - tl.duration) < 0.1
    hz_of = {f"{shot}{k}.wav": line[4] for shot, (_, _, _, lines) in SHOTS.items() for k, line in enumerate(lines)}
    for clip in tl.clips:
        for start, path in clip.audio:
            hz = hz_of[Path(path).name]
            at = int(start * 48000)
            inside = tone_level(samples[at + 1440 : at + 9600], hz)  # 30..200 ms after the start
            before = tone_level(samples[max(0, at - 9600) : at - 1440], hz)  # 200..30 ms before
            assert inside > 0.05, (path, inside)
            assert inside > 8 * before, (path, inside, before)


def test_loudness_is_normalised(chapter: dict) -> None:
    err = subprocess.run(
        [ffmpeg_exe(), "-nostdin", "-i", str(chapter["result"].video), "-vn", "-af", "ebur128=peak=true", "-f", "null", "-"],
        capture_output=True, text=True,
    ).stderr
    summary = err[err.rindex("Summary:") :]
    integrated = float(re.search(r"I:\s+(-?[\d.]+) LUFS", summary).group(1))
    peak = float(re.search(r"Peak:\s+(-?[\d.]+) dBFS", summary).group(1))
    assert -18.0 <= integrated <= -14.0
    assert peak <= -0.5


def test_subtitles_are_burned_in(chapter: dict, tmp_path: Path) -> None:
    tl: Timeline = chapter["timeline"]
    cue = tl.cues[0]
    mid = (cue.start + cue.end) / 2
    with_subs = grab_frame(chapter["result"].video, mid)
    # the same chapter without burn-in
    plain_request = request_for(tmp_path, tl, burn_in=False)
    FFmpegComposer(preset="ultrafast").compose(plain_request)
    without = grab_frame(plain_request.out_video, mid)
    assert subtitle_pixels(with_subs) > 150
    assert subtitle_pixels(with_subs) > 10 * (subtitle_pixels(without) + 1)
    # and in the burned-in video, a moment with no cue has no text
    quiet = grab_frame(chapter["result"].video, cue.start / 2)
    assert subtitle_pixels(quiet) < 20
    Image.fromarray(with_subs).save(tmp_path / "frame-with-subtitles.png")


def test_cue_timing_is_frame_exact_across_segment_boundaries(tmp_path: Path) -> None:
    a = make_still(tmp_path / "a.png", (30, 50, 100))
    b = make_still(tmp_path / "b.png", (100, 30, 50), seed=1)
    clips = [Clip("a", a, 0.0, 2.0, "push_in", "dissolve", "calm"), Clip("b", b, 2.0, 2.0, "pan_left", "cut", "calm")]
    cue = Cue(0.5, 3.5, "跨越两个片段的字幕", "narrator")  # spans a body, the dissolve and the next body
    tl = Timeline(W, H, FPS, clips, [cue], transition_seconds=0.5)
    request = request_for(tmp_path, tl, music=MusicConfig(enabled=False))
    composer = FFmpegComposer(preset="ultrafast")
    composer.compose(request)
    assert len(composer.rendered) == 3
    raw = subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-i", str(request.out_video), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True, check=True,
    ).stdout
    frames = np.frombuffer(raw, np.uint8).reshape(-1, H, W, 3)
    assert len(frames) == 4 * FPS
    masks = frames[:, int(H * 0.7) :].min(axis=3) > 200
    shown = [i for i, m in enumerate(masks) if m.sum() > 50]
    assert shown == list(range(6, 42))  # frames at t >= 0.5 and t < 3.5
    reference = masks[6]
    for i in shown:  # the text does not move or flicker where segments meet
        overlap = np.logical_and(masks[i], reference).sum() / np.logical_or(masks[i], reference).sum()
        assert overlap > 0.8, (i, overlap)


def test_rerun_reuses_every_segment(chapter: dict) -> None:
    seg_dir = chapter["request"].work_dir / "segments"
    before = snapshot(seg_dir)
    composer = FFmpegComposer(preset="ultrafast")
    composer.compose(chapter["request"])
    assert composer.rendered == []
    assert sorted(composer.reused) == sorted(before)
    assert snapshot(seg_dir) == before
    assert part_files(chapter["root"]) == []


def test_changing_one_image_rerenders_only_its_clip_and_transitions(chapter: dict) -> None:
    # This test changes the shared chapter, so it runs after the others that read it.
    request: ComposeRequest = chapter["request"]
    seg_dir = request.work_dir / "segments"
    before = snapshot(seg_dir)
    assert len(before) == 6  # 4 bodies, a→b dissolve, b→c fadeblack (c→d is a cut)
    make_still(chapter["images"]["b"], (140, 40, 20), seed=99)
    composer = FFmpegComposer(preset="ultrafast")
    composer.compose(request)
    new = composer.plan(request)
    touched = {s.filename for s in new if "b.png" in (s.a.image.name, s.b.image.name if s.b else "")}
    assert len(touched) == 3  # b's body and both transitions next to it
    assert set(composer.rendered) == touched
    after = snapshot(seg_dir)
    assert set(after) == {s.filename for s in new}  # the replaced segments are gone
    unchanged = set(after) - touched
    assert len(unchanged) == 3 and unchanged <= set(before)
    for name in unchanged:
        assert after[name] == before[name]  # same bytes, same mtime
    assert part_files(chapter["root"]) == []


def test_generated_music_and_no_music(tmp_path: Path) -> None:
    pytest.importorskip("novelcomic.music")
    still = make_still(tmp_path / "x.png", (40, 40, 60))
    line = make_tone(tmp_path / "l.wav", 1.0, 500.0)
    sb = Storyboard(chapter="c", scenes=[Scene(id="s", mood="mysterious", shots=[
        Shot(id="x", lines=[Line(text="风起了。")], duration_hint=4.0),
    ])])
    tl = build_timeline(sb, {"x": [LineAudio("风起了。", "narrator", "", line, 1.0)]}, {"x": still}, width=W, height=H, fps=FPS)
    with_music = request_for(tmp_path, tl, music=MusicConfig())
    result = FFmpegComposer(preset="ultrafast").compose(with_music)
    assert result.warnings == []
    assert list((tmp_path / "work" / "music.cache").glob("*.wav"))
    after_line = slice(int(1.8 * 48000), int(2.5 * 48000))  # the line ends at 1.3 s
    samples = read_audio(result.video)
    assert np.sqrt(np.mean(samples[after_line] ** 2)) > 3e-3  # music where nobody speaks
    off = request_for(tmp_path / "off", tl, music=MusicConfig(enabled=False))
    samples = read_audio(FFmpegComposer(preset="ultrafast").compose(off).video)
    assert np.sqrt(np.mean(samples[after_line] ** 2)) < 1e-4


# --------------------------------------------------------------------------- timeline


def test_timeline_durations_and_placements(tmp_path: Path) -> None:
    images, audio = make_inputs(tmp_path)
    sb = storyboard()
    tl = build_timeline(sb, audio, images, width=W, height=H, fps=FPS, transition_seconds=0.5, lead_in=0.3, gap=0.25, tail=0.45)
    assert [c.shot_id for c in tl.clips] == ["a", "b", "c", "d"]
    expected = {"a": 0.3 + 1.6 + 0.45, "b": 0.3 + 0.8 + 0.25 + 1.0 + 0.45, "c": 1.5, "d": 0.3 + 1.2 + 0.45}
    t = 0.0
    for clip in tl.clips:
        frames = clip.duration * FPS
        assert abs(frames - round(frames)) < 1e-9
        assert expected[clip.shot_id] <= clip.duration < expected[clip.shot_id] + 1 / FPS + 1e-9
        assert abs(clip.start - t) < 1e-9
        t += clip.duration
    assert abs(tl.duration - t) < 1e-9
    b = tl.clips[1]
    assert [round(s - b.start, 6) for s, _ in b.audio] == [0.3, round(0.3 + 0.8 + 0.25, 6)]
    assert len(tl.cues) == 4
    starts = [s for c in tl.clips for s, _ in c.audio]
    for cue, start, line in zip(tl.cues, starts, [ln for c in tl.clips for ln in audio[c.shot_id]]):
        assert cue.start == start and abs(cue.end - (start + line.duration)) < 1e-9
    assert tl.cues[1].speaker_name == "阿青" and not tl.cues[1].is_narration
    assert [c.mood for c in tl.clips] == ["calm", "calm", "tense", "tense"]
    assert [c.motion for c in tl.clips] == ["pull_out", "push_in", "push_in", "pan_right"]  # d: 2nd of its scene


def test_timeline_duration_hint_and_explicit_motion(tmp_path: Path) -> None:
    still = make_still(tmp_path / "x.png", (10, 10, 10))
    sb = Storyboard(chapter="c", scenes=[Scene(id="s", shots=[
        Shot(id="x", duration_hint=4.0, camera=Camera(size="close_up", motion="tilt_up")),
    ])])
    tl = build_timeline(sb, {}, {"x": still}, width=W, height=H, fps=FPS)
    assert tl.clips[0].duration == 4.0 and tl.clips[0].motion == "tilt_up"


def test_timeline_refuses_bad_input(tmp_path: Path) -> None:
    images, audio = make_inputs(tmp_path)
    sb = storyboard()
    with pytest.raises(NovelcomicError, match="shot b .*no image"):
        build_timeline(sb, audio, {k: v for k, v in images.items() if k != "b"}, width=W, height=H, fps=FPS)
    with pytest.raises(NovelcomicError, match="241x426"):
        build_timeline(sb, audio, images, width=241, height=H, fps=FPS)
    with pytest.raises(NovelcomicError, match="no shots"):
        build_timeline(Storyboard(chapter="e"), {}, {}, width=W, height=H, fps=FPS)
    with pytest.raises(NovelcomicError, match="shot d .*1 line"):
        build_timeline(sb, {**audio, "d": []}, images, width=W, height=H, fps=FPS)


def test_removing_a_shot_leaves_the_other_scenes_moves_alone(tmp_path: Path) -> None:
    """Automatic moves alternate by position in the scene, so deleting a shot re-encodes nothing
    of the other scenes (by chapter position, every later shot's pan/push flipped)."""
    from novelcomic.models import Camera, Line, Scene, Shot, Storyboard

    def board(skip: str = "") -> Storyboard:
        scenes = [Scene(id=f"sc{k}", shots=[Shot(id=f"sc{k}-{i}", camera=Camera(size="medium"), lines=[Line(text="好。")])
                                             for i in range(4) if f"sc{k}-{i}" != skip]) for k in range(3)]
        return Storyboard(chapter="c", scenes=scenes)

    still = make_still(tmp_path / "s.png", (90, 90, 90))
    tone = make_tone(tmp_path / "t.wav", 0.5, 440)

    def moves(sb: Storyboard) -> dict[str, str]:
        shots = [sh for sc in sb.scenes for sh in sc.shots]
        audio = {sh.id: [LineAudio("好。", "narrator", "", tone, 0.5)] for sh in shots}
        tl = build_timeline(sb, audio, {sh.id: still for sh in shots}, width=W, height=H, fps=FPS)
        return {c.shot_id: c.motion for c in tl.clips}

    before, after = moves(board()), moves(board(skip="sc0-1"))
    assert {k: v for k, v in before.items() if not k.startswith("sc0")} == {k: v for k, v in after.items() if not k.startswith("sc0")}
    assert [before[f"sc1-{i}"] for i in range(4)] == ["push_in", "pan_right", "push_in", "pan_left"]


def test_motion_rules() -> None:
    assert resolve_motion("close_up", "auto", first_in_scene=False, index=3) == "push_in"
    assert resolve_motion("extreme_close_up", "auto", first_in_scene=True, index=0) == "push_in"
    assert resolve_motion("wide", "auto", first_in_scene=True, index=5) == "pull_out"
    pans = {resolve_motion("extreme_wide", "auto", first_in_scene=False, index=i) for i in range(2)}
    assert pans == {"pan_left", "pan_right"}
    assert resolve_motion("medium", "auto", first_in_scene=False, index=0) == "push_in"
    assert resolve_motion("wide", "static", first_in_scene=True, index=0) == "static"
    for motion in MOTIONS:
        for seconds in (0.5, 3.0, 30.0):
            for view in motion_views(motion, seconds):
                half = 0.5 / view.zoom
                assert view.zoom >= 1 and half - 1e-9 <= view.cx <= 1 - half + 1e-9 and half - 1e-9 <= view.cy <= 1 - half + 1e-9


def test_action_moves_quicker_and_camera_motion_overrides(tmp_path: Path) -> None:
    slow, fast = motion_views("push_in", 3.0), motion_views("push_in", 3.0, speed=2.0)
    assert fast[1].zoom - 1 > 1.8 * (slow[1].zoom - 1)
    pan_slow, pan_fast = motion_views("pan_right", 2.0), motion_views("pan_right", 2.0, speed=2.0)
    assert pan_fast[1].cx - pan_fast[0].cx > 1.8 * (pan_slow[1].cx - pan_slow[0].cx)
    out_start, out_end = motion_views("pull_out", 4.0)
    assert out_start.zoom > out_end.zoom == 1.0  # establishing: a slow pull-out
    images, audio = make_inputs(tmp_path)
    sb = storyboard()
    sb.scenes[1].mood = "action"
    sb.scenes[1].shots[0].camera.motion = "tilt_up"
    tl = build_timeline(sb, audio, images, width=W, height=H, fps=FPS)
    assert [c.motion_speed for c in tl.clips] == [1.0, 1.0, 2.0, 2.0]
    assert [c.motion for c in tl.clips] == ["pull_out", "push_in", "tilt_up", "pan_right"]
    segs = plan_segments(tl, {p: p.name for p in images.values()})
    assert {s.a.speed for s in segs if s.a.image.name == "c.png"} == {2.0}


def test_every_storyboard_transition_renders(tmp_path: Path) -> None:
    from typing import get_args

    from novelcomic.models import Transition

    names = list(get_args(Transition))
    assert {"cut", "dissolve", "fade", "fadeblack", "wipeleft", "wiperight", "slideleft", "slideright"} <= set(names)
    stills = [make_still(tmp_path / f"t{i}.png", COLOURS["abcd"[i % 4]], seed=i) for i in range(len(names) + 1)]
    clips, start = [], 0
    for i, still in enumerate(stills):
        clips.append(Clip(f"t{i}", still, start / FPS, 12 / FPS, "push_in", names[i] if i < len(names) else "cut", "calm"))
        start += 12
    tl = Timeline(W, H, FPS, clips, [], transition_seconds=0.5)
    request = request_for(tmp_path, tl, music=MusicConfig(enabled=False))
    request.cover = request.otio = False
    composer = FFmpegComposer(preset="ultrafast")
    result = composer.compose(request)
    plan = composer.plan(request)
    drawn = {s.transition for s in plan if s.kind == "xfade"}
    assert drawn == {TRANSITIONS.get(n, n) for n in names if n != "cut"} and "dissolve" not in drawn  # xfade's noisy one
    assert set(BLENDS) <= drawn  # the ones drawn here, the rest through xfade
    assert int(stream_of(probe(result.video), "video")["nb_frames"]) == 12 * len(stills)


def test_changing_one_shot_effect_rerenders_only_its_body(tmp_path: Path) -> None:
    images, audio = make_inputs(tmp_path)
    sb = storyboard()
    tl = build_timeline(sb, audio, images, width=W, height=H, fps=FPS)
    request = request_for(tmp_path, tl, music=MusicConfig(enabled=False))
    FFmpegComposer(preset="ultrafast").compose(request)
    seg_dir = request.work_dir / "segments"
    before = snapshot(seg_dir)
    sb.scenes[1].shots[1].effect = "vignette_pulse"  # shot d
    request.timeline = build_timeline(sb, audio, images, width=W, height=H, fps=FPS)
    composer = FFmpegComposer(preset="ultrafast")
    composer.compose(request)
    assert len(composer.rendered) == 1
    (changed,) = [s for s in composer.plan(request) if s.filename in composer.rendered]
    assert changed.effect == "vignette_pulse" and changed.a.image.name == "d.png" and changed.kind == "body"
    after = snapshot(seg_dir)
    assert {k: v for k, v in after.items() if k in before} == {k: v for k, v in before.items() if k in after}
    assert len(set(before) - set(after)) == 1


# --------------------------------------------------------------------------- segments


def _timeline(tmp_path: Path, transitions: list[str], frames: list[int]) -> Timeline:
    still = make_still(tmp_path / "s.png", (50, 50, 50))
    clips, start = [], 0
    for i, (tr, n) in enumerate(zip(transitions, frames)):
        clips.append(Clip(f"s{i}", still, start / FPS, n / FPS, "push_in", tr, "calm"))
        start += n
    return Timeline(W, H, FPS, clips, [], transition_seconds=0.5)


def test_segments_tile_the_timeline_and_transitions_sit_around_cuts(tmp_path: Path) -> None:
    tl = _timeline(tmp_path, ["dissolve", "cut", "wipeleft", "dissolve"], [30, 20, 8, 40])
    segs = plan_segments(tl, {tl.clips[0].image: "h"})
    pos = 0
    for seg in segs:
        assert seg.start == pos and seg.frames >= 1
        pos += seg.frames
    assert pos == 98
    xfades = [s for s in segs if s.kind == "xfade"]
    assert [(s.start, s.frames, s.transition) for s in xfades] == [(27, 6, "fade"), (56, 4, "wipeleft")]
    # each still's move spans all the time it is visible, so offsets run on across segments
    first_body, xf, second_body = segs[0], segs[1], segs[2]
    assert (first_body.a.offset, first_body.a.visible_frames) == (0, 33)
    assert (xf.a.offset, xf.a.visible_frames) == (27, 33)
    assert (xf.b.offset, xf.b.visible_frames) == (0, 23)
    assert (second_body.start, second_body.a.offset, second_body.a.visible_frames) == (33, 6, 23)


def test_batches_are_contiguous_balanced_and_cover_every_segment(tmp_path: Path) -> None:
    tl = _timeline(tmp_path, ["dissolve", "cut", "wipeleft", "dissolve", "cut", "fade", "cut"], [30, 20, 8, 40, 25, 30, 12])
    segs = plan_segments(tl, {tl.clips[0].image: "h"})
    for workers in (1, 2, 3, 16):
        batches = plan_batches(segs, workers)
        assert [s for b in batches for s in b] == segs  # in order, each once
        assert 1 <= len(batches) <= min(workers, len(segs)) and all(batches)
        if workers == 2:
            work = [sum(s.frames * (2 if s.b else 1) for s in b) for b in batches]
            assert max(work) - min(work) <= max(s.frames * 2 for s in segs)
    assert plan_batches([], 4) == []


def test_a_failed_batch_keeps_the_segments_it_finished(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A segment that cannot be drawn fails the compose, but the segments the encoder had finished
    are kept (checked, in place), and the next run renders only the rest."""
    from novelcomic.compose import draw

    images, audio = make_inputs(tmp_path / "in")
    timeline = build_timeline(storyboard(), audio, images, width=W, height=H, fps=FPS)
    request = request_for(tmp_path, timeline)
    segs = FFmpegComposer(preset="ultrafast").plan(request)
    bad = segs[4]
    assert bad.b is None
    real = draw.ViewDrawer.draw

    def draw_or_fail(self, n, dst):  # type: ignore[no-untyped-def]
        if self.view == bad.a and n == 2:
            raise RuntimeError("the disk is on fire")
        real(self, n, dst)

    monkeypatch.setattr(draw.ViewDrawer, "draw", draw_or_fail)
    with pytest.raises(RuntimeError, match="on fire"):
        FFmpegComposer(preset="ultrafast", max_workers=1).compose(request)
    seg_dir = request.work_dir / "segments"
    kept = {p.name for p in seg_dir.glob("seg-*.mp4")}
    assert kept == {s.filename for s in segs[:4]}
    for s in segs[:4]:
        assert mp4_video_frames(seg_dir / s.filename) == s.frames
    assert not request.out_video.exists()
    monkeypatch.undo()
    composer = FFmpegComposer(preset="ultrafast", max_workers=1)
    composer.compose(request)
    assert sorted(composer.reused) == sorted(kept)
    assert sorted(composer.rendered) == sorted({s.filename for s in segs[4:]})
    assert [p for p in seg_dir.iterdir() if p.name.startswith(".")] == []  # no scratch left behind


def test_one_encoder_splits_a_long_batch_exactly(tmp_path: Path) -> None:
    """150 segments through one encoder: every file has exactly its frames and the join is whole."""
    clips, start = [], 0
    for i in range(76):
        n = 5 + i % 4
        still = make_still(tmp_path / f"s{i}.png", (60 + i, 80, 100), seed=i)  # every segment distinct
        clips.append(Clip(f"s{i}", still, start / FPS, n / FPS, ("push_in", "pan_left")[i % 2], "dissolve", "calm"))
        start += n
    tl = Timeline(96, 160, FPS, clips, [], transition_seconds=2 / FPS)
    request = ComposeRequest(timeline=tl, out_video=tmp_path / "o.mp4", out_srt=tmp_path / "o.srt", work_dir=tmp_path / "w",
                             music=MusicConfig(enabled=False), subtitles=SubtitleConfig(burn_in=False))
    composer = FFmpegComposer(preset="ultrafast", max_workers=1)
    composer.compose(request)
    segs = composer.plan(request)
    assert len(segs) > 140 and len(composer.rendered) == len(segs)
    for seg in segs:
        assert mp4_video_frames(request.work_dir / "segments" / seg.filename) == seg.frames
    assert mp4_video_frames(request.out_video) == start


def test_mp4_video_frames_reads_the_sample_count(tmp_path: Path) -> None:
    out = tmp_path / "v.mp4"
    run_ffmpeg(["-f", "lavfi", "-i", f"testsrc=size=64x64:rate={FPS}", "-frames:v", "17", "-c:v", "libx264", str(out)], "a test clip")
    assert mp4_video_frames(out) == 17
    (tmp_path / "x.mp4").write_bytes(b"not an mp4 at all")
    assert mp4_video_frames(tmp_path / "x.mp4") is None


def test_segment_cues_are_shifted_and_clipped() -> None:
    cues = [Cue(0.5, 2.0, "一", "narrator"), Cue(2.5, 3.0, "二", "narrator")]
    got = segment_cues(cues, 1.0, 2.6)
    assert [(round(c.start, 6), round(c.end, 6), c.text) for c in got] == [(0.0, 1.0, "一"), (1.5, 1.6, "二")]


def test_compose_refuses_bad_requests(tmp_path: Path) -> None:
    tl = _timeline(tmp_path, ["cut"], [12])
    with pytest.raises(NovelcomicError, match="no clips"):
        check_request(request_for(tmp_path, Timeline(W, H, FPS, [], []), music=MusicConfig(enabled=False)))
    with pytest.raises(NovelcomicError, match="241x426"):
        check_request(request_for(tmp_path, Timeline(241, H, FPS, tl.clips, []), music=MusicConfig(enabled=False)))
    missing = Clip("zz", tmp_path / "nope.png", 0, 1, "static", "cut", "calm")
    with pytest.raises(NovelcomicError, match="nope.png"):
        check_request(request_for(tmp_path, Timeline(W, H, FPS, [missing], []), music=MusicConfig(enabled=False)))
    bad = Clip("zz", tl.clips[0].image, 0, 1, "static", "spin", "calm")
    with pytest.raises(NovelcomicError, match="'spin'"):
        check_request(request_for(tmp_path, Timeline(W, H, FPS, [bad], []), music=MusicConfig(enabled=False)))
    with pytest.raises(NovelcomicError, match="music track"):
        FFmpegComposer().compose(request_for(tmp_path, tl, music=MusicConfig(tracks={"calm": "missing.mp3"})))


def test_remove_stale_keeps_only_current_files(tmp_path: Path) -> None:
    for name in ("seg-a.mp4", "seg-b.mp4", "audio-x.m4a", ".seg-c.123.part.mp4", "notes.txt"):
        (tmp_path / name).write_text("x")
    remove_stale(tmp_path, {"seg-a.mp4", "audio-x.m4a"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audio-x.m4a", "notes.txt", "seg-a.mp4"]


# --------------------------------------------------------------------------- subtitles


@pytest.mark.parametrize("width", range(8, 41, 2))
def test_wrap_text_obeys_kinsoku(width: int) -> None:
    texts = [
        HELLO * 2,
        "他说：“《红楼梦》真好看。”她笑了，回答道：“是啊！”",
        "（注：这里是括号里的话。）然后……他走了。「好吧」、『再见』。",
        "AI时代来了，GPT-4和其他模型改变了一切。",
    ]
    for text in texts:
        lines = wrap_text(text, width, "zh")
        assert "".join(lines) == text
        for i, line in enumerate(lines):
            assert line
            if i > 0:
                assert line[0] not in CLOSING, (width, lines)
            if i < len(lines) - 1:
                assert line[-1] not in OPENING, (width, lines)
            assert text_units(line) <= width + 4, (width, lines)  # hanging punctuation may overhang


def test_wrap_text_keeps_chinese_words_whole() -> None:
    """A line never ends inside a word (儿|子, 叮|叮当当): at every width the break falls between words."""
    text = "老渔夫的儿子叮叮当当地跑过来，手里拿着一盏红色的灯笼。"
    for width in range(10, 30):
        lines = wrap_text(text, width, "zh")
        assert "".join(lines) == text
        for a, b in zip(lines, lines[1:]):
            joint = a[-1] + b[0]
            assert joint not in ("儿子", "叮叮", "叮当", "灯笼", "渔夫"), (width, lines)


def test_wrap_text_english_on_word_boundaries() -> None:
    text = "The quick brown fox jumps over the lazy dog, and then it runs away."
    lines = wrap_text(text, 20, "en")
    assert " ".join(lines) == text
    assert all(len(line) <= 20 for line in lines)


def test_long_cues_are_split_over_their_time() -> None:
    long_text = "这是一个很长很长的句子。" * 6
    laid = layout_cues([Cue(10.0, 22.0, long_text, "narrator")], W, H)
    assert len(laid) > 1
    assert laid[0].start == 10.0 and laid[-1].end == 22.0
    for a, b in zip(laid, laid[1:]):
        assert a.end == pytest.approx(b.start) and a.end > a.start
    assert all(len(c.text.split("\n")) <= 2 for c in laid)
    assert "".join(c.text.replace("\n", "") for c in laid) == long_text


def test_srt_and_ass_files(tmp_path: Path) -> None:
    assert srt_time(3661.5) == "01:01:01,500"
    cues = [Cue(0.3, 1.25, HELLO, "narrator"), Cue(1.5, 2.0, "走吧。", "qing", "阿青")]
    write_srt(cues, tmp_path / "x.srt")
    assert parse_srt((tmp_path / "x.srt").read_text(encoding="utf-8")) == [(0.3, 1.25, HELLO), (1.5, 2.0, "走吧。")]
    write_ass(cues, tmp_path / "x.ass", 1080, 1920, "WenQuanYi Micro Hei")
    ass = (tmp_path / "x.ass").read_text(encoding="utf-8")
    assert "PlayResY: 1920" in ass and "Style: Narration,WenQuanYi Micro Hei" in ass and "Style: Dialogue," in ass
    assert re.search(r"Dialogue: 0,0:00:01.50,0:00:02.00,Dialogue,.*\{\\c&H[0-9A-F]{6}&\}阿青：\{\\r\}走吧。", ass)


# --------------------------------------------------------------------------- ffmpeg helpers


def test_run_ffmpeg_raises_with_stderr_tail(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match=r"while reading nothing:[\s\S]*nope"):
        run_ffmpeg(["-i", str(tmp_path / "nope.wav"), "-f", "null", "-"], "reading nothing")


def test_probe_without_ffprobe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chapter: dict) -> None:
    monkeypatch.setattr("novelcomic.ffmpeg.ffprobe_exe", lambda: None)
    info = probe(chapter["result"].video)
    video, audio = stream_of(info, "video"), stream_of(info, "audio")
    assert video and video["codec_name"] == "h264" and (video["width"], video["height"]) == (W, H)
    assert video["pix_fmt"] == "yuv420p" and video["r_frame_rate"] == f"{FPS}/1"
    assert audio and audio["codec_name"] == "aac" and audio["sample_rate"] == "48000"
    assert abs(float(info["format"]["duration"]) - chapter["timeline"].duration) <= 0.1
    assert parse_ffmpeg_info("nothing") == {"format": {}, "streams": []}


def test_ffmpeg_override_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NOVELCOMIC_FFMPEG", str(tmp_path / "no-such-ffmpeg"))
    with pytest.raises(NovelcomicError, match="NOVELCOMIC_FFMPEG"):
        ffmpeg_exe()
    monkeypatch.setenv("NOVELCOMIC_FFMPEG", shutil.which("true") or "/bin/true")
    assert ffmpeg_exe().endswith("true")
