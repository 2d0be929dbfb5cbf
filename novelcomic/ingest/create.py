"""Create a project from a novel file: read, decode, clean, split, write — all or nothing.

Everything that can fail on the user's input (the name, the file, its encoding, the settings) is
checked before anything touches the disk. The project is then built in a hidden directory beside
the target and renamed into place in one step, so a failure (or a crash) never leaves a half-made
project behind, and an existing directory is never overwritten.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
from pathlib import Path

from pydantic import ValidationError

from novelcomic.errors import NovelcomicError
from novelcomic.fsutil import atomic_write_text
from novelcomic.ingest.clean import clean_text, detect_language
from novelcomic.ingest.decode import decode_novel
from novelcomic.ingest.split import Chapter, parse_heading, split_chapters
from novelcomic.models import ChapterRef, ProjectConfig
from novelcomic.project import Project, check_project_name, projects_root

NOVEL_FILE = "novel.txt"

_BOOK_TITLE_RE = re.compile(r"《([^》\n]{1,50})》")
_LABELLED_TITLE_RE = re.compile(r"^\s*(?:书名|書名|作品名称|作品名稱|作品名|title)\s*[:：]\s*(.{1,80}?)\s*$", re.IGNORECASE)
_TITLE_SCAN_LINES = 40
_TITLE_LINE_MAX = 60


def create_project(
    name: str,
    novel: Path,
    root: Path | None = None,
    *,
    encoding: str | None = None,
    title: str | None = None,
    language: str | None = None,
    aspect: str = "9:16",
    resolution: tuple[int, int] | None = None,
    fps: int | None = None,
    warnings: list[str] | None = None,
) -> Project:
    """Create project ``name`` under ``root`` (default: :func:`projects_root`) from ``novel``.

    Writes ``novel.txt`` (the cleaned text), ``chapters/<id>.txt`` and ``project.yaml`` (through
    :meth:`Project.save_config`, so it has the schema modeline and its hash is recorded), plus
    the JSON schemas. ``title`` defaults to a 《书名》 or "Title:" line near the top of the file,
    else the file name; ``language`` to the detected one. Each chapter keeps the volume
    (卷/部/Book/Part) its heading belongs to. ``warnings``, when given, gets what the user should
    know about the split (no chapter headings found: the text was cut into parts …).

    Raises NovelcomicError, having created nothing, for a bad name, an existing project, a
    missing/unreadable/empty/binary/undecodable novel, a novel with no text left after cleaning,
    or invalid settings.
    """
    check_project_name(name)
    base = projects_root(root)
    target = base / name
    _refuse_existing(name, target)

    novel = Path(novel)
    raw = _read_novel(novel)
    try:
        text, _ = decode_novel(raw, encoding)
    except NovelcomicError as exc:
        raise NovelcomicError(exc.message, file=novel) from None
    cleaned = clean_text(text)
    if not cleaned.strip():
        raise NovelcomicError("no story text left after removing download-site boilerplate", file=novel)
    lang = language or detect_language(cleaned)
    chapters = split_chapters(cleaned, lang)
    if warnings is not None:
        warnings.extend(getattr(chapters, "warnings", []))
    config = _build_config(
        title=title or guess_title(text, novel),
        language=lang,
        aspect=aspect,
        resolution=resolution,
        fps=fps,
        chapters=chapters,
    )

    staging, made_base = _make_staging_dir(base)
    try:
        try:
            _write_project(staging, name, cleaned, chapters, config)
        except OSError as exc:
            raise NovelcomicError(f"cannot write project {name!r} in {base}: {exc.strerror or exc}") from None
        _refuse_existing(name, target)
        try:
            os.rename(staging, target)
        except OSError as exc:
            if target.exists():
                raise NovelcomicError(f"project {name!r} already exists at {target}") from None
            raise NovelcomicError(f"cannot create project {name!r} at {target}: {exc.strerror}") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if made_base:
            with contextlib.suppress(OSError):
                base.rmdir()  # only if still empty
        raise
    _fsync_dir(base)
    return Project(target)


_BYLINE_RE = re.compile(r"^(?:by\s+\S.*|作者\s*[:：].+|author\s*:.+)$", re.IGNORECASE)


def guess_title(text: str, novel: Path) -> str:
    """The book's title: a 《书名》 or ``书名：/Title:`` line near the top, or the line above a
    byline ("by …", "作者：…"), else the file name.

    Looks at the decoded text *before* cleaning, because the line naming the book is often a
    download advert ("《西游记》txt全集下载") that cleaning drops; and only at the front matter
    (short lines before the first chapter heading), because the story may quote other books.
    """
    previous = ""
    for line in text.lstrip("\ufeff").splitlines()[:_TITLE_SCAN_LINES]:
        line = line.strip()
        if not line:
            continue
        if parse_heading(line) is not None:
            break  # past the front matter: a 《…》 in the story names some other book
        if _BYLINE_RE.match(line) and previous and len(previous) <= _TITLE_LINE_MAX and not previous.endswith((".", "。")):
            return previous.strip("《》") or previous  # "The Lighthouse\nby Anonymous", "西游记\n作者：吴承恩"
        previous = line
        m = _LABELLED_TITLE_RE.match(line)
        if m:
            return m.group(1).strip().strip("《》") or m.group(1).strip()
        m = _BOOK_TITLE_RE.search(line)
        if m and m.group(1).strip() and len(line) <= _TITLE_LINE_MAX:
            return m.group(1).strip()
    m = _BOOK_TITLE_RE.search(novel.stem)
    if m and m.group(1).strip():
        return m.group(1).strip()
    return novel.stem.strip() or novel.name


# --------------------------------------------------------------------------- checks (no writes)


def _refuse_existing(name: str, target: Path) -> None:
    if os.path.lexists(target):
        raise NovelcomicError(f"project {name!r} already exists at {target}")


def _read_novel(novel: Path) -> bytes:
    """The novel's bytes; every way of not being a readable file is a one-line error."""
    try:
        return novel.read_bytes()
    except FileNotFoundError:
        raise NovelcomicError("novel file not found", file=novel) from None
    except IsADirectoryError:
        raise NovelcomicError("is a directory, not a novel file", file=novel) from None
    except PermissionError:
        raise NovelcomicError("cannot read the novel file: permission denied", file=novel) from None
    except OSError as exc:
        raise NovelcomicError(f"cannot read the novel file: {exc.strerror or exc}", file=novel) from None


def _build_config(
    *,
    title: str,
    language: str,
    aspect: str,
    resolution: tuple[int, int] | None,
    fps: int | None,
    chapters: list[Chapter],
) -> ProjectConfig:
    """The project.yaml model; invalid settings become a NovelcomicError naming the field."""
    fields: dict[str, object] = {
        "title": title,
        "language": language,
        "aspect": aspect,
        "novel": NOVEL_FILE,
        "chapters": [ChapterRef(id=c.id, title=c.title, volume=getattr(c, "volume", "")) for c in chapters],
    }
    if resolution is not None:
        fields["resolution"] = tuple(resolution)
    if fps is not None:
        fields["fps"] = fps
    try:
        return ProjectConfig.model_validate(fields)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise NovelcomicError(f"invalid {where}: {err['msg']} (got {err.get('input')!r})") from None


# --------------------------------------------------------------------------- writing


def _make_staging_dir(base: Path) -> tuple[Path, bool]:
    """A new hidden directory in ``base`` (created if missing); also whether ``base`` was made."""
    made_base = not base.exists()
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NovelcomicError(f"cannot create the projects directory {base}: {exc.strerror or exc}") from None
    while True:
        staging = base / f".novelcomic-new-{secrets.token_hex(6)}"
        try:
            staging.mkdir()
            return staging, made_base
        except FileExistsError:
            continue
        except OSError as exc:
            raise NovelcomicError(f"cannot write in the projects directory {base}: {exc.strerror or exc}") from None


def _write_project(staging: Path, name: str, cleaned: str, chapters: list[Chapter], config: ProjectConfig) -> None:
    """Write every file of the project into ``staging``; store rows are keyed by the final name."""
    atomic_write_text(staging / NOVEL_FILE, cleaned)
    project = Project(staging, name=name)  # rows are keyed by the final name, not the staging dir
    try:
        for ch in chapters:
            atomic_write_text(project.chapter_text_path(ch.id), ch.text.rstrip("\n") + "\n")
        project.write_schemas()
        result = project.save_config(config)
        if result.status != "written":  # pragma: no cover - a fresh directory has nothing to protect
            raise NovelcomicError(f"could not write {project.project_yaml}")
    finally:
        project.close()


def _fsync_dir(path: Path) -> None:
    """Make the rename durable (best effort: not every filesystem allows fsync on a directory)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
