"""A project directory: where each file lives, loading and validating the YAML, writing what the
pipeline generates without ever overwriting a user's edit, and the lock that keeps two runs apart.

Layout (``<root>/<name>/``)::

    project.yaml            settings and the chapter list          (user's)
    characters.yaml         cast and narrator voice                 (generated once, then user's)
    props.yaml, locations.yaml
    storyboards/<ch>.yaml   scenes → shots → lines                  (generated once, then user's)
    chapters/<ch>.txt       the cleaned chapter text
    design/                 character reference sheets              (derived)
    render/<ch>/<shot>.png  shot images                             (derived)
    audio/<ch>/…            spoken lines                            (derived)
    out/<ch>.mp4, .srt      the finished videos                     (derived)
    out/book.mp4            every chapter joined, with chapter markers (derived; ``book: true``)
    .novelcomic/            state.db, JSON schemas, work files, the lock
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel

from novelcomic.errors import NovelcomicError, ProjectLockedError
from novelcomic.fsutil import atomic_write_text, sha256_file
from novelcomic.models import (
    NARRATOR,
    CharactersFile,
    LocationsFile,
    ProjectConfig,
    PropsFile,
    Storyboard,
)
from novelcomic.yamlio import SCHEMA_DIR, line_of, load_model, model_to_yaml, read_yaml, write_schemas

if TYPE_CHECKING:
    from novelcomic.store import Store

NAME_RE = re.compile(r"^[^/\\\x00]+$")
MAX_NAME_CHARS = 100
MAX_NAME_BYTES = 200  # UTF-8; directory names may have 255 bytes, and hidden siblings add to it
# C0 and C1 control characters, DEL, and the Unicode line and paragraph separators
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def projects_root(explicit: str | Path | None = None) -> Path:
    """``explicit`` → ``$NOVELCOMIC_PROJECTS_DIR`` → ``./projects``."""
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("NOVELCOMIC_PROJECTS_DIR") or "projects")


def _shown(name: str) -> str:
    return repr(name if len(name) <= 40 else name[:40] + "…")


def check_project_name(name: str) -> str:
    """``name`` if it can be a project directory's name; else a one-line NovelcomicError."""
    if not name or not name.strip():
        raise NovelcomicError("project name is empty")
    bad = _CONTROL_RE.search(name)
    if bad:
        raise NovelcomicError(
            f"invalid project name {_shown(name)}: it may not contain control characters "
            f"(found {bad.group()!r} at position {bad.start() + 1})"
        )
    size = len(name.encode("utf-8", "surrogateescape"))
    if len(name) > MAX_NAME_CHARS or size > MAX_NAME_BYTES:
        raise NovelcomicError(
            f"project name too long ({len(name)} characters, {size} bytes): "
            f"at most {MAX_NAME_CHARS} characters and {MAX_NAME_BYTES} bytes in UTF-8"
        )
    if name in (".", "..") or ".." in Path(name).parts or not NAME_RE.match(name) or name.startswith("."):
        raise NovelcomicError(f"invalid project name {_shown(name)}: it may not contain '/', '\\' or '..' or start with '.'")
    return name


@dataclass(frozen=True)
class WriteResult:
    path: Path
    status: Literal["written", "unchanged", "proposal"]

    @property
    def proposal(self) -> bool:
        return self.status == "proposal"


class Project:
    """One project directory. Loading is explicit (nothing is read at construction)."""

    def __init__(self, path: str | Path, name: str | None = None) -> None:
        self.dir = Path(path).resolve()
        # The name keys this project's rows in the store; it is the directory's name except while
        # a project is being built in a staging directory.
        self.name = name or self.dir.name
        self._store: Store | None = None

    @classmethod
    def open(cls, name_or_path: str | Path, root: str | Path | None = None) -> "Project":
        """Open an existing project by name (under ``root``) or by path."""
        p = Path(name_or_path)
        by_name = not (p.is_absolute() or len(p.parts) > 1)
        if by_name and str(name_or_path) not in (".", ".."):
            check_project_name(str(name_or_path))  # a name no project can have: say why, in one line
        candidates = [projects_root(root) / p] if by_name else [p]
        for c in candidates:
            try:
                found = (c / "project.yaml").is_file()
            except OSError as exc:  # a path component too long, a loop of symlinks …
                raise NovelcomicError(f"cannot open project {_shown(str(name_or_path))}: {exc.strerror or exc}") from None
            if found:
                return cls(c)
        raise NovelcomicError(f"no project {str(name_or_path)!r} (looked for {candidates[0] / 'project.yaml'})")

    # ------------------------------------------------------------------ paths

    @property
    def project_yaml(self) -> Path:
        return self.dir / "project.yaml"

    @property
    def characters_yaml(self) -> Path:
        return self.dir / "characters.yaml"

    @property
    def props_yaml(self) -> Path:
        return self.dir / "props.yaml"

    @property
    def locations_yaml(self) -> Path:
        return self.dir / "locations.yaml"

    @property
    def state_dir(self) -> Path:
        return self.dir / ".novelcomic"

    @property
    def work_dir(self) -> Path:
        return self.state_dir / "work"

    @property
    def out_dir(self) -> Path:
        return self.dir / "out"

    def chapter_text_path(self, chapter: str) -> Path:
        return self.dir / "chapters" / f"{chapter}.txt"

    def storyboard_path(self, chapter: str) -> Path:
        return self.dir / "storyboards" / f"{chapter}.yaml"

    def sheet_path(self, character_id: str) -> Path:
        return self.dir / "design" / "characters" / f"{character_id}.png"

    def shot_image_path(self, chapter: str, shot_id: str) -> Path:
        return self.dir / "render" / chapter / f"{shot_id}.png"

    def audio_dir(self, chapter: str) -> Path:
        return self.dir / "audio" / chapter

    def video_path(self, chapter: str) -> Path:
        return self.out_dir / f"{chapter}.mp4"

    def srt_path(self, chapter: str) -> Path:
        return self.out_dir / f"{chapter}.srt"

    @property
    def book_path(self) -> Path:
        return self.out_dir / "book.mp4"

    def rel(self, path: Path) -> str:
        return str(Path(path).resolve().relative_to(self.dir))

    # ------------------------------------------------------------------ state

    @property
    def store(self) -> Store:
        if self._store is None:
            from novelcomic.store import Store  # SQLModel is imported when state is first needed, not by every command

            self._store = Store(self.name, self.dir)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()

    def is_locked(self) -> bool:
        """Whether a run holds the project now (a probe: takes nothing, writes nothing)."""
        path = self.state_dir / "lock"
        if not path.exists():
            return False
        with open(path) as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(fh, fcntl.LOCK_UN)
            return False

    @contextlib.contextmanager
    def lock(self, wait: bool = False) -> Iterator[None]:
        """An exclusive lock on the project; a second run waits (``wait``) or refuses clearly."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        fh = open(self.state_dir / "lock", "a+")
        try:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                fh.seek(0)
                holder = fh.read().strip() or "another process"
                raise ProjectLockedError(
                    f"project {self.name!r} is being processed by {holder}; wait for it to finish"
                ) from None
            fh.seek(0)
            fh.truncate()
            fh.write(f"pid {os.getpid()}")
            fh.flush()
            yield
        finally:
            with contextlib.suppress(OSError):
                fcntl.flock(fh, fcntl.LOCK_UN)
            fh.close()

    # ------------------------------------------------------------------ loading

    def config(self) -> ProjectConfig:
        return load_model(self.project_yaml, ProjectConfig)

    def characters(self) -> CharactersFile:
        if not self.characters_yaml.exists():
            return CharactersFile()
        return load_model(self.characters_yaml, CharactersFile)

    def props(self) -> PropsFile:
        if not self.props_yaml.exists():
            return PropsFile()
        return load_model(self.props_yaml, PropsFile)

    def locations(self) -> LocationsFile:
        if not self.locations_yaml.exists():
            return LocationsFile()
        return load_model(self.locations_yaml, LocationsFile)

    def chapter_text(self, chapter: str) -> str:
        path = self.chapter_text_path(chapter)
        if not path.is_file():
            raise NovelcomicError("chapter text missing", file=path)
        return path.read_text(encoding="utf-8")

    def storyboard(self, chapter: str) -> Storyboard:
        """Load and validate a storyboard, including the ids it refers to. While a run holds the
        project, the version it froze for the chapter (:meth:`freeze_storyboard`)."""
        frozen = self._frozen_storyboard(chapter)
        path = self.storyboard_path(chapter)
        if frozen is not None:
            try:
                return load_model(frozen, Storyboard)
            except NovelcomicError:
                pass  # (cannot happen: it was valid when frozen) the file itself says what is wrong
        sb = load_model(path, Storyboard)
        self._check_references(path, sb)
        return sb

    # A run reads each chapter's storyboard once, when it starts the chapter: render, voice and
    # compose (in every thread, process and task worker) then see that version whole, and an edit
    # saved meanwhile is left for the next run — never a picture of one version with the audio of
    # another.

    def _frozen_dir(self, holder: str) -> Path:
        return self.state_dir / "frozen" / holder.replace(" ", "-")

    def _frozen_storyboard(self, chapter: str) -> Path | None:
        lock = self.state_dir / "lock"
        try:
            holder = lock.read_text().strip()
        except OSError:
            return None
        if not holder:
            return None
        frozen = self._frozen_dir(holder) / f"{chapter}.yaml"
        return frozen if frozen.is_file() and self.is_locked() else None

    def freeze_storyboard(self, chapter: str) -> None:
        """Called by the lock holder when it starts a chapter: later reads during the run get
        this version (validated now)."""
        from novelcomic.fsutil import atomic_write_bytes

        path = self.storyboard_path(chapter)
        if not path.is_file():
            return
        data = path.read_bytes()
        target = self._frozen_dir(f"pid {os.getpid()}") / f"{chapter}.yaml"
        atomic_write_bytes(target, data)
        try:
            sb = load_model(target, Storyboard)
            self._check_references(target, sb)
        except NovelcomicError:
            target.unlink(missing_ok=True)
            self.storyboard(chapter)  # the error, naming the user's file
            raise

    def storyboard_changed_since_frozen(self, chapter: str) -> bool:
        frozen = self._frozen_dir(f"pid {os.getpid()}") / f"{chapter}.yaml"
        path = self.storyboard_path(chapter)
        return frozen.is_file() and path.is_file() and frozen.read_bytes() != path.read_bytes()

    def thaw_storyboards(self) -> None:
        """Forget every frozen storyboard (the lock holder, at the start and end of a run)."""
        import shutil

        shutil.rmtree(self.state_dir / "frozen", ignore_errors=True)

    def _check_references(self, path: Path, sb: Storyboard) -> None:
        problems = self.unknown_references(sb)
        if problems:
            from novelcomic.yamlio import format_loc

            from novelcomic.yamlio import owner_of

            _, node = read_yaml(path)
            loc, msg = problems[0]
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise NovelcomicError(msg + owner_of(node, loc) + more, file=path, line=line_of(node, loc), field=format_loc(loc))

    def unknown_references(self, sb: Storyboard) -> list[tuple[tuple[object, ...], str]]:
        """(field path, message) of every character, prop or location id ``sb`` uses that the
        project's YAML files do not define."""
        chars = {c.id for c in self.characters().characters}
        props = {p.id for p in self.props().props}
        locs = {loc.id for loc in self.locations().locations}
        problems: list[tuple[tuple[object, ...], str]] = []
        for si, scene in enumerate(sb.scenes):
            if scene.location and scene.location not in locs:
                problems.append((("scenes", si, "location"), f"unknown location id {scene.location!r}"))
            for hi, shot in enumerate(scene.shots):
                base = ("scenes", si, "shots", hi)
                for ci, c in enumerate(shot.characters):
                    if c not in chars:
                        problems.append((base + ("characters", ci), f"unknown character id {c!r} (not in characters.yaml)"))
                for pi, p in enumerate(shot.props):
                    if p not in props:
                        problems.append((base + ("props", pi), f"unknown prop id {p!r} (not in props.yaml)"))
                if shot.location and shot.location not in locs:
                    problems.append((base + ("location",), f"unknown location id {shot.location!r} (not in locations.yaml)"))
                for li, line in enumerate(shot.lines):
                    if line.speaker != NARRATOR and line.speaker not in chars:
                        problems.append(
                            (base + ("lines", li, "speaker"), f"unknown character id {line.speaker!r} (not in characters.yaml)")
                        )
        return problems

    # ------------------------------------------------------------------ writing generated YAML

    def schema_ref(self, path: Path) -> str:
        """The schema modeline target for ``path``, relative to the file so editors resolve it."""
        return os.path.relpath(self.state_dir / "schema", path.parent)

    def write_schemas(self) -> Path:
        return write_schemas(self.dir / SCHEMA_DIR)

    def write_generated(self, path: Path, obj: BaseModel, schema_name: str, *, proposal_only: bool = False) -> WriteResult:
        """Write a generated YAML file unless the user changed the one that is there.

        The hash of every file we write is recorded. If the file on disk no longer has that hash
        (or was never ours), the user edited it: we leave it alone and write
        ``<name>.proposed.yaml`` beside it instead.
        """
        path = Path(path)
        ref = f"{self.schema_ref(path)}/{schema_name}.schema.json"
        text = model_to_yaml(obj, schema_ref=ref)
        key = self.rel(path) if path.exists() else str(path.resolve().relative_to(self.dir))
        if proposal_only:  # it cannot be used as it is (the caller says why)
            proposal = path.with_suffix(".proposed.yaml")
            atomic_write_text(proposal, text)
            return WriteResult(proposal, "proposal")
        if path.exists():
            current = sha256_file(path)
            record = self.store.asset("yaml", key)
            if record is None or record.content_hash != current:
                proposal = path.with_suffix(".proposed.yaml")
                if _same_content(path, obj):  # the user's file already says this: nothing to propose
                    proposal.unlink(missing_ok=True)
                    return WriteResult(path, "unchanged")
                atomic_write_text(proposal, text)
                return WriteResult(proposal, "proposal")
            if path.read_text(encoding="utf-8") == text:
                return WriteResult(path, "unchanged")
        atomic_write_text(path, text)
        self.store.record("yaml", key, path, backend="generated")
        return WriteResult(path, "written")

    def refresh_schemas(self) -> None:
        """Rewrite ``.novelcomic/schema/*.json`` where they differ from this version's models, so an
        editor checks the YAML against the settings this version knows (a project made by an older
        version had schemas without the newer keys)."""
        import json

        from novelcomic.models import SCHEMA_MODELS

        folder = self.dir / SCHEMA_DIR
        for name, model in SCHEMA_MODELS.items():
            target = folder / f"{name}.schema.json"
            text = json.dumps(model.model_json_schema(), ensure_ascii=False, indent=2)
            if not target.is_file() or target.read_text(encoding="utf-8") != text:
                atomic_write_text(target, text)

    def save_config(self, cfg: ProjectConfig) -> WriteResult:
        return self.write_generated(self.project_yaml, cfg, "project")


def _same_content(path: Path, obj: BaseModel) -> bool:
    """Whether the YAML at ``path`` loads to a model equal to ``obj`` (False when it does not load)."""
    try:
        return load_model(path, type(obj)) == obj
    except NovelcomicError:
        return False
