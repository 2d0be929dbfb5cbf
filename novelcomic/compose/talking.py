"""The talking animatic: on an animatic still, characters blink, the speaker's mouth opens and
closes with the loudness of their line, and heads sway a little.

Drawn per frame by the composer over the still, from what the animatic recorded when it drew
the shot (``figures`` in the shot's asset record: head, eyes, mouth and skin colour of each
figure, in pixels of the still; see ``render/animatic.face_marks``). Nothing is re-drawn from
scratch: the composer keeps a working copy of the prepared still (yuv420p) and, per frame, only
touches a small window around each head —

- **sway**: the head and shoulders shift sideways by a fraction of a pixel to a pixel or two
  (a slow sine, its phase per character), through a ``cv2.remap`` whose displacement fades to
  zero at the window's edges, so nothing tears;
- **mouth**: while the figure's own line is loud, an open mouth (dark red, inked) is drawn over
  the closed one, its height one of :data:`LEVELS` steps of the line's loudness in that frame
  (RMS over the frame's time, relative to the line's loudest frame); silence shows the drawn mouth;
- **blink**: every 2.5–5 s (per character) the eyes close for :data:`BLINK_SECONDS`: lids in the
  skin colour with an ink lash line.

What a segment shows is a :class:`TalkPlan`: the per-frame mouth level, blink and sway of each
figure over the still's visible frames, quantised, so a segment's hash covers exactly what it
draws (an unchanged line re-encodes nothing).
"""

from __future__ import annotations

import functools
import math
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from novelcomic.compose.base import TalkSpec
from novelcomic.fsutil import hash_inputs

LEVELS = 3  # mouth openness steps above closed
BLINK_SECONDS = 0.12
SWAY_PERIOD = 3.6  # seconds
SWAY_STEP = 8  # sway is quantised to 1/SWAY_STEP of a still pixel
SILENT_RMS = 0.01  # below this (about -40 dBFS) a frame is silence whatever the line's peak
LIP = (96, 28, 38)
INK = (34, 30, 36)

Planes = tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True)
class TalkPlan:
    """Per visible frame and figure: mouth level (0 = as drawn), blink, sway (1/SWAY_STEP px)."""

    figures: tuple[dict, ...]
    mouth: np.ndarray  # (frames, figures) uint8
    blink: np.ndarray  # (frames, figures) bool
    sway: np.ndarray  # (frames, figures) int16

    def key(self) -> str:
        return hash_inputs([{k: f.get(k) for k in ("head", "eyes", "mouth", "skin", "box")} for f in self.figures],
                           self.mouth.tobytes().hex(), np.packbits(self.blink).tobytes().hex(), self.sway.tobytes().hex())


def _loudness(path: str, fps: int) -> np.ndarray:
    """RMS of ``path`` per video frame (window 1/fps, from the WAV's start); remembered until the file changes."""
    st = Path(path).stat()
    return _loudness_of(path, st.st_mtime_ns, st.st_size, fps)


@functools.lru_cache(maxsize=64)
def _loudness_of(path: str, _mtime: int, _size: int, fps: int) -> np.ndarray:
    from novelcomic.audio import read_wav

    samples, rate = read_wav(path)
    hop = rate / fps
    n = max(1, math.ceil(len(samples) / hop))
    out = np.zeros(n, dtype=np.float32)
    for i in range(n):
        a, b = int(i * hop), int((i + 1) * hop)
        seg = samples[a:b]
        out[i] = float(np.sqrt(np.mean(seg * seg))) if len(seg) else 0.0
    return out


def mouth_levels(rms: np.ndarray) -> np.ndarray:
    """Loudness per frame → mouth level 0..LEVELS (relative to the loudest frame of the line)."""
    peak = float(rms.max()) if len(rms) else 0.0
    if peak < SILENT_RMS:
        return np.zeros(len(rms), dtype=np.uint8)
    rel = rms / peak
    levels = np.ceil((rel - 0.2) / 0.8 * LEVELS).clip(0, LEVELS).astype(np.uint8)
    levels[rms < SILENT_RMS] = 0
    return levels


def plan_talk(spec: TalkSpec, first_frame: int, frames: int, fps: int) -> TalkPlan:
    """The plan of a still visible from absolute frame ``first_frame`` for ``frames`` frames."""
    figs = tuple(f for f in spec.figures if f.get("head"))
    n = len(figs)
    mouth = np.zeros((frames, n), dtype=np.uint8)
    blink = np.zeros((frames, n), dtype=bool)
    sway = np.zeros((frames, n), dtype=np.int16)
    t = (first_frame + np.arange(frames)) / fps
    for j, fig in enumerate(figs):
        seed = zlib.crc32(str(fig.get("id", j)).encode())
        if fig.get("mouth"):
            for start, duration, speaker, wav in spec.lines:
                if speaker != fig.get("id") or duration <= 0 or not Path(wav).is_file():
                    continue
                levels = mouth_levels(_loudness(str(wav), fps))
                k = np.floor((t - start) * fps + 1e-6).astype(np.int64)
                inside = (k >= 0) & (k < len(levels))
                mouth[inside, j] = np.maximum(mouth[inside, j], levels[k[inside]])
        if fig.get("eyes"):
            period = 2.5 + (seed % 1000) / 1000 * 2.5
            phase = ((seed >> 10) % 1000) / 1000 * period
            blink[:, j] = ((t + phase) % period) < BLINK_SECONDS
        head = fig["head"]
        amp = max(0.5, (head[3] - head[1]) * 0.015)  # a pixel or two on a close-up
        wobble = amp * np.sin(2 * np.pi * t / SWAY_PERIOD + ((seed >> 20) % 628) / 100)
        sway[:, j] = np.round(wobble * SWAY_STEP).astype(np.int16)
    return TalkPlan(figs, mouth, blink, sway)


def _window(n: int, edge: float = 0.3) -> np.ndarray:
    """1 in the middle, falling smoothly to 0 over ``edge`` of the length at both ends."""
    u = (np.arange(n, dtype=np.float32) + 0.5) / n
    a = np.clip(u / edge, 0, 1)
    b = np.clip((1 - u) / edge, 0, 1)
    return (a * a * (3 - 2 * a)) * (b * b * (3 - 2 * b))


class Talker:
    """Draws a :class:`TalkPlan` over the prepared still ``base`` (pw×ph planes) of a still of
    ``image_size``; :meth:`frame` returns the planes of visible frame ``i`` (a working copy)."""

    def __init__(self, plan: TalkPlan, base: Planes, image_size: tuple[int, int]) -> None:
        from novelcomic.compose.clips import rgb_to_yuv

        self.plan, self.base = plan, base
        ph, pw = base[0].shape
        iw, ih = image_size
        self.k = max(pw / iw, ph / ih)  # cover scale of the prepared still
        self.ox, self.oy = (iw * self.k - pw) / 2, (ih * self.k - ph) / 2
        self.work = tuple(p.copy() for p in base)
        self.lip, self.ink = rgb_to_yuv(LIP), rgb_to_yuv(INK)
        self.rois = [self._roi(f) for f in plan.figures]
        self.skins = [rgb_to_yuv(tuple(f.get("skin") or (230, 200, 170))) for f in plan.figures]  # type: ignore[arg-type]
        self._last: list[tuple] = [() for _ in plan.figures]

    def _p(self, x: float, y: float) -> tuple[float, float]:
        return x * self.k - self.ox, y * self.k - self.oy

    def _roi(self, fig: dict) -> tuple[int, int, int, int, np.ndarray, np.ndarray, np.ndarray]:
        """The window around a head (luma pixels, even-aligned) and its sway weights and grids."""
        l, t, r, b = fig["head"]
        hw, hh = r - l, b - t
        x0, y0 = self._p(l - hw * 0.45, t - hh * 0.45)
        x1, y1 = self._p(r + hw * 0.45, b + hh * 0.7)
        ph, pw = self.base[0].shape
        x0, y0 = max(0, int(x0) // 2 * 2), max(0, int(y0) // 2 * 2)
        x1, y1 = min(pw, math.ceil(x1 / 2) * 2), min(ph, math.ceil(y1 / 2) * 2)
        w, h = max(2, x1 - x0), max(2, y1 - y0)
        weight = np.outer(_window(h), _window(w)).astype(np.float32)
        gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
        return x0, y0, w, h, weight, gx, gy

    def frame(self, i: int) -> Planes:
        import cv2

        plan = self.plan
        i = min(max(i, 0), len(plan.mouth) - 1)
        for j, fig in enumerate(plan.figures):
            state = (int(plan.mouth[i, j]), bool(plan.blink[i, j]), int(plan.sway[i, j]))
            if state == self._last[j]:
                continue
            self._last[j] = state
            level, closed, sway = state
            x0, y0, w, h, weight, gx, gy = self.rois[j]
            d = sway / SWAY_STEP * self.k
            for p, (dst, src) in enumerate(zip(self.work, self.base)):
                sub = 1 if p == 0 else 2
                xs, ys, ws, hs = x0 // sub, y0 // sub, w // sub, h // sub
                out = dst[ys:ys + hs, xs:xs + ws]
                if d == 0:
                    out[...] = src[ys:ys + hs, xs:xs + ws]
                    continue
                if sub == 1:
                    mx, my, wt = gx, gy, weight
                else:
                    mx, my, wt = gx[::2, ::2][:hs, :ws] / 2, gy[::2, ::2][:hs, :ws] / 2, weight[::2, ::2][:hs, :ws]
                cv2.remap(src[ys:ys + hs, xs:xs + ws], mx - (d / sub) * wt, my, cv2.INTER_LINEAR,
                          dst=out, borderMode=cv2.BORDER_REPLICATE)
            shift = d * float(weight[min(h - 1, max(0, h // 2)), w // 2])  # the head moves about this much
            if level and fig.get("mouth"):
                mx_, my_, mw = fig["mouth"]
                cx, cy = self._p(mx_, my_)
                rx = mw * self.k * 0.75
                ry = mw * self.k * (0.25 + 0.3 * level)
                self._ellipse(cx + shift, cy + ry * 0.4, rx, ry, self.lip, self.ink)
            if closed:
                for ex, ey, erx, ery in fig.get("eyes", []):
                    cx, cy = self._p(ex, ey)
                    self._ellipse(cx + shift, cy, erx * self.k * 1.6, ery * self.k * 1.35, self.skins[j], None)
                    self._line(cx + shift - erx * self.k * 1.4, cx + shift + erx * self.k * 1.4, cy + ery * self.k * 0.3)
        return self.work  # type: ignore[return-value]

    def _ellipse(self, cx: float, cy: float, rx: float, ry: float, fill: tuple[int, int, int],
                 outline: tuple[int, int, int] | None) -> None:
        import cv2

        for p, plane in enumerate(self.work):
            sub = 1 if p == 0 else 2
            c = (round(cx / sub * 16), round(cy / sub * 16))
            axes = (max(1, round(rx / sub * 16)), max(1, round(ry / sub * 16)))
            cv2.ellipse(plane, c, axes, 0, 0, 360, int(fill[p]), -1, cv2.LINE_AA, 4)
            if outline is not None and p == 0:
                cv2.ellipse(plane, c, axes, 0, 0, 360, int(outline[0]), max(1, round(rx / 6)), cv2.LINE_AA, 4)

    def _line(self, x0: float, x1: float, y: float) -> None:
        import cv2

        for p, plane in enumerate(self.work):
            sub = 1 if p == 0 else 2
            cv2.line(plane, (round(x0 / sub * 16), round(y / sub * 16)), (round(x1 / sub * 16), round(y / sub * 16)),
                     int(self.ink[p]), max(1, round(2 / sub)), cv2.LINE_AA, 4)
