"""Where a chapter's composition spends its CPU time, per kind of process.

Composes the synthetic chapter of ``benchmarks/compose.py`` once (1080×1920 @ 30 fps, 60 shots by
default) with every ffmpeg the composer starts wrapped in ``/usr/bin/time`` (through
``NOVELCOMIC_FFMPEG``), and reports user + system CPU seconds for: this process (drawing frames,
writing pipes, mixing the soundtrack in numpy), the segment encoders, the ffmpegs that blend
xfade-only transitions, still preparation, the soundtrack's ffmpeg runs and the final join.

    python benchmarks/compose_cpu.py [--shots 60] [--size 1080x1920] [--preset veryfast]

Linux only (``/usr/bin/time`` and ``resource``). Run it with nothing else on the machine.
"""

from __future__ import annotations

import os
import resource
import stat
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

    from novelcomic.compose.base import ComposeRequest
    from novelcomic.compose.ffmpeg_composer import FFmpegComposer
    from novelcomic.ffmpeg import ffmpeg_exe
    from novelcomic.models import MusicConfig, SubtitleConfig
    from novelcomic.music import ensure_loop

    args = bench.chapter_parser(__doc__, shots=60).parse_args()
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

    frames = round(sum(c.duration for c in tl.clips) * args.fps)
    total = own + sum(cpu.values())
    print(f"compose of {args.shots} shots, {w}x{h} @ {args.fps} fps, {frames} frames, libx264 {args.preset}, "
          f"{os.cpu_count()} CPUs: {wall:.1f} s wall, {total:.1f} CPU s\n")
    print("| where | runs | CPU s | share |\n|---|---:|---:|---:|")
    print(f"| this process (drawing, pipes, soundtrack in numpy) | 1 | {own:.1f} | {own / total:.0%} |")
    for _, label in KINDS:
        if runs[label]:
            print(f"| {label} | {runs[label]} | {cpu[label]:.1f} | {cpu[label] / total:.0%} |")

if __name__ == "__main__":
    main()
