"""The image-backend interface, shared by the design stage (sheets) and the render stage (shots).

A backend returns images; the pipeline saves them atomically and records them. Inputs are checked
up front (see :func:`check_size`) with errors that name the bad value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from novelcomic.errors import NovelcomicError
from novelcomic.models import Character, Location, Period, Prop, Scene, Shot

if TYPE_CHECKING:  # Pillow is cheap, but keep the interface module import-light anyway
    from PIL.Image import Image


@dataclass
class CharacterRef:
    character: Character
    reference_images: list[Path] = field(default_factory=list)  # sheets or the user's images


@dataclass
class SheetRequest:
    character: Character
    style: list[str]
    width: int
    height: int
    seed: int
    language: str = "zh"
    # The book's period and region (project.yaml's, else the planner's from locations.yaml):
    # how clothes and buildings look. "unknown": backends guess from the request's own words.
    period: Period = "unknown"


@dataclass
class ShotRequest:
    chapter: str
    scene: Scene
    shot: Shot
    characters: list[CharacterRef]  # in the order of shot.characters
    location: Location | None
    props: list[Prop]
    style: list[str]
    width: int
    height: int
    seed: int
    language: str = "zh"
    speaker_names: dict[str, str] = field(default_factory=dict)  # id → display name, for lettering
    # The finished image prompt for diffusion backends (polished by the LLM or built by rules
    # from the style library); None for backends that draw from the shot itself (animatic).
    prompt: str | None = None
    negative_prompt: str | None = None
    lettering: bool = True  # the project's switch; backends that letter themselves honour it
    # The part of the still, (left, top, right, bottom) as fractions, that the shot's camera move
    # keeps on screen and clear of the subtitles (novelcomic.compose.motion.safe_area): lettering
    # and faces belong inside it. None: the whole frame above the subtitle band.
    safe_area: tuple[float, float, float, float] | None = None
    period: Period = "unknown"  # as in SheetRequest


@dataclass
class ImageResult:
    image: "Image"
    seed: int
    # Where each character was drawn, (left, top, right, bottom) in pixels: used by lettering
    # (never over a face) and by consistency checks.
    regions: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ImageCapabilities:
    """What an image backend can do. A backend class declares it (``capabilities =
    ImageCapabilities(...)``); where it depends on the model or workflow it was given, the
    instance sets its own (``self.capabilities = replace(type(self).capabilities, ...)``). The
    render stage and edit-shot ask this declaration (:func:`capabilities_of`); they never look for
    methods or attributes on the backend."""

    references: int = 0  # reference images one shot can take: 0 none, 1 one per character (IP-Adapter), N a multi-reference model's limit
    prompts: bool = True  # draws from a written prompt (``prompt_family``); False: from the shot itself (the animatic)
    inpaint: bool = False  # has ``inpaint(image, mask, prompt, *, seed, negative_prompt)``
    outpaint: bool = False  # has ``outpaint(image, aspect, prompt, *, seed, negative_prompt)``
    instruction_edit: bool = False  # an edit model: ``edit_instruction(image, instruction, *, seed)``
    style_reference: bool = False  # takes project.yaml's ``style_reference`` image (attribute ``style_reference``)
    plain_still: bool = False  # letters its own stills and can hand back the one before lettering (``keep_plain``)

    def can(self, edit: str) -> bool:
        """``edit``: inpaint | outpaint | instruction."""
        return {"inpaint": self.inpaint, "outpaint": self.outpaint, "instruction": self.instruction_edit}.get(edit, False)


class DependsOnModel:
    """A declaration that depends on what the instance was given (its model, its workflow):
    ``capabilities = DependsOnModel(general, lambda self: …)``. Read on the class it is
    ``general`` (what the backend can do with some model: which backends can inpaint at all);
    read on an instance, what this one can."""

    def __init__(self, general: ImageCapabilities, of_instance: Any) -> None:
        self.general = general
        self.of_instance = of_instance

    def __get__(self, obj: object, owner: type | None = None) -> ImageCapabilities:
        return self.general if obj is None else self.of_instance(obj)


#: What a backend that declares nothing (a plugin written before declarations) is taken to be: it
#: draws from the request itself (no written prompt), with no references and no edits.
UNDECLARED = ImageCapabilities(prompts=False)


def capabilities_of(backend: object) -> ImageCapabilities:
    """The declaration of a backend instance or class (:data:`UNDECLARED` when there is none)."""
    caps = getattr(backend, "capabilities", None)
    return caps if isinstance(caps, ImageCapabilities) else UNDECLARED


class ImageBackend(Protocol):
    name: str
    capabilities: ImageCapabilities

    def design_character(self, request: SheetRequest) -> ImageResult: ...

    def render_shot(self, request: ShotRequest) -> ImageResult: ...


def check_size(width: int, height: int, multiple: int = 2) -> None:
    if width <= 0 or height <= 0:
        raise NovelcomicError(f"image size {width}x{height} must be positive")
    if width % multiple or height % multiple:
        raise NovelcomicError(f"image size {width}x{height} must be a multiple of {multiple}")
