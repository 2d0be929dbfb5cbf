"""Prefect flows: one per stage and ``produce`` (all stages for the selected chapters).

Run them with ``novelcomic run`` (ephemeral Prefect, no server) or from the Prefect UI.
"""

from __future__ import annotations

import os

from prefect import flow, task, unmapped
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger
from prefect.task_runners import ThreadPoolTaskRunner

from novelcomic import pipeline
from novelcomic.project import Project

# Our own asset records decide what is up to date (see novelcomic.pipeline), so Prefect's task
# cache is off here; retries cover flaky backends (TTS services, LLM servers).
_task = dict(cache_policy=NO_CACHE, persist_result=False)
_workers = max(1, min(4, os.cpu_count() or 1))


def _log(report: pipeline.StageReport) -> pipeline.StageReport:
    logger = get_run_logger()
    logger.info(report.summary())
    for w in dict.fromkeys(report.warnings):
        logger.warning(w)
    return report


@task(name="plan", retries=2, retry_delay_seconds=[2, 10], **_task)
def plan_task(project_dir: str, chapters: list[str]) -> pipeline.StageReport:
    return _log(pipeline.plan(Project(project_dir), chapters))


@task(name="design", **_task)
def design_task(project_dir: str) -> pipeline.StageReport:
    return _log(pipeline.design(Project(project_dir)))


@task(name="render-shot", tags=["render"], **_task)
def render_shot_task(project_dir: str, chapter: str, shot_id: str) -> tuple[str, bool]:
    path, made = pipeline.render_shot(Project(project_dir), chapter, shot_id)
    return str(path), made


@task(name="voice-shot", tags=["tts"], retries=2, retry_delay_seconds=[1, 5], **_task)
def voice_shot_task(project_dir: str, chapter: str, shot_id: str) -> pipeline.StageReport:
    return pipeline.voice_shot(Project(project_dir), chapter, shot_id)


@task(name="compose", **_task)
def compose_task(project_dir: str, chapter: str) -> pipeline.StageReport:
    return _log(pipeline.compose(Project(project_dir), chapter))


def _shots(project_dir: str, chapter: str) -> list[str]:
    return pipeline.shot_ids(Project(project_dir), chapter)


@flow(name="plan", log_prints=True)
def plan_flow(project_dir: str, chapters: list[str] | None = None) -> pipeline.StageReport:
    project = Project(project_dir)
    return plan_task(project_dir, chapters or pipeline.select_chapters(project.config(), None))


@flow(name="design")
def design_flow(project_dir: str) -> pipeline.StageReport:
    return design_task(project_dir)


@flow(name="render", task_runner=ThreadPoolTaskRunner(max_workers=_workers))
def render_flow(project_dir: str, chapter: str) -> list[str]:
    futures = render_shot_task.map(unmapped(project_dir), unmapped(chapter), _shots(project_dir, chapter))
    results = futures.result()
    made = sum(1 for _, m in results if m)
    get_run_logger().info("render %s: %d made, %d up to date", chapter, made, len(results) - made)
    return [p for p, _ in results]


@flow(name="voice", task_runner=ThreadPoolTaskRunner(max_workers=_workers))
def voice_flow(project_dir: str, chapter: str) -> pipeline.StageReport:
    futures = voice_shot_task.map(unmapped(project_dir), unmapped(chapter), _shots(project_dir, chapter))
    total = pipeline.StageReport("voice", chapter)
    for r in futures.result():
        total.made += r.made
        total.reused += r.reused
        total.warnings += r.warnings
    return _log(total)


@flow(name="compose")
def compose_flow(project_dir: str, chapter: str) -> pipeline.StageReport:
    return compose_task(project_dir, chapter)


@flow(name="produce")
def produce(project_dir: str, chapters: list[str] | None = None, stages: list[str] | None = None) -> list[str]:
    """All selected stages for the selected chapters; returns the paths of the finished videos."""
    project = Project(project_dir)
    stages = list(stages or pipeline.STAGES)
    chapters = chapters or pipeline.select_chapters(project.config(), None)
    pipeline.preflight(project, chapters)
    if "plan" in stages:
        plan_flow(project_dir, chapters)
    if "design" in stages:
        design_flow(project_dir)
    videos: list[str] = []
    for ch in chapters:
        for stage, sub in (("render", render_flow), ("voice", voice_flow), ("compose", compose_flow)):
            if stage not in stages:
                continue
            project.store.set_stage(stage, "running", ch)
            try:
                sub(project_dir, ch)
            except BaseException as exc:
                project.store.set_stage(stage, "failed", ch, str(exc))
                raise
            project.store.set_stage(stage, "done", ch)
        if "compose" in stages:
            videos.append(str(project.video_path(ch)))
    return videos
