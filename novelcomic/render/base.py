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


class ImageBackend(Protocol):
    name: str

    def design_character(self, request: SheetRequest) -> ImageResult: ...

    def render_shot(self, request: ShotRequest) -> ImageResult: ...


def check_size(width: int, height: int, multiple: int = 2) -> None:
    if width <= 0 or height <= 0:
        raise NovelcomicError(f"image size {width}x{height} must be positive")
    if width % multiple or height % multiple:
        raise NovelcomicError(f"image size {width}x{height} must be a multiple of {multiple}")
