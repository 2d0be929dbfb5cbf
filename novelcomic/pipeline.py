"""The pipeline as plain functions: one per stage (and per shot / per chapter where work can be
spread out). Prefect flows in ``flows/`` wrap these; nothing here imports Prefect.

Every function is idempotent: each output is recorded in the store with a hash of everything it
was made from, and a re-run skips outputs whose inputs did not change and whose file is intact.
Outputs are written atomically, so a killed run leaves finished files whole and no half-written
file where a finished one is expected.
"""

from __future__ import annotations

import logging
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from novelcomic import procs
from novelcomic.errors import NovelcomicError
from novelcomic.fsutil import atomic_path, hash_inputs
from novelcomic.models import NARRATOR, Character, Location, ProjectConfig, Scene, Shot, Storyboard
from novelcomic.project import Project, WriteResult
from novelcomic.registry import composers, image_backends, planners, tts_backends

if TYPE_CHECKING:
    from novelcomic.compose.base import Timeline

log = logging.getLogger("novelcomic")

STAGES = ("plan", "design", "render", "voice", "animate", "compose")
SHEET_SIZE = (1216, 832)  # landscape turnaround; a multiple of 64 so diffusion backends take it as is


@dataclass
class StageReport:
    stage: str
    chapter: str = ""
    made: int = 0
    reused: int = 0
    outputs: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def add(self, path: Path, made: bool, warnings: list[str] | None = None) -> None:
        self.outputs.append(path)
        if made:
            self.made += 1
        else:
            self.reused += 1
        self.warnings.extend(warnings or [])

    def summary(self) -> str:
        where = f" {self.chapter}" if self.chapter else ""
        return f"{self.stage}{where}: {self.made} made, {self.reused} up to date"


# --------------------------------------------------------------------------- selection helpers


def select_chapters(cfg: ProjectConfig, spec: str | None) -> list[str]:
    """Chapter ids for ``spec``: None/"all", ids or 1-based numbers, ranges and lists ("1-3,5")."""
    ids = [c.id for c in cfg.chapters]
    if not ids:
        raise NovelcomicError("the project has no chapters", file="project.yaml", field="chapters")
    if spec is None or spec.strip().lower() in ("", "all"):
        return ids
    chosen: list[str] = []

    def resolve(token: str) -> int:
        if token in ids:
            return ids.index(token)
        if token.isdigit() and 1 <= int(token) <= len(ids):
            return int(token) - 1
        raise NovelcomicError(f"no chapter {token!r} (chapters: {', '.join(ids)})", field="--chapters")

    for part in re.split(r"[,\s]+", spec.strip()):
        if not part:
            continue
        if "-" in part and part not in ids:
            a, _, b = part.partition("-")
            lo, hi = resolve(a), resolve(b)
            if lo > hi:
                raise NovelcomicError(f"empty chapter range {part!r}", field="--chapters")
            picked = ids[lo : hi + 1]
        else:
            picked = [ids[resolve(part)]]
        chosen.extend(i for i in picked if i not in chosen)
    return chosen


def shot_seed(cfg: ProjectConfig, chapter: str, shot_id: str, explicit: int | None) -> int:
    if explicit is not None:
        return explicit
    return (cfg.seed * 1_000_003 + zlib.crc32(f"{chapter}/{shot_id}".encode())) % (2**31)


def sweep_partials(project: Project) -> int:
    """Remove temporary files a killed run left behind (``.name.partXXX``, the composer's
    ``.batch-*`` scratch directories); returns how many files. Called under the project lock."""
    n = 0
    for sub in ("design", "render", "audio", "out", "storyboards", ".novelcomic/work", "chapters"):
        base = project.dir / sub
        if base.is_dir():
            for p in base.rglob(".*.part*"):
                if p.is_file():
                    p.unlink()
                    n += 1
    for p in project.dir.glob(".*.part*"):
        if p.is_file():
            p.unlink()
            n += 1
    # scratch directories of a killed composer (one encoder batch each) or book join
    import shutil

    for base, pattern in ((project.work_dir, ".batch-*"), (project.out_dir, ".book-*")):
        if base.is_dir():
            for d in base.rglob(pattern):
                if d.is_dir():
                    n += sum(1 for f in d.rglob("*") if f.is_file())
                    shutil.rmtree(d, ignore_errors=True)
    return n


# --------------------------------------------------------------------------- plan


def plan(project: Project, chapters: list[str] | None = None) -> StageReport:
    """Plan the chapters: characters/props/locations YAML and one storyboard per chapter.

    A chapter whose text and planner settings are unchanged since it was planned is skipped.
    Files the user edited are never overwritten: a ``.proposed.yaml`` is written beside them.
    """
    from novelcomic.plan.base import ChapterText, PlanRequest

    cfg = project.config()
    chapters = chapters or [c.id for c in cfg.chapters]
    report = StageReport("plan")
    spec = cfg.stages.plan
    texts = {ch: project.chapter_text(ch) for ch in chapters}
    from novelcomic.llm.config import llm_from_env

    # a new model re-plans; its timeout does not (the model from NOVELCOMIC_LLM_* when project.yaml has none)
    model = [llm_identity(cfg.llm or llm_from_env())] if spec.backend == "llm" else []
    hashes = {ch: hash_inputs(texts[ch], spec, cfg.language, *model) for ch in chapters}
    todo = []
    for ch in chapters:
        rec = project.store.asset("plan", ch)
        exists = project.storyboard_path(ch).exists()
        if exists and (rec is None or rec.inputs_hash == hashes[ch]):
            # Up to date, or a storyboard we never made (the user's own, or a committed example):
            # either way it is kept as it is.
            report.add(project.storyboard_path(ch), made=False)
        else:
            todo.append(ch)
    if not todo:
        return report
    planner = planners.create(spec.backend, spec.options)
    request = PlanRequest(
        config=cfg,
        chapters=[ChapterText(ch, cfg.chapter(ch).title, texts[ch]) for ch in todo],
        characters=project.characters(),
        props=project.props(),
        locations=project.locations(),
        book=[ChapterText(c.id, c.title, texts[c.id] if c.id in texts else project.chapter_text(c.id)) for c in cfg.chapters],
    )
    result = planner.plan(request)
    report.warnings.extend(result.warnings)
    fell_back = {f.chapter for f in getattr(planner, "failures", [])}
    unplanned = list(getattr(planner, "unplanned", []))
    for path, obj, schema in (
        (project.characters_yaml, result.characters, "characters"),
        (project.props_yaml, result.props, "props"),
        (project.locations_yaml, result.locations, "locations"),
    ):
        _note_write(report, project.write_generated(path, obj, schema))
    for ch in todo:
        sb = result.storyboards.get(ch)
        if sb is None and ch in unplanned:
            continue
        if sb is None:
            raise NovelcomicError(f"planner {spec.backend!r} returned no storyboard for chapter {ch!r}")
        path = project.storyboard_path(ch)
        unknown = sorted({msg.split("'")[1] for _, msg in project.unknown_references(sb)})
        if unknown:
            # characters.yaml (or props/locations) is yours and was kept; the plan needs ids that are
            # only in the proposal beside it: a storyboard using them would not load, so it is proposed too
            wr = project.write_generated(path, sb, "storyboard", proposal_only=True)
            report.add(wr.path, made=False)
            report.warnings.append(
                f"the new plan of chapter {ch} uses {', '.join(unknown)}, which your edited YAML does not have (they are "
                f"in the *.proposed.yaml files): it is in {project.rel(wr.path)}; copy what you want into your files, "
                f"then rename it to {path.name}")
            continue
        wr = project.write_generated(path, sb, "storyboard")
        _note_write(report, wr)
        # A chapter the model could not plan was planned by rules; recorded as not up to date, so
        # the next run asks the model again (replacing the rules' storyboard unless you edited it).
        project.store.record(
            "plan", ch, wr.path, inputs_hash=("fallback:" if ch in fell_back else "") + hashes[ch], backend=spec.backend,
            chapter=ch, warnings=[w for w in result.warnings if w.startswith(f"chapter {ch}")],
        )
    if fell_back:
        report.warnings.append(f"the next run asks the language model again for chapter(s) {', '.join(sorted(fell_back))}")
    if unplanned:
        kept = [ch for ch in todo if ch not in unplanned]
        raise NovelcomicError(
            f"{getattr(planner, 'stopped', '') or 'the planner stopped'}: chapter(s) {', '.join(kept)} are planned and "
            f"kept; run again to plan {', '.join(unplanned)}"
        )
    return report


# LLM options that change how it is reached, not what it answers: left out of the hashes.
LLM_TRANSPORT_OPTIONS = {"base_url", "api_key_env", "timeout", "retries", "device", "dtype", "cpu_offload", "json_mode"}


def llm_identity(llm: object) -> dict | None:
    """What of an ``llm:`` setting decides its answers (backend, model, sampling), for the hashes
    of what it makes: a longer timeout or another server URL re-plans and re-renders nothing."""
    if llm is None:
        return None
    options = {k: v for k, v in llm.options.items() if k not in LLM_TRANSPORT_OPTIONS}  # type: ignore[attr-defined]
    return {"backend": llm.backend, "options": options}  # type: ignore[attr-defined]


def _note_write(report: StageReport, wr: WriteResult) -> None:
    report.add(wr.path, made=wr.status == "written")
    if wr.proposal:
        target = wr.path.name.replace(".proposed", "")
        report.warnings.append(f"{target} was edited by you and was left alone; the new plan is in {wr.path}")


# --------------------------------------------------------------------------- design


def design(project: Project, chapters: list[str] | None = None) -> StageReport:
    """A reference sheet per character who needs one (:func:`needs_sheet`: not a group or an
    extra, no reference images of its own) and appears in ``chapters``: is drawn in or speaks in
    one of their storyboards. ``chapters`` default to the ones of the run in progress (the
    Prefect flow's design task is not told them), else all. When none of them is planned yet,
    who appears is not known, and every character who needs a sheet gets one (design needs no
    storyboard)."""
    from novelcomic.render.base import SheetRequest

    cfg = project.config()
    spec = cfg.stages.design
    report = StageReport("design")
    backend = None
    present = cast_in(project, chapters or run_chapters(project) or [c.id for c in cfg.chapters])
    period = book_period(project, cfg)
    for ch in project.characters().characters:
        if not needs_sheet(ch) or (present is not None and ch.id not in present):
            continue
        w, h = SHEET_SIZE
        seed = shot_seed(cfg, "design", ch.id, None)
        # a character's LoRA never draws its sheet (train-character trains on it): hashed as unset
        unlora = ch.model_copy(update={"lora": None, "lora_scale": 1.0, "lora_trigger": None})
        inputs = hash_inputs(character_look(unlora), cfg.style, spec, w, h, seed, cfg.language, *_period_part(period))
        before_lora = hash_inputs(character_look(ch), cfg.style, spec, w, h, seed, cfg.language, *_period_part(period))
        path = project.sheet_path(ch.id)
        # the recipe before 2026-11-21 (a known period was in neither: a sheet drawn without it is not adopted)
        legacy = hash_inputs(_stable(ch), cfg.style, spec, w, h, seed, cfg.language, *_period_part(period))
        if project.store.fresh("sheet", ch.id, inputs) or project.store.adopt("sheet", ch.id, legacy, inputs) \
                or project.store.adopt("sheet", ch.id, before_lora, inputs):
            report.add(path, made=False)
            continue
        backend = backend or image_backends.create(spec.backend, stage_options(project, spec.options), where="stages.design")
        result = backend.design_character(SheetRequest(ch, cfg.style, w, h, seed, cfg.language, period=period))
        _save_image(result.image, path)
        project.store.record(
            "sheet", ch.id, path, inputs_hash=inputs, backend=spec.backend, seed=result.seed,
            meta={"regions": result.regions, **result.meta},
        )
        report.add(path, made=True)
    return report


def _png_bytes(image: object) -> bytes:
    import io

    buf = io.BytesIO()
    image.save(buf, format="PNG")  # type: ignore[attr-defined]
    return buf.getvalue()


def _save_image(image: object, path: Path) -> None:
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")  # type: ignore[attr-defined]


def _with_project_paths(project: Project, character: Character) -> Character:
    """The character with its LoRA path resolved against the project directory (a hub id stays
    as it is); a path outside the allowed places is refused (novelcomic.paths)."""
    from novelcomic.paths import resolve_weight

    if character.lora:
        lora = resolve_weight(character.lora, project.dir, "lora")
        if lora != character.lora:
            return character.model_copy(update={"lora": lora})
    return character


def _location_with_project_paths(project: Project, location: "Location | None") -> "Location | None":
    """The location with its reference pictures resolved in the project (path policy)."""
    if location is None or not location.reference_images:
        return location
    from novelcomic.paths import resolve_user_path

    return location.model_copy(update={"reference_images": [
        str(resolve_user_path(p, project.dir, "reference_images")) for p in location.reference_images]})


def reference_images(project: Project, character_id: str) -> list[Path]:
    """The images that pin a character's look: its own, else its sheet. A group or an extra has
    no sheet (it is drawn as a generic figure), so it gives none unless it has images of its own."""
    ch = project.characters().by_id()[character_id]
    if ch.reference_images:
        from novelcomic.paths import resolve_user_path

        return [resolve_user_path(p, project.dir, "reference_images") for p in ch.reference_images]
    if generic_figure(ch):
        return []
    sheet = project.sheet_path(character_id)
    return [sheet] if sheet.exists() else []


# --------------------------------------------------------------------------- who appears where


def generic_figure(character: Character) -> bool:
    """A group (soldiers, 众猴) or an extra (a guard): drawn as a generic figure, never from a sheet."""
    return character.group or character.role == "extra"


def needs_sheet(character: Character) -> bool:
    """Whether the design stage draws a reference sheet for ``character`` (wherever it appears)."""
    return not character.reference_images and not generic_figure(character)


# storyboard path → ((mtime_ns, size), ids drawn, ids speaking): the Prefect path asks per shot
_PEOPLE: dict[str, tuple[tuple[int, int], frozenset[str], frozenset[str]]] = {}


def chapter_people(project: Project, chapter: str) -> tuple[frozenset[str], frozenset[str]] | None:
    """(ids drawn in a shot, ids speaking a line) of a planned chapter; None when it has no
    storyboard yet. Remembered per process until the file changes."""
    from novelcomic.yamlio import load_model

    path = project.storyboard_path(chapter)
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    stamp = (st.st_mtime_ns, st.st_size)
    hit = _PEOPLE.get(str(path))
    if hit is not None and hit[0] == stamp:
        return hit[1], hit[2]
    sb = load_model(path, Storyboard)
    drawn = frozenset(c for _, shot in sb.shots() for c in shot.characters)
    speaking = frozenset(ln.speaker for _, shot in sb.shots() for ln in shot.lines if not ln.is_narration)
    _PEOPLE[str(path)] = (stamp, drawn, speaking)
    return drawn, speaking


def cast_in(project: Project, chapters: list[str]) -> set[str] | None:
    """Ids of the characters drawn in or speaking in the planned storyboards of ``chapters``;
    None when none of them is planned (anyone may appear)."""
    found = [people for people in (chapter_people(project, ch) for ch in chapters) if people is not None]
    if not found:
        return None
    return set().union(*(drawn | speaking for drawn, speaking in found))


def run_chapters(project: Project) -> list[str] | None:
    """The chapters of the run in progress on ``project`` (``novelcomic run`` and the flows record
    the chosen chapters before any stage starts, and hold the project lock); None when no run is."""
    runs = project.store.runs()
    last = runs[-1] if runs else None
    if last is None or last.status != "running" or not last.chapters or not project.is_locked():
        return None
    return [c for c in last.chapters.split(",") if c]


def book_speakers(project: Project) -> set[str]:
    """Ids of the characters who speak a line in any planned chapter: the ones that get a voice.
    The whole book's, not one chapter's, so a character sounds the same in every chapter. A
    storyboard of another chapter that does not load (being edited) is left out, not an error."""
    found: set[str] = set()
    for ch in project.config().chapters:
        try:
            people = chapter_people(project, ch.id)
        except NovelcomicError:
            continue
        if people is not None:
            found |= people[1]
    return found


def book_period(project: Project, cfg: ProjectConfig | None = None, locations: object = None) -> str:
    """The period images follow: project.yaml's ``period`` unless ``auto``, else the one the
    planner found (locations.yaml); ``unknown`` when neither says."""
    from novelcomic.plan.world import effective_period

    cfg = cfg or project.config()
    found = getattr(locations if locations is not None else project.locations(), "period", "unknown")
    return effective_period(cfg.period, found)


def _period_part(period: str) -> list[str]:
    """The period as a hash part: nothing while it is unknown, so a project whose period nobody
    set or found hashes as it did before periods existed (upgrading re-draws nothing)."""
    return [] if period in ("unknown", "auto", "", None) else [period]


# Fields the models gained after images had been made (2026-12-07): at their defaults they are
# left out of the hashes, so images made before them stay up to date.
_ADDED_FIELDS: dict[str, tuple[str, ...]] = {"Character": ("role", "species", "group"), "Location": ("kind", "weather")}


def _stable(obj: object, data: dict | None = None) -> dict | None:
    """A model (or ``data``, its dump) for a hash, without the added fields that hold their defaults."""
    if obj is None:
        return None
    data = dict(obj.model_dump(mode="json") if data is None else data)  # type: ignore[attr-defined]
    fields = type(obj).model_fields  # type: ignore[attr-defined]
    for name in _ADDED_FIELDS.get(type(obj).__name__, ()):
        if name in data and data[name] == fields[name].default:
            del data[name]
    return data


# --------------------------------------------------------------------------- render


def shot_ids(project: Project, chapter: str) -> list[str]:
    return [shot.id for _, shot in project.storyboard(chapter).shots()]


def render_shot(project: Project, chapter: str, shot_id: str, *, _ctx: dict | None = None) -> tuple[Path, bool]:
    """Render one shot image; returns (path, made). Skipped when its inputs are unchanged."""
    procs.check_stop()  # a stop signal arrived: no new shot starts
    from novelcomic.render.base import CharacterRef, ShotRequest
    from novelcomic.render.lettering import shot_safe_area

    ctx = _ctx or _render_context(project, chapter)
    cfg: ProjectConfig = ctx["cfg"]
    sb: Storyboard = ctx["storyboard"]
    scene, shot = next((s, sh) for s, sh in sb.shots() if sh.id == shot_id)
    chars = ctx["characters"]
    refs = [CharacterRef(_with_project_paths(project, chars[c]), reference_images(project, c)) for c in shot.characters]
    loc_id = shot.location or scene.location
    location = ctx["locations"].get(loc_id) if loc_id else None
    props = [ctx["props"][p] for p in shot.props]
    seed = shot_seed(cfg, chapter, shot.id, shot.seed)
    w, h = cfg.size
    spec = cfg.stages.render
    inputs = shot_inputs_hash(project, chapter, shot_id, ctx)
    key = f"{chapter}/{shot.id}"
    path = project.shot_image_path(chapter, shot.id)
    if project.store.fresh("shot", key, inputs) or \
            project.store.adopt("shot", key, legacy_shot_hash(project, chapter, shot_id, ctx), inputs):
        return path, False
    backend = ctx.get("backend") or image_backends.create(spec.backend, stage_options(project, spec.options))
    from novelcomic.render.base import capabilities_of

    caps = capabilities_of(backend)  # what it declares it can do: asked, never probed
    if cfg.style_reference and caps.style_reference and not backend.style_reference:
        from novelcomic.paths import resolve_user_path

        backend.style_reference = str(resolve_user_path(cfg.style_reference, project.dir, "style_reference"))
    ctx["backend"] = backend
    if caps.plain_still:  # the animatic letters itself: ask for the still before lettering too
        from novelcomic.animate.select import animate_on

        backend.keep_plain = animate_on(cfg)
    names = {c.id: c.name for c in chars.values()}
    prompt = negative = None
    family = backend.prompt_family if caps.prompts else None  # None too for a model that writes its own
    if family:
        prompt, negative = shot_prompt(project, chapter, scene, shot, chars, location, family, ctx)
        from novelcomic.train.usage import with_triggers

        prompt = with_triggers(prompt, [chars[c] for c in shot.characters])  # the words a character's LoRA answers to
    blocked = path.with_suffix(".blocked.json")
    if cfg.safety.enabled:
        from novelcomic.render.safety import check_texts

        verdict = check_texts([prompt or "", shot.image_prompt, *(r.character.appearance for r in refs)], cfg.safety)
        if verdict.blocked:
            message = (f"shot {shot.id} of chapter {chapter} was blocked by the safety filter ({verdict.category}: "
                       f"{verdict.term!r}); it is left out of the video. Change its image_prompt or the appearance "
                       f"it uses, or extend safety settings in project.yaml")
            log.warning(message)
            _write_json(blocked, {"category": verdict.category, "term": verdict.term, "message": message})
            project.store.record("blocked", key, blocked, inputs_hash=inputs, chapter=chapter, warnings=[message])
            return blocked, False
    blocked.unlink(missing_ok=True)
    request = ShotRequest(
        chapter=chapter, scene=scene, shot=shot, characters=refs, location=_location_with_project_paths(project, location), props=props,
        style=cfg.style, width=w, height=h, seed=seed, language=cfg.language, speaker_names=names,
        prompt=prompt, negative_prompt=negative, lettering=cfg.lettering, safe_area=shot_safe_area(scene, shot),
        period=_ctx_period(project, ctx),  # type: ignore[arg-type]
    )
    qa: dict = {}
    warnings = list(ctx.get("warnings", {}).get(shot.id, []))
    if cfg.qa.enabled:
        result, qa = _render_with_qa(backend, request, refs, ctx)
        if qa.get("qa") and not any(score.get("passed") for score in qa["qa"]):
            warnings.append(f"shot {shot.id} of chapter {chapter} failed the QA check after its re-rolls "
                            f"(see render/{chapter}/qa.md); the best attempt is used")
    else:
        result = backend.render_shot(request)
    if result.image.size != (w, h):
        raise NovelcomicError(f"render backend {spec.backend!r} returned {result.image.size}, expected {(w, h)}")
    plain = result.meta.pop("plain_image", None)  # the still before lettering: what the animate stage animates
    if cfg.lettering and not result.meta.get("lettered"):
        from novelcomic.render.lettering import letter_shot

        plain = result.image
        result.image = letter_shot(result.image, shot, result.regions, names, cfg.language, font=subtitle_font(project, cfg),
                                   safe=request.safe_area)
        result.meta["lettered"] = True
    from novelcomic.fsutil import atomic_write_bytes, sha256_bytes, sha256_file
    from novelcomic.render.edit import carry_history, keep_version

    png = _png_bytes(result.image)
    before = project.store.asset("shot", key)
    # the very same picture again (a re-render whose inputs changed only in what it does not
    # show): no new version, nothing copied to versions/
    same = before is not None and path.is_file() and before.content_hash == sha256_bytes(png) == sha256_file(path)
    history: dict | None = None
    if not same:
        keep_version(project, chapter, shot.id)  # an earlier (perhaps hand-edited) image stays restorable
        history, edited = carry_history(project, chapter, shot.id)
        if edited is not None:
            log.warning("shot %s of chapter %s: its inputs changed, so your edit-shot image (version %d) was replaced by a "
                        "new render; `novelcomic edit-shot %s %s %s --restore %d` brings it back",
                        shot.id, chapter, edited, project.name, chapter, shot.id, edited)
        atomic_write_bytes(path, png)
    else:
        history = (before.meta_dict().get("history") if before else None) or None
    from novelcomic.animate.stage import save_plain

    save_plain(cfg, path, plain)
    if shot.id in ctx.get("prompt_fallback", set()):
        inputs = "fallback:" + inputs  # drawn from the rules' prompt: drawn again once the model answers
    project.store.record(
        "shot", key, path, inputs_hash=inputs, backend=spec.backend, seed=result.seed, chapter=chapter,
        meta={"regions": result.regions, **result.meta, **qa, **({"history": history} if history else {})},
        warnings=warnings, new_version=not same,
    )
    return path, True


# What of a shot only the compose stage reads (editing these re-composes, never re-renders).
SHOT_COMPOSE_ONLY = {"transition", "duration_hint", "effect", "motion"}
# What of a character's voice only TTS reads; gender and age also shape the drawn look.
VOICE_ONLY = {"temperament", "voice", "pitch", "rate", "speed", "reference_audio", "reference_text"}


def character_look(character: Character) -> dict:
    """The part of a character its images depend on: all but the TTS-only voice settings and its
    role (which only decides whether it gets a sheet: the sheet is hashed on its own)."""
    return _stable(character, character.model_dump(mode="json", exclude={"voice": VOICE_ONLY, "role": True}))  # type: ignore[return-value]


def shot_warnings(project: Project, chapter: str, shot_id: str) -> list[str]:
    """The warnings recorded with a shot's image (its prompt written offline, failed QA)."""
    rec = project.store.asset("shot", f"{chapter}/{shot_id}")
    return [w for w in rec.warnings.splitlines() if w] if rec else []


def _draws_from_prompts(backend: str) -> bool:
    """Whether render backend ``backend`` gets a written prompt (it declares ``prompts``; one that
    declares nothing, or a plugin registered as a plain function, is assumed to)."""
    from novelcomic.render.base import capabilities_of

    try:
        factory = image_backends.factory(backend)
    except NovelcomicError:
        return True
    return capabilities_of(factory).prompts if isinstance(factory, type) else True


def _shot_parts(project: Project, shot_id: str, ctx: dict) -> tuple:
    """(config, scene, shot, characters, location, props, sheet records) of a shot: what its hash
    recipes read."""
    cfg: ProjectConfig = ctx["cfg"]
    scene, shot = next((s, sh) for s, sh in ctx["storyboard"].shots() if sh.id == shot_id)
    chars = [ctx["characters"][c] for c in shot.characters]
    loc_id = shot.location or scene.location
    location = ctx["locations"].get(loc_id) if loc_id else None
    props = [ctx["props"][p] for p in shot.props]
    sheets = [None if generic_figure(c) else project.store.asset("sheet", c.id) for c in chars]
    return cfg, scene, shot, chars, location, props, sheets


def _ctx_period(project: Project, ctx: dict) -> str:
    if "period" not in ctx:
        ctx["period"] = book_period(project, ctx["cfg"])
    return ctx["period"]


def shot_inputs_hash(project: Project, chapter: str, shot_id: str, ctx: dict | None = None) -> str:
    """Everything a shot's image depends on, hashed: the one recipe the render stage and the
    Prefect cache keys share. Left out on purpose, so that editing them never re-renders (and
    never replaces an ``edit-shot`` result): a shot's transition, duration hint and effect, a
    character's TTS settings, and the QA / safety / LLM settings while they are not in use."""
    ctx = ctx or _render_context(project, chapter)
    cfg, scene, shot, chars, location, props, sheets = _shot_parts(project, shot_id, ctx)
    w, h = cfg.size
    # lettering names every speaker, also one who is not in the picture
    speakers = {ln.speaker: ctx["characters"][ln.speaker].name for ln in shot.lines if ln.speaker in ctx["characters"]}
    from novelcomic.train.usage import lora_look  # a character's LoRA by its content, not where it lies

    return hash_inputs(
        shot.model_dump(mode="json", exclude=SHOT_COMPOSE_ONLY), scene.mood, _stable(location), props,
        [lora_look(character_look(_with_project_paths(project, c))) for c in chars],
        [a.content_hash if a else "" for a in sheets], cfg.style, cfg.stages.render, w, h,
        shot_seed(cfg, chapter, shot.id, shot.seed), cfg.language,
        cfg.lettering, speakers if cfg.lettering else None, cfg.subtitles.font if cfg.lettering else None,
        cfg.safety if cfg.safety.enabled else None, cfg.qa if cfg.qa.enabled else None,
        llm_identity(cfg.llm) if _draws_from_prompts(cfg.stages.render.backend) else None, cfg.style_reference,
        *_period_part(_ctx_period(project, ctx)), *_workflow_part(project, cfg.stages.render.options),
        *_location_pictures_part(project, location),
    )


def _location_pictures_part(project: Project, location: Location | None) -> list[dict]:
    """The contents of the place's reference pictures (nothing when it has none, so other hashes
    stay as they were)."""
    if location is None or not location.reference_images:
        return []
    from novelcomic.fsutil import file_digest

    located = _location_with_project_paths(project, location)
    return [{"location_pictures": [file_digest(p) if Path(p).is_file() else p for p in located.reference_images]}]


def _workflow_part(project: Project, options: dict) -> list[dict]:
    """The contents of the workflow files the render options name (an edit inside a ComfyUI
    workflow re-draws its shots); nothing when there are none, so other hashes stay as they were."""
    from novelcomic.fsutil import file_digest

    files = {}
    for key, value in stage_options(project, options).items():
        if key in WORKFLOW_OPTIONS and isinstance(value, str) and Path(value).is_file():
            files[key] = file_digest(value)
    return [{"workflow_files": files}] if files else []


def legacy_shot_hash(project: Project, chapter: str, shot_id: str, ctx: dict) -> str:
    """A shot's hash by the recipe before 2026-11-21 (it covered the whole shot and every field of
    its characters). An image recorded under it whose inputs have not changed since is adopted
    under today's recipe instead of being drawn again: upgrading never re-renders a project
    (hours of GPU time with diffusers) nor replaces an edit-shot image."""
    cfg, scene, shot, chars, location, props, sheets = _shot_parts(project, shot_id, ctx)
    w, h = cfg.size
    return hash_inputs(
        shot, scene.mood, _stable(location), props, [_stable(_with_project_paths(project, c)) for c in chars],
        [a.content_hash if a else "" for a in sheets], cfg.style, cfg.stages.render, w, h,
        shot_seed(cfg, chapter, shot.id, shot.seed), cfg.language,
        cfg.lettering, cfg.safety, cfg.qa, cfg.llm, cfg.style_reference,
        *_period_part(_ctx_period(project, ctx)),  # a known period was in no old recipe: not adopted then
    )


def line_inputs_hashes(project: Project, chapter: str, shot_id: str, ctx: dict | None = None) -> list[tuple[str, str]]:
    """(key, inputs hash) of each line of a shot: the recipe the voice stage and the Prefect
    cache keys share."""
    ctx = ctx or _voice_context(project, chapter)
    cfg: ProjectConfig = ctx["cfg"]
    out = []
    for i, line in enumerate(ctx["storyboard"].shot(shot_id).lines):
        voice = ctx["cast"].get(line.speaker) or ctx["cast"][NARRATOR]
        out.append((line_key(chapter, shot_id, i), hash_inputs(line.text, line.emotion, voice, cfg.stages.voice, cfg.language)))
    return out


def _render_with_qa(backend: object, request: object, refs: list, ctx: dict) -> tuple[object, dict]:
    """Render, score (consistency with each character's sheet, alignment with the prompt) and
    re-roll with new seeds while the shot fails, keeping the best attempt."""
    import dataclasses

    from PIL import Image

    from novelcomic.render.qa import embedder_for, reroll, score_shot

    cfg: ProjectConfig = ctx["cfg"]
    if "embedder" not in ctx:
        ctx["embedder"] = embedder_for(cfg.qa)
    sheets = {r.character.id: Image.open(r.reference_images[0]).convert("RGB") for r in refs if r.reference_images}
    text = request.prompt or request.shot.image_prompt  # type: ignore[attr-defined]

    def scorer(res: object) -> object:
        return score_shot(ctx["embedder"], res.image, res.regions, sheets, text, cfg.qa)  # type: ignore[attr-defined]

    result, scores = reroll(backend.render_shot, request, scorer, cfg.qa.rerolls)  # type: ignore[attr-defined]
    return result, {"qa": [dataclasses.asdict(s) for s in scores]}


def _write_json(path: Path, data: object) -> None:
    import json

    from novelcomic.fsutil import atomic_write_text

    atomic_write_text(path, json.dumps(data, ensure_ascii=False, indent=2))


def blocked_shots(project: Project, chapter: str) -> set[str]:
    """Shots the safety filter blocked at their last render: they are left out of the video."""
    return {
        sh.id for _, sh in project.storyboard(chapter).shots()
        if project.shot_image_path(chapter, sh.id).with_suffix(".blocked.json").is_file()
    }


def write_qa_report(project: Project, chapter: str) -> Path | None:
    """``render/<ch>/qa.md`` + a contact sheet from the scores recorded with each shot (QA on)."""
    from novelcomic.render.qa import QARow, ShotScore
    from novelcomic.render.qa import write_qa_report as write_report

    cfg = project.config()
    if not cfg.qa.enabled:
        return None
    rows = []
    blocked = blocked_shots(project, chapter)
    for _, shot in project.storyboard(chapter).shots():
        rec = project.store.asset("shot", f"{chapter}/{shot.id}")
        if shot.id in blocked or rec is None:
            rows.append(QARow(shot.id, None, None, None, "blocked by the safety filter" if shot.id in blocked else "not rendered"))
            continue
        scores = rec.meta_dict().get("qa") or []
        best = ShotScore(**scores[-1]) if scores else None
        note = f"{len(scores) - 1} re-rolls" if len(scores) > 1 else ""
        rows.append(QARow(shot.id, rec.seed, best, project.dir / rec.path, note))
    md, _sheet = write_report(chapter, rows, project.dir / "render" / chapter)
    target = project.dir / "render" / chapter / "qa.md"
    md.replace(target)
    return target


def shot_prompt(
    project: Project, chapter: str, scene: Scene, shot: Shot, chars: dict, location: object, family: str, ctx: dict
) -> tuple[str, str]:
    """The image prompt for a diffusion backend: the configured LLM polishes it (idioms, negation
    → negative prompt, fixed appearance tokens, style fragments), or rules do it offline. Cached
    in ``render/<ch>/<shot>.prompt.json`` by its inputs, so a re-run asks the LLM nothing."""
    import json

    from novelcomic.plan.polish import heuristic_prompt, polish_prompt
    from novelcomic.styles import load_styles

    cfg: ProjectConfig = ctx["cfg"]
    present = {c: chars[c] for c in shot.characters if c in chars}
    period = _ctx_period(project, ctx)
    inputs = hash_inputs(shot.model_dump(mode="json", exclude=SHOT_COMPOSE_ONLY), scene.mood,
                         {cid: character_look(c) for cid, c in present.items()}, _stable(location), cfg.style,
                         family, cfg.language, llm_identity(cfg.llm), *_period_part(period))
    key = f"{chapter}/{shot.id}"
    path = project.shot_image_path(chapter, shot.id).with_suffix(".prompt.json")
    rec = project.store.fresh("prompt", key, inputs)
    if rec is not None:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data["prompt"], data["negative"]
    if "style" not in ctx:
        ctx["style"] = load_styles(project.dir).resolve(cfg.style)
    args = (shot, scene, present, location, ctx["style"], family, cfg.language, period)
    backend, warnings = "rules", []
    if cfg.llm is not None:
        from novelcomic.errors import BackendError

        if "llm" not in ctx:
            from novelcomic.registry import llms

            ctx["llm"] = llms.create(cfg.llm.backend, cfg.llm.options)
        from novelcomic.llm.structured import LLMOutputError

        try:
            if ctx.get("llm_down"):  # the server did not answer for an earlier shot: do not wait on it again
                raise BackendError(ctx["llm_down"])
            polished, backend = polish_prompt(ctx["llm"], *args), "llm"
        except BackendError as exc:  # server down, timeouts, no valid answer: the shot is still drawn
            reason = str(exc).splitlines()[0]
            if not isinstance(exc, LLMOutputError):
                ctx["llm_down"] = reason
            warnings.append(f"shot {shot.id} of chapter {chapter}: the language model could not write its image prompt "
                            f"({reason}); the offline rules wrote it (asked again next run)")
            polished = heuristic_prompt(*args)
            inputs = "fallback:" + inputs  # not up to date: the next run asks the model again
            ctx.setdefault("prompt_fallback", set()).add(shot.id)
    else:
        polished = heuristic_prompt(*args)
    _write_json(path, {"prompt": polished.prompt, "negative": polished.negative, "notes": polished.notes})
    project.store.record("prompt", key, path, inputs_hash=inputs, backend=backend, chapter=chapter, warnings=warnings)
    ctx.setdefault("warnings", {})[shot.id] = warnings
    return polished.prompt, polished.negative


def _render_context(project: Project, chapter: str) -> dict:
    cfg = project.config()
    locations = project.locations()
    return {
        "cfg": cfg,
        "storyboard": project.storyboard(chapter),
        "characters": project.characters().by_id(),
        "locations": {loc.id: loc for loc in locations.locations},
        "props": {p.id: p for p in project.props().props},
        "period": book_period(project, cfg, locations),
    }


def render(project: Project, chapter: str) -> StageReport:
    report = StageReport("render", chapter)
    ctx = _render_context(project, chapter)
    for _, shot in ctx["storyboard"].shots():
        path, made = render_shot(project, chapter, shot.id, _ctx=ctx)
        report.add(path, made, shot_warnings(project, chapter, shot.id) if made else None)
    for shot_id in sorted(blocked_shots(project, chapter)):
        report.warnings.append(f"shot {shot_id} of chapter {chapter} is blocked by the safety filter and left out")
    write_qa_report(project, chapter)
    return report


# --------------------------------------------------------------------------- voice


def line_key(chapter: str, shot_id: str, index: int) -> str:
    return f"{chapter}/{shot_id}/{index:02d}"


def voice_shot(project: Project, chapter: str, shot_id: str, *, _ctx: dict | None = None) -> StageReport:
    """Speak every line of one shot (one WAV per line)."""
    procs.check_stop()
    from novelcomic.voice.base import SpeechRequest

    ctx = _ctx or _voice_context(project, chapter)
    cfg: ProjectConfig = ctx["cfg"]
    spec = cfg.stages.voice
    shot = ctx["storyboard"].shot(shot_id)
    report = StageReport("voice", chapter)
    hashes = line_inputs_hashes(project, chapter, shot_id, ctx)
    for i, line in enumerate(shot.lines):
        voice = ctx["cast"].get(line.speaker) or ctx["cast"][NARRATOR]
        key, inputs = hashes[i]
        path = project.audio_dir(chapter) / f"{shot.id}-{i:02d}.wav"
        if project.store.fresh("audio", key, inputs):
            report.add(path, made=False)
            continue
        options = dict(spec.options)
        if spec.backend == "edge":
            options.setdefault("cache_dir", str(project.state_dir / "cache" / "tts"))
        backend = ctx.get("backend") or tts_backends.create(spec.backend, options)
        ctx["backend"] = backend
        req = SpeechRequest(text=line.text, language=cfg.language, voice=voice, speaker=line.speaker, emotion=line.emotion)
        with atomic_path(path) as tmp:
            result = backend.synthesize(req, tmp)
        for w in result.warnings:
            log.debug("%s: %s", key, w)  # reported through the stage report (once per distinct warning)
        # A line an offline voice spoke because the configured one failed (edge-tts unreachable)
        # is not up to date: the next run tries the configured voice again.
        project.store.record(
            "audio", key, path, inputs_hash=("fallback:" if result.fallback else "") + inputs,
            backend=result.backend if result.fallback else spec.backend, chapter=chapter,
            meta={"duration": result.duration, "voice": result.voice, "sample_rate": result.sample_rate,
                  "words": [[w.start, w.end, w.text] for w in result.words]},
            warnings=result.warnings,
        )
        report.add(path, made=True, warnings=result.warnings)
    return report


def _voice_context(project: Project, chapter: str) -> dict:
    from novelcomic.voice.casting import cast_voices

    cfg = project.config()
    return {
        "cfg": cfg,
        "storyboard": project.storyboard(chapter),
        # voices for the book's speakers only: a character who never speaks uses up no voice
        "cast": cast_voices(project.characters(), cfg.language, cfg.stages.voice.backend, speakers=book_speakers(project)),
    }


def voice(project: Project, chapter: str) -> StageReport:
    report = StageReport("voice", chapter)
    ctx = _voice_context(project, chapter)
    for _, shot in ctx["storyboard"].shots():
        r = voice_shot(project, chapter, shot.id, _ctx=ctx)
        report.made += r.made
        report.reused += r.reused
        report.outputs += r.outputs
        report.warnings += r.warnings
    return report


# --------------------------------------------------------------------------- animate


def animate_shot(project: Project, chapter: str, shot_id: str) -> tuple[Path | None, bool, list[str]]:
    """One shot's image-to-video clip (novelcomic.animate.stage): (clip or None, made, warnings)."""
    from novelcomic.animate.stage import animate_shot as make

    return make(project, chapter, shot_id)


def animate(project: Project, chapter: str) -> StageReport:
    """Clips for the chapter's chosen shots (``animate:`` in project.yaml; off without a backend)."""
    from novelcomic.animate.stage import animate_chapter

    return animate_chapter(project, chapter, StageReport("animate", chapter))


# --------------------------------------------------------------------------- compose


@dataclass
class ChapterMaterial:
    """What a chapter's cut is made of: its storyboard (blocked shots left out), the timeline
    built from the shot images, line audio and clips on record, and the content hashes the video
    depends on. The composer, the 剪映 export and the OTIO export all cut from this."""

    storyboard: Storyboard
    timeline: "Timeline"
    names: dict[str, str]
    parts: list[object]


def chapter_material(project: Project, chapter: str) -> ChapterMaterial:
    """The :class:`ChapterMaterial` of a rendered and voiced chapter (a one-line error naming
    the first shot or line still missing)."""
    from novelcomic.animate.select import talking_on
    from novelcomic.animate.stage import clips_for_compose
    from novelcomic.compose.base import LineAudio
    from novelcomic.compose.timeline import build_timeline
    from novelcomic.fsutil import sha256_file

    cfg = project.config()
    if not project.storyboard_path(chapter).exists():
        raise NovelcomicError(f"chapter {chapter} is not planned yet: run `novelcomic run {project.name}` first")
    sb = project.storyboard(chapter)
    names = {c.id: c.name for c in project.characters().characters}
    images: dict[str, Path] = {}
    audio: dict[str, list[LineAudio]] = {}
    parts: list[object] = []
    talking, figures = talking_on(cfg), {}  # the talking animatic: figures the animatic recorded
    blocked = blocked_shots(project, chapter)
    if blocked:
        sb = sb.model_copy(update={"scenes": [
            sc.model_copy(update={"shots": [sh for sh in sc.shots if sh.id not in blocked]}) for sc in sb.scenes
        ]})
        sb = sb.model_copy(update={"scenes": [sc for sc in sb.scenes if sc.shots]})
    for _, shot in sb.shots():
        rec = project.store.asset("shot", f"{chapter}/{shot.id}")
        if rec is None or not (project.dir / rec.path).is_file():
            raise NovelcomicError(f"shot {shot.id} of chapter {chapter} has no image: run the render stage first")
        images[shot.id] = project.dir / rec.path
        parts.append(rec.content_hash)
        if talking and rec.meta_dict().get("figures"):
            figures[shot.id] = rec.meta_dict()["figures"]
        lines = []
        for i, line in enumerate(shot.lines):
            a = project.store.asset("audio", line_key(chapter, shot.id, i))
            if a is None or not (project.dir / a.path).is_file():
                raise NovelcomicError(f"line {i + 1} of shot {shot.id} (chapter {chapter}) has no audio: run the voice stage first")
            meta = a.meta_dict()
            lines.append(LineAudio(
                line.text, line.speaker, names.get(line.speaker, ""), project.dir / a.path, meta["duration"],
                words=[tuple(w) for w in meta.get("words", [])],
            ))
            parts.append(a.content_hash)
        audio[shot.id] = lines
    w, h = cfg.size
    videos = clips_for_compose(project, chapter, list(images))  # up-to-date animate-stage clips
    timeline = build_timeline(sb, audio, images, width=w, height=h, fps=cfg.fps, transition_seconds=cfg.transition_seconds,
                              videos=videos, figures=figures)
    if videos or figures:  # only then: videos composed before clips stay up to date
        parts.append({"clips": {sid: [project.store.asset("clip", f"{chapter}/{sid}").content_hash, v.fill,  # type: ignore[union-attr]
                                      sha256_file(v.letters) if v.letters else None] for sid, v in videos.items()},
                      "talk": figures})
    return ChapterMaterial(sb, timeline, names, parts)


def compose(project: Project, chapter: str) -> StageReport:
    """Build the chapter's timeline from the shot images and line audio, and compose the video."""
    procs.check_stop()
    from novelcomic.compose.base import ComposeRequest

    cfg = project.config()
    material = chapter_material(project, chapter)
    sb, timeline, names, parts = material.storyboard, material.timeline, material.names, material.parts
    spec = cfg.stages.compose
    speakers = {ln.speaker: names.get(ln.speaker, "") for _, shot in sb.shots() for ln in shot.lines}  # name tags in subtitles
    title = cfg.chapter(chapter).title or chapter  # the cover and the OTIO timeline carry it
    inputs = hash_inputs(sb, parts, spec, cfg.size, cfg.fps, cfg.music, cfg.subtitles, cfg.transition_seconds, cfg.language,
                         speakers, title)
    report = StageReport("compose", chapter)
    video, srt = project.video_path(chapter), project.srt_path(chapter)
    if project.store.fresh("video", chapter, inputs) and srt.exists():
        report.add(video, made=False)
        return report
    composer = composers.create(spec.backend, spec.options)
    result = composer.compose(
        ComposeRequest(
            timeline=timeline, out_video=video, out_srt=srt, work_dir=project.work_dir / chapter,
            language=cfg.language, music=cfg.music, project_dir=project.dir, title=title,
            subtitles=cfg.subtitles.model_copy(update={"font": subtitle_font(project, cfg)}),  # a font file: absolute
        )
    )
    for kind, path in (("cover", result.cover), ("otio", result.otio)):
        if path is not None and Path(path).is_file():
            project.store.record(kind, chapter, Path(path), inputs_hash=inputs, backend=spec.backend, chapter=chapter)
    project.store.record("subtitles", chapter, result.srt, inputs_hash=inputs, backend=spec.backend, chapter=chapter)
    project.store.record(
        "video", chapter, result.video, inputs_hash=inputs, backend=spec.backend, chapter=chapter,
        meta={"duration": result.duration, "shots": len(timeline.clips), "cues": len(timeline.cues)},
        warnings=result.warnings,
    )
    report.add(video, made=True, warnings=result.warnings)
    return report


def book(project: Project) -> StageReport:
    """Join every chapter's video into ``out/book.mp4`` with one chapter marker per chapter
    (``book: true`` in project.yaml). Made once every chapter has a video; remade when one of
    them, a chapter title or the book's title changes. Joined without re-encoding when the
    chapters share their encoder settings (see :func:`novelcomic.compose.book.join_chapters`)."""
    from novelcomic.compose.book import join_chapters

    cfg = project.config()
    report = StageReport("book")
    path = project.book_path
    videos: list[Path] = []
    titles: list[str] = []
    parts: list[str] = []
    missing: list[str] = []
    for ch in cfg.chapters:
        rec = project.store.asset("video", ch.id)
        if rec is None or not (project.dir / rec.path).is_file():
            missing.append(ch.id)
            continue
        videos.append(project.dir / rec.path)
        titles.append(ch.title or ch.id)
        parts.append(rec.content_hash)
    if missing or not videos:
        report.warnings.append(
            f"{project.rel(path)} is made once every chapter has a video; still missing: {', '.join(missing) or 'all'}"
        )
        return report
    if cfg.review.publish:
        from novelcomic import review

        unapproved = [ch.id for ch in cfg.chapters if not review.is_approved(project, review.video_subject(project, ch.id) or "")]
        if unapproved:
            report.warnings.append(f"{project.rel(path)} waits for the publish review of chapter(s) {', '.join(unapproved)}")
            return report
    inputs = hash_inputs(parts, titles, cfg.title)
    if project.store.fresh("book", "book", inputs):
        report.add(path, made=False)
        return report
    result = join_chapters(videos, titles, path, title=cfg.title)
    project.store.record(
        "book", "book", result.video, inputs_hash=inputs, backend="ffmpeg",
        meta={"duration": result.chapters[-1][2], "chapters": [list(c) for c in result.chapters],
              "reencoded": [project.rel(p) for p in result.reencoded]},
    )
    report.add(path, made=True)
    return report


# --------------------------------------------------------------------------- everything, without Prefect


def check_backends(project: Project, stages: list[str] | None = None) -> list[str]:
    """Create the backend of each of ``stages`` (default: all, and the LLM when one is set) from
    project.yaml, the way a run does, so a misspelt backend name or option (or a bad option value:
    constructors check them up front and load no weights) fails before any work, with
    ``project.yaml:line: field``. Returns the names checked, as ``stage=backend``."""
    from novelcomic.paths import check_project_paths
    from novelcomic.registry import REGISTRIES
    from novelcomic.yamlio import line_of, read_yaml

    cfg = project.config()
    check_project_paths(project)  # no file outside the project (or the allowed dirs) is ever read
    check_inputs(project)
    checked: list[str] = []
    wanted = [s for s in (STAGES if stages is None else stages) if s in STAGES]
    targets: list[tuple[str, str, str, dict]] = [
        (stage, f"stages.{stage}", getattr(cfg.stages, stage).backend, getattr(cfg.stages, stage).options)
        for stage in wanted if stage != "animate"
    ]
    if "animate" in wanted and cfg.animate.backend:  # animate: {backend, options} at the top of project.yaml
        from novelcomic.animate.stage import backend_options, check_config

        check_config(project)
        targets.append(("animate", "animate", cfg.animate.backend, backend_options(project, cfg)))
    from novelcomic.llm.config import llm_from_env

    llm = cfg.llm or (llm_from_env() if cfg.stages.plan.backend == "llm" else None)
    if llm is not None and (stages is None or "plan" in wanted):
        targets.append(("llm", "llm", llm.backend, llm.options))
    for stage, where, name, options in targets:
        try:
            REGISTRIES[stage].create(name, stage_options(project, options), where=where)
        except NovelcomicError as exc:
            field = exc.field or f"{where}.backend"
            if not field.startswith(where):
                field = f"{where}.options.{field}" if "." not in field else field
            _, node = read_yaml(project.project_yaml)
            path = tuple(int(p) if p.isdigit() else p for p in field.split("."))
            raise NovelcomicError(exc.message, file=project.project_yaml, line=line_of(node, path), field=field) from None
        checked.append(f"{stage}={name}")
    return checked


#: Backend options that name a workflow file (ComfyUI): read from the project, under the path policy.
WORKFLOW_OPTIONS = ("workflow", "workflow_no_refs", "edit_workflow")


def stage_options(project: Project, options: dict) -> dict:
    """A backend's options as its constructor gets them: the workflow files they name resolved
    in the project (``paths.resolve_user_path``: refused outside it); a bundled template's name
    and every other option as written."""
    from novelcomic.paths import resolve_user_path

    out = dict(options or {})
    for key in WORKFLOW_OPTIONS:
        value = out.get(key)
        if isinstance(value, str) and (value.lower().endswith(".json") or "/" in value or "\\" in value):
            out[key] = str(resolve_user_path(value, project.dir, key))
    return out


def subtitle_font(project: Project, cfg: ProjectConfig | None = None) -> str | None:
    """``subtitles.font`` as the readers take it: a font file relative to the project made
    absolute, a family name as it is."""
    from novelcomic.paths import font_is_path, resolve_user_path

    font = (cfg or project.config()).subtitles.font
    if font and font_is_path(font):
        return str(resolve_user_path(font, project.dir, "subtitles.font"))
    return font


def check_inputs(project: Project) -> None:
    """What a run would open besides the YAML, checked up front with ``file:line: field``: the
    subtitle font (a readable font file, or a family that is installed) and the music tracks
    (audio files). The storyboards' effects are checked as they are loaded (:func:`checked_storyboard`)."""
    from novelcomic.ffmpeg import probe
    from novelcomic.fonts import find_cjk_font
    from novelcomic.yamlio import format_loc, line_of, read_yaml

    cfg = project.config()

    def refuse(message: str, loc: tuple, file: Path | None = None) -> NovelcomicError:
        file = file or project.project_yaml
        _, node = read_yaml(file)
        return NovelcomicError(message, file=file, line=line_of(node, loc), field=format_loc(loc))

    font = subtitle_font(project, cfg)
    if font:
        from novelcomic.paths import font_is_path

        if font_is_path(cfg.subtitles.font or ""):
            if not Path(font).is_file():
                raise refuse(f"font file {cfg.subtitles.font} not found", ("subtitles", "font"))
            try:
                from PIL import ImageFont

                ImageFont.truetype(font, 12)
            except Exception:  # noqa: BLE001 - FreeType's reasons vary: "unknown file format", …
                raise refuse(f"{cfg.subtitles.font} is not a font file (TrueType/OpenType .ttf/.otf/.ttc)",
                             ("subtitles", "font")) from None
        else:
            try:
                find_cjk_font(font)
            except NovelcomicError:
                raise refuse(f"font family {font!r} is not installed (fc-list lists the installed ones; "
                             f"or give a .ttf/.otf file inside the project)", ("subtitles", "font")) from None
    if cfg.music.enabled:
        from novelcomic.paths import resolve_user_path

        for mood, track in cfg.music.tracks.items():
            path = resolve_user_path(track, project.dir, f"music.tracks.{mood}")
            if not path.is_file():
                raise refuse(f"music track {track} not found", ("music", "tracks", mood))
            try:
                info = probe(path)
            except NovelcomicError:
                info = {}
            if not any(st.get("codec_type") == "audio" for st in info.get("streams", [])):
                raise refuse(f"music track {track} is not an audio file ffmpeg can read", ("music", "tracks", mood))


def advice(project: Project) -> list[str]:
    """What is valid but will not do what it seems to ask, from the backends' declarations:
    ``validate`` prints these as warnings."""
    from novelcomic.registry import tts_backends
    from novelcomic.voice.base import voice_capabilities_of

    cfg = project.config()
    out: list[str] = []
    try:
        voice = voice_capabilities_of(tts_backends.factory(cfg.stages.voice.backend))
    except NovelcomicError:
        return out
    if cfg.stages.compose.options.get("karaoke") and not voice.word_timings:
        out.append(f"stages.compose.options.karaoke: voice backend {cfg.stages.voice.backend!r} gives no word timings, "
                   f"so subtitles are not highlighted word by word (edge does)")
    if not voice.cloning and project.characters_yaml.exists():
        cloned = [c.id for c in project.characters().characters if getattr(c.voice, "reference_audio", None)]
        if cloned:
            out.append(f"characters.yaml: reference_audio of {', '.join(cloned[:3])} is not used: voice backend "
                       f"{cfg.stages.voice.backend!r} does not clone voices (openai does, on servers that clone)")
    return out


def checked_storyboard(project: Project, chapter: str) -> Storyboard:
    """The chapter's storyboard, validated as a run needs it: its ids (``Project.storyboard``)
    and the custom effects its shots name (registered), with ``file:line: field``."""
    from novelcomic.registry import effects
    from novelcomic.yamlio import format_loc, line_of, read_yaml

    sb = project.storyboard(chapter)
    known = set(effects.names())
    for si, scene in enumerate(sb.scenes):
        for hi, shot in enumerate(scene.shots):
            if shot.effect and shot.effect not in known:
                path, loc = project.storyboard_path(chapter), ("scenes", si, "shots", hi, "effect")
                _, node = read_yaml(path)
                raise NovelcomicError(f"unknown effect {shot.effect!r} (effects: {', '.join(sorted(known)) or 'none'})",
                                      file=path, line=line_of(node, loc), field=format_loc(loc))
    return sb


def preflight(project: Project, chapters: list[str], stages: list[str] | None = None,
              backends_here: list[str] | None = None) -> None:
    """Validate every user file the run will read, before any work starts, so that a typo in a
    storyboard fails in a second with file:line instead of after an hour of rendering. A run of
    later stages only (``stages`` without ``plan``) needs the chapters planned: it says so.
    ``backends_here``: the stages whose backends this process creates (default: ``stages``); a
    distributed run leaves out render and voice, which its task workers run with their own."""
    stages = list(stages or STAGES)
    if "plan" not in stages:
        unplanned = [ch for ch in chapters if not project.storyboard_path(ch).exists()]
        if unplanned and any(s in stages for s in ("render", "voice", "animate", "compose")):
            raise NovelcomicError(
                f"{'chapter' if len(unplanned) == 1 else 'chapters'} {', '.join(unplanned)} not planned yet "
                f"(no {project.rel(project.storyboard_path(unplanned[0]))}): "
                f"run `novelcomic plan {project.name}` first, or `novelcomic run {project.name}` for every stage"
            )
    project.config()
    project.characters()
    project.props()
    project.locations()
    for ch in chapters:
        project.chapter_text(ch)
        if project.storyboard_path(ch).exists():
            checked_storyboard(project, ch)
    check_backends(project, stages if backends_here is None else backends_here)


def unplanned_message(project: Project, chapter: str) -> str:
    return (f"chapter {chapter} has no {project.rel(project.storyboard_path(chapter))} (the plan's warning says why): "
            f"its render, voice and compose were skipped")


def produce(project: Project, chapters: list[str] | None = None, stages: list[str] | None = None) -> list[StageReport]:
    """Run the selected stages for the selected chapters in order (the plain-Python path that the
    ``produce`` Prefect flow mirrors with tasks)."""
    stages = list(stages or STAGES)
    for s in stages:
        if s not in STAGES:
            raise NovelcomicError(f"unknown stage {s!r} (stages: {', '.join(STAGES)})", field="--stage")
    cfg = project.config()
    chapters = chapters or [c.id for c in cfg.chapters]
    preflight(project, chapters, stages)
    project.refresh_schemas()
    reports: list[StageReport] = []
    if "plan" in stages:
        reports.append(plan(project, chapters))
    if "design" in stages:
        reports.append(design(project, chapters))
    later = [s for s in ("render", "voice", "animate", "compose") if s in stages]
    project.thaw_storyboards()
    try:
        for ch in chapters:
            if later and not project.storyboard_path(ch).exists():  # the plan could only be proposed (see its warning)
                reports.append(StageReport(later[0], ch, warnings=[unplanned_message(project, ch)]))
                continue
            if later:
                project.freeze_storyboard(ch)  # this run makes the chapter from this version, whole
            _chapter_stages(project, ch, stages, reports)
            if later and project.storyboard_changed_since_frozen(ch):
                reports[-1].warnings.append(edited_during_run_message(project, ch))
    finally:
        project.thaw_storyboards()
    if "compose" in stages and cfg.book:
        reports.append(book(project))
    return reports


def edited_during_run_message(project: Project, chapter: str) -> str:
    return (f"{project.rel(project.storyboard_path(chapter))} was edited during the run: chapter {chapter} was made "
            f"from the version the run started with; run again to make your edit")


def _chapter_stages(project: Project, ch: str, stages: list[str], reports: list[StageReport]) -> None:
    """Render, voice and compose one chapter (the selected stages), with its stage status."""
    for stage, fn in (("render", render), ("voice", voice), ("animate", animate), ("compose", compose)):
        if stage in stages:
            project.store.set_stage(stage, "running", ch)
            try:
                reports.append(fn(project, ch))
            except KeyboardInterrupt:  # SIGTERM / Ctrl-C (procs.Interrupted): its finished work is kept
                project.store.set_stage(stage, "cancelled", ch)
                raise
            except Exception as exc:
                project.store.set_stage(stage, "failed", ch, str(exc))
                raise
            project.store.set_stage(stage, "done", ch)
