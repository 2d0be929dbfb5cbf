"""A voice backend that speaks nothing: silence as long as the line would take to say.

Useful for layout previews and machines without a TTS engine; :class:`~novelcomic.voice.espeak.EspeakTTS`
falls back to the same timed silence when espeak-ng is missing.
"""

from __future__ import annotations

import re
from pathlib import Path

from novelcomic.voice.base import SpeechRequest, SpeechResult, VoiceCapabilities

SAMPLE_RATE = 22050
CJK_CHARS_PER_SECOND = 4.5
WORDS_PER_SECOND = 2.7
MIN_SECONDS = 0.8

_CJK_RE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_WORD_RE = re.compile(r"[A-Za-z0-9\u00c0-\u024f]+(?:['’][A-Za-z]+)*")
_LONG_PAUSE_RE = re.compile(r"[.!?。！？]+|…+|\n+")
_SHORT_PAUSE_RE = re.compile(r"[,;:，；：、—]+")
LONG_PAUSE_SECONDS = 0.35
SHORT_PAUSE_SECONDS = 0.18


def estimate_speech_seconds(text: str, language: str = "zh") -> float:
    """How long ``text`` takes to say aloud, in seconds (at least :data:`MIN_SECONDS`).

    Chinese characters count at ~4.5 per second and Latin-script words (or digit groups) at ~2.7
    per second, whatever ``language`` says, so mixed text is timed sensibly; sentence ends and
    ellipses add a longer pause, commas a shorter one (a final full stop adds none).
    """
    del language  # the counts above already tell the scripts apart
    cjk = len(_CJK_RE.findall(text))
    words = len(_WORD_RE.findall(_CJK_RE.sub(" ", text)))
    long_pauses = len(_LONG_PAUSE_RE.findall(text.strip().rstrip(".!?。！？…\"'”’」』")))
    short_pauses = len(_SHORT_PAUSE_RE.findall(text))
    seconds = (
        cjk / CJK_CHARS_PER_SECOND
        + words / WORDS_PER_SECOND
        + long_pauses * LONG_PAUSE_SECONDS
        + short_pauses * SHORT_PAUSE_SECONDS
    )
    return round(max(MIN_SECONDS, seconds), 3)


def write_timed_silence(text: str, language: str, out_path: Path, rate: int = SAMPLE_RATE) -> float:
    """Write silence as long as ``text`` takes to say to ``out_path``; return its duration."""
    from novelcomic.audio import silence, wav_duration, write_wav

    write_wav(out_path, silence(estimate_speech_seconds(text, language), rate), rate)
    return wav_duration(out_path)


class SilentTTS:
    """Timed silence instead of speech (22.05 kHz mono PCM16)."""

    name = "silent"
    capabilities = VoiceCapabilities()

    def __init__(self, sample_rate: int = SAMPLE_RATE) -> None:
        if not 8000 <= int(sample_rate) <= 192000:
            raise ValueError(f"sample_rate {sample_rate} is outside 8000-192000 Hz")
        self.sample_rate = int(sample_rate)

    def synthesize(self, request: SpeechRequest, out_path: Path) -> SpeechResult:
        """Write a silent WAV timed from ``request.text`` to ``out_path``."""
        duration = write_timed_silence(request.text, request.language, Path(out_path), self.sample_rate)
        return SpeechResult(
            duration=duration,
            sample_rate=self.sample_rate,
            backend=self.name,
            voice="silent",
            warnings=["voice backend 'silent': this line is silence timed from its text (use backend 'espeak' for speech)"],
        )
