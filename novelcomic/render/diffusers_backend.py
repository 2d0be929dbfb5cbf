"""The diffusers image backend: character sheets and shots from Stable Diffusion 1.5, SDXL or
Kolors, with characters kept consistent by IP-Adapter (or img2img from their sheet), or from a
multi-reference model (FLUX.2 [klein], Qwen-Image-Edit-Plus, FLUX.1 Kontext) that draws the scene
from the characters' sheets in one call. The families are listed in
:mod:`novelcomic.render.families`; ``model`` may also be a single-file ``.safetensors`` checkpoint
(SD 1.5 / SDXL, loaded offline with the configs shipped in the package).

How a shot is drawn (``render_shot``), one mode per shot, recorded as ``meta["mode"]``:

- ``multiref`` (multi-reference families): the visible characters' reference images (their first
  each: speakers first, then the others in shot order, at most the family's ``max_references``;
  the rest are dropped and listed in ``meta["dropped_references"]``) go to the pipeline as
  ``image=[…]``; the prompt (sentences) names each character by its image number. Shots without
  characters, and sheets, are drawn by the same family's text-to-image.

- ``ip_adapter``: an IP-Adapter is configured and some visible character has a reference image.
  One reference per character; with several characters each reference is restricted to its
  region of the frame with IP-Adapter masks, the regions being a left-to-right split of the
  frame (returned in ``ImageResult.regions``, the same order the prompt lists them in).
- ``img2img``: no IP-Adapter, but a reference: the first character's reference, cropped to the
  frame, is redrawn at ``img2img_strength``.
- ``text2img``: no characters (or no references): style + location words only.

A project-wide ``style_reference`` image joins every IP-Adapter call as one more image over the
whole frame. A character's own LoRA (``Character.lora``) is loaded for its shots and unloaded
after. Pipelines come from :mod:`novelcomic.render.loading`, loaded once per process.

Example ``project.yaml``::

    stages:
      render:
        backend: diffusers
        options:
          model: stabilityai/stable-diffusion-xl-base-1.0     # or a local directory
          scheduler: dpmpp_2m
          steps: 30
          ip_adapter: {path: h94/IP-Adapter, subfolder: sdxl_models,
                       weight_name: ip-adapter_sdxl.safetensors}
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from novelcomic.errors import BackendError, NovelcomicError
from novelcomic.render.base import DependsOnModel, ImageCapabilities, ImageResult, SheetRequest, ShotRequest, check_size
from novelcomic.render.families import FAMILIES, FamilySpec, call_extras
from novelcomic.render.loading import (
    OPTIONS,
    IPAdapterSpec,
    LoadedPipelines,
    LoadSpec,
    LoraSpec,
    MemorySpec,
    check_scheduler,
    detect_family,
    is_checkpoint_file,
    load_lora,
    load_pipelines,
    require_peft,
    resolve_device,
    resolve_dtype,
    resolve_model,
)
from novelcomic.render.prompts import (
    Prompt,
    Reference,
    join,
    multiref_prompt,
    request_period,
    sentence_sheet_prompt,
    sheet_prompt,
    shot_prompt,
    with_triggers,
)

if TYPE_CHECKING:
    from PIL.Image import Image

Mode = Literal["text2img", "img2img", "ip_adapter", "inpaint", "multiref", "edit"]
Box = tuple[int, int, int, int]
MIN_SIDE, MAX_SIDE, MULTIPLE = 64, 4096, 8
ASPECTS = {"16:9": 16 / 9, "9:16": 9 / 16}
_PIPELINE_FOR_MODE = {"text2img": "text2img", "ip_adapter": "main", "img2img": "img2img", "inpaint": "inpaint",
                      "multiref": "multiref", "edit": "multiref"}
NEUTRAL = (127, 127, 127)  # the IP-Adapter image of calls with nothing to follow (at scale 0)


@dataclass
class _Job:
    """One image to make: everything one pipeline call needs for it."""

    mode: Mode
    prompt: Prompt
    width: int
    height: int
    seed: int
    init_image: Image | None = None
    mask_image: Image | None = None
    strength: float | None = None
    ip_images: list[Image] = field(default_factory=list)
    ip_scales: list[float] = field(default_factory=list)
    ip_masks: list[Image] | None = None
    ip_tag: str = ""  # jobs with the same tag share their IP-Adapter input (batchable)
    ref_images: list[Image] = field(default_factory=list)  # multiref: the images, in the prompt's numbering
    loras: list[tuple[str, float, str]] = field(default_factory=list)  # (path, scale, adapter name)
    regions: dict[str, Box] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def batch_key(self) -> tuple | None:
        """Jobs with equal keys can share one pipeline call; None: always alone."""
        if self.loras or self.ip_masks is not None or self.mode in ("ip_adapter", "inpaint", "multiref", "edit"):
            return None
        return (self.mode, self.width, self.height, self.strength, self.ip_tag)


class DiffusersBackend:
    """Character sheets and shots drawn by a diffusers pipeline (``backend: diffusers``).

    Options (``stages.render.options`` / ``stages.design.options``):

    - ``model``: diffusers directory, hub id or single-file ``.safetensors`` (SD 1.5 / SDXL);
      ``family``: auto | sd15 | sdxl | kolors | flux2-klein | qwen-image-edit-plus | flux-kontext;
      ``single_file_config``: a diffusers-layout directory of configs for an unusual checkpoint
    - memory: ``offload`` (model | sequential | group), ``vae_tiling``, ``layerwise_fp8``,
      ``quantize`` (bnb-nf4): see :class:`novelcomic.render.loading.MemorySpec`
    - multi-reference families: ``max_references`` (at most the family's), ``max_sequence_length``
    - ``device``: auto | cpu | cuda[:N] | mps; ``dtype``: auto | float32 | float16 | bfloat16;
      ``cpu_offload``; ``compile`` (``torch.compile`` the UNet)
    - ``scheduler``: a name from :data:`novelcomic.render.loading.SCHEDULERS` (euler_a, dpmpp_2m, lcm, …)
    - ``steps``, ``guidance_scale`` (default: the family's model-card values, else 30 and 6);
      ``lora``: few-step, style or kohya/A1111 LoRAs ``[{path, weight_name?, scale, trigger?}]``
    - ``ip_adapter``: ``{path, weight_name, subfolder?, image_encoder_folder?, scale?}``;
      ``adapter_scale`` (default strength, a shot's ``adapter_scale`` wins)
    - ``img2img_strength``: used when there is a reference but no IP-Adapter
    - ``inpaint_model``: a dedicated inpainting model for :meth:`inpaint` / :meth:`outpaint`
    - ``sheet_candidates``: sheets drawn per character (seeds seed, seed+1, …); the first, or the
      best by ``scorer`` (a callable ``(image, request) -> float`` or a ``"module:function"``)
    - ``batch_size``: shots per pipeline call in :meth:`render_shots`
    - ``style_reference`` (+ ``style_reference_scale``): an image every shot's look follows (needs an IP-Adapter)
    """

    name = "diffusers"
    # SD 1.5 / SDXL / Kolors: one reference per character (IP-Adapter), inpaint and outpaint, a
    # style reference; a multi-reference family: its model's number of references, edits by
    # instruction when it is an edit model
    capabilities = DependsOnModel(
        ImageCapabilities(references=1, inpaint=True, outpaint=True, instruction_edit=True, style_reference=True),
        lambda self: self._capabilities(),
    )

    def __init__(
        self,
        model: str,
        family: str = "auto",
        device: str = "auto",
        dtype: str = "auto",
        cpu_offload: bool = False,
        scheduler: str | None = None,
        steps: int | None = None,
        guidance_scale: float | None = None,
        lora: list[dict[str, Any]] | None = None,
        ip_adapter: dict[str, Any] | None = None,
        adapter_scale: float = 0.6,
        img2img_strength: float = 0.55,
        inpaint_model: str | None = None,
        sheet_candidates: int = 1,
        batch_size: int = 1,
        compile: bool = False,
        style_reference: str | None = None,
        style_reference_scale: float = 0.4,
        scorer: Callable[..., float] | str | None = None,
        offload: str | None = None,
        vae_tiling: bool = False,
        layerwise_fp8: bool = False,
        quantize: str | None = None,
        single_file_config: str | None = None,
        max_references: int | None = None,
        max_sequence_length: int | None = None,
    ) -> None:
        for key, value in (("cpu_offload", cpu_offload), ("compile", compile)):
            if not isinstance(value, bool):
                raise NovelcomicError(f"{key} {value!r} must be true or false", field=OPTIONS + key)
        for key, value, lo, hi in (("steps", steps, 1, 1000), ("sheet_candidates", sheet_candidates, 1, 16),
                                   ("batch_size", batch_size, 1, 64), ("max_references", max_references, 1, 16),
                                   ("max_sequence_length", max_sequence_length, 8, 1024)):
            if value is None and key in ("steps", "max_references", "max_sequence_length"):
                continue
            if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
                raise NovelcomicError(f"{key} {value!r} must be a whole number from {lo} to {hi}", field=OPTIONS + key)
        for key, value, lo, hi in (("guidance_scale", guidance_scale, 0, 30), ("adapter_scale", adapter_scale, 0, 2),
                                   ("img2img_strength", img2img_strength, 0.01, 1),
                                   ("style_reference_scale", style_reference_scale, 0, 2)):
            if value is None and key == "guidance_scale":
                continue
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not lo <= value <= hi:
                raise NovelcomicError(f"{key} {value!r} must be a number from {lo} to {hi}", field=OPTIONS + key)
        if family != "auto" and family not in FAMILIES:
            raise NovelcomicError(f"family {family!r} must be auto, {', '.join(FAMILIES)}", field=OPTIONS + "family")
        self.memory = MemorySpec.parse(offload, vae_tiling, layerwise_fp8, quantize)
        check_scheduler(scheduler)
        if lora is not None and not isinstance(lora, list):
            raise NovelcomicError(f"lora {lora!r} must be a list of {{path, weight_name, scale}}", field=OPTIONS + "lora")
        self.loras = tuple(LoraSpec.parse(item, i) for i, item in enumerate(lora or []))
        self.ip_adapter: IPAdapterSpec | None = None
        self.adapter_scale = float(adapter_scale)
        if ip_adapter is not None:
            self.ip_adapter, scale = IPAdapterSpec.parse(ip_adapter)
            if scale is not None:
                self.adapter_scale = scale
        if style_reference is not None:
            if self.ip_adapter is None:
                raise NovelcomicError("style_reference needs an ip_adapter", field=OPTIONS + "style_reference")
            if not Path(style_reference).is_file():
                raise NovelcomicError(f"style reference {style_reference!r} is not a file", field=OPTIONS + "style_reference")
        self.model = resolve_model(model)
        self.inpaint_model = resolve_model(inpaint_model, "inpaint_model") if inpaint_model is not None else None
        if single_file_config is not None and not is_checkpoint_file(self.model):
            raise NovelcomicError(f"single_file_config is for single-file checkpoints, but model {model!r} is not one",
                                  field=OPTIONS + "single_file_config")
        self.single_file_config = single_file_config
        self.family, self.device, self.dtype = family, device, dtype
        self.cpu_offload, self.compile, self.scheduler = cpu_offload, compile, scheduler
        if self.memory.offload and cpu_offload:
            raise NovelcomicError("cpu_offload and offload say the same: keep offload: model", field=OPTIONS + "cpu_offload")
        if self.memory != MemorySpec():
            self.memory.check_device(resolve_device(device), single_file=is_checkpoint_file(self.model))
        self._options = {"scheduler": scheduler, "ip_adapter": ip_adapter, "style_reference": style_reference,
                         "max_references": max_references, "steps": steps, "guidance_scale": guidance_scale}
        self.max_sequence_length = max_sequence_length
        self._family_checked: str | None = None
        if family != "auto" or Path(self.model).exists():  # known without the hub: checked now
            self._check_family_options()
        self.img2img_strength = float(img2img_strength)
        self.sheet_candidates, self.batch_size = sheet_candidates, batch_size
        self.style_reference = style_reference
        self.style_reference_scale = float(style_reference_scale)
        self.scorer = _resolve_scorer(scorer)
        self._loaded: LoadedPipelines | None = None

    def _check_family_options(self) -> FamilySpec:
        """The options that depend on the model's family, checked once it is known (at once for a
        local model, on first use for a hub id)."""
        spec = self.family_spec
        if self._family_checked == self.family_name:
            return spec
        o = self._options
        if spec.is_multiref and o["scheduler"] is not None:
            raise NovelcomicError(f"scheduler {o['scheduler']!r} is for SD 1.5/SDXL/Kolors; the {self.family_name} "
                                  "family keeps its flow-matching scheduler", field=OPTIONS + "scheduler")
        if spec.is_multiref and (o["ip_adapter"] is not None or o["style_reference"] is not None):
            raise NovelcomicError(f"the {self.family_name} family draws from reference images itself: leave out "
                                  "ip_adapter and style_reference", field=OPTIONS + "ip_adapter")
        if o["max_references"] is not None and (not spec.is_multiref or o["max_references"] > spec.max_references):
            raise NovelcomicError(f"max_references {o['max_references']!r} must be at most {spec.max_references} for "
                                  f"the {self.family_name} family", field=OPTIONS + "max_references")
        self._family_checked = self.family_name
        return spec

    @property
    def steps(self) -> int:
        """The ``steps`` option, else the family's model-card count, else 30."""
        return self._options["steps"] or self._check_family_options().default_steps or 30

    @steps.setter
    def steps(self, value: int) -> None:
        self._options["steps"] = value

    @property
    def guidance_scale(self) -> float:
        """The ``guidance_scale`` option, else the family's model-card value, else 6."""
        given = self._options["guidance_scale"]
        if given is not None:
            return float(given)
        default = self._check_family_options().default_guidance
        return float(default) if default is not None else 6.0

    @property
    def max_references(self) -> int:
        """Most reference images per call: the ``max_references`` option, else the family's."""
        return self._options["max_references"] or self._check_family_options().max_references

    @property
    def family_name(self) -> str:
        """The model's family (a key of :data:`novelcomic.render.families.FAMILIES`)."""
        return detect_family(self.model, self.family)

    @property
    def family_spec(self) -> FamilySpec:
        return FAMILIES[self.family_name]

    @property
    def prompt_family(self) -> str | None:
        """sd15 | sdxl | kolors: tells the render stage which prompt language/length to prepare;
        None for the multi-reference families, which write their own prompts (sentences naming
        the reference images)."""
        return None if self.family_spec.is_multiref else self.family_name

    def _capabilities(self) -> ImageCapabilities:
        spec = self.family_spec
        if spec.is_multiref:
            return ImageCapabilities(references=spec.max_references, instruction_edit=spec.instruction_edits)
        return ImageCapabilities(references=1, inpaint=True, outpaint=True, style_reference=True)

    @property
    def instruction_edits(self) -> bool:
        """Declared capability: ``edit-shot --instruction`` is drawn by the model itself
        (:meth:`edit_instruction`), not by rewriting the prompt."""
        return self.family_spec.instruction_edits

    @property
    def triggers(self) -> list[str]:
        """The trigger words of the configured LoRAs (in every prompt)."""
        return [lo.trigger for lo in self.loras if lo.trigger]

    # ----------------------------------------------------------------- loading

    def _spec(self, model: str, task: Literal["text2img", "inpaint"]) -> LoadSpec:
        device = resolve_device(self.device)
        family = detect_family(model, self.family)
        return LoadSpec(
            model=model, family=family, device=device, dtype=resolve_dtype(self.dtype, device), task=task,
            scheduler=self.scheduler, loras=self.loras, ip_adapter=self.ip_adapter,
            cpu_offload=self.cpu_offload, compile=self.compile, memory=self.memory,
            single_file_config=self.single_file_config if is_checkpoint_file(model) else None,
        )

    def pipelines(self) -> LoadedPipelines:
        """The loaded model (loaded on first use, shared by every backend with the same settings)."""
        if self._loaded is None:
            self._check_family_options()
            self._loaded = load_pipelines(self._spec(self.model, "text2img"))
        return self._loaded

    def _inpaint_pipelines(self) -> LoadedPipelines:
        if self.inpaint_model is None:
            return self.pipelines()
        return load_pipelines(self._spec(self.inpaint_model, "inpaint"))

    # ----------------------------------------------------------------- checks

    def check_inputs(self, request: SheetRequest | ShotRequest) -> None:
        """Reject a request this backend cannot draw, with an error naming the bad value."""
        if not isinstance(request, (SheetRequest, ShotRequest)):
            raise NovelcomicError(f"expected a SheetRequest or ShotRequest, got {type(request).__name__}")
        check_dimensions(request.width, request.height)
        if not isinstance(request.seed, int) or isinstance(request.seed, bool) or request.seed < 0:
            raise NovelcomicError(f"seed {request.seed!r} must be a whole number of at least 0")
        if not isinstance(request.style, list) or not all(isinstance(s, str) for s in request.style):
            raise NovelcomicError(f"style {request.style!r} must be a list of style names")
        if isinstance(request, SheetRequest):
            return
        shot = request.shot
        got = [ref.character.id for ref in request.characters]
        if got != list(shot.characters):
            raise NovelcomicError(f"shot {shot.id!r} lists characters {list(shot.characters)!r} but the request carries {got!r}")
        for ref in request.characters:
            for path in ref.reference_images:
                if not Path(path).is_file():
                    raise NovelcomicError(f"reference image {str(path)!r} of character {ref.character.id!r} is not a file")

    # ----------------------------------------------------------------- design

    def design_character(self, request: SheetRequest) -> ImageResult:
        """A turnaround sheet; ``sheet_candidates`` drawn with seeds seed, seed+1, …, one kept."""
        self.check_inputs(request)
        # dressed for the book's period: the request's, else what the character's own words suggest
        family = self.pipelines().spec.family
        if FAMILIES[family].is_multiref:
            prompt = sentence_sheet_prompt(request.character, request.style, FAMILIES[family],
                                           period=request_period(request), language=request.language)
        else:
            prompt = sheet_prompt(request.character, request.style, family,
                                  period=request_period(request), language=request.language)
        prompt = with_triggers(prompt, self.triggers + _character_triggers([request.character]))
        jobs = [self._base_job("text2img", prompt, request.width, request.height, request.seed + i)
                for i in range(self.sheet_candidates)]
        results = self._run_all(jobs)
        scores = [float(self.scorer(r.image, request)) for r in results] if self.scorer else None
        best = max(range(len(results)), key=lambda i: (scores[i], -i)) if scores else 0
        chosen = results[best]
        chosen.meta["candidates"] = [
            {"seed": r.seed, **({"score": scores[i]} if scores else {}), "chosen": i == best} for i, r in enumerate(results)
        ]
        return chosen

    # ----------------------------------------------------------------- render

    def render_shot(self, request: ShotRequest) -> ImageResult:
        """One shot image; see the module doc for how characters are kept consistent."""
        return self.render_shots([request])[0]

    def render_shots(self, requests: Sequence[ShotRequest]) -> list[ImageResult]:
        """Several shots, batched: compatible shots (same mode and size, no per-character LoRA,
        no per-character references) share pipeline calls of up to ``batch_size`` images."""
        for request in requests:
            self.check_inputs(request)
        return self._run_all([self._shot_job(r) for r in requests])

    def _shot_job(self, request: ShotRequest) -> _Job:
        if self.family_spec.is_multiref:
            return self._multiref_job(request)
        prompt = shot_prompt(request, self.pipelines().spec.family)
        prompt = with_triggers(prompt, self.triggers + _character_triggers(r.character for r in request.characters))
        w, h = request.width, request.height
        ids = [ref.character.id for ref in request.characters]
        regions = split_regions(ids, w, h)
        refs = [(ref.character.id, Path(ref.reference_images[0])) for ref in request.characters if ref.reference_images]
        scale = request.shot.adapter_scale if request.shot.adapter_scale is not None else self.adapter_scale
        loras = [(c.lora, c.lora_scale, f"character_{c.id}") for c in (ref.character for ref in request.characters) if c.lora]
        if self.ip_adapter is not None and refs:
            job = self._base_job("ip_adapter", prompt, w, h, request.seed)
            job.ip_images = [reference_crop(_open(p)) for _, p in refs]
            job.ip_scales = [scale] * len(refs)
            if len(ids) > 1 or self.style_reference:
                job.ip_masks = [region_mask(regions[cid], w, h) for cid, _ in refs]
            if self.style_reference:
                job.ip_images.append(_open(Path(self.style_reference)))
                job.ip_scales.append(self.style_reference_scale)
                job.ip_masks = (job.ip_masks or []) + [region_mask((0, 0, w, h), w, h)]
            job.meta.update(adapter_scale=scale, references=[str(p) for _, p in refs],
                            ip_masks=len(job.ip_masks) if job.ip_masks else 0)
        elif refs:
            job = self._base_job("img2img", prompt, w, h, request.seed)
            job.init_image = fit_reference(_open(refs[0][1]), w, h)
            job.strength = self.img2img_strength
            job.meta.update(references=[str(refs[0][1])], strength=self.img2img_strength)
        else:
            job = self._base_job("text2img", prompt, w, h, request.seed)
        job.regions = regions
        job.loras = loras
        if loras:
            job.meta["loras"] = [{"path": p, "scale": s} for p, s, _ in loras]
        return job

    def references(self, request: ShotRequest) -> tuple[list[Reference], list[str]]:
        """The reference images of a multi-reference shot and the characters dropped for want of
        room: one per character (its first image), speakers first (in the order they speak), then
        the others in shot order, at most ``max_references``."""
        shot = request.shot
        by_id = {ref.character.id: ref for ref in request.characters}
        speakers = list(dict.fromkeys(ln.speaker for ln in shot.lines if not ln.is_narration and ln.speaker in by_id))
        order = speakers + [cid for cid in by_id if cid not in speakers]
        with_images = [cid for cid in order if by_id[cid].reference_images]
        kept, dropped = with_images[:self.max_references], with_images[self.max_references:]
        refs = [Reference(i + 1, Path(by_id[cid].reference_images[0]), by_id[cid].character,
                          "speaker" if cid in speakers else "character") for i, cid in enumerate(kept)]
        place = request.location.reference_images if request.location is not None else None
        if place and len(refs) < self.max_references:  # the place comes after every character
            refs.append(Reference(len(refs) + 1, Path(place[0]), None, "location"))
        return refs, dropped

    def _multiref_job(self, request: ShotRequest) -> _Job:
        """A shot of a multi-reference family (see the module doc)."""
        refs, dropped = self.references(request)
        prompt = multiref_prompt(request, self.family_spec, refs)
        prompt = with_triggers(prompt, self.triggers + _character_triggers(r.character for r in request.characters))
        w, h = request.width, request.height
        job = _Job("multiref" if refs else "text2img", prompt, w, h, request.seed)
        job.ref_images = [_at_least(reference_crop(_open(r.path)), MIN_SIDE) for r in refs]
        job.regions = split_regions([ref.character.id for ref in request.characters], w, h)
        job.loras = [(c.lora, c.lora_scale, f"character_{c.id}")
                     for c in (ref.character for ref in request.characters) if c.lora]
        if refs:
            job.meta.update(references=[str(r.path) for r in refs],
                            reference_characters=[r.character.id for r in refs if r.character is not None])
        if dropped:
            job.meta["dropped_references"] = dropped
        if job.loras:
            job.meta["loras"] = [{"path": p, "scale": s} for p, s, _ in job.loras]
        return job

    def edit_instruction(self, image: Image | str | Path, instruction: str, *, seed: int = 0,
                         steps: int | None = None, guidance_scale: float | None = None) -> ImageResult:
        """``image`` redrawn by the edit model following ``instruction`` ("make it night"), at its
        size; for the families that declare :attr:`instruction_edits`."""
        from PIL import Image as PILImage

        if not self.instruction_edits:
            raise NovelcomicError(f"the {self.family_name} family cannot edit from an instruction; the render stage "
                                  "rewrites the prompt instead")
        if not isinstance(instruction, str) or not instruction.strip():
            raise NovelcomicError(f"instruction {instruction!r} must be non-empty text", field="--instruction")
        img = _open(image) if not isinstance(image, PILImage.Image) else image.convert("RGB")
        check_dimensions(*img.size)
        job = _Job("edit", Prompt(instruction.strip(), ""), img.size[0], img.size[1], seed)
        job.ref_images = [img]
        job.meta["instruction"] = instruction.strip()
        return self._run_all([job], steps=steps, guidance_scale=guidance_scale)[0]

    def _base_job(self, mode: Mode, prompt: Prompt, w: int, h: int, seed: int) -> _Job:
        """A job with the style reference (or the neutral image at scale 0) when an IP-Adapter is loaded."""
        job = _Job(mode, prompt, w, h, seed)
        if self.ip_adapter is not None and mode != "ip_adapter":
            if self.style_reference:
                job.ip_images, job.ip_scales, job.ip_tag = [_open(Path(self.style_reference))], [self.style_reference_scale], "style"
            else:
                job.ip_images, job.ip_scales, job.ip_tag = [_neutral()], [0.0], "neutral"
        return job

    # ----------------------------------------------------------------- editing

    def inpaint(
        self,
        image: Image | str | Path,
        mask: Image | str | Path,
        prompt: str,
        *,
        negative_prompt: str = "",
        seed: int = 0,
        strength: float = 1.0,
        steps: int | None = None,
        guidance_scale: float | None = None,
    ) -> ImageResult:
        """Redraw the white part of ``mask`` from ``prompt``; pixels outside it are kept exactly."""
        from PIL import Image as PILImage

        img = _open(image) if not isinstance(image, PILImage.Image) else image.convert("RGB")
        m = (PILImage.open(mask) if not isinstance(mask, PILImage.Image) else mask).convert("L")
        check_dimensions(*img.size)
        if m.size != img.size:
            raise NovelcomicError(f"mask size {m.size[0]}x{m.size[1]} differs from image size {img.size[0]}x{img.size[1]}")
        if not 0 < strength <= 1:
            raise NovelcomicError(f"strength {strength!r} must be more than 0 and at most 1")
        job = self._base_job("inpaint", Prompt(prompt, join([negative_prompt])), img.size[0], img.size[1], seed)
        job.init_image, job.mask_image, job.strength = img, m, float(strength)
        job.meta["strength"] = float(strength)
        result = self._run_all([job], steps=steps, guidance_scale=guidance_scale)[0]
        result.image = PILImage.composite(result.image, img, m)
        return result

    def outpaint(
        self,
        image: Image | str | Path,
        target_aspect: str,
        prompt: str,
        *,
        negative_prompt: str = "",
        seed: int = 0,
        steps: int | None = None,
        guidance_scale: float | None = None,
    ) -> ImageResult:
        """Extend ``image`` to ``target_aspect`` ("16:9" or "9:16"), keeping it in the centre and
        drawing the new area from ``prompt``. ``meta["source_box"]`` is where the original sits."""
        from PIL import Image as PILImage, ImageFilter

        if target_aspect not in ASPECTS:
            raise NovelcomicError(f"target aspect {target_aspect!r} must be one of {', '.join(ASPECTS)}")
        img = _open(image) if not isinstance(image, PILImage.Image) else image.convert("RGB")
        w, h = img.size
        check_dimensions(w, h)
        ratio = ASPECTS[target_aspect]
        if w / h < ratio:
            new_w, new_h = _round_up(h * ratio), h
        else:
            new_w, new_h = w, _round_up(w / ratio)
        if (new_w, new_h) == (w, h):
            raise NovelcomicError(f"image {w}x{h} already has the aspect {target_aspect}")
        check_dimensions(new_w, new_h)
        left, top = (new_w - w) // 2, (new_h - h) // 2
        # The new area starts as a blurred stretch of the picture, so colours continue past the edge.
        canvas = img.resize((new_w, new_h)).filter(ImageFilter.GaussianBlur(max(new_w, new_h) / 16))
        canvas.paste(img, (left, top))
        mask = PILImage.new("L", (new_w, new_h), 255)
        mask.paste(0, (left, top, left + w, top + h))
        result = self.inpaint(canvas, mask, prompt, negative_prompt=negative_prompt, seed=seed, steps=steps,
                              guidance_scale=guidance_scale)
        result.meta.update(mode="outpaint", source_box=(left, top, left + w, top + h), target_aspect=target_aspect)
        return result

    # ----------------------------------------------------------------- running

    def _run_all(self, jobs: list[_Job], *, steps: int | None = None, guidance_scale: float | None = None) -> list[ImageResult]:
        """Run ``jobs`` in as few pipeline calls as their batch keys allow; results in job order."""
        groups: dict[Any, list[int]] = {}
        order: list[list[int]] = []
        for i, job in enumerate(jobs):
            key = job.batch_key()
            if key is None:
                order.append([i])
                continue
            if key not in groups or len(groups[key]) >= self.batch_size:
                groups[key] = []
                order.append(groups[key])
            groups[key].append(i)
        results: list[ImageResult | None] = [None] * len(jobs)
        for idxs in order:
            batch = [jobs[i] for i in idxs]
            images = self._call(batch, steps or self.steps, self.guidance_scale if guidance_scale is None else guidance_scale)
            for i, job, image in zip(idxs, batch, images):
                results[i] = ImageResult(image=image, seed=job.seed, regions=job.regions, meta=job.meta)
        return results  # type: ignore[return-value]

    def _call(self, batch: list[_Job], steps: int, guidance: float) -> list[Image]:
        import torch

        job = batch[0]
        pipes = self._inpaint_pipelines() if job.mode == "inpaint" else self.pipelines()
        pipe = getattr(pipes, _PIPELINE_FOR_MODE[job.mode])  # derived pipelines are made on first use
        if job.strength is not None and job.strength < 1:
            steps = max(steps, math.ceil(1 / job.strength))  # at least one denoising step
        gen = pipes.generator_device()
        if pipes.family.is_multiref:
            kwargs = self._multiref_kwargs(pipe, pipes.family, batch, steps, guidance)
            kwargs["generator"] = [torch.Generator(gen).manual_seed(j.seed) for j in batch]
            return self._invoke(pipe, pipes, job, kwargs, steps, guidance, batch)
        kwargs: dict[str, Any] = {
            "prompt": [j.prompt.positive for j in batch],
            "negative_prompt": [j.prompt.negative for j in batch],
            "num_inference_steps": steps,
            "guidance_scale": guidance,
            "generator": [torch.Generator(gen).manual_seed(j.seed) for j in batch],
        }
        if job.mode != "img2img" or pipes.spec.family == "kolors":
            kwargs.update(height=job.height, width=job.width)
        if job.mode in ("img2img", "inpaint"):
            kwargs.update(image=[j.init_image for j in batch], strength=job.strength)
        if job.mode == "inpaint":
            kwargs["mask_image"] = [j.mask_image for j in batch]
        with pipes.lock:  # (re-entrant: the adapter's scale stays set for this call)
            if pipes.has_ip_adapter:
                self._ip_kwargs(pipe, job, kwargs)
            return self._invoke(pipe, pipes, job, kwargs, steps, guidance, batch)

    def _invoke(self, pipe: Any, pipes: LoadedPipelines, job: _Job, kwargs: dict[str, Any], steps: int,
                guidance: float, batch: list[_Job]) -> list[Image]:
        """One pipeline call (under the model's lock, with the shot's LoRAs); meta recorded on the jobs."""
        with pipes.lock:
            try:
                with self._character_loras(pipe, pipes, job):
                    out = pipe(**kwargs)
            except (RuntimeError, ValueError, TypeError, IndexError) as exc:
                raise BackendError(f"diffusers {job.mode} failed ({type(exc).__name__}: {exc}); try a smaller size, "
                                   f"fewer images per batch or {OPTIONS}cpu_offload") from exc
        meta = {
            "backend": self.name, "model": pipes.spec.model, "family": pipes.spec.family, "mode": job.mode,
            "steps": steps, "guidance_scale": guidance, "scheduler": self.scheduler or type(pipe.scheduler).__name__,
            "device": pipes.spec.device, "dtype": pipes.spec.dtype, "batch": len(batch),
        }
        for j in batch:
            j.meta = {**meta, "seed": j.seed, "prompt": j.prompt.positive, "negative_prompt": j.prompt.negative, **j.meta}
        return [im.convert("RGB") for im in out.images]

    def _multiref_kwargs(self, pipe: Any, family: FamilySpec, batch: list[_Job], steps: int,
                         guidance: float) -> dict[str, Any]:
        """The call arguments of a multi-reference family's pipeline (one job with images, or a
        text-to-image batch)."""
        job = batch[0]
        kwargs: dict[str, Any] = {
            "prompt": [j.prompt.positive for j in batch], "num_inference_steps": steps,
            family.guidance_argument: guidance, "height": job.height, "width": job.width,
            **call_extras(self.family_name, pipe, job.width, job.height),
        }
        negatives = [j.prompt.negative for j in batch]
        if family.negative_prompt and guidance > 1 and any(negatives):
            kwargs["negative_prompt"] = negatives
        if self.max_sequence_length:
            kwargs["max_sequence_length"] = self.max_sequence_length
        if job.mode in ("multiref", "edit"):
            kwargs["image"] = job.ref_images if family.max_references > 1 else job.ref_images[0]
        return kwargs

    def _ip_kwargs(self, pipe: Any, job: _Job, kwargs: dict[str, Any]) -> None:
        """IP-Adapter images, scales and masks for ``job`` (the loaded adapter needs an image on every call)."""
        if job.ip_masks is None:
            pipe.set_ip_adapter_scale(job.ip_scales[0])
            kwargs["ip_adapter_image"] = job.ip_images[0]
            return
        from diffusers.image_processor import IPAdapterMaskProcessor

        masks = IPAdapterMaskProcessor().preprocess(job.ip_masks, height=job.height, width=job.width)
        pipe.set_ip_adapter_scale([job.ip_scales])
        kwargs["ip_adapter_image"] = [job.ip_images]
        kwargs["cross_attention_kwargs"] = {"ip_adapter_masks": [masks.reshape(1, masks.shape[0], *masks.shape[2:])]}

    def _character_loras(self, pipe: Any, pipes: LoadedPipelines, job: _Job) -> Any:
        return _LoraScope(pipe, pipes, job.loras)


class _LoraScope:
    """Loads a shot's character LoRAs beside the configured ones, and removes them afterwards."""

    def __init__(self, pipe: Any, pipes: LoadedPipelines, loras: list[tuple[str, float, str]]) -> None:
        self.pipe, self.pipes, self.loras = pipe, pipes, loras

    def __enter__(self) -> None:
        if not self.loras:
            return
        require_peft("lora")
        loaded: list[str] = []
        try:
            for path, _, name in self.loras:
                load_lora(self.pipe, path, None, name, field=f"characters.{name.removeprefix('character_')}.lora")
                loaded.append(name)
        except BaseException:
            if loaded:
                self.pipe.delete_adapters(loaded)
            raise
        self.pipe.set_adapters(self.pipes.lora_names + loaded, self.pipes.lora_weights + [s for _, s, _ in self.loras])

    def __exit__(self, *exc: object) -> None:
        if not self.loras:
            return
        self.pipe.delete_adapters([name for _, _, name in self.loras])
        if self.pipes.lora_names:
            self.pipe.set_adapters(self.pipes.lora_names, self.pipes.lora_weights)


# --------------------------------------------------------------------------- helpers


def check_dimensions(width: Any, height: Any) -> None:
    """Whole pixels, a multiple of 8 (the VAE's scale), between 64 and 4096 a side."""
    if not isinstance(width, int) or not isinstance(height, int) or isinstance(width, bool) or isinstance(height, bool):
        raise NovelcomicError(f"image size {width!r}x{height!r} must be whole pixels")
    check_size(width, height, MULTIPLE)
    if min(width, height) < MIN_SIDE or max(width, height) > MAX_SIDE:
        raise NovelcomicError(f"image size {width}x{height} must be between {MIN_SIDE} and {MAX_SIDE} pixels a side")


def _round_up(value: float) -> int:
    return int(math.ceil(round(value, 6) / MULTIPLE) * MULTIPLE)


def split_regions(ids: Sequence[str], width: int, height: int) -> dict[str, Box]:
    """Equal full-height strips, left to right, one per character."""
    n = len(ids)
    return {cid: (round(i * width / n), 0, round((i + 1) * width / n), height) for i, cid in enumerate(ids)}


def region_mask(box: Box, width: int, height: int) -> Image:
    from PIL import Image as PILImage

    mask = PILImage.new("L", (width, height), 0)
    mask.paste(255, box)
    return mask


def _at_least(image: Image, side: int) -> Image:
    """``image`` enlarged so that its shorter side is at least ``side`` (FLUX.2 refuses smaller references)."""
    w, h = image.size
    if min(w, h) >= side:
        return image
    k = side / min(w, h)
    return image.resize((max(side, round(w * k)), max(side, round(h * k))))


def _character_triggers(characters: Any) -> list[str]:
    """The trigger words of the characters' own LoRAs (``Character.lora_trigger``)."""
    return [c.lora_trigger for c in characters if c.lora and c.lora_trigger]


def _open(path: str | Path) -> Image:
    from PIL import Image as PILImage, UnidentifiedImageError

    try:
        with PILImage.open(path) as im:
            return im.convert("RGB")
    except (OSError, UnidentifiedImageError) as exc:
        raise NovelcomicError(f"cannot read image {str(path)!r}: {exc}") from exc


def _neutral() -> Image:
    from PIL import Image as PILImage

    return PILImage.new("RGB", (224, 224), NEUTRAL)


def reference_crop(image: Image) -> Image:
    """A character reference for the IP-Adapter: a wide turnaround sheet gives its left square
    (the front view comes first on a sheet); other images are used whole."""
    w, h = image.size
    return image.crop((0, 0, h, h)) if w > 1.6 * h else image


def fit_reference(image: Image, width: int, height: int) -> Image:
    """``image`` cropped to the frame's aspect and resized: the left part of a wide sheet (its
    front view), else the centre."""
    from PIL import Image as PILImage

    w, h = image.size
    target = width / height
    if w / h > target:
        cw = max(1, round(h * target))
        left = 0 if w / h > 1.6 * max(target, 1.0) else (w - cw) // 2
        box = (left, 0, left + cw, h)
    else:
        ch = max(1, round(w / target))
        top = (h - ch) // 2
        box = (0, top, w, top + ch)
    return image.crop(box).resize((width, height), PILImage.Resampling.LANCZOS)


def _resolve_scorer(scorer: Callable[..., float] | str | None) -> Callable[..., float] | None:
    if scorer is None or callable(scorer):
        return scorer
    if isinstance(scorer, str) and ":" in scorer:
        module, _, attr = scorer.partition(":")
        try:
            fn = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise NovelcomicError(f"scorer {scorer!r} cannot be imported: {exc}", field=OPTIONS + "scorer") from exc
        if callable(fn):
            return fn
    raise NovelcomicError(f"scorer {scorer!r} must be a callable or 'module:function'", field=OPTIONS + "scorer")


__all__ = ["DiffusersBackend", "check_dimensions", "fit_reference", "reference_crop", "region_mask", "split_regions"]
