"""The Prefect flows drive the same library functions (with fake backends, under a test harness)."""

from __future__ import annotations

from pathlib import Path

import pytest

from novelcomic.project import Project
from tests.fakes import make_project


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory: pytest.TempPathFactory):
    import os

    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def test_produce_flow_runs_every_stage_and_skips_on_rerun(root: Path, fake_backends, prefect_harness) -> None:
    from flows.produce import produce

    project = Project(make_project(root, chapters={"01": "一。", "02": "二。"}))
    videos = produce(str(project.dir))
    assert videos == [str(project.video_path("01")), str(project.video_path("02"))]
    assert all(Path(v).is_file() for v in videos)
    statuses = {(s.chapter, s.stage): s.status for s in project.store.stage_statuses()}
    assert statuses[("02", "compose")] == "done"
    calls = fake_backends["images"].calls
    produce(str(project.dir))
    assert fake_backends["images"].calls == calls  # nothing re-rendered


def test_flow_failure_is_recorded_and_raised(root: Path, fake_backends, prefect_harness) -> None:
    from flows.produce import produce

    project = Project(make_project(root))
    project.chapter_text_path("01").unlink()
    with pytest.raises(Exception, match="chapter text missing"):
        produce(str(project.dir))
