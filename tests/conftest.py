from __future__ import annotations

from pathlib import Path

import pytest

from novelcomic.registry import composers, image_backends, planners
from tests.fakes import FakeComposer, FakeImages, FakePlanner
from tests.prefect_fixtures import prefect_harness, prefect_server  # noqa: F401  (session fixtures, started once)


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test touches the user's projects dir or data dir."""
    home = tmp_path_factory.getbasetemp() / "xdg"
    monkeypatch.setenv("XDG_DATA_HOME", str(home))
    monkeypatch.delenv("NOVELCOMIC_DATABASE_URL", raising=False)
    monkeypatch.delenv("NOVELCOMIC_PROJECTS_DIR", raising=False)


@pytest.fixture(autouse=True)
def _no_server_remembered_down():  # type: ignore[no-untyped-def]
    """The process-wide memory of LLM servers found down starts and ends every test empty."""
    from novelcomic.llm import openai_backend

    openai_backend.forget_unreachable()
    yield
    openai_backend.forget_unreachable()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "projects"
    r.mkdir()
    return r


@pytest.fixture
def fake_backends():
    """Register fakes under the name "fake" for plan, render and compose (voice uses "silent")."""
    FakePlanner.calls = []
    FakeImages.calls = 0
    FakeComposer.calls = 0
    with planners.override("fake", FakePlanner), image_backends.override("fake", FakeImages), composers.override("fake", FakeComposer):
        yield {"planner": FakePlanner, "images": FakeImages, "composer": FakeComposer}


