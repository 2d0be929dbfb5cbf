"""Generated background music: one seamless loop per mood, synthesised with numpy.

No audio files are committed: :func:`ensure_loop` renders a mood's loop the first time it is asked
for and caches it (keyed by mood, sample rate and :data:`GENERATOR_VERSION`). Each loop is an
integer number of bars of a chord progression played by a soft pad, a bass line, an arpeggio and,
for some moods, light drums. Every note is written *circularly* into the loop buffer, so a note
still ringing at the end continues at the start, and the reverb and tone filter are circular
(FFT) convolutions: the loop is one period of a periodic signal and repeats without a click.

The same mood and rate always give the same bytes (all randomness is seeded).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from novelcomic.errors import NovelcomicError

if TYPE_CHECKING:
    import numpy as np

GENERATOR_VERSION = 1
MOODS: tuple[str, ...] = ("calm", "tense", "sad", "joyful", "mysterious", "action")
PEAK_DBFS = -6.0
BEATS_PER_BAR = 4

CHORD_INTERVALS: dict[str, tuple[int, ...]] = {
    "maj": (0, 4, 7), "min": (0, 3, 7), "maj7": (0, 4, 7, 11), "min7": (0, 3, 7, 10),
    "sus2": (0, 2, 7), "sus4": (0, 5, 7), "5": (0, 7, 12), "wt": (0, 2, 6, 10),
}


# --------------------------------------------------------------------------- arrangements


@dataclass(frozen=True)
class Pad:
    """Sustained chords: one note per chord tone, held for the chord, slow attack and release."""

    low: int  # MIDI note the chord's root is folded above
    level: float
    attack: float  # seconds
    release: float
    harmonics: tuple[float, ...]
    detune_cents: float = 6.0
    tremolo: float = 0.0  # depth 0-1 of a slow volume swell, one cycle per bar


@dataclass(frozen=True)
class Part:
    """A plucked line (bass, arpeggio, bells): a chord-tone index (or rest) per step.

    Index 0 is the root; indices past the chord's size go up an octave. The pattern repeats
    every ``len(pattern)`` steps across bars.
    """

    pattern: tuple[int | None, ...]
    steps_per_beat: int
    low: int
    level: float
    decay: float  # seconds of exponential decay
    harmonics: tuple[float, ...]
    gate: float | None = None  # fraction of a step held; None lets the note ring out
    pan: float = 0.0  # -1 left … 1 right


@dataclass(frozen=True)
class Drums:
    """Soft synthetic drums; positions are in beats within a bar."""

    kick: tuple[float, ...] = ()
    snare: tuple[float, ...] = ()
    hats_per_beat: int = 0
    hats_offbeat: bool = False
    level: float = 0.4


@dataclass(frozen=True)
class Arrangement:
    bpm: float
    bars: int
    bars_per_chord: int
    progression: tuple[tuple[int, str], ...]  # (root MIDI note, chord quality)
    pad: Pad
    parts: tuple[Part, ...]
    drums: Drums | None
    reverb_seconds: float
    reverb_wet: float
    brightness_hz: float  # low-pass corner of the final mix
    seed: int


ARRANGEMENTS: dict[str, Arrangement] = {
    # gentle major-seventh pads in F, a sparse soft arpeggio, no drums
    "calm": Arrangement(
        bpm=72, bars=8, bars_per_chord=2,
        progression=((53, "maj7"), (50, "min7"), (46, "maj7"), (48, "sus4")),
        pad=Pad(low=53, level=0.22, attack=1.2, release=2.0, harmonics=(1, 0.35, 0.12, 0.05)),
        parts=(
            Part((0, 2, 1, 3, None, 2, 1, None), 2, low=65, level=0.10, decay=0.7, harmonics=(1, 0.2, 0.05), pan=0.3),
            Part((0, None, None, None), 1, low=36, level=0.24, decay=1.5, harmonics=(1, 0.25)),
        ),
        drums=None, reverb_seconds=2.5, reverb_wet=0.35, brightness_hz=3500, seed=101,
    ),
    # A minor with an E major turn, a low staccato eighth-note pulse and a heartbeat kick
    "tense": Arrangement(
        bpm=96, bars=8, bars_per_chord=2,
        progression=((45, "min"), (41, "maj"), (50, "min"), (40, "maj")),
        pad=Pad(low=45, level=0.16, attack=0.6, release=1.0, harmonics=(1, 0.5, 0.3, 0.15, 0.08)),
        parts=(
            Part((0,) * 8, 2, low=33, level=0.28, decay=0.18, harmonics=(1, 0.5, 0.25), gate=0.5),
            Part((0, None, None, 0, None, None, 1, None), 2, low=69, level=0.06, decay=0.25,
                 harmonics=(1, 0.3), pan=-0.4),
        ),
        drums=Drums(kick=(0.0, 0.5), level=0.5),
        reverb_seconds=1.5, reverb_wet=0.25, brightness_hz=1800, seed=202,
    ),
    # slow A minor (i–VI–iv–V), a piano-like quarter-note arpeggio, long reverb
    "sad": Arrangement(
        bpm=64, bars=8, bars_per_chord=2,
        progression=((57, "min"), (53, "maj"), (50, "min"), (52, "maj")),
        pad=Pad(low=52, level=0.20, attack=1.5, release=2.5, harmonics=(1, 0.3, 0.1)),
        parts=(
            Part((0, 1, 2, 1), 1, low=57, level=0.14, decay=1.4, harmonics=(1, 0.4, 0.15, 0.05), pan=0.2),
            Part((0, None, None, None), 1, low=33, level=0.22, decay=2.0, harmonics=(1, 0.3)),
        ),
        drums=None, reverb_seconds=3.0, reverb_wet=0.4, brightness_hz=2200, seed=303,
    ),
    # bright D major I–V–vi–IV at a walking tempo, eighth-note arpeggio, light kit
    "joyful": Arrangement(
        bpm=116, bars=12, bars_per_chord=1,
        progression=((50, "maj"), (45, "maj"), (47, "min"), (43, "maj")),
        pad=Pad(low=50, level=0.14, attack=0.3, release=0.8, harmonics=(1, 0.5, 0.25, 0.12, 0.06)),
        parts=(
            Part((0, 1, 2, 3, 2, 1, 2, 3), 2, low=62, level=0.12, decay=0.35, harmonics=(1, 0.3, 0.15), pan=0.3),
            Part((0, None, 0, None, 0, None, 0, 2), 2, low=38, level=0.24, decay=0.4, harmonics=(1, 0.4, 0.1),
                 gate=0.8),
        ),
        drums=Drums(kick=(0.0, 2.0), snare=(1.0, 3.0), hats_per_beat=2, hats_offbeat=True, level=0.35),
        reverb_seconds=1.2, reverb_wet=0.2, brightness_hz=6000, seed=404,
    ),
    # whole-tone and suspended pads that swell, sparse high bells, a low drone
    "mysterious": Arrangement(
        bpm=66, bars=8, bars_per_chord=2,
        progression=((48, "wt"), (51, "sus2"), (50, "wt"), (47, "sus4")),
        pad=Pad(low=48, level=0.20, attack=2.0, release=2.5, harmonics=(1, 0.15, 0.4, 0.05, 0.12),
                detune_cents=9.0, tremolo=0.35),
        parts=(
            Part((3, None, None, 1, None, None, 2, None), 1, low=72, level=0.08, decay=1.8,
                 harmonics=(1, 0.1, 0.3), pan=-0.3),
            Part((0,) + (None,) * 7, 1, low=36, level=0.20, decay=3.0, harmonics=(1, 0.2)),
        ),
        drums=None, reverb_seconds=3.5, reverb_wet=0.5, brightness_hz=2600, seed=505,
    ),
    # driving D minor (i–VI–VII–V): power-chord stabs, sixteenth arpeggio, eighth bass, full kit
    "action": Arrangement(
        bpm=140, bars=12, bars_per_chord=1,
        progression=((50, "5"), (46, "5"), (48, "5"), (45, "5")),
        pad=Pad(low=50, level=0.12, attack=0.05, release=0.3, harmonics=(1, 0.5, 0.33, 0.25, 0.2, 0.16),
                detune_cents=10.0),
        parts=(
            Part((0, 1, 2, 1) * 4, 4, low=62, level=0.07, decay=0.12, harmonics=(1, 0.5, 0.3), pan=0.35),
            Part((0,) * 8, 2, low=38, level=0.26, decay=0.2, harmonics=(1, 0.6, 0.3, 0.15), gate=0.6),
        ),
        drums=Drums(kick=(0.0, 1.0, 2.0, 3.0), snare=(1.0, 3.0), hats_per_beat=2, level=0.55),
        reverb_seconds=0.9, reverb_wet=0.15, brightness_hz=8000, seed=606,
    ),
}


# --------------------------------------------------------------------------- public API


def ensure_loop(mood: str, cache_dir: Path, sample_rate: int = 44100) -> Path:
    """The path of ``mood``'s seamless loop WAV (stereo PCM16) in ``cache_dir``, made if missing.

    A cached file is returned untouched; a new one is written atomically, so concurrent callers
    never see half a file. Unknown moods raise :class:`NovelcomicError`.
    """
    _check_mood(mood)
    target = Path(cache_dir) / f"{mood}-{int(sample_rate)}-v{GENERATOR_VERSION}.wav"
    if target.is_file() and target.stat().st_size > 44:
        return target
    from novelcomic.audio import write_wav
    from novelcomic.fsutil import atomic_path

    samples = render_loop(mood, sample_rate)
    with atomic_path(target) as tmp:
        write_wav(tmp, samples, sample_rate)
    return target


def render_loop(mood: str, sample_rate: int = 44100) -> np.ndarray:
    """``mood``'s loop as float samples of shape ``(frames, 2)``, peaking at :data:`PEAK_DBFS`."""
    _check_mood(mood)
    if not 8000 <= int(sample_rate) <= 192000:
        raise NovelcomicError(f"music sample rate {sample_rate} is outside 8000-192000 Hz")
    return _Renderer(ARRANGEMENTS[mood], int(sample_rate)).render()


def loop_seconds(mood: str, sample_rate: int = 44100) -> float:
    """The length of ``mood``'s loop in seconds (without rendering it)."""
    _check_mood(mood)
    arr = ARRANGEMENTS[mood]
    return arr.bars * BEATS_PER_BAR * _samples_per_beat(arr.bpm, sample_rate) / sample_rate


def _check_mood(mood: str) -> None:
    if mood not in ARRANGEMENTS:
        raise NovelcomicError(f"unknown music mood {mood!r} (known moods: {', '.join(MOODS)})")


def _samples_per_beat(bpm: float, rate: int) -> int:
    """Samples in a beat: the 7-smooth integer nearest the exact value (a tempo error under 1 %).

    Whole loops are then products of small primes, which keeps their FFTs fast.
    """
    exact = rate * 60.0 / bpm
    for offset in range(int(exact * 0.01) + 2):
        for candidate in (round(exact) - offset, round(exact) + offset):
            if _is_smooth(candidate):
                return candidate
    return int(round(exact))


def _is_smooth(n: int) -> bool:
    for p in (2, 3, 5, 7):
        while n > 1 and n % p == 0:
            n //= p
    return n == 1


# --------------------------------------------------------------------------- synthesis


class _Renderer:
    """Renders one arrangement into a circular stereo buffer (a single use object)."""

    def __init__(self, arrangement: Arrangement, rate: int) -> None:
        import numpy as np

        self.arr = arrangement
        self.rate = rate
        self.beat = _samples_per_beat(arrangement.bpm, rate)
        self.bar = self.beat * BEATS_PER_BAR
        self.length = self.bar * arrangement.bars
        self.buf = np.zeros((2, self.length))
        self.rng = np.random.default_rng(arrangement.seed)
        self._plucks: dict[tuple[int, int, int], np.ndarray] = {}  # (part, note, samples) → signal

    def render(self) -> np.ndarray:
        self._pads()
        for part in self.arr.parts:
            self._part(part)
        if self.arr.drums is not None:
            self._drums(self.arr.drums)
        return _master(self._space()).T.copy()

    # ------------------------------------------------------------- layers

    def _chords(self) -> list[tuple[int, tuple[int, ...]]]:
        """(start sample, chord notes) for every chord of the loop."""
        arr, span = self.arr, self.bar * self.arr.bars_per_chord
        count = arr.bars // arr.bars_per_chord
        return [(i * span, _chord_notes(*arr.progression[i % len(arr.progression)])) for i in range(count)]

    def _pads(self) -> None:
        pad, span = self.arr.pad, self.bar * self.arr.bars_per_chord
        for start, chord in self._chords():
            for note in _voicing(chord, pad.low):
                self._place(start, self._pad_note(_hz(note), span, start), pan=0.0)

    def _pad_note(self, freq: float, hold: int, start: int) -> np.ndarray:
        import numpy as np

        pad = self.arr.pad
        n = hold + int(pad.release * self.rate)
        env = _envelope(n, int(pad.attack * self.rate), hold, n - hold)
        if pad.tremolo:
            t = (start + np.arange(n)) % self.bar / self.bar
            env = env * (1.0 - pad.tremolo * 0.5 * (1.0 - np.cos(2 * np.pi * t)))
        cents = pad.detune_cents / 1200.0
        left = _additive(freq * 2 ** -cents, n, self.rate, pad.harmonics, self.rng.uniform(0, 2 * np.pi))
        right = _additive(freq * 2 ** cents, n, self.rate, pad.harmonics, self.rng.uniform(0, 2 * np.pi))
        return np.stack([left, right]) * env * pad.level

    def _part(self, part: Part) -> None:
        step = self.beat // part.steps_per_beat
        for index, (start, chord) in enumerate(self._steps(step)):
            tone = part.pattern[index % len(part.pattern)]
            if tone is None:
                continue
            notes = _voicing(chord, part.low)
            note = notes[tone % len(notes)] + 12 * (tone // len(notes))
            self._place(start, self._pluck(part, note, step), pan=part.pan)

    def _pluck(self, part: Part, note: int, step: int) -> np.ndarray:
        """One note of a plucked part (memoised: arpeggios repeat the same few notes)."""
        import numpy as np

        if part.gate is None:
            n = int(min(4.0, part.decay * 5.0) * self.rate)
        else:
            n = max(int(step * part.gate), int(0.03 * self.rate))
        key = (self.arr.parts.index(part), note, n)
        if key not in self._plucks:
            t = np.arange(n) / self.rate
            env = np.exp(-t / part.decay) * _envelope(n, int(0.005 * self.rate), 0, min(n // 4, int(0.05 * self.rate)))
            self._plucks[key] = _additive(_hz(note), n, self.rate, part.harmonics, 0.0) * env * part.level
        return self._plucks[key]

    def _steps(self, step: int) -> list[tuple[int, tuple[int, ...]]]:
        """(start sample, chord sounding there) for every step of ``step`` samples in the loop."""
        chords = self._chords()
        span = self.bar * self.arr.bars_per_chord
        return [(s, chords[s // span][1]) for s in range(0, self.length, step)]

    def _drums(self, drums: Drums) -> None:
        for bar in range(self.arr.bars):
            origin = bar * self.bar
            for beat in drums.kick:
                self._place(origin + int(beat * self.beat), _kick(self.rate) * drums.level, pan=0.0)
            for beat in drums.snare:
                self._place(origin + int(beat * self.beat), _snare(self.rate, self.rng) * drums.level * 0.6, pan=-0.1)
            for k in range(BEATS_PER_BAR * drums.hats_per_beat):
                if drums.hats_offbeat and k % 2 == 0:
                    continue
                at = origin + k * self.beat // drums.hats_per_beat
                self._place(at, _hat(self.rate, self.rng) * drums.level * (0.35 if k % 2 else 0.25), pan=0.4)

    # ------------------------------------------------------------- mixing

    def _place(self, start: int, sig: np.ndarray, pan: float) -> None:
        """Add ``sig`` (mono or 2×n) at ``start``, wrapping past the end back to the beginning."""
        import numpy as np

        if sig.ndim == 1:
            angle = (pan + 1.0) * np.pi / 4
            sig = np.stack([sig * np.cos(angle), sig * np.sin(angle)]) * np.sqrt(2.0)
        sig = sig[:, : self.length]
        start %= self.length
        first = min(sig.shape[1], self.length - start)
        self.buf[:, start : start + first] += sig[:, :first]
        if sig.shape[1] > first:
            self.buf[:, : sig.shape[1] - first] += sig[:, first:]

    def _space(self) -> np.ndarray:
        """Circular reverb, low-pass and DC removal in one FFT pass (keeps the loop periodic)."""
        import numpy as np

        n = self.length
        freqs = np.fft.rfftfreq(n, 1.0 / self.rate)
        lowpass = 1.0 / np.sqrt(1.0 + (freqs / self.arr.brightness_hz) ** 4)
        out = np.empty_like(self.buf)
        for ch in range(2):
            ir = _reverb_ir(self.arr.reverb_seconds, self.rate, n, self.rng)
            spectrum = np.fft.rfft(self.buf[ch]) * (1.0 + self.arr.reverb_wet * np.fft.rfft(ir)) * lowpass
            spectrum[0] = 0.0
            out[ch] = np.fft.irfft(spectrum, n)
        return out


def _master(buf: np.ndarray) -> np.ndarray:
    """Soft-limit and scale so the peak sits at :data:`PEAK_DBFS`."""
    import numpy as np

    peak = float(np.max(np.abs(buf)))
    if peak <= 0:
        return buf
    drive = 1.5
    limited = np.tanh(drive * buf / peak) / np.tanh(drive)
    return limited * 10 ** (PEAK_DBFS / 20.0)


# --------------------------------------------------------------------------- primitives


def _hz(midi: float) -> float:
    return 440.0 * 2 ** ((midi - 69) / 12.0)


def _chord_notes(root: int, quality: str) -> tuple[int, ...]:
    return tuple(root + i for i in CHORD_INTERVALS[quality])


def _voicing(chord: tuple[int, ...], low: int) -> tuple[int, ...]:
    """Root position with the root moved into ``[low, low + 12)``; index 0 is the root."""
    shift = low + (chord[0] - low) % 12 - chord[0]
    return tuple(n + shift for n in chord)


def _additive(freq: float, n: int, rate: int, harmonics: tuple[float, ...], phase: float) -> np.ndarray:
    """Sum of harmonics ``k·freq`` (amplitudes ``harmonics``), skipping those near Nyquist.

    Uses the Chebyshev recurrence ``sin((k+1)x) = 2cos(x)sin(kx) − sin((k−1)x)``: two trig calls
    per note however many harmonics it has. The phase is reduced in float64, the rest is float32.
    """
    import numpy as np

    x = np.mod(2 * np.pi * freq / rate * np.arange(n) + phase, 2 * np.pi).astype(np.float32)
    two_cos = 2.0 * np.cos(x)
    prev, cur = np.zeros(n, dtype=np.float32), np.sin(x)
    out = np.zeros(n, dtype=np.float32)
    for k, amp in enumerate(harmonics, start=1):
        if freq * k >= 0.45 * rate:
            break
        if amp:
            out += np.float32(amp) * cur
        prev, cur = cur, two_cos * cur - prev
    return out


def _envelope(n: int, attack: int, hold: int, release: int) -> np.ndarray:
    """Raised-cosine attack, flat to ``hold`` samples, raised-cosine release to zero at ``n``."""
    import numpy as np

    env = np.ones(n)
    attack = max(1, min(attack, n))
    env[:attack] = 0.5 - 0.5 * np.cos(np.pi * np.arange(attack) / attack)
    release = max(1, min(release, n - min(hold, n)))
    env[n - release :] *= 0.5 + 0.5 * np.cos(np.pi * np.arange(1, release + 1) / release)
    return env


def _kick(rate: int) -> np.ndarray:
    import numpy as np

    n = int(0.35 * rate)
    t = np.arange(n) / rate
    freq = 48.0 + 90.0 * np.exp(-t / 0.035)
    phase = 2 * np.pi * np.cumsum(freq) / rate
    return np.sin(phase) * np.exp(-t / 0.16) * _envelope(n, int(0.002 * rate), 0, int(0.03 * rate))


def _snare(rate: int, rng: np.random.Generator) -> np.ndarray:
    import numpy as np

    n = int(0.25 * rate)
    t = np.arange(n) / rate
    noise = np.diff(rng.standard_normal(n + 1)) * 0.5
    body = np.sin(2 * np.pi * 185.0 * t) * np.exp(-t / 0.05)
    return (noise * np.exp(-t / 0.07) * 0.6 + body * 0.5) * _envelope(n, int(0.001 * rate), 0, int(0.02 * rate))


def _hat(rate: int, rng: np.random.Generator) -> np.ndarray:
    import numpy as np

    n = int(0.07 * rate)
    t = np.arange(n) / rate
    noise = np.diff(rng.standard_normal(n + 2), n=2) * 0.3
    return noise * np.exp(-t / 0.018) * _envelope(n, int(0.001 * rate), 0, int(0.01 * rate))


def _reverb_ir(seconds: float, rate: int, length: int, rng: np.random.Generator) -> np.ndarray:
    """Exponentially decaying, slightly darkened noise (−60 dB at ``seconds``), unit energy, padded to ``length``."""
    import numpy as np

    n = min(int(seconds * rate), length)
    t = np.arange(n) / rate
    noise = np.convolve(rng.standard_normal(n), np.ones(6) / 6, mode="same")
    tail = noise * np.exp(-6.9 * t / seconds) * _envelope(n, int(0.01 * rate), 0, 1)
    tail /= np.sqrt(np.sum(tail**2)) or 1.0
    ir = np.zeros(length)
    ir[:n] = tail
    return ir
