"""How to draw a slow push-in: ffmpeg's filters against novelcomic.compose.draw. Prints a markdown table.

    .venv/bin/python benchmarks/camera_moves.py                  # 1080x1920, 90 frames
    .venv/bin/python benchmarks/camera_moves.py --size 540x960

For each method, a still with sharp vertical bars is zoomed from 1.0 to 1.1 over ``--frames`` frames
(no encoding; frames go to ``-f null`` or are drawn into memory) and we report:

- milliseconds per frame (wall clock, the machine otherwise idle; for ffmpeg, the time of the same
  command without the move — starting ffmpeg, decoding and scaling the still — is subtracted;
  ffmpeg may use both cores, the composer's drawing uses one);
- jitter: the standard deviation, over frames and bars, of the frame-to-frame change of the
  error between each bar edge's measured position and where the zoom puts it — 0 for a perfectly
  smooth move; whole-pixel stepping shows up as tenths of a pixel and more.

Methods: ``zoompan`` (whole-pixel crop, then scale) on the still and on a 2× / 3× upscaled copy;
``perspective`` with per-frame expressions (sub-pixel, bilinear), what the composer used before;
and the composer's own drawing (``cv2.warpAffine`` of the prepared yuv420p planes).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

Z1 = 1.1


def bars_still(path: Path, w: int, h: int) -> list[int]:
    from PIL import Image

    img = np.full((h, w, 3), 230, np.uint8)
    xs = [int(w * f) for f in (0.09, 0.28, 0.5, 0.74, 0.92)]
    for x in xs:
        img[:, x:x + max(4, w // 27)] = 30
    Image.fromarray(img).save(path)
    return xs


def ideal(x: int, n: int, frames: int, w: int) -> float:
    z = 1 + (Z1 - 1) * n / (frames - 1)
    left = 0.5 - 0.5 / z
    return (x / w - left) * z * w - 0.5


def jitter(lumas: np.ndarray, xs: list[int], frames: int, w: int, h: int) -> float:
    steps = []
    for x in xs:
        err = []
        for n in range(frames):
            row = lumas[n, h // 2].astype(float)
            want = ideal(x, n, frames, w)
            found = [i - 1 + (row[i - 1] - 130) / (row[i - 1] - row[i])
                     for i in range(1, w) if row[i - 1] >= 130 > row[i]]
            near = [f for f in found if abs(f - want) < 4]
            err.append(near[0] - want if near and 2 < want < w - 2 else np.nan)
        err = np.array(err)
        if not np.isnan(err).any():
            steps.append(np.diff(err))
    return float(np.concatenate(steps).std()) if steps else float("nan")


def ffmpeg_method(still: Path, prefix: str, move: str, frames: int, w: int, h: int) -> tuple[float, np.ndarray]:
    """ms per frame of ``move`` (the time of ``prefix`` alone — starting ffmpeg, decoding and
    scaling the still once — subtracted) and the frames it draws."""
    from novelcomic.ffmpeg import ffmpeg_exe

    def cmd(graph: str) -> list[str]:
        return [ffmpeg_exe(), "-v", "error", "-framerate", "30", "-i", str(still), "-filter_complex", graph,
                "-map", "[out]", "-frames:v", str(frames)]

    def timed(graph: str) -> float:
        best = float("inf")
        for _ in range(2):
            t0 = time.perf_counter()
            subprocess.run([*cmd(graph), "-f", "null", "-"], check=True)
            best = min(best, time.perf_counter() - t0)
        return best

    ms = (timed(f"{prefix},{move}[out]") - timed(f"{prefix}[out]")) * 1000 / frames
    base = cmd(f"{prefix},{move}[out]")
    raw = subprocess.run([*base, "-f", "rawvideo", "-pix_fmt", "gray", "-"], capture_output=True, check=True).stdout
    return ms, np.frombuffer(raw, np.uint8).reshape(frames, h, w)


def draw_method(still: Path, frames: int, w: int, h: int, work: Path) -> tuple[float, np.ndarray, object]:
    from novelcomic.compose.draw import PlaneCache, ViewDrawer, split_planes
    from novelcomic.compose.ffmpeg_composer import StillView

    view = StillView(still, "bars", "push_in", 30, frames, 0)
    drawer = ViewDrawer(view, w, h, PlaneCache(), work)
    drawer.prepared()  # preparing the still (once per still) is not per-frame work
    buf = np.empty(w * h * 3 // 2, np.uint8)
    dst = split_planes(buf, w, h)
    lumas = np.empty((frames, h, w), np.uint8)
    # the composer's push-in zooms to its own amount: measure its frames against their own window
    t0 = time.perf_counter()
    for n in range(frames):
        drawer.draw(n, dst)
    ms = (time.perf_counter() - t0) * 1000 / frames
    for n in range(frames):
        drawer.draw(n, dst)
        lumas[n] = dst[0]
    return ms, lumas, view


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", default="1080x1920")
    p.add_argument("--frames", type=int, default=90)
    args = p.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))
    n = args.frames
    work = Path(tempfile.mkdtemp(prefix="nc-moves-"))
    still = work / "bars.png"
    xs = bars_still(still, w, h)
    loop = f"format=yuv420p,loop=loop={n - 1}:size=1:start=0,setpts=N"
    rows = []
    for s in (1, 2, 3):
        prefix = f"[0:v]scale={w * s}:{h * s}:flags=lanczos,{loop}"
        move = f"zoompan=z='1+{Z1 - 1}*in/{n - 1}':x='(iw-iw/zoom)/2':y='(ih-ih/zoom)/2':d=1:s={w}x{h}:fps=30"
        ms, lum = ffmpeg_method(still, prefix, move, n, w, h)
        rows.append((f"ffmpeg zoompan on the still{'' if s == 1 else f' upscaled {s}×'}", ms, jitter(lum, xs, n, w, h)))
    p_ = f"clip((in-1)/{n - 1}\\,0\\,1)"
    m = (1 - 1 / Z1) / 2
    move = (f"perspective=x0=W*{m}*{p_}:y0=H*{m}*{p_}:x1=W*(1-{m}*{p_}):y1=H*{m}*{p_}"
            f":x2=W*{m}*{p_}:y2=H*(1-{m}*{p_}):x3=W*(1-{m}*{p_}):y3=H*(1-{m}*{p_}):interpolation=linear:eval=frame")
    ms, lum = ffmpeg_method(still, f"[0:v]scale={w}:{h},{loop}", move, n, w, h)
    rows.append(("ffmpeg perspective, per-frame expressions (the composer before)", ms, jitter(lum, xs, n, w, h)))

    ms, lum, view = draw_method(still, n, w, h, work)
    # measure against the composer's own window (its push-in amount differs from Z1)
    err_steps = []
    for x in xs:
        err = []
        for k in range(n):
            left, _, right, _ = view.box_at(k)
            want = (x / w - left) / (right - left) * w - 0.5
            row = lum[k, h // 2].astype(float)
            found = [i - 1 + (row[i - 1] - 130) / (row[i - 1] - row[i]) for i in range(1, w) if row[i - 1] >= 130 > row[i]]
            near = [f for f in found if abs(f - want) < 4]
            err.append(near[0] - want if near and 2 < want < w - 2 else np.nan)
        err = np.array(err)
        if not np.isnan(err).any():
            err_steps.append(np.diff(err))
    rows.append(("novelcomic.compose.draw (cv2.warpAffine, yuv420p planes)", ms, float(np.concatenate(err_steps).std())))

    import os

    print(f"\n### drawing a slow push-in — {w}x{h}, {n} frames, {os.cpu_count()} CPUs\n")
    print("| method | ms per frame | jitter (px) |")
    print("|---|---:|---:|")
    for name, ms, jit in rows:
        print(f"| {name} | {ms:.1f} | {jit:.3f} |")


if __name__ == "__main__":
    main()
