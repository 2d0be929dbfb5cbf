"""Small WAV helpers on the stdlib :mod:`wave` module and numpy.

Samples are float32 in ``[-1, 1]``. Files are written as PCM16; a 1-D array is mono, a 2-D array
of shape ``(frames, channels)`` keeps its channels. Reading mixes everything down to mono unless
asked not to (the composer and the tests only need mono).
"""

from __future__ import annotations

import wave
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy is imported lazily: importing this module stays cheap
    import numpy as np

_DTYPES = {1: "u1", 2: "<i2", 4: "<i4"}
WRITE_BLOCK = 1 << 18  # frames converted at a time by write_wav


def wav_duration(path: str | Path) -> float:
    """Seconds of audio in the WAV file at ``path`` (read from its header)."""
    with wave.open(str(path), "rb") as wf:
        rate = wf.getframerate()
        return wf.getnframes() / rate if rate else 0.0


def read_wav(path: str | Path, *, mono: bool = True) -> tuple[np.ndarray, int]:
    """Read a PCM WAV (8, 16 or 32 bit) as float32 samples and its sample rate.

    With ``mono=True`` (the default) channels are averaged into a 1-D array; otherwise the
    result has shape ``(frames, channels)``.
    """
    import numpy as np

    with wave.open(str(path), "rb") as wf:
        width, channels, rate = wf.getsampwidth(), wf.getnchannels(), wf.getframerate()
        raw = wf.readframes(wf.getnframes())
    if width not in _DTYPES:
        raise ValueError(f"{path}: unsupported WAV sample width of {width * 8} bits")
    data = np.frombuffer(raw, dtype=_DTYPES[width]).astype(np.float32)
    if width == 1:
        data = (data - 128.0) / 128.0
    else:
        data /= float(2 ** (8 * width - 1))
    data = data.reshape(-1, channels)
    if mono:
        return data.mean(axis=1).astype(np.float32), rate
    return data, rate


def write_wav(path: str | Path, samples: np.ndarray, rate: int) -> Path:
    """Write ``samples`` (float, ``[-1, 1]``, clipped) as a PCM16 WAV; return the path.

    ``samples`` is 1-D for mono or ``(frames, channels)``. The file is written in place: wrap the
    call in :func:`novelcomic.fsutil.atomic_path` when a half-written file must never be seen.
    """
    import numpy as np

    data = np.asarray(samples)
    if data.ndim == 1:
        data = data[:, None]
    if data.ndim != 2 or data.shape[1] < 1:
        raise ValueError(f"samples must be 1-D or (frames, channels), not shape {data.shape}")
    # in blocks: a long soundtrack is never copied whole as float and int16
    blocks = (data[i : i + WRITE_BLOCK] for i in range(0, max(1, len(data)), WRITE_BLOCK))
    return write_wav_blocks(path, blocks, rate, channels=data.shape[1])


def write_wav_blocks(path: str | Path, blocks: Iterable[np.ndarray], rate: int, channels: int) -> Path:
    """Write float blocks (``[-1, 1]``, clipped; 1-D or ``(frames, channels)``) one after the other
    as a PCM16 WAV, never holding more than one block: for tracks as long as a chapter."""
    import numpy as np

    with wave.open(str(path), "wb") as wf:
        wf.setnchannels(channels)
        wf.setsampwidth(2)
        wf.setframerate(int(rate))
        for blk in blocks:
            data = np.clip(np.asarray(blk, dtype=np.float32), -1.0, 1.0)
            wf.writeframes(np.round(data * 32767.0).astype("<i2").tobytes())
    return Path(path)


def silence(seconds: float, rate: int) -> np.ndarray:
    """``seconds`` of mono silence at ``rate`` (float32 zeros; negative lengths give none)."""
    import numpy as np

    return np.zeros(max(0, int(round(seconds * rate))), dtype=np.float32)


def rms(samples: np.ndarray) -> float:
    """Root-mean-square level of ``samples`` (0.0 for an empty array)."""
    import numpy as np

    data = np.asarray(samples, dtype=np.float64)
    return float(np.sqrt(np.mean(data * data))) if data.size else 0.0
