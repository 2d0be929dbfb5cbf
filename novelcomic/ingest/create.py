"""Create a project from a novel file: read, decode, clean, split, write — all or nothing.

The name, the file's kind and the settings are checked before anything touches the disk. The
project is then built in a hidden directory beside the target and renamed into place in one
step, so a failure (or a crash) never leaves a half-made project behind, and an existing
directory is never overwritten.

Memory stays flat whatever the size of the book: the novel is copied (up to the size limit) into
the hidden directory, and every step streams over that copy or over the files made from it —
the encoding is detected in passes over chunks, the cleaner reads the text twice and its kept
lines once, ``novel.txt`` is written a line at a time, and the splitter reads ``novel.txt``
twice and writes each chapter as soon as it is complete.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import secrets
import shutil
import stat
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from novelcomic.errors import NovelcomicError
from novelcomic.fsutil import atomic_path
from novelcomic.ingest.clean import KeptLinesFile, clean_lines, detect_language, split_lines
from novelcomic.ingest.decode import FileSource, detect_encoding, iter_text
from novelcomic.ingest.split import Chapter, chapter_id_width, iter_sections, parse_heading
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
    # the settings, before any work (the title and language are settled later, the same way)
    _build_config(title=title or "-", language=language or "zh", aspect=aspect, resolution=resolution, fps=fps, chapters=[])

    novel = Path(novel)
    fd = _open_novel(novel)
    try:
        with _staging_dir(base) as (staging, made_base):
            try:
                try:
                    _write_project(
                        staging, name, novel, fd,
                        _Settings(encoding=encoding, title=title, language=language, aspect=aspect,
                                  resolution=resolution, fps=fps, warnings=warnings),
                    )
                except OSError as exc:
                    raise NovelcomicError(f"cannot write project {name!r} in {base}: {exc.strerror or exc}") from None
                _refuse_existing(name, target)
                _release_staging(staging)
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
    finally:
        os.close(fd)
    _fsync_dir(base)
    return Project(target)


@dataclass(frozen=True)
class _Settings:
    """What the user asked of :func:`create_project` besides the name and the file."""

    encoding: str | None
    title: str | None
    language: str | None
    aspect: str
    resolution: tuple[int, int] | None
    fps: int | None
    warnings: list[str] | None


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


DEFAULT_MAX_NOVEL_MB = 64
MAX_NOVEL_ENV = "NOVELCOMIC_MAX_NOVEL_MB"
_READ_CHUNK = 1 << 20


def max_novel_bytes() -> int:
    """The largest novel file read: ``$NOVELCOMIC_MAX_NOVEL_MB`` megabytes (default 64)."""
    raw = os.environ.get(MAX_NOVEL_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_NOVEL_MB * 1024 * 1024
    try:
        mb = float(raw)
    except ValueError:
        mb = -1.0
    if not (0 < mb <= 1024 * 1024):  # also refuses nan and inf
        raise NovelcomicError(f"{MAX_NOVEL_ENV}={raw!r}: expected a positive number of megabytes")
    return int(mb * 1024 * 1024)


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    return "not a regular file"


def _read_novel(novel: Path) -> bytes:
    """The novel's bytes; every way of not being a readable file is a one-line error.

    Only a regular file (or a symlink to one) is read: a FIFO, a device, a socket or a
    directory is refused before it is opened, so nothing blocks. The file is then opened without
    blocking and checked again (it may have been swapped), and read in chunks up to the size
    limit (:func:`max_novel_bytes`): a file that grows, or lies about its size (/proc), still
    cannot take more memory than that.
    """
    fd = _open_novel(novel)
    try:
        return b"".join(_read_chunks(fd, novel))
    finally:
        os.close(fd)


def _open_novel(novel: Path) -> int:
    """A file descriptor of the novel, open for reading, after the checks of :func:`_read_novel`."""
    limit = max_novel_bytes()
    try:
        st = os.stat(novel)
    except FileNotFoundError:
        raise NovelcomicError("novel file not found", file=novel) from None
    except PermissionError:
        raise NovelcomicError("cannot read the novel file: permission denied", file=novel) from None
    except OSError as exc:
        raise NovelcomicError(f"cannot read the novel file: {exc.strerror or exc}", file=novel) from None
    if not stat.S_ISREG(st.st_mode):
        raise NovelcomicError(f"is {_kind(st.st_mode)}, not a novel file", file=novel)
    if st.st_size > limit:
        raise _too_big(novel, limit)
    try:
        fd = os.open(novel, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    except PermissionError:
        raise NovelcomicError("cannot read the novel file: permission denied", file=novel) from None
    except OSError as exc:
        raise NovelcomicError(f"cannot read the novel file: {exc.strerror or exc}", file=novel) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):  # swapped between the two looks
            raise NovelcomicError(f"is {_kind(mode)}, not a novel file", file=novel)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _too_big(novel: Path, limit: int) -> NovelcomicError:
    return NovelcomicError(
        f"the novel file is larger than {_mb(limit)} MB (set {MAX_NOVEL_ENV} to allow more)", file=novel
    )


def _read_chunks(fd: int, novel: Path) -> Iterator[bytes]:
    """The novel's bytes a chunk at a time, up to the size limit (beyond it: a one-line error)."""
    limit = max_novel_bytes()
    total = 0
    try:
        while True:
            chunk = os.read(fd, min(_READ_CHUNK, limit + 1 - total))
            if not chunk:
                return
            total += len(chunk)
            if total > limit:
                raise _too_big(novel, limit)
            yield chunk
    except OSError as exc:
        raise NovelcomicError(f"cannot read the novel file: {exc.strerror or exc}", file=novel) from None


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):g}"


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


STAGING_PREFIX = ".novelcomic-new-"
_CREATING = ".novelcomic-creating"  # inside a staging dir: locked by the process building it
STALE_SECONDS = 3600  # a staging dir without a lock file (an older version's) is stale after this


@contextlib.contextmanager
def _staging_dir(base: Path) -> Iterator[tuple[Path, bool]]:
    """A new hidden directory in ``base`` (created if missing), held by this process until the
    block ends; also whether ``base`` was made.

    The directory holds a lock file, flock'ed for as long as this process lives, so a later
    ``new-project`` can tell a staging directory whose creator was killed (``kill -9``: the
    kernel drops the lock) from one still being built, and removes the first
    (:func:`sweep_stale_staging`). The lock file is removed before the directory is renamed into
    place (:func:`_release_staging`)."""
    made_base = not base.exists()
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NovelcomicError(f"cannot create the projects directory {base}: {exc.strerror or exc}") from None
    sweep_stale_staging(base)
    while True:
        staging = base / f"{STAGING_PREFIX}{secrets.token_hex(6)}"
        try:
            staging.mkdir()
            break
        except FileExistsError:
            continue
        except OSError as exc:
            raise NovelcomicError(f"cannot write in the projects directory {base}: {exc.strerror or exc}") from None
    fd = -1
    try:
        # locked before it gets the name a sweeper looks for, so no sweeper can take it first
        tmp = staging / f"{_CREATING}.tmp"
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, f"pid {os.getpid()}\n".encode())
        os.rename(tmp, staging / _CREATING)
    except OSError as exc:
        if fd >= 0:
            os.close(fd)
        shutil.rmtree(staging, ignore_errors=True)
        raise NovelcomicError(f"cannot write in the projects directory {base}: {exc.strerror or exc}") from None
    try:
        yield staging, made_base
    finally:
        os.close(fd)


def _release_staging(staging: Path) -> None:
    """Remove the lock file before the directory becomes the project (the lock stays held)."""
    with contextlib.suppress(FileNotFoundError):
        (staging / _CREATING).unlink()


def sweep_stale_staging(base: Path, *, now: float | None = None) -> list[Path]:
    """Remove the ``.novelcomic-new-*`` directories in ``base`` left by a ``new-project`` that was
    killed: those whose lock nobody holds any more (the creating process is gone), and those
    without a lock file that are older than :data:`STALE_SECONDS`. Returns what was removed;
    never raises (a directory it cannot remove stays for the next time)."""
    removed: list[Path] = []
    now = time.time() if now is None else now
    try:
        entries = list(os.scandir(base))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(STAGING_PREFIX):
            continue
        try:
            if not entry.is_dir(follow_symlinks=False):
                continue
            path = Path(entry.path)
            try:
                fd = os.open(path / _CREATING, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            except FileNotFoundError:
                if now - entry.stat(follow_symlinks=False).st_mtime > STALE_SECONDS:
                    shutil.rmtree(path, ignore_errors=True)
                    removed.append(path)
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # being built right now
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
            finally:
                os.close(fd)
        except OSError:
            continue
    return removed


_SOURCE = ".novel-source"  # in the staging dir: the copy every pass reads
_KEPT = ".novel-kept"  # in the staging dir: the lines the cleaner kept, for its re-flow pass
_LANGUAGE_SAMPLE = 500_000  # characters of the cleaned text detect_language looks at
_FRONT_MAX_CHARS = 4_000_000  # the front matter guess_title reads: at most this much text
_FSYNC_THREADS = 8


def _write_project(staging: Path, name: str, novel: Path, fd: int, settings: _Settings) -> None:
    """Read, decode, clean and split the novel into ``staging``, writing every file of the
    project as it goes; store rows are keyed by the final name."""
    source = FileSource(staging / _SOURCE)
    with open(source.path, "wb") as out:
        for chunk in _read_chunks(fd, novel):
            out.write(chunk)
    try:
        decoding = detect_encoding(source, settings.encoding)
    except NovelcomicError as exc:
        raise NovelcomicError(exc.message, file=novel) from None
    title = settings.title or guess_title(_front_text(iter_text(source, decoding)), novel)

    kept = KeptLinesFile(staging / _KEPT)
    try:
        lines = clean_lines(lambda: iter_text(source, decoding), kept)
        sample = _write_novel_text(staging / NOVEL_FILE, lines)
    finally:
        kept.close()
        source.path.unlink()
    if not sample.strip():
        raise NovelcomicError("no story text left after removing download-site boilerplate", file=novel)
    lang = settings.language or detect_language(sample)

    project = Project(staging, name=name)  # rows are keyed by the final name, not the staging dir
    try:
        chapters = _write_chapters(project, staging / NOVEL_FILE, lang, settings.warnings)
        config = _build_config(
            title=title,
            language=lang,
            aspect=settings.aspect,
            resolution=settings.resolution,
            fps=settings.fps,
            chapters=chapters,
        )
        project.write_schemas()
        result = project.save_config(config)
        if result.status != "written":  # pragma: no cover - a fresh directory has nothing to protect
            raise NovelcomicError(f"could not write {project.project_yaml}")
    finally:
        project.close()


def _front_text(chunks: Iterable[str]) -> str:
    """The start of the text, enough for :func:`guess_title`: its first lines, whole."""
    parts: list[str] = []
    size = 0
    for chunk in chunks:
        parts.append(chunk)
        size += len(chunk)
        if size >= _FRONT_MAX_CHARS or len("".join(parts).splitlines()) > _TITLE_SCAN_LINES + 1:
            break
    return "".join(parts)[:_FRONT_MAX_CHARS]


def _write_novel_text(path: Path, lines: Iterable[str]) -> str:
    """Write the cleaned lines as ``novel.txt`` (atomically, a line at a time); return the start
    of the text (what :func:`detect_language` looks at)."""
    sample: list[str] = []
    have = 0
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            for line in lines:
                fh.write(line)
                fh.write("\n")
                if have < _LANGUAGE_SAMPLE:
                    sample.append(line[: _LANGUAGE_SAMPLE - have] + "\n")
                    have += len(sample[-1])
            fh.flush()
            os.fsync(fh.fileno())
    return "".join(sample)[:_LANGUAGE_SAMPLE]


def _text_chunks(path: Path) -> Iterator[str]:
    with open(path, encoding="utf-8", newline="") as fh:
        while chunk := fh.read(1 << 20):
            yield chunk


def _write_chapters(project: Project, novel_text: Path, language: str, warnings: list[str] | None) -> list[Chapter]:
    """Split ``novel.txt`` and write each chapter's file as soon as it is complete; return the
    chapters without their text. The files are numbered once the count (hence the id width) is
    known, then made durable together."""
    sections: list[tuple[str, str]] = []
    found: list[str] = []
    folder = project.chapter_text_path("x").parent
    folder.mkdir(parents=True, exist_ok=True)
    for n, (title, body, volume) in enumerate(
        iter_sections(lambda: split_lines(_text_chunks(novel_text)), language, 3000, found), 1
    ):
        with open(folder / f".{n}.part", "w", encoding="utf-8", newline="") as fh:
            fh.write(body.rstrip("\n") + "\n")
        sections.append((title, volume))
    if warnings is not None:
        warnings.extend(found)
    width = chapter_id_width(len(sections))
    chapters = [
        Chapter(id=str(n).zfill(width), title=title, text="", volume=volume)
        for n, (title, volume) in enumerate(sections, 1)
    ]
    paths = [project.chapter_text_path(ch.id) for ch in chapters]
    for n, path in enumerate(paths, 1):
        os.rename(folder / f".{n}.part", path)
    with ThreadPoolExecutor(_FSYNC_THREADS) as pool:  # concurrent fsyncs share journal commits
        list(pool.map(_fsync_file, paths))
    _fsync_dir(folder)
    return chapters


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    """Make the rename durable (best effort: not every filesystem allows fsync on a directory)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
