"""What x264 itself spends on the composer's frames, against a still: why the compose benchmark's
target (b) (≤ 1.25× the time to encode a still) is below the encoder's own cost.

Draws the first ``--shots`` shots of the synthetic chapter of ``benchmarks/compose.py`` once (the
composer's own drawing code: pushes, pulls, pans, blended transitions) into a raw file in memory,
then encodes it with the composer's exact encoder arguments (one thread, as each batch encoder
runs) several ways, reporting the encoder's CPU seconds and ms per frame:

- the drawn frames with the batch's subtitles burned in (what the composer does);
- the same without subtitles (libass's share);
- the first frame repeated as many times (a still: the floor's content);
- the drawn frames with ``subme=1`` (what the cheaper ``superfast`` preset does; not the default).

    python benchmarks/encoder_cost.py [--shots 8] [--size 1080x1920]

Linux (``/dev/shm``); run it with nothing else on the machine.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    import compose as bench  # benchmarks/compose.py: the synthetic chapter

    from novelcomic.compose.draw import PlaneCache, segment_frames
    from novelcomic.compose.ffmpeg_composer import FFmpegComposer, encoder_args, plan_segments, shift_cues
    from novelcomic.compose.subtitles import ass_document, default_font_size
    from novelcomic.ffmpeg import ffmpeg_exe
    from novelcomic.fonts import find_cjk_font

    args = bench.chapter_parser(__doc__, shots=8).parse_args()
    w, h = args.size
    work = Path(tempfile.mkdtemp(prefix="encoder-cost-"))
    tl = bench.timeline_for(work, args.shots, w, h, args.fps)
    segs = [s for s in plan_segments(tl, {c.image: c.image.name for c in tl.clips}) if not s.effect]
    segs = [s for s in segs if s.b is None or s.transition in ("fade", "fadeblack", "wipeleft", "slideright")]
    frames = [s.frames for s in segs]
    font = find_cjk_font()
    cues, at = [], 0
    for s in segs:
        cues += shift_cues(s.cues, at / tl.fps)
        at += s.frames
    (work / "cues.ass").write_text(
        ass_document(cues, w, h, font.family, default_font_size(w, h), "zh", False), encoding="utf-8")

    shm = Path("/dev/shm") if Path("/dev/shm").is_dir() else work
    drawn, still = shm / f"nc-drawn-{os.getpid()}.yuv", shm / f"nc-still-{os.getpid()}.yuv"
    try:
        cache = PlaneCache()
        with open(drawn, "wb") as fh:
            for s in segs:
                for frame in segment_frames(s, w, h, cache, work):
                    fh.write(frame)
        n = sum(frames)
        with open(drawn, "rb") as src:
            first = src.read(w * h * 3 // 2)
        with open(still, "wb") as fh:
            for _ in range(n):
                fh.write(first)

        video = [*FFmpegComposer(preset=args.preset)._video_args(args.fps), "-threads", "1"]

        def encode(raw: Path, ass: str | None, extra: list[str]) -> float:
            cmd = encoder_args(w, h, args.fps, frames, ass, font.path.parent, "part%05d.mp4", "parts.csv", [*video, *extra])
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            with open(raw, "rb") as stdin:
                subprocess.run([ffmpeg_exe(), "-v", "error", "-y", *cmd], cwd=work, stdin=stdin, check=True)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            return after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime

        rows = [
            ("the drawn frames, subtitles burned in (the composer)", drawn, "cues.ass", []),
            ("the same, no subtitles", drawn, None, []),
            (f"the first frame repeated {n} times (a still)", still, None, []),
            ("the drawn frames, `subme=1` (what `superfast` does)", drawn, None, ["-x264-params", "subme=1"]),
        ]
        t0 = time.perf_counter()
        print(f"\n{n} frames of {len(segs)} segments ({args.shots} shots), {w}x{h} @ {args.fps} fps, libx264 "
              f"{args.preset}, one thread\n")
        print("| input | CPU s | ms/frame |\n|---|---:|---:|")
        for label, raw, ass, extra in rows:
            cpu = encode(raw, ass, extra)
            print(f"| {label} | {cpu:.1f} | {cpu / n * 1000:.1f} |")
        print(f"\n({time.perf_counter() - t0:.0f} s)")
    finally:
        drawn.unlink(missing_ok=True)
        still.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
