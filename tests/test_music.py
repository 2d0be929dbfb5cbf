"""Generated background music: every mood's loop, rendered once for the module."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from novelcomic.audio import read_wav
from novelcomic.errors import NovelcomicError
from novelcomic.music import ARRANGEMENTS, MOODS, ensure_loop, loop_seconds

RATE = 44100


@pytest.fixture(scope="module")
def loops(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    cache = tmp_path_factory.mktemp("music")
    return {mood: ensure_loop(mood, cache, RATE) for mood in MOODS}


def _stereo(path: Path) -> np.ndarray:
    data, rate = read_wav(path, mono=False)
    assert rate == RATE
    return data


def _dbfs(x: np.ndarray) -> float:
    return 20 * np.log10(float(np.max(np.abs(x))))


def _centroid(x: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(x.mean(axis=1)))
    freqs = np.fft.rfftfreq(len(x), 1 / RATE)
    return float((spectrum * freqs).sum() / spectrum.sum())


def _curvature(x: np.ndarray, at: int) -> float:
    """Largest second difference within 3 samples of ``at``, reading the loop circularly."""
    seg = x[np.arange(at - 3, at + 4) % len(x)]
    return float(np.abs(np.diff(seg, 2, axis=0)).max())


def _onset_rate(x: np.ndarray) -> float:
    """Rises of the 10 ms energy envelope per second: a rough measure of rhythmic activity."""
    mono = x.mean(axis=1)
    hop = RATE // 100
    energy = np.sqrt((mono[: len(mono) // hop * hop].reshape(-1, hop) ** 2).mean(axis=1))
    rises = np.diff(energy) > 0.5 * energy.mean()
    return rises.sum() / (len(mono) / RATE)


@pytest.mark.parametrize("mood", MOODS)
def test_loop_is_a_usable_seamless_bed(loops: dict[str, Path], mood: str) -> None:
    x = _stereo(loops[mood])
    assert x.shape[1] == 2
    assert 16.0 <= len(x) / RATE <= 32.0 and len(x) / RATE == pytest.approx(loop_seconds(mood, RATE))
    assert -7.0 <= _dbfs(x) <= -3.0
    assert float(np.sqrt(np.mean(x**2))) > 0.05  # not silent
    # seamless: the step from the last sample to the first is an ordinary one …
    jumps = np.abs(np.diff(x, axis=0))
    wrap = np.abs(x[0] - x[-1])
    assert np.all(wrap <= np.percentile(jumps, 99.9, axis=0)), f"{mood}: click at the loop point"
    # … and the curvature there is like that at every other bar line (where notes start too)
    bars = ARRANGEMENTS[mood].bars
    at_bars = [_curvature(x, k * len(x) // bars) for k in range(1, bars)]
    assert _curvature(x, 0) <= 1.5 * max(at_bars), f"{mood}: the loop point is rougher than its bar lines"
    # the start of the loop should not be a fade-in: the head already carries the tail's sound
    head, tail = x[: RATE // 10], x[-RATE // 10 :]
    assert np.sqrt(np.mean(head**2)) > 0.3 * np.sqrt(np.mean(tail**2))


def test_same_bytes_every_time_and_cached(loops: dict[str, Path], tmp_path: Path) -> None:
    again = ensure_loop("tense", tmp_path, RATE)
    assert again != loops["tense"] and again.read_bytes() == loops["tense"].read_bytes()
    before = loops["calm"].stat().st_mtime_ns
    assert ensure_loop("calm", loops["calm"].parent, RATE) == loops["calm"]
    assert loops["calm"].stat().st_mtime_ns == before
    assert not [p for p in loops["calm"].parent.iterdir() if p.name.startswith(".")]  # no temp files left


def test_moods_sound_different(loops: dict[str, Path]) -> None:
    x = {m: _stereo(p) for m, p in loops.items()}
    assert len({p.read_bytes() for p in loops.values()}) == len(MOODS)
    assert _centroid(x["action"]) > 2 * _centroid(x["sad"])
    assert _centroid(x["joyful"]) > _centroid(x["sad"])
    assert _onset_rate(x["action"]) > 2 * _onset_rate(x["sad"])


def test_other_rates_and_unknown_moods(tmp_path: Path) -> None:
    path = ensure_loop("action", tmp_path, 22050)
    data, rate = read_wav(path)
    assert rate == 22050 and 16 <= len(data) / rate <= 32
    assert os.path.basename(path) != os.path.basename(ensure_loop("action", tmp_path, 44100))
    with pytest.raises(NovelcomicError, match=r"'romantic'.*calm.*action"):
        ensure_loop("romantic", tmp_path)
