"""Microsoft Edge's online neural voices (``edge-tts``), with retries, a cache and an offline fallback.

The service is free and sounds far better than espeak, but it is online and flaky: offline it fails
at once (``aiohttp.ClientConnectorDNSError``), online it fails now and then (403 on a stale clock
skew, 503 on the handshake, ``NoAudioReceived``). So each line is:

1. looked up in a cache keyed by (text, voice, rate, pitch, volume, backend): a line heard before is
   never fetched again, and a re-run after an edit only fetches the changed lines;
2. fetched with :class:`edge_tts.Communicate`, streaming MP3 audio and ``WordBoundary`` /
   ``SentenceBoundary`` events (offsets in 100 ns units → seconds, kept as word timings for
   karaoke subtitles), retried with exponential backoff on network-type failures;
3. decoded to a PCM16 mono WAV with ffmpeg;
4. when every attempt failed, spoken by the offline ``fallback`` backend (espeak, else silence) with
   a warning in :attr:`SpeechResult.warnings`, so a chapter never stops on a network error.

Emotions bend the voice through edge-tts's prosody: rate (percent), pitch (Hz) and volume (percent).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from novelcomic.errors import BackendError, NovelcomicError
from novelcomic.voice.base import SpeechRequest, SpeechResult, WordTiming

CACHE_VERSION = "1"
SAMPLE_RATE = 24000  # edge-tts streams 24 kHz MP3
TICKS_PER_SECOND = 10_000_000  # WordBoundary offsets and durations are in 100 ns units
EDGE_VOICE_RE = re.compile(r"^[a-z]{2,3}-[A-Z]{2}(?:-[a-z]+)?-[A-Za-z]+Neural$")
DEFAULT_VOICES = {"zh": "zh-CN-YunyangNeural", "en": "en-US-ChristopherNeural"}

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
    - ``boundary``: ``WordBoundary`` (word timings, for karaoke) or ``SentenceBoundary``.
    """

    name = "edge"

    def __init__(
        self,
        rate_by_emotion: bool = True,
        retries: int = 4,
        backoff: float = 0.5,
        timeout: float = 30.0,
        fallback: str | None = "espeak",
        cache_dir: str | None = None,
        boundary: str = "WordBoundary",
    ) -> None:
        if int(retries) < 0:
            raise NovelcomicError(f"retries must be ≥ 0, got {retries!r}", field="stages.voice.options.retries")
        if float(backoff) < 0 or float(timeout) <= 0:
            raise NovelcomicError(
                f"backoff must be ≥ 0 and timeout > 0 seconds, got {backoff!r} and {timeout!r}", field="stages.voice.options"
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
        errors: list[str] = []
        for attempt in range(self.retries + 1):
            if attempt:
                self.sleep(self.backoff * 2 ** (attempt - 1))
            self.attempts += 1
            try:
                audio, words = run_coroutine(lambda: self._fetch(request.text, voice, rate, pitch, volume))
            except retryable_errors() as exc:
                errors.append(f"{type(exc).__name__}: {exc}".strip().rstrip(":"))
                continue
            if not audio:
                errors.append("NoAudioReceived: empty stream")
                continue
            return self._finish(key, audio, words, voice, out_path)
        return self._fall_back(request, out_path, voice, errors)

    def prosody(self, request: SpeechRequest) -> tuple[str, str, str, str]:
        """(voice, rate, pitch, volume) strings for ``request``: the cast's values plus its emotion's."""
        spec = request.voice
        voice = spec.voice if spec.voice and EDGE_VOICE_RE.match(spec.voice) else None
        if voice is None:
            from novelcomic.voice.casting import edge_default_voice

            voice = edge_default_voice(request.language, spec.gender)
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

    def _fall_back(self, request: SpeechRequest, out_path: Path, voice: str, errors: list[str]) -> SpeechResult:
        reason = f"edge-tts voice {voice} failed {len(errors)} time(s) (last: {errors[-1] if errors else 'unknown'})"
        if self.fallback is None:
            raise BackendError(f"{reason}; no fallback voice configured")
        from novelcomic.registry import UnknownBackendError, tts_backends

        offline_request = SpeechRequest(
            text=request.text, language=request.language, speaker=request.speaker, emotion=request.emotion,
            voice=request.voice.model_copy(update={"voice": None, "pitch": None, "rate": None}),
        )
        try:
            backend = tts_backends.create(self.fallback, {})
        except UnknownBackendError:
            from novelcomic.voice.silent import SilentTTS

            backend = SilentTTS()
        result = backend.synthesize(offline_request, out_path)
        result.warnings = [f"{reason}; used the offline voice {backend.name!r}", *result.warnings]
        return result


__all__ = ["EdgeTTS", "EMOTIONS", "EdgeProsody", "run_coroutine", "retryable_errors"]
