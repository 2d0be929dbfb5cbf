"""The soundtrack, measured on a real composed MP4: loudness (ffmpeg ebur128), true peak, ducking of
the music under speech, crossfades between moods, user music files, and subtitle cues against the
audio they caption (onsets found in the decoded audio, not taken from the timeline)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from novelcomic.compose import audiomix
from novelcomic.compose.base import ComposeRequest, LineAudio
from novelcomic.compose.ffmpeg_composer import FFmpegComposer
from novelcomic.compose.timeline import build_timeline
from novelcomic.ffmpeg import ffmpeg_exe
from novelcomic.models import Line, MusicConfig, Scene, Shot, Storyboard, SubtitleConfig
from tests.test_compose import make_still, make_tone, parse_srt, read_audio, tone_level

W, H, FPS = 240, 426, 12
SPEECH_HZ = 620.0
CALM_HZ, TENSE_HZ = 110.0, 233.0
SR = 48000


def _music(path: Path, hz: float) -> Path:
    t = np.arange(3 * 44100) / 44100  # a whole number of cycles of both tones: loops cleanly
    tone = 0.5 * np.sin(2 * np.pi * hz * t)
    from novelcomic.audio import write_wav

    write_wav(path, np.stack([tone, tone], axis=1), 44100)
    return path


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("mix")
    shots = [  # a: speech, b: silence (calm), c: silence (tense), d: speech (tense)
        ("a", "calm", [("第一句话。", 2.0)], None),
        ("b", "calm", [], 3.5),
        ("c", "tense", [], 3.5),
        ("d", "tense", [("第二句话，很长。", 2.5)], None),
    ]
    scenes = []
    images, audio = {}, {}
    for i, (sid, mood, lines, hint) in enumerate(shots):
        scenes.append(Scene(id=f"s{sid}", mood=mood, shots=[
            Shot(id=sid, lines=[Line(text=t) for t, _ in lines], duration_hint=hint, transition="cut")
        ]))
        images[sid] = make_still(root / f"{sid}.png", (40, 40 + 20 * i, 70), seed=i)
        audio[sid] = [
            LineAudio(t, "narrator", "", make_tone(root / f"{sid}{k}.wav", secs, SPEECH_HZ), secs)
            for k, (t, secs) in enumerate(lines)
        ]
    sb = Storyboard(chapter="m", scenes=scenes)
    tl = build_timeline(sb, audio, images, width=W, height=H, fps=FPS)
    (root / "music").mkdir()
    _music(root / "music" / "calm.wav", CALM_HZ)
    _music(root / "music" / "tense.wav", TENSE_HZ)
    music = MusicConfig(tracks={"calm": "music/calm.wav", "tense": "music/tense.wav"})  # relative to the project
    request = ComposeRequest(
        timeline=tl, out_video=root / "out" / "m.mp4", out_srt=root / "out" / "m.srt", work_dir=root / "work" / "m",
        music=music, subtitles=SubtitleConfig(burn_in=False), project_dir=root, cover=False, otio=False,
    )
    result = FFmpegComposer(preset="ultrafast").compose(request)
    return {"tl": tl, "result": result, "samples": read_audio(result.video, SR)}


def ebur128(video: Path) -> tuple[float, float]:
    """(integrated LUFS, true peak dBTP) as ffmpeg's ebur128 filter measures them."""
    err = subprocess.run(
        [ffmpeg_exe(), "-nostdin", "-i", str(video), "-vn", "-af", "ebur128=peak=true", "-f", "null", "-"],
        capture_output=True, text=True,
    ).stderr
    summary = err[err.rindex("Summary:") :]
    integrated = float(re.search(r"I:\s+(-?[\d.]+) LUFS", summary).group(1))
    true_peak = float(re.search(r"True peak:\s+Peak:\s+(-?[\d.]+) dBFS", summary).group(1))
    return integrated, true_peak


def _db(x: float) -> float:
    return 20 * np.log10(max(x, 1e-9))


def _window(samples: np.ndarray, a: float, b: float) -> np.ndarray:
    return samples[int(a * SR) : int(b * SR)]


def test_loudness_is_minus_16_lufs_and_true_peak_below_minus_1(mixed: dict) -> None:
    integrated, true_peak = ebur128(mixed["result"].video)
    assert -17.0 <= integrated <= -15.0, integrated
    assert true_peak <= -1.0, true_peak


def test_music_is_ducked_at_least_6_db_under_speech(mixed: dict) -> None:
    tl, samples = mixed["tl"], mixed["samples"]
    (a_start, _), = mixed["tl"].clips[0].audio
    speech = _window(samples, a_start + 0.4, a_start + 1.8)  # inside the first line (attack settled)
    b = tl.clips[1]
    quiet = _window(samples, b.start + 1.0, b.start + b.duration - 0.3)  # calm music alone
    assert tone_level(speech, SPEECH_HZ) > 0.05  # the speech is there
    ducked, free = tone_level(speech, CALM_HZ), tone_level(quiet, CALM_HZ)
    assert free > 0.01, free  # the music is audible where nobody speaks
    assert _db(free) - _db(ducked) >= 6.0, (_db(free), _db(ducked))


def test_moods_crossfade_and_user_tracks_are_used(mixed: dict) -> None:
    tl, samples = mixed["tl"], mixed["samples"]
    change = tl.clips[2].start  # calm → tense
    before = _window(samples, change - 1.6, change - 1.0)
    after = _window(samples, change + 1.0, change + 1.6)
    around = _window(samples, change - 0.15, change + 0.15)
    assert tone_level(before, CALM_HZ) > 10 * tone_level(before, TENSE_HZ)
    assert tone_level(after, TENSE_HZ) > 10 * tone_level(after, CALM_HZ)
    both = tone_level(around, CALM_HZ), tone_level(around, TENSE_HZ)
    assert min(both) > 0.25 * max(both)  # mid-crossfade: both moods heard
    # no dip: an equal-power crossfade keeps the bed's level through the change
    level = lambda w: float(np.sqrt(np.mean(w**2)))  # noqa: E731
    assert _db(level(around)) > _db(level(before)) - 3.0


def test_subtitle_cues_start_within_50_ms_of_their_audio(mixed: dict) -> None:
    samples, result = mixed["samples"], mixed["result"]
    cues = parse_srt(result.srt.read_text(encoding="utf-8"))
    assert len(cues) == 2
    # the speech tone's envelope in 5 ms steps (the music sits at other frequencies)
    hop = SR // 200
    t = np.arange(hop * 4) / SR
    probe = np.exp(-2j * np.pi * SPEECH_HZ * t)
    env = np.array([
        2 * abs(np.mean(samples[i : i + len(t)] * probe)) for i in range(0, len(samples) - len(t), hop)
    ])
    on = env > 0.5 * env.max()
    onsets = [i * hop / SR for i in range(1, len(on)) if on[i] and not on[i - 1]]
    offsets = [i * hop / SR for i in range(1, len(on)) if not on[i] and on[i - 1]]
    assert len(onsets) == 2, onsets
    for (start, end, _), onset, offset in zip(cues, onsets, offsets):
        assert abs(start - onset) <= 0.05, (start, onset)
        assert abs(end - offset) <= 0.05, (end, offset)


def test_music_track_crossfade_is_equal_power() -> None:
    ones = np.ones((1000, 2), dtype=np.float32)
    runs = [audiomix.MoodRun("calm", 0.0, 2.0), audiomix.MoodRun("tense", 2.0, 4.0)]
    settings = audiomix.MixSettings(crossfade=1.0, fade_in=0.0, fade_out=0.0)
    calm = audiomix.build_music_track(runs[:1] + [audiomix.MoodRun("x", 2.0, 4.0)], lambda m: ones if m == "calm" else 0 * ones, 4.0, settings, rate=1000)
    tense = audiomix.build_music_track([audiomix.MoodRun("x", 0.0, 2.0), runs[1]], lambda m: ones if m == "tense" else 0 * ones, 4.0, settings, rate=1000)
    power = calm[:, 0] ** 2 + tense[:, 0] ** 2
    assert np.allclose(power[100:3900], 1.0, atol=0.02)  # constant power through the change
    assert calm[1400, 0] > 0.99 and tense[2600, 0] > 0.99 and calm[2600, 0] < 0.01


def test_tracks_built_block_by_block_match_the_whole(tmp_path: Path) -> None:
    """Long chapters are mixed in blocks (memory stays flat): the blocks add up to the same track,
    with lines and mood changes straddling block edges."""
    from novelcomic.audio import read_wav, write_wav

    rate = 1000
    lines = []
    for i, (start, secs) in enumerate([(0.2, 0.5), (0.9, 0.4), (1.1, 0.6), (2.95, 0.3)]):
        t = np.arange(int(secs * rate)) / rate
        lines.append((start, write_wav(tmp_path / f"l{i}.wav", 0.3 * np.sin(2 * np.pi * (50 + 10 * i) * t), rate)))
    whole = np.zeros(3 * rate, dtype=np.float32)
    for start, path in lines:
        samples, _ = read_wav(path)
        at = int(round(start * rate))
        whole[at:at + len(samples)] += samples[: len(whole) - at]
    blocks = list(audiomix.voice_blocks(lines, 3.0, rate, tmp_path, block=256))
    assert len(blocks) == 12 and np.allclose(np.concatenate(blocks), whole, atol=1e-6)

    out = audiomix.write_voice_track(lines, 3.0, rate, -20.0, tmp_path / "voice.wav", tmp_path)
    levelled, got_rate = read_wav(out)
    assert got_rate == rate
    assert np.allclose(levelled, audiomix.level_speech(whole, rate, -20.0), atol=2e-4)  # PCM16 rounding

    loops = {"calm": np.random.default_rng(1).uniform(-0.5, 0.5, (700, 2)).astype(np.float32),
             "tense": np.random.default_rng(2).uniform(-0.5, 0.5, (300, 2)).astype(np.float32)}
    runs = [audiomix.MoodRun("calm", 0.0, 1.3), audiomix.MoodRun("tense", 1.3, 2.2), audiomix.MoodRun("calm", 2.2, 3.0)]
    settings = audiomix.MixSettings(crossfade=0.4, fade_in=0.3, fade_out=0.5)
    small = np.concatenate(list(audiomix.music_blocks(runs, loops.__getitem__, 3.0, settings, rate, block=97)))
    big = np.concatenate(list(audiomix.music_blocks(runs, loops.__getitem__, 3.0, settings, rate, block=10_000)))
    assert small.shape == (3000, 2) and np.allclose(small, big, atol=1e-6)
    assert abs(small[0]).max() < 1e-6 and abs(small[-1]).max() < 0.01  # faded in and out
