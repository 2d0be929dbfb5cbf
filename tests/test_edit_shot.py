"""Editing one shot on a real project: versions kept as files, restore, inpaint/outpaint through a
backend that has them, instructions through a scripted language model, and the command."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from novelcomic import pipeline
from novelcomic.cli.edit_cmds import COMMANDS, edit_shot as edit_shot_cmd
from novelcomic.errors import NovelcomicError
from novelcomic.models import LLMConfig, StageSpec
from novelcomic.project import Project
from novelcomic.registry import composers, image_backends, llms, planners
from novelcomic.render.base import ImageCapabilities, ImageResult
from novelcomic.render.edit import edit_shot, restore_shot, shot_versions, version_path
from novelcomic.render.safety import BlockedShotError
from tests.fakes import FakeComposer, FakePlanner, make_project

SHOT = "s01-02"  # two characters, two lines (see tests/fakes.FakePlanner)
W, H = 64, 112


def prompt_colour(prompt: str) -> tuple[int, int, int]:
    d = hashlib.sha256(prompt.encode()).digest()
    return (d[0], d[1], d[2])


class PaintBackend:
    """Paints each shot in a colour decided by its image prompt; can inpaint and outpaint."""

    name = "paint"
    capabilities = ImageCapabilities(prompts=False, inpaint=True, outpaint=True)
    inpainted: list[str] = []
    outpaint_seeds: list[int] = []
    requests: list = []

    def __init__(self, **options: object) -> None:
        pass

    def design_character(self, request):  # type: ignore[no-untyped-def]
        return ImageResult(Image.new("RGB", (request.width, request.height), (200, 200, 200)), request.seed)

    def render_shot(self, request):  # type: ignore[no-untyped-def]
        PaintBackend.requests.append(request)
        image = Image.new("RGB", (request.width, request.height), prompt_colour(request.shot.image_prompt))
        regions = {c: (4 + 28 * i, 30, 30 + 28 * i, 100) for i, c in enumerate(request.shot.characters)}
        return ImageResult(image, request.seed, regions, {"backend": "paint"})

    def inpaint(self, image, mask, prompt):  # type: ignore[no-untyped-def]
        PaintBackend.inpainted.append(prompt)
        out = image.copy()
        out.paste((255, 0, 255), mask=mask)
        return out  # a bare image is accepted too

    def outpaint(self, image, target_aspect, prompt, *, seed=0, steps=None):  # type: ignore[no-untyped-def]
        a, b = (int(v) for v in target_aspect.split(":"))
        h = image.height
        out = Image.new("RGB", (round(h * a / b), h), (0, 255, 0))
        left = (out.width - image.width) // 2
        out.paste(image, (left, 0))
        PaintBackend.outpaint_seeds.append(seed)
        return ImageResult(out, seed, {}, {"source_box": (left, 0, left + image.width, h)})


class ScriptedLLM:
    """Answers every request with the next scripted text and records the messages."""

    name = "scripted"
    context_tokens = 4096
    answers: list[str] = []
    seen: list[list] = []

    def __init__(self, **options: object) -> None:
        pass

    def complete(self, messages, *, json_schema=None, temperature=0.2, max_tokens=None):  # type: ignore[no-untyped-def]
        ScriptedLLM.seen.append(messages)
        return ScriptedLLM.answers.pop(0)


@pytest.fixture
def produced(root: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """A project planned, designed, rendered, voiced and composed with fakes (render: paint)."""
    for var in ("NOVELCOMIC_LLM_BACKEND", "NOVELCOMIC_LLM_BASE_URL", "NOVELCOMIC_LLM_MODEL"):
        monkeypatch.delenv(var, raising=False)
    FakeComposer.calls = 0
    PaintBackend.inpainted = []
    PaintBackend.outpaint_seeds = []
    PaintBackend.requests = []
    with planners.override("fake", FakePlanner), image_backends.override("fake", PaintBackend), \
            image_backends.override("paint", PaintBackend), composers.override("fake", FakeComposer), \
            llms.override("scripted", ScriptedLLM):
        project = Project(make_project(root))
        pipeline.produce(project)
        yield project
        project.close()


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).astype(int)


def test_a_new_prompt_makes_version_2_and_keeps_version_1(produced: Project) -> None:
    project = produced
    image = project.shot_image_path("01", SHOT)
    original = image.read_bytes()
    board = project.storyboard_path("01").read_bytes()
    calls_before = FakeComposer.calls

    result = edit_shot(project, "01", SHOT, prompt="a red lantern at night")

    assert result.version == 2 and result.path == image and result.kind == "prompt"
    assert result.previous_version_path == version_path(project, "01", SHOT, 1)
    assert result.previous_version_path.read_bytes() == original
    assert image.read_bytes() != original
    # the prompt decides the new picture (the bottom band is never lettered)
    assert tuple(pixels(image)[H - 3, W // 2]) == prompt_colour("a red lantern at night")
    assert project.storyboard_path("01").read_bytes() == board, "the user's storyboard was rewritten"
    asset = project.store.asset("shot", f"01/{SHOT}")
    assert asset.version == 2 and asset.meta_dict()["prompt_override"] == "a red lantern at night"
    assert asset.meta_dict()["regions"] == {"a": [4, 30, 30, 100], "b": [32, 30, 58, 100]}
    versions = shot_versions(project, "01", SHOT)
    assert [(v.version, v.current) for v in versions] == [(1, False), (2, True)]

    # a later run keeps the edit, and the video is made again from the new image
    pipeline.produce(project, stages=["render", "compose"])
    assert project.store.asset("shot", f"01/{SHOT}").version == 2
    assert image.read_bytes() != original
    assert FakeComposer.calls == calls_before + 1

    # restore: the old bytes come back, and the edit is kept as a version in turn
    restored = restore_shot(project, "01", SHOT, 1)
    assert image.read_bytes() == original
    assert restored.version == 3 and restored.kind == "restore"
    assert version_path(project, "01", SHOT, 2).is_file()
    assert [v.version for v in shot_versions(project, "01", SHOT)] == [1, 2, 3]
    assert "prompt_override" not in project.store.asset("shot", f"01/{SHOT}").meta_dict()
    with pytest.raises(NovelcomicError, match=r"no version 7 \(versions: 1, 2, 3\)"):
        restore_shot(project, "01", SHOT, 7)
    with pytest.raises(NovelcomicError, match="already the current"):
        restore_shot(project, "01", SHOT, 3)


def test_an_edit_survives_edits_that_do_not_change_the_picture(produced: Project, caplog: pytest.LogCaptureFixture) -> None:
    """Transitions, durations and voice settings are not part of the picture: editing them must not
    re-render the shot (which would throw the edit-shot image away). An edit that does change the
    picture re-renders it, says how to restore the edit, and keeps every version's label."""
    import yaml

    project = produced
    edit_shot(project, "01", SHOT, prompt="a red lantern at night")
    edited = project.shot_image_path("01", SHOT).read_bytes()

    board = project.storyboard_path("01")
    data = yaml.safe_load(board.read_text(encoding="utf-8"))
    shot = data["scenes"][0]["shots"][1]
    shot.update(transition="fadeblack", duration_hint=5.0)
    board.write_text(yaml.dump(data, allow_unicode=True), encoding="utf-8")
    chars_path = project.characters_yaml
    chars = yaml.safe_load(chars_path.read_text(encoding="utf-8"))
    chars["characters"][0].setdefault("voice", {}).update(rate=150, pitch=70, temperament="急躁")
    chars_path.write_text(yaml.dump(chars, allow_unicode=True), encoding="utf-8")
    reports = {r.stage: r for r in pipeline.produce(project, stages=["design", "render", "compose"])}
    assert reports["design"].made == 0 and reports["render"].made == 0 and reports["compose"].made == 1
    assert project.shot_image_path("01", SHOT).read_bytes() == edited
    assert project.store.asset("shot", f"01/{SHOT}").version == 2

    chars["characters"][0]["appearance"] = "红衣"  # the look changes: the shot must be drawn again
    chars_path.write_text(yaml.dump(chars, allow_unicode=True), encoding="utf-8")
    with caplog.at_level("WARNING", logger="novelcomic"):
        reports = {r.stage: r for r in pipeline.produce(project, stages=["design", "render"])}
    assert reports["render"].made == 1 and project.store.asset("shot", f"01/{SHOT}").version == 3
    assert any("--restore 2" in r.getMessage() and SHOT in r.getMessage() for r in caplog.records)
    notes = {v.version: v.note for v in shot_versions(project, "01", SHOT)}
    assert notes[2] == "prompt: a red lantern at night" and version_path(project, "01", SHOT, 2).read_bytes() == edited


def test_an_edit_asks_the_backend_as_the_render_stage_does(produced: Project) -> None:
    """Same safe area for lettering, and the project's lettering switch is honoured (an edit of a
    project with ``lettering: false`` used to get bubbles from a backend that letters itself)."""
    from novelcomic.render.lettering import shot_safe_area

    project = produced
    staged = [r for r in PaintBackend.requests if r.shot.id == SHOT][-1]
    assert staged.safe_area == shot_safe_area(staged.scene, staged.shot) and staged.lettering is True
    cfg = project.project_yaml.read_text(encoding="utf-8")
    project.project_yaml.write_text(cfg + "\nlettering: false\n", encoding="utf-8")
    edit_shot(project, "01", SHOT, prompt="a red lantern at night")
    edited = PaintBackend.requests[-1]
    assert edited.shot.image_prompt == "a red lantern at night"
    assert edited.safe_area == staged.safe_area and edited.lettering is False


def test_an_edit_draws_in_the_books_period(produced: Project) -> None:
    """The edit's request carries the book's period (project.yaml over locations.yaml), as the
    render stage's does: an edited shot of a Victorian novel must not come back in hanfu."""
    project = produced
    cfg = project.project_yaml.read_text(encoding="utf-8")
    project.project_yaml.write_text(cfg + "\nperiod: victorian_england\n", encoding="utf-8")
    edit_shot(project, "01", SHOT, prompt="a drawing room")
    assert PaintBackend.requests[-1].period == "victorian_england"
    assert PaintBackend.requests[-1].period == pipeline.book_period(project)


def test_inpaint_repaints_only_the_white_part_of_the_mask(produced: Project, tmp_path: Path) -> None:
    project = produced
    before = pixels(project.shot_image_path("01", SHOT))
    mask = Image.new("L", (W // 2, H // 2), 0)  # half size, same aspect: scaled up
    mask.paste(255, (0, 0, 16, 20))
    mask_path = tmp_path / "mask.png"
    mask.save(mask_path)
    result = edit_shot(project, "01", SHOT, mask=mask_path, prompt="torn sleeve")
    after = pixels(result.path)
    assert result.kind == "inpaint" and result.version == 2 and PaintBackend.inpainted == ["torn sleeve"]
    assert (after[:40, :32] == [255, 0, 255]).all()
    assert (after[40:] == before[40:]).all() and (after[:, 32:] == before[:, 32:]).all()
    with pytest.raises(NovelcomicError, match="30x30 but the shot is 64x112"):
        bad = tmp_path / "bad.png"
        Image.new("L", (30, 30), 255).save(bad)
        edit_shot(project, "01", SHOT, mask=bad)
    with pytest.raises(NovelcomicError, match="all black"):
        black = tmp_path / "black.png"
        Image.new("L", (W, H), 0).save(black)
        edit_shot(project, "01", SHOT, mask=black)


def test_outpaint_extends_the_canvas(produced: Project) -> None:
    project = produced
    result = edit_shot(project, "01", SHOT, outpaint="16:9")
    with Image.open(result.path) as im:
        assert im.size == (199, 112)
    assert result.kind == "outpaint" and result.previous_version_path.is_file()
    # the backend got the shot's seed; the character boxes moved with the picture
    asset = project.store.asset("shot", f"01/{SHOT}")
    assert PaintBackend.outpaint_seeds == [pipeline.shot_seed(project.config(), "01", SHOT, None)]
    assert asset.meta_dict()["regions"] == {"a": [71, 30, 97, 100], "b": [99, 30, 125, 100]}
    with pytest.raises(NovelcomicError, match="must be one of 16:9, 9:16"):
        edit_shot(project, "01", SHOT, outpaint="4:3")


def test_the_animatic_cannot_inpaint_and_says_which_backends_can(produced: Project, tmp_path: Path) -> None:
    project = produced
    cfg = project.config()
    cfg.stages.render = StageSpec(backend="animatic")
    project.save_config(cfg)
    mask = tmp_path / "mask.png"
    Image.new("L", (W, H), 255).save(mask)
    with pytest.raises(NovelcomicError, match=r"'animatic' cannot inpaint \(backends that can: .*paint"):
        edit_shot(project, "01", SHOT, mask=mask)
    assert project.store.asset("shot", f"01/{SHOT}").version == 1  # nothing changed
    # the animatic re-renders a new prompt as a lettered comic panel
    result = edit_shot(project, "01", SHOT, prompt="两人在河边争吵")
    asset = project.store.asset("shot", f"01/{SHOT}")
    assert result.version == 2 and asset.backend == "animatic" and asset.meta_dict()["lettered"]
    assert set(asset.meta_dict()["regions"]) == {"a", "b"}


def test_an_instruction_is_rewritten_by_the_language_model(produced: Project) -> None:
    project = produced
    cfg = project.config()
    cfg.llm = LLMConfig(backend="scripted")
    project.save_config(cfg)
    ScriptedLLM.seen = []
    ScriptedLLM.answers = ["```\n新提示词：两人在河边激烈争吵，怒目而视\n```"]
    result = edit_shot(project, "01", SHOT, instruction="吵得更激烈些")
    assert result.kind == "instruction" and result.prompt == "两人在河边激烈争吵，怒目而视"
    (messages,) = ScriptedLLM.seen
    asked = messages[-1].content
    assert "吵得更激烈些" in asked and "阿青" in asked and "好久不见" in asked  # the request and the shot
    asset = project.store.asset("shot", f"01/{SHOT}")
    assert asset.meta_dict()["prompt_override"] == result.prompt
    assert asset.meta_dict()["edit"]["instruction"] == "吵得更激烈些"
    assert tuple(pixels(result.path)[H - 3, 2]) == prompt_colour(result.prompt)
    # the next instruction starts from the overridden prompt
    ScriptedLLM.answers = ["“夜色中两人激烈争吵”"]
    second = edit_shot(project, "01", SHOT, instruction="改成夜里")
    assert second.prompt == "夜色中两人激烈争吵" and second.version == 3
    assert result.prompt in ScriptedLLM.seen[-1][-1].content


def test_an_instruction_without_a_language_model_says_how_to_set_one_up(produced: Project) -> None:
    with pytest.raises(NovelcomicError, match="needs a language model.*llm:"):
        edit_shot(produced, "01", SHOT, instruction="吵得更激烈些")
    assert produced.store.asset("shot", f"01/{SHOT}").version == 1


def test_bad_edits_are_refused_before_anything_changes(produced: Project) -> None:
    project = produced
    with pytest.raises(NovelcomicError, match="nothing to do"):
        edit_shot(project, "01", SHOT)
    with pytest.raises(NovelcomicError, match="either a new prompt or an instruction"):
        edit_shot(project, "01", SHOT, prompt="x", instruction="y")
    with pytest.raises(NovelcomicError, match=r"no shot 's09' in chapter '01' \(shots: s01-01, s01-02\)"):
        edit_shot(project, "01", "s09", prompt="x")
    with pytest.raises(BlockedShotError, match="sexual"):
        edit_shot(project, "01", SHOT, prompt="a nude figure by the river")
    assert project.store.asset("shot", f"01/{SHOT}").version == 1
    assert not version_path(project, "01", SHOT, 1).exists()


def test_the_edit_shot_command(produced: Project, root: Path) -> None:
    assert edit_shot_cmd in COMMANDS
    runner = CliRunner()
    obj = {"root": str(root)}
    r = runner.invoke(edit_shot_cmd, ["p", "1", SHOT, "--prompt", "a lantern"], obj=obj)
    assert r.exit_code == 0, r.output
    assert "version 2 at render/01/s01-02.png (version 1 kept at render/01/versions/s01-02.v1.png)" in r.output
    assert "--stage compose" in r.output
    r = runner.invoke(edit_shot_cmd, ["p", "01", SHOT, "--list"], obj=obj)
    assert r.exit_code == 0
    lines = r.output.splitlines()
    assert lines[0].startswith("  v1  render/01/versions/s01-02.v1.png")
    assert lines[1].startswith("* v2  render/01/s01-02.png") and "a lantern" in lines[1]
    r = runner.invoke(edit_shot_cmd, ["p", "01", SHOT, "--restore", "1"], obj=obj)
    assert r.exit_code == 0 and "version 3" in r.output
    assert version_path(produced, "01", SHOT, 1).read_bytes() == produced.shot_image_path("01", SHOT).read_bytes()
    r = runner.invoke(edit_shot_cmd, ["p", "01", SHOT, "--restore", "9"], obj=obj)
    assert isinstance(r.exception, NovelcomicError) and "no version 9" in str(r.exception)
    r = runner.invoke(edit_shot_cmd, ["p", "01", SHOT, "--list", "--prompt", "x"], obj=obj)
    assert isinstance(r.exception, NovelcomicError) and "--list" in str(r.exception)
    r = runner.invoke(edit_shot_cmd, ["p", "01", SHOT, "--outpaint", "4:3"], obj=obj)
    assert r.exit_code == 2  # click rejects the choice
    r = runner.invoke(edit_shot_cmd, ["p", "01", "s09-99", "--list"], obj=obj)
    assert isinstance(r.exception, NovelcomicError) and "no shot 's09-99'" in str(r.exception)
    # a backend that does not draw from the prompt gives the same picture: the command says so
    for attempt in (1, 2):
        r = runner.invoke(edit_shot_cmd, ["p", "01", SHOT, "--prompt", "the same prompt"], obj=obj)
        assert r.exit_code == 0
        assert ("the new image is the same as the old one" in r.output) is (attempt == 2), r.output
