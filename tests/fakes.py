"""Fake backends and tiny projects for tests (registered through the real registry)."""

from __future__ import annotations

from pathlib import Path

from novelcomic.models import (
    Character, CharactersFile, Line, Location, LocationsFile, PropsFile, Scene, Shot, Storyboard,
)



class FakePlanner:
    """Returns a fixed two-character storyboard for every chapter and counts its calls."""

    name = "fake"
    calls: list[list[str]] = []

    def __init__(self, **options: object) -> None:
        self.options = options

    def plan(self, request):  # type: ignore[no-untyped-def]
        from novelcomic.plan.base import PlanResult

        FakePlanner.calls.append([c.id for c in request.chapters])
        chars = CharactersFile(characters=[
            Character(id="a", name="阿青", appearance="青衣"), Character(id="b", name="老陈", appearance="白发"),
        ])
        locs = LocationsFile(locations=[Location(id="l1", name="河边")])
        boards = {}
        for ch in request.chapters:
            boards[ch.id] = Storyboard(chapter=ch.id, title=ch.title, scenes=[Scene(id="s01", location="l1", shots=[
                Shot(id="s01-01", lines=[Line(text="河水静静地流。")]),
                Shot(id="s01-02", characters=["a", "b"], lines=[Line(speaker="a", text="你好。"), Line(speaker="b", text="好久不见。")]),
            ])])
        return PlanResult(chars, PropsFile(), locs, boards)


class FakeImages:
    name = "fake"
    calls = 0

    def __init__(self, **options: object) -> None:
        pass

    def design_character(self, request):  # type: ignore[no-untyped-def]
        from PIL import Image

        from novelcomic.render.base import ImageResult

        FakeImages.calls += 1
        return ImageResult(Image.new("RGB", (request.width, request.height), (200, 200, 200)), request.seed)

    def render_shot(self, request):  # type: ignore[no-untyped-def]
        from PIL import Image

        from novelcomic.render.base import ImageResult

        FakeImages.calls += 1
        shade = (len(request.shot.lines) * 40) % 255
        return ImageResult(Image.new("RGB", (request.width, request.height), (shade, 90, 120)), request.seed)


class FakeComposer:
    name = "fake"
    calls = 0

    def __init__(self, **options: object) -> None:
        pass

    def compose(self, request):  # type: ignore[no-untyped-def]
        from novelcomic.compose.base import ComposeResult
        from novelcomic.fsutil import atomic_write_text

        FakeComposer.calls += 1
        atomic_write_text(request.out_video, f"{len(request.timeline.clips)} clips {request.timeline.duration:.2f}s")
        atomic_write_text(request.out_srt, "\n".join(c.text for c in request.timeline.cues))
        return ComposeResult(request.out_video, request.out_srt, request.timeline.duration)



def make_project(root: Path, name: str = "p", chapters: dict[str, str] | None = None, **cfg: object) -> Path:
    """A minimal project on disk (without going through ingest)."""
    from novelcomic.models import ChapterRef, ProjectConfig, StageSpec, StagesConfig
    from novelcomic.project import Project

    chapters = chapters or {"01": "河水静静地流。阿青说：“你好。”"}
    d = root / name
    (d / "chapters").mkdir(parents=True)
    for cid, text in chapters.items():
        (d / "chapters" / f"{cid}.txt").write_text(text, encoding="utf-8")
    stages = StagesConfig(
        plan=StageSpec(backend="fake"), design=StageSpec(backend="fake"), render=StageSpec(backend="fake"),
        voice=StageSpec(backend="silent"), compose=StageSpec(backend="fake"),
    )
    config = ProjectConfig(
        title="t", resolution=(64, 112), fps=10, stages=stages,
        chapters=[ChapterRef(id=c) for c in chapters], **cfg,  # type: ignore[arg-type]
    )
    p = Project(d)
    p.write_schemas()
    p.save_config(config)
    p.close()
    return d
