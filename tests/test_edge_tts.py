"""The edge-tts voice backend, without the network: ``edge_tts.Communicate`` is replaced by fakes
that fail a given number of times (with the errors the real service raises) and then stream real
MP3 bytes made by ffmpeg plus WordBoundary events."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import aiohttp
import edge_tts
import numpy as np
import pytest
from edge_tts.exceptions import NoAudioReceived

from novelcomic.audio import read_wav, wav_duration
from novelcomic.errors import BackendError
from novelcomic.ffmpeg import ffmpeg_exe
from novelcomic.models import Character, CharactersFile, VoiceSpec
from novelcomic.registry import tts_backends
from novelcomic.voice.base import SpeechRequest
from novelcomic.voice.casting import cast_voices
from novelcomic.voice.edge import EdgeTTS, run_coroutine

TONE_SECONDS = 1.2


@pytest.fixture(scope="module")
def mp3_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    out = tmp_path_factory.mktemp("mp3") / "tone.mp3"
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", f"sine=frequency=330:duration={TONE_SECONDS}:sample_rate=24000",
         "-c:a", "libmp3lame", "-b:a", "48k", str(out)],
        check=True,
    )
    return out.read_bytes()


def dns_error() -> Exception:
    from aiohttp.client_reqrep import ConnectionKey

    key = ConnectionKey("speech.platform.bing.com", 443, True, None, None, None, None)
    return aiohttp.ClientConnectorDNSError(key, OSError(-3, "Temporary failure in name resolution"))


def fake_communicate(mp3: bytes, failures: list[Exception], calls: list[dict]) -> type:
    """A stand-in for edge_tts.Communicate: raises ``failures`` in order, then streams ``mp3``."""

    class FakeCommunicate:
        def __init__(self, text: str, voice: str, **kwargs: object) -> None:
            calls.append({"text": text, "voice": voice, **kwargs})

        async def stream(self):  # type: ignore[no-untyped-def]
            if failures:
                raise failures.pop(0)
            half = len(mp3) // 2
            yield {"type": "WordBoundary", "offset": 1_000_000, "duration": 4_000_000, "text": "你好"}
            yield {"type": "audio", "data": mp3[:half]}
            await asyncio.sleep(0)
            yield {"type": "WordBoundary", "offset": 6_000_000, "duration": 5_000_000, "text": "世界"}
            yield {"type": "audio", "data": mp3[half:]}

    return FakeCommunicate


def _request(text: str = "你好，世界", emotion: str = "neutral", voice: VoiceSpec | None = None) -> SpeechRequest:
    return SpeechRequest(text=text, language="zh", voice=voice or VoiceSpec(voice="zh-CN-XiaoxiaoNeural"), emotion=emotion)


def _backend(tmp_path: Path, **options: object) -> EdgeTTS:
    backend = EdgeTTS(cache_dir=str(tmp_path / "cache"), backoff=0.01, **options)  # type: ignore[arg-type]
    backend.sleep = lambda s: None
    return backend


def test_success_decodes_mp3_keeps_word_timings_and_caches(tmp_path: Path, mp3_bytes: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict] = []
    monkeypatch.setattr(edge_tts, "Communicate", fake_communicate(mp3_bytes, [], calls))
    backend = _backend(tmp_path)
    result = backend.synthesize(_request(emotion="sad"), tmp_path / "a.wav")
    samples, rate = read_wav(tmp_path / "a.wav")
    assert rate == 24000 and abs(wav_duration(tmp_path / "a.wav") - TONE_SECONDS) < 0.1
    assert np.sqrt(np.mean(samples**2)) > 0.05  # real audio, not silence
    assert (result.backend, result.voice, result.warnings) == ("edge", "zh-CN-XiaoxiaoNeural", [])
    assert [(round(w.start, 3), round(w.end, 3), w.text) for w in result.words] == [(0.1, 0.5, "你好"), (0.6, 1.1, "世界")]
    assert calls[0]["rate"] == "-12%" and calls[0]["pitch"] == "-10Hz" and calls[0]["volume"] == "-10%"
    assert calls[0]["boundary"] == "WordBoundary"
    # the same line again: from the cache, no call, same bytes and words
    again = backend.synthesize(_request(emotion="sad"), tmp_path / "b.wav")
    assert len(calls) == 1 and backend.attempts == 0
    assert (tmp_path / "b.wav").read_bytes() == (tmp_path / "a.wav").read_bytes()
    assert again.words == result.words
    # another emotion is another prosody, so another fetch
    backend.synthesize(_request(emotion="happy"), tmp_path / "c.wav")
    assert len(calls) == 2 and calls[1]["rate"] == "+5%"
    assert not list((tmp_path / "cache").glob(".*part*"))


def test_transient_failures_are_retried_with_backoff(tmp_path: Path, mp3_bytes: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    failures: list[Exception] = [NoAudioReceived("No audio was received."), dns_error(), asyncio.TimeoutError()]
    calls: list[dict] = []
    monkeypatch.setattr(edge_tts, "Communicate", fake_communicate(mp3_bytes, failures, calls))
    backend = _backend(tmp_path)
    sleeps: list[float] = []
    backend.sleep = sleeps.append
    result = backend.synthesize(_request(), tmp_path / "a.wav")
    assert backend.attempts == 4 and len(calls) == 4
    assert sleeps == [0.01, 0.02, 0.04]
    assert result.backend == "edge" and result.warnings == [] and result.duration > 1.0


def test_persistent_failure_falls_back_to_the_offline_voice(tmp_path: Path, mp3_bytes: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    failures: list[Exception] = [dns_error() for _ in range(10)]
    calls: list[dict] = []
    monkeypatch.setattr(edge_tts, "Communicate", fake_communicate(mp3_bytes, failures, calls))
    backend = _backend(tmp_path, retries=2, fallback="silent")
    result = backend.synthesize(_request(), tmp_path / "a.wav")
    assert backend.attempts == 3 and len(calls) == 3
    assert result.backend == "silent" and result.duration > 0.5
    assert "edge-tts" in result.warnings[0] and "ClientConnectorDNSError" in result.warnings[0] and "'silent'" in result.warnings[0]
    assert not list((tmp_path / "cache").glob("*.wav"))  # failures are not cached
    # through the registry, with espeak as the fallback: real speech, the cast's edge voice dropped
    failures.extend(dns_error() for _ in range(10))
    espeak_backed = tts_backends.create("edge", {"cache_dir": str(tmp_path / "c2"), "retries": 0, "backoff": 0})
    result = espeak_backed.synthesize(_request(), tmp_path / "b.wav")
    assert result.backend == "espeak" and result.voice.startswith("cmn-latn-pinyin")
    assert not any("failed" in w and "espeak-ng voice" in w for w in result.warnings)
    # no fallback: a BackendError naming the failure
    failures.extend(dns_error() for _ in range(10))
    with pytest.raises(BackendError, match="ClientConnectorDNSError"):
        _backend(tmp_path, retries=0, fallback="none").synthesize(_request(), tmp_path / "c.wav")


def test_real_library_offline_fails_fast_and_falls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real edge_tts.Communicate, with name resolution made to fail: retried, then silence."""
    import socket

    def no_dns(*args: object, **kwargs: object) -> object:
        raise socket.gaierror(-3, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    backend = _backend(tmp_path, retries=1, fallback="silent", timeout=10)
    result = backend.synthesize(_request(), tmp_path / "a.wav")
    assert backend.attempts == 2 and result.backend == "silent"


def test_runs_inside_a_running_event_loop(tmp_path: Path, mp3_bytes: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(edge_tts, "Communicate", fake_communicate(mp3_bytes, [], []))
    backend = _backend(tmp_path)

    async def inside() -> float:
        return backend.synthesize(_request(), tmp_path / "a.wav").duration

    assert asyncio.run(inside()) > 1.0

    async def seven() -> int:
        return 7

    assert run_coroutine(seven) == 7


def test_edge_casting_is_distinct_and_user_voice_wins() -> None:
    chars = CharactersFile(characters=[
        Character(id="qing", name="阿青", voice=VoiceSpec(gender="female", age="young", temperament="活泼")),
        Character(id="li", name="李婶", voice=VoiceSpec(gender="female", age="old")),
        Character(id="mu", name="阿木", voice=VoiceSpec(gender="male", age="young")),
        Character(id="wang", name="王伯", voice=VoiceSpec(gender="male", age="old", temperament="沉稳")),
        Character(id="me", name="我", voice=VoiceSpec(gender="male", voice="zh-CN-YunxiNeural", rate=7)),
    ])
    cast = cast_voices(chars, "zh", "edge")
    assert cast["narrator"].voice == "zh-CN-YunyangNeural"
    assert cast["me"].voice == "zh-CN-YunxiNeural" and cast["me"].rate == 7
    voices = [cast[k].voice for k in ("narrator", "qing", "li", "mu", "wang", "me")]
    assert len(set(voices)) == len(voices)
    assert cast["qing"].voice == "zh-CN-XiaoyiNeural"  # young and lively
    assert all(v.endswith("Neural") for v in voices)
    en = cast_voices(CharactersFile(characters=[
        Character(id=f"g{i}", name=f"Girl {i}", voice=VoiceSpec(gender="female", age="young")) for i in range(12)
    ]), "en", "edge")
    combos = {(v.voice, v.pitch) for k, v in en.items()}
    assert len(combos) == 13  # more girls than voices: shared voices differ in pitch
    assert all(v.voice.startswith("en-US-") for v in en.values())
