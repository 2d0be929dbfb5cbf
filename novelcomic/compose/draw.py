"""Drawing a segment's frames: each still with its camera move, as raw yuv420p for ffmpeg to encode.

ffmpeg has no cheap sub-pixel zoom: ``zoompan`` crops at whole pixels (~0.95 px of frame-to-frame
jitter at 1080×1920, still ~0.3 px from a 3× upscaled source) and ``perspective`` with per-frame
expressions recomputes a per-pixel table every frame (~12.5 ms a 1080×1920 frame on two cores);
see ``benchmarks/camera_moves.py`` and docs/benchmarks.md. So frames are drawn here and piped into ffmpeg, which
blends transitions, burns in subtitles and encodes (see :mod:`novelcomic.compose.ffmpeg_composer`):

- a still is *prepared* once: decoded, cover-scaled with Lanczos to the frame size times the
  largest zoom its move reaches, and converted to BT.709 limited-range yuv420p — by ffmpeg's own
  scaler, so colours are the same as in any other ffmpeg output. Prepared planes (and the pan
  phases below) are kept in a small :class:`PlaneCache` shared by the segments of one compose;
- a **push-in / pull-out** is one ``cv2.warpAffine`` per plane (bilinear, 1/32 px positions):
  ~4 ms a 1080×1920 frame on one core, and exact — no stepping;
- a **pan / tilt** (constant zoom) is an integer crop of one of ``PAN_PHASES`` copies of the
  prepared still, each shifted by a fraction of 2 px with bicubic sampling (made once, on first
  use): per frame a copy, no resampling, and every frame equally sharp;
- a still without a move is the prepared still itself.

Frame ``n`` of a view is the window :meth:`StillView.box_at` gives, so a move continues exactly
across the segments a still appears in. A transition's two sides are stacked in one frame
(``a`` above ``b``) and split again by ffmpeg.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from novelcomic.errors import BackendError
from novelcomic.ffmpeg import run_ffmpeg

if TYPE_CHECKING:
    from novelcomic.compose.ffmpeg_composer import Segment, StillView

PAN_PHASES = 8  # sub-pixel phases of a pan: window positions are exact to 2 / PAN_PHASES px
CACHE_BYTES = 128 * 2**20  # prepared stills and pan phases kept per compose (enough for the neighbours in flight)

Planes = tuple[np.ndarray, np.ndarray, np.ndarray]  # Y, U, V


def _cv2():  # type: ignore[no-untyped-def]
    try:
        import cv2
    except ImportError as exc:  # pragma: no cover - a dependency
        raise BackendError("the ffmpeg composer needs OpenCV to draw camera moves: pip install opencv-python-headless") from exc
    return cv2


class PlaneCache:
    """A thread-safe, size-bounded LRU of yuv420p planes, keyed by what made them."""

    def __init__(self, max_bytes: int = CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple, Planes] = OrderedDict()
        self._lock = threading.Lock()
        self._key_locks: dict[tuple, threading.Lock] = {}

    def get(self, key: tuple, make: Callable[[], Planes]) -> Planes:
        """The planes under ``key``, made by ``make()`` once when missing (other threads wait)."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                if key in self._items:
                    return self._items[key]
            planes = make()
            with self._lock:
                self._items[key] = planes
                self._key_locks.pop(key, None)
                while len(self._items) > 1 and self.nbytes > self.max_bytes:
                    self._items.popitem(last=False)
            return planes

    @property
    def nbytes(self) -> int:
        return sum(p.nbytes for planes in self._items.values() for p in planes)


def prepare_still(image: Path, width: int, height: int, scratch: Path) -> Planes:
    """``image`` cover-scaled (Lanczos) and centre-cropped to ``width``×``height``, as BT.709
    limited-range yuv420p planes (read-only arrays)."""
    out = scratch / f"prepared-{threading.get_ident()}-{width}x{height}.yuv"
    vf = (f"scale={width}:{height}:force_original_aspect_ratio=increase:flags=lanczos"
          f":out_color_matrix=bt709:out_range=tv,format=yuv420p,crop={width}:{height}")
    run_ffmpeg(["-i", str(image), "-vf", vf, "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "yuv420p", str(out)],
               f"preparing {image.name}")
    try:
        data = np.fromfile(out, dtype=np.uint8)
    finally:
        out.unlink(missing_ok=True)
    if data.size != width * height * 3 // 2:
        raise BackendError(f"preparing {image.name}: got {data.size} bytes of pixels instead of {width * height * 3 // 2}")
    return split_planes(data, width, height)


def split_planes(data: np.ndarray, width: int, height: int) -> Planes:
    """Views of the Y, U and V planes of a yuv420p buffer of ``width``×``height``."""
    luma = width * height
    y = data[:luma].reshape(height, width)
    u = data[luma:luma * 5 // 4].reshape(height // 2, width // 2)
    v = data[luma * 5 // 4:luma * 3 // 2].reshape(height // 2, width // 2)
    return y, u, v


class ViewDrawer:
    """Draws the frames of one :class:`StillView` at ``width``×``height``."""

    def __init__(self, view: StillView, width: int, height: int, cache: PlaneCache, scratch: Path) -> None:
        self.view, self.width, self.height = view, width, height
        self.cache, self.scratch = cache, scratch
        start, end = view.views()
        scale = max(start.zoom, end.zoom)
        # the prepared still: the frame at the largest zoom, so no frame is upsampled
        self.pw, self.ph = 2 * math.ceil(width * scale / 2), 2 * math.ceil(height * scale / 2)
        self.clip = self.talker = None
        if view.video is not None:  # an animate-stage clip plays instead of the still (compose/clips.py)
            from novelcomic.compose.clips import ClipDrawer

            self.mode = "clip"
            self.clip = ClipDrawer(view.video, view.visible_frames, view.offset, view.fps, width, height, scratch)
        elif start == end and start.zoom == 1.0:
            self.mode = "still"
        elif start.zoom == end.zoom:
            self.mode = "pan"
            (l0, t0, _, _), (l1, t1, _, _) = view.edges()
            self.horizontal = abs(l1 - l0) * self.pw >= abs(t1 - t0) * self.ph
            fixed = t0 * self.ph if self.horizontal else l0 * self.pw
            self.fixed = 2 * round(fixed / 2)
        else:
            self.mode = "zoom"
        if view.talk is not None and self.mode == "pan":
            self.mode = "zoom"  # the talking still changes every frame: no pre-shifted pan copies

    def prepared(self) -> Planes:
        v = self.view
        return self.cache.get(("still", v.image_hash, self.pw, self.ph),
                              lambda: prepare_still(v.image, self.pw, self.ph, self.scratch))

    def _phase(self, k: int) -> Planes:
        """The prepared still shifted by ``k`` · 2/PAN_PHASES px along the pan's axis (bicubic)."""
        if k == 0:
            return self.prepared()

        def make() -> Planes:
            cv2 = _cv2()
            shift = k * 2.0 / PAN_PHASES
            out = []
            for i, plane in enumerate(self.prepared()):
                s = shift if i == 0 else shift / 2
                m = np.array([[1, 0, s], [0, 1, 0]] if self.horizontal else [[1, 0, 0], [0, 1, s]], dtype=np.float64)
                h, w = plane.shape
                out.append(cv2.warpAffine(plane, m, (w, h), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                                          borderMode=cv2.BORDER_REPLICATE))
            return out[0], out[1], out[2]

        return self.cache.get(("phase", self.view.image_hash, self.pw, self.ph, self.horizontal, k), make)

    def source(self, n: int) -> Planes:
        """The still to draw frame ``n`` from: the prepared one, or the talking animatic's frame over it."""
        if self.view.talk is None:
            return self.prepared()
        if self.talker is None:
            from novelcomic.compose.talking import Talker

            with Image.open(self.view.image) as im:
                size = im.size
            self.talker = Talker(self.view.talk, self.prepared(), size)
        return self.talker.frame(n + self.view.offset)

    def draw(self, n: int, dst: Planes) -> None:
        """Write frame ``n`` (counted from the segment's first frame) into ``dst``."""
        if self.clip is not None:
            self.clip.draw(n, dst)
        elif self.mode == "still":
            for d, s in zip(dst, self.source(n)):
                d[...] = s
        elif self.mode == "pan":
            self._draw_pan(n, dst)
        else:
            self._draw_zoom(n, dst)

    def _draw_pan(self, n: int, dst: Planes) -> None:
        left, top, _, _ = self.view.box_at(n)
        size, pos = (self.pw, left * self.pw) if self.horizontal else (self.ph, top * self.ph)
        limit = size - (self.width if self.horizontal else self.height)
        step = 2.0 / PAN_PHASES
        idx = math.floor(min(max(pos, 0.0), limit) / step + 0.5)
        base, phase = 2 * (idx // PAN_PHASES), idx % PAN_PHASES
        x, y = (base, self.fixed) if self.horizontal else (self.fixed, base)
        for i, (d, s) in enumerate(zip(dst, self._phase(phase))):
            sub = 1 if i == 0 else 2
            h, w = d.shape
            d[...] = s[y // sub:y // sub + h, x // sub:x // sub + w]

    def _draw_zoom(self, n: int, dst: Planes) -> None:
        cv2 = _cv2()
        left, top, right, bottom = self.view.box_at(n)
        sx, sy = (right - left) * self.pw / self.width, (bottom - top) * self.ph / self.height
        for i, (d, s) in enumerate(zip(dst, self.source(n))):
            sub = 1 if i == 0 else 2
            # inverse map, pixel centres: src = origin + (dst + 0.5) * scale - 0.5
            m = np.array([[sx, 0.0, left * self.pw / sub + 0.5 * sx - 0.5],
                          [0.0, sy, top * self.ph / sub + 0.5 * sy - 0.5]])
            h, w = d.shape
            cv2.warpAffine(s, m, (w, h), dst=d, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                           borderMode=cv2.BORDER_REPLICATE)


# --------------------------------------------------------------------------- transitions drawn here

TV_BLACK = (16, 128, 128)  # BT.709 limited range, per plane
TV_WHITE = (235, 128, 128)


def _smoothstep(edge0: float, edge1: float, x: float) -> float:
    t = min(1.0, max(0.0, (x - edge0) / (edge1 - edge0)))
    return t * t * (3.0 - 2.0 * t)


def _fade(a: np.ndarray, b: np.ndarray, out: np.ndarray, p: float, plane: int) -> None:
    _cv2().addWeighted(a, p, b, 1.0 - p, 0.0, dst=out)


def _dip(colour: tuple[int, int, int]) -> Callable[[np.ndarray, np.ndarray, np.ndarray, float, int], None]:
    """xfade's fadeblack/fadewhite: ``a`` dips to ``colour`` and ``b`` rises out of it."""

    def blend(a: np.ndarray, b: np.ndarray, out: np.ndarray, p: float, plane: int) -> None:
        s1, s2 = _smoothstep(0.8, 1.0, p), _smoothstep(0.2, 1.0, p)
        wa, wb = s1 * p, (1.0 - s2) * (1.0 - p)
        _cv2().addWeighted(a, wa, b, wb, colour[plane] * (1.0 - wa - wb), dst=out)

    return blend


def _edge(luma: int, plane: int) -> int:
    """A position in luma pixels, in ``plane``'s pixels."""
    return luma if plane == 0 else luma // 2


def _wipe(axis: int, reverse: bool) -> Callable[[np.ndarray, np.ndarray, np.ndarray, float, int], None]:
    """A hard edge sweeping across (xfade's wipes): ``a`` before it, ``b`` after it (``reverse``: the other way round)."""

    def blend(a: np.ndarray, b: np.ndarray, out: np.ndarray, p: float, plane: int) -> None:
        first, second = (b, a) if reverse else (a, b)
        size = out.shape[axis] * (1 if plane == 0 else 2)
        z = _edge(int(size * (1.0 - p if reverse else p)) + 1, plane)
        if axis == 1:
            out[:, :z], out[:, z:] = first[:, :z], second[:, z:]
        else:
            out[:z], out[z:] = first[:z], second[z:]

    return blend


def _slide(axis: int, forward: bool) -> Callable[[np.ndarray, np.ndarray, np.ndarray, float, int], None]:
    """``b`` pushes ``a`` out (xfade's slides): towards the start of ``axis`` (left/up), or the end (``forward``)."""

    def blend(a: np.ndarray, b: np.ndarray, out: np.ndarray, p: float, plane: int) -> None:
        n = out.shape[axis]
        s = _edge(int(n * (1 if plane == 0 else 2) * p), plane)
        if axis == 1:
            if forward:  # slideright: b's right part on the left, a's left part on the right
                out[:, : n - s], out[:, n - s :] = b[:, s:], a[:, :s]
            else:
                out[:, :s], out[:, s:] = a[:, n - s :], b[:, : n - s]
        elif forward:
            out[: n - s], out[n - s :] = b[s:], a[:s]
        else:
            out[:s], out[s:] = a[n - s :], b[: n - s]

    return blend


# The storyboard transitions blended here, in the frames' own yuv420p: ffmpeg's xfade works in
# 4:4:4 only, so ffmpeg would convert each frame there and back (~20 ms a 1080×1920 frame, with the
# chroma resampled twice). The geometry and timing are xfade's (tests compare them); chroma edges
# sit at half the luma position; the dips go to limited-range black/white (xfade uses code 0,
# below black). Other transitions are blended by xfade.
BLENDS: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray, float, int], None]] = {
    "fade": _fade,
    "fadeblack": _dip(TV_BLACK),
    "fadewhite": _dip(TV_WHITE),
    "wipeleft": _wipe(1, False), "wiperight": _wipe(1, True), "wipeup": _wipe(0, False), "wipedown": _wipe(0, True),
    "slideleft": _slide(1, False), "slideright": _slide(1, True), "slideup": _slide(0, False), "slidedown": _slide(0, True),
}


def blends_here(seg: Segment) -> bool:
    """Whether ``seg``'s frames are finished here (a body, or a transition in :data:`BLENDS`)."""
    return seg.b is None or seg.transition in BLENDS


def segment_frame_count(seg: Segment) -> int:
    """Frames piped for ``seg``: a transition blended by xfade gets a spare one so neither side ends inside the blend."""
    return seg.frames if blends_here(seg) else seg.frames + 1


def segment_frames(seg: Segment, width: int, height: int, cache: PlaneCache, scratch: Path) -> Iterator[memoryview]:
    """The raw yuv420p frames of ``seg``: ``width``×``height``; for a transition not in
    :data:`BLENDS`, both sides stacked (``width``×2·``height``) for xfade. One buffer is reused:
    consume each frame before the next."""
    views = [seg.a] if seg.b is None else [seg.a, seg.b]
    drawers = [ViewDrawer(v, width, height, cache, scratch) for v in views]
    if seg.b is not None and seg.transition in BLENDS:
        blend = BLENDS[seg.transition]
        bufs = [np.empty(width * height * 3 // 2, dtype=np.uint8) for _ in range(3)]
        a, b, out = (split_planes(buf, width, height) for buf in bufs)
        for n in range(seg.frames):
            p = 1.0 - n / seg.frames  # xfade's progress: 1 = all a, falling towards b
            drawers[0].draw(n, a)
            drawers[1].draw(n, b)
            for plane, (pa, pb, po) in enumerate(zip(a, b, out)):
                blend(pa, pb, po, p, plane)
            yield memoryview(bufs[2])
        return
    rows = len(drawers)
    buf = np.empty(width * height * 3 // 2 * rows, dtype=np.uint8)
    y, u, v = split_planes(buf, width, height * rows)
    sides = [(y[r * height:(r + 1) * height], u[r * height // 2:(r + 1) * height // 2],
              v[r * height // 2:(r + 1) * height // 2]) for r in range(rows)]
    for n in range(segment_frame_count(seg)):
        for drawer, dst in zip(drawers, sides):
            drawer.draw(n, dst)
        yield memoryview(buf)


__all__ = ["BLENDS", "PAN_PHASES", "blends_here", "PlaneCache", "ViewDrawer", "prepare_still", "segment_frames", "segment_frame_count", "split_planes"]
