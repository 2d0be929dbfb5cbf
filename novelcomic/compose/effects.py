"""Custom per-shot effects, drawn with moviepy.

An effect is a moviepy 2 :class:`~moviepy.Effect` registered by name in
:data:`novelcomic.registry.effects`; a shot names one in ``effect:`` in its storyboard. Only that
shot's *body* segment is drawn by moviepy (the still, its camera move, then the effect); every other
segment, the transitions into and out of the shot included, stays a plain ffmpeg filter graph.
moviepy writes the frames losslessly (RGB), and the composer's usual ffmpeg pass burns the
subtitles in and encodes them with exactly the codec parameters of every other segment, so the
chapter is still joined with ``-c copy``.

Two effects are built in, registered lazily by :func:`ensure_builtin_effects`:

- ``shake``: a small, quick camera shake (impacts, explosions, a slammed door);
- ``vignette_pulse``: the frame's edges darken and lighten like a heartbeat (dread, tension).

A plugin adds its own with ``effects.register("name", "pkg.module:MyEffect")``; the class is
constructed without arguments.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from novelcomic.errors import NovelcomicError

if TYPE_CHECKING:
    import numpy as np

BUILTIN_EFFECTS = {
    "shake": "novelcomic.compose.effects:Shake",
    "vignette_pulse": "novelcomic.compose.effects:VignettePulse",
}


def ensure_builtin_effects() -> None:
    """Register the built-in effects in :data:`novelcomic.registry.effects` unless a name is taken."""
    from novelcomic.registry import effects

    known = set(effects.names())
    for name, target in BUILTIN_EFFECTS.items():
        if name not in known:
            effects.register(name, target)


def create_effect(name: str) -> Any:
    """A fresh instance of the effect registered as ``name`` (a moviepy ``Effect``)."""
    from moviepy import Effect

    from novelcomic.registry import effects

    ensure_builtin_effects()
    effect = effects.create(name, {})
    if not isinstance(effect, Effect):
        raise NovelcomicError(f"effect {name!r} is a {type(effect).__name__}, not a moviepy Effect", field="effect")
    return effect


def _make_classes() -> dict[str, type]:
    import numpy as np
    from moviepy import Effect

    @dataclass
    class Shake(Effect):
        """A quick camera shake: every frame jumps by up to ``amplitude`` of the frame's width, in a
        direction drawn from ``seed`` and the frame's time (the same clip always shakes the same way,
        and no frame rate can alias it into a slow drift)."""

        amplitude: float = 0.02
        seed: int = 7

        def apply(self, clip: Any) -> Any:
            w, h = clip.size
            amp = max(1, round(self.amplitude * w))

            def shake(get_frame: Callable[[float], np.ndarray], t: float) -> np.ndarray:
                frame = get_frame(t)
                rng = np.random.default_rng([self.seed, round(t * 1000)])
                dx, dy = (int(v) for v in rng.integers(-amp, amp + 1, size=2))
                padded = np.pad(frame, ((amp, amp), (amp, amp), (0, 0)), mode="edge")
                return padded[amp + dy : amp + dy + h, amp + dx : amp + dx + w]

            return clip.transform(shake)

    @dataclass
    class VignettePulse(Effect):
        """Edges that darken and lighten with a slow pulse (``period`` seconds)."""

        strength: float = 0.6
        period: float = 1.6

        def apply(self, clip: Any) -> Any:
            w, h = clip.size
            y, x = np.mgrid[0:h, 0:w].astype(np.float32)
            r2 = ((x - w / 2) / (w / 2)) ** 2 + ((y - h / 2) / (h / 2)) ** 2
            r2 = np.clip(r2 / 2, 0, 1)[:, :, None]

            def pulse(get_frame: Callable[[float], np.ndarray], t: float) -> np.ndarray:
                depth = self.strength * (0.55 + 0.45 * math.sin(2 * math.pi * t / self.period))
                return (get_frame(t).astype(np.float32) * (1 - depth * r2)).clip(0, 255).astype(np.uint8)

            return clip.transform(pulse)

    for cls in (Shake, VignettePulse):
        cls.__qualname__ = cls.__name__
        cls.__module__ = __name__
    return {"Shake": Shake, "VignettePulse": VignettePulse}


def __getattr__(name: str) -> Any:
    """``Shake`` and ``VignettePulse`` are built on first access (moviepy is imported then)."""
    if name in ("Shake", "VignettePulse"):
        classes = _make_classes()
        globals().update(classes)
        return classes[name]
    raise AttributeError(name)


def render_effect_frames(
    image: Path,
    width: int,
    height: int,
    fps: int,
    frames: int,
    box_at: Callable[[int], tuple[float, float, float, float]],
    effect_name: str,
    out_path: Path,
) -> None:
    """Draw ``frames`` frames of ``image`` through moviepy into ``out_path`` (lossless RGB H.264).

    The still is cover-scaled to the frame; frame ``n`` shows the window ``box_at(n)`` (left, top,
    right, bottom as fractions of the frame) — the same camera move the ffmpeg segments draw — and
    then the effect ``effect_name`` is applied.
    """
    import numpy as np
    from moviepy import ImageClip
    from PIL import Image

    effect = create_effect(effect_name)
    with Image.open(image) as im:
        im = im.convert("RGB")
        scale = max(width / im.width, height / im.height)
        size = (max(width, round(im.width * scale)), max(height, round(im.height * scale)))
        im = im.resize(size, Image.LANCZOS)
        left, top = (size[0] - width) // 2, (size[1] - height) // 2
        base = im.crop((left, top, left + width, top + height))

    def camera(get_frame: Callable[[float], np.ndarray], t: float) -> np.ndarray:
        n = min(frames - 1, max(0, round(t * fps)))
        l, tp, r, b = box_at(n)
        box = (l * width, tp * height, r * width, b * height)
        return np.asarray(base.resize((width, height), Image.BILINEAR, box=box))

    clip = ImageClip(np.asarray(base)).with_duration(frames / fps).with_fps(fps).transform(camera)
    clip = effect.copy().apply(clip)
    # moviepy draws the frames; our own ffmpeg encodes them (losslessly), so the encoder is a
    # child that dies with the run and stops with it (novelcomic.procs), unlike moviepy's writer
    from novelcomic.ffmpeg import feed_ffmpeg

    frames_iter = (np.ascontiguousarray(f, dtype=np.uint8).tobytes() for f in clip.iter_frames(fps=fps, dtype="uint8"))
    feed_ffmpeg(
        ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", str(fps), "-i", "pipe:",
         "-frames:v", str(frames), "-c:v", "libx264rgb", "-preset", "ultrafast", "-qp", "0", str(out_path)],
        frames_iter, f"encoding effect {effect_name!r}",
    )
    clip.close()


__all__ = ["BUILTIN_EFFECTS", "ensure_builtin_effects", "create_effect", "render_effect_frames"]
