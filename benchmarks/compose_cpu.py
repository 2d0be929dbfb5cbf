"""Where a chapter's composition spends its CPU time, per kind of process.

Composes the synthetic chapter of ``benchmarks/compose.py`` once (1080×1920 @ 30 fps, 60 shots by
default) with every ffmpeg the composer starts wrapped in ``/usr/bin/time`` (through
``NOVELCOMIC_FFMPEG``), and reports user + system CPU seconds for: this process (drawing frames,
writing pipes, mixing the soundtrack in numpy), the segment encoders, the ffmpegs that blend
xfade-only transitions, still preparation, the soundtrack's ffmpeg runs and the final join. Then it
encodes the composer's own frames once more with x264 alone (same settings, one encoder, frames
piped from the drawing code without subtitles): the cost of the encoder on this content, which no
composer drawing these moves can go below.

    python benchmarks/compose_cpu.py [--shots 60] [--size 1080x1920] [--preset veryfast]

Linux only (``/usr/bin/time`` and ``resource``). Run it with nothing else on the machine.
"""

from __future__ import annotations

import argparse
import os
import resource
import stat
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

KINDS = [("segment_list", "segment encoders"), ("xfade", "xfade transitions"), ("flags=", "preparing stills"),
         ("concat", "joining + muxing"), ("", "soundtrack and other ffmpeg runs")]


def main() -> None:
    import compose as bench  # benchmarks/compose.py: the synthetic chapter

    from novelcomic.compose import draw
    from novelcomic.compose.base import ComposeRequest
    from novelcomic.compose.ffmpeg_composer import FFmpegComposer
    from novelcomic.ffmpeg import ffmpeg_exe
    from novelcomic.models import MusicConfig, SubtitleConfig
    from novelcomic.music import ensure_loop

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shots", type=int, default=60)
    p.add_argument("--size", type=bench.size_arg, default=(1080, 1920))
    p.add_argument("--fps", type=int, default=30)
    p.add_argument("--preset", default="veryfast")
    args = p.parse_args()
    w, h = args.size
    work = Path(tempfile.mkdtemp(prefix="compose-cpu-"))
    tl = bench.timeline_for(work, args.shots, w, h, args.fps)
    cache = work / "music.cache"
    for mood in {c.mood for c in tl.clips}:
        ensure_loop(mood, cache, sample_rate=44100)

    real = ffmpeg_exe()
    log = work / "ffmpeg-cpu.log"
    wrapper = work / "ffmpeg-timed"
    wrapper.write_text(f'#!/bin/sh\nexec /usr/bin/time -a -o "{log}" -f "%U %S ::: $*" "{real}" "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    os.environ["NOVELCOMIC_FFMPEG"] = str(wrapper)

    composer = FFmpegComposer(preset=args.preset, music_cache_dir=str(cache))
    request = ComposeRequest(timeline=tl, out_video=work / "out" / "c.mp4", out_srt=work / "out" / "c.srt",
                             work_dir=work / "work", music=MusicConfig(), subtitles=SubtitleConfig(), title="基准")
    before = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    composer.compose(request)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_SELF)
    own = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)

    cpu: dict[str, float] = defaultdict(float)
    runs: dict[str, int] = defaultdict(int)
    for line in log.read_text().splitlines():
        if ":::" not in line:
            continue
        times, cmd = line.split(" ::: ", 1)
        u, s = map(float, times.split())
        kind = next(label for key, label in KINDS if key in cmd)
        cpu[kind] += u + s
        runs[kind] += 1
    os.environ.pop("NOVELCOMIC_FFMPEG")

    # x264 alone on the composer's frames (transitions blended here; xfade-only ones as their first side)
    segments = composer.plan(request)
    frames = sum(s.frames for s in segments)

    def all_frames():  # type: ignore[no-untyped-def]
        planes = draw.PlaneCache()
        for seg in segments:
            for n, f in enumerate(draw.segment_frames(seg, w, h, planes, work)):
                if n < seg.frames:
                    yield f[: w * h * 3 // 2]

    video_args = [*composer._video_args(args.fps), "-threads", "1"]
    raw = ["-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{w}x{h}", "-r", str(args.fps), "-i", "pipe:"]
    # draw into a file first, so the encode below is x264's time alone
    dump = work / "frames.yuv"
    with open(dump, "wb") as fh:
        for f in all_frames():
            fh.write(f)
    t1 = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-f", "%U %S", real, "-v", "error", "-y", *raw[:-2], "-i", str(dump),
                           *video_args, "-f", "mp4", str(work / "x264.mp4")], capture_output=True, text=True, check=True)
    x264_wall = time.perf_counter() - t1
    x264_cpu = sum(map(float, proc.stderr.strip().splitlines()[-1].split()))
    dump.unlink()

    total = own + sum(cpu.values())
    print(f"compose of {args.shots} shots, {w}x{h} @ {args.fps} fps, {frames} frames, libx264 {args.preset}, "
          f"{os.cpu_count()} CPUs: {wall:.1f} s wall, {total:.1f} CPU s\n")
    print("| where | runs | CPU s | share |\n|---|---:|---:|---:|")
    print(f"| this process (drawing, pipes, soundtrack in numpy) | 1 | {own:.1f} | {own / total:.0%} |")
    for _, label in KINDS:
        if runs[label]:
            print(f"| {label} | {runs[label]} | {cpu[label]:.1f} | {cpu[label] / total:.0%} |")
    print(f"\nx264 alone on the same {frames} frames (one encoder, one thread, from a file): "
          f"{x264_cpu:.1f} CPU s ({x264_wall:.1f} s wall) = {x264_cpu / total:.0%} of the compose's CPU")


if __name__ == "__main__":
    main()
