"""The Prefect flows drive the same library functions (with fake backends, under a test harness)."""

from __future__ import annotations

from pathlib import Path

import pytest

from novelcomic.project import Project
from tests.fakes import make_project


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


def test_task_runs_are_quiet_unless_asked(root: Path, fake_backends, prefect_harness) -> None:
    """`novelcomic run` leaves out Prefect's "Finished in state Completed()" line per task run
    (dozens a chapter); the stages' summaries still reach the log, and `--verbose` keeps it all."""
    import logging

    from flows.produce import produce
    from novelcomic.prefect_env import quiet_task_runs

    class Keep(logging.Handler):
        def __init__(self) -> None:
            super().__init__(logging.DEBUG)
            self.messages: list[str] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.messages.append(record.getMessage())

    logger = logging.getLogger("prefect.task_runs")
    for quiet in (True, False):
        keep = Keep()
        logger.addHandler(keep)
        try:
            with quiet_task_runs(quiet):
                produce(str(make_project(root / str(quiet))))
        finally:
            logger.removeHandler(keep)
        finished = [m for m in keep.messages if m.startswith("Finished in state Completed")]
        assert any(m.startswith("plan: ") for m in keep.messages), keep.messages
        assert (not finished) if quiet else len(finished) >= 4, keep.messages
    assert not [f for f in logger.filters if type(f).__module__ == "novelcomic.prefect_env"], "the filter outlived its block"


def test_a_user_error_reaches_the_terminal_without_prefects_traceback(root: Path, fake_backends, prefect_harness) -> None:
    """Bad input is one line from the command line; Prefect's ERROR record with the traceback (and
    its "Finished in state Failed" echo) is kept off the console, unless --verbose."""
    import io
    import logging

    from flows.produce import produce
    from novelcomic.errors import NovelcomicError
    from novelcomic.prefect_env import quiet_task_runs

    project = Project(make_project(root))
    project.chapter_text_path("01").unlink()
    for quiet in (True, False):
        console = logging.StreamHandler(io.StringIO())
        logging.getLogger().addHandler(console)
        try:
            with quiet_task_runs(quiet), pytest.raises(NovelcomicError, match="chapter text missing"):
                produce(str(project.dir))
        finally:
            logging.getLogger().removeHandler(console)
        shown = console.stream.getvalue()
        assert ("Traceback" in shown) is (not quiet), shown
        assert not console.filters, "the console filter outlived its block"


def test_flow_failure_is_recorded_and_raised(root: Path, fake_backends, prefect_harness) -> None:
    from flows.produce import produce

    project = Project(make_project(root))
    project.chapter_text_path("01").unlink()
    with pytest.raises(Exception, match="chapter text missing"):
        produce(str(project.dir))


def test_flow_refuses_a_locked_project_or_waits_for_it(root: Path, fake_backends, prefect_harness) -> None:
    import subprocess
    import sys
    import time

    from flows.produce import produce
    from novelcomic.errors import ProjectLockedError

    project = Project(make_project(root))
    code = f"import time; from novelcomic.project import Project\nwith Project({str(project.dir)!r}).lock():\n print('held', flush=True); time.sleep(3)"
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ProjectLockedError, match=f"is being processed by pid {holder.pid}; wait for it to finish"):
            produce(str(project.dir))
        assert not project.store.runs()
        t0 = time.monotonic()
        videos = produce(str(project.dir), wait=True)  # waits for the holder to let go
        assert time.monotonic() - t0 > 0.5 and Path(videos[0]).is_file()
    finally:
        holder.kill()
        holder.wait()
    assert [r.status for r in project.store.runs()] == ["completed"]


def test_the_console_filter_knows_every_user_error_class() -> None:
    import logging

    import novelcomic.llm.structured  # noqa: F401  (LLMOutputError, as loaded once it was raised)
    from novelcomic.prefect_env import _user_error

    def record(message: str) -> logging.LogRecord:
        return logging.LogRecord("prefect.flow_runs", logging.INFO, __file__, 1, message, None, None)

    for name in ("NovelcomicError", "BackendError", "ProjectLockedError", "UnknownBackendError", "LLMOutputError"):
        assert _user_error(record(f"Finished in state Failed('Flow run encountered an exception: {name}: x')")), name
    assert not _user_error(record("Finished in state Failed('Flow run encountered an exception: KeyError: x')"))
    assert not _user_error(record("Finished in state Completed()"))


def test_deployment_parameters_take_chapters_as_a_number_too(root: Path, fake_backends) -> None:
    """`prefect deployment run … -p chapters=1` sends an int; the UI may send a list of numbers."""
    from flows.produce import _chapters

    project = Project(make_project(root, chapters={"01": "一。", "02": "二。"}))
    assert _chapters(project, 1) == ["01"]
    assert _chapters(project, "1-2") == _chapters(project, ["1", 2]) == _chapters(project, None) == ["01", "02"]
