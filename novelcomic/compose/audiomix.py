"""The chapter's soundtrack: narration and dialogue placed sample-exactly, background music per
mood (looped, crossfaded where the mood changes), ducked under speech, loudness-normalised.

Placement and looping happen in numpy (exact and cheap); ducking (``sidechaincompress``),
mixing and loudness normalisation (two-pass ``loudnorm``) happen in one ffmpeg graph each.
"""

from __future__ import annotations

import json
import math
import wave
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from novelcomic.audio import read_wav, write_wav_blocks
from novelcomic.errors import BackendError, NovelcomicError
from novelcomic.ffmpeg import run_ffmpeg
from novelcomic.fsutil import atomic_path, sha256_file

OUT_RATE = 48000
MUSIC_RATE = 44100
DEFAULT_VOICE_RATE = 24000


@dataclass(frozen=True)
class MoodRun:
    """A stretch of the chapter (seconds) with one background mood."""

    mood: str
    start: float
    end: float


@dataclass(frozen=True)
class MixSettings:
    """How the soundtrack is mixed."""

    music_db: float = -18.0  # BGM level before ducking
    loudness: float = -16.0  # LUFS integrated
    true_peak: float = -1.5  # dBTP
    lra: float = 11.0
    bitrate: str = "192k"
    crossfade: float = 1.5  # seconds between moods
    fade_in: float = 0.6
    fade_out: float = 1.5
    speech_db: float = -20.0  # the voice track is levelled to this RMS while someone speaks
    duck_threshold: float = 0.02  # sidechain level (linear) above which music is pushed down
    duck_ratio: float = 4.0  # with speech at speech_db: about 10 dB of ducking
    duck_attack_ms: float = 30.0
    duck_release_ms: float = 450.0


def mood_runs(moods: Sequence[tuple[str, float, float]]) -> list[MoodRun]:
    """Merge consecutive (mood, start, end) clips with the same mood into runs."""
    runs: list[MoodRun] = []
    for mood, start, end in moods:
        if runs and runs[-1].mood == mood:
            runs[-1] = MoodRun(mood, runs[-1].start, end)
        else:
            runs.append(MoodRun(mood, start, end))
    return runs


# --------------------------------------------------------------------------- reading


def wav_rate(path: Path) -> int | None:
    """The sample rate in a PCM WAV header, or None when the file is not one ``wave`` reads."""
    try:
        with wave.open(str(path), "rb") as wf:
            return wf.getframerate()
    except (wave.Error, EOFError, OSError):
        return None


def load_audio(path: Path, rate: int, scratch: Path, *, channels: int = 1) -> np.ndarray:
    """``path`` as float32 samples at ``rate``: mono 1-D, or ``(frames, channels)`` when ``channels`` > 1.

    PCM WAVs at the right rate are read directly; anything else (another rate, float WAV, MP3,
    …) is converted by ffmpeg into ``scratch`` first.
    """
    if wav_rate(path) != rate:
        converted = scratch / f"conv-{sha256_file(path)[:16]}-{rate}-{channels}.wav"
        if not converted.exists():
            with atomic_path(converted) as tmp:
                run_ffmpeg(
                    ["-i", str(path), "-vn", "-ar", str(rate), "-ac", str(channels), "-c:a", "pcm_s16le", str(tmp)],
                    f"converting {path} to {rate} Hz WAV",
                )
        path = converted
    try:
        data, got = read_wav(path, mono=channels == 1)
    except (ValueError, wave.Error, EOFError) as exc:
        raise NovelcomicError(f"cannot read audio {path}: {exc}") from exc
    if got != rate:  # pragma: no cover - the conversion above guarantees it
        raise BackendError(f"{path} is {got} Hz after conversion to {rate} Hz")
    if channels > 1:
        data = np.asarray(data, dtype=np.float32)
        if data.ndim == 1:
            data = data[:, None]
        if data.shape[1] != channels:
            data = np.repeat(data.mean(axis=1, keepdims=True), channels, axis=1)
    return np.asarray(data, dtype=np.float32)


# --------------------------------------------------------------------------- building tracks


def voice_rate(paths: Sequence[Path]) -> int:
    """The sample rate most of the line WAVs share (the voice track is built at it)."""
    rates = Counter(r for r in (wav_rate(p) for p in paths) if r)
    return rates.most_common(1)[0][0] if rates else DEFAULT_VOICE_RATE


def voice_blocks(
    placements: Sequence[tuple[float, Path]], duration: float, rate: int, scratch: Path, block: int = 1 << 18
) -> Iterator[np.ndarray]:
    """The mono voice track of ``duration`` seconds, ``block`` samples at a time: every line's
    samples added at its start time. Only the lines sounding in a block are held in memory."""
    total = int(round(duration * rate))
    pending = sorted(((int(round(start * rate)), Path(path)) for start, path in placements), key=lambda p: p[0])
    active: list[tuple[int, np.ndarray]] = []
    nxt = 0
    for lo in range(0, total, block):
        hi = min(total, lo + block)
        while nxt < len(pending) and pending[nxt][0] < hi:
            at, path = pending[nxt]
            active.append((at, load_audio(path, rate, scratch)))
            nxt += 1
        out = np.zeros(hi - lo, dtype=np.float32)
        for at, samples in active:
            a, b = max(lo, at), min(hi, at + len(samples))
            if b > a:
                out[a - lo : b - lo] += samples[a - at : b - at]
        active = [(at, smp) for at, smp in active if at + len(smp) > hi]
        yield out


def build_voice_track(placements: Sequence[tuple[float, Path]], duration: float, rate: int, scratch: Path) -> np.ndarray:
    """One mono array of ``duration`` seconds with every line's samples at its start time."""
    blocks = list(voice_blocks(placements, duration, rate, scratch))
    return np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)


class SpeechMeter:
    """Accumulates what :func:`level_speech` needs, block by block: the mean power of the 50 ms
    windows louder than -50 dBFS, and the peak."""

    def __init__(self, rate: int) -> None:
        self.win = max(1, rate // 20)
        self._carry = np.zeros(0, dtype=np.float32)
        self.active_power = 0.0
        self.active_count = 0
        self.peak = 0.0

    def add(self, samples: np.ndarray) -> None:
        if samples.size:
            self.peak = max(self.peak, float(np.max(np.abs(samples))))
        data = np.concatenate([self._carry, samples]) if self._carry.size else samples
        usable = len(data) - len(data) % self.win
        frames = data[:usable].reshape(-1, self.win).astype(np.float64)
        power = np.mean(frames * frames, axis=1)
        active = power[power > 10 ** (-50 / 10)]
        self.active_power += float(np.sum(active))
        self.active_count += int(active.size)
        self._carry = np.array(data[usable:], dtype=np.float32)

    def gain(self, target_db: float = -20.0, peak: float = 0.95) -> float:
        """The gain that levels the speech to ``target_db`` RMS without a peak above ``peak``."""
        if self.active_count == 0:
            return 1.0
        gain = 10 ** (target_db / 20) / math.sqrt(self.active_power / self.active_count)
        return min(gain, peak / self.peak) if self.peak > 0 else gain


def level_speech(track: np.ndarray, rate: int, target_db: float = -20.0, peak: float = 0.95) -> np.ndarray:
    """``track`` scaled so its speech (50 ms windows louder than -50 dBFS) has RMS ``target_db``,
    without letting a peak exceed ``peak``. TTS engines differ in level; this makes the music
    level and the amount of ducking mean the same for all of them."""
    meter = SpeechMeter(rate)
    meter.add(np.asarray(track, dtype=np.float32))
    return (track * meter.gain(target_db, peak)).astype(np.float32)


def write_voice_track(
    placements: Sequence[tuple[float, Path]], duration: float, rate: int, target_db: float, out: Path, scratch: Path
) -> Path:
    """The levelled voice track as a mono PCM16 WAV, built block by block: memory stays the same
    however long the chapter is (the unlevelled track waits in a float32 file between the passes)."""
    meter = SpeechMeter(rate)
    raw = scratch / "voice.f32"
    with open(raw, "wb") as fh:
        for blk in voice_blocks(placements, duration, rate, scratch):
            meter.add(blk)
            fh.write(blk.tobytes())
    gain = meter.gain(target_db)

    def scaled() -> Iterator[np.ndarray]:
        with open(raw, "rb") as fh:
            while chunk := fh.read(4 << 20):
                yield np.frombuffer(chunk, dtype=np.float32) * np.float32(gain)

    write_wav_blocks(out, scaled(), rate, channels=1)
    raw.unlink(missing_ok=True)
    return out


_BLOCK = 1 << 18  # frames per block when tiling a loop over a long bed


def music_blocks(
    runs: Sequence[MoodRun],
    loop_for: Callable[[str], np.ndarray],
    duration: float,
    settings: MixSettings,
    rate: int = MUSIC_RATE,
    block: int = _BLOCK,
) -> Iterator[np.ndarray]:
    """The stereo bed, ``(frames, 2)`` ``block`` frames at a time: each run's loop tiled over it,
    equal-power crossfades between runs, a short fade-in at the start and a fade-out at the end."""
    total = int(round(duration * rate))
    if total == 0:
        return
    shortest = min((r.end - r.start for r in runs), default=0.0)
    xf = max(0.0, min(settings.crossfade, shortest / 2))
    n = int(round(xf * rate))
    spans = []  # (first frame, end frame, mood, fade-in curve, fade-out curve)
    for i, run in enumerate(runs):
        a = max(0.0, run.start - (xf / 2 if i > 0 else 0.0))
        b = min(duration, run.end + (xf / 2 if i < len(runs) - 1 else 0.0))
        ia, ib = int(round(a * rate)), int(round(b * rate))
        if ib > ia:
            fin = np.sin(np.linspace(0, math.pi / 2, n, dtype=np.float32)) if i > 0 and n else None
            fout = np.cos(np.linspace(0, math.pi / 2, n, dtype=np.float32)) if i < len(runs) - 1 and n else None
            spans.append((ia, ib, run.mood, fin, fout))
    fi = min(int(settings.fade_in * rate), total // 3)
    fo = min(int(settings.fade_out * rate), total // 3)
    for lo in range(0, total, block):
        hi = min(total, lo + block)
        out = np.zeros((hi - lo, 2), dtype=np.float32)
        for ia, ib, mood, fin, fout in spans:
            a, b = max(lo, ia), min(hi, ib)
            if b <= a:
                continue
            loop = loop_for(mood)
            if len(loop) == 0:
                continue
            piece = loop[np.arange(a - ia, b - ia) % loop.shape[0]]
            if fin is not None and a - ia < len(fin):
                k = min(b, ia + len(fin)) - a
                piece[:k] *= fin[a - ia : a - ia + k, None]
            if fout is not None and b > ib - len(fout):
                start = max(a, ib - len(fout))
                piece[start - a :] *= fout[start - (ib - len(fout)) : b - (ib - len(fout)), None]
            out[a - lo : b - lo] += piece
        if fi and lo < fi:
            k = min(hi, fi)
            out[: k - lo] *= np.linspace(0.0, 1.0, fi, dtype=np.float32)[lo:k, None]
        if fo and hi > total - fo:
            start = max(lo, total - fo)
            out[start - lo :] *= np.linspace(1.0, 0.0, fo, dtype=np.float32)[start - (total - fo) : hi - (total - fo), None]
        yield out


def build_music_track(
    runs: Sequence[MoodRun],
    loop_for: Callable[[str], np.ndarray],
    duration: float,
    settings: MixSettings,
    rate: int = MUSIC_RATE,
) -> np.ndarray:
    """The whole bed of :func:`music_blocks` as one ``(frames, 2)`` array."""
    blocks = list(music_blocks(runs, loop_for, duration, settings, rate))
    return np.concatenate(blocks) if blocks else np.zeros((0, 2), dtype=np.float32)


def write_music_track(
    runs: Sequence[MoodRun], loop_for: Callable[[str], np.ndarray], duration: float, settings: MixSettings, out: Path,
    rate: int = MUSIC_RATE,
) -> Path:
    """The bed of :func:`music_blocks` as a stereo PCM16 WAV, written block by block."""
    write_wav_blocks(out, music_blocks(runs, loop_for, duration, settings, rate), rate, channels=2)
    return out


def stereo_loop(samples: np.ndarray) -> np.ndarray:
    """A loop as ``(frames, 2)``."""
    data = np.asarray(samples, dtype=np.float32)
    if data.ndim == 1:
        data = data[:, None]
    if data.shape[1] == 1:
        data = np.repeat(data, 2, axis=1)
    return data[:, :2]


# --------------------------------------------------------------------------- mixing in ffmpeg


def mix_to_aac(voice_wav: Path, music_wav: Path | None, out: Path, duration: float, settings: MixSettings, scratch: Path) -> None:
    """Duck the music under the voice, mix, loudness-normalise (two passes) and encode AAC 48 kHz.

    ``out`` is written atomically.
    """
    mixed = scratch / "mix.wav"
    stats = scratch / "loudness.json"
    graph = _mix_graph(music_wav is not None, settings)
    inputs = ["-i", str(voice_wav)] + (["-i", str(music_wav)] if music_wav else [])
    run_ffmpeg(
        [*inputs, "-filter_complex", graph, "-map", "[mix]", "-c:a", "pcm_f32le", "-ar", str(OUT_RATE), str(mixed),
         "-map", "[meas]", "-f", "null", "-"],
        "mixing voice and music",
        cwd=scratch,
    )
    norm = _loudnorm_second_pass(stats, settings)
    with atomic_path(out) as tmp:
        af = ",".join(f for f in (norm, f"aresample={OUT_RATE}", "apad") if f)
        run_ffmpeg(
            ["-i", str(mixed), "-af", af, "-t", f"{duration:.6f}", "-c:a", "aac", "-b:a", settings.bitrate,
             "-ar", str(OUT_RATE), "-ac", "2", "-f", "mp4", str(tmp)],
            "normalising loudness and encoding AAC",
        )


def _mix_graph(with_music: bool, settings: MixSettings) -> str:
    target = f"I={settings.loudness}:TP={settings.true_peak}:LRA={settings.lra}"
    measure = f"loudnorm={target}:print_format=json:stats_file=loudness.json"
    voice = f"[0:a]aresample={OUT_RATE},aformat=sample_fmts=fltp:channel_layouts=stereo"
    if not with_music:
        return f"{voice},asplit=2[mix][m];[m]{measure}[meas]"
    duck = (
        f"sidechaincompress=threshold={settings.duck_threshold}:ratio={settings.duck_ratio}"
        f":attack={settings.duck_attack_ms}:release={settings.duck_release_ms}:makeup=1"
    )
    return (
        f"{voice},asplit=2[vmix][vkey];"
        f"[1:a]aresample={OUT_RATE},aformat=sample_fmts=fltp:channel_layouts=stereo,volume={settings.music_db}dB[bgm];"
        f"[bgm][vkey]{duck}[duck];"
        f"[vmix][duck]amix=inputs=2:duration=first:normalize=0,asplit=2[mix][m];[m]{measure}[meas]"
    )


def _loudnorm_second_pass(stats: Path, settings: MixSettings) -> str:
    """The ``loudnorm`` filter for the second pass, from the first pass's stats ('' for silence)."""
    try:
        m = json.loads(stats.read_text())
        measured_i = float(m["input_i"])
    except (OSError, ValueError, KeyError) as exc:
        raise BackendError(f"loudnorm wrote no usable stats ({stats}): {exc}") from exc
    if not math.isfinite(measured_i) or measured_i < -70:
        return ""  # silence: nothing to normalise
    return (
        f"loudnorm=I={settings.loudness}:TP={settings.true_peak}:LRA={settings.lra}"
        f":measured_I={m['input_i']}:measured_TP={_finite(m['input_tp'])}:measured_LRA={m['input_lra']}"
        f":measured_thresh={_finite(m['input_thresh'])}:offset={m['target_offset']}:linear=true"
    )


def _finite(value: str) -> str:
    try:
        return value if math.isfinite(float(value)) else "-99"
    except ValueError:
        return "-99"
