"""One shot's clip, the way the render stage makes one shot's image.

A clip is cached by its inputs (:func:`clip_inputs`: the still, the unlettered still, the prompt,
the seed, how long the shot lasts, the backend and the options that change its pixels), so an
edit of one shot re-animates only that shot. The still without lettering
(``render/<ch>/<shot>.plain.png``, saved by the render stage while animate is on) is what the model
animates; the lettering is cut out of the lettered still into ``<shot>.letters.png`` and laid over
the clip's frames by the composer. A blocked prompt or a failed clip is a warning, never an error:
the shot keeps its still and camera move, and the next run tries again.

Files: ``render/<ch>/<shot>.clip.mp4`` (record kind ``clip``, key ``<ch>/<shot>``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from novelcomic import procs
from novelcomic.animate.base import NEGATIVE, ClipRequest, clip_prompt
from novelcomic.animate.select import animate_on, chosen_shots
from novelcomic.errors import NovelcomicError
from novelcomic.fsutil import atomic_path, hash_inputs
from novelcomic.models import ProjectConfig

log = logging.getLogger("novelcomic")

RECIPE = "clip-1"
# options that change how a backend is reached or how much memory it takes, not its pixels
TRANSPORT_OPTIONS = {"device", "cpu_offload", "vae_tiling", "vae_slicing", "decode_chunk_size", "base_url", "timeout",
                     "retries", "api_key_env", "concurrency", "poll_interval", "attention_slicing"}
LEAD_IN, GAP, TAIL = 0.3, 0.25, 0.45  # compose.timeline.build_timeline's defaults


@dataclass(frozen=True)
class ShotPaths:
    still: Path
    plain: Path
    clip: Path
    letters: Path


def paths(project: Any, chapter: str, shot_id: str) -> ShotPaths:
    still = project.shot_image_path(chapter, shot_id)
    return ShotPaths(still, still.with_suffix(".plain.png"), still.with_suffix(".clip.mp4"), still.with_suffix(".letters.png"))


def save_plain(cfg: ProjectConfig, still: Path, plain: Any) -> None:
    """Called by the render stage after it saved a still: keep the still before lettering while
    the animate stage is on (the model animates it), else remove an old one (it would be stale)."""
    target = still.with_suffix(".plain.png")
    if plain is not None and animate_on(cfg):
        with atomic_path(target) as tmp:
            plain.save(tmp, format="PNG")
    else:
        target.unlink(missing_ok=True)


def context(project: Any, chapter: str) -> dict[str, Any]:
    from novelcomic.pipeline import blocked_shots

    cfg = project.config()
    sb = project.storyboard(chapter)
    return {
        "cfg": cfg, "storyboard": sb, "characters": project.characters().by_id(),
        "chosen": chosen_shots(cfg.animate, sb, blocked_shots(project, chapter)),
    }


def shot_seconds(project: Any, chapter: str, shot: Any, fps: int) -> float:
    """How long the shot lasts in the video (the timeline's rule), from its lines' recorded audio;
    a line not voiced yet counts by its length (so a clip can be made before the voices)."""
    from novelcomic.compose.timeline import shot_frames
    from novelcomic.pipeline import line_key

    class _Line:
        def __init__(self, duration: float) -> None:
            self.duration = duration

    lines = []
    for i, line in enumerate(shot.lines):
        rec = project.store.asset("audio", line_key(chapter, shot.id, i))
        duration = rec.meta_dict().get("duration") if rec else None
        lines.append(_Line(float(duration) if duration is not None else 0.5 + 0.2 * len(line.text)))
    return shot_frames(lines, shot.duration_hint, fps, lead_in=LEAD_IN, gap=GAP, tail=TAIL) / fps  # type: ignore[arg-type]


def _prompt(project: Any, chapter: str, scene: Any, shot: Any, ctx: dict) -> tuple[str, str]:
    """The render stage's prompt for the shot when it wrote one (diffusion backends), else one from
    the shot's own words; with the mood's motion words either way."""
    still = project.shot_image_path(chapter, shot.id)
    base, negative = shot.image_prompt, shot.negative_prompt
    cached = still.with_suffix(".prompt.json")
    if cached.is_file():
        try:
            data = json.loads(cached.read_text(encoding="utf-8"))
            base, negative = data.get("prompt") or base, data.get("negative") or negative
        except (OSError, ValueError):
            pass
    if not base:
        base = shot.source[:200] or " ".join(ln.text for ln in shot.lines)[:200]
    chars = ctx["characters"]
    people = [f"{chars[c].name} ({chars[c].appearance})" if chars[c].appearance else chars[c].name
              for c in shot.characters if c in chars]
    mood = shot.mood or scene.mood
    return clip_prompt(base, mood, people), ", ".join(p for p in (negative, NEGATIVE) if p)


def clip_inputs(project: Any, chapter: str, shot_id: str, ctx: dict) -> tuple[str, ClipRequest] | None:
    """(inputs hash, request) of a shot's clip; None while the shot has no image."""
    from novelcomic.pipeline import shot_seed

    cfg: ProjectConfig = ctx["cfg"]
    scene, shot = next((sc, sh) for sc, sh in ctx["storyboard"].shots() if sh.id == shot_id)
    rec = project.store.asset("shot", f"{chapter}/{shot_id}")
    p = paths(project, chapter, shot_id)
    if rec is None or not p.still.is_file():
        return None
    from novelcomic.fsutil import sha256_file

    plain_hash = sha256_file(p.plain) if p.plain.is_file() else None
    prompt, negative = _prompt(project, chapter, scene, shot, ctx)
    seed = shot_seed(cfg, chapter, shot_id, shot.seed)
    seconds = shot_seconds(project, chapter, shot, cfg.fps)
    options = {k: v for k, v in cfg.animate.options.items() if k not in TRANSPORT_OPTIONS}
    w, h = cfg.size
    inputs = hash_inputs(RECIPE, rec.content_hash, plain_hash, prompt, negative, seed, round(seconds * 4) / 4,
                         cfg.animate.backend, options, w, h, cfg.lettering)
    image = p.plain if plain_hash else p.still
    request = ClipRequest(chapter, shot_id, image, prompt, negative, seed, seconds, w, h, shot.mood or scene.mood)
    return inputs, request


def animate_shot(project: Any, chapter: str, shot_id: str, *, _ctx: dict | None = None) -> tuple[Path | None, bool, list[str]]:
    """Make one shot's clip unless it is up to date; returns (clip or None, made, warnings). A shot
    that is not chosen (see :mod:`novelcomic.animate.select`) gets none and no warning."""
    procs.check_stop()
    ctx = _ctx or context(project, chapter)
    cfg: ProjectConfig = ctx["cfg"]
    if shot_id not in ctx["chosen"]:
        return None, False, []
    found = clip_inputs(project, chapter, shot_id, ctx)
    if found is None:
        return None, False, [f"shot {shot_id} of chapter {chapter} has no image: run the render stage before animate"]
    inputs, request = found
    key = f"{chapter}/{shot_id}"
    p = paths(project, chapter, shot_id)
    if project.store.fresh("clip", key, inputs):
        return p.clip, False, []
    keeps = f"shot {shot_id} of chapter {chapter} keeps its still and camera move"
    if cfg.safety.enabled:
        from novelcomic.render.safety import check_texts

        verdict = check_texts([request.prompt], cfg.safety)
        if verdict.blocked:
            return None, False, [f"the clip of shot {shot_id} of chapter {chapter} was blocked by the safety filter "
                                 f"({verdict.category}: {verdict.term!r}); {keeps}"]
    warnings = []
    if cfg.lettering and request.image == p.still and _shot(ctx, shot_id).lines:
        warnings.append(f"shot {shot_id} of chapter {chapter} has no unlettered still (it was rendered while animate was "
                        f"off): its bubbles are animated with it; re-render it (delete {project.rel(p.still)}) for a clean clip")
    if "backend" not in ctx:
        from novelcomic.registry import animators

        ctx["backend"] = animators.create(cfg.animate.backend, backend_options(project, cfg))
    backend = ctx["backend"]
    try:
        request.check()
        result = backend.animate(request, p.clip)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure of a model or a server: the still stays
        if procs.is_stop(exc):
            raise
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        message = f"the clip of shot {shot_id} of chapter {chapter} failed ({reason}); {keeps} (tried again next run)"
        log.warning(message)
        return None, False, [message]
    letters = None
    if request.image == p.plain and p.plain != p.still:
        from novelcomic.animate.video import lettering_layer

        if lettering_layer(p.still, p.plain, p.letters):
            letters = project.rel(p.letters)
    if letters is None:
        p.letters.unlink(missing_ok=True)
    project.store.record(
        "clip", key, result.path, inputs_hash=inputs, backend=cfg.animate.backend or "", seed=result.seed, chapter=chapter,
        meta={"fps": result.fps, "frames": result.frames, "width": result.width, "height": result.height,
              "letters": letters, "seconds": round(request.seconds, 3), **result.meta},
        warnings=warnings,
    )
    return result.path, True, warnings


def _shot(ctx: dict, shot_id: str) -> Any:
    return ctx["storyboard"].shot(shot_id)


def animate_chapter(project: Any, chapter: str, report: Any) -> Any:
    """Every chosen shot of the chapter (``report``: the pipeline's StageReport, filled in)."""
    ctx = context(project, chapter)
    for shot_id in ctx["chosen"]:
        path, made, warnings = animate_shot(project, chapter, shot_id, _ctx=ctx)
        if path is not None:
            report.add(path, made, warnings)
        else:
            report.warnings.extend(warnings)
    return report


def clips_for_compose(project: Any, chapter: str, shot_ids: list[str]) -> dict[str, Any]:
    """shot id → :class:`~novelcomic.compose.base.ClipVideo` of each chosen shot whose clip is up to
    date; a shot without one (not made, failed, stale) shows its still."""
    from novelcomic.compose.base import ClipVideo

    ctx = context(project, chapter)
    cfg = ctx["cfg"]
    out: dict[str, Any] = {}
    for shot_id in ctx["chosen"]:
        if shot_id not in shot_ids:
            continue
        found = clip_inputs(project, chapter, shot_id, ctx)
        rec = project.store.fresh("clip", f"{chapter}/{shot_id}", found[0]) if found else None
        if rec is None:
            continue
        meta = rec.meta_dict()
        letters = project.dir / meta["letters"] if meta.get("letters") else None
        out[shot_id] = ClipVideo(project.dir / rec.path, float(meta["fps"]), int(meta["frames"]), letters, cfg.animate.fill)
    return out


def backend_options(project: Any, cfg: ProjectConfig) -> dict[str, Any]:
    """``animate.options`` with the files it names resolved against the project (a model
    directory or hub id; a ComfyUI workflow), under the path policy of novelcomic.paths."""
    from novelcomic.paths import resolve_user_path, resolve_weight

    options = dict(cfg.animate.options)
    if isinstance(options.get("model"), str) and options["model"]:
        options["model"] = resolve_weight(options["model"], project.dir, "animate.options.model")
    if isinstance(options.get("workflow"), str) and options["workflow"]:
        options["workflow"] = str(resolve_user_path(options["workflow"], project.dir, "animate.options.workflow"))
    return options


def check_config(project: Any) -> None:
    """``animate.shots`` names shots that exist (validate / preflight); raises with project.yaml:line."""
    from novelcomic.animate.select import unknown_ids

    cfg = project.config()
    boards = [project.storyboard(c.id) for c in cfg.chapters if project.storyboard_path(c.id).exists()]
    missing = unknown_ids(cfg.animate, boards)
    if missing and boards:
        from novelcomic.yamlio import line_of, read_yaml

        _, node = read_yaml(project.project_yaml)
        raise NovelcomicError(f"animate.shots names shot(s) no storyboard has: {', '.join(missing)}",
                              file=project.project_yaml, line=line_of(node, ("animate", "shots")), field="animate.shots")
