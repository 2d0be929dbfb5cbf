"""Automatic quality checks for rendered shots: is each character still the character of its
reference sheet, and does the image show what the prompt asked for?

- **consistency**: the cosine similarity between an image embedding of the character's region in
  the shot and one of the character's sheet (CLIP or DINOv2 image features);
- **alignment**: CLIPScore-style cosine between the shot's image and text embeddings (CLIP only;
  DINOv2 has no text tower, so alignment is None).

:func:`score_shot` compares both with the thresholds of ``ProjectConfig.qa``; :func:`reroll`
re-renders a failing shot with new seeds and keeps the best attempt; :func:`write_qa_report`
writes a Markdown table and a contact sheet of a chapter's shots with their scores.

Models load from a local directory or a hub id (the hub cache; there is no download without a
network), once per process (:func:`load_embedder` is cached).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from novelcomic.errors import BackendError, NovelcomicError
from novelcomic.fsutil import atomic_path, atomic_write_text
from novelcomic.models import QAConfig

if TYPE_CHECKING:
    import numpy as np
    from PIL.Image import Image

    from novelcomic.render.base import ImageResult

#: Each side of a character's region is widened by this fraction before cropping.
REGION_PAD = 0.05


@dataclass(frozen=True)
class ShotScore:
    """One shot's scores against the project's thresholds."""

    consistency: dict[str, float]  # character id → cosine vs. its sheet, in [-1, 1]
    alignment: float | None  # cosine of image vs. prompt; None without a text tower or prompt
    passed: bool
    reasons: list[str] = field(default_factory=list)  # why it failed (empty when passed)
    seed: int | None = None

    @property
    def total(self) -> float:
        """A single number for ranking attempts: mean consistency plus alignment."""
        mean = sum(self.consistency.values()) / len(self.consistency) if self.consistency else 0.0
        return mean + (self.alignment or 0.0)

    def rank(self) -> tuple[bool, float]:
        return (self.passed, self.total)


class ImageEmbedder:
    """A CLIP (images and text) or DINOv2 (images only) model with its preprocessing.

    Build one with :func:`load_embedder`, which loads each model once per process.
    """

    def __init__(self, name: str, kind: str, model: Any, image_processor: Any, tokenizer: Any | None) -> None:
        self.name, self.kind = name, kind
        self.model, self.image_processor, self.tokenizer = model, image_processor, tokenizer

    @property
    def has_text(self) -> bool:
        return self.kind == "clip" and self.tokenizer is not None

    # -- embeddings

    def embed_images(self, images: Sequence["Image"]) -> "np.ndarray":
        """Unit-length image embeddings, one row per image."""
        import torch

        if not images:
            raise NovelcomicError("no images to embed")
        rgb = [im.convert("RGB") for im in images]
        inputs = self.image_processor(images=rgb, return_tensors="pt")
        with torch.inference_mode():
            if self.kind == "clip":
                out = self.model.get_image_features(pixel_values=inputs["pixel_values"])
                feats = out if isinstance(out, torch.Tensor) else out.pooler_output
            else:
                feats = self.model(pixel_values=inputs["pixel_values"]).pooler_output
        return _unit(feats.float().cpu().numpy())

    def embed_texts(self, texts: Sequence[str]) -> "np.ndarray":
        """Unit-length text embeddings (CLIP only); texts longer than the model takes are cut."""
        import torch

        if not self.has_text:
            raise NovelcomicError(f"QA embedder {self.name!r} ({self.kind}) has no text encoder")
        max_len = int(getattr(self.model.config.text_config, "max_position_embeddings", 77))
        tokens = self.tokenizer(list(texts), padding=True, truncation=True, max_length=max_len, return_tensors="pt")
        with torch.inference_mode():
            out = self.model.get_text_features(input_ids=tokens["input_ids"], attention_mask=tokens.get("attention_mask"))
            feats = out if isinstance(out, torch.Tensor) else out.pooler_output
        return _unit(feats.float().cpu().numpy())

    # -- scores

    def consistency(self, shot_image: "Image", region: Sequence[float], sheet_image: "Image") -> float:
        """Cosine of the embeddings of the character's region of ``shot_image`` and its sheet."""
        crop = crop_region(shot_image, region)
        a, b = self.embed_images([crop, sheet_image])
        return _cos(a, b)

    def alignment(self, image: "Image", prompt: str) -> float | None:
        """CLIPScore-style cosine of image and prompt; None for DINOv2 or an empty prompt."""
        if not self.has_text or not prompt.strip():
            return None
        (a,) = self.embed_images([image])
        (b,) = self.embed_texts([prompt])
        return _cos(a, b)


def _unit(x: "np.ndarray") -> "np.ndarray":
    import numpy as np

    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def _cos(a: "np.ndarray", b: "np.ndarray") -> float:
    return float(max(-1.0, min(1.0, float((a * b).sum()))))


def crop_region(image: "Image", region: Sequence[float], pad: float = REGION_PAD) -> "Image":
    """The part of ``image`` inside ``region`` (left, top, right, bottom), widened by ``pad``."""
    try:
        l, t, r, b = (float(v) for v in region)
    except (TypeError, ValueError):
        raise NovelcomicError(f"region {region!r} must be (left, top, right, bottom)") from None
    dx, dy = (r - l) * pad, (b - t) * pad
    box = (
        max(0, math.floor(l - dx)), max(0, math.floor(t - dy)),
        min(image.width, math.ceil(r + dx)), min(image.height, math.ceil(b + dy)),
    )
    if box[2] - box[0] < 2 or box[3] - box[1] < 2:
        raise NovelcomicError(f"region {tuple(region)!r} lies outside the {image.width}x{image.height} image")
    return image.crop(box)


# --------------------------------------------------------------------------- loading


def load_embedder(name_or_path: str | Path) -> ImageEmbedder:
    """The embedder for ``name_or_path`` (a local CLIP/DINOv2 directory or a hub id), loaded once
    per process. Raises :class:`BackendError` naming it when it cannot be found or is not one of
    those model types."""
    if not isinstance(name_or_path, (str, Path)) or not str(name_or_path).strip():
        raise NovelcomicError(f"qa.embedder {name_or_path!r} must name a model directory or hub id", field="qa.embedder")
    local = Path(str(name_or_path)).expanduser()
    key = str(local.resolve()) if local.is_dir() else str(name_or_path)
    return _load_embedder_cached(key)


def embedder_for(config: QAConfig) -> ImageEmbedder:
    """The embedder ``qa.embedder`` names; an error saying what to set when it names none."""
    if not config.embedder:
        raise NovelcomicError(
            "qa.enabled needs qa.embedder: a CLIP or DINOv2 model directory or hub id "
            "(e.g. openai/clip-vit-base-patch32 downloaded beforehand)", field="qa.embedder"
        )
    return load_embedder(config.embedder)


@functools.lru_cache(maxsize=4)
def _load_embedder_cached(source: str) -> ImageEmbedder:
    from transformers import AutoConfig, AutoImageProcessor, AutoModel, AutoTokenizer

    hint = "set qa.embedder in project.yaml to a local CLIP or DINOv2 model directory (or a hub id already cached)"
    looks_local = source.startswith((".", "/", "~")) or Path(source).is_absolute()
    if looks_local and not Path(source).is_dir():
        raise BackendError(f"QA embedder {source!r} not found: no such directory; {hint}", field="qa.embedder")
    try:
        # the local cache first: without a network a hub lookup only times out
        config = AutoConfig.from_pretrained(source, local_files_only=True)
    except (OSError, ValueError) as exc:
        if looks_local or Path(source).is_dir() or _offline():
            raise BackendError(f"QA embedder {source!r} could not be loaded ({exc}); {hint}", field="qa.embedder") from exc
        try:
            config = AutoConfig.from_pretrained(source)
        except (OSError, ValueError) as exc2:
            raise BackendError(
                f"QA embedder {source!r} could not be loaded ({exc2}); {hint}", field="qa.embedder"
            ) from exc2
    kind = getattr(config, "model_type", "")
    if kind not in ("clip", "dinov2"):
        raise BackendError(f"QA embedder {source!r} is a {kind!r} model; use a CLIP or DINOv2 model", field="qa.embedder")
    try:
        processor = AutoImageProcessor.from_pretrained(source)
        if kind == "clip":
            from transformers import CLIPModel

            model = CLIPModel.from_pretrained(source)
            try:
                tokenizer = AutoTokenizer.from_pretrained(source)
            except (OSError, ValueError, TypeError):
                tokenizer = None  # image features still work; alignment will be None
        else:
            model = AutoModel.from_pretrained(source)
            tokenizer = None
    except (OSError, ValueError) as exc:
        raise BackendError(f"QA embedder {source!r} could not be loaded ({exc}); {hint}", field="qa.embedder") from exc
    model.eval()
    return ImageEmbedder(source, kind, model, processor, tokenizer)


def _offline() -> bool:
    """Whether the Hugging Face hub is switched off (read now, not when huggingface_hub was imported)."""
    import os

    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


# --------------------------------------------------------------------------- scoring and re-rolls


def score_shot(
    embedder: ImageEmbedder,
    image: "Image",
    regions: Mapping[str, Sequence[float]],
    sheets: Mapping[str, "Image"],
    prompt: str,
    config: QAConfig,
    *,
    seed: int | None = None,
) -> ShotScore:
    """Score one shot: each character with both a region and a sheet is compared with its sheet;
    the image is compared with ``prompt``. Fails below ``config.min_consistency`` or
    ``config.min_alignment``."""
    consistency: dict[str, float] = {}
    reasons: list[str] = []
    for cid, sheet in sheets.items():
        if cid not in regions:
            continue
        value = embedder.consistency(image, regions[cid], sheet)
        consistency[cid] = value
        if value < config.min_consistency:
            reasons.append(f"{cid}: consistency {value:.2f} < {config.min_consistency:.2f}")
    alignment = embedder.alignment(image, prompt)
    if alignment is not None and alignment < config.min_alignment:
        reasons.append(f"alignment {alignment:.2f} < {config.min_alignment:.2f}")
    return ShotScore(consistency, alignment, not reasons, reasons, seed)


def next_seed(seed: int, attempt: int) -> int:
    """The seed of re-roll ``attempt`` (1, 2, …): deterministic, far from the original."""
    return (seed + attempt * 1_000_003) % (2**31)


def reroll(
    render_fn: Callable[[Any], "ImageResult"],
    request: Any,
    scorer: Callable[["ImageResult"], ShotScore],
    max_rerolls: int,
) -> tuple["ImageResult", list[ShotScore]]:
    """Render ``request``; while the result fails, re-render with new seeds, up to ``max_rerolls``
    more times. Returns the best attempt (passing first, then by :attr:`ShotScore.total`) and the
    score of every attempt in order (each carrying its seed)."""
    if not isinstance(max_rerolls, int) or isinstance(max_rerolls, bool) or max_rerolls < 0:
        raise NovelcomicError(f"rerolls {max_rerolls!r} must be a whole number of at least 0", field="qa.rerolls")
    scores: list[ShotScore] = []
    best: tuple[tuple[bool, float], "ImageResult"] | None = None
    for attempt in range(max_rerolls + 1):
        req = request if attempt == 0 else dataclasses.replace(request, seed=next_seed(request.seed, attempt))
        result = render_fn(req)
        score = dataclasses.replace(scorer(result), seed=result.seed)
        scores.append(score)
        if best is None or score.rank() > best[0]:
            best = (score.rank(), result)
        if score.passed:
            break
    assert best is not None
    return best[1], scores


# --------------------------------------------------------------------------- the report


@dataclass
class QARow:
    """One shot in a chapter's QA report. ``image`` is a path or an image; None for a shot that
    was not generated (``note`` says why, e.g. blocked by the safety filter)."""

    shot_id: str
    seed: int | None
    score: ShotScore | None
    image: "Path | Image | None" = None
    note: str = ""

    @property
    def flags(self) -> str:
        parts = [self.note] if self.note else []
        if self.score is not None:
            parts += self.score.reasons or ["ok"]
        return "; ".join(parts)


def write_qa_report(chapter: str, rows: Sequence[QARow], out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``qa-<chapter>.md`` (a table: shot, seed, consistency per character, alignment,
    flags) and ``qa-<chapter>.png`` (a contact sheet: each shot's thumbnail with its scores
    lettered under it) into ``out_dir``; returns both paths."""
    out = Path(out_dir)
    md_path, png_path = out / f"qa-{chapter}.md", out / f"qa-{chapter}.png"
    chars = sorted({cid for r in rows if r.score for cid in r.score.consistency})
    head = ["shot", "seed", *(f"consistency {c}" for c in chars), "alignment", "flags"]
    lines = [f"# QA report: chapter {chapter}", "", f"![contact sheet]({png_path.name})", ""]
    passed = sum(1 for r in rows if r.score is not None and r.score.passed)
    lines += [f"{passed} of {len(rows)} shots passed.", ""]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cons = [_fmt(r.score.consistency.get(c)) if r.score else "" for c in chars]
        cells = [r.shot_id, "" if r.seed is None else str(r.seed), *cons,
                 _fmt(r.score.alignment) if r.score else "", r.flags]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    sheet = contact_sheet(chapter, rows)
    with atomic_path(png_path) as tmp:
        sheet.save(tmp, format="PNG")
    atomic_write_text(md_path, "\n".join(lines) + "\n")
    return md_path, png_path


def _fmt(v: float | None) -> str:
    return "—" if v is None else f"{v:.3f}"


#: Contact-sheet layout, in pixels.
THUMB_W = 180
COLUMNS = 4
_GAP = 12
_TEXT = 15


def contact_sheet(chapter: str, rows: Sequence[QARow]) -> "Image":
    """The shots as a grid of thumbnails, each with its scores underneath (failures in red)."""
    from PIL import Image as PILImage
    from PIL import ImageDraw

    from novelcomic.render.lettering import LetterFonts

    fonts = LetterFonts(None, "zh")
    font, title_font = fonts.get(_TEXT), fonts.get(_TEXT * 1.5)
    thumbs = [_thumbnail(r.image) for r in rows]
    thumb_h = max((t.height for t in thumbs), default=THUMB_W)
    text_h = int(_TEXT * 1.35 * 3 + 6)
    cols = max(1, min(COLUMNS, len(rows)))
    n_rows = max(1, math.ceil(len(rows) / cols))
    title_h = int(_TEXT * 2.6)
    cell_w, cell_h = THUMB_W + _GAP, thumb_h + text_h + _GAP
    sheet = PILImage.new("RGB", (_GAP + cols * cell_w, title_h + _GAP + n_rows * cell_h), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    draw.text((_GAP, _GAP * 0.6), f"QA {chapter}", font=title_font, fill=(20, 20, 24))
    for i, (row, thumb) in enumerate(zip(rows, thumbs)):
        x = _GAP + (i % cols) * cell_w
        y = title_h + _GAP + (i // cols) * cell_h
        sheet.paste(thumb, (x, y))
        ok = row.score is not None and row.score.passed
        colour = (40, 150, 70) if ok else (210, 40, 40)
        draw.rectangle((x - 2, y - 2, x + thumb.width + 1, y + thumb.height + 1), outline=colour, width=2)
        texts = _score_lines(row)
        for j, text in enumerate(texts):
            draw.text((x, y + thumb.height + 4 + j * _TEXT * 1.35), _clip(text, font, THUMB_W), font=font,
                      fill=colour if j == len(texts) - 1 else (30, 30, 34))
    return sheet


def _score_lines(row: QARow) -> list[str]:
    seed = "" if row.seed is None else f"  seed {row.seed}"
    first = f"{row.shot_id}{seed}"
    if row.score is None:
        return [first, "", row.note or "not rendered"]
    cons = "  ".join(f"{cid} {v:.2f}" for cid, v in row.score.consistency.items()) or "no characters"
    align = "align —" if row.score.alignment is None else f"align {row.score.alignment:.2f}"
    verdict = "ok" if row.score.passed else "FAIL " + "; ".join(row.score.reasons)
    return [first, cons, f"{align}  {verdict}"]


def _clip(text: str, font: Any, width: float) -> str:
    if font.getlength(text) <= width:
        return text
    while text and font.getlength(text + "…") > width:
        text = text[:-1]
    return text + "…"


def _thumbnail(image: "Path | Image | None") -> "Image":
    from PIL import Image as PILImage

    if image is None:
        return PILImage.new("RGB", (THUMB_W, THUMB_W), (200, 200, 200))
    if isinstance(image, (str, Path)):
        if not Path(image).is_file():
            raise NovelcomicError(f"shot image {image} not found for the QA report")
        with PILImage.open(image) as im:
            im = im.convert("RGB")
    else:
        im = image.convert("RGB")
    h = max(1, round(im.height * THUMB_W / im.width))
    return im.resize((THUMB_W, h), PILImage.LANCZOS)


__all__ = [
    "ImageEmbedder", "QARow", "ShotScore", "contact_sheet", "crop_region", "embedder_for", "load_embedder", "next_seed", "reroll",
    "score_shot", "write_qa_report",
]
