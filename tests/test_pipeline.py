"""The pipeline's bookkeeping with fake backends: what is skipped, what is redone, what is kept."""

from __future__ import annotations

from pathlib import Path

from novelcomic import pipeline
from novelcomic.project import Project
from novelcomic.render.base import ImageCapabilities
from tests.fakes import make_project


def _run(project: Project) -> dict[str, pipeline.StageReport]:
    return {f"{r.stage}{r.chapter}": r for r in pipeline.produce(project)}


def test_rerun_skips_everything_and_an_edit_redoes_only_its_shot(root: Path, fake_backends) -> None:
    project = Project(make_project(root))
    first = _run(project)
    assert first["render01"].made == 2 and first["voice01"].made == 3 and first["compose01"].made == 1
    assert fake_backends["planner"].calls == [["01"]]
    assert project.video_path("01").read_text().startswith("2 clips")

    second = _run(project)
    assert all(r.made == 0 for r in second.values()), {k: r.summary() for k, r in second.items()}
    assert fake_backends["planner"].calls == [["01"]]  # not planned again

    # The user edits one line of one shot: that shot's image and audio are redone, nothing else.
    sb_path = project.storyboard_path("01")
    sb_path.write_text(sb_path.read_text(encoding="utf-8").replace("好久不见。", "真是好久不见了。"), encoding="utf-8")
    shot1 = project.store.asset("shot", "01/s01-01")
    third = _run(project)
    assert third["render01"].made == 1 and third["voice01"].made == 1 and third["compose01"].made == 1
    assert project.store.asset("shot", "01/s01-01").version == shot1.version  # untouched shot
    assert project.store.asset("shot", "01/s01-02").version == 2
    assert fake_backends["planner"].calls == [["01"]]  # the user's storyboard is kept, not re-planned
    assert "真是好久不见了" in project.srt_path("01").read_text(encoding="utf-8")


def test_timeline_duration_and_cues_follow_the_audio(root: Path, fake_backends) -> None:
    project = Project(make_project(root))
    _run(project)
    durations = [project.store.asset("audio", f"01/s01-02/{i:02d}").meta_dict()["duration"] for i in range(2)]
    assert all(d > 0.5 for d in durations)
    video = project.store.asset("video", "01")
    meta = video.meta_dict()
    assert meta["shots"] == 2 and meta["cues"] == 3
    # shot 2 holds two lines: it must last at least as long as both
    assert meta["duration"] > sum(durations)


def test_deleted_output_is_made_again(root: Path, fake_backends) -> None:
    project = Project(make_project(root))
    _run(project)
    project.shot_image_path("01", "s01-02").unlink()
    project.video_path("01").unlink()
    again = _run(project)
    # the image comes back identical (same inputs, same seed), so only it and the video are redone
    assert again["render01"].made == 1 and again["voice01"].made == 0 and again["compose01"].made == 1


def test_sweep_partials_removes_leftovers_of_a_killed_run(root: Path, fake_backends) -> None:
    project = Project(make_project(root))
    _run(project)
    leftover = project.shot_image_path("01", "s01-01").parent / ".s01-01.abc123.part.png"
    leftover.write_bytes(b"\x89PNG half")
    batch = project.work_dir / "01" / "segments" / ".batch-k2j3"
    batch.mkdir(parents=True)
    (batch / "part00003.mp4").write_bytes(b"half a segment")
    (batch / "cues.ass").write_text("[Script Info]")
    kept = project.work_dir / "01" / "segments" / "b0001-abc.mp4"
    kept.write_bytes(b"a finished segment")
    assert pipeline.sweep_partials(project) == 3
    assert not leftover.exists() and not batch.exists() and kept.exists()


def test_diffusion_backends_get_a_prompt_polished_once(root: Path, fake_backends) -> None:
    """A backend that declares a prompt family receives a finished prompt; an LLM polishes it when
    one is configured, and the polished prompt is cached (the LLM is not asked again)."""
    import json

    from novelcomic.models import LLMConfig
    from novelcomic.registry import image_backends, llms
    from tests.fakes import FakeImages

    seen: list[tuple[str | None, str | None]] = []

    class PromptedImages(FakeImages):
        capabilities = ImageCapabilities(prompts=True)  # draws from a written prompt
        prompt_family = "sdxl"

        def render_shot(self, request):  # type: ignore[no-untyped-def]
            seen.append((request.prompt, request.negative_prompt))
            return super().render_shot(request)

    asked: list[str] = []

    class ScriptedLLM:
        name = "scripted"
        context_tokens = 4096

        def __init__(self, **options: object) -> None:
            pass

        def complete(self, messages, **kw):  # type: ignore[no-untyped-def]
            asked.append(messages[-1].content)
            return json.dumps({"prompt": "a quiet river at dusk, lotus leaves", "negative": ["frog"], "notes": ""})

    project = Project(make_project(root))
    cfg = project.config()
    cfg.llm = LLMConfig(backend="scripted")
    project.save_config(cfg)
    with image_backends.override("fake", PromptedImages), llms.override("scripted", ScriptedLLM):
        pipeline.plan(project)
        pipeline.render(project, "01")
        n = len(asked)
        assert n == 2 and all(p and "river" in p for p, _ in seen) and all("frog" in (neg or "") for _, neg in seen)
        assert project.shot_image_path("01", "s01-01").with_suffix(".prompt.json").is_file()
        project.shot_image_path("01", "s01-01").unlink()
        pipeline.render(project, "01")
        assert len(asked) == n  # the cached prompt was reused
        cfg.llm = LLMConfig(backend="scripted", options={"timeout": 300, "base_url": "http://elsewhere:8000/v1"})
        project.save_config(cfg)
        again = pipeline.render(project, "01")
        assert again.made == 0 and len(asked) == n  # how the model is reached is not what it answers


def test_a_prompt_the_language_model_cannot_write_falls_back_to_the_rules(root: Path, fake_backends) -> None:
    """LLM down while rendering for a diffusion backend: every shot is still drawn, from the offline
    rules' prompt, with a warning; the next run asks the model again."""
    from novelcomic.errors import BackendError
    from novelcomic.models import LLMConfig
    from novelcomic.registry import image_backends, llms
    from tests.fakes import FakeImages

    class PromptedImages(FakeImages):
        capabilities = ImageCapabilities(prompts=True)  # draws from a written prompt
        prompt_family = "sdxl"

    up = {"ok": False}
    asked: list[int] = []

    class FlakyLLM:
        name = "flaky"
        context_tokens = 4096

        def __init__(self, **options: object) -> None:
            pass

        def complete(self, messages, **kw):  # type: ignore[no-untyped-def]
            import json

            asked.append(1)
            if not up["ok"]:
                raise BackendError("cannot reach LLM server http://localhost:11434/v1 (connection refused)")
            return json.dumps({"prompt": "a quiet river at dusk", "negative": [], "notes": ""})

    project = Project(make_project(root))
    cfg = project.config()
    cfg.llm = LLMConfig(backend="flaky")
    project.save_config(cfg)
    with image_backends.override("fake", PromptedImages), llms.override("flaky", FlakyLLM):
        pipeline.plan(project)
        report = pipeline.render(project, "01")
        assert report.made == 2 and len(asked) == 1  # the second shot did not wait on a server that is down
        assert sum("could not write its image prompt" in w and "connection refused" in w for w in report.warnings) == 2
        assert project.store.asset("prompt", "01/s01-01").backend == "rules"
        from novelcomic.render.edit import edit_shot

        edit_shot(project, "01", "s01-02", prompt="a heron at dawn")  # your edit of a fallback shot is kept
        assert not project.store.asset("shot", "01/s01-02").inputs_hash.startswith("fallback:")
        up["ok"] = True
        assert pipeline.render(project, "01").made == 1  # s01-01 drawn again from the model's prompt; the edit stays
        assert project.store.asset("prompt", "01/s01-01").backend == "llm"
        assert pipeline.render(project, "01").made == 0


def _set_prompt(project: Project, shot_id: str, prompt: str) -> None:
    import yaml

    path = project.storyboard_path("01")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for scene in data["scenes"]:
        for shot in scene["shots"]:
            if shot["id"] == shot_id:
                shot["image_prompt"] = prompt
    path.write_text(yaml.dump(data, allow_unicode=True), encoding="utf-8")


def test_a_blocked_shot_is_flagged_and_left_out_of_the_video(root: Path, fake_backends) -> None:
    from novelcomic.models import SafetyConfig

    project = Project(make_project(root))
    cfg = project.config()
    cfg.safety = SafetyConfig(extra_terms={"house_rules": ["禁词"]})
    project.save_config(cfg)
    pipeline.plan(project)
    _set_prompt(project, "s01-02", "两个人站在禁词旁边")
    reports = _run(project)
    assert any("s01-02" in w and "blocked" in w for w in reports["render01"].warnings)
    assert project.video_path("01").read_text().startswith("1 clips")  # composed without the blocked shot
    assert not project.shot_image_path("01", "s01-02").exists()
    # the user fixes the prompt: the shot is rendered and comes back into the video
    _set_prompt(project, "s01-02", "两个人站在河边")
    _run(project)
    assert project.video_path("01").read_text().startswith("2 clips")
    assert pipeline.blocked_shots(project, "01") == set()


def test_lettering_is_applied_over_any_backend_and_can_be_turned_off(root: Path, fake_backends) -> None:
    import numpy as np
    from PIL import Image

    project = Project(make_project(root))
    cfg = project.config()
    cfg.resolution = (240, 426)
    project.save_config(cfg)
    _run(project)
    lettered = np.asarray(Image.open(project.shot_image_path("01", "s01-02")))
    assert len(np.unique(lettered.reshape(-1, 3), axis=0)) > 10  # bubbles/captions over the flat fake image
    assert project.store.asset("shot", "01/s01-02").meta_dict()["lettered"] is True

    cfg.lettering = False
    project.save_config(cfg)
    _run(project)
    plain = np.asarray(Image.open(project.shot_image_path("01", "s01-02")))
    assert len(np.unique(plain.reshape(-1, 3), axis=0)) == 1
    # the lettered image was kept as a version before it was replaced
    assert list((project.shot_image_path("01", "s01-02").parent / "versions").glob("s01-02.v*.png"))


def test_qa_rerolls_failing_shots_and_writes_a_report(root: Path, fake_backends, monkeypatch) -> None:
    from novelcomic.models import QAConfig
    from novelcomic.render import qa

    class ScriptedEmbedder:
        """Scores the first attempt of every shot low, later attempts high."""

        def consistency(self, image, region, sheet):  # type: ignore[no-untyped-def]
            return 0.9

        def alignment(self, image, prompt):  # type: ignore[no-untyped-def]
            self.calls = getattr(self, "calls", 0) + 1
            return 0.1 if self.calls % 2 == 1 else 0.5

    monkeypatch.setattr(qa, "embedder_for", lambda config: ScriptedEmbedder())
    project = Project(make_project(root))
    cfg = project.config()
    cfg.qa = QAConfig(enabled=True, embedder="scripted", min_alignment=0.3, rerolls=2)
    project.save_config(cfg)
    first = _run(project)
    scores = project.store.asset("shot", "01/s01-01").meta_dict()["qa"]
    assert [s["passed"] for s in scores] == [False, True] and scores[0]["seed"] != scores[1]["seed"]
    assert not [w for w in first["render01"].warnings if "QA" in w]  # a re-roll passed: nothing to say
    report = project.dir / "render" / "01" / "qa.md"
    assert report.is_file() and "s01-02" in report.read_text(encoding="utf-8")
    assert (project.dir / "render" / "01" / "qa-01.png").is_file()


def test_book_waits_for_every_chapter_and_is_remade_only_when_a_chapter_or_title_changes(root: Path, fake_backends, monkeypatch) -> None:
    """The bookkeeping of ``book: true`` (the join itself is tested on real MP4s in test_compose_outputs
    and test_e2e): no book while a chapter has no video; made once; skipped when nothing changed;
    remade when a chapter video or a chapter title changes."""
    import yaml

    from novelcomic.compose import book as book_mod

    calls: list[tuple[list[str], list[str], str]] = []

    def fake_join(videos, titles, out_path, *, title=""):  # type: ignore[no-untyped-def]
        calls.append(([Path(v).name for v in videos], list(titles), title))
        Path(out_path).write_text("book of " + ",".join(titles), encoding="utf-8")
        return book_mod.BookResult(Path(out_path), [(t, float(i), float(i + 1)) for i, t in enumerate(titles)], [])

    monkeypatch.setattr(book_mod, "join_chapters", fake_join)
    project = Project(make_project(root, chapters={"01": "河水静静地流。阿青说：“你好。”", "02": "天亮了。"}, book=True))
    data = yaml.safe_load(project.project_yaml.read_text(encoding="utf-8"))

    first = pipeline.produce(project, ["01"])
    report = first[-1]
    assert report.stage == "book" and report.made == 0 and not calls
    assert any("still missing: 02" in w for w in report.warnings)

    pipeline.produce(project)
    assert calls == [(["01.mp4", "02.mp4"], [c.title or c.id for c in project.config().chapters], project.config().title)]
    assert project.book_path.is_file() and project.store.asset("book", "book") is not None

    again = pipeline.produce(project)
    assert again[-1].stage == "book" and again[-1].made == 0 and again[-1].reused == 1 and len(calls) == 1

    data["chapters"][1]["title"] = "第二章 新的标题"
    project.project_yaml.write_text(yaml.dump(data, allow_unicode=True), encoding="utf-8")
    pipeline.produce(project)
    assert len(calls) == 2 and calls[-1][1][1] == "第二章 新的标题"


def test_renaming_a_speaker_or_a_chapter_redoes_what_shows_the_name(root: Path, fake_backends) -> None:
    """Names are drawn into shots (lettering names every speaker) and burned into subtitles; a
    chapter's title is on its cover. Renaming must redo those, and only those."""
    import yaml

    project = Project(make_project(root))
    _run(project)
    chars_path = project.characters_yaml
    chars = yaml.safe_load(chars_path.read_text(encoding="utf-8"))
    chars["characters"][1]["name"] = "陈三"  # b speaks in s01-02 only (a name with no gender cue: same voice)
    chars_path.write_text(yaml.dump(chars, allow_unicode=True), encoding="utf-8")
    renamed = _run(project)
    assert renamed["render01"].made == 1 and renamed["voice01"].made == 0 and renamed["compose01"].made == 1
    assert project.store.asset("shot", "01/s01-01").version == 1

    data = yaml.safe_load(project.project_yaml.read_text(encoding="utf-8"))
    data["chapters"][0]["title"] = "第一章 新标题"
    project.project_yaml.write_text(yaml.dump(data, allow_unicode=True), encoding="utf-8")
    retitled = _run(project)
    assert retitled["render01"].made == 0 and retitled["voice01"].made == 0 and retitled["compose01"].made == 1


def test_later_stages_on_an_unplanned_chapter_say_to_plan_first(root: Path, fake_backends) -> None:
    import pytest

    from novelcomic.errors import NovelcomicError

    project = Project(make_project(root))
    with pytest.raises(NovelcomicError, match=r"chapter 01 not planned yet \(no storyboards/01.yaml\): run `novelcomic plan p` first"):
        pipeline.produce(project, stages=["render", "voice"])
    assert not project.shot_image_path("01", "s01-01").parent.exists()
    assert pipeline.produce(project, stages=["plan"])[0].made > 0  # planning itself needs no storyboard


def test_status_shows_warnings_and_a_killed_run_as_interrupted(root: Path, fake_backends) -> None:
    from novelcomic.status import project_status

    project = Project(make_project(root))
    _run(project)  # the silent voice warns on every line
    text = project_status(project)
    assert "warnings (3 outputs):" in text
    assert "01/s01-01/00 (+2 more): voice backend 'silent'" in text
    killed = project.store.start_run(["render"], ["01"])  # a run that never finishes (SIGKILL)
    assert f"last run #{killed}: interrupted (killed" in project_status(project)
    with project.lock():  # while a run holds the project, it is just running
        assert f"last run #{killed}: running" in project_status(project)
    project.store.start_run(["render"], ["01"])
    assert [r.status for r in project.store.runs()][-2:] == ["interrupted", "running"]


def test_a_shot_that_never_passes_qa_is_reported(root: Path, fake_backends, monkeypatch) -> None:
    from novelcomic.models import QAConfig
    from novelcomic.render import qa

    class Harsh:
        def consistency(self, image, region, sheet):  # type: ignore[no-untyped-def]
            return 0.1

        def alignment(self, image, prompt):  # type: ignore[no-untyped-def]
            return 0.1

    monkeypatch.setattr(qa, "embedder_for", lambda config: Harsh())
    project = Project(make_project(root))
    cfg = project.config()
    cfg.qa = QAConfig(enabled=True, embedder="scripted", rerolls=1)
    project.save_config(cfg)
    report = _run(project)["render01"]
    assert sum("failed the QA check" in w for w in report.warnings) == 2


def test_a_chapter_the_model_could_not_plan_is_planned_again_next_run(root: Path, fake_backends) -> None:
    import json

    from novelcomic.models import LLMConfig, StageSpec
    from novelcomic.registry import llms

    answers = {"good": False}

    class Moody:
        name = "moody"
        context_tokens = 8192

        def __init__(self, **options: object) -> None:
            pass

        def complete(self, messages, **kw):  # type: ignore[no-untyped-def]
            answers["asked"] = answers.get("asked", 0) + 1
            if not answers["good"]:
                return "not json at all"
            return json.dumps({"characters": [{"name": "阿青"}], "scenes": [{"mood": "calm", "shots": [
                {"characters": ["阿青"], "lines": [{"speaker": "阿青", "text": "你好。"}]}]}]}, ensure_ascii=False)

    project = Project(make_project(root))
    cfg = project.config()
    cfg.llm = LLMConfig(backend="moody", options={"model": "m1"})
    cfg.stages.plan = StageSpec(backend="llm", options={"attempts": 1})
    project.save_config(cfg)
    with llms.override("moody", Moody):
        first = pipeline.plan(project)
        assert any("heuristic planner" in w for w in first.warnings)
        assert any("asks the language model again for chapter(s) 01" in w for w in first.warnings)
        answers["good"] = True
        second = pipeline.plan(project)
        assert second.made >= 1 and not any("heuristic planner" in w for w in second.warnings)
        asked = answers["asked"]
        assert pipeline.plan(project).made == 0 and answers["asked"] == asked  # planned by the model now: up to date
        cfg.llm = LLMConfig(backend="moody", options={"model": "m1", "timeout": 600})
        project.save_config(cfg)
        pipeline.plan(project)
        assert answers["asked"] == asked  # a timeout is not a new model
        cfg.llm = LLMConfig(backend="moody", options={"model": "m2"})
        project.save_config(cfg)
        pipeline.plan(project)
        assert answers["asked"] > asked  # a new model plans again


def test_replanning_never_writes_a_storyboard_your_yaml_cannot_load(root: Path, fake_backends) -> None:
    """You removed a character from characters.yaml (so it is yours now) and deleted a storyboard
    to have it planned again: the new plan needs that character, so the storyboard is proposed
    beside the cast's proposal instead of written as a file that would not load. A proposal that
    says only what your file already says is not written at all."""
    import yaml

    project = Project(make_project(root))
    pipeline.plan(project)
    chars_path = project.characters_yaml
    data = yaml.safe_load(chars_path.read_text(encoding="utf-8"))
    chars_path.write_text(yaml.dump(data, allow_unicode=True, indent=4), encoding="utf-8")  # reformatted, same cast
    project.storyboard_path("01").unlink()
    again = pipeline.plan(project)
    assert project.storyboard_path("01").is_file() and not chars_path.with_suffix(".proposed.yaml").exists()
    assert not [w for w in again.warnings if "edited by you" in w]

    data["characters"] = [c for c in data["characters"] if c["id"] != "b"]
    chars_path.write_text(yaml.dump(data, allow_unicode=True), encoding="utf-8")
    project.storyboard_path("01").unlink()
    third = pipeline.plan(project)
    proposed = project.storyboard_path("01").with_suffix(".proposed.yaml")
    assert not project.storyboard_path("01").exists() and proposed.is_file()
    assert chars_path.with_suffix(".proposed.yaml").is_file()
    assert any("uses b" in w and "01.proposed.yaml" in w for w in third.warnings), third.warnings
    project.characters()  # your file still loads, unchanged
    assert [c["id"] for c in yaml.safe_load(chars_path.read_text(encoding="utf-8"))["characters"]] == ["a"]
    # a whole run goes on: the chapter without a storyboard is skipped, saying why
    reports = pipeline.produce(project)
    skipped = [r for r in reports if r.chapter == "01"]
    assert len(skipped) == 1 and "has no storyboards/01.yaml" in skipped[0].warnings[0]


def test_status_counts_what_the_storyboard_has_now(root: Path, fake_backends) -> None:
    import yaml

    from novelcomic.status import project_status

    project = Project(make_project(root))
    _run(project)
    row = next(r for r in project_status(project).splitlines() if r.startswith("01 "))
    assert "2/2" in row and "3/3" in row
    board = project.storyboard_path("01")
    data = yaml.safe_load(board.read_text(encoding="utf-8"))
    data["scenes"][0]["shots"] = data["scenes"][0]["shots"][:1]  # the user deletes shot s01-02
    board.write_text(yaml.dump(data, allow_unicode=True), encoding="utf-8")
    text = project_status(project)
    row = next(r for r in text.splitlines() if r.startswith("01 "))
    assert row.split()[2:4] == ["1/1", "1/1"], row
    assert "warnings (1 outputs):" in text  # the deleted shot's lines are not counted either


def test_the_llm_setting_does_not_touch_a_renderer_that_draws_no_prompts(root: Path, fake_backends) -> None:
    """The animatic (here the fake) draws from the storyboard, not from a written prompt: adding or
    changing `llm:` re-plans nothing it made and re-draws no shot."""
    from novelcomic.models import LLMConfig

    project = Project(make_project(root))
    _run(project)
    cfg = project.config()
    cfg.llm = LLMConfig(backend="openai", options={"model": "qwen2.5:7b"})
    project.save_config(cfg)
    assert pipeline.produce(project, stages=["render"])[0].made == 0


def test_design_needs_no_storyboard(root: Path, fake_backends) -> None:
    project = Project(make_project(root))
    from novelcomic.models import Character, CharactersFile

    project.write_generated(project.characters_yaml, CharactersFile(characters=[Character(id="a", name="阿青")]), "characters")
    (report,) = pipeline.produce(project, stages=["design"])  # not "plan first": sheets need only the cast
    assert report.stage == "design" and report.made == 1


def test_images_made_under_the_old_hash_recipe_are_adopted_not_drawn_again(root: Path, fake_backends) -> None:
    """A project made before the 2026-11-21 recipes: its sheets and shots are recorded under the
    old hashes. Upgrading adopts them (same files, same versions) unless their inputs changed."""
    from novelcomic.fsutil import hash_inputs

    project = Project(make_project(root))
    _run(project)
    cfg = project.config()
    store = project.store
    for c in project.characters().characters:  # rewrite the records as the old version made them
        rec = store.asset("sheet", c.id)
        # the old version's Character had no role, species or group yet
        old = hash_inputs(c.model_dump(mode="json", exclude=NEW_CHARACTER_FIELDS), cfg.style, cfg.stages.design, *pipeline.SHEET_SIZE,
                          pipeline.shot_seed(cfg, "design", c.id, None), cfg.language)
        assert store.adopt("sheet", c.id, rec.inputs_hash, old)
    ctx = pipeline._render_context(project, "01")
    for shot_id in pipeline.shot_ids(project, "01"):
        rec = store.asset("shot", f"01/{shot_id}")
        assert store.adopt("shot", f"01/{shot_id}", rec.inputs_hash, pipeline.legacy_shot_hash(project, "01", shot_id, ctx))
    calls = fake_backends["images"].calls
    again = _run(project)
    assert again["design"].made == 0 and again["render01"].made == 0 and fake_backends["images"].calls == calls
    assert store.asset("shot", "01/s01-01").version == 1
    assert store.fresh("shot", "01/s01-01", pipeline.shot_inputs_hash(project, "01", "s01-01"))  # re-recorded
    # an old record whose inputs did change since is drawn again
    rec = store.asset("shot", "01/s01-02")
    store.adopt("shot", "01/s01-02", rec.inputs_hash, "an old hash of other inputs")
    assert _run(project)["render01"].made == 1


NEW_CHARACTER_FIELDS = {"role", "species", "group"}  # added 2026-12-07 (with Location.kind/weather and the period)


def _hashes_before_the_new_fields(project: Project, chapter: str) -> dict[str, str]:
    """The sheet and shot hashes as the version before role/species/group, kind/weather and the
    period computed them (today's recipes, with the models as they were)."""
    from novelcomic.fsutil import hash_inputs

    cfg = project.config()
    chars = project.characters().by_id()
    locs = {loc.id: loc for loc in project.locations().locations}
    out = {}
    for c in chars.values():
        out[f"sheet:{c.id}"] = hash_inputs(
            c.model_dump(mode="json", exclude={"voice": pipeline.VOICE_ONLY, **dict.fromkeys(NEW_CHARACTER_FIELDS, True)}),
            cfg.style, cfg.stages.design, *pipeline.SHEET_SIZE, pipeline.shot_seed(cfg, "design", c.id, None), cfg.language)
    for scene, shot in project.storyboard(chapter).shots():
        loc = locs.get(shot.location or scene.location)
        look = [chars[c].model_dump(mode="json", exclude={"voice": pipeline.VOICE_ONLY, **dict.fromkeys(NEW_CHARACTER_FIELDS, True)})
                for c in shot.characters]
        w, h = cfg.size
        out[f"shot:{shot.id}"] = hash_inputs(
            shot.model_dump(mode="json", exclude=pipeline.SHOT_COMPOSE_ONLY), scene.mood,
            loc.model_dump(mode="json", exclude={"kind", "weather"}) if loc else None, [], look,
            [project.store.asset("sheet", c).content_hash for c in shot.characters], cfg.style, cfg.stages.render, w, h,
            pipeline.shot_seed(cfg, chapter, shot.id, shot.seed), cfg.language, cfg.lettering,
            {ln.speaker: chars[ln.speaker].name for ln in shot.lines if ln.speaker in chars}, cfg.subtitles.font,
            cfg.safety, None, None, cfg.style_reference)
    return out


def test_the_new_fields_at_their_defaults_leave_every_hash_as_it_was(root: Path, fake_backends) -> None:
    """Upgrading re-draws nothing: a project that sets no role, species, group, kind, weather or
    period hashes its sheets and shots exactly as the version before those fields did."""
    project = Project(make_project(root))
    _run(project)
    old = _hashes_before_the_new_fields(project, "01")
    store = project.store
    assert {k: v for k, v in old.items() if k.startswith("sheet:")} == {
        f"sheet:{c.id}": store.asset("sheet", c.id).inputs_hash for c in project.characters().characters}
    assert {k: v for k, v in old.items() if k.startswith("shot:")} == {
        f"shot:{s}": store.asset("shot", f"01/{s}").inputs_hash for s in pipeline.shot_ids(project, "01")}


def test_the_books_period_reaches_the_requests_and_redraws_once(root: Path, fake_backends) -> None:
    from novelcomic.render.base import SheetRequest, ShotRequest

    seen: list[object] = []
    orig_design, orig_render = fake_backends["images"].design_character, fake_backends["images"].render_shot

    def design(self, request: SheetRequest):  # type: ignore[no-untyped-def]
        seen.append(request)
        return orig_design(self, request)

    def render(self, request: ShotRequest):  # type: ignore[no-untyped-def]
        seen.append(request)
        return orig_render(self, request)

    fake_backends["images"].design_character, fake_backends["images"].render_shot = design, render
    try:
        project = Project(make_project(root))
        _run(project)
        assert seen and all(r.period == "unknown" for r in seen)
        # the planner found the period: every sheet and shot is drawn again, with it
        locs = project.locations()
        project.write_generated(project.locations_yaml, locs.model_copy(update={"period": "ancient_china"}), "locations")
        seen.clear()
        again = _run(project)
        assert again["design"].made == 2 and again["render01"].made == 2
        assert {r.period for r in seen} == {"ancient_china"}
        assert all(r.made == 0 for r in _run(project).values())
        # project.yaml's period wins over the planner's
        cfg = project.config()
        cfg.period = "victorian_england"
        project.save_config(cfg)
        seen.clear()
        assert _run(project)["render01"].made == 2 and {r.period for r in seen} == {"victorian_england"}
        # a location's kind and weather, a character's species are in the hashes too
        locs = project.locations()
        loc = locs.locations[0].model_copy(update={"weather": "rain"})
        project.write_generated(project.locations_yaml, locs.model_copy(update={"locations": [loc]}), "locations")
        assert _run(project)["render01"].made == 2
        chars = project.characters()
        a = chars.characters[0].model_copy(update={"species": "monkey"})
        project.write_generated(project.characters_yaml, chars.model_copy(update={"characters": [a, *chars.characters[1:]]}),
                                "characters")
        again = _run(project)
        assert again["design"].made == 1 and again["render01"].made == 1  # the shot a is in
    finally:
        fake_backends["images"].design_character, fake_backends["images"].render_shot = orig_design, orig_render


def test_status_shows_the_publish_review_of_each_video(root: Path, fake_backends) -> None:
    from novelcomic import review
    from novelcomic.models import ReviewConfig
    from novelcomic.status import project_status

    project = Project(make_project(root, chapters={"01": "一。", "02": "二。"}, review=ReviewConfig(publish=True), book=True))
    _run(project)
    text = project_status(project)
    assert "[awaiting review]" in text and "book: waits for the publish review" in text
    review.record_publish(project, "01", True)
    review.record_publish(project, "02", False, "cut the last shot")
    rows = {r.split()[0]: r for r in project_status(project).splitlines() if r[:2] in ("01", "02")}
    assert "[approved]" in rows["01"] and "[rejected: cut the last shot]" in rows["02"]
