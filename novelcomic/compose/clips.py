"""Drawing an image-to-video clip inside a segment (see novelcomic.animate).

A clip plays over all the time its shot is visible (its body and both transitions), with no
camera move. Its frames are decoded once per segment by ffmpeg — cover-scaled with Lanczos to the
video's frame and converted to BT.709 limited-range yuv420p, like a still — into a scratch file
read through a memory map. Time is mapped by :func:`source_position`:

- a clip at least as long as its shot plays at its own speed and is cut at the shot's end;
- a shorter one is slowed (``fill: slow``) by up to :data:`MAX_SLOW`, each output frame a blend
  of the two clip frames around its time (frame blending), and then held on its last frame; with
  ``fill: hold`` it plays at its own speed and holds its last frame.

The still's lettering (bubbles, captions: a transparent PNG the animate stage cut out of the
lettered still) is converted to yuv420p planes with their alpha once, cropped to where it is
opaque, and laid over every frame.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from novelcomic.compose.base import ClipVideo
from novelcomic.errors import BackendError
from novelcomic.ffmpeg import run_ffmpeg

MAX_SLOW = 2.5  # a clip is slowed at most this much; longer shots hold its last frame after that

Planes = tuple[np.ndarray, np.ndarray, np.ndarray]


def source_position(i: int, visible: int, fps: int, clip: ClipVideo) -> float:
    """The clip frame (fractional: blended) shown at the ``i``-th of the ``visible`` frames."""
    t = i / fps
    natural = clip.frames / clip.fps
    span = visible / fps
    rate = clip.fps
    if clip.fill == "slow" and span > natural:
        rate = clip.fps / min(MAX_SLOW, span / natural)
    return min(t * rate, clip.frames - 1.0)


def timing_key(clip: ClipVideo) -> list[object]:
    return [clip.fps, clip.frames, clip.fill, MAX_SLOW]


def decode_clip(path: Path, width: int, height: int, scratch: Path) -> np.ndarray:
    """Every frame of ``path`` cover-scaled to ``width``×``height`` as yuv420p: an array of
    shape (frames, width·height·3/2), memory-mapped from a scratch file."""
    out = scratch / f"clip-{threading.get_ident()}-{path.stem}-{width}x{height}.yuv"
    vf = (f"scale={width}:{height}:force_original_aspect_ratio=increase:flags=lanczos"
          f":out_color_matrix=bt709:out_range=tv,format=yuv420p,crop={width}:{height}")
    run_ffmpeg(["-i", str(path), "-vf", vf, "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "yuv420p", str(out)],
               f"decoding the clip {path.name}")
    size = width * height * 3 // 2
    n = out.stat().st_size // size
    if n < 1:
        raise BackendError(f"decoding the clip {path.name}: no frames")
    return np.memmap(out, dtype=np.uint8, mode="r", shape=(n, size))


@dataclass
class Overlay:
    """The lettering layer in yuv420p with its alpha, cropped to its opaque part (luma pixels,
    even-aligned): (x, y) where the crop goes, planes and alpha (0..256) for luma and chroma."""

    x: int
    y: int
    planes: Planes
    alpha: tuple[np.ndarray, np.ndarray]

    def blend(self, dst: Planes) -> None:
        for i, (d, s) in enumerate(zip(dst, self.planes)):
            a = self.alpha[0 if i == 0 else 1]
            sub = 1 if i == 0 else 2
            x, y = self.x // sub, self.y // sub
            h, w = s.shape
            roi = d[y:y + h, x:x + w]
            roi[...] = ((roi.astype(np.uint16) * (256 - a) + s.astype(np.uint16) * a + 128) >> 8).astype(np.uint8)


def load_overlay(path: Path, width: int, height: int) -> Overlay | None:
    """The lettering PNG scaled to the frame (its own aspect is the frame's) as an :class:`Overlay`."""
    import cv2
    from PIL import Image

    with Image.open(path) as im:
        rgba = np.asarray(im.convert("RGBA").resize((width, height), Image.Resampling.LANCZOS))
    alpha = rgba[..., 3]
    ys, xs = np.nonzero(alpha)
    if not len(xs):
        return None
    x0, y0 = (int(xs.min()) // 2) * 2, (int(ys.min()) // 2) * 2
    x1, y1 = min(width, math.ceil((int(xs.max()) + 1) / 2) * 2), min(height, math.ceil((int(ys.max()) + 1) / 2) * 2)
    crop = np.ascontiguousarray(rgba[y0:y1, x0:x1])
    yuv = _rgb_to_yuv709(crop[..., :3])
    a = crop[..., 3].astype(np.uint16)
    a = a + (a >> 7)  # 0..255 → 0..256
    h, w = a.shape
    a_c = cv2.resize(a.astype(np.float32), (w // 2, h // 2), interpolation=cv2.INTER_AREA).round().astype(np.uint16)
    u = cv2.resize(yuv[..., 1], (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    v = cv2.resize(yuv[..., 2], (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    return Overlay(x0, y0, (np.ascontiguousarray(yuv[..., 0]), u, v), (a, a_c))


def _rgb_to_yuv709(rgb: np.ndarray) -> np.ndarray:
    """RGB (uint8) → BT.709 limited-range YUV (uint8), per pixel."""
    f = rgb.astype(np.float32) / 255.0
    y = 0.2126 * f[..., 0] + 0.7152 * f[..., 1] + 0.0722 * f[..., 2]
    cb = (f[..., 2] - y) / 1.8556
    cr = (f[..., 0] - y) / 1.5748
    out = np.stack([16 + 219 * y, 128 + 224 * cb, 128 + 224 * cr], axis=-1)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def rgb_to_yuv(colour: tuple[int, int, int]) -> tuple[int, int, int]:
    """One RGB colour in BT.709 limited-range YUV."""
    y, u, v = _rgb_to_yuv709(np.array([[colour]], dtype=np.uint8))[0, 0]
    return int(y), int(u), int(v)


class ClipDrawer:
    """Draws frame ``n`` of a segment from a clip (see the module docstring)."""

    def __init__(self, clip: ClipVideo, visible: int, offset: int, fps: int, width: int, height: int, scratch: Path) -> None:
        self.clip, self.visible, self.offset, self.fps = clip, visible, offset, fps
        self.width, self.height = width, height
        self.frames = decode_clip(clip.path, width, height, scratch)
        self.overlay = load_overlay(clip.letters, width, height) if clip.letters and Path(clip.letters).is_file() else None
        self._tmp = np.empty(self.frames.shape[1], dtype=np.uint8)

    def draw(self, n: int, dst: Planes) -> None:
        import cv2

        from novelcomic.compose.draw import split_planes

        x = source_position(n + self.offset, self.visible, self.fps, self.clip)
        last = self.frames.shape[0] - 1
        lo = min(int(math.floor(x)), last)
        hi = min(lo + 1, last)
        frac = x - lo
        if frac < 1e-3 or hi == lo:
            src = self.frames[lo]
        else:
            cv2.addWeighted(self.frames[lo], 1.0 - frac, self.frames[hi], frac, 0.0, dst=self._tmp)
            src = self._tmp
        for d, s in zip(dst, split_planes(src, self.width, self.height)):
            d[...] = s
        if self.overlay is not None:
            self.overlay.blend(dst)
