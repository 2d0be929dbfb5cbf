"""Shared Prefect fixtures: the in-process test harness and a real local Prefect server.

Import the fixtures into a test module (``from tests.prefect_fixtures import prefect_harness``).
Both are session-scoped: the harness costs ~12 s once, a real server ~15 s once.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A real ``prefect server start`` on 127.0.0.1 (started by novelcomic's own helper); yields
    the environment a client or worker process needs to talk to it."""
    from novelcomic.cli.serve_cmds import PrefectServer

    home = tmp_path_factory.mktemp("prefect-home")
    env = {
        "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOCAL_STORAGE_PATH": str(home / "storage"),
    }
    server = PrefectServer("127.0.0.1", free_port(), env=env)
    server.start()
    try:
        yield {**env, "PREFECT_API_URL": server.api_url}
    finally:
        server.stop()


def subprocess_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(extra)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def python(*args: str) -> list[str]:
    return [sys.executable, *args]


def tiny_project(root: Path, name: str = "tiny", shots: int = 4, chapters: tuple[str, ...] = ("01",), render: str = "animatic") -> Path:
    """A project on the real offline backends (animatic, silent voice, ffmpeg) at 96×160, 8 fps,
    with its cast and storyboards written directly (plan has nothing to do). Usable by server
    and worker processes, which do not see fakes registered in the test process."""
    from novelcomic.models import (
        Character, CharactersFile, Line, Location, LocationsFile, Scene, Shot, StageSpec, StagesConfig, Storyboard,
    )
    from novelcomic.project import Project
    from tests.fakes import make_project

    d = make_project(root, name=name, chapters={c: "河水静静地流。阿青说：你好。" for c in chapters})
    p = Project(d)
    cfg = p.config()
    cfg.resolution = (96, 160)
    cfg.fps = 8
    cfg.transition_seconds = 0.2
    cfg.music.enabled = False
    cfg.subtitles.burn_in = False
    cfg.stages = StagesConfig(
        plan=StageSpec(backend="heuristic"), design=StageSpec(backend="animatic"), render=StageSpec(backend=render),
        voice=StageSpec(backend="silent"), compose=StageSpec(backend="ffmpeg", options={"preset": "ultrafast"}),
    )
    p.save_config(cfg)
    p.write_generated(p.characters_yaml, CharactersFile(characters=[Character(id="a", name="阿青", appearance="青衣")]), "characters")
    p.write_generated(p.locations_yaml, LocationsFile(locations=[Location(id="l1", name="河边")]), "locations")
    for ch in chapters:
        board = Storyboard(chapter=ch, scenes=[Scene(id="s01", location="l1", shots=[
            Shot(id=f"s01-{i:02d}", characters=["a"] if i % 2 else [], duration_hint=0.5,
                 lines=[Line(speaker="a" if i % 2 else "narrator", text=f"第{i}句。")])
            for i in range(1, shots + 1)
        ])])
        p.write_generated(p.storyboard_path(ch), board, "storyboard")
    p.close()
    return d


class SlowAnimatic:
    """The animatic backend with a pause per shot ($NOVELCOMIC_TEST_RENDER_DELAY seconds), so a
    process can be killed while it renders."""

    def __init__(self, **options: object) -> None:
        from novelcomic.render.animatic import AnimaticBackend

        self.inner = AnimaticBackend(**options)

    def design_character(self, request):  # type: ignore[no-untyped-def]
        return self.inner.design_character(request)

    def render_shot(self, request):  # type: ignore[no-untyped-def]
        import time

        time.sleep(float(os.environ.get("NOVELCOMIC_TEST_RENDER_DELAY", "1")))
        return self.inner.render_shot(request)


class StillClip:
    """An animate backend for tests in child processes: the still, held, as a short MP4 (what a
    real image-to-video model would write, without one)."""

    name = "stillclip"

    def __init__(self, **options: object) -> None:
        from novelcomic.animate.base import Capabilities

        self.capabilities = Capabilities(families=("still",), prompt=False, negative_prompt=False)

    def animate(self, request, out):  # type: ignore[no-untyped-def]
        from novelcomic.animate.base import ClipResult
        from novelcomic.ffmpeg import run_ffmpeg

        fps, frames = 8, max(2, round(request.seconds * 8))
        w, h = request.width - request.width % 2, request.height - request.height % 2
        run_ffmpeg(["-loop", "1", "-i", str(request.image), "-frames:v", str(frames), "-r", str(fps),
                    "-vf", f"scale={w}:{h}", "-pix_fmt", "yuv420p", "-c:v", "libx264", "-preset", "ultrafast", str(out)],
                   "a test clip")
        return ClipResult(out, fps, frames, w, h, request.seed, {"backend": "stillclip", "pid": os.getpid()})


def register_test_backends() -> None:
    from novelcomic.registry import animators, image_backends

    image_backends.register("slow", SlowAnimatic)
    animators.register("stillclip", StillClip)


def _main(argv: list[str]) -> None:
    """``python -m tests.prefect_fixtures run|worker ARGS…``: the novelcomic CLI (or the task
    worker) with the "slow" render backend registered in this process."""
    register_test_backends()
    command, *args = argv
    if command == "worker":
        from novelcomic.cli.serve_cmds import worker

        worker.main(args=args, standalone_mode=True)
    else:
        from novelcomic import procs
        from novelcomic.cli import main

        procs.COMMAND_PROCESS = True  # this process is the command, as `novelcomic …` is
        main([command, *args])


if __name__ == "__main__":
    _main(sys.argv[1:])


__all__ = ["prefect_harness", "prefect_server", "free_port", "subprocess_env", "python", "subprocess"]
