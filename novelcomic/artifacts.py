"""Prefect artifacts for a run: what a person watching the Prefect UI wants to see.

- ``<project>-<chapter>-storyboard``: the chapter's storyboard as a table;
- ``<project>-characters``: the character sheets (inline thumbnails) as markdown;
- ``<project>-<chapter>-qa``: the QA report, when one was written;
- ``<project>-<chapter>-render`` / ``-voice``: progress, updated per shot;
- ``<project>-videos``: where the finished videos are.

Called from inside flow runs (Prefect attaches each artifact to the current run). Keys hold only
lowercase letters, digits and dashes, as Prefect requires.
"""

from __future__ import annotations

import base64
import io
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

from novelcomic.project import Project

THUMB = 256


def slug(text: str) -> str:
    """A Prefect artifact key part: lowercase letters, digits and dashes (CJK names get a crc)."""
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    if s != text.lower():
        s = f"{s}-{zlib.crc32(text.encode()):08x}".strip("-")
    return s


def key(project: Project, *parts: str) -> str:
    return "-".join(slug(p) for p in (project.name, *parts))


def storyboard_rows(project: Project, chapter: str) -> list[dict[str, str]]:
    names = {c.id: c.name for c in project.characters().characters}
    rows = []
    for scene, shot in project.storyboard(chapter).shots():
        rows.append({
            "shot": shot.id,
            "characters": ", ".join(names.get(c, c) for c in shot.characters),
            "camera": f"{shot.camera.size} / {shot.camera.angle} / {shot.camera.motion}",
            "lines": " / ".join(f"{names.get(ln.speaker, ln.speaker)}: {ln.text}" for ln in shot.lines),
            "mood": shot.mood or scene.mood,
        })
    return rows


def storyboard_table(project: Project, chapter: str) -> UUID:
    from prefect.artifacts import create_table_artifact

    return create_table_artifact(
        table=storyboard_rows(project, chapter), key=key(project, chapter, "storyboard"),
        description=f"Storyboard of chapter {chapter} ({project.storyboard_path(chapter)})",
    )


def thumbnail_data_uri(path: Path, size: int = THUMB) -> str:
    """A small JPEG of ``path`` as a data: URI (the UI shows it without access to our disk)."""
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
        im.thumbnail((size, size))
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def sheets_markdown(project: Project) -> str:
    """The sheets (or a character's own reference images) with each appearance. Extras and
    groups get no sheet (pipeline.needs_sheet): they are listed once at the end, by name, and
    never shown as a sheet that is missing."""
    from novelcomic.pipeline import needs_sheet

    lines = [f"# Character sheets of {project.name}", ""]
    generic = []
    for ch in project.characters().characters:
        if not ch.reference_images and not needs_sheet(ch):
            generic.append(ch)
            continue
        from novelcomic.paths import allowed_or_none  # never show a file from outside the project

        images = [q for q in (allowed_or_none(p, project.dir) for p in ch.reference_images) if q is not None] \
            or [project.sheet_path(ch.id)]
        lines.append(f"## {ch.name} (`{ch.id}`)")
        lines.append(f"*Appearance:* {ch.appearance or '—'}")
        lines.append("")
        for img in images:
            if img.is_file():
                lines.append(f"![{ch.id}]({thumbnail_data_uri(img)})")
                lines.append(f"`{img}`")
            else:
                lines.append(f"(no sheet yet: `{img}`)")
        lines.append("")
    if generic:
        names = ", ".join(f"{c.name} (`{c.id}`{', group' if c.group else ''})" for c in generic)
        lines += ["## Drawn without a sheet (extras and groups)", "", names, ""]
    return "\n".join(lines)


def character_sheets(project: Project) -> UUID:
    from prefect.artifacts import create_markdown_artifact

    return create_markdown_artifact(
        markdown=sheets_markdown(project), key=key(project, "characters"), description="Character reference sheets",
    )


def qa_report(project: Project, chapter: str, path: Path | None = None) -> UUID | None:
    """The QA report of a chapter as markdown (``render/<ch>/qa.md`` by default); None if absent."""
    from prefect.artifacts import create_markdown_artifact

    path = Path(path) if path else project.dir / "render" / chapter / "qa.md"
    if not path.is_file():
        return None
    return create_markdown_artifact(
        markdown=path.read_text(encoding="utf-8"), key=key(project, chapter, "qa"), description=f"QA report ({path})",
    )


def videos_markdown(project: Project, videos: list[Path], held: list[str] | None = None) -> str:
    lines = [f"# Videos of {project.name}", "", "| chapter | video | subtitles | size |", "|---|---|---|---|"]
    for v in videos:
        v = Path(v)
        srt = v.with_suffix(".srt")
        size = f"{v.stat().st_size / 1e6:.2f} MB" if v.is_file() else "missing"
        lines.append(f"| {v.stem} | `{v}` | `{srt if srt.is_file() else '—'}` | {size} |")
    if held:
        lines += ["", "Held back at the publish review: " + ", ".join(held)]
    return "\n".join(lines)


def videos(project: Project, paths: list[Path], held: list[str] | None = None) -> UUID:
    from prefect.artifacts import create_markdown_artifact

    return create_markdown_artifact(
        markdown=videos_markdown(project, paths, held), key=key(project, "videos"), description="Finished videos",
    )


@dataclass
class Progress:
    """A progress artifact for one stage of one chapter, updated as shots finish."""

    artifact_id: UUID
    total: int
    done: int = 0

    @classmethod
    def start(cls, project: Project, chapter: str, stage: str, total: int) -> "Progress":
        from prefect.artifacts import create_progress_artifact

        aid = create_progress_artifact(
            progress=0.0, key=key(project, chapter, stage), description=f"{stage} of chapter {chapter}: {total} shots",
        )
        return cls(aid, total)

    def advance(self, n: int = 1) -> None:
        from prefect.artifacts import update_progress_artifact

        self.done = min(self.total, self.done + n)
        pct = 100.0 * self.done / self.total if self.total else 100.0
        update_progress_artifact(self.artifact_id, progress=pct)
