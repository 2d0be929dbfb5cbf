"""Wall time of each stage of `novelcomic demo` on this machine.

Copies the bundled Chinese example to a temporary directory (sources only, so every stage does
its full work), runs the stages one after another through the library functions, and prints a
markdown table. Then it times a second, no-op run (everything up to date) and the same full run
through Prefect's ephemeral mode to show the orchestration overhead.

    .venv/bin/python benchmarks/demo_stages.py [--resolution 1080x1920] [--fps 30]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--project", default="lantern-fox")
    ap.add_argument("--resolution", default=None, help="WxH; default: the project's own")
    ap.add_argument("--fps", type=int, default=None)
    args = ap.parse_args()

    from novelcomic import pipeline
    from novelcomic.project import Project
    from tests.helpers import copy_example

    tmp = Path(tempfile.mkdtemp(prefix="nc-bench-"))
    os.environ["XDG_DATA_HOME"] = str(tmp / "xdg")
    try:
        src_cfg = Project(REPO / "projects" / args.project).config()
        res = tuple(int(x) for x in args.resolution.split("x")) if args.resolution else src_cfg.size
        fps = args.fps or src_cfg.fps
        copy_example(args.project, tmp, resolution=res, fps=fps)  # type: ignore[arg-type]
        project = Project(tmp / args.project)
        chapters = [c.id for c in project.config().chapters]
        rows: list[tuple[str, float, str]] = []

        def timed(label: str, fn, detail=lambda r: "") -> object:  # type: ignore[no-untyped-def]
            t0 = time.perf_counter()
            result = fn()
            rows.append((label, time.perf_counter() - t0, detail(result)))
            return result

        timed("plan", lambda: pipeline.plan(project, chapters), lambda r: f"{len(r.outputs)} files")
        timed("design", lambda: pipeline.design(project), lambda r: f"{r.made} sheets")
        shots = sum(len(project.storyboard(c).shots()) for c in chapters)
        timed("render", lambda: [pipeline.render(project, c) for c in chapters], lambda r: f"{shots} shots")
        lines = sum(len(s.lines) for c in chapters for _, s in project.storyboard(c).shots())
        timed("voice", lambda: [pipeline.voice(project, c) for c in chapters], lambda r: f"{lines} lines")
        timed("compose", lambda: [pipeline.compose(project, c) for c in chapters], lambda r: "")
        video_s = sum(project.store.asset("video", c).meta_dict()["duration"] for c in chapters)
        rows[-1] = (rows[-1][0], rows[-1][1], f"{len(chapters)} videos, {video_s:.0f} s of video")
        timed("re-run, all up to date", lambda: pipeline.produce(project), lambda r: "")

        # the same, through Prefect (ephemeral mode, a fresh PREFECT_HOME): orchestration overhead
        fresh = tmp / "prefect-run"
        copy_example(args.project, fresh, resolution=res, fps=fps)  # type: ignore[arg-type]
        env = {**os.environ, "NOVELCOMIC_PROJECTS_DIR": str(fresh), "PREFECT_HOME": str(tmp / "prefect-home")}
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "novelcomic", "run", args.project], env=env,
                              capture_output=True, text=True)
        if done.returncode:
            sys.exit(f"novelcomic run failed:\n{done.stderr[-3000:]}")
        rows.append(("full `novelcomic run` via Prefect (fresh Prefect home)", time.perf_counter() - t0, ""))

        print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
              f"{args.project} at {res[0]}x{res[1]} {fps} fps")
        print()
        print("| stage | seconds | work |")
        print("|---|---:|---|")
        for label, secs, detail in rows:
            print(f"| {label} | {secs:.1f} | {detail} |")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
