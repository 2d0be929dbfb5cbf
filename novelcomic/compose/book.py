"""The whole book as one MP4: the chapter videos back to back, with a chapter marker per chapter.

Chapters made by the same composer settings share their codec parameters, so they are joined by
the concat demuxer without re-encoding (seconds for hours of video). A chapter whose video or audio
parameters differ (another size, frame rate or codec) is first converted to the first chapter's
parameters — scaled to fit and padded, never stretched — so mixing 9:16 and 16:9 still works.
Chapter titles and start times go in through an FFMETADATA file; soft subtitle tracks are dropped.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from novelcomic.errors import BackendError, NovelcomicError
from novelcomic.ffmpeg import media_duration, probe, run_ffmpeg, stream_of
from novelcomic.fsutil import atomic_path


@dataclass(frozen=True)
class StreamParams:
    """What must match for two MP4s to be joined with ``-c copy``."""

    vcodec: str
    width: int
    height: int
    pix_fmt: str
    fps: str
    time_base: str
    acodec: str
    sample_rate: str
    channels: int


@dataclass
class BookResult:
    video: Path
    chapters: list[tuple[str, float, float]]  # (title, start, end) seconds
    reencoded: list[Path]  # chapters that had to be converted first


def stream_params(path: Path) -> StreamParams:
    """The joinable parameters of ``path`` (it must have one video and one audio stream)."""
    info = probe(path)
    v, a = stream_of(info, "video"), stream_of(info, "audio")
    if v is None or a is None:
        raise NovelcomicError(f"{path} needs a video and an audio stream to be joined into a book")
    return StreamParams(
        v.get("codec_name", ""), int(v.get("width", 0)), int(v.get("height", 0)), v.get("pix_fmt", ""),
        v.get("r_frame_rate", ""), v.get("time_base", ""), a.get("codec_name", ""), str(a.get("sample_rate", "")),
        int(a.get("channels", 0) or 0),
    )


def ffmetadata(chapters: Sequence[tuple[str, float, float]]) -> str:
    """An FFMETADATA1 document with one ``[CHAPTER]`` per (title, start, end), in milliseconds."""

    def esc(text: str) -> str:
        return "".join("\\" + c if c in "=;#\\\n" else c for c in text)

    out = [";FFMETADATA1"]
    for title, start, end in chapters:
        out += ["[CHAPTER]", "TIMEBASE=1/1000", f"START={round(start * 1000)}", f"END={round(end * 1000)}", f"title={esc(title)}"]
    return "\n".join(out) + "\n"


def join_chapters(
    videos: Sequence[str | Path], titles: Sequence[str], out_path: str | Path, *, title: str = ""
) -> BookResult:
    """Join chapter ``videos`` (in order) into ``out_path`` with one chapter marker each, named by ``titles``.

    No re-encode when all chapters share their parameters; otherwise the odd ones are converted to
    the first chapter's (see the module docstring). The output is written atomically, ``+faststart``.
    """
    paths = [Path(v) for v in videos]
    if not paths:
        raise NovelcomicError("no chapter videos to join")
    if len(titles) != len(paths):
        raise NovelcomicError(f"{len(paths)} chapter videos but {len(titles)} titles")
    for p in paths:
        if not p.is_file():
            raise NovelcomicError(f"chapter video {p} does not exist")
    out = Path(out_path)
    target = stream_params(paths[0])
    with tempfile.TemporaryDirectory(prefix=".book-", dir=out.parent if out.parent.exists() else None) as tmp:
        scratch = Path(tmp)
        parts: list[Path] = []
        reencoded: list[Path] = []
        for i, p in enumerate(paths):
            if stream_params(p) == target:
                parts.append(p)
            else:
                converted = scratch / f"part-{i:04d}.mp4"
                _convert(p, converted, target)
                parts.append(converted)
                reencoded.append(p)
        chapters, t = [], 0.0
        for name, part in zip(titles, parts):
            d = media_duration(part)
            chapters.append((name, t, t + d))
            t += d
        listing = scratch / "list.ffconcat"
        listing.write_text("ffconcat version 1.0\n" + "".join(f"file '{_quote(p.resolve())}'\n" for p in parts), encoding="utf-8")
        meta = scratch / "chapters.txt"
        meta.write_text(ffmetadata(chapters), encoding="utf-8")
        with atomic_path(out) as dst:
            args = ["-f", "concat", "-safe", "0", "-i", str(listing), "-f", "ffmetadata", "-i", str(meta),
                    "-map", "0:v:0", "-map", "0:a:0", "-map_metadata", "1", "-map_chapters", "1"]
            if title:
                args += ["-metadata", f"title={title}"]
            run_ffmpeg([*args, "-c", "copy", "-movflags", "+faststart", "-f", "mp4", str(dst)], "joining the chapters into a book")
    return BookResult(out, chapters, reencoded)


def _quote(path: Path) -> str:
    return str(path).replace("'", "'\\''")


def _convert(src: Path, dst: Path, t: StreamParams) -> None:
    """Re-encode ``src`` to the parameters ``t`` (fit inside the frame, pad the rest black)."""
    if t.vcodec != "h264" or t.acodec != "aac":
        raise BackendError(f"cannot convert {src} to {t.vcodec}/{t.acodec}: only H.264/AAC books are made")
    timescale = t.time_base.split("/")[1] if "/" in t.time_base else "15360"
    vf = (
        f"scale={t.width}:{t.height}:force_original_aspect_ratio=decrease,"
        f"pad={t.width}:{t.height}:(ow-iw)/2:(oh-ih)/2,setsar=1,fps={t.fps},format={t.pix_fmt}"
    )
    run_ffmpeg(
        ["-i", str(src), "-map", "0:v:0", "-map", "0:a:0", "-vf", vf, "-c:v", "libx264", "-preset", "veryfast", "-crf", "20",
         "-profile:v", "high", "-video_track_timescale", timescale,
         "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709", "-color_range", "tv",
         "-c:a", "aac", "-b:a", "192k", "-ar", t.sample_rate, "-ac", str(t.channels), "-f", "mp4", str(dst)],
        f"converting {src.name} to the book's video parameters",
    )


__all__ = ["join_chapters", "BookResult", "stream_params", "ffmetadata"]
