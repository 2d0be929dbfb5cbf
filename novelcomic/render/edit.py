"""Editing one rendered shot, with every replaced image kept as a numbered version.

A shot's image lives at ``render/<ch>/<shot>.png`` and is recorded in the store (kind ``shot``)
with a version number that goes up on every write. Before an edit replaces the image, the current
file is copied to ``render/<ch>/versions/<shot>.v<N>.png`` (N: its version in the store), so any
earlier image can be listed (:func:`shot_versions`) and put back (:func:`restore_shot`).

Edits (:func:`edit_shot`):

- ``prompt``: re-render the shot with a new image prompt through the configured render backend.
  The storyboard YAML is the user's and is never rewritten: the override is kept in the asset's
  meta (``prompt_override``) and later edits start from it;
- ``instruction``: the project's language model rewrites the shot's prompt from a plain request
  ("吵得更激烈些"), then the shot is re-rendered;
- ``mask``: repaint the white part of a mask through the backend's ``inpaint``;
- ``outpaint``: extend the canvas to 16:9 or 9:16 through the backend's ``outpaint``.

An edited image keeps the inputs hash of the image it replaced, so a later ``run`` leaves it alone
unless the storyboard changes; its new content hash makes the compose stage re-render the
chapter's video (only that shot's segment). Nothing here takes the project lock: the command
line does, and the pipeline calls these while holding it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from novelcomic.errors import BackendError, NovelcomicError
from novelcomic.fsutil import atomic_path, atomic_write_bytes, sha256_file
from novelcomic.models import ProjectConfig, Scene, Shot
from novelcomic.project import Project
from novelcomic.render.base import capabilities_of

if TYPE_CHECKING:
    from PIL.Image import Image

    from novelcomic.store import Asset

ASPECTS = {"16:9": (16, 9), "9:16": (9, 16)}
_VERSION_RE = re.compile(r"^(?P<shot>.+)\.v(?P<n>\d+)\.png$")
MAX_PROMPT_CHARS = 1500


@dataclass(frozen=True)
class EditResult:
    path: Path  # the shot's image, now holding the edit
    version: int  # its version in the store
    previous_version_path: Path | None  # where the replaced image was kept
    kind: str = "prompt"  # prompt | instruction | inpaint | outpaint | restore
    prompt: str | None = None  # the prompt the edit used


@dataclass(frozen=True)
class ShotVersion:
    version: int
    path: Path
    current: bool
    note: str = ""


# --------------------------------------------------------------------------- versions


def versions_dir(project: Project, chapter: str) -> Path:
    return project.dir / "render" / chapter / "versions"


def version_path(project: Project, chapter: str, shot_id: str, version: int) -> Path:
    return versions_dir(project, chapter) / f"{shot_id}.v{version}.png"


def _key(chapter: str, shot_id: str) -> str:
    return f"{chapter}/{shot_id}"


def _current(project: Project, chapter: str, shot_id: str) -> "Asset":
    asset = project.store.asset("shot", _key(chapter, shot_id))
    if asset is None or not (project.dir / asset.path).is_file():
        raise NovelcomicError(
            f"shot {shot_id!r} of chapter {chapter!r} has no image yet: render it first "
            f"(novelcomic run {project.name} --chapters {chapter} --stage render)"
        )
    return asset


def keep_version(project: Project, chapter: str, shot_id: str) -> Path | None:
    """Copy the shot's current image to ``versions/<shot>.v<N>.png`` (N: its store version)
    before it is replaced; None when there is no current image. Safe to call twice."""
    asset = project.store.asset("shot", _key(chapter, shot_id))
    if asset is None:
        return None
    src = project.dir / asset.path
    if not src.is_file():
        return None
    dst = version_path(project, chapter, shot_id, asset.version)
    if dst.is_file() and sha256_file(dst) == sha256_file(src):
        return dst
    atomic_write_bytes(dst, src.read_bytes())
    return dst


def shot_versions(project: Project, chapter: str, shot_id: str) -> list[ShotVersion]:
    """Every kept version of the shot plus the current image, oldest first."""
    asset = project.store.asset("shot", _key(chapter, shot_id))
    history = _history(asset)
    out: dict[int, ShotVersion] = {}
    folder = versions_dir(project, chapter)
    if folder.is_dir():
        for p in folder.iterdir():
            m = _VERSION_RE.match(p.name)
            if m and m["shot"] == shot_id and p.is_file():
                n = int(m["n"])
                out[n] = ShotVersion(n, p, False, history.get(str(n), {}).get("note", ""))
    if asset is not None and (project.dir / asset.path).is_file():
        note = asset.meta_dict().get("edit", {}).get("note", "")
        out[asset.version] = ShotVersion(asset.version, project.dir / asset.path, True, note)
    return [out[n] for n in sorted(out)]


def _history(asset: "Asset | None") -> dict[str, dict[str, Any]]:
    if asset is None:
        return {}
    return dict(asset.meta_dict().get("history", {}))


def carry_history(project: Project, chapter: str, shot_id: str) -> tuple[dict[str, dict[str, Any]], int | None]:
    """For a pipeline re-render about to replace the shot's image: the version history to keep
    on the new record (so ``--list`` still labels every kept version), and the replaced version's
    number when it was made by an edit (None otherwise) so the caller can say how to restore it."""
    asset = project.store.asset("shot", _key(chapter, shot_id))
    if asset is None:
        return {}, None
    history = _history(asset)
    history[str(asset.version)] = _snapshot(asset)
    return history, (asset.version if "edit" in asset.meta_dict() else None)


def _snapshot(asset: "Asset") -> dict[str, Any]:
    """What the history remembers of a version: enough to restore its meta and seed."""
    meta = {k: v for k, v in asset.meta_dict().items() if k != "history"}
    return {
        "seed": asset.seed, "backend": asset.backend, "content_hash": asset.content_hash,
        "meta": meta, "note": meta.get("edit", {}).get("note", "rendered"),
    }


def _replace(
    project: Project,
    chapter: str,
    shot_id: str,
    image: "Image | None",
    *,
    source_file: Path | None = None,
    meta: dict[str, Any],
    seed: int | None,
    backend: str,
    edit: dict[str, Any],
) -> tuple[Path, int, Path | None]:
    """Keep the current version, write the new image atomically, record it; returns
    (path, new version, kept path)."""
    before = _current(project, chapter, shot_id)
    kept = keep_version(project, chapter, shot_id)
    history = _history(before)
    history[str(before.version)] = _snapshot(before)
    path = project.shot_image_path(chapter, shot_id)
    if image is not None:
        with atomic_path(path) as tmp:
            image.save(tmp, format="PNG")
    else:
        assert source_file is not None
        atomic_write_bytes(path, source_file.read_bytes())
    # the still before lettering that the animate stage animates was the replaced image's: gone,
    # so a clip of this shot is made from the edited image (its hash changes with it)
    path.with_suffix(".plain.png").unlink(missing_ok=True)
    record = project.store.record(
        # the edit is your choice: never "not up to date" because the image it replaced was a fallback
        "shot", _key(chapter, shot_id), path, inputs_hash=before.inputs_hash.removeprefix("fallback:"), backend=backend,
        seed=seed,
        chapter=chapter, meta={**meta, "edit": edit, "history": history},
    )
    return path, record.version, kept


def restore_shot(project: Project, chapter: str, shot_id: str, version: int) -> EditResult:
    """Put version ``version`` of the shot back as its current image (the current one is kept
    as a version first, so a restore can itself be undone)."""
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise NovelcomicError(f"version {version!r} must be a whole number of at least 1", field="--restore")
    current = _current(project, chapter, shot_id)
    src = version_path(project, chapter, shot_id, version)
    if version == current.version:
        raise NovelcomicError(f"version {version} is already the current image of shot {shot_id!r}")
    if not src.is_file():
        known = ", ".join(str(v.version) for v in shot_versions(project, chapter, shot_id)) or "none"
        raise NovelcomicError(f"shot {shot_id!r} of chapter {chapter!r} has no version {version} (versions: {known})")
    old = _history(current).get(str(version), {})
    meta = dict(old.get("meta", {}))
    meta.pop("edit", None)
    path, new_version, kept = _replace(
        project, chapter, shot_id, None, source_file=src, meta=meta, seed=old.get("seed", current.seed),
        backend=old.get("backend", current.backend),
        edit={"kind": "restore", "restored_from": version, "note": f"restored version {version}"},
    )
    return EditResult(path, new_version, kept, "restore", meta.get("prompt_override"))


# --------------------------------------------------------------------------- edits


def edit_shot(
    project: Project,
    chapter: str,
    shot_id: str,
    *,
    prompt: str | None = None,
    mask: "str | Path | Image | None" = None,
    outpaint: str | None = None,
    instruction: str | None = None,
) -> EditResult:
    """Edit one shot's image (see the module docstring); returns where the new image is, its
    version, and where the replaced one was kept."""
    _check_edit_args(prompt, mask, outpaint, instruction)
    cfg = project.config()
    board = project.storyboard(chapter)
    scene, shot = find_shot(board.shots(), chapter, shot_id)
    current = _current(project, chapter, shot_id)
    old_meta = {k: v for k, v in current.meta_dict().items() if k not in ("history", "edit")}
    base_prompt = old_meta.get("prompt_override") or shot.image_prompt or describe_shot(project, scene, shot, cfg.language)
    from novelcomic.registry import image_backends

    from novelcomic.pipeline import stage_options

    spec = cfg.stages.render
    backend = image_backends.create(spec.backend, stage_options(project, spec.options))
    # a backend that declares instruction_edits (an edit model: FLUX.2 klein, Qwen-Image-Edit) draws the
    # instruction itself from the current image: no prompt rewrite
    direct = instruction is not None and capabilities_of(backend).instruction_edit
    if instruction is not None and not direct:
        new_prompt = rewrite_prompt(cfg, shot, base_prompt, instruction)
    else:
        new_prompt = prompt if prompt is not None else (instruction if direct else base_prompt)
    if cfg.safety.enabled:
        from novelcomic.render.safety import check_prompt, raise_if_blocked

        raise_if_blocked(check_prompt(new_prompt, cfg.safety), shot_id, chapter)
    kind = "inpaint" if mask is not None else "outpaint" if outpaint is not None else (
        "instruction" if instruction is not None else "prompt"
    )
    meta = dict(old_meta)
    if prompt is not None or (instruction is not None and not direct):
        meta["prompt_override"] = new_prompt
    if kind in ("inpaint", "outpaint"):
        image = _open_image(project.dir / current.path)
        method = _capability(backend, spec.backend, kind)
        options = {"seed": current.seed or 0, "negative_prompt": shot.negative_prompt}
        if kind == "inpaint":
            mask_image = load_mask(mask, image.size)  # type: ignore[arg-type]
            answer = _call(method, image, mask_image, new_prompt, **options)
        else:
            answer = _call(method, image, outpaint, new_prompt, **options)
        new_image, regions, extra, seed = _unpack(answer, spec.backend, kind, current.seed)
        if kind == "outpaint":
            _check_aspect(new_image, outpaint, spec.backend)  # type: ignore[arg-type]
            meta["regions"] = regions or _shifted(old_meta.get("regions", {}), extra.get("source_box"))
        elif regions:
            meta["regions"] = regions
        meta.update(extra)
    elif direct:
        answer = backend.edit_instruction(_open_image(project.dir / current.path), instruction, seed=current.seed or 0)
        new_image, _, extra, seed = _unpack(answer, spec.backend, kind, current.seed)
        meta.update(extra)  # the picture keeps its layout: the old regions stay
    else:
        new_image, regions, extra, seed = _rerender(project, cfg, chapter, scene, shot, new_prompt, backend)
        meta.update(extra)
        meta["regions"] = regions
    edit = {"kind": kind, "note": _note(kind, prompt, instruction, outpaint)}
    if instruction is not None:
        edit["instruction"] = instruction
    path, version, kept = _replace(
        project, chapter, shot_id, new_image, meta=meta, seed=seed, backend=spec.backend, edit=edit
    )
    return EditResult(path, version, kept, kind, new_prompt)


def _check_edit_args(prompt: Any, mask: Any, outpaint: Any, instruction: Any) -> None:
    if prompt is None and mask is None and outpaint is None and instruction is None:
        raise NovelcomicError("nothing to do: give a new prompt, an instruction, a mask or an outpaint aspect")
    if prompt is not None and instruction is not None:
        raise NovelcomicError("give either a new prompt or an instruction, not both", field="--instruction")
    if mask is not None and outpaint is not None:
        raise NovelcomicError("inpainting (--mask) and outpainting (--outpaint) are separate edits: do one at a time")
    for name, value in (("prompt", prompt), ("instruction", instruction)):
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise NovelcomicError(f"{name} {value!r} must be non-empty text", field=f"--{name}")
    if outpaint is not None and outpaint not in ASPECTS:
        raise NovelcomicError(f"outpaint aspect {outpaint!r} must be one of {', '.join(ASPECTS)}", field="--outpaint")


def find_shot(shots: list[tuple[Scene, Shot]], chapter: str, shot_id: str) -> tuple[Scene, Shot]:
    for scene, shot in shots:
        if shot.id == shot_id:
            return scene, shot
    known = ", ".join(s.id for _, s in shots) or "none"
    raise NovelcomicError(f"no shot {shot_id!r} in chapter {chapter!r} (shots: {known})")


def _note(kind: str, prompt: str | None, instruction: str | None, outpaint: str | None) -> str:
    if kind == "instruction":
        return f"instruction: {instruction}"
    if kind == "outpaint":
        return f"outpainted to {outpaint}"
    if kind == "inpaint":
        return "inpainted" + (f": {prompt}" if prompt else "")
    return f"prompt: {prompt}"


def _open_image(path: Path) -> "Image":
    from PIL import Image as PILImage

    with PILImage.open(path) as im:
        return im.convert("RGB")


def load_mask(mask: "str | Path | Image", size: tuple[int, int]) -> "Image":
    """The mask as a black/white "L" image of ``size`` (white = repaint). A mask of another size
    with the same aspect is scaled; any other size is an error naming both."""
    from PIL import Image as PILImage

    if isinstance(mask, (str, Path)):
        p = Path(mask)
        if not p.is_file():
            raise NovelcomicError(f"mask {str(p)!r} not found", field="--mask")
        try:
            with PILImage.open(p) as im:
                m = im.convert("L")
        except OSError as exc:
            raise NovelcomicError(f"mask {str(p)!r} is not an image: {exc}", field="--mask") from exc
    elif isinstance(mask, PILImage.Image):
        m = mask.convert("L")
    else:
        raise NovelcomicError(f"mask {mask!r} must be an image file", field="--mask")
    if m.size != size:
        if abs(m.width / m.height - size[0] / size[1]) > 0.01:
            raise NovelcomicError(
                f"mask is {m.width}x{m.height} but the shot is {size[0]}x{size[1]}: draw it at the shot's size",
                field="--mask",
            )
        m = m.resize(size, PILImage.NEAREST)
    m = m.point(lambda v: 255 if v >= 128 else 0)
    if m.getbbox() is None:
        raise NovelcomicError("the mask is all black: paint the part to repaint white", field="--mask")
    return m


def _capability(backend: Any, name: str, kind: str) -> Any:
    """The backend's ``inpaint``/``outpaint`` method when it declares that edit."""
    if capabilities_of(backend).can(kind):
        return getattr(backend, kind)
    able = backends_that_can(kind)
    which = f"backends that can: {', '.join(able)}" if able else "no installed backend can"
    raise NovelcomicError(
        f"render backend {name!r} cannot {kind} ({which}); set stages.render.backend in project.yaml",
        field="stages.render.backend",
    )


def backends_that_can(method: str) -> list[str]:
    """Names of registered image backends whose class declares the edit ``method`` (``inpaint``, ``outpaint``)."""
    from novelcomic.registry import image_backends

    names = []
    for name in image_backends.names():
        try:
            factory = image_backends.factory(name)
        except Exception:  # noqa: BLE001 - a plugin that fails to import cannot do anything
            continue
        if capabilities_of(factory).can(method):
            names.append(name)
    return names


def _call(method: Any, *args: Any, **options: Any) -> Any:
    """Call a backend's edit method with the keyword options it declares (seed,
    negative_prompt); a backend that takes only the three positional arguments gets only them."""
    import inspect

    try:
        params = inspect.signature(method).parameters
    except (TypeError, ValueError):
        return method(*args)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return method(*args, **options)
    return method(*args, **{k: v for k, v in options.items() if k in params})


def _shifted(regions: dict[str, Any], source_box: Any) -> dict[str, list[int]]:
    """Character boxes moved to where the original picture sits on an outpainted canvas; {} when
    the backend did not say where that is (the old boxes would point at the wrong place)."""
    if not regions or not source_box:
        return {}
    dx, dy = int(source_box[0]), int(source_box[1])
    return {cid: [b[0] + dx, b[1] + dy, b[2] + dx, b[3] + dy] for cid, b in regions.items()}


def _unpack(answer: Any, backend: str, kind: str, seed: int | None) -> tuple["Image", dict, dict, int | None]:
    """A backend may answer with an ImageResult or a bare image."""
    from PIL import Image as PILImage

    if isinstance(answer, PILImage.Image):
        return answer.convert("RGB"), {}, {}, seed
    image = getattr(answer, "image", None)
    if not isinstance(image, PILImage.Image):
        raise BackendError(f"render backend {backend!r} {kind} returned {type(answer).__name__}, not an image")
    return image.convert("RGB"), dict(getattr(answer, "regions", {}) or {}), dict(getattr(answer, "meta", {}) or {}), \
        getattr(answer, "seed", seed)


def _check_aspect(image: "Image", aspect: str, backend: str) -> None:
    a, b = ASPECTS[aspect]
    if abs(image.width / image.height - a / b) > 0.02:
        raise BackendError(
            f"render backend {backend!r} outpainted to {image.width}x{image.height}, which is not {aspect}"
        )


def _rerender(
    project: Project, cfg: ProjectConfig, chapter: str, scene: Scene, shot: Shot, prompt: str, backend: Any
) -> tuple["Image", dict, dict, int]:
    """Render the shot again as the pipeline does, with ``prompt`` as its image prompt, lettered
    when the project letters and the backend did not."""
    from novelcomic.pipeline import _with_project_paths, book_period, reference_images, shot_seed
    from novelcomic.render.base import CharacterRef, ShotRequest
    from novelcomic.render.lettering import shot_safe_area
    from novelcomic.train.usage import with_triggers

    chars = project.characters().by_id()
    locations_file = project.locations()
    locations = {loc.id: loc for loc in locations_file.locations}
    props = {p.id: p for p in project.props().props}
    # as the run draws it: the characters' LoRAs from the project, their trigger words first
    edited = shot.model_copy(update={"image_prompt": with_triggers(prompt, [chars[c] for c in shot.characters])})
    refs = [CharacterRef(_with_project_paths(project, chars[c]), reference_images(project, c)) for c in shot.characters]
    loc_id = shot.location or scene.location
    w, h = cfg.size
    request = ShotRequest(
        chapter=chapter, scene=scene, shot=edited, characters=refs,
        location=locations.get(loc_id) if loc_id else None, props=[props[p] for p in shot.props],
        style=cfg.style, width=w, height=h, seed=shot_seed(cfg, chapter, shot.id, shot.seed),
        language=cfg.language, speaker_names={c.id: c.name for c in chars.values()},
        lettering=cfg.lettering, safe_area=shot_safe_area(scene, edited),
        period=book_period(project, cfg, locations_file),  # the clothes and buildings of the book's time, as in the run
    )
    result = backend.render_shot(request)
    if result.image.size != (w, h):
        raise BackendError(f"render backend {cfg.stages.render.backend!r} returned {result.image.size}, expected {(w, h)}")
    image = result.image.convert("RGB")
    meta = dict(result.meta)
    if cfg.lettering and not meta.get("lettered"):
        from novelcomic.pipeline import subtitle_font
        from novelcomic.render.lettering import letter_shot

        image = letter_shot(image, edited, result.regions, request.speaker_names, cfg.language,
                            font=subtitle_font(project, cfg), safe=request.safe_area)
        meta["lettered"] = True
    return image, dict(result.regions), meta, result.seed


def describe_shot(project: Project, scene: Scene, shot: Shot, language: str) -> str:
    """A plain description of a shot for a prompt when its storyboard gives none."""
    chars = project.characters().by_id()
    locs = {loc.id: loc for loc in project.locations().locations}
    loc = locs.get(shot.location or scene.location or "")
    who = [
        f"{chars[c].name}（{chars[c].appearance}）" if c in chars and chars[c].appearance else chars[c].name
        for c in shot.characters if c in chars
    ]
    said = [
        (f"{chars[ln.speaker].name}: " if ln.speaker in chars else "") + ln.text for ln in shot.lines[:3]
    ]
    sep = "; " if language == "en" else "；"
    parts = [f"{shot.camera.size.replace('_', ' ')} shot, {shot.camera.angle.replace('_', ' ')}"]
    if who:
        parts.append(", ".join(who))
    if loc is not None:
        parts.append(loc.name + (f" ({loc.description})" if loc.description else ""))
    parts.append(f"mood {shot.mood or scene.mood}")
    parts += said
    return sep.join(parts)


# --------------------------------------------------------------------------- the language model


REWRITE_SYSTEM = (
    "You rewrite the image-generation prompt of one shot of a comic. Apply the user's request to the "
    "current prompt and keep everything the request does not change: the characters, their looks, the "
    "place and the framing. Answer with the new prompt only, in the language of the current prompt, "
    "with no explanation and no quotes."
)


def rewrite_prompt(cfg: ProjectConfig, shot: Shot, current: str, instruction: str) -> str:
    """The configured language model's rewrite of ``current`` following ``instruction``."""
    from novelcomic.llm.base import Message
    from novelcomic.registry import llms

    spec = cfg.llm
    if spec is None:
        from novelcomic.llm.config import llm_from_env

        spec = llm_from_env()
    if spec is None:
        from novelcomic.llm.config import SETUP_HINT

        raise NovelcomicError(f"editing a shot from an instruction needs a language model: {SETUP_HINT}", field="llm")
    llm = llms.create(spec.backend, spec.options)
    lines = "\n".join(f"- {ln.speaker}: {ln.text}" for ln in shot.lines[:6])
    user = (
        f"Shot {shot.id}.\nCurrent prompt:\n{current}\n\n"
        + (f"Lines of the shot:\n{lines}\n\n" if lines else "")
        + f"Request:\n{instruction}"
    )
    answer = llm.complete([Message("system", REWRITE_SYSTEM), Message("user", user)], temperature=0.4)
    text = _clean_answer(answer if isinstance(answer, str) else str(answer))
    if not text:
        raise BackendError(f"the language model ({spec.backend}) returned an empty prompt for shot {shot.id!r}")
    return text[:MAX_PROMPT_CHARS]


def _clean_answer(text: str) -> str:
    text = text.strip()
    fence = re.search(r"```[a-zA-Z]*\n?(.*?)```", text, re.DOTALL)
    if fence:
        text = fence.group(1).strip()
    text = re.sub(r"^(new prompt|prompt|新提示词|提示词)\s*[:：]\s*", "", text, flags=re.IGNORECASE)
    if len(text) >= 2 and text[0] + text[-1] in ('""', "''", "“”", "「」"):
        text = text[1:-1].strip()
    return text


__all__ = [
    "ASPECTS", "EditResult", "ShotVersion", "backends_that_can", "describe_shot", "edit_shot", "keep_version",
    "load_mask", "restore_shot", "rewrite_prompt", "shot_versions", "version_path", "versions_dir",
]
