"""The TTS interface. ``synthesize`` writes a WAV (PCM16, mono, any rate) to the path it is given
(the pipeline passes a temporary path and renames it atomically) and says how long it is."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from novelcomic.models import VoiceSpec


@dataclass
class SpeechRequest:
    text: str
    language: str  # "zh" | "en"
    voice: VoiceSpec
    speaker: str = "narrator"  # character id or "narrator"
    emotion: str = "neutral"


@dataclass
class WordTiming:
    start: float
    end: float
    text: str


@dataclass
class SpeechResult:
    duration: float  # seconds of audio written
    sample_rate: int
    backend: str
    voice: str = ""  # the concrete voice used
    words: list[WordTiming] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    fallback: bool = False  # the configured backend failed and an offline voice spoke the line: retried next run


@dataclass(frozen=True)
class VoiceCapabilities:
    """What a voice backend can do, declared by its class (``capabilities = VoiceCapabilities(...)``):
    the stages ask this, never the backend's methods."""

    word_timings: bool = False  # fills SpeechResult.words (karaoke subtitles)
    cloning: bool = False  # speaks in a voice cloned from a character's ``reference_audio``
    offline: bool = True  # needs no network


def voice_capabilities_of(backend: object) -> VoiceCapabilities:
    caps = getattr(backend, "capabilities", None)
    return caps if isinstance(caps, VoiceCapabilities) else VoiceCapabilities()


class TTSBackend(Protocol):
    name: str
    capabilities: VoiceCapabilities

    def synthesize(self, request: SpeechRequest, out_path: Path) -> SpeechResult: ...
