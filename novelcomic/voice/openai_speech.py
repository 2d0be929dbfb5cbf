"""The ``openai`` voice backend: any server that speaks OpenAI's ``POST /v1/audio/speech`` — OpenAI
itself, CosyVoice through SiliconFlow, Kokoro-FastAPI, Fish, Chatterbox, IndexTTS packs.

One request per line: ``{"model", "input", "voice", "response_format", "speed"?, "instructions"?}``.

- ``voice``: the character's ``voice`` in characters.yaml, else the ``voice`` option; ``speed``:
  the character's ``voice.speed``, else the option (sent only when set).
- ``instructions`` carry the line's emotion ("Speak sadly, quietly…") to models that take them
  (``instructions: auto`` sends them to ``gpt-4o*-tts`` models only; ``true``/``false`` force it).
- ``response_format`` is ``wav`` by default: the line's length (its timing in the video) is read
  from the audio itself. ``pcm`` (raw 16-bit mono at ``sample_rate``) is read directly too;
  ``mp3``/``opus``/``aac``/``flac`` are decoded with ffmpeg.
- Cloning: a character with ``voice.reference_audio`` (a clip inside the project, checked by the
  path policy) and ``voice.reference_text`` (what the clip says) speaks in that voice on servers
  that clone. ``clone: siliconflow`` (the default) does it the way SiliconFlow documents for
  CosyVoice2: the clip is uploaded once (``POST /uploads/audio/voice``, multipart ``model``,
  ``customName``, ``text``, ``file``), the answer's ``uri`` (``speech:name:…``) is then the line's
  ``voice``. ``clone: none`` refuses reference clips.

Failures follow the edge-tts rules: connection errors, timeouts, 429 and 5xx are retried with
backoff (honouring ``Retry-After``; :mod:`novelcomic.remote`), then the line is spoken by the
offline ``fallback`` voice with a warning and marked so that the next run voices it again; a
server found down is skipped for ``probe_interval`` seconds by every line of the process. A
refusal (400, 401, 403, 404: a bad voice name, a bad key) is a configuration error and stops
the run with one line.
"""

from __future__ import annotations

import hashlib
import struct
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from novelcomic import remote
from novelcomic.errors import BackendError, NovelcomicError
from novelcomic.voice.base import SpeechRequest, SpeechResult, VoiceCapabilities

OPTIONS = "stages.voice.options."
FORMATS = ("wav", "pcm", "mp3", "opus", "aac", "flac")
# How an emotion is asked of models that take instructions.
EMOTION_INSTRUCTIONS: dict[str, str] = {
    "happy": "Speak happily, with a warm smile in the voice.",
    "sad": "Speak sadly, slower and softer, with a heavy heart.",
    "angry": "Speak angrily, sharp and forceful.",
    "afraid": "Speak fearfully, tense and a little breathless.",
    "surprised": "Speak with surprise, lifting the voice.",
    "whisper": "Whisper, very quietly and close.",
    "excited": "Speak excitedly, fast and bright.",
}
_UPLOADED: dict[tuple[str, str, str], str] = {}  # (base_url, model, clip hash) → voice uri, whole process
_UPLOAD_LOCK = threading.Lock()


@dataclass(frozen=True)
class LineCall:
    """What one line asked the server (kept for tests and benchmarks)."""

    voice: str
    speed: float | None
    instructions: str | None


class OpenAISpeech:
    """Lines spoken by an OpenAI-compatible ``/v1/audio/speech`` server (``stages.voice.backend: openai``).

    Options: ``base_url``, ``model``, ``api_key_env`` (``none`` for a server without a key),
    ``voice`` (default for characters without one), ``speed``, ``response_format`` (default
    ``wav``), ``sample_rate`` (for ``pcm``), ``instructions`` (auto | true | false),
    ``clone`` (siliconflow | none), ``timeout``, ``retries``, ``backoff``, ``concurrency``,
    ``fallback`` (espeak | silent | none), ``probe_interval``.
    """

    name = "openai"
    capabilities = VoiceCapabilities(cloning=True, offline=False)

    def __init__(
        self,
        model: str | None = None,
        base_url: str = "https://api.openai.com/v1",
        api_key_env: str | None = "OPENAI_API_KEY",
        voice: str = "alloy",
        speed: float | None = None,
        response_format: str = "wav",
        sample_rate: int = 24000,
        instructions: str | bool = "auto",
        clone: str = "siliconflow",
        timeout: float = 60.0,
        retries: int = 3,
        backoff: float = 1.0,
        concurrency: int = 4,
        fallback: str | None = "espeak",
        probe_interval: float = remote.PROBE_INTERVAL,
        api_key: Any = None,
    ) -> None:
        remote.refuse_inline_key(api_key, OPTIONS + "api_key")
        if not model or not isinstance(model, str):
            raise NovelcomicError("the openai voice backend needs a model (e.g. model: gpt-4o-mini-tts, "
                                  "or FunAudioLLM/CosyVoice2-0.5B on SiliconFlow)", field=OPTIONS + "model")
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise NovelcomicError(f"base_url {base_url!r} must be an http(s) URL", field=OPTIONS + "base_url")
        if not isinstance(voice, str) or not voice.strip():
            raise NovelcomicError(f"voice {voice!r} must be a voice name of the server", field=OPTIONS + "voice")
        _check_speed(speed, OPTIONS + "speed")
        if response_format not in FORMATS:
            raise NovelcomicError(f"response_format {response_format!r} must be one of {', '.join(FORMATS)}",
                                  field=OPTIONS + "response_format")
        if instructions not in ("auto", True, False):
            raise NovelcomicError(f"instructions {instructions!r} must be auto, true or false", field=OPTIONS + "instructions")
        if clone not in ("siliconflow", "none"):
            raise NovelcomicError(f"clone {clone!r} must be siliconflow or none", field=OPTIONS + "clone")
        for key, value, lo, hi in (("retries", retries, 0, 20), ("concurrency", concurrency, 1, 64),
                                   ("sample_rate", sample_rate, 8000, 192000)):
            if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
                raise NovelcomicError(f"{key} {value!r} must be a whole number from {lo} to {hi}", field=OPTIONS + key)
        for key, value in (("timeout", timeout), ("backoff", backoff), ("probe_interval", probe_interval)):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0 or (key == "timeout" and value == 0):
                raise NovelcomicError(f"{key} {value!r} must be a positive number of seconds", field=OPTIONS + key)
        key_env = remote.env_name(api_key_env, OPTIONS + "api_key_env")
        remote.require_key(key_env, OPTIONS + "api_key_env", f"the speech server at {base_url}")
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.voice = voice.strip()
        self.speed = float(speed) if speed is not None else None
        self.response_format = response_format
        self.sample_rate = sample_rate
        self.instructions = instructions
        self.clone = clone
        self.fallback = None if fallback in (None, "", "none") else str(fallback)
        self.client = remote.RemoteClient(remote.RemoteConfig(
            base_url=self.base_url, label="speech server", api_key_env=key_env, timeout=float(timeout),
            retries=retries, backoff=float(backoff), concurrency=concurrency, probe_interval=float(probe_interval),
        ))
        self.calls: list[LineCall] = []

    # ------------------------------------------------------------------ public

    def synthesize(self, request: SpeechRequest, out_path: Path) -> SpeechResult:
        """Speak ``request`` into a PCM16 mono WAV at ``out_path`` (see the module docstring)."""
        from novelcomic.voice.edge import speak_offline

        out_path = Path(out_path)
        if not request.text.strip():
            raise NovelcomicError("cannot speak an empty line")
        spec = request.voice
        speed = spec.speed if spec.speed is not None else self.speed
        instructions = self.instructions_for(request.emotion)
        try:
            voice = self.voice_for(request, out_path)
            body: dict[str, Any] = {"model": self.model, "input": request.text, "voice": voice,
                                    "response_format": self.response_format}
            if speed is not None:
                body["speed"] = speed
            if instructions:
                body["instructions"] = instructions
            if self.response_format in ("wav", "pcm") and self.sample_rate != 24000:
                body["sample_rate"] = self.sample_rate
            self.calls.append(LineCall(voice, speed, instructions))
            reply = self.client.request("POST", "audio/speech", json=body, check=False)
        except remote.ServerDown as exc:
            return speak_offline(self.fallback, request, out_path, f"speech server skipped: {exc}")
        except remote.HTTPStatusError as exc:  # 429/5xx after every retry
            return speak_offline(self.fallback, request, out_path, str(exc))
        if reply.status >= 400:
            raise self.client.status_error(reply.status, reply.url, reply.text)
        duration, rate = self.write_wav(reply.content, out_path, reply.url, reply.headers.get("content-type", ""))
        return SpeechResult(duration=duration, sample_rate=rate, backend=self.name, voice=voice)

    def instructions_for(self, emotion: str) -> str | None:
        wanted = self.instructions is True or (self.instructions == "auto" and _takes_instructions(self.model))
        return EMOTION_INSTRUCTIONS.get(emotion) if wanted else None

    def voice_for(self, request: SpeechRequest, out_path: Path) -> str:
        """The ``voice`` to send: an uploaded clone's uri, the character's voice, else the default."""
        spec = request.voice
        if spec.reference_audio:
            return self.cloned_voice(request, out_path)
        return (spec.voice or "").strip() or self.voice

    def cloned_voice(self, request: SpeechRequest, out_path: Path) -> str:
        from novelcomic.voice.edge import voice_field

        spec = request.voice
        where = voice_field(request.speaker).rsplit(".", 1)[0]
        if self.clone == "none":
            raise NovelcomicError("reference_audio needs a server that clones voices (clone: siliconflow)",
                                  file="characters.yaml", field=f"{where}.reference_audio")
        if not (spec.reference_text or "").strip():
            raise NovelcomicError("reference_audio needs reference_text: what the clip says, word for word",
                                  file="characters.yaml", field=f"{where}.reference_text")
        path = reference_path(str(spec.reference_audio), out_path, f"{where}.reference_audio")
        clip = path.read_bytes()
        digest = hashlib.sha256(clip + (spec.reference_text or "").encode()).hexdigest()[:16]
        key = (self.base_url, self.model, digest)
        with _UPLOAD_LOCK:
            if key in _UPLOADED:
                return _UPLOADED[key]
            answer = self.client.post_multipart(
                "uploads/audio/voice",
                data={"model": self.model, "customName": f"nc-{digest}", "text": spec.reference_text},
                files=[remote.Upload("file", path.name, clip, _audio_mime(path))],
            )
            uri = answer.get("uri") if isinstance(answer, dict) else None
            if not isinstance(uri, str) or not uri:
                raise BackendError(f"speech server at {self.client.url('uploads/audio/voice')} sent no voice uri: "
                                   f"{remote.snippet(str(answer))}")
            _UPLOADED[key] = uri
            return uri

    # ------------------------------------------------------------------ audio

    def write_wav(self, content: bytes, out_path: Path, url: str, content_type: str = "") -> tuple[float, int]:
        """Write the server's audio as PCM16 mono WAV; return (duration, sample rate)."""
        from novelcomic.audio import wav_duration, write_wav

        if not content:
            raise BackendError(f"speech server at {url} sent no audio")
        if self.response_format == "pcm":
            import numpy as np

            samples = np.frombuffer(content[: len(content) // 2 * 2], dtype="<i2").astype(np.float32) / 32768.0
            write_wav(out_path, samples, self.sample_rate)
            return wav_duration(out_path), self.sample_rate
        if content[:4] == b"RIFF" and content[8:12] == b"WAVE":
            samples, rate = read_riff(content, url)
            write_wav(out_path, samples, rate)
            return wav_duration(out_path), rate
        if self.response_format == "wav" or "json" in content_type:
            raise BackendError(f"speech server at {url} sent no WAV audio ({content_type or 'no content type'}): "
                               f"{remote.snippet(content[:200])}")
        from novelcomic.ffmpeg import run_ffmpeg

        with tempfile.TemporaryDirectory(prefix=".speech-", dir=out_path.parent) as scratch:
            src = Path(scratch) / f"line.{self.response_format}"
            src.write_bytes(content)
            run_ffmpeg(["-i", str(src), "-vn", "-ac", "1", "-c:a", "pcm_s16le", "-f", "wav", str(out_path)],
                       f"decoding {self.response_format} audio from {url}")
        import wave

        with wave.open(str(out_path), "rb") as wf:
            rate = wf.getframerate()
        return wav_duration(out_path), rate


def read_riff(content: bytes, url: str = "") -> tuple[Any, int]:
    """Samples (float32 mono) and rate of a WAV body. Streamed WAVs (OpenAI's among them) carry
    placeholder sizes (0xFFFFFFFF) in their headers: the data runs to the end of the body."""
    import numpy as np

    pos, fmt, data = 12, None, None
    while pos + 8 <= len(content):
        cid, size = content[pos:pos + 4], struct.unpack("<I", content[pos + 4:pos + 8])[0]
        body = content[pos + 8: pos + 8 + size] if size != 0xFFFFFFFF else content[pos + 8:]
        if cid == b"fmt ":
            fmt = struct.unpack("<HHIIHH", body[:16])
        elif cid == b"data":
            data = body if size not in (0, 0xFFFFFFFF) else content[pos + 8:]
            break
        pos += 8 + size + (size & 1)
    if fmt is None or data is None:
        raise BackendError(f"speech server at {url} sent a WAV without fmt/data chunks")
    tag, channels, rate, _, _, bits = fmt
    if tag == 0xFFFE:  # WAVE_FORMAT_EXTENSIBLE: the sub-format says PCM or float
        tag = 3 if bits == 32 and b"\x03\x00\x00\x00\x10\x00" in content[:200] else 1
    if tag == 1 and bits in (16, 32):
        dtype, scale = ("<i2", 32768.0) if bits == 16 else ("<i4", 2147483648.0)
    elif tag == 3 and bits == 32:
        dtype, scale = "<f4", 1.0
    else:
        raise BackendError(f"speech server at {url} sent a WAV novelcomic cannot read (format {tag}, {bits} bit)")
    width = bits // 8 * channels
    samples = np.frombuffer(data[: len(data) // width * width], dtype=dtype).astype(np.float32) / scale
    return samples.reshape(-1, channels).mean(axis=1), rate


def reference_path(value: str, out_path: Path, field: str) -> Path:
    """A character's reference clip, resolved by the path policy against the project the line is
    written into (the first folder above ``out_path`` that holds a project.yaml)."""
    from novelcomic.paths import resolve_user_path

    project = next((p for p in Path(out_path).resolve().parents if (p / "project.yaml").is_file()), None)
    if project is None:
        raise NovelcomicError(f"reference_audio {value!r}: no project around {out_path} to read it from", field=field)
    try:
        path = resolve_user_path(value, project, field)
    except NovelcomicError as exc:
        raise NovelcomicError(exc.message, file="characters.yaml", field=field) from None
    if not path.is_file():
        raise NovelcomicError(f"reference_audio {value!r} is not a file", file="characters.yaml", field=field)
    return path


def _takes_instructions(model: str) -> bool:
    low = model.lower()
    return "gpt-4o" in low and "tts" in low


def _audio_mime(path: Path) -> str:
    return {".wav": "audio/wav", ".mp3": "audio/mpeg", ".flac": "audio/flac", ".ogg": "audio/ogg",
            ".m4a": "audio/mp4"}.get(path.suffix.lower(), "application/octet-stream")


def _check_speed(value: object, field: str) -> None:
    if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.25 <= value <= 4.0):
        raise NovelcomicError(f"speed {value!r} must be a number from 0.25 to 4.0 (1.0 is normal)", field=field)


def forget_uploads() -> None:
    """Forget the voices uploaded in this process (tests)."""
    with _UPLOAD_LOCK:
        _UPLOADED.clear()


__all__ = ["EMOTION_INSTRUCTIONS", "LineCall", "OpenAISpeech", "forget_uploads", "read_riff", "reference_path"]
