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
            with prefect_api() as url:  # a dead or silent API refuses the run here, in one line
                videos = _run_recorded(project, selected, stage_list, use_prefect, verbose, api_url=url)
        else:
            videos = _run_recorded(project, selected, stage_list, use_prefect, verbose)
    if "compose" in stage_list and cfg.book and project.store.asset("book", "book") and project.book_path.is_file():
        videos.append(project.book_path)
    return videos


def _run_recorded(project: Project, selected: list[str], stage_list: list[str], use_prefect: bool, verbose: bool,
                  api_url: str | None = None) -> list[Path]:
    """The run itself, recorded in the store: completed, failed, or cancelled by a signal."""
    from novelcomic import pipeline, procs

    run_id = project.store.start_run(stage_list, selected)
    if use_prefect:
        killed = project.store.flow_runs_of(project.store.interrupted)
        if killed:  # runs killed with -9 (nothing could mark them then): Crashed in Prefect too
            _set_flow_run_states(killed, "crashed", "the process was killed before it finished; marked by the next run")
    try:
        if use_prefect:
            from novelcomic.prefect_env import api_watchdog, quiet_task_runs

            from flows import produce as flows

            def lost(reason: str) -> None:
                """The API went away mid-run: Prefect would retry each state change and event for
                minutes. Record it, end the children, one line, out."""
                import logging
                import threading

                logging.disable(logging.CRITICAL)  # every task and event failing after this says the same
                threading.excepthook = lambda args: None
                procs.STOP.set()
                procs.stop(grace=0.5)
                message = (f"lost the Prefect API at {api_url} ({reason}); finished work is kept: run the same "
                           f"command again when it is back, or with --no-prefect")
                project.store.finish_run(run_id, error=message)
                project.thaw_storyboards()
                click.echo(f"error: {message}", err=True)
                procs.exit_now(1)

            with quiet_task_runs(not verbose), api_watchdog(api_url or "", lost):
                videos = [Path(v) for v in flows.produce(str(project.dir), selected, stage_list)]
        else:
            from novelcomic.review import ReviewedProject

            # the same view of the characters the flows use: review notes and edits applied
            reports = pipeline.produce(ReviewedProject(project.dir), selected, stage_list)
            for r in reports:
                if r.stage == "animate" and not (r.made or r.reused or r.warnings):
                    continue  # the animate stage is off: nothing to say
                click.echo(r.summary())
                for w in dict.fromkeys(r.warnings):
                    click.echo(f"warning: {w}", err=True)
            videos = [project.video_path(ch) for ch in selected] if "compose" in stage_list else []
    except BaseException as exc:
        if not procs.is_stop(exc):
            project.store.finish_run(run_id, error=str(exc) or type(exc).__name__)
            lost = _lost_api(exc) if use_prefect else None
            if lost:
                raise NovelcomicError(f"lost the Prefect API during the run ({lost}); finished work is kept: "
                                      f"run the same command again when it is back, or with --no-prefect") from None
            raise
        stopped = procs.as_interrupted(exc)
        procs.stop(grace=0.5)
        project.store.finish_run(run_id, error=f"stopped by {stopped}", status="cancelled")
        if use_prefect:
            from flows import produce as flows

            if flows.current_flow_run_id:
                _set_flow_run_states([flows.current_flow_run_id], "cancelled", f"stopped by {stopped}")
        stopped.summary = _kept_summary(project, run_id)
        raise stopped from None
    finally:
        project.thaw_storyboards()  # a stopped or failed run leaves no frozen storyboard behind
    project.store.finish_run(run_id)
    return videos


def _lost_api(exc: BaseException) -> str | None:
    """One line for an exception that means the Prefect API went away (connection refused or
    reset, timeouts, 5xx after Prefect's retries), else None."""
    import httpx

    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (httpx.TransportError, httpx.HTTPStatusError)) or type(exc).__name__ == "PrefectHTTPStatusError":
            url = getattr(getattr(exc, "request", None), "url", None)
            return f"{type(exc).__name__}" + (f" at {url}" if url else "") + (f": {str(exc).splitlines()[0]}" if str(exc) else "")
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return None


def _kept_summary(project: Project, run_id: int) -> str:
    made = project.store.made_since(run_id)
    names = (("sheet", "character sheet"), ("shot", "shot image"), ("audio", "spoken line"), ("video", "video"))
    parts = [f"{made[k]} {n}{'s' if made[k] != 1 else ''}" for k, n in names if made.get(k)]
    return "this run finished " + (", ".join(parts) if parts else "nothing new") + " (kept)"


def _set_flow_run_states(flow_run_ids: list[str], state: str, message: str) -> None:
    """Set Prefect flow runs Cancelled or Crashed (Prefect itself marks an interrupted run
    Crashed, and a killed one not at all), with one short try each: a dead API is not waited for."""
    import contextlib

    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_REQUEST_TIMEOUT, PREFECT_CLIENT_MAX_RETRIES, temporary_settings
    from prefect.states import Cancelled, Crashed

    make = Cancelled if state == "cancelled" else Crashed
    with contextlib.suppress(Exception), temporary_settings(updates={PREFECT_API_REQUEST_TIMEOUT: 3, PREFECT_CLIENT_MAX_RETRIES: 0}):
        with get_client(sync_client=True) as client:
            for flow_run_id in flow_run_ids:
                with contextlib.suppress(Exception):
                    run = client.read_flow_run(flow_run_id)
                    if state == "cancelled" or run.state is None or not run.state.is_final():  # Crashed → Cancelled
                        client.set_flow_run_state(flow_run_id, make(message=message), force=True)


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
