"""A contact sheet of one chapter: one frame per shot in a grid, each labelled with the shot id and
the name (and kind) of its location, to see at a glance whether backdrops follow the places and
people look like the book's period.

Frames come from the rendered shot images (``render/<ch>/<shot>.png``), or with ``--from-video``
from the chapter's MP4 at the middle of each shot (the shot spans are read from
``out/<ch>.otio``, which the compose stage writes next to the video). Labels are drawn with the
CJK font the project uses (:mod:`novelcomic.fonts`). The sheet is written as a PNG; cells are
made smaller (and the colours reduced to a palette) until the file fits ``--max-bytes``.

    python benchmarks/contact_sheet.py sanguo 01 --projects-dir /tmp/nc-user --out docs/contact-sheets/sanguo-01.png
    python benchmarks/contact_sheet.py projects/lantern-fox 1 --from-video --out /tmp/lf-01.png
"""

from __future__ import annotations

import argparse
import io
import math
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from novelcomic.fonts import pil_font  # noqa: E402
from novelcomic.project import Project  # noqa: E402

BG = (246, 244, 238)
INK = (34, 30, 38)
GREY = (110, 104, 112)
#: A shot whose location differs from the shot before gets its label in this colour.
NEW_PLACE = (176, 48, 40)


@dataclass
class Cell:
    shot_id: str
    location: str  # "名字 (kind)" or "—"
    people: str  # the names drawn in the shot
    image: Image.Image | None  # None: no frame (not rendered yet, or blocked)
    new_place: bool = False


def open_project(name: str, projects_dir: str | None) -> Project:
    path = Path(name)
    if path.is_dir() and (path / "project.yaml").is_file():
        return Project(path)
    return Project.open(name, projects_dir)


def chapter_id(project: Project, chapter: str) -> str:
    """The chapter id for ``chapter`` given as an id (``01``) or a number (``1``)."""
    ids = [c.id for c in project.config().chapters]
    if chapter in ids:
        return chapter
    if chapter.isdigit() and 1 <= int(chapter) <= len(ids):
        return ids[int(chapter) - 1]
    raise SystemExit(f"no chapter {chapter!r} in {project.dir} (chapters: {', '.join(ids)})")


def shot_spans(project: Project, chapter: str) -> dict[str, tuple[float, float]]:
    """shot id → (start, end) seconds in the chapter's video, from the OpenTimelineIO export."""
    import opentimelineio as otio

    path = project.dir / "out" / f"{chapter}.otio"
    if not path.is_file():
        raise SystemExit(f"{path} is missing: compose the chapter first (novelcomic run … --stage compose)")
    timeline = otio.adapters.read_from_file(str(path))
    spans: dict[str, tuple[float, float]] = {}
    for track in timeline.video_tracks():
        for clip in track.find_clips():
            rng = clip.trimmed_range_in_parent()
            start = rng.start_time.to_seconds()
            name = clip.name.split()[0] if clip.name else ""
            spans.setdefault(name, (start, start + rng.duration.to_seconds()))
    return spans


def video_frame(video: Path, t: float) -> Image.Image:
    import imageio_ffmpeg

    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-ss", f"{t:.3f}", "-i", str(video),
           "-frames:v", "1", "-f", "image2pipe", "-vcodec", "png", "-"]
    out = subprocess.run(cmd, capture_output=True, check=True).stdout
    return Image.open(io.BytesIO(out)).convert("RGB")


def collect(project: Project, chapter: str, from_video: bool) -> list[Cell]:
    board = project.storyboard(chapter)
    locations = {loc.id: loc for loc in project.locations().locations}
    names = {c.id: c.name for c in project.characters().characters}
    spans = shot_spans(project, chapter) if from_video else {}
    video = project.dir / "out" / f"{chapter}.mp4"
    cells: list[Cell] = []
    before: str | None = None
    for scene, shot in board.shots():
        loc_id = shot.location or scene.location
        loc = locations.get(loc_id or "")
        if loc is not None:
            kind = loc.kind if loc.kind != "unknown" else ""
            label = loc.name + (f" ({kind}{', inside' if loc.interior and kind != 'interior' else ''})" if kind else "")
        else:
            label = loc_id or "— (no place named)"
        image = None
        if from_video:
            if shot.id in spans:
                a, b = spans[shot.id]
                image = video_frame(video, (a + b) / 2)
        else:
            path = project.shot_image_path(chapter, shot.id)
            if path.is_file():
                image = Image.open(path).convert("RGB")
        people = ", ".join(names.get(c, c) for c in shot.characters)
        cells.append(Cell(shot.id, label, people, image, new_place=before is not None and loc_id != before))
        before = loc_id
    return cells


def draw_sheet(project: Project, chapter: str, cells: list[Cell], cell_w: int, cols: int) -> Image.Image:
    cfg = project.config()
    w, h = cfg.size
    cell_h = round(cell_w * h / w)
    label_size = max(10, round(cell_w * 0.075))
    label_h = round(label_size * 3.6)
    pad = max(4, cell_w // 30)
    rows = math.ceil(len(cells) / cols)
    title_size = max(14, round(cell_w * 0.12))
    title_h = round(title_size * 2.8)
    sheet = Image.new("RGB", (cols * (cell_w + pad) + pad, title_h + rows * (cell_h + label_h + pad) + pad), BG)
    draw = ImageDraw.Draw(sheet)
    title_font, label_font, small = pil_font(title_size), pil_font(label_size), pil_font(max(9, round(label_size * 0.85)))
    chapter_title = next((c.title for c in cfg.chapters if c.id == chapter), "") or chapter
    period = getattr(project.locations(), "period", "unknown")
    if cfg.period not in ("auto", "unknown"):
        period = cfg.period
    draw.text((pad, pad), f"{cfg.title} · {chapter_title}", font=title_font, fill=INK)
    places = len({c.location for c in cells})
    sub = f"{len(cells)} shots · {places} locations · period: {period} · red label: the place changes"
    draw.text((pad, pad + title_size * 1.35), sub, font=small, fill=GREY)
    for i, cell in enumerate(cells):
        r, c = divmod(i, cols)
        x, y = pad + c * (cell_w + pad), title_h + r * (cell_h + label_h + pad)
        if cell.image is not None:
            thumb = cell.image.resize((cell_w, cell_h), Image.Resampling.LANCZOS)
            sheet.paste(thumb, (x, y))
        else:
            draw.rectangle((x, y, x + cell_w - 1, y + cell_h - 1), fill=(220, 216, 210))
            draw.text((x + pad, y + cell_h // 2), "(no frame)", font=small, fill=GREY)
        ty = y + cell_h + 2
        draw.text((x, ty), _fit(cell.shot_id + "  " + cell.location, label_font, cell_w), font=label_font,
                  fill=NEW_PLACE if cell.new_place else INK)
        if cell.people:
            draw.text((x, ty + label_size * 1.3), _fit(cell.people, small, cell_w), font=small, fill=GREY)
    return sheet


def _fit(text: str, font: object, width: int) -> str:
    if font.getlength(text) <= width:  # type: ignore[attr-defined]
        return text
    while text and font.getlength(text + "…") > width:  # type: ignore[attr-defined]
        text = text[:-1]
    return text + "…"


def encode(sheet: Image.Image, palette: bool) -> bytes:
    buf = io.BytesIO()
    image = sheet.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE) if palette else sheet
    image.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("project", help="a project name (under --projects-dir) or a project directory")
    ap.add_argument("chapter", help="chapter id (01) or number (1)")
    ap.add_argument("--projects-dir", default=None, help="where projects live (default: $NOVELCOMIC_PROJECTS_DIR or ./projects)")
    ap.add_argument("--out", type=Path, default=None, help="the PNG to write (default: <project>/out/<ch>.contact.png)")
    ap.add_argument("--from-video", action="store_true", help="frames from the MP4 at each shot's midpoint")
    ap.add_argument("--cols", type=int, default=10)
    ap.add_argument("--cell-width", type=int, default=200, help="the largest cell width tried, in pixels")
    ap.add_argument("--max-bytes", type=int, default=1_450_000, help="shrink the cells until the PNG is this small")
    args = ap.parse_args(argv)

    project = open_project(args.project, args.projects_dir)
    chapter = chapter_id(project, args.chapter)
    cells = collect(project, chapter, args.from_video)
    if not cells:
        raise SystemExit(f"chapter {chapter} has no shots")
    cols = max(1, min(args.cols, len(cells)))
    out = args.out or project.dir / "out" / f"{chapter}.contact.png"
    cell_w = args.cell_width
    while True:
        sheet = draw_sheet(project, chapter, cells, cell_w, cols)
        data = encode(sheet, palette=False)
        if len(data) > args.max_bytes:
            data = encode(sheet, palette=True)
        if len(data) <= args.max_bytes or cell_w <= 60:
            break
        cell_w = round(cell_w * 0.88)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    print(f"{out}: {len(cells)} shots, {sheet.width}x{sheet.height}, {len(data) / 1e6:.2f} MB (cells {cell_w} px wide)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
