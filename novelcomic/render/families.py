"""The model families the diffusers backend draws with: one :class:`FamilySpec` each, in
:data:`FAMILIES`, the one place that says which diffusers classes a family uses and how its
pipelines are called and prompted.

Two kinds:

- ``unet``: Stable Diffusion 1.5, SDXL (Illustrious, Pony, …) and Kolors. Text-to-image,
  img2img and inpainting pipelines from the same components; characters are kept consistent by
  IP-Adapter (or img2img from their sheet). Prompts are comma-separated tags (Kolors: Chinese).
- ``multiref``: FLUX.2 [klein], Qwen-Image-Edit-Plus (2509) and FLUX.1 Kontext. One pipeline draws
  a scene from several reference images (each character's sheet, in one call); the prompt names
  them by image ("… Lin from image 1 …"). Without references the same family draws text-to-image
  (sheets, shots without characters). Prompts are natural-language sentences.

A family is found from model_index.json's ``_class_name`` (:data:`FamilySpec.pipeline_names`) or,
for a single-file checkpoint, from its keys (:func:`novelcomic.render.loading.detect_checkpoint_family`).

Nothing here imports torch or diffusers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["unet", "multiref"]
PromptStyle = Literal["tags", "sentences"]


@dataclass(frozen=True)
class FamilySpec:
    """The diffusers classes ("module:Class") of one model family and how it is called."""

    text2img: str  # draws from the prompt alone (sheets, shots without characters)
    img2img: str | None
    inpaint: str | None
    pipeline_names: tuple[str, ...]  # ``_class_name`` values in model_index.json
    kind: Kind = "unet"
    #: the class that loads the model directory (default: ``text2img``); the others are derived
    #: from its components with ``from_pipe``
    loader: str | None = None
    #: the pipeline that takes a list of reference images (``image=[…]``); multiref families only
    multiref: str | None = None
    #: most reference images one call takes (the model card's figure); extra ones are dropped
    max_references: int = 0
    prompt_style: PromptStyle = "tags"
    #: a prompt in the project's language when it is one of these, else English
    languages: tuple[str, ...] = ("en",)
    #: how the prompt names the n-th reference image, per prompt language
    image_label: tuple[tuple[str, str], ...] = (("en", "image {n}"),)
    negative_prompt: bool = True  # the pipeline takes ``negative_prompt``
    #: the call argument that sets classifier-free guidance (Qwen-Image: ``true_cfg_scale``)
    guidance_argument: str = "guidance_scale"
    #: True: an instruction ("make it night") is drawn by the model itself from the current image
    instruction_edits: bool = False
    default_steps: int | None = None  # the model card's step count (None: the backend's ``steps``)
    default_guidance: float | None = None
    #: the backbone a LoRA / ``layerwise_fp8`` / ``compile`` applies to
    denoiser: str = "unet"

    @property
    def is_multiref(self) -> bool:
        return self.kind == "multiref"

    @property
    def load_class(self) -> str:
        return self.loader or self.text2img

    def prompt_language(self, language: str) -> str:
        """The language this family's prompt is written in for a project in ``language``."""
        return language if language in self.languages else "en"

    def label(self, n: int, language: str) -> str:
        """How the prompt names reference image ``n`` (1-based) in ``language``."""
        labels = dict(self.image_label)
        return labels.get(self.prompt_language(language), labels["en"]).format(n=n)


#: Kolors comes from ``diffusers.pipelines.kolors``: the top-level names are dummies when
#: sentencepiece is missing, although only its tokenizer needs it.
FAMILIES: dict[str, FamilySpec] = {
    "sd15": FamilySpec(
        "diffusers:StableDiffusionPipeline", "diffusers:StableDiffusionImg2ImgPipeline",
        "diffusers:StableDiffusionInpaintPipeline",
        ("StableDiffusionPipeline", "StableDiffusionImg2ImgPipeline", "StableDiffusionInpaintPipeline"),
    ),
    "sdxl": FamilySpec(
        "diffusers:StableDiffusionXLPipeline", "diffusers:StableDiffusionXLImg2ImgPipeline",
        "diffusers:StableDiffusionXLInpaintPipeline",
        ("StableDiffusionXLPipeline", "StableDiffusionXLImg2ImgPipeline", "StableDiffusionXLInpaintPipeline"),
    ),
    "kolors": FamilySpec(
        "diffusers.pipelines.kolors:KolorsPipeline", "diffusers.pipelines.kolors:KolorsImg2ImgPipeline", None,
        ("KolorsPipeline", "KolorsImg2ImgPipeline"), languages=("zh", "en"),
    ),
    # FLUX.2 [klein] 4B/9B: text-to-image and multi-reference editing in one pipeline; BFL's docs
    # give "up to 4" reference images for klein. The distilled klein runs 4 steps, guidance 1.
    "flux2-klein": FamilySpec(
        "diffusers:Flux2KleinPipeline", None, "diffusers:Flux2KleinInpaintPipeline",
        ("Flux2KleinPipeline",), kind="multiref", multiref="diffusers:Flux2KleinPipeline", max_references=4,
        prompt_style="sentences", negative_prompt=False, instruction_edits=True, default_steps=4,
        default_guidance=1.0, denoiser="transformer",
    ),
    # Qwen-Image-Edit-2509 ("Plus"): 1-3 input images (model card). Its text encoder (Qwen2.5-VL)
    # reads Chinese; its template labels the inputs "Picture 1: …", so the prompt does too.
    # Sheets and shots without characters: QwenImagePipeline on the same components.
    "qwen-image-edit-plus": FamilySpec(
        "diffusers:QwenImagePipeline", None, None, ("QwenImageEditPlusPipeline",), kind="multiref",
        loader="diffusers:QwenImageEditPlusPipeline", multiref="diffusers:QwenImageEditPlusPipeline",
        max_references=3, prompt_style="sentences", languages=("zh", "en"),
        image_label=(("en", "Picture {n}"), ("zh", "图{n}")), guidance_argument="true_cfg_scale",
        instruction_edits=True, default_steps=40, default_guidance=4.0, denoiser="transformer",
    ),
    # FLUX.1 Kontext [dev]: one input image (the first speaker's sheet); text-to-image without it.
    "flux-kontext": FamilySpec(
        "diffusers:FluxKontextPipeline", None, None, ("FluxKontextPipeline",), kind="multiref",
        multiref="diffusers:FluxKontextPipeline", max_references=1, prompt_style="sentences",
        negative_prompt=False, instruction_edits=True, default_steps=28, default_guidance=2.5,
        denoiser="transformer",
    ),
}

UNET_FAMILIES = tuple(name for name, spec in FAMILIES.items() if not spec.is_multiref)
MULTIREF_FAMILIES = tuple(name for name, spec in FAMILIES.items() if spec.is_multiref)
#: families a single-file checkpoint can be (the configs in ``single_file_configs/``)
SINGLE_FILE_FAMILIES = ("sd15", "sdxl")


#: FLUX.2 [klein]'s prompt embedding: these hidden layers of its Qwen3 text encoder, concatenated.
KLEIN_TEXT_LAYERS = (9, 18, 27)


def call_extras(family: str, pipe: Any, width: int, height: int) -> dict[str, Any]:
    """Call arguments a family's pipeline needs beyond prompt, size, steps and guidance, read from
    the loaded components' configs (so a smaller model of the same family works too)."""
    if family == "flux-kontext":  # Kontext sizes its output from max_area, not from width × height
        return {"max_area": width * height}
    if family == "flux2-klein":
        text = pipe.text_encoder.config
        layers, width = text.num_hidden_layers, text.hidden_size
        k = max(1, pipe.transformer.config.joint_attention_dim // width)  # how many layers are concatenated
        if k == len(KLEIN_TEXT_LAYERS) and layers >= max(KLEIN_TEXT_LAYERS):
            return {"text_encoder_out_layers": KLEIN_TEXT_LAYERS}
        return {"text_encoder_out_layers": tuple(max(1, round(layers * (i + 1) / k)) for i in range(k))}
    return {}


def family_for_class(class_name: str) -> str | None:
    """The family whose model_index.json ``_class_name`` is ``class_name``, or None."""
    for name, spec in FAMILIES.items():
        if class_name in spec.pipeline_names:
            return name
    return None


__all__ = ["FAMILIES", "KLEIN_TEXT_LAYERS", "call_extras", "MULTIREF_FAMILIES", "SINGLE_FILE_FAMILIES", "UNET_FAMILIES", "FamilySpec", "family_for_class"]
