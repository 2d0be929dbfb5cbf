"""Who gets a reference sheet and a voice: not extras or groups (drawn as generic figures), and
only the characters who appear in the chapters being produced."""

from __future__ import annotations

from pathlib import Path

import pytest

from novelcomic import pipeline
from novelcomic.models import Character, CharactersFile, Line, Location, LocationsFile, Scene, Shot, Storyboard
from novelcomic.project import Project
from novelcomic.registry import image_backends
from tests.fakes import FakeImages, make_project

LATER = ["design", "render", "voice", "compose"]


class RecordingImages(FakeImages):
    """The fake image backend, keeping every request it gets."""

    requests: list[object] = []

    def design_character(self, request):  # type: ignore[no-untyped-def]
        RecordingImages.requests.append(request)
        return super().design_character(request)

    def render_shot(self, request):  # type: ignore[no-untyped-def]
        RecordingImages.requests.append(request)
        return super().render_shot(request)


@pytest.fixture
def images(fake_backends):  # type: ignore[no-untyped-def]
    RecordingImages.requests = []
    with image_backends.override("fake", RecordingImages):
        yield RecordingImages


def _cast_project(root: Path) -> Project:
    """Two planned chapters: 阿青 (main) and a guard (an extra, who speaks) and soldiers (a group)
    in chapter 1; 老陈 only in chapter 2; 路人 in no storyboard; 阿福 speaks in chapter 1 unseen."""
    project = Project(make_project(root, chapters={"01": "一。", "02": "二。"}))
    project.write_generated(project.characters_yaml, CharactersFile(characters=[
        Character(id="a", name="阿青", role="main", appearance="青衣"),
        Character(id="b", name="老陈", appearance="白发"),
        Character(id="guard", name="守卫", role="extra"),
        Character(id="soldiers", name="士兵", group=True),
        Character(id="passer", name="路人", role="minor"),
        Character(id="fu", name="阿福", role="minor"),
    ]), "characters")
    project.write_generated(project.locations_yaml, LocationsFile(locations=[Location(id="gate", name="城门")]), "locations")
    one = Storyboard(chapter="01", scenes=[Scene(id="s1", location="gate", shots=[
        Shot(id="s1-1", characters=["a", "guard", "soldiers"],
             lines=[Line(speaker="guard", text="站住！"), Line(speaker="a", text="我是阿青。")]),
        Shot(id="s1-2", lines=[Line(speaker="fu", text="等等我！")]),
    ])])
    two = Storyboard(chapter="02", scenes=[Scene(id="s1", location="gate", shots=[
        Shot(id="s1-1", characters=["a", "b"], lines=[Line(speaker="b", text="好久不见。")]),
    ])])
    project.write_generated(project.storyboard_path("01"), one, "storyboard")
    project.write_generated(project.storyboard_path("02"), two, "storyboard")
    return project


def _sheets(project: Project) -> set[str]:
    return {p.stem for p in (project.dir / "design" / "characters").glob("*.png")}


def test_extras_groups_and_later_chapters_get_no_sheet(root: Path, images) -> None:  # type: ignore[no-untyped-def]
    project = _cast_project(root)
    reports = pipeline.produce(project, ["01"], LATER)
    assert _sheets(project) == {"a", "fu"}  # not the extra, the group, 老陈 (chapter 2) or 路人 (nowhere)
    assert reports[0].stage == "design" and reports[0].made == 2
    # the extra and the group are drawn from the Character alone: no reference image
    (shot,) = [r for r in images.requests if getattr(r, "shot", None) is not None and r.shot.id == "s1-1"]
    refs = {ref.character.id: ref.reference_images for ref in shot.characters}
    assert refs == {"a": [project.sheet_path("a")], "guard": [], "soldiers": []}
    # the extra who speaks has a voice, and so does everyone who speaks in a planned chapter; 路人 none
    cast = pipeline._voice_context(project, "01")["cast"]
    assert {"narrator", "a", "guard", "fu", "b"} == set(cast)
    assert project.video_path("01").exists()

    # producing chapter 2 brings 老陈's sheet, and leaves chapter 1's alone
    a = project.store.asset("sheet", "a")
    again = pipeline.produce(project, ["02"], LATER)
    assert _sheets(project) == {"a", "fu", "b"}
    assert again[0].made == 1 and project.store.asset("sheet", "a").version == a.version
    assert pipeline.produce(project, ["01", "02"], LATER)[0].made == 0


def test_the_chapters_of_the_run_in_progress_scope_the_design(root: Path, images) -> None:  # type: ignore[no-untyped-def]
    """The Prefect flow's design task is not told the chapters: they come from the run record
    that `novelcomic run` (and the flow) writes under the project lock."""
    project = _cast_project(root)
    with project.lock():
        project.store.start_run(["design"], ["02"])
        assert pipeline.run_chapters(project) == ["02"]
        assert pipeline.design(project).made == 2
    assert _sheets(project) == {"a", "b"}
    assert pipeline.run_chapters(project) is None  # the lock is free: no run in progress


def test_before_any_plan_every_character_but_extras_and_groups_gets_a_sheet(root: Path, images) -> None:  # type: ignore[no-untyped-def]
    project = Project(make_project(root))
    project.write_generated(project.characters_yaml, CharactersFile(characters=[
        Character(id="a", name="阿青"), Character(id="guard", name="守卫", role="extra"),
        Character(id="crowd", name="众人", group=True),
        Character(id="own", name="阿青的马", role="extra", reference_images=["refs/horse.png"]),
    ]), "characters")
    assert pipeline.design(project).made == 1 and _sheets(project) == {"a"}
    # an extra the user gave images of keeps them as its reference
    assert pipeline.reference_images(project, "own") == [project.dir / "refs" / "horse.png"]
    assert pipeline.reference_images(project, "guard") == []


def test_an_old_sheet_of_a_character_now_marked_extra_is_not_used(root: Path, images) -> None:  # type: ignore[no-untyped-def]
    project = _cast_project(root)
    pipeline.produce(project, ["01"], LATER)
    chars = project.characters()
    demoted = [c.model_copy(update={"role": "extra"}) if c.id == "a" else c for c in chars.characters]
    project.write_generated(project.characters_yaml, chars.model_copy(update={"characters": demoted}), "characters")
    images.requests.clear()
    report = {r.stage + r.chapter: r for r in pipeline.produce(project, ["01"], LATER)}
    assert report["design"].made == 0 and report["render01"].made == 1  # the shot 阿青 is in, now without her sheet
    (shot,) = [r for r in images.requests if getattr(r, "shot", None) is not None]
    assert all(ref.reference_images == [] for ref in shot.characters)
