"""Review gates and artifacts under the Prefect test harness (fake backends, in process).

The gate tests resume the paused flow through the API from another thread, as a reviewer in the
Prefect UI would. About 25 s (12 s of it the harness).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import yaml

from novelcomic import review
from novelcomic.project import Project
from tests.fakes import make_project


def _artifacts(key_prefix: str) -> dict[str, object]:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        arts = client.read_artifacts()
    return {a.key: a for a in arts if a.key and a.key.startswith(key_prefix)}


def _paused_runs() -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType

    flt = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED])))
    with get_client(sync_client=True) as client:
        return client.read_flow_runs(flow_run_filter=flt)


class Reviewer(threading.Thread):
    """Answers each pause of the flow with the next of ``answers`` (via resume_flow_run)."""

    def __init__(self, answers: list[dict]) -> None:
        super().__init__(daemon=True)
        self.answers = list(answers)
        self.seen: list[str] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        from prefect.flow_runs import resume_flow_run

        try:
            deadline = time.monotonic() + 90
            answered: set[tuple[str, str]] = set()
            while self.answers and time.monotonic() < deadline:
                for fr in _paused_runs():
                    pause = (str(fr.id), fr.state.state_details.pause_key or "")
                    if pause in answered:
                        continue
                    answered.add(pause)
                    self.seen.append(pause[1])
                    resume_flow_run(fr.id, run_input=self.answers.pop(0))
                    break
                time.sleep(0.3)
        except BaseException as exc:  # surfaced by the test
            self.error = exc


def test_artifacts_of_a_run(root: Path, fake_backends, prefect_harness) -> None:
    from flows.produce import produce

    project = Project(make_project(root, name="art-proj"))
    (project.dir / "render" / "01").mkdir(parents=True)
    (project.dir / "render" / "01" / "qa.md").write_text("# QA\n\nall shots consistent", encoding="utf-8")
    videos = produce(str(project.dir))
    arts = _artifacts("art-proj-")
    assert set(arts) >= {"art-proj-01-storyboard", "art-proj-characters", "art-proj-01-render", "art-proj-01-voice",
                         "art-proj-01-qa", "art-proj-videos"}
    table = arts["art-proj-01-storyboard"]
    assert table.type == "table"
    rows = yaml.safe_load(table.data) if isinstance(table.data, str) else table.data
    assert [r["shot"] for r in rows] == ["s01-01", "s01-02"]
    assert rows[1]["characters"] == "阿青, 老陈" and "好久不见" in rows[1]["lines"]
    sheets = arts["art-proj-characters"]
    assert sheets.data.count("data:image/jpeg;base64,") == 2
    assert arts["art-proj-01-render"].type == "progress" and float(arts["art-proj-01-render"].data) == 100.0
    assert float(arts["art-proj-01-voice"].data) == 100.0
    assert "all shots consistent" in arts["art-proj-01-qa"].data
    assert videos[0] in arts["art-proj-videos"].data
    # Gates off: sheets and video are recorded as auto-approved.
    decisions = {a.subject.split(":")[0]: a.decision for a in review.approvals(project)}
    assert decisions == {"sheet": "auto-approved", "video": "auto-approved"}


def test_character_gate_pauses_and_applies_the_reviewers_decisions(root: Path, fake_backends, prefect_harness) -> None:
    from flows.produce import produce

    from novelcomic.models import ReviewConfig

    project = Project(make_project(root, name="gate", review=ReviewConfig(characters=True, publish=True)))
    chars_before = None
    reviewer = Reviewer([
        {"decisions": {"aa": {"decision": "approve"}}},  # a typo: asked again, nothing recorded
        {"decisions": {"a": {"decision": "regenerate", "note": "red scarf"}, "b": {"decision": "approve"}}},
        {"decisions": {"a": {"decision": "approve"}}},  # only "a" is asked about again
        {"approve": False, "note": "not yet"},  # the publish gate of chapter 01
    ])
    reviewer.start()
    videos = produce(str(project.dir), review_poll_seconds=1)
    reviewer.join(5)
    assert reviewer.error is None
    assert reviewer.seen == ["sheets-1", "sheets-2", "sheets-3", "publish-01"]
    assert videos == []  # held back at the publish gate
    # "a" was generated again with the note, characters.yaml (now the user's file) untouched.
    assert project.store.asset("sheet", "a").version == 2
    assert project.store.asset("sheet", "b").version == 1
    chars_before = project.characters_yaml.read_text(encoding="utf-8")
    assert "red scarf" not in chars_before
    assert review.load_overrides(project)["a"]["notes"] == ["red scarf"]
    rows = [(a.subject.split(":")[:2], a.decision, a.note) for a in review.approvals(project)]
    assert rows == [
        (["sheet", "a"], "regenerate", "red scarf"),
        (["sheet", "b"], "approved", ""),
        (["sheet", "a"], "approved", ""),
        (["video", "01"], "rejected", "not yet"),
    ]
    # A second run finds every sheet approved: no pause for them, only the publish gate again.
    reviewer = Reviewer([{"approve": True}])
    reviewer.start()
    videos = produce(str(project.dir), review_poll_seconds=1)
    reviewer.join(5)
    assert reviewer.seen == ["publish-01"] and videos == [str(project.video_path("01"))]
    assert project.store.asset("sheet", "a").version == 2


def test_edit_of_a_user_edited_file_becomes_a_proposal_and_an_override(root: Path, fake_backends) -> None:
    from novelcomic import pipeline

    project = Project(make_project(root))
    pipeline.plan(project)
    pipeline.design(project)
    text = project.characters_yaml.read_text(encoding="utf-8").replace("青衣", "青色长衫")
    project.characters_yaml.write_text(text, encoding="utf-8")  # the user's edit
    out = review.apply_sheet_review(project, ["a", "b"], {"b": {"decision": "edit", "appearance": "满头白发, 灰袍"}})
    assert out.edited == ["b"] and out.approved == ["a"] and not out.done
    assert out.proposals == [project.dir / "characters.proposed.yaml"]
    assert project.characters_yaml.read_text(encoding="utf-8") == text
    assert "灰袍" in out.proposals[0].read_text(encoding="utf-8")
    seen = review.ReviewedProject(project.dir).characters().by_id()
    assert seen["b"].appearance == "满头白发, 灰袍" and seen["a"].appearance == "青色长衫"
    with pytest.raises(Exception, match="not awaiting review: zz"):
        review.apply_sheet_review(project, ["a"], {"zz": {"decision": "approve"}})


def test_edit_of_a_generated_file_rewrites_it(root: Path, fake_backends) -> None:
    from novelcomic import pipeline

    project = Project(make_project(root))
    pipeline.plan(project)
    pipeline.design(project)
    review.apply_sheet_review(project, ["a", "b"], {"a": {"decision": "edit", "appearance": "绿衣"}})
    assert project.characters().by_id()["a"].appearance == "绿衣"
    assert not (project.dir / "characters.proposed.yaml").exists()
    assert pipeline.design(project).made == 1  # only "a" changed


def _mark_extra(project: Project, cid: str) -> None:
    """The user marks a character an extra in characters.yaml (as after a re-plan)."""
    data = yaml.safe_load(project.characters_yaml.read_text(encoding="utf-8"))
    for c in data["characters"]:
        if c["id"] == cid:
            c["role"] = "extra"
    project.characters_yaml.write_text(yaml.dump(data, allow_unicode=True), encoding="utf-8")


def test_extras_have_no_sheet_to_review_and_none_missing(root: Path, fake_backends) -> None:
    """An old sheet of someone now marked an extra is not asked about, the sheets artifact does
    not call the extra's sheet missing, and status counts only the sheets the cast needs."""
    from novelcomic import pipeline
    from novelcomic.artifacts import sheets_markdown
    from novelcomic.status import project_status

    project = Project(make_project(root))
    pipeline.plan(project)
    pipeline.design(project)
    assert [c.id for c in review.sheets_to_review(project)] == ["a", "b"]
    assert "sheets: 2/2 (the cast of chapters 01)" in project_status(project)

    _mark_extra(project, "b")  # b keeps its old sheet file, but no shot uses it any more
    assert [c.id for c in review.sheets_to_review(project)] == ["a"]
    assert review.auto_approve_sheets(project) == ["a"]
    md = sheets_markdown(project)
    assert "## 阿青 (`a`)" in md and "## 老陈" not in md and "no sheet yet" not in md
    assert "Drawn without a sheet (extras and groups)" in md and "老陈 (`b`)" in md
    text = project_status(project)
    assert "characters: 2 (1 extras/groups drawn without a sheet)" in text
    assert "sheets: 1/1 (the cast of chapters 01)" in text and "missing" not in text

    project.sheet_path("a").unlink()  # a sheet that is needed and gone is named
    assert "sheets: 0/1 (the cast of chapters 01); missing: 阿青 (a)" in project_status(project)


def test_status_before_planning_counts_every_character_who_needs_a_sheet(root: Path, fake_backends) -> None:
    from novelcomic.status import project_status

    project = Project(make_project(root))
    text = project_status(project)
    assert "characters: 0" in text and "sheets: 0/0" in text


def test_the_design_task_is_told_the_chapters_of_the_run(root: Path, fake_backends, prefect_harness, monkeypatch) -> None:
    from flows.produce import produce

    from novelcomic import pipeline

    seen: list = []
    design = pipeline.design

    def spy(project, chapters=None):  # type: ignore[no-untyped-def]
        seen.append(chapters)
        return design(project, chapters)

    monkeypatch.setattr(pipeline, "design", spy)
    project = Project(make_project(root, name="two", chapters={"01": "甲。", "02": "乙。"}))
    produce(str(project.dir), chapters="2", stages=["plan", "design"])
    assert seen == [["02"]]
