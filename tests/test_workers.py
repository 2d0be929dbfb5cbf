"""Processes that die mid-run, against one real local Prefect server (session fixture):

- ``novelcomic run`` killed with SIGKILL while rendering, then run again: no finished shot is
  rendered again (asset versions stay 1) and the chapter completes;
- two task workers render a chapter for a distributed run; one is killed with SIGKILL: the
  flow sends its shot again and the chapter completes;
- a second run on a locked project refuses with a clear message.

Real offline backends plus a slowed animatic (``tests.prefect_fixtures.SlowAnimatic``) registered
in the child processes. About 60 s.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from novelcomic.project import Project
from tests.prefect_fixtures import python, subprocess_env, tiny_project


def _shots_done(project: Project) -> int:
    return len(project.store.assets("shot"))


def _wait_until(cond, timeout: float, what: str, procs=()) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        for p in procs:
            assert p.poll() is None, f"process exited early ({p.returncode}) while waiting for {what}"
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_killed_run_resumes_without_rendering_finished_shots(tmp_path: Path, prefect_server: dict[str, str]) -> None:
    root = tmp_path / "projects"
    root.mkdir()
    project = Project(tiny_project(root, shots=8, render="slow"))
    env = subprocess_env({**prefect_server, "NOVELCOMIC_PROJECTS_DIR": str(root), "NOVELCOMIC_TEST_RENDER_DELAY": "1"})
    log = tmp_path / "run1.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen(python("-m", "tests.prefect_fixtures", "run", "tiny"), env=env, stdout=fh, stderr=subprocess.STDOUT)
    try:
        _wait_until(lambda: _shots_done(project) >= 3, 90, "3 rendered shots", [proc])
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    before = {a.key: (a.version, a.content_hash) for a in project.store.assets("shot")}
    assert 3 <= len(before) < 8, log.read_text()[-2000:]
    assert not project.video_path("01").exists()

    env["NOVELCOMIC_TEST_RENDER_DELAY"] = "0.1"
    again = subprocess.run(python("-m", "tests.prefect_fixtures", "run", "tiny"), env=env, capture_output=True, text=True, timeout=180)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    after = {a.key: (a.version, a.content_hash) for a in project.store.assets("shot")}
    assert len(after) == 8
    assert {k: after[k] for k in before} == before  # finished shots untouched
    assert all(v == 1 for v, _ in after.values())
    assert project.video_path("01").is_file()
    assert not list(project.dir.rglob(".*.part*"))
    assert [r.status for r in project.store.runs()] == ["interrupted", "completed"]  # the next run marks the killed one


def test_two_task_workers_one_killed_the_chapter_completes(tmp_path: Path, prefect_server: dict[str, str]) -> None:
    root = tmp_path / "projects"
    root.mkdir()
    project = Project(tiny_project(root, shots=6, render="slow"))
    env = subprocess_env({**prefect_server, "NOVELCOMIC_PROJECTS_DIR": str(root), "NOVELCOMIC_TEST_RENDER_DELAY": "2"})
    logs = [tmp_path / f"worker{i}.log" for i in (1, 2)]
    workers = []
    for lg in logs:
        with open(lg, "w") as fh:
            workers.append(subprocess.Popen(python("-m", "tests.prefect_fixtures", "worker", "--limit", "1"),
                                            env=env, stdout=fh, stderr=subprocess.STDOUT))
    flow_log = tmp_path / "flow.log"
    code = f"from flows.produce import produce; print(produce({str(project.dir)!r}, distributed=True, stall_seconds=8))"
    try:
        _wait_until(lambda: all("task worker for" in lg.read_text() for lg in logs), 60, "workers", workers)
        time.sleep(2)  # the workers subscribe once they print
        with open(flow_log, "w") as fh:
            flow = subprocess.Popen(python("-c", code), env=env, stdout=fh, stderr=subprocess.STDOUT)
        _wait_until(lambda: _shots_done(project) >= 2, 120, "2 rendered shots", [flow])
        workers[0].send_signal(signal.SIGKILL)
        rc = flow.wait(180)
        assert rc == 0, flow_log.read_text()[-3000:]
    finally:
        for w in workers:
            if w.poll() is None:
                w.send_signal(signal.SIGINT)
        for w in workers:
            try:
                w.wait(20)
            except subprocess.TimeoutExpired:
                w.kill()
    assert len(project.store.assets("shot")) == 6
    assert project.video_path("01").is_file()
    rendered_by = [lg.read_text().count("render-shot") for lg in logs]
    assert rendered_by[0] > 0 and rendered_by[1] > 0, rendered_by  # both workers took shots


def test_second_run_on_a_locked_project_refuses(tmp_path: Path) -> None:
    root = tmp_path / "projects"
    root.mkdir()
    project = Project(tiny_project(root, shots=1))
    holder = subprocess.Popen(
        python("-c", f"import time; from novelcomic.project import Project\nwith Project({str(project.dir)!r}).lock():\n print('held', flush=True); time.sleep(60)"),
        env=subprocess_env({}), stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        env = subprocess_env({"NOVELCOMIC_PROJECTS_DIR": str(root), "PREFECT_HOME": str(tmp_path / "ph")})
        r = subprocess.run(python("-m", "novelcomic", "run", "tiny"), env=env, capture_output=True, text=True, timeout=60)
    finally:
        holder.kill()
        holder.wait()
    assert r.returncode == 1
    assert f"error: project 'tiny' is being processed by pid {holder.pid}; wait for it to finish" in r.stderr
    assert not project.video_path("01").exists()


def test_a_distributed_run_animates_its_shots_on_the_task_workers(tmp_path: Path, prefect_server: dict[str, str]) -> None:
    """Clips, like shot images, are made by the task workers in a distributed run (the flow's
    machine may have no GPU): a test animate backend records the process that made each clip."""
    root = tmp_path / "projects"
    root.mkdir()
    project = Project(tiny_project(root, shots=2))
    cfg = project.config()
    cfg.animate.backend = "stillclip"
    cfg.animate.shots = "all"
    project.save_config(cfg)
    env = subprocess_env({**prefect_server, "NOVELCOMIC_PROJECTS_DIR": str(root)})
    log = tmp_path / "worker.log"
    with open(log, "w") as fh:
        worker = subprocess.Popen(python("-m", "tests.prefect_fixtures", "worker", "--limit", "2"),
                                  env=env, stdout=fh, stderr=subprocess.STDOUT)
    code = ("from tests.prefect_fixtures import register_test_backends; register_test_backends()\n"
            f"from flows.produce import produce; print(produce({str(project.dir)!r}, distributed=True, stall_seconds=30))")
    try:
        _wait_until(lambda: "task worker for" in log.read_text(), 60, "the worker", [worker])
        time.sleep(2)  # it subscribes once it prints
        flow = subprocess.run(python("-c", code), env=env, capture_output=True, text=True, timeout=240)
        assert flow.returncode == 0, flow.stdout[-2000:] + flow.stderr[-2000:]
    finally:
        worker.send_signal(signal.SIGINT)
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()
    clips = project.store.assets("clip")
    assert len(clips) == 2, [c.key for c in clips]
    assert {c.meta_dict().get("pid") for c in clips} == {worker.pid}, "the clips were not made by the task worker"
    assert "animate-shot" in log.read_text()
    assert project.video_path("01").is_file()
