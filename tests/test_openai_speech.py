"""The ``openai`` voice backend against a 127.0.0.1 server speaking ``/v1/audio/speech``
(:class:`tests.test_remote.OpenAIStub`): WAV timings, voices and speed per character, emotions as
instructions, SiliconFlow-style cloning, and the edge-tts failure rules."""

from __future__ import annotations

import time
import wave
from pathlib import Path

import pytest

from novelcomic import remote
from novelcomic.errors import NovelcomicError
from novelcomic.models import VoiceSpec
from novelcomic.registry import tts_backends
from novelcomic.voice.base import SpeechRequest
from novelcomic.voice.openai_speech import OpenAISpeech, forget_uploads, read_riff
from tests.test_remote import Failure, OpenAIStub, closed_port_url, stub, wav_bytes  # noqa: F401  (fixture)


def backend(url: str, **options: object) -> OpenAISpeech:
    return tts_backends.create("openai", {"base_url": url, "model": "gpt-4o-mini-tts", "api_key_env": "none",
                                          "retries": 1, "backoff": 0.01, "fallback": "silent", **options})


def line(text: str = "The river runs quietly.", emotion: str = "neutral", **voice: object) -> SpeechRequest:
    return SpeechRequest(text=text, language="en", voice=VoiceSpec(**voice), speaker="fox", emotion=emotion)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    d = tmp_path / "story"
    (d / "audio" / "01").mkdir(parents=True)
    (d / "project.yaml").write_text("title: story\n", encoding="utf-8")
    return d


def test_a_line_is_spoken_and_timed_from_the_wav(stub: OpenAIStub, project: Path) -> None:
    out = project / "audio" / "01" / "a.wav"
    result = backend(stub.url, voice="alloy").synthesize(line(emotion="sad", voice="coral", speed=1.25), out)
    body = stub.requests("/v1/audio/speech")[0].json
    assert body == {"model": "gpt-4o-mini-tts", "input": "The river runs quietly.", "voice": "coral",
                    "response_format": "wav", "speed": 1.25,
                    "instructions": "Speak sadly, slower and softer, with a heavy heart."}
    expected = 23 * stub.speech_seconds_per_char / 1.25
    with wave.open(str(out), "rb") as wf:  # PCM16 mono, the length the server sent (its header said 0xFFFFFFFF)
        assert (wf.getsampwidth(), wf.getnchannels(), wf.getframerate()) == (2, 1, 24000)
        frames = wf.readframes(wf.getnframes())
        assert abs(wf.getnframes() / 24000 - expected) < 0.01
    import numpy as np

    assert np.abs(np.frombuffer(frames, "<i2")).max() > 8000  # the tone, not silence
    assert abs(result.duration - expected) < 0.01 and result.backend == "openai" and not result.fallback
    # a character without a voice gets the option's; neutral lines carry no instructions;
    # models that take none get none
    backend(stub.url, voice="alloy").synthesize(line(), project / "audio" / "01" / "b.wav")
    assert stub.requests("/v1/audio/speech")[1].json["voice"] == "alloy"
    assert "instructions" not in stub.requests("/v1/audio/speech")[1].json
    backend(stub.url, model="tts-1").synthesize(line(emotion="angry"), project / "audio" / "01" / "c.wav")
    assert "instructions" not in stub.requests("/v1/audio/speech")[2].json


def test_retry_after_then_success(stub: OpenAIStub, project: Path) -> None:
    stub.fail.append(Failure(429, "0.5"))
    result = backend(stub.url).synthesize(line(), project / "audio" / "01" / "a.wav")
    hits = stub.requests("/v1/audio/speech")
    assert len(hits) == 2 and hits[1].at - hits[0].at >= 0.5 and not result.fallback


def test_server_down_falls_back_offline_then_skips_until_the_probe(project: Path) -> None:
    url = closed_port_url()
    now = [100.0]
    remote.reset_breaker(clock=lambda: now[0])
    first = backend(url).synthesize(line(), project / "audio" / "01" / "a.wav")
    assert first.fallback and first.backend == "silent" and first.duration > 0.5
    assert first.warnings[0].startswith(f"speech server skipped: cannot reach speech server at {url}/audio/speech (2 attempts")
    assert first.warnings[0].endswith("used the offline voice 'silent'")
    start = time.monotonic()
    second = backend(url).synthesize(line("Again."), project / "audio" / "01" / "b.wav")
    assert time.monotonic() - start < 0.2 and second.fallback
    assert f"speech server at {url} did not answer earlier in this run" in second.warnings[0]
    remote.reset_breaker()


def test_5xx_after_retries_falls_back_and_4xx_stops_the_run(stub: OpenAIStub, project: Path) -> None:
    stub.fail.extend([Failure(503), Failure(503)])
    result = backend(stub.url).synthesize(line(), project / "audio" / "01" / "a.wav")
    assert result.fallback and "failed after 2 attempts: last status HTTP 503" in result.warnings[0]
    with pytest.raises(NovelcomicError, match=r"speech server at .*/v1/audio/speech answered HTTP 400: .*wav only"):
        backend(stub.url, response_format="mp3").synthesize(line(), project / "audio" / "01" / "b.wav")
    with pytest.raises(NovelcomicError, match="no fallback voice configured"):
        stub.fail.extend([Failure(500), Failure(500)])
        backend(stub.url, fallback="none").synthesize(line(), project / "audio" / "01" / "c.wav")


def test_key_missing_and_wrong(stub: OpenAIStub, project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NC_SPEECH_KEY", raising=False)
    with pytest.raises(NovelcomicError, match=r"^stages.voice.options.api_key_env: the environment variable NC_SPEECH_KEY is not set"):
        backend(stub.url, api_key_env="NC_SPEECH_KEY")
    stub.key = "right"
    monkeypatch.setenv("NC_SPEECH_KEY", "wrong")
    with pytest.raises(NovelcomicError, match=r"refused the request \(HTTP 401\): check the key in NC_SPEECH_KEY"):
        backend(stub.url, api_key_env="NC_SPEECH_KEY").synthesize(line(), project / "audio" / "01" / "a.wav")


def test_reference_audio_is_uploaded_once_siliconflow_style(stub: OpenAIStub, project: Path) -> None:
    forget_uploads()
    clip = project / "voices" / "fox.wav"
    clip.parent.mkdir()
    clip.write_bytes(wav_bytes(1.0, streamed=False))
    be = backend(stub.url, model="FunAudioLLM/CosyVoice2-0.5B")
    for i in range(2):
        be.synthesize(line(reference_audio="voices/fox.wav", reference_text="The fox speaks."), project / "audio" / "01" / f"{i}.wav")
    uploads = stub.requests("/v1/uploads/audio/voice")
    assert len(uploads) == 1
    up = uploads[0]
    assert up.fields["model"] == ["FunAudioLLM/CosyVoice2-0.5B"] and up.fields["text"] == ["The fox speaks."]
    assert up.files["file"][0] == ("fox.wav", clip.read_bytes())
    voices = [s.json["voice"] for s in stub.requests("/v1/audio/speech")]
    assert voices[0] == voices[1] and voices[0].startswith("speech:nc-")
    # the path policy: a clip outside the project is never read or uploaded
    outside = project.parent / "secret.wav"
    outside.write_bytes(b"RIFF")
    with pytest.raises(NovelcomicError, match=r"characters.yaml: characters\[id=fox\].voice.reference_audio: path outside the project"):
        be.synthesize(line(reference_audio=str(outside), reference_text="x"), project / "audio" / "01" / "x.wav")
    with pytest.raises(NovelcomicError, match="reference_audio needs reference_text"):
        be.synthesize(line(reference_audio="voices/fox.wav"), project / "audio" / "01" / "y.wav")
    assert len(stub.requests("/v1/uploads/audio/voice")) == 1
    forget_uploads()


def test_options_are_checked() -> None:
    for options, needle in (
        ({"model": ""}, "stages.voice.options.model"),
        ({"response_format": "ogg"}, "stages.voice.options.response_format: response_format 'ogg'"),
        ({"speed": 9}, "stages.voice.options.speed: speed 9"),
        ({"clone": "magic"}, "stages.voice.options.clone"),
        ({"api_key": "sk"}, "stages.voice.options.api_key: a key does not belong"),
    ):
        with pytest.raises(NovelcomicError) as info:
            backend("http://127.0.0.1:9/v1", **options)
        assert str(info.value).startswith(needle), str(info.value)


def test_float_and_stereo_wavs_are_read() -> None:
    import struct

    import numpy as np

    samples = np.array([[0.5, -0.5], [0.25, 0.25]], dtype="<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 2, 16000, 16000 * 8, 8, 32)
    body = b"RIFF" + struct.pack("<I", 0) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", len(samples)) + samples
    mono, rate = read_riff(body)
    assert rate == 16000 and mono.tolist() == [0.0, 0.25]
