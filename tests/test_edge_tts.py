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
from novelcomic.errors import BackendError, NovelcomicError
from novelcomic.ffmpeg import ffmpeg_exe
from novelcomic.models import Character, CharactersFile, VoiceSpec
from novelcomic.registry import tts_backends
from novelcomic.voice.base import SpeechRequest
from novelcomic.voice.casting import cast_voices
from novelcomic.voice.edge import EdgeTTS, describe_error, is_fallback, is_network_error, reset_breaker, run_coroutine

TONE_SECONDS = 1.2
DNS_TEXT = "ClientConnectorDNSError: Cannot connect to host speech.platform.bing.com:443 (DNS failure: Temporary failure in name resolution)"


@pytest.fixture(autouse=True)
def fresh_breaker():  # type: ignore[no-untyped-def]
    """The process-wide 'edge-tts unreachable' memory starts and ends every test empty."""
    import time

    yield reset_breaker(clock=time.monotonic)
    reset_breaker(clock=time.monotonic)


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
    """What aiohttp raises offline; its str() holds ``ssl:<ssl.SSLContext object at 0x…>``."""
    import ssl

    from aiohttp.client_reqrep import ConnectionKey

    key = ConnectionKey("speech.platform.bing.com", 443, True, ssl.create_default_context(), None, None, None)
    return aiohttp.ClientConnectorDNSError(key, OSError(-3, "Temporary failure in name resolution"))


def handshake_error(status: int = 503) -> Exception:
    """The service turning one connection away (its URL carries a token in the query)."""
    from multidict import CIMultiDict, CIMultiDictProxy
    from yarl import URL

    url = URL("wss://speech.platform.bing.com/consumer/speech/synthesize/readaloud/edge/v1?TrustedClientToken=6A5AA1D4&Sec-MS-GEC=BEEF")
    info = aiohttp.RequestInfo(url, "GET", CIMultiDictProxy(CIMultiDict()), url)
    return aiohttp.WSServerHandshakeError(info, (), status=status, message="Invalid response status")


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
    assert not is_fallback(result)
    assert [(round(w.start, 3), round(w.end, 3), w.text) for w in result.words] == [(0.1, 0.5, "你好"), (0.6, 1.1, "世界")]
    assert calls[0]["rate"] == "-12%" and calls[0]["pitch"] == "-10Hz" and calls[0]["volume"] == "-10%"
    assert calls[0]["boundary"] == "WordBoundary"
    # the same line again: from the cache, no call, same bytes and words
    again = backend.synthesize(_request(emotion="sad"), tmp_path / "b.wav")
    assert len(calls) == 1 and backend.attempts == 0
    assert (tmp_path / "b.wav").read_bytes() == (tmp_path / "a.wav").read_bytes()
    assert again.words == result.words and not is_fallback(again)
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
    assert result.backend == "silent" and result.duration > 0.5 and is_fallback(result)
    assert "edge-tts" in result.warnings[0] and "ClientConnectorDNSError" in result.warnings[0] and "'silent'" in result.warnings[0]
    assert DNS_TEXT in result.warnings[0] and "0x" not in result.warnings[0] and "ssl:" not in result.warnings[0]
    assert not list((tmp_path / "cache").glob("*.wav"))  # failures are not cached
    # through the registry, with espeak as the fallback: real speech, the cast's edge voice dropped
    reset_breaker()  # each part below fetches again (the breaker is tested on its own)
    failures.extend(dns_error() for _ in range(10))
    espeak_backed = tts_backends.create("edge", {"cache_dir": str(tmp_path / "c2"), "retries": 0, "backoff": 0})
    result = espeak_backed.synthesize(_request(), tmp_path / "b.wav")
    assert result.backend == "espeak" and result.voice.startswith("cmn-latn-pinyin")
    assert not any("failed" in w and "espeak-ng voice" in w for w in result.warnings) and is_fallback(result)
    # no fallback: a BackendError naming the failure
    reset_breaker()
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


# --------------------------------------------------------------------------- unreachable service


def _clocked(tmp_path: Path, **options: object) -> tuple[EdgeTTS, list[float]]:
    """A backend on the shared breaker with a hand-driven clock (``now[0]`` seconds)."""
    now = [1000.0]
    reset_breaker(clock=lambda: now[0])
    return _backend(tmp_path, **options), now


def test_offline_later_lines_skip_edge_and_probe_again(tmp_path: Path, mp3_bytes: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    failures: list[Exception] = [dns_error() for _ in range(3)]
    calls: list[dict] = []
    monkeypatch.setattr(edge_tts, "Communicate", fake_communicate(mp3_bytes, failures, calls))
    backend, now = _clocked(tmp_path, retries=2, fallback="silent", probe_interval=60)
    first = backend.synthesize(_request("第一句"), tmp_path / "1.wav")
    assert backend.attempts == 3 and len(calls) == 3 and is_fallback(first)
    assert "skipped for the next 60 s" in first.warnings[0]
    # the next lines, on this instance or a new one (a Prefect shot task), go straight to the fallback
    failures.extend(dns_error() for _ in range(10))
    for i, b in enumerate((backend, _backend(tmp_path, retries=2, fallback="silent"))):
        now[0] += 29
        result = b.synthesize(_request(f"第二句{i}"), tmp_path / f"2{i}.wav")
        assert b.attempts == 0 and len(calls) == 3
        assert result.backend == "silent" and is_fallback(result) and result.duration > 0.3
        assert result.warnings[0] == f"edge-tts skipped: unreachable earlier in this run ({DNS_TEXT}); used the offline voice 'silent'"
    # 60 s after the last try: one line tries once, and the outage goes on
    now[0] += 2
    probe = backend.synthesize(_request("第三句"), tmp_path / "3.wav")
    assert backend.attempts == 1 and len(calls) == 4 and is_fallback(probe)
    assert probe.warnings[0].startswith("edge-tts still unreachable (ClientConnectorDNSError")
    now[0] += 59
    backend.synthesize(_request("第四句"), tmp_path / "4.wav")
    assert backend.attempts == 0 and len(calls) == 4
    # the network is back: the next probe gets through and every later line uses edge again
    failures.clear()
    now[0] += 1
    back = backend.synthesize(_request("第五句"), tmp_path / "5.wav")
    assert (back.backend, back.warnings, backend.attempts) == ("edge", [], 1) and not is_fallback(back)
    failures.extend([handshake_error(), handshake_error()])
    again = backend.synthesize(_request("第六句"), tmp_path / "6.wav")
    assert again.backend == "edge" and backend.attempts == 3


def test_probe_that_reaches_the_service_retries_as_usual(tmp_path: Path, mp3_bytes: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    failures: list[Exception] = [asyncio.TimeoutError()]
    calls: list[dict] = []
    monkeypatch.setattr(edge_tts, "Communicate", fake_communicate(mp3_bytes, failures, calls))
    backend, now = _clocked(tmp_path, retries=0, fallback="silent", probe_interval=10)
    first = backend.synthesize(_request("一"), tmp_path / "1.wav")
    assert "TimeoutError: no answer within 30 s" in first.warnings[0]  # timeouts count as no network
    now[0] += 10
    backend.retries = 2
    failures.append(handshake_error(503))  # the probe reaches the service, which turns this one line away
    result = backend.synthesize(_request("二"), tmp_path / "2.wav")
    assert result.backend == "edge" and backend.attempts == 2


def test_per_line_failures_do_not_trip_the_breaker(tmp_path: Path, mp3_bytes: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    failures: list[Exception] = [NoAudioReceived("No audio was received."), handshake_error(403), handshake_error(503)]
    calls: list[dict] = []
    monkeypatch.setattr(edge_tts, "Communicate", fake_communicate(mp3_bytes, failures, calls))
    backend, _ = _clocked(tmp_path, retries=2, fallback="silent")
    first = backend.synthesize(_request("一"), tmp_path / "1.wav")
    assert is_fallback(first) and "WSServerHandshakeError: 503" in first.warnings[0]
    assert "TrustedClientToken" not in first.warnings[0] and "skipped" not in first.warnings[0]
    second = backend.synthesize(_request("二"), tmp_path / "2.wav")
    assert second.backend == "edge" and backend.attempts == 1


def test_breaker_without_fallback_raises_at_once(tmp_path: Path, mp3_bytes: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    failures: list[Exception] = [ConnectionRefusedError(111, "Connection refused")]
    calls: list[dict] = []
    monkeypatch.setattr(edge_tts, "Communicate", fake_communicate(mp3_bytes, failures, calls))
    backend, _ = _clocked(tmp_path, retries=0, fallback="none")
    with pytest.raises(BackendError, match="ConnectionRefusedError"):
        backend.synthesize(_request("一"), tmp_path / "1.wav")
    with pytest.raises(BackendError, match=r"edge-tts skipped: unreachable earlier in this run \(ConnectionRefusedError"):
        backend.synthesize(_request("二"), tmp_path / "2.wav")
    assert len(calls) == 1
    with pytest.raises(NovelcomicError, match="probe_interval"):
        EdgeTTS(cache_dir=str(tmp_path), probe_interval=-1)


def test_error_text_is_clean_and_classified() -> None:
    assert describe_error(dns_error()) == DNS_TEXT
    assert describe_error(handshake_error(403)) == (
        "WSServerHandshakeError: 403, message='Invalid response status', "
        "url='wss://speech.platform.bing.com/consumer/speech/synthesize/readaloud/edge/v1'"
    )
    assert describe_error(asyncio.TimeoutError(), 12) == "TimeoutError: no answer within 12 s"
    assert describe_error(RuntimeError(f"odd {object()}")) == "RuntimeError: odd <object>"
    for exc in (dns_error(), asyncio.TimeoutError(), ConnectionResetError(104, "reset"), OSError(101, "Network is unreachable"),
                aiohttp.ServerTimeoutError("read timeout")):
        assert is_network_error(exc), exc
    for exc in (handshake_error(403), handshake_error(503), NoAudioReceived("No audio"), aiohttp.ServerDisconnectedError()):
        assert not is_network_error(exc), exc


# --------------------------------------------------------------------------- voice names


def test_short_voice_names_are_completed(tmp_path: Path, mp3_bytes: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict] = []
    monkeypatch.setattr(edge_tts, "Communicate", fake_communicate(mp3_bytes, [], calls))
    backend = _backend(tmp_path)
    for i, given in enumerate(("en-US-Jenny", "en-us-jennyneural", " en-US-JennyNeural ", "de-DE-Katja")):
        req = SpeechRequest(text=f"Hello {i}", language="en", voice=VoiceSpec(voice=given), speaker="amy")
        result = backend.synthesize(req, tmp_path / f"{i}.wav")
        assert result.voice == calls[-1]["voice"] == ("de-DE-KatjaNeural" if i == 3 else "en-US-JennyNeural")
    # an empty voice still gets the language's default
    backend.synthesize(SpeechRequest(text="Hi", language="en", voice=VoiceSpec()), tmp_path / "d.wav")
    assert calls[-1]["voice"] == "en-US-ChristopherNeural"


def test_bad_voice_name_is_an_error_with_suggestions(tmp_path: Path, mp3_bytes: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict] = []
    monkeypatch.setattr(edge_tts, "Communicate", fake_communicate(mp3_bytes, [], calls))
    backend = _backend(tmp_path)
    req = SpeechRequest(text="Hello", language="en", voice=VoiceSpec(voice="Jenny"), speaker="amy")
    with pytest.raises(NovelcomicError) as info:
        backend.synthesize(req, tmp_path / "a.wav")
    err = info.value
    assert (err.file, err.field) == ("characters.yaml", "characters[id=amy].voice.voice")
    assert "'Jenny' is not an edge-tts voice" in err.message and "did you mean en-US-JennyNeural" in err.message
    narrator = SpeechRequest(text="你好", language="zh", voice=VoiceSpec(voice="cmn-latn-pinyin+f2"))
    with pytest.raises(NovelcomicError, match="not an edge-tts voice.*zh-CN-") as info:
        backend.synthesize(narrator, tmp_path / "b.wav")
    assert info.value.field == "narrator.voice"
    assert calls == [] and not (tmp_path / "a.wav").exists()


def test_lines_an_offline_voice_spoke_are_voiced_again_once_edge_answers(
    tmp_path: Path, mp3_bytes: bytes, monkeypatch: pytest.MonkeyPatch, fake_backends
) -> None:
    """Offline, every line falls back (and is recorded as the fallback voice, not as edge); the
    next run, with the service back, voices exactly those lines again with edge-tts."""
    from novelcomic import pipeline
    from novelcomic.models import StageSpec
    from novelcomic.project import Project
    from tests.fakes import make_project

    root = tmp_path / "projects"
    root.mkdir()
    project = Project(make_project(root))
    cfg = project.config()
    cfg.stages.voice = StageSpec(backend="edge", options={"retries": 0, "backoff": 0, "fallback": "silent"})
    project.save_config(cfg)
    failures: list[Exception] = [dns_error() for _ in range(50)]
    calls: list[dict] = []
    monkeypatch.setattr(edge_tts, "Communicate", fake_communicate(mp3_bytes, failures, calls))
    pipeline.produce(project, stages=["plan"])
    first = pipeline.voice(project, "01")
    audio = project.store.assets("audio", "01")
    assert first.made == 3 and {a.backend for a in audio} == {"silent"}
    assert any("edge-tts" in w for w in first.warnings)
    failures.clear()
    reset_breaker()
    second = pipeline.voice(project, "01")
    assert second.made == 3 and {a.backend for a in project.store.assets("audio", "01")} == {"edge"}
    assert pipeline.voice(project, "01").made == 0  # edge audio is up to date
