"""What a character's LoRA is trained on: views cut from its sheet(s) and reference images, and
one caption.

- Sources (:func:`source_images`): the character's ``reference_images`` (through the path policy)
  and its generated sheet when there is one; at least one is needed.
- Views (:func:`make_views`): each source padded to a square (the whole figure), square windows
  along its long side (half-overlapping: the single views of a turnaround sheet) and a centre crop,
  each resized to the training resolution. The loop adds the horizontal flip of every view.
- Caption (:func:`caption`): the trigger token, then the character's appearance (else its
  description, else its name), species words first for a non-human: the words its shots' prompts
  are built from, so the LoRA attaches the look to the trigger and to those words.
- Trigger (:func:`trigger_token`): ``nc_<id>``; an id with characters outside ASCII letters,
  digits, ``_`` and ``-`` (a Chinese id) becomes ``nc_<6 hex digits>`` of its hash, so the token
  stays a few CLIP tokens long.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from novelcomic.errors import NovelcomicError

if TYPE_CHECKING:
    from PIL.Image import Image

    from novelcomic.models import Character
    from novelcomic.project import Project

_ASCII_ID = re.compile(r"^[A-Za-z0-9_\-]+$")
DATASET_VERSION = 1  # bump when the views or the caption recipe change: a trained LoRA is then out of date


def trigger_token(character_id: str) -> str:
    """The word that calls up a trained character: ``nc_<id>`` (see the module doc)."""
    if _ASCII_ID.match(character_id):
        return f"nc_{character_id.lower()}"
    return "nc_" + hashlib.sha1(character_id.encode("utf-8")).hexdigest()[:6]


def caption(character: Character, trigger: str) -> str:
    """The caption of every training view (see the module doc)."""
    from novelcomic.render.prompts import SPECIES_WORDS, join

    words = character.appearance.strip() or character.description.strip() or character.name
    species = SPECIES_WORDS.get(character.species, "") if character.species != "human" else ""
    return join([trigger, species, words])


def source_images(project: Project, character: Character) -> list[Path]:
    """The character's reference images and its sheet (whichever exist), checked readable."""
    from novelcomic.paths import resolve_user_path

    found = [resolve_user_path(p, project.dir, f"characters.{character.id}.reference_images")
             for p in character.reference_images]
    for path in found:
        if not path.is_file():
            raise NovelcomicError(f"reference image {str(path)!r} of character {character.id!r} is not a file",
                                  field=f"characters.{character.id}.reference_images")
    sheet = project.sheet_path(character.id)
    if sheet.is_file():
        found.append(sheet)
    if not found:
        raise NovelcomicError(
            f"character {character.id!r} has no sheet and no reference_images to train on: run "
            f"`novelcomic run {project.name} --stage design` first, or give it reference_images in characters.yaml"
        )
    return found


@dataclass(frozen=True)
class View:
    """One training image: where it came from and how it was cut."""

    source: Path
    box: tuple[int, int, int, int]  # in the source, may reach outside it (padding)
    image: Image


def _open(path: Path) -> Image:
    from PIL import Image as PILImage, UnidentifiedImageError

    try:
        with PILImage.open(path) as im:
            return im.convert("RGB")
    except (OSError, UnidentifiedImageError) as exc:
        raise NovelcomicError(f"cannot read image {str(path)!r}: {exc}") from exc


def _background(image: Image) -> tuple[int, int, int]:
    """The mean colour of the four corners (a sheet's plain background)."""
    w, h = image.size
    px = [image.getpixel((x, y)) for x, y in ((0, 0), (w - 1, 0), (0, h - 1), (w - 1, h - 1))]
    return tuple(sum(p[i] for p in px) // 4 for i in range(3))  # type: ignore[return-value]


def boxes(width: int, height: int) -> list[tuple[int, int, int, int]]:
    """The crop boxes of one source (see the module doc): padded square, windows, centre crop."""
    side, long = min(width, height), max(width, height)
    out = []
    pad = long
    out.append(((width - pad) // 2, (height - pad) // 2, (width - pad) // 2 + pad, (height - pad) // 2 + pad))
    if long > side * 1.15:
        n = max(2, math.ceil(2 * long / side) - 1)  # half-overlapping windows
        for i in range(n):
            start = round(i * (long - side) / (n - 1))
            out.append((start, 0, start + side, side) if width >= height else (0, start, side, start + side))
    inner = round(side * 0.8)
    cx, cy = width // 2, height // 2
    out.append((cx - inner // 2, cy - inner // 2, cx - inner // 2 + inner, cy - inner // 2 + inner))
    return out


def make_views(paths: list[Path], resolution: int) -> list[View]:
    """Every view of every source, ``resolution`` pixels square."""
    from PIL import Image as PILImage

    views = []
    for path in paths:
        image = _open(path)
        fill = _background(image)
        for box in boxes(*image.size):
            x0, y0, x1, y1 = box
            canvas = PILImage.new("RGB", (x1 - x0, y1 - y0), fill)
            canvas.paste(image, (-x0, -y0))
            views.append(View(path, box, canvas.resize((resolution, resolution), PILImage.Resampling.LANCZOS)))
    return views


def sources_digest(paths: list[Path]) -> list[dict[str, Any]]:
    """Names and content hashes of the sources, for the training run's inputs hash."""
    from novelcomic.fsutil import sha256_file

    return [{"name": p.name, "sha256": sha256_file(p)} for p in paths]


__all__ = ["DATASET_VERSION", "View", "boxes", "caption", "make_views", "source_images", "sources_digest", "trigger_token"]
