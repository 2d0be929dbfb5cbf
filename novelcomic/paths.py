"""One policy for every path a project's YAML names (issue 14).

A path in ``project.yaml``, ``characters.yaml``, ``props.yaml`` or ``locations.yaml`` — a reference
image, the style reference, a music track, a font file, a LoRA, a model directory, an IP-Adapter —
may only point inside:

- the project directory;
- a directory named in ``$NOVELCOMIC_ALLOWED_DIRS`` (``os.pathsep``-separated; novelcomic has no
  user-level config file, so the environment is the one place to name them);
- for model weights only (LoRAs, IP-Adapters, model directories): ``~/models`` and the Hugging Face
  cache (``$HF_HOME``, ``$HF_HUB_CACHE``, else ``~/.cache/huggingface``).

``~`` is expanded, a relative path is relative to the project directory, and symlinks are resolved
*before* the check, so a link inside the project that points outside is refused too. A shared
project can therefore never make novelcomic read (or upload to a remote engine) a file of the
user's that they did not put in one of those places. :func:`check_project_paths` runs in
``validate`` and in every run's preflight (``pipeline.check_backends``), before any work.

The novel given to ``new-project --novel`` is the user's own choice on the command line: it is not
subject to this policy, and it is copied into the project.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from novelcomic.errors import NovelcomicError

ENV = "NOVELCOMIC_ALLOWED_DIRS"
# "owner/name" as the Hugging Face hub spells a repository id
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_FONT_SUFFIXES = (".ttf", ".ttc", ".otf", ".otc", ".pfb", ".woff", ".woff2")
# backend option keys (any stage, and llm) whose value names weights / an input file
_WEIGHT_OPTIONS = ("model", "inpaint_model", "embedder", "model_path", "model_dir", "checkpoint")
_FILE_OPTIONS = ("style_reference", "workflow", "reference_audio", "speaker_wav", "mask", "font")


def allowed_dirs() -> list[Path]:
    """The directories ``$NOVELCOMIC_ALLOWED_DIRS`` names (resolved; empty entries skipped)."""
    raw = os.environ.get(ENV, "")
    return [Path(p).expanduser().resolve(strict=False) for p in raw.split(os.pathsep) if p.strip()]


def weight_dirs() -> list[Path]:
    """Where model weights may also come from: ``~/models`` and the Hugging Face cache."""
    dirs = [Path("~/models").expanduser()]
    for var in ("HF_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            dirs.append(Path(os.environ[var]).expanduser())
    xdg = os.environ.get("XDG_CACHE_HOME")
    dirs.append((Path(xdg).expanduser() if xdg else Path("~/.cache").expanduser()) / "huggingface")
    return [d.resolve(strict=False) for d in dirs]


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def outside_message(value: object) -> str:
    return (f"path outside the project: {value} (a project may only use files inside its own folder; "
            f"to allow another folder, add it to {ENV}, separated by '{os.pathsep}')")


def resolve_user_path(value: str | os.PathLike[str], project_dir: str | os.PathLike[str], field: str | None = None,
                      *, weights: bool = False) -> Path:
    """``value`` as an absolute path with symlinks resolved, if the policy allows it; else a
    :class:`NovelcomicError` ``field: path outside the project: <value> (…)``.

    ``weights``: the value names model weights, which may also live in ``~/models`` or the Hugging
    Face cache."""
    project = Path(project_dir).expanduser().resolve(strict=False)
    path = Path(os.fspath(value)).expanduser()
    if not path.is_absolute():
        path = project / path
    path = path.resolve(strict=False)
    places = [project, *allowed_dirs(), *(weight_dirs() if weights else [])]
    if any(_inside(path, d) for d in places):
        return path
    raise NovelcomicError(outside_message(value), field=field)


# --------------------------------------------------------------------------- what a value is


def _explicit_path(value: str) -> bool:
    return value.startswith(("/", "~", "./", "../")) or value in (".", "..") or os.path.isabs(value)


def font_is_path(value: str) -> bool:
    """``subtitles.font`` names a file (not a family fontconfig looks up)."""
    return _explicit_path(value) or "/" in value or os.sep in value or value.lower().endswith(_FONT_SUFFIXES)


def _weight_is_hub_id(value: str, project_dir: Path) -> bool:
    """A LoRA/model value that is a hub id ("owner/name") and no local file the loaders would open."""
    if _explicit_path(value) or not _HUB_ID.match(value):
        return False
    return not (project_dir / value).exists() and not Path(value).exists()


def _candidates(value: str, project_dir: Path, cwd_too: bool) -> list[str | Path]:
    """The paths a reader may open for ``value``: relative to the project and, for readers that
    open it as given (fonts, backend options), relative to the working directory when it exists there."""
    out: list[str | Path] = [value]
    if cwd_too and not _explicit_path(value) and not os.path.isabs(value) and Path(value).exists():
        out.append(Path(value).absolute())
    return out


def _check(value: str, project_dir: Path, field: str, *, weights: bool = False, cwd_too: bool = False) -> None:
    for cand in _candidates(value, project_dir, cwd_too):
        try:
            resolve_user_path(cand, project_dir, field, weights=weights)
        except NovelcomicError:
            raise NovelcomicError(outside_message(value), field=field) from None


# --------------------------------------------------------------------------- every path a project names


def project_paths(project: Any) -> Iterator[tuple[Path, tuple[object, ...], str, bool, bool]]:
    """(file, location in it, value, weights?, read relative to the cwd too?) of every path-valued
    field in the project's YAML (hub ids and font families left out)."""
    cfg = project.config()
    pdir = Path(project.dir)
    yml = project.project_yaml
    if cfg.style_reference:
        yield yml, ("style_reference",), cfg.style_reference, False, False
    for mood, track in cfg.music.tracks.items():
        if track:
            yield yml, ("music", "tracks", mood), track, False, False
    if cfg.subtitles.font and font_is_path(cfg.subtitles.font):
        yield yml, ("subtitles", "font"), cfg.subtitles.font, False, True
    if cfg.qa.embedder and not _weight_is_hub_id(cfg.qa.embedder, pdir):
        yield yml, ("qa", "embedder"), cfg.qa.embedder, True, True
    sections: list[tuple[tuple[object, ...], dict]] = [
        (("stages", stage, "options"), getattr(cfg.stages, stage).options or {})
        for stage in type(cfg.stages).model_fields
    ]
    if cfg.llm is not None:
        sections.append((("llm", "options"), cfg.llm.options or {}))
    if getattr(cfg, "animate", None) is not None:
        sections.append((("animate", "options"), cfg.animate.options or {}))
    for base, options in sections:
        yield from _option_paths(yml, base, options, pdir)
    for file, loader, key in ((project.characters_yaml, project.characters, "characters"),
                              (project.props_yaml, project.props, "props"),
                              (project.locations_yaml, project.locations, "locations")):
        if not Path(file).exists():
            continue
        loaded = loader()
        if key == "characters" and getattr(loaded.narrator, "reference_audio", None):
            yield file, ("narrator", "reference_audio"), loaded.narrator.reference_audio, False, False
        for i, item in enumerate(getattr(loaded, key)):
            clip = getattr(getattr(item, "voice", None), "reference_audio", None)
            if clip:
                yield file, (key, i, "voice", "reference_audio"), clip, False, False
            for j, img in enumerate(getattr(item, "reference_images", None) or []):
                yield file, (key, i, "reference_images", j), img, False, False
            lora = getattr(item, "lora", None)
            if lora and not _weight_is_hub_id(lora, pdir):
                yield file, (key, i, "lora"), lora, True, True


def _option_paths(yml: Path, base: tuple[object, ...], options: dict, pdir: Path) -> Iterator[tuple[Path, tuple[object, ...], str, bool, bool]]:
    for key, value in options.items():
        where = base + (key,)
        if key in _WEIGHT_OPTIONS and isinstance(value, str) and value and not _weight_is_hub_id(value, pdir):
            if _explicit_path(value) or (pdir / value).exists() or Path(value).exists():
                yield yml, where, value, True, True
        elif key in _FILE_OPTIONS and isinstance(value, str) and value:
            if key != "font" or font_is_path(value):
                yield yml, where, value, False, True
        elif key == "ip_adapter" and isinstance(value, dict) and isinstance(value.get("path"), str):
            path = value["path"]
            if not _weight_is_hub_id(path, pdir):
                yield yml, where + ("path",), path, True, True
        elif key == "lora" and isinstance(value, list):
            for i, item in enumerate(value):
                path = item.get("path") if isinstance(item, dict) else item if isinstance(item, str) else None
                if isinstance(path, str) and path and not _weight_is_hub_id(path, pdir):
                    yield yml, where + ((i, "path") if isinstance(item, dict) else (i,)), path, True, True


def check_project_paths(project: Any) -> None:
    """Refuse the first path-valued field that points outside the allowed places, as
    ``file:line: field: path outside the project: <value> (…)``."""
    from novelcomic.yamlio import format_loc, line_of, read_yaml

    pdir = Path(project.dir)
    for file, loc, value, weights, cwd_too in project_paths(project):
        try:
            _check(value, pdir, format_loc(loc), weights=weights, cwd_too=cwd_too)
        except NovelcomicError as exc:
            _, node = read_yaml(file)
            raise NovelcomicError(exc.message, file=file, line=line_of(node, loc), field=exc.field) from None


def resolve_weight(value: str, project_dir: str | os.PathLike[str], field: str | None = None) -> str:
    """A LoRA/model value as the loaders should take it: a hub id unchanged, else the resolved
    local path (relative to the project), refused when outside the allowed places."""
    if _weight_is_hub_id(value, Path(project_dir)):
        return value
    return str(resolve_user_path(value, project_dir, field, weights=True))


def allowed_or_none(value: str | os.PathLike[str], project_dir: str | os.PathLike[str]) -> Path | None:
    """The resolved path when the policy allows it, else None (for readers that only show files)."""
    try:
        return resolve_user_path(value, project_dir)
    except NovelcomicError:
        return None
