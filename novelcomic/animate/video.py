"""Clips on disk: frames → MP4 at the model's native fps, an image sequence → MP4, a clip's facts,
and the lettering layer (the still's bubbles and captions as a transparent PNG) laid over clips.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from novelcomic.errors import BackendError, NovelcomicError
from novelcomic.ffmpeg import FFmpegWriter, mp4_video_frames, probe, run_ffmpeg, stream_of
from novelcomic.fsutil import atomic_path

CLIP_CRF = 14  # clips are intermediate: nearly lossless, the composer re-encodes them


def _rgb(frame: Any) -> np.ndarray:
    """A frame (PIL image, HxWx3 uint8 array or float array in 0..1) as HxWx3 uint8 RGB."""
    if hasattr(frame, "convert"):
        frame = np.asarray(frame.convert("RGB"))
    arr = np.asarray(frame)
    if arr.dtype != np.uint8:
        arr = (np.clip(arr.astype(np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise NovelcomicError(f"a clip frame must be H×W×3, got shape {arr.shape}")
    return np.ascontiguousarray(arr[..., :3])


def write_clip(frames: Iterable[Any], fps: float, out: Path) -> tuple[int, int, int]:
    """Encode ``frames`` (all the same size) as an H.264 MP4 at ``fps``, atomically; returns
    (frames, width, height). Odd sizes are padded by one pixel."""
    it = iter(frames)
    try:
        first = _rgb(next(it))
    except StopIteration:
        raise BackendError(f"no frames to write into {out.name}") from None
    h, w = first.shape[:2]
    n = 0
    with atomic_path(out) as tmp:
        args = ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-framerate", f"{fps:g}", "-i", "pipe:",
                "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", "-c:v", "libx264", "-preset", "veryfast", "-crf", str(CLIP_CRF),
                "-pix_fmt", "yuv420p", "-an", "-f", "mp4", str(tmp)]
        with FFmpegWriter(args, f"writing the clip {out.name}") as enc:
            for frame in (first, *()):
                enc.write(frame.tobytes())
                n += 1
            for frame in it:
                arr = _rgb(frame)
                if arr.shape[:2] != (h, w):
                    raise BackendError(f"clip frame {n} is {arr.shape[1]}x{arr.shape[0]}, the first was {w}x{h}")
                enc.write(arr.tobytes())
                n += 1
    return n, w + w % 2, h + h % 2


def sequence_to_clip(images: Sequence[Path], fps: float, out: Path) -> tuple[int, int, int]:
    """An image sequence (a ComfyUI SaveImage output) → MP4 at ``fps``."""
    from PIL import Image

    def frames() -> Iterable[np.ndarray]:
        for p in images:
            with Image.open(p) as im:
                yield _rgb(im)

    return write_clip(frames(), fps, out)


def reencode_clip(src: Path, out: Path, fps: float | None = None) -> tuple[int, int, int]:
    """A video file a server wrote (webm, gif, mp4 of any codec) → our MP4 (H.264, yuv420p)."""
    with atomic_path(out) as tmp:
        rate = ["-r", f"{fps:g}"] if fps else []
        run_ffmpeg(["-i", str(src), *rate, "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", "-c:v", "libx264", "-preset", "veryfast",
                    "-crf", str(CLIP_CRF), "-pix_fmt", "yuv420p", "-an", "-f", "mp4", str(tmp)], f"re-encoding {src.name}")
    info = clip_info(out)
    return info["frames"], info["width"], info["height"]


def clip_info(path: Path) -> dict[str, Any]:
    """{frames, fps, width, height} of a clip MP4 (frames from its ``stsz`` box)."""
    frames = mp4_video_frames(path)
    st = stream_of(probe(path), "video")
    if not frames or st is None:
        raise BackendError(f"{path} is not a video clip")
    num, _, den = str(st.get("avg_frame_rate") or st.get("r_frame_rate") or "0/1").partition("/")
    fps = float(num) / float(den or 1) if float(den or 1) else 0.0
    return {"frames": int(frames), "fps": fps, "width": int(st.get("width", 0)), "height": int(st.get("height", 0))}


def lettering_layer(lettered: Path, plain: Path, out: Path, threshold: int = 10) -> bool:
    """The still's lettering as a transparent RGBA PNG: the pixels of ``lettered`` that differ from
    ``plain`` (the same still before lettering), grown by a pixel for anti-aliased edges. Written
    atomically; returns whether anything was lettered (an empty layer is not written)."""
    import cv2
    from PIL import Image

    with Image.open(lettered) as a, Image.open(plain) as b:
        la, pb = np.asarray(a.convert("RGB")), np.asarray(b.convert("RGB").resize(a.size))
    diff = np.abs(la.astype(np.int16) - pb.astype(np.int16)).max(axis=2) > threshold
    if not diff.any():
        return False
    mask = cv2.dilate(diff.astype(np.uint8) * 255, np.ones((3, 3), np.uint8))
    rgba = np.dstack([la, mask])
    with atomic_path(out) as tmp:
        Image.fromarray(rgba).save(tmp, format="PNG")
    return True
