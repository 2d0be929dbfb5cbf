"""Commands that run the pipeline: run, demo."""

from __future__ import annotations

import time
from pathlib import Path

import click

from novelcomic.errors import NovelcomicError
from novelcomic.project import Project, projects_root

DEMO_PROJECT = "lantern-fox"


def run_project(
    project: Project, chapters: str | None, stages: tuple[str, ...], use_prefect: bool, verbose: bool = False
) -> list[Path]:
    """Run the selected stages under the project lock; returns the videos made. ``verbose``: keep
    Prefect's log line for every finished task."""
    from novelcomic import pipeline

    for s in stages:
        if s not in pipeline.STAGES:
            raise NovelcomicError(f"unknown stage {s!r} (stages: {', '.join(pipeline.STAGES)})", field="--stage")
    cfg = project.config()
    selected = pipeline.select_chapters(cfg, chapters)
    stage_list = list(stages) or list(pipeline.STAGES)
    with project.lock():
        removed = pipeline.sweep_partials(project)
        if removed:
            click.echo(f"removed {removed} unfinished temporary files from an interrupted run")
        # bad input refuses the run before it is one: no "failed" row, nothing started
        pipeline.preflight(project, selected, stage_list)
        if use_prefect:
            from novelcomic.prefect_env import configure_prefect, prefect_api

            configure_prefect()
            with prefect_api():  # a dead or silent API refuses the run here, in one line
                videos = _run_recorded(project, selected, stage_list, use_prefect, verbose)
        else:
            videos = _run_recorded(project, selected, stage_list, use_prefect, verbose)
    if "compose" in stage_list and cfg.book and project.store.asset("book", "book") and project.book_path.is_file():
        videos.append(project.book_path)
    return videos


def _run_recorded(project: Project, selected: list[str], stage_list: list[str], use_prefect: bool, verbose: bool) -> list[Path]:
    """The run itself, recorded in the store: completed, failed, or cancelled by a signal."""
    from novelcomic import pipeline, procs

    run_id = project.store.start_run(stage_list, selected)
    try:
        if use_prefect:
            from novelcomic.prefect_env import quiet_task_runs

            from flows import produce as flows

            with quiet_task_runs(not verbose):
                videos = [Path(v) for v in flows.produce(str(project.dir), selected, stage_list)]
        else:
            from novelcomic.review import ReviewedProject

            # the same view of the characters the flows use: review notes and edits applied
            reports = pipeline.produce(ReviewedProject(project.dir), selected, stage_list)
            for r in reports:
                click.echo(r.summary())
                for w in dict.fromkeys(r.warnings):
                    click.echo(f"warning: {w}", err=True)
            videos = [project.video_path(ch) for ch in selected] if "compose" in stage_list else []
    except BaseException as exc:
        if not procs.is_stop(exc):
            project.store.finish_run(run_id, error=str(exc) or type(exc).__name__)
            raise
        stopped = procs.as_interrupted(exc)
        procs.stop(grace=0.5)
        project.store.finish_run(run_id, error=f"stopped by {stopped}", status="cancelled")
        if use_prefect:
            _mark_flow_run_cancelled(f"stopped by {stopped}")
        stopped.summary = _kept_summary(project, run_id)
        raise stopped from None
    project.store.finish_run(run_id)
    return videos


def _kept_summary(project: Project, run_id: int) -> str:
    made = project.store.made_since(run_id)
    names = (("sheet", "character sheet"), ("shot", "shot image"), ("audio", "spoken line"), ("video", "video"))
    parts = [f"{made[k]} {n}{'s' if made[k] != 1 else ''}" for k, n in names if made.get(k)]
    return "this run finished " + (", ".join(parts) if parts else "nothing new") + " (kept)"


def _mark_flow_run_cancelled(message: str) -> None:
    """Mark the run's Prefect flow run Cancelled (Prefect itself marks an interrupted run
    Crashed), with one short try: a dead API is not waited for."""
    import contextlib

    from flows import produce as flows

    if not flows.current_flow_run_id:
        return
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_REQUEST_TIMEOUT, PREFECT_CLIENT_MAX_RETRIES, temporary_settings
    from prefect.states import Cancelled

    with contextlib.suppress(Exception), temporary_settings(updates={PREFECT_API_REQUEST_TIMEOUT: 3, PREFECT_CLIENT_MAX_RETRIES: 0}):
        with get_client(sync_client=True) as client:
            client.set_flow_run_state(flows.current_flow_run_id, Cancelled(message=message), force=True)


@click.command("run")
@click.argument("name")
@click.option("--chapters", default=None, help="Chapters to process: ids or numbers, e.g. 1-3,5 (default: all).")
@click.option("--stage", "stages", multiple=True, type=click.Choice(["plan", "design", "render", "voice", "animate", "compose"]),
              help="Run only this stage (repeatable). Default: all stages.")
@click.option("--no-prefect", is_flag=True, help="Run the plain library pipeline without Prefect.")
@click.option("-v", "--verbose", is_flag=True, help="Show Prefect's line for every finished task too.")
@click.pass_obj
def run(obj: dict, name: str, chapters: str | None, stages: tuple[str, ...], no_prefect: bool, verbose: bool) -> None:
    """Run the pipeline (or some stages) for project NAME. Finished work is skipped."""
    project = Project.open(name, obj["root"])
    t0 = time.monotonic()
    videos = run_project(project, chapters, stages, use_prefect=not no_prefect, verbose=verbose)
    click.echo(f"done in {time.monotonic() - t0:.0f} s")
    for v in videos:
        click.echo(str(v))


@click.command("demo")
@click.option("--no-prefect", is_flag=True, help="Run the plain library pipeline without Prefect.")
@click.option("-v", "--verbose", is_flag=True, help="Show Prefect's line for every finished task too.")
@click.pass_obj
def demo(obj: dict, no_prefect: bool, verbose: bool) -> None:
    """Run the bundled Chinese example project (projects/lantern-fox of the repository, so run it
    from the repository root) end to end and print the videos' paths."""
    root = Path(obj["root"]) if obj["root"] else projects_root()
    if not (root / DEMO_PROJECT / "project.yaml").exists():
        raise NovelcomicError(
            f"the example project is not at {root / DEMO_PROJECT}: run this from the repository root, or pass "
            f"--projects-dir with the repository's projects/ folder"
        )
    project = Project.open(DEMO_PROJECT, root)
    t0 = time.monotonic()
    videos = run_project(project, None, (), use_prefect=not no_prefect, verbose=verbose)
    click.echo(f"demo done in {time.monotonic() - t0:.0f} s; videos:")
    for v in videos:
        click.echo(str(v))


@click.command("plan")
@click.argument("name")
@click.option("--chapters", default=None, help="Chapters to plan (default: all).")
@click.pass_obj
def plan(obj: dict, name: str, chapters: str | None) -> None:
    """Plan project NAME (the same as `run NAME --stage plan --no-prefect`): characters, props,
    locations and storyboards. Files you edited are kept; a .proposed.yaml is written beside them."""
    from novelcomic.pipeline import select_chapters

    project = Project.open(name, obj["root"])
    run_project(project, chapters, ("plan",), use_prefect=False)
    for ch in select_chapters(project.config(), chapters):
        if project.storyboard_path(ch).exists():
            ours = project.store.asset("plan", ch) is not None
            click.echo(str(project.storyboard_path(ch)) + ("" if ours else "  (not written by novelcomic: kept as it is; "
                                                                          "delete it to have the chapter planned again)"))


COMMANDS = [run, demo, plan]
