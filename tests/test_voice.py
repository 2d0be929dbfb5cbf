"""Voice stage backends on real audio: espeak-ng speech, timed silence, casting."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from novelcomic.audio import read_wav, rms, silence, wav_duration, write_wav
from novelcomic.models import NARRATOR, Character, CharactersFile, VoiceSpec
from novelcomic.registry import tts_backends
from novelcomic.voice.base import SpeechRequest
from novelcomic.voice.casting import cast_voices, guess_gender
from novelcomic.voice.espeak import EspeakTTS, clean_text
from novelcomic.voice.silent import SilentTTS, estimate_speech_seconds

SPEECH_RMS = 0.02  # espeak-ng speech sits around 0.08-0.15

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")


def _cast() -> CharactersFile:
    return CharactersFile(characters=[
        Character(id="qing", name="阿青", voice=VoiceSpec(gender="female", age="young", temperament="活泼")),
        Character(id="chen", name="老陈", voice=VoiceSpec(gender="male", age="old", temperament="沉稳")),
        Character(id="wang", name="王公子", voice=VoiceSpec(age="young")),
        Character(id="li", name="李姑娘"),
        Character(id="zhao", name="赵四"),
        Character(id="sun", name="孙五"),
    ])


def _say(tmp_path: Path, text: str, language: str = "zh", emotion: str = "neutral", voice: VoiceSpec | None = None,
         tts: EspeakTTS | None = None, name: str = "line") -> tuple[Path, object]:
    out = tmp_path / f"{name}.wav"
    req = SpeechRequest(text=text, language=language, voice=voice or VoiceSpec(), emotion=emotion)
    return out, (tts or EspeakTTS()).synthesize(req, out)


# --------------------------------------------------------------------------- audio helpers


def test_wav_helpers_round_trip(tmp_path: Path) -> None:
    t = np.arange(22050) / 22050
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    write_wav(tmp_path / "m.wav", tone, 22050)
    back, rate = read_wav(tmp_path / "m.wav")
    assert rate == 22050 and wav_duration(tmp_path / "m.wav") == pytest.approx(1.0)
    assert np.max(np.abs(back - tone)) < 1e-3
    write_wav(tmp_path / "s.wav", np.stack([tone, -tone], axis=1), 22050)
    stereo, _ = read_wav(tmp_path / "s.wav", mono=False)
    assert stereo.shape == (22050, 2)
    assert rms(read_wav(tmp_path / "s.wav")[0]) < 1e-3  # opposite channels cancel in the mixdown
    assert silence(0.5, 22050).shape == (11025,) and not silence(0.5, 22050).any()


# --------------------------------------------------------------------------- espeak


@needs_espeak
@pytest.mark.parametrize(("language", "text"), [
    ("zh", "河水静静地流着，远处传来几声鸟鸣。"),
    ("en", "The river flowed quietly, and far away a few birds were singing."),
])
def test_espeak_speaks(tmp_path: Path, language: str, text: str) -> None:
    out, result = _say(tmp_path, text, language)
    samples, rate = read_wav(out)
    assert result.backend == "espeak" and not result.warnings
    assert result.voice == {"zh": "cmn-latn-pinyin", "en": "en-us"}[language]
    assert result.sample_rate == rate == 22050
    assert result.duration == pytest.approx(wav_duration(out)) and result.duration > 0.3
    assert rms(samples) > SPEECH_RMS


@needs_espeak
def test_espeak_through_the_registry_with_a_cast_voice(tmp_path: Path) -> None:
    cast = cast_voices(_cast(), "zh", "espeak")
    tts = tts_backends.create("espeak", {"speed": 1.1})
    out, result = _say(tmp_path, "你好，老陈。", voice=cast["qing"], tts=tts)
    assert result.voice == cast["qing"].voice and "+f" in result.voice
    assert rms(read_wav(out)[0]) > SPEECH_RMS


@needs_espeak
def test_emotions_change_the_sound(tmp_path: Path) -> None:
    text = "我们必须马上离开这里，他们就要来了。"
    runs = {e: _say(tmp_path, text, emotion=e, name=e) for e in ("neutral", "whisper", "excited", "sad")}
    level = {e: rms(read_wav(out)[0]) for e, (out, _) in runs.items()}
    length = {e: result.duration for e, (_, result) in runs.items()}
    assert level["whisper"] < 0.7 * level["neutral"] < level["excited"]
    assert length["whisper"] > length["neutral"] > length["excited"]
    assert length["sad"] > length["neutral"]


@needs_espeak
def test_hostile_text_is_spoken_safely(tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    canary.write_text("still here")
    text = f'他说："; rm -rf {canary} $(touch {tmp_path}/pwned) `id` \'quoted\'\n第二行…… & | > {tmp_path}/x'
    out, result = _say(tmp_path, text)
    assert canary.read_text() == "still here"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["canary", "line.wav"]
    assert not result.warnings and result.duration > 0.3 and rms(read_wav(out)[0]) > SPEECH_RMS


def test_clean_text_drops_what_espeak_would_spell_out() -> None:
    assert clean_text("《红楼梦》——“好”……*~#", "zh") == "红楼梦，好，"
    assert clean_text('He said "hi"... then\nleft & ran *fast* #1', "en") == "He said hi, then, left and ran fast 1"
    assert clean_text("don't stop - it's well-known", "en") == "don't stop it's well-known"
    assert clean_text("……！", "zh") == ""


def test_punctuation_only_line_is_a_pause(tmp_path: Path) -> None:
    out, result = _say(tmp_path, "……")
    assert result.duration >= 0.8 and not result.warnings and rms(read_wav(out)[0]) == 0.0


def test_missing_espeak_falls_back_to_timed_silence(tmp_path: Path) -> None:
    tts = EspeakTTS(binary=str(tmp_path / "no-such-espeak"))
    short_out, short = _say(tmp_path, "你好。", tts=tts, name="short")
    long_out, long = _say(tmp_path, "河水静静地流着，远处传来几声鸟鸣，他站在桥上望着晚霞。", tts=tts, name="long")
    assert short.backend == "espeak" and long.duration > short.duration >= 0.8
    assert short.duration == pytest.approx(wav_duration(short_out))
    assert rms(read_wav(long_out)[0]) == 0.0
    assert any("espeak-ng" in w and "apt-get install espeak-ng" in w for w in short.warnings)


@needs_espeak
def test_bad_voice_name_uses_the_language_default(tmp_path: Path) -> None:
    out, result = _say(tmp_path, "Hello there.", "en", voice=VoiceSpec(voice="bogus+f2"))
    assert result.voice == "en-us" and any("bogus+f2" in w for w in result.warnings)
    assert rms(read_wav(out)[0]) > SPEECH_RMS


# --------------------------------------------------------------------------- silent


def test_silent_tts_is_timed_silence(tmp_path: Path) -> None:
    durations = []
    for i, text in enumerate(["好。", "河水静静地流着。", "河水静静地流着，远处传来几声鸟鸣，他站在桥上，望着天边的晚霞。"]):
        out = tmp_path / f"{i}.wav"
        result = SilentTTS().synthesize(SpeechRequest(text=text, language="zh", voice=VoiceSpec()), out)
        samples, rate = read_wav(out)
        assert rate == result.sample_rate == 22050 and not samples.any()
        assert result.duration == pytest.approx(wav_duration(out)) and result.warnings
        durations.append(result.duration)
    assert durations[0] == pytest.approx(0.8) and durations[0] < durations[1] < durations[2]


def test_speech_estimate() -> None:
    assert estimate_speech_seconds("一二三四五六七八九", "zh") == pytest.approx(2.0)
    assert estimate_speech_seconds("one two three four five six seven eight nine ten", "en") == pytest.approx(10 / 2.7, 0.01)
    assert estimate_speech_seconds("一二三四五，六七八九十。", "zh") > estimate_speech_seconds("一二三四五六七八九十", "zh")


# --------------------------------------------------------------------------- casting


def test_cast_gives_everyone_a_distinct_voice() -> None:
    cast = cast_voices(_cast(), "zh", "espeak")
    assert set(cast) == {NARRATOR, "qing", "chen", "wang", "li", "zhao", "sun"}
    sounds = {(v.voice, v.pitch, v.rate) for v in cast.values()}
    assert len(sounds) == len(cast)
    assert all(v.voice.startswith("cmn-latn-pinyin+") for v in cast.values())
    assert all(0 <= v.pitch <= 99 and 80 <= v.rate <= 450 for v in cast.values())
    assert "+f" in cast["qing"].voice and "+f" in cast["li"].voice  # 李姑娘: guessed from the title
    assert "+m" in cast["wang"].voice or "grandpa" in cast["wang"].voice
    assert cast["chen"].rate < cast["qing"].rate  # old and calm speaks slower than young and lively
    assert cast == cast_voices(_cast(), "zh", "espeak")  # deterministic
    assert cast_voices(_cast(), "en", "espeak")["qing"].voice.startswith("en-us+")


def test_many_same_kind_characters_still_differ() -> None:
    chars = CharactersFile(characters=[Character(id=f"c{i}", name=f"兵{i}", voice=VoiceSpec(gender="male")) for i in range(12)])
    cast = cast_voices(chars, "zh", "espeak")
    assert len({(v.voice, v.pitch, v.rate) for v in cast.values()}) == 13


def test_user_voice_fields_win() -> None:
    chars = _cast()
    chars.characters[0].voice = VoiceSpec(gender="female", voice="+m3", pitch=12)
    chars.characters[1].voice = VoiceSpec(gender="male", rate=300)
    chars.narrator = VoiceSpec(voice="en-us+klatt", pitch=70, rate=150)
    cast = cast_voices(chars, "zh", "espeak")
    assert (cast["qing"].voice, cast["qing"].pitch) == ("cmn-latn-pinyin+m3", 12)
    assert cast["chen"].rate == 300 and cast["chen"].voice and cast["chen"].pitch is not None
    assert (cast[NARRATOR].voice, cast[NARRATOR].pitch, cast[NARRATOR].rate) == ("en-us+klatt", 70, 150)
    assert all(v.voice != "cmn-latn-pinyin+m3" for k, v in cast.items() if k != "qing")  # taken by the user


def test_other_backends_get_the_specs_untouched() -> None:
    cast = cast_voices(_cast(), "zh", "edge-tts")
    assert cast["qing"].voice is None and cast["qing"].pitch is None and cast["li"].gender == "female"


def test_gender_guess_is_conservative() -> None:
    assert guess_gender(Character(id="a", name="小红", description="她笑着说，她是村里最好看的姑娘")) == "female"
    assert guess_gender(Character(id="b", name="张公子")) == "male"
    assert guess_gender(Character(id="c", name="阿木", description="他和她一起长大")) == "unknown"
