"""Prefect flows: ``produce`` (all stages for the selected chapters) and one flow per stage.

Thin over :mod:`novelcomic.pipeline`: every task body is one library call, and tasks take the
project *path* (a string) so that they run in other threads, processes or task workers that share
the project directory. Run them with ``novelcomic run`` (ephemeral Prefect), ``novelcomic serve``
(deployments in the Prefect UI) or ``prefect deploy`` with ``prefect.yaml``.

What makes a run safe to kill and re-run:

- our asset records (inputs hash + content hash) skip every finished output;
- Prefect's task cache (persisted results in ``<project>/.novelcomic/prefect-results``) shows
  those skips as ``Cached`` runs, keyed on the same inputs (:func:`shot_cache_key`);
- each flow holds the project's lock, so two runs on one project cannot interleave.

Scale-out: with ``distributed=True`` (or ``NOVELCOMIC_DISTRIBUTED=1``) render and voice tasks are
sent with ``.delay()`` to task workers (``novelcomic worker``) instead of local threads; a shot
whose worker disappears is sent again after ``stall_seconds`` without progress.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger
from prefect.task_runners import ThreadPoolTaskRunner

from novelcomic import artifacts, pipeline, procs, review
from novelcomic.errors import NovelcomicError, ProjectLockedError
from novelcomic.fsutil import hash_inputs
from novelcomic.project import Project

_workers = max(1, min(4, os.cpu_count() or 1))
#: The id of the ``produce`` flow run in progress in this process (``novelcomic run`` marks it
#: cancelled after a stop signal).
current_flow_run_id: str | None = None
RESULTS_DIR = "prefect-results"


# --------------------------------------------------------------------------- projects and locks


def open_project(project: str, overrides: dict[str, Any] | None = None) -> review.ReviewedProject:
    """A project by name (under ``$NOVELCOMIC_PROJECTS_DIR``) or path, with per-run overrides."""
    p = Project.open(project)
    return review.ReviewedProject(p.dir, overrides=overrides)


def run_overrides(style: list[str] | None = None, seed: int | None = None) -> dict[str, Any]:
    return {k: v for k, v in (("style", style), ("seed", seed)) if v is not None}


@contextlib.contextmanager
def project_lock(project: Project, wait: bool = False) -> Iterator[bool]:
    """Hold the project's lock for a flow; yields True if this call took it.

    Re-entrant for the process that already holds it (``novelcomic run`` takes the lock and then
    calls :func:`produce` in the same process; flock would otherwise refuse our own second open).
    """
    try:
        with project.lock(wait=False):
            yield True
            return
    except ProjectLockedError:
        holder = (project.state_dir / "lock").read_text().strip()
        if holder == f"pid {os.getpid()}":
            yield False
            return
        if not wait:
            raise
    with project.lock(wait=True):
        yield True


def _chapters(project: Project, chapters: str | int | list[str] | None) -> list[str]:
    """Chapter ids from a spec ("1-3,5"), a number (`prefect deployment run -p chapters=1` sends
    an int), or a list of ids or numbers."""
    if isinstance(chapters, list):
        return pipeline.select_chapters(project.config(), ",".join(map(str, chapters)) if chapters else None)
    return pipeline.select_chapters(project.config(), None if chapters is None else str(chapters))


# --------------------------------------------------------------------------- cache keys


def _render_inputs(project: Project, chapter: str, shot_id: str) -> list[tuple[str, str, str]]:
    """(kind, key, inputs hash) of a shot's image, hashed by the pipeline's own recipe."""
    return [("shot", f"{chapter}/{shot_id}", pipeline.shot_inputs_hash(project, chapter, shot_id))]


def _voice_inputs(project: Project, chapter: str, shot_id: str) -> list[tuple[str, str, str]]:
    """(kind, key, inputs hash) of each line of a shot, hashed by the pipeline's own recipe."""
    return [("audio", key, inputs) for key, inputs in pipeline.line_inputs_hashes(project, chapter, shot_id)]


def _animate_inputs(project: Project, chapter: str, shot_id: str) -> list[tuple[str, str, str]] | None:
    from novelcomic.animate import stage

    ctx = stage.context(project, chapter)
    found = stage.clip_inputs(project, chapter, shot_id, ctx) if shot_id in ctx["chosen"] else None
    return [("clip", f"{chapter}/{shot_id}", found[0])] if found else None


def shot_cache_key(context: Any, parameters: dict[str, Any]) -> str | None:
    """Prefect cache key of a render/voice task, from the same input hashes the pipeline uses.

    A key is given only while every output of the shot is fresh by the pipeline's own rule
    (recorded from exactly these inputs, file intact); then it is the hash of those records, so
    a cached result always names the files that are on disk. Otherwise None: no caching, the task
    runs and the pipeline makes what is missing.
    """
    project = review.ReviewedProject(parameters["project_dir"], overrides=parameters.get("overrides"))
    chapter, shot_id = parameters["chapter"], parameters["shot_id"]
    kind = getattr(getattr(context, "task", None), "name", "render-shot")
    inputs_of = {"render-shot": _render_inputs, "animate-shot": _animate_inputs}.get(kind, _voice_inputs)
    wanted = inputs_of(project, chapter, shot_id)
    if wanted is None:  # not cacheable now (an animate task for a shot that gets no clip)
        return None
    records = []
    for k, name, inputs in wanted:
        rec = project.store.fresh(k, name, inputs)
        if rec is None:
            return None
        records.append((k, name, rec.inputs_hash, rec.content_hash))
    return f"{kind}-" + hash_inputs(str(project.dir), records)


# --------------------------------------------------------------------------- tasks


def _log(report: pipeline.StageReport) -> pipeline.StageReport:
    logger = get_run_logger()
    logger.info(report.summary())
    for w in dict.fromkeys(report.warnings):
        logger.warning(w)
    return report


_nocache = dict(cache_policy=NO_CACHE, persist_result=False)


@task(name="plan", retries=2, retry_delay_seconds=[2, 10], **_nocache)
def plan_task(project_dir: str, chapters: list[str], overrides: dict | None = None) -> pipeline.StageReport:
    return _log(pipeline.plan(review.ReviewedProject(project_dir, overrides=overrides), chapters))


@task(name="design", tags=["gpu"], **_nocache)
def design_task(
    project_dir: str, overrides: dict | None = None, chapters: list[str] | None = None
) -> pipeline.StageReport:
    """Sheets for the cast of ``chapters`` (None: the run's chapters, else every chapter)."""
    return _log(pipeline.design(review.ReviewedProject(project_dir, overrides=overrides), chapters))


@task(name="render-shot", tags=["render", "gpu"], cache_key_fn=shot_cache_key, persist_result=True)
def render_shot_task(project_dir: str, chapter: str, shot_id: str, overrides: dict | None = None) -> tuple[str, bool]:
    project = review.ReviewedProject(project_dir, overrides=overrides)
    path, made = pipeline.render_shot(project, chapter, shot_id)
    if made:
        for w in pipeline.shot_warnings(project, chapter, shot_id):
            get_run_logger().warning(w)
    return str(path), made


@task(name="voice-shot", tags=["tts"], retries=2, retry_delay_seconds=[1, 5], cache_key_fn=shot_cache_key, persist_result=True)
def voice_shot_task(project_dir: str, chapter: str, shot_id: str, overrides: dict | None = None) -> tuple[int, int]:
    r = pipeline.voice_shot(review.ReviewedProject(project_dir, overrides=overrides), chapter, shot_id)
    for w in r.warnings:
        get_run_logger().warning(w)
    return r.made, r.reused


@task(name="animate-shot", tags=["animate", "gpu"], cache_key_fn=shot_cache_key, persist_result=True)
def animate_shot_task(project_dir: str, chapter: str, shot_id: str, overrides: dict | None = None) -> tuple[str, bool]:
    """One shot's clip (a shot animate does not choose gets none); a failed clip is a warning."""
    path, made, warnings = pipeline.animate_shot(review.ReviewedProject(project_dir, overrides=overrides), chapter, shot_id)
    for w in warnings:
        get_run_logger().warning(w)
    return (str(path) if path else ""), made


@task(name="compose", **_nocache)
def compose_task(project_dir: str, chapter: str, overrides: dict | None = None) -> pipeline.StageReport:
    return _log(pipeline.compose(review.ReviewedProject(project_dir, overrides=overrides), chapter))


@task(name="book", **_nocache)
def book_task(project_dir: str, overrides: dict | None = None) -> pipeline.StageReport:
    return _log(pipeline.book(review.ReviewedProject(project_dir, overrides=overrides)))


# --------------------------------------------------------------------------- stage steps (inside a flow run)


def _distributed(flag: bool | None) -> bool:
    return bool(flag) or os.environ.get("NOVELCOMIC_DISTRIBUTED", "") not in ("", "0", "false")


def _per_shot(project: review.ReviewedProject, chapter: str, stage: str, tsk: Any, distributed: bool, stall_seconds: float) -> list[Any]:
    """Run ``tsk`` for every shot of the chapter (threads, or task workers) with a progress artifact."""
    shots = pipeline.shot_ids(project, chapter)
    progress = artifacts.Progress.start(project, chapter, stage, len(shots))
    args = (str(project.dir), chapter)
    if not distributed:
        from prefect.futures import as_completed

        local = tsk.with_options(result_storage=project.state_dir / RESULTS_DIR)
        futures = {local.submit(*args, sid, project.overrides): sid for sid in shots}
        results = {}
        for fut in as_completed(list(futures)):
            results[futures[fut]] = fut.result()
            progress.advance()
        return [results[s] for s in shots]
    return _distributed_run(project, tsk, args, shots, progress, stall_seconds)


def _distributed_run(project: review.ReviewedProject, tsk: Any, args: tuple, shots: list[str], progress: artifacts.Progress, stall_seconds: float, rounds: int = 5) -> list[Any]:
    """Send each shot to the task workers (``.delay()``) and follow their task runs through the
    API. Shots whose runs make no progress for ``stall_seconds`` (their worker died: a task a
    worker took is not handed out again) are marked crashed and sent again; so are failed ones."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterId
    from prefect.states import Crashed

    logger = get_run_logger()
    done: set[str] = set()
    with get_client(sync_client=True) as client:
        for _ in range(rounds):
            pending = {tsk.delay(*args, sid, project.overrides).task_run_id: sid for sid in shots if sid not in done}
            last = time.monotonic()
            while pending:
                time.sleep(1)
                runs = client.read_task_runs(task_run_filter=TaskRunFilter(id=TaskRunFilterId(any_=list(pending))))
                for tr in runs:
                    if tr.state is None or not tr.state.is_final():
                        continue
                    sid = pending.pop(tr.id)
                    if tr.state.is_completed():
                        done.add(sid)
                        progress.advance()
                        last = time.monotonic()
                    else:
                        logger.warning("shot %s ended %s on a worker: %s", sid, tr.state.name, tr.state.message)
                if pending and time.monotonic() - last > stall_seconds:
                    logger.warning("no progress for %.0f s: sending %s again", stall_seconds, ", ".join(pending.values()))
                    for trid in pending:
                        with contextlib.suppress(Exception):
                            client.set_task_run_state(trid, Crashed(message="its task worker stopped answering; sent again"), force=True)
                    break
            if len(done) == len(shots):
                break
    missing = [s for s in shots if s not in done]
    if missing:
        raise NovelcomicError(f"task workers did not finish shots {', '.join(missing)} after {rounds} rounds")
    return [None for _ in shots]  # the outputs are files recorded in the store


def _plan(project: review.ReviewedProject, chapters: list[str]) -> None:
    plan_task(str(project.dir), chapters, project.overrides)
    for ch in chapters:
        if project.storyboard_path(ch).exists():
            artifacts.storyboard_table(project, ch)


def _design(
    project: review.ReviewedProject, review_timeout: int, poll_seconds: int, chapters: list[str] | None = None
) -> None:
    design_task(str(project.dir), project.overrides, chapters)
    artifacts.character_sheets(project)
    if not project.config().review.characters:
        approved = review.auto_approve_sheets(project)
        if approved:
            get_run_logger().info("review.characters is off: sheets auto-approved (%s)", ", ".join(approved))
        return
    from prefect.flow_runs import pause_flow_run

    SheetReview = review.sheet_review_model()
    round_ = 0
    problem = ""
    while pending := review.sheets_to_review(project):
        round_ += 1
        ids = [c.id for c in pending]
        desc = (
            f"{problem}Review the character sheets of **{project.name}** (artifact `{artifacts.key(project, 'characters')}`). "
            f"For each of {', '.join(ids)}: `approve`, `regenerate` with a note, or `edit` the appearance."
        )
        model = SheetReview.with_initial_data(description=desc, decisions={i: review.CharacterDecision() for i in ids})
        answer = pause_flow_run(wait_for_input=model, timeout=review_timeout, poll_interval=poll_seconds, key=f"sheets-{round_}")
        try:
            outcome = review.apply_sheet_review(project, ids, answer.decisions)
        except NovelcomicError as exc:  # a typo in the answer: ask again, saying what was wrong
            get_run_logger().warning("the review answer was not used: %s", exc)
            problem = f"**Your last answer was not used: {exc}.** "
            continue
        problem = ""
        for p in outcome.proposals:
            get_run_logger().warning("characters.yaml was edited by you; the review edit is in %s and used for generation", p)
        if outcome.done:
            break
        design_task(str(project.dir), project.overrides, chapters)
        artifacts.character_sheets(project)


def _publish_gate(project: review.ReviewedProject, chapter: str, review_timeout: int, poll_seconds: int) -> bool:
    if not project.config().review.publish:
        review.record_publish(project, chapter, True, auto=True)
        return True
    subject = review.video_subject(project, chapter)
    if subject and review.is_approved(project, subject):
        return True
    from prefect.flow_runs import pause_flow_run

    model = review.publish_review_model().with_initial_data(
        description=f"Publish chapter {chapter} of **{project.name}**? Video: `{project.video_path(chapter)}`", approve=True,
    )
    answer = pause_flow_run(wait_for_input=model, timeout=review_timeout, poll_interval=poll_seconds, key=f"publish-{chapter}")
    review.record_publish(project, chapter, answer.approve, answer.note)
    return bool(answer.approve)


def _stage(project: Project, stage: str, chapter: str, fn: Any, *args: Any) -> Any:
    project.store.set_stage(stage, "running", chapter)
    try:
        out = fn(*args)
    except BaseException as exc:
        if procs.is_stop(exc):
            project.store.set_stage(stage, "cancelled", chapter)
        else:
            project.store.set_stage(stage, "failed", chapter, str(exc) or type(exc).__name__)
        raise
    project.store.set_stage(stage, "done", chapter)
    return out


def _render(project: review.ReviewedProject, chapter: str, distributed: bool, stall: float) -> None:
    results = _per_shot(project, chapter, "render", render_shot_task, distributed, stall)
    made = sum(1 for r in results if r and r[1])
    get_run_logger().info("render %s: %d shots, %d made here", chapter, len(results), made)
    for shot_id in sorted(pipeline.blocked_shots(project, chapter)):
        get_run_logger().warning("shot %s of chapter %s is blocked by the safety filter and left out", shot_id, chapter)
    pipeline.write_qa_report(project, chapter)
    artifacts.qa_report(project, chapter)


def _animate(project: review.ReviewedProject, chapter: str, distributed: bool, stall: float) -> None:
    """A task per chosen shot, like render (none when the animate stage is off)."""
    from novelcomic.animate.stage import context

    chosen = context(project, chapter)["chosen"]
    if not chosen:
        return
    if distributed:  # on the task workers, like render (a GPU machine animates what it can)
        progress = artifacts.Progress.start(project, chapter, "animate", len(chosen))
        _distributed_run(project, animate_shot_task, (str(project.dir), chapter), list(chosen), progress, stall)
        get_run_logger().info("animate %s: %d clips chosen, made on the task workers", chapter, len(chosen))
        return
    local = animate_shot_task.with_options(result_storage=project.state_dir / RESULTS_DIR)
    futures = [local.submit(str(project.dir), chapter, sid, project.overrides) for sid in chosen]
    made = sum(1 for f in futures if (r := f.result()) and r[1])
    get_run_logger().info("animate %s: %d clips chosen, %d made", chapter, len(chosen), made)


def _voice(project: review.ReviewedProject, chapter: str, distributed: bool, stall: float) -> None:
    results = _per_shot(project, chapter, "voice", voice_shot_task, distributed, stall)
    get_run_logger().info("voice %s: %d lines made here", chapter, sum(r[0] for r in results if r))


@contextlib.contextmanager
def _run_record(project: Project, took_lock: bool, stages: list[str], chapters: list[str]) -> Iterator[None]:
    """Record a run in the store (``novelcomic run`` records its own when it holds the lock)."""
    if not took_lock:
        yield
        return
    pipeline.sweep_partials(project)
    run_id = project.store.start_run(stages, chapters)
    try:
        yield
    except BaseException as exc:
        if procs.is_stop(exc):
            project.store.finish_run(run_id, error=f"stopped by {procs.as_interrupted(exc)}", status="cancelled")
        else:
            project.store.finish_run(run_id, error=str(exc) or type(exc).__name__)
        raise
    project.store.finish_run(run_id)


# --------------------------------------------------------------------------- flows


@flow(name="produce", task_runner=ThreadPoolTaskRunner(max_workers=_workers))
def produce(
    project: str,
    chapters: list[str] | str | int | None = None,
    stages: list[str] | None = None,
    style: list[str] | None = None,
    seed: int | None = None,
    wait: bool = False,
    distributed: bool = False,
    review_timeout: int = 24 * 3600,
    review_poll_seconds: int = 5,
    stall_seconds: float = 900,
) -> list[str]:
    """All selected stages for the selected chapters; returns the paths of the published videos.

    ``project`` is a name (under ``$NOVELCOMIC_PROJECTS_DIR``) or a path; ``chapters`` ids or a
    spec like ``"1-3,5"``; ``style``/``seed`` override project.yaml for this run only; ``wait``
    waits for another run on the project to finish instead of refusing.
    """
    global current_flow_run_id
    from prefect.runtime import flow_run

    current_flow_run_id = flow_run.get_id()
    stages = list(stages or pipeline.STAGES)
    for s in stages:
        if s not in pipeline.STAGES:
            raise NovelcomicError(f"unknown stage {s!r} (stages: {', '.join(pipeline.STAGES)})", field="stages")
    proj = open_project(project, run_overrides(style, seed))
    selected = _chapters(proj, chapters)
    dist = _distributed(distributed)
    with procs.chained_sigterm(), project_lock(proj, wait) as took, _run_record(proj, took, stages, selected):
        if current_flow_run_id:
            proj.store.link_flow_run(current_flow_run_id)  # a run killed with -9 is marked in Prefect by the next one
        here = [s for s in stages if not (dist and s in ("render", "voice", "animate"))]  # workers bring their own backends
        pipeline.preflight(proj, selected, stages, backends_here=here)
        proj.refresh_schemas()
        if "plan" in stages:
            _plan(proj, selected)
        if "design" in stages:
            _design(proj, review_timeout, review_poll_seconds, selected)
        published: list[str] = []
        held: list[str] = []
        later = any(s in stages for s in ("render", "voice", "animate", "compose"))
        proj.thaw_storyboards()
        for ch in selected:
            if later and not proj.storyboard_path(ch).exists():
                # the plan could only be proposed (see its warning)
                get_run_logger().warning(pipeline.unplanned_message(proj, ch))
                continue
            if later:
                proj.freeze_storyboard(ch)  # every task of this chapter reads this version, whole
            if "render" in stages:
                _stage(proj, "render", ch, _render, proj, ch, dist, stall_seconds)
            if "voice" in stages:
                _stage(proj, "voice", ch, _voice, proj, ch, dist, stall_seconds)
            if "animate" in stages:
                _stage(proj, "animate", ch, _animate, proj, ch, dist, stall_seconds)
            if "compose" in stages:
                _stage(proj, "compose", ch, compose_task, str(proj.dir), ch, proj.overrides)
                if _publish_gate(proj, ch, review_timeout, review_poll_seconds):
                    published.append(str(proj.video_path(ch)))
                else:
                    held.append(ch)
            if later and proj.storyboard_changed_since_frozen(ch):
                get_run_logger().warning(pipeline.edited_during_run_message(proj, ch))
        proj.thaw_storyboards()
        if "compose" in stages:
            if proj.config().book:
                book_task(str(proj.dir), proj.overrides)
            artifacts.videos(proj, [Path(v) for v in published], held)
    return published


@flow(name="plan")
def plan_flow(project: str, chapters: list[str] | str | int | None = None, wait: bool = False) -> None:
    """Plan the chapters (characters, props, locations and storyboards)."""
    proj = open_project(project)
    selected = _chapters(proj, chapters)
    with project_lock(proj, wait):
        _plan(proj, selected)


@flow(name="design")
def design_flow(
    project: str, style: list[str] | None = None, seed: int | None = None, wait: bool = False,
    review_timeout: int = 24 * 3600, review_poll_seconds: int = 5,
) -> None:
    """Character sheets, with the review gate when ``review.characters`` is on."""
    proj = open_project(project, run_overrides(style, seed))
    with project_lock(proj, wait):
        _design(proj, review_timeout, review_poll_seconds)


@flow(name="render", task_runner=ThreadPoolTaskRunner(max_workers=_workers))
def render_flow(
    project: str, chapters: list[str] | str | int | None = None, style: list[str] | None = None, seed: int | None = None,
    wait: bool = False, distributed: bool = False, stall_seconds: float = 900,
) -> None:
    """Shot images of the selected chapters."""
    proj = open_project(project, run_overrides(style, seed))
    with project_lock(proj, wait):
        for ch in _chapters(proj, chapters):
            _stage(proj, "render", ch, _render, proj, ch, _distributed(distributed), stall_seconds)


@flow(name="voice", task_runner=ThreadPoolTaskRunner(max_workers=_workers))
def voice_flow(
    project: str, chapters: list[str] | str | int | None = None, wait: bool = False, distributed: bool = False, stall_seconds: float = 900,
) -> None:
    """Spoken lines of the selected chapters."""
    proj = open_project(project)
    with project_lock(proj, wait):
        for ch in _chapters(proj, chapters):
            _stage(proj, "voice", ch, _voice, proj, ch, _distributed(distributed), stall_seconds)


@flow(name="compose")
def compose_flow(project: str, chapters: list[str] | str | int | None = None, wait: bool = False) -> list[str]:
    """Videos of the selected chapters (from rendered shots and spoken lines)."""
    proj = open_project(project)
    out = []
    with project_lock(proj, wait):
        for ch in _chapters(proj, chapters):
            _stage(proj, "compose", ch, compose_task, str(proj.dir), ch, proj.overrides)
            out.append(str(proj.video_path(ch)))
        if proj.config().book:
            book_task(str(proj.dir), proj.overrides)
    return out


FLOWS = {"produce": produce, "plan": plan_flow, "design": design_flow, "render": render_flow, "voice": voice_flow, "compose": compose_flow}
