"""espeak-ng voices: offline, fast (~0.03 s a sentence) and robotic but clear.

Mandarin is spoken with ``cmn-latn-pinyin`` (plain ``cmn`` reads Chinese as English-spoken pinyin),
English with ``en-us``; :mod:`novelcomic.voice.casting` adds a variant per character (``+f2``…).
The text goes to espeak-ng on stdin, never through a shell, after symbols it would read aloud
("asterisk", "tilde") are removed and ellipses/dashes turned into pauses. When espeak-ng is
missing or fails, the line becomes timed silence (see :mod:`novelcomic.voice.silent`) and the
result carries a warning saying how to install it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from novelcomic import procs
from novelcomic.voice.base import SpeechRequest, SpeechResult, VoiceCapabilities
from novelcomic.voice.casting import DEFAULT_PITCH, default_rate, expand_voice, language_voice
from novelcomic.voice.silent import SAMPLE_RATE, write_timed_silence

INSTALL_COMMAND = "`sudo apt-get install espeak-ng` (macOS: `brew install espeak-ng`)"
INSTALL_HINT = f"install it with {INSTALL_COMMAND}"
DEFAULT_AMPLITUDE = 100  # espeak-ng's own default; its scale is 0-200


@dataclass(frozen=True)
class Prosody:
    """How an emotion bends a voice: rate and amplitude factors, a pitch offset, extra word gap."""

    rate: float = 1.0
    pitch: int = 0
    amplitude: float = 1.0
    word_gap: int = 0  # units of 10 ms


EMOTIONS: dict[str, Prosody] = {
    "neutral": Prosody(),
    "happy": Prosody(rate=1.06, pitch=6, amplitude=1.05),
    "sad": Prosody(rate=0.85, pitch=-8, amplitude=0.85, word_gap=2),
    "angry": Prosody(rate=1.12, pitch=4, amplitude=1.35),
    "afraid": Prosody(rate=1.10, pitch=10, amplitude=0.9),
    "surprised": Prosody(rate=1.05, pitch=14, amplitude=1.15),
    "whisper": Prosody(rate=0.88, pitch=-4, amplitude=0.4, word_gap=1),
    "excited": Prosody(rate=1.15, pitch=10, amplitude=1.3),
}


# --------------------------------------------------------------------------- text cleaning

_PAUSE = {"zh": "，", "en": ", "}
_ELLIPSIS_RE = re.compile(r"…+|\.{2,}|。{2,}|·{3,}|⋯+")
_DASH_RE = re.compile(r"[—―–]+|-{2,}|～+|~+")
_NEWLINE_RE = re.compile(r"\s*[\r\n]+\s*")
_KEEP_PUNCT = set(",.!?;:%'-，。！？；：、")
_STRAY_APOSTROPHE_RE = re.compile(r"(?<![A-Za-z])'|'(?![A-Za-z])")
_STRAY_HYPHEN_RE = re.compile(r"(?<![\w])-|-(?![\w])")
_REPEATED_PUNCT_RE = re.compile(r"([,.!?;:，。！？；：、])(?:\s*[,.!?;:，。！？；：、])+")
_LEADING_PUNCT_RE = re.compile(r"^[\s,.!?;:，。！？；：、]+")
_SPACES_RE = re.compile(r"[ \t]+")
_CJK_PUNCT_SPACE_RE = re.compile(r"\s*([，。！？；：、])\s*")
_SPACE_BEFORE_PUNCT_RE = re.compile(r"\s+([,.!?;:%])")


def clean_text(text: str, language: str) -> str:
    """``text`` as espeak-ng should hear it: no quotes, brackets or symbols it would spell out.

    Ellipses, dashes, tildes and line breaks become a pause (a comma); ``&`` becomes "and"/"和";
    apostrophes survive only inside words (``don't``), hyphens only between them. Returns ``""``
    when nothing speakable is left.
    """
    pause = _PAUSE.get(language, _PAUSE["en"])
    text = text.replace("’", "'").replace("&", " 和 " if language == "zh" else " and ")
    text = _ELLIPSIS_RE.sub(pause, text)
    text = _DASH_RE.sub(pause, text)
    text = _NEWLINE_RE.sub(pause, text.strip())
    text = "".join(ch if _speakable(ch) else " " for ch in text)
    text = _STRAY_APOSTROPHE_RE.sub(" ", text)
    text = _STRAY_HYPHEN_RE.sub(" ", text)
    text = _REPEATED_PUNCT_RE.sub(r"\1 ", text)
    text = _SPACES_RE.sub(" ", text)
    text = _CJK_PUNCT_SPACE_RE.sub(r"\1", text)
    text = _SPACE_BEFORE_PUNCT_RE.sub(r"\1", text).strip()
    text = _LEADING_PUNCT_RE.sub("", text)
    return text if any(ch.isalnum() for ch in text) else ""


def _speakable(ch: str) -> bool:
    if ch in _KEEP_PUNCT or ch == " ":
        return True
    category = unicodedata.category(ch)
    return category[0] in "LN" and ch != "_"


# --------------------------------------------------------------------------- the backend


class EspeakTTS:
    """The ``espeak`` voice backend.

    Options (``stages.voice.options`` in project.yaml):

    - ``binary``: the espeak-ng executable (name on PATH or a path);
    - ``speed``: multiplies every speaker's rate (1.2 = 20 % faster);
    - ``amplitude``: espeak-ng amplitude before emotions, 0-200;
    - ``trim``: cut the silence espeak-ng leaves before and after speech (the timeline adds its own pauses);
    - ``timeout``: seconds one line may take before it is given up (and becomes silence).
    """

    name = "espeak"
    capabilities = VoiceCapabilities()

    def __init__(
        self,
        binary: str = "espeak-ng",
        speed: float = 1.0,
        amplitude: int = DEFAULT_AMPLITUDE,
        trim: bool = True,
        timeout: float = 60.0,
    ) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be positive, not {speed}")
        self.binary = binary
        self.speed = float(speed)
        self.amplitude = int(amplitude)
        self.trim = bool(trim)
        self.timeout = float(timeout)

    def synthesize(self, request: SpeechRequest, out_path: Path) -> SpeechResult:
        """Speak ``request`` into a WAV at ``out_path`` (timed silence when espeak-ng is unusable)."""
        out_path = Path(out_path)
        text = clean_text(request.text, request.language)
        if not text:  # only punctuation ("……"): a pause, not an error
            return self._silence(request, out_path, voice="")
        executable = shutil.which(self.binary)
        if executable is None:
            return self._silence(request, out_path, warning=f"espeak-ng not found ({self.binary!r}); {INSTALL_HINT}")
        voice = self.voice_for(request)
        error = self._run(executable, self.arguments(request, voice), text, out_path)
        default = language_voice(request.language)
        if error and voice != default:  # a bad user voice name: the language's default voice instead
            retry = self._run(executable, self.arguments(request, default), text, out_path)
            if retry is None:
                return self._result(out_path, default, [f"espeak-ng voice {voice!r} failed ({error}); used {default!r}"])
        if error:
            hint = f"check `espeak-ng --version` or reinstall it with {INSTALL_COMMAND}"
            return self._silence(request, out_path, warning=f"espeak-ng failed ({error}); {hint}")
        return self._result(out_path, voice, [])

    # ----------------------------------------------------------------- pieces

    def voice_for(self, request: SpeechRequest) -> str:
        """The concrete espeak-ng voice for a request (the cast's, or the language default)."""
        return expand_voice(request.voice.voice, request.language) if request.voice.voice else language_voice(request.language)

    def arguments(self, request: SpeechRequest, voice: str) -> list[str]:
        """espeak-ng options (without the executable, input or output) for ``request`` in ``voice``."""
        prosody = EMOTIONS.get(request.emotion, EMOTIONS["neutral"])
        spec = request.voice
        rate = spec.rate if spec.rate is not None else default_rate(request.language)
        pitch = spec.pitch if spec.pitch is not None else DEFAULT_PITCH
        args = [
            "-v", voice,
            "-s", str(_clamp(round(rate * self.speed * prosody.rate), 80, 450)),
            "-p", str(_clamp(pitch + prosody.pitch, 0, 99)),
            "-a", str(_clamp(round(self.amplitude * prosody.amplitude), 0, 200)),
        ]
        if prosody.word_gap:
            args += ["-g", str(prosody.word_gap)]
        return args

    def _run(self, executable: str, args: list[str], text: str, out_path: Path) -> str | None:
        """Run espeak-ng; ``None`` on success, else a one-line reason."""
        cmd = [executable, *args, "-b", "1", "-w", str(out_path), "--stdin"]
        try:
            proc = procs.run(cmd, input=text.encode("utf-8"), capture_output=True, timeout=self.timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"{type(exc).__name__}: {exc}"
        procs.check_stop()  # espeak-ng ended by a stop signal: no silent stand-in is recorded
        if proc.returncode != 0:
            stderr = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            return f"exit {proc.returncode}" + (f": {stderr[-1]}" if stderr else "")
        if not out_path.exists() or out_path.stat().st_size <= 44:
            return "no audio written"
        return None

    def _result(self, out_path: Path, voice: str, warnings: list[str]) -> SpeechResult:
        from novelcomic.audio import wav_duration

        if self.trim:
            _trim_silence(out_path)
        duration = wav_duration(out_path)
        if duration <= 0:
            warnings = [*warnings, "espeak-ng produced no audio for this line"]
        return SpeechResult(duration=duration, sample_rate=_rate_of(out_path), backend=self.name, voice=voice, warnings=warnings)

    def _silence(self, request: SpeechRequest, out_path: Path, warning: str = "", voice: str = "silent") -> SpeechResult:
        duration = write_timed_silence(request.text, request.language, out_path, SAMPLE_RATE)
        warnings = [f"{warning}; this line is silent"] if warning else []
        return SpeechResult(duration=duration, sample_rate=SAMPLE_RATE, backend=self.name, voice=voice, warnings=warnings)


# --------------------------------------------------------------------------- helpers

TRIM_KEEP_SECONDS = (0.03, 0.12)  # silence kept before / after the speech
TRIM_THRESHOLD = 0.01  # of the peak


def _trim_silence(path: Path) -> None:
    """Cut leading/trailing near-silence from the WAV at ``path`` in place (keeps a little)."""
    import numpy as np

    from novelcomic.audio import read_wav, write_wav

    samples, rate = read_wav(path)
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    if peak <= 0:
        return
    loud = np.flatnonzero(np.abs(samples) > peak * TRIM_THRESHOLD)
    start = max(0, loud[0] - int(TRIM_KEEP_SECONDS[0] * rate))
    end = min(samples.size, loud[-1] + 1 + int(TRIM_KEEP_SECONDS[1] * rate))
    if start > 0 or end < samples.size:
        write_wav(path, samples[start:end], rate)


def _rate_of(path: Path) -> int:
    import wave

    with wave.open(str(path), "rb") as wf:
        return wf.getframerate()


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, int(value)))
