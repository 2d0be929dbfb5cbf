"""``train-character``: one character's LoRA, from the project's render model, into the project.

:func:`train_character` checks everything first (the render stage is ``diffusers`` with an SD1.5
or SDXL model the path policy allows, the character exists and has something to train on, the
settings), then trains (:mod:`novelcomic.train.lora`), writes ``loras/<id>.safetensors``, records
it (asset kind ``lora``: a second call with the same inputs trains nothing) and points the
character at it in characters.yaml (:mod:`novelcomic.train.characters_yaml`). Checkpoints live in
``.novelcomic/train/<id>/`` until the LoRA is written.

What decides the LoRA (its inputs hash): the model as project.yaml names it and its family, the
sources' contents, the caption, the settings but ``checkpoint_every``, and
:data:`~novelcomic.train.dataset.DATASET_VERSION`. The device is not in it: a run stopped on one
machine goes on on another.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from novelcomic.errors import NovelcomicError

OPTIONS = "stages.render.options."
LORA_DIR = "loras"


@dataclass(frozen=True)
class Outcome:
    character: str
    path: Path
    trained: bool  # False: up to date, nothing trained
    steps: int
    resumed_from: int
    loss: float | None
    trigger: str
    yaml: Any  # characters_yaml.YamlChange


def lora_path(project: Any, character_id: str) -> Path:
    return project.dir / LORA_DIR / f"{character_id}.safetensors"


def work_dir(project: Any, character_id: str) -> Path:
    return project.state_dir / "train" / character_id


def _model(project: Any) -> tuple[str, str, str, dict[str, Any]]:
    """(model as written, model to load, family, render options) of the project's render stage."""
    from novelcomic.paths import resolve_weight
    from novelcomic.render.loading import detect_family, resolve_model

    spec = project.config().stages.render
    if spec.backend != "diffusers":
        raise NovelcomicError(f"train-character trains a LoRA for the diffusers render backend; stages.render.backend "
                              f"is {spec.backend!r}", field="stages.render.backend")
    options = spec.options or {}
    written = options.get("model")
    if not isinstance(written, str) or not written.strip():
        raise NovelcomicError(f"model {written!r} must be a model directory or a Hugging Face hub id", field=OPTIONS + "model")
    local = resolve_weight(written, project.dir, OPTIONS + "model")
    if Path(local).is_file():
        raise NovelcomicError(f"model {written!r} is a single-file checkpoint: train-character needs a diffusers "
                              f"directory (with model_index.json) for now", field=OPTIONS + "model")
    model = resolve_model(local)
    family = detect_family(model, options.get("family", "auto"))
    from novelcomic.train.lora import TRAINABLE_FAMILIES

    if family not in TRAINABLE_FAMILIES:
        raise NovelcomicError(f"train-character trains {' and '.join(TRAINABLE_FAMILIES)} models; model {written!r} "
                              f"is {family}", field=OPTIONS + "model")
    return written, model, family, options


def train_character(
    project: Any, character_id: str, *, steps: int | None = None, rank: int | None = None, lr: float | None = None,
    resolution: int | None = None, seed: int | None = None, checkpoint_every: int | None = None,
    device: str | None = None, force: bool = False, progress: Callable[..., None] | None = None,
) -> Outcome:
    """Train ``character_id``'s LoRA (or find it up to date); see the module doc."""
    from novelcomic.fsutil import hash_inputs
    from novelcomic.train import dataset
    from novelcomic.train.characters_yaml import point_at_lora
    from novelcomic.train.lora import TrainJob, settings_for

    cast = project.characters().by_id()
    if character_id not in cast:
        known = ", ".join(cast) or "none"
        raise NovelcomicError(f"no character {character_id!r} in characters.yaml (characters: {known})", field="CHARACTER")
    character = cast[character_id]
    written, model, family, options = _model(project)
    settings = settings_for(family, steps=steps, rank=rank, lr=lr, resolution=resolution, seed=seed,
                            checkpoint_every=checkpoint_every)
    sources = dataset.source_images(project, character)
    trigger = dataset.trigger_token(character.id)
    text = dataset.caption(character, trigger)
    inputs = hash_inputs(dataset.DATASET_VERSION, written, family, dataset.sources_digest(sources), text,
                         settings.identity())
    out = lora_path(project, character_id)
    rel = f"{LORA_DIR}/{character_id}.safetensors"
    if not force and project.store.fresh("lora", character_id, inputs) is not None:
        rec = project.store.asset("lora", character_id)
        meta = rec.meta_dict() if rec else {}
        return Outcome(character_id, out, False, int(meta.get("steps", settings.steps)), 0, meta.get("loss"), trigger,
                       point_at_lora(project, character_id, rel, trigger))
    from novelcomic.render.loading import resolve_device
    from novelcomic.train.lora import train

    views = dataset.make_views(sources, settings.resolution)
    target_device = resolve_device(device or options.get("device", "auto"))
    work = work_dir(project, character_id)
    if force:
        shutil.rmtree(work, ignore_errors=True)
    job = TrainJob(model, family, target_device, tuple(views), text, settings, work, out, inputs)
    result = train(job, progress)
    project.store.record("lora", character_id, out, inputs_hash=inputs, backend="train-character",
                         meta={**result.meta, "steps": result.steps, "resumed_from": result.resumed_from,
                               "loss": result.loss, "seconds": round(result.seconds, 2), "trigger": trigger,
                               "sources": [project.rel(p) if p.is_relative_to(project.dir) else str(p) for p in sources]})
    shutil.rmtree(work, ignore_errors=True)
    return Outcome(character_id, out, True, result.steps, result.resumed_from, result.loss, trigger,
                   point_at_lora(project, character_id, rel, trigger))


__all__ = ["Outcome", "lora_path", "train_character", "work_dir"]
