"""Microsoft Edge's online neural voices (``edge-tts``), with retries, a cache and an offline fallback.

The service is free and sounds far better than espeak, but it is online and flaky: offline it fails
at once (``aiohttp.ClientConnectorDNSError``), online it fails now and then (403 on a stale clock
skew, 503 on the handshake, ``NoAudioReceived``). So each line is:

1. looked up in a cache keyed by (text, voice, rate, pitch, volume, backend): a line heard before is
   never fetched again, and a re-run after an edit only fetches the changed lines;
2. fetched with :class:`edge_tts.Communicate`, streaming MP3 audio and ``WordBoundary`` /
   ``SentenceBoundary`` events (offsets in 100 ns units → seconds, kept as word timings for
   karaoke subtitles), retried with exponential backoff on network-type failures (the retry loop and
   breaker of :mod:`novelcomic.remote`, shared with every HTTP engine);
3. decoded to a PCM16 mono WAV with ffmpeg;
4. when every attempt failed, spoken by the offline ``fallback`` backend (espeak, else silence) with
   a warning in :attr:`SpeechResult.warnings`, so a chapter never stops on a network error. Such a
   result is marked ``fallback = True`` (see :func:`is_fallback`) so a later run can try it again.

When a line's attempts all ended in a connection-level failure (DNS, refused/reset, unreachable,
timeout) edge-tts is taken as unreachable: a circuit breaker shared by the whole process
(:data:`BREAKER`, edge-tts's key in :data:`novelcomic.remote.BREAKER`) sends later lines straight to the fallback, and lets one line try edge again
every ``probe_interval`` seconds; one success closes it. So an offline run costs one line's
retries, not every line's.

A voice in characters.yaml must be an edge-tts name (``zh-CN-XiaoxiaoNeural``); the ``Neural``
suffix may be left out. Anything else is a :class:`NovelcomicError` with close suggestions.

Emotions bend the voice through edge-tts's prosody: rate (percent), pitch (Hz) and volume (percent).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import re
import difflib
import errno
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from novelcomic import remote
from novelcomic.errors import BackendError, NovelcomicError
from novelcomic.remote import Gate, Outage, RetryPolicy, retrying
from novelcomic.voice.base import SpeechRequest, SpeechResult, VoiceCapabilities, WordTiming

CACHE_VERSION = "1"
SAMPLE_RATE = 24000  # edge-tts streams 24 kHz MP3
TICKS_PER_SECOND = 10_000_000  # WordBoundary offsets and durations are in 100 ns units
EDGE_VOICE_RE = re.compile(r"^[a-z]{2,3}-[A-Z]{2}(?:-[a-z]+)?-[A-Za-z]+Neural$")
EDGE_LONG_VOICE_RE = re.compile(r"^Microsoft Server Speech Text to Speech Voice \([a-zA-Z-]+, [A-Za-z]+Neural\)$")
DEFAULT_VOICES = {"zh": "zh-CN-YunyangNeural", "en": "en-US-ChristopherNeural"}
PROBE_INTERVAL = 60.0  # seconds between tries of an edge-tts found unreachable

T = TypeVar("T")


@dataclass(frozen=True)
class EdgeProsody:
    """How an emotion bends an edge voice: rate and volume in percent, pitch in Hz."""

    rate: int = 0
    pitch: int = 0
    volume: int = 0


EMOTIONS: dict[str, EdgeProsody] = {
    "neutral": EdgeProsody(),
    "happy": EdgeProsody(rate=5, pitch=8, volume=5),
    "sad": EdgeProsody(rate=-12, pitch=-10, volume=-10),
    "angry": EdgeProsody(rate=10, pitch=5, volume=15),
    "afraid": EdgeProsody(rate=10, pitch=12, volume=-5),
    "surprised": EdgeProsody(rate=5, pitch=15, volume=5),
    "whisper": EdgeProsody(rate=-10, pitch=-5, volume=-40),
    "excited": EdgeProsody(rate=15, pitch=12, volume=10),
}


def run_coroutine(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run the coroutine ``factory()`` makes to completion, inside or outside a running event loop.

    Outside a loop it is :func:`asyncio.run`; inside one (a Prefect task, a notebook) blocking the
    loop's thread would deadlock, so the coroutine runs on a fresh loop in a worker thread.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="edge-tts") as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


def retryable_errors() -> tuple[type[BaseException], ...]:
    """The exceptions worth another attempt: network, timeouts and the service's own hiccups."""
    import aiohttp
    from edge_tts import exceptions as edge_exc

    return (
        aiohttp.ClientError,  # includes ClientConnectorDNSError and WSServerHandshakeError (403/503)
        OSError,
        asyncio.TimeoutError,
        edge_exc.NoAudioReceived,
        edge_exc.WebSocketError,
        edge_exc.UnexpectedResponse,
        edge_exc.UnknownResponse,
        edge_exc.SkewAdjustmentError,
    )


_NETWORK_ERRNOS = frozenset(
    getattr(errno, name) for name in (
        "ENETUNREACH", "EHOSTUNREACH", "ENETDOWN", "EHOSTDOWN", "ETIMEDOUT", "ECONNREFUSED", "ECONNRESET",
        "ECONNABORTED", "EPIPE",
    ) if hasattr(errno, name)
)


def is_network_error(exc: BaseException) -> bool:
    """Whether ``exc`` says the service cannot be reached at all (no DNS, no route, refused or reset
    connections, timeouts) rather than that it refused this one line (403/503 handshakes,
    ``NoAudioReceived``, protocol surprises)."""
    import aiohttp

    if isinstance(exc, (aiohttp.ClientConnectorError, aiohttp.ClientOSError, TimeoutError, asyncio.TimeoutError)):
        return True
    if isinstance(exc, (ConnectionError, socket.gaierror, socket.herror)):
        return True
    return isinstance(exc, OSError) and not isinstance(exc, aiohttp.ClientError) and exc.errno in _NETWORK_ERRNOS


_OBJECT_REPR_RE = re.compile(r"<([\w.]+) object at 0x[0-9a-fA-F]+>")
_SSL_RE = re.compile(r"\s+ssl:(?:<[^>]*>|\S+)")
_ADDRESS_RE = re.compile(r"\s+at 0x[0-9a-fA-F]+")
_QUERY_RE = re.compile(r"((?:https?|wss?)://[^\s'\"?]+)\?[^\s'\"]*")


def describe_error(exc: BaseException, timeout: float | None = None) -> str:
    """``ClientConnectorDNSError: Cannot connect to host speech.platform.bing.com:443 (DNS failure:
    Temporary failure in name resolution)``: the type and the message a user can act on, without
    object reprs, memory addresses or the service's token-laden URLs."""
    import aiohttp

    name = type(exc).__name__
    if isinstance(exc, aiohttp.ClientConnectorError):
        os_error = exc.os_error
        detail = exc.strerror or str(os_error) or type(os_error).__name__
        dns = isinstance(exc, getattr(aiohttp, "ClientConnectorDNSError", ())) or isinstance(os_error, socket.gaierror)
        message = f"Cannot connect to host {exc.host}:{exc.port} ({'DNS failure: ' if dns else ''}{detail})"
    elif isinstance(exc, (TimeoutError, asyncio.TimeoutError)) and not str(exc):
        message = f"no answer within {timeout:g} s" if timeout else "timed out"
    else:
        message = str(exc)
    message = _SSL_RE.sub("", message)
    message = _OBJECT_REPR_RE.sub(r"<\1>", message)
    message = _ADDRESS_RE.sub("", message)
    message = _QUERY_RE.sub(r"\1", message)
    message = " ".join(message.split())
    if len(message) > 300:
        message = message[:297] + "..."
    return f"{name}: {message}" if message else name


EDGE_KEY = "edge-tts"  # edge-tts's key in the process-wide breaker of novelcomic.remote
# The breaker for edge-tts: a view of novelcomic.remote's process-wide breaker (one for every
# remote engine). Reachability belongs to the machine's network, not to one backend instance,
# and Prefect creates an instance per shot task: per-instance memory would pay a full round of
# retries per shot.
EdgeBreaker = Gate
BREAKER: Gate = remote.BREAKER.gate(EDGE_KEY)


def reset_breaker(clock: Callable[[], float] | None = None) -> Gate:
    """Reset the process-wide breaker (tests call it around each test) and return edge-tts's view of it."""
    remote.reset_breaker(clock)
    return BREAKER


def is_fallback(result: SpeechResult) -> bool:
    """Whether ``result`` was spoken by the offline fallback instead of edge-tts (worth another try)."""
    return bool(getattr(result, "fallback", False))


def known_voices(language: str = "") -> list[str]:
    """The edge voices novelcomic knows by name (casting's pool and narrators), ``language``'s first."""
    from novelcomic.voice.casting import _EDGE_VOICES, EDGE_NARRATORS

    ordered = sorted(_EDGE_VOICES, key=lambda lang: lang != language)
    out: list[str] = []
    for lang in ordered:
        for voice in (EDGE_NARRATORS.get(lang), *(v for v, _, _, _ in _EDGE_VOICES[lang])):
            if voice and voice not in out:
                out.append(voice)
    return out


def voice_field(speaker: str) -> str:
    """Where a speaker's voice is set in characters.yaml."""
    from novelcomic.models import NARRATOR

    return "narrator.voice" if speaker == NARRATOR else f"characters[id={speaker}].voice.voice"


def resolve_voice(voice: str | None, language: str, gender: str = "unknown", speaker: str = "narrator") -> str:
    """The edge-tts voice to use for a characters.yaml ``voice`` value.

    Empty: the default for the language and gender. A full name (``en-US-JennyNeural``, any case
    for the voices novelcomic knows) is kept; a short one (``en-US-Jenny``) gets ``Neural`` added.
    Anything else is a :class:`NovelcomicError` naming the field, with close suggestions.
    """
    if not voice or not voice.strip():
        from novelcomic.voice.casting import edge_default_voice

        return edge_default_voice(language, gender)
    name = voice.strip()
    known = known_voices(language)
    by_lower = {v.lower(): v for v in known}
    for candidate in (name, name + "Neural"):
        if candidate.lower() in by_lower:
            return by_lower[candidate.lower()]
        if EDGE_VOICE_RE.match(candidate) or EDGE_LONG_VOICE_RE.match(candidate):
            return candidate
    suggestions = suggest_voices(name, language)
    hint = f"; did you mean {' or '.join(suggestions)}?" if suggestions else f", e.g. {' or '.join(known[:2])}"
    raise NovelcomicError(
        f"{name!r} is not an edge-tts voice (names look like zh-CN-XiaoxiaoNeural or en-US-JennyNeural){hint}",
        file="characters.yaml", field=voice_field(speaker),
    )


def suggest_voices(name: str, language: str = "", n: int = 3) -> list[str]:
    """Known edge voices close to ``name``: same short name first (``Jenny`` → ``en-US-JennyNeural``)."""
    known = known_voices(language)
    short = re.sub(r"neural$", "", name.strip().lower().rsplit("-", 1)[-1].split("+")[0])
    same = [v for v in known if short and v.lower().removesuffix("neural").rsplit("-", 1)[-1].startswith(short)]
    lowered = {v.lower(): v for v in known}
    close = [lowered[m] for m in difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.6)]
    out: list[str] = []
    for v in (*same, *close):
        if v not in out:
            out.append(v)
    return out[:n]


def signed(value: int, unit: str) -> str:
    """``5`` → ``+5%`` (edge-tts wants an explicit sign)."""
    return f"{int(value):+d}{unit}"


class EdgeTTS:
    """The ``edge`` voice backend.

    Options (``stages.voice.options`` in project.yaml):

    - ``rate_by_emotion``: let each line's emotion change rate/pitch/volume (default on);
    - ``retries``: attempts after the first one; ``backoff``: seconds before the first retry,
      doubled each time; ``timeout``: seconds one attempt may take;
    - ``fallback``: the offline voice backend used when every attempt fails (``espeak``; ``silent``;
      ``none`` raises instead);
    - ``cache_dir``: where finished lines are kept (default ``<XDG data>/novelcomic/tts-cache``);
    - ``boundary``: ``WordBoundary`` (word timings, for karaoke) or ``SentenceBoundary``;
    - ``probe_interval``: seconds before an edge-tts found unreachable is tried again (one line at a
      time; default 60). Meanwhile lines go straight to the fallback.
    """

    name = "edge"
    capabilities = VoiceCapabilities(word_timings=True, offline=False)

    def __init__(
        self,
        rate_by_emotion: bool = True,
        retries: int = 4,
        backoff: float = 0.5,
        timeout: float = 30.0,
        fallback: str | None = "espeak",
        cache_dir: str | None = None,
        boundary: str = "WordBoundary",
        probe_interval: float = PROBE_INTERVAL,
    ) -> None:
        if int(retries) < 0:
            raise NovelcomicError(f"retries must be ≥ 0, got {retries!r}", field="stages.voice.options.retries")
        if float(backoff) < 0 or float(timeout) <= 0:
            raise NovelcomicError(
                f"backoff must be ≥ 0 and timeout > 0 seconds, got {backoff!r} and {timeout!r}", field="stages.voice.options"
            )
        if float(probe_interval) < 0:
            raise NovelcomicError(
                f"probe_interval must be ≥ 0 seconds, got {probe_interval!r}", field="stages.voice.options.probe_interval"
            )
        if boundary not in ("WordBoundary", "SentenceBoundary"):
            raise NovelcomicError(
                f"boundary must be WordBoundary or SentenceBoundary, got {boundary!r}", field="stages.voice.options.boundary"
            )
        self.rate_by_emotion = bool(rate_by_emotion)
        self.retries = int(retries)
        self.backoff = float(backoff)
        self.timeout = float(timeout)
        self.fallback = None if fallback in (None, "", "none") else str(fallback)
        self.boundary = boundary
        self.probe_interval = float(probe_interval)
        self.breaker: Gate = BREAKER  # process-wide (novelcomic.remote); tests may give an instance its own
        if cache_dir:
            self.cache_dir = Path(cache_dir).expanduser()
        else:
            from novelcomic.prefect_env import data_dir

            self.cache_dir = data_dir() / "tts-cache"
        self.sleep: Callable[[float], None] = time.sleep  # tests replace it
        self.attempts = 0  # network attempts made by the last synthesize() call

    # ------------------------------------------------------------------ public

    def synthesize(self, request: SpeechRequest, out_path: Path) -> SpeechResult:
        """Speak ``request`` into a PCM16 WAV at ``out_path`` (see the module docstring)."""
        out_path = Path(out_path)
        if not request.text.strip():
            raise NovelcomicError("cannot speak an empty line")
        voice, rate, pitch, volume = self.prosody(request)
        key = self.cache_key(request.text, voice, rate, pitch, volume)
        self.attempts = 0
        cached = self._from_cache(key, out_path)
        if cached is not None:
            return cached
        state, outage = self.breaker.check(self.probe_interval)
        if state == "skip" and outage is not None:
            return self._fall_back(request, out_path, f"edge-tts skipped: unreachable earlier in this run ({outage.reason})")
        probing = state == "probe"
        errors: list[str] = []
        network = False
        for _attempt in retrying(RetryPolicy(self.retries, self.backoff), self.sleep):
            self.attempts += 1
            try:
                audio, words = run_coroutine(lambda: self._fetch(request.text, voice, rate, pitch, volume))
            except retryable_errors() as exc:
                errors.append(describe_error(exc, self.timeout))
                network = is_network_error(exc)
            else:
                if audio:
                    self.breaker.close()  # reachable (again)
                    return self._finish(key, audio, words, voice, out_path)
                errors.append("NoAudioReceived: empty stream")
                network = False
            if probing:  # one try only: still unreachable, or reachable again and retried as usual
                if network:
                    self.breaker.trip(errors[-1])
                    return self._fall_back(request, out_path, f"edge-tts still unreachable ({errors[-1]})")
                probing = False
                self.breaker.close()
        reason = f"edge-tts voice {voice} failed {len(errors)} time(s) (last: {errors[-1] if errors else 'unknown'})"
        if network:
            self.breaker.trip(errors[-1])
            if self.probe_interval > 0:
                reason += f"; edge-tts is skipped for the next {self.probe_interval:g} s"
        return self._fall_back(request, out_path, reason)

    def prosody(self, request: SpeechRequest) -> tuple[str, str, str, str]:
        """(voice, rate, pitch, volume) strings for ``request``: the cast's values plus its emotion's."""
        spec = request.voice
        voice = resolve_voice(spec.voice, request.language, spec.gender, request.speaker)
        emo = EMOTIONS.get(request.emotion, EMOTIONS["neutral"]) if self.rate_by_emotion else EdgeProsody()
        rate = max(-50, min(100, (spec.rate or 0) + emo.rate))
        pitch = max(-50, min(50, (spec.pitch or 0) + emo.pitch))
        volume = max(-90, min(50, emo.volume))
        return voice, signed(rate, "%"), signed(pitch, "Hz"), signed(volume, "%")

    def cache_key(self, text: str, voice: str, rate: str, pitch: str, volume: str) -> str:
        from novelcomic.fsutil import hash_inputs

        return hash_inputs(CACHE_VERSION, self.name, text, voice, rate, pitch, volume, self.boundary)

    # ------------------------------------------------------------------ pieces

    async def _fetch(self, text: str, voice: str, rate: str, pitch: str, volume: str) -> tuple[bytes, list[WordTiming]]:
        import edge_tts

        communicate = edge_tts.Communicate(text, voice, rate=rate, pitch=pitch, volume=volume, boundary=self.boundary)
        audio = bytearray()
        words: list[WordTiming] = []

        async def consume() -> None:
            async for chunk in communicate.stream():
                kind = chunk.get("type")
                if kind == "audio":
                    audio.extend(chunk.get("data") or b"")
                elif kind in ("WordBoundary", "SentenceBoundary"):
                    start = chunk["offset"] / TICKS_PER_SECOND
                    words.append(WordTiming(start, start + chunk["duration"] / TICKS_PER_SECOND, str(chunk.get("text", ""))))

        await asyncio.wait_for(consume(), timeout=self.timeout)
        return bytes(audio), words

    def _finish(self, key: str, audio: bytes, words: list[WordTiming], voice: str, out_path: Path) -> SpeechResult:
        from novelcomic.audio import wav_duration
        from novelcomic.ffmpeg import run_ffmpeg
        from novelcomic.fsutil import atomic_path, atomic_write_text

        with tempfile.TemporaryDirectory(prefix=".edge-", dir=out_path.parent) as scratch:
            mp3 = Path(scratch) / "line.mp3"
            mp3.write_bytes(audio)
            run_ffmpeg(
                ["-i", str(mp3), "-vn", "-ac", "1", "-ar", str(SAMPLE_RATE), "-c:a", "pcm_s16le", "-f", "wav", str(out_path)],
                "decoding edge-tts MP3 to WAV",
            )
        duration = wav_duration(out_path)
        words = [WordTiming(min(w.start, duration), min(w.end, duration), w.text) for w in words]
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.cache_dir / f"{key}.wav") as tmp:
            shutil.copyfile(out_path, tmp)
        meta = {"voice": voice, "words": [[w.start, w.end, w.text] for w in words]}
        atomic_write_text(self.cache_dir / f"{key}.json", json.dumps(meta, ensure_ascii=False))
        return SpeechResult(duration=duration, sample_rate=SAMPLE_RATE, backend=self.name, voice=voice, words=words)

    def _from_cache(self, key: str, out_path: Path) -> SpeechResult | None:
        from novelcomic.audio import wav_duration

        wav, meta_file = self.cache_dir / f"{key}.wav", self.cache_dir / f"{key}.json"
        if not (wav.is_file() and meta_file.is_file()):
            return None
        try:
            meta = json.loads(meta_file.read_text(encoding="utf-8"))
            words = [WordTiming(float(s), float(e), str(t)) for s, e, t in meta.get("words", [])]
            shutil.copyfile(wav, out_path)
            duration = wav_duration(out_path)
        except (OSError, ValueError, TypeError, EOFError):
            return None  # a damaged entry is fetched again and overwritten
        return SpeechResult(duration=duration, sample_rate=SAMPLE_RATE, backend=self.name, voice=meta.get("voice", ""), words=words)

    def _fall_back(self, request: SpeechRequest, out_path: Path, reason: str) -> SpeechResult:
        return speak_offline(self.fallback, request, out_path, reason)


def speak_offline(fallback: str | None, request: SpeechRequest, out_path: Path, reason: str) -> SpeechResult:
    """Speak ``request`` with the offline voice backend ``fallback`` (espeak, silent; silence when
    it is not installed) because an online voice failed for ``reason``: the result carries the
    warning and ``fallback = True``, so the next run voices the line again. ``fallback`` None
    raises a BackendError instead. Shared by every online voice backend (edge, openai)."""
    if fallback is None:
        raise BackendError(f"{reason}; no fallback voice configured")
    from novelcomic.registry import UnknownBackendError, tts_backends

    offline_request = SpeechRequest(
        text=request.text, language=request.language, speaker=request.speaker, emotion=request.emotion,
        voice=request.voice.model_copy(update={"voice": None, "pitch": None, "rate": None}),
    )
    try:
        backend = tts_backends.create(fallback, {})
    except UnknownBackendError:
        from novelcomic.voice.silent import SilentTTS

        backend = SilentTTS()
    result = backend.synthesize(offline_request, out_path)
    result.warnings = [f"{reason}; used the offline voice {backend.name!r}", *result.warnings]
    result.fallback = True
    return result


__all__ = [
    "BREAKER", "EMOTIONS", "EdgeBreaker", "EdgeProsody", "EdgeTTS", "Outage", "describe_error", "is_fallback",
    "is_network_error", "known_voices", "reset_breaker", "resolve_voice", "retryable_errors", "run_coroutine", "speak_offline",
    "suggest_voices",
]
