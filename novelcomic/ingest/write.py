"""Write a novel from a theme with a language model, and make a project of it.

For a user who has an idea and no text: the model first writes an outline (title, logline, the
cast with their looks, a title and summary per chapter; a structured answer, validated and
repaired like every other), then each chapter's prose as plain text with dialogue, one chapter at
a time with the outline and the end of the previous chapter in view. The chapters are assembled
under ordinary headings (第一章 … / Chapter 1: …) so the normal ingest splitter cuts them apart
again, and :func:`create_project_from_theme` hands that text to
:func:`novelcomic.ingest.create.create_project`. The chapter files are then the user's to edit
before planning, like any ingested novel's. ``outline.yaml`` keeps the outline beside
``project.yaml``.

Nothing is written until the whole novel exists: a model failure part-way leaves no project.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, create_model

from novelcomic.errors import BackendError, NovelcomicError
from novelcomic.llm.base import LLMBackend, Message
from novelcomic.models import LLMConfig
from novelcomic.project import Project, check_project_name, projects_root

OUTLINE_FILE = "outline.yaml"
MAX_CHAPTERS = 200
_ZH_TITLE_MAX = 24
_EN_TITLE_MAX = 50
_PREVIOUS_TAIL_CHARS = 600
_CHAPTER_ATTEMPTS = 2


class OutlineCharacter(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1)
    appearance: str = Field("", description="Fixed look: hair, clothes, colours, build")
    description: str = Field("", description="Role and personality in a sentence")
    gender: str = Field("unknown", description="male | female | unknown")


class ChapterOutline(BaseModel):
    model_config = ConfigDict(extra="ignore")

    title: str = Field(min_length=1, description="A short chapter title, without 'Chapter N' / 第N章")
    summary: str = Field(min_length=1, description="What happens, in two to four sentences")


class NovelOutline(BaseModel):
    model_config = ConfigDict(extra="ignore")

    title: str = Field(min_length=1)
    logline: str = Field("", description="The story in one sentence")
    characters: list[OutlineCharacter] = Field(default_factory=list)
    chapters: list[ChapterOutline] = Field(min_length=1)


@dataclass
class WrittenNovel:
    title: str
    outline: list[ChapterOutline]
    text: str  # the whole novel with chapter headings, ready for the ingest splitter
    logline: str = ""
    characters: list[OutlineCharacter] = field(default_factory=list)
    chapters: list[str] = field(default_factory=list)  # each chapter's prose, without its heading


def _outline_model(chapters: int) -> type[NovelOutline]:
    """NovelOutline requiring exactly ``chapters`` chapters, so a wrong count is repaired too."""
    exact = Annotated[list[ChapterOutline], Field(min_length=chapters, max_length=chapters)]
    return create_model("NovelOutline", __base__=NovelOutline, chapters=(exact, ...))


def write_novel(
    llm: LLMBackend,
    theme: str,
    chapters: int,
    language: str = "zh",
    words_per_chapter: int = 1500,
) -> WrittenNovel:
    """A novel of ``chapters`` chapters on ``theme``, written by ``llm``.

    ``words_per_chapter`` counts characters for Chinese, words for English. Raises
    NovelcomicError for bad arguments, LLMOutputError when the outline never validates, and
    BackendError when a chapter comes back empty twice (or the backend fails).
    """
    theme = (theme or "").strip()
    if not theme:
        raise NovelcomicError("the theme is empty: say in a sentence what the story is about")
    if not isinstance(chapters, int) or not 1 <= chapters <= MAX_CHAPTERS:
        raise NovelcomicError(f"chapters must be between 1 and {MAX_CHAPTERS}, got {chapters!r}")
    if language not in ("zh", "en"):
        raise NovelcomicError(f"unknown language {language!r} (expected zh or en)")
    if not 100 <= words_per_chapter <= 20000:
        raise NovelcomicError(f"words_per_chapter must be between 100 and 20000, got {words_per_chapter}")
    from novelcomic.llm.structured import generate_structured

    zh = language == "zh"
    outline = generate_structured(llm, _outline_messages(theme, chapters, zh), _outline_model(chapters), what="novel outline")
    titles = [_clean_title(c.title, zh) or (f"第{zh_numeral(i + 1)}章" if zh else f"Chapter {i + 1}") for i, c in enumerate(outline.chapters)]
    bodies: list[str] = []
    for i, chapter in enumerate(outline.chapters):
        previous = bodies[-1][-_PREVIOUS_TAIL_CHARS:] if bodies else ""
        messages = _chapter_messages(theme, outline, i, titles[i], previous, zh, words_per_chapter)
        bodies.append(_write_chapter(llm, messages, i + 1, words_per_chapter, zh))
    headings = [chapter_heading(i + 1, t, language) for i, t in enumerate(titles)]
    text = "\n\n".join(f"{h}\n\n{b}" for h, b in zip(headings, bodies)) + "\n"
    return WrittenNovel(
        title=_clean_title(outline.title, zh) or theme[:20],
        outline=[ChapterOutline(title=t, summary=c.summary) for t, c in zip(titles, outline.chapters)],
        text=text,
        logline=outline.logline,
        characters=list(outline.characters),
        chapters=bodies,
    )


def _outline_messages(theme: str, chapters: int, zh: bool) -> list[Message]:
    lang = "Chinese (简体中文)" if zh else "English"
    system = (
        "You are a novelist planning a serialized story that will be adapted into a narrated comic, one video "
        f"per chapter. Write everything in {lang}."
    )
    user = (
        f"Theme: {theme}\n\n"
        f"Plan a story of exactly {chapters} chapter{'s' if chapters != 1 else ''}: a title, a one-sentence logline, "
        "the main characters (2 to 6) each with a fixed, drawable appearance (hair, clothes, colours, build) and a "
        "one-sentence description, and for every chapter a short title (no chapter number) and a summary of two to "
        "four sentences. Each chapter should have a clear visual setting and a turn of events."
    )
    return [Message("system", system), Message("user", user)]


def _chapter_messages(
    theme: str, outline: NovelOutline, index: int, title: str, previous: str, zh: bool, words: int
) -> list[Message]:
    lang = "Chinese (简体中文)" if zh else "English"
    cast = "\n".join(f"- {c.name}: {c.appearance} {c.description}".rstrip() for c in outline.characters)
    plan = "\n".join(f"{n + 1}. {c.title}: {c.summary}" for n, c in enumerate(outline.chapters))
    quotes = "“…”" if zh else '"…"'
    unit = "Chinese characters" if zh else "words"
    system = (
        f"You are a novelist writing in {lang}. Write vivid, concrete prose that a reader can picture, with "
        f"dialogue in quotation marks ({quotes}) attributed to the speaker. Answer with the chapter's text only: "
        "no chapter heading, no title, no notes, no Markdown."
    )
    user = (
        f"Novel: {outline.title}\nTheme: {theme}\nLogline: {outline.logline}\n\nCharacters:\n{cast}\n\n"
        f"Chapter plan:\n{plan}\n\n"
        + (f"The previous chapter ended:\n…{previous}\n\n" if previous else "")
        + f"Write chapter {index + 1}, “{title}”, in about {words} {unit}: {outline.chapters[index].summary}"
    )
    return [Message("system", system), Message("user", user)]


def _write_chapter(llm: LLMBackend, messages: list[Message], number: int, words: int, zh: bool) -> str:
    """One chapter's prose; an empty answer is asked for again once, then is a BackendError."""
    budget = int(words * (2.0 if zh else 1.8)) + 200
    for _ in range(_CHAPTER_ATTEMPTS):
        body = clean_chapter_text(llm.complete(messages, temperature=0.8, max_tokens=budget))
        if body:
            return body
    raise BackendError(f"the language model wrote nothing for chapter {number} after {_CHAPTER_ATTEMPTS} attempts")


_FENCE_RE = re.compile(r"^```[a-zA-Z]*\s*$")
_MD_RE = re.compile(r"^\s*(?:#{1,6}\s+|\*\*|__)")
_NUMBER_PREFIX_RE = re.compile(
    r"^\s*(?:第\s*[0-9零〇一二两三四五六七八九十百千]+\s*[章回节]|chapter\s+[0-9ivxlc]+|part\s+[0-9ivxlc]+)\s*[:：.、\-—–]*\s*",
    re.IGNORECASE,
)


def clean_chapter_text(text: str) -> str:
    """A model's chapter answer as plain prose.

    Drops Markdown fences, a heading or title line the model wrote anyway, and any other line
    the ingest splitter would take for a chapter heading (it would cut the chapter in two).
    """
    from novelcomic.ingest.split import parse_heading

    lines = [ln.rstrip() for ln in (text or "").replace("\r\n", "\n").split("\n")]
    lines = [ln for ln in lines if not _FENCE_RE.match(ln.strip())]
    while lines and not lines[0].strip():
        lines.pop(0)
    if lines and (_MD_RE.match(lines[0]) or parse_heading(lines[0]) is not None):
        lines.pop(0)  # a heading/title the model added
    out = []
    for ln in lines:
        if parse_heading(ln) is not None:
            continue
        out.append(re.sub(r"^\s*#{1,6}\s+", "", ln).replace("**", ""))
    body = "\n".join(out).strip()
    return re.sub(r"\n{3,}", "\n\n", body)


def _clean_title(title: str, zh: bool) -> str:
    title = " ".join((title or "").split())
    title = _NUMBER_PREFIX_RE.sub("", title).strip(" 《》\"“”'*#")
    limit = _ZH_TITLE_MAX if zh else _EN_TITLE_MAX
    return title[:limit].strip()


_ZH_DIGITS = "零一二三四五六七八九"


def zh_numeral(n: int) -> str:
    """1 → 一, 10 → 十, 21 → 二十一, 105 → 一百零五 (1 to 9999)."""
    if not 1 <= n <= 9999:
        raise ValueError(f"zh_numeral takes 1 to 9999, got {n}")
    units = [(1000, "千"), (100, "百"), (10, "十"), (1, "")]
    out = ""
    zero = False
    for value, unit in units:
        d = n // value % 10
        if d:
            if zero and out:
                out += "零"
            out += _ZH_DIGITS[d] + unit
            zero = False
        elif out:
            zero = True
    return out[1:] if out.startswith("一十") else out


def chapter_heading(number: int, title: str, language: str) -> str:
    """``第三章 风起`` / ``Chapter 3: The Wind Rises``: a heading the splitter recognises."""
    if language == "zh":
        return f"第{zh_numeral(number)}章 {title}".rstrip()
    return f"Chapter {number}: {title}".rstrip(": ")


# --------------------------------------------------------------------------- projects


def create_project_from_theme(
    name: str,
    theme: str,
    chapters: int,
    root: Path | None = None,
    *,
    llm_config: LLMConfig | None = None,
    language: str = "zh",
    aspect: str = "9:16",
    words_per_chapter: int = 1500,
) -> Project:
    """Create project ``name`` from a novel the configured LLM writes on ``theme``.

    The LLM is ``llm_config``, else the one ``NOVELCOMIC_LLM_*`` variables describe; with
    neither, NovelcomicError says how to set one up. The novel is written first, then made a
    project by :func:`~novelcomic.ingest.create.create_project`; the LLM config goes into
    project.yaml (so planning uses it too) and the outline into ``outline.yaml``. Nothing is
    created when the name is taken, no LLM is configured, or the model fails.
    """
    from novelcomic.ingest.create import create_project
    from novelcomic.llm.config import SETUP_HINT, llm_from_env
    from novelcomic.registry import llms

    check_project_name(name)
    target = projects_root(root) / name
    if target.exists() or target.is_symlink():
        raise NovelcomicError(f"project {name!r} already exists at {target}")
    if language not in ("zh", "en"):
        raise NovelcomicError(f"unknown language {language!r} (expected zh or en)")
    if aspect not in ("9:16", "16:9"):
        raise NovelcomicError(f"unknown aspect {aspect!r} (expected 9:16 or 16:9)")
    config = llm_config or llm_from_env()
    if config is None:
        raise NovelcomicError(f"writing a novel from a theme needs a language model: {SETUP_HINT}")
    llm = llms.create(config.backend, config.options)
    novel = write_novel(llm, theme, chapters, language, words_per_chapter)

    with tempfile.TemporaryDirectory(prefix="novelcomic-theme-") as tmp:
        source = Path(tmp) / "novel.txt"
        source.write_text(novel.text, encoding="utf-8")
        project = create_project(name, source, root, title=novel.title, language=language, aspect=aspect)
    try:
        cfg = project.config()
        cfg.llm = config
        project.save_config(cfg)
        _write_outline(project.dir / OUTLINE_FILE, novel, theme, language)
    except BaseException:
        project.close()
        shutil.rmtree(project.dir, ignore_errors=True)
        raise
    project.close()
    return project


def _write_outline(path: Path, novel: WrittenNovel, theme: str, language: str) -> None:
    from novelcomic.fsutil import atomic_write_text
    from novelcomic.yamlio import dump_yaml

    data = {
        "title": novel.title,
        "theme": theme,
        "language": language,
        "logline": novel.logline,
        "characters": [c.model_dump() for c in novel.characters],
        "chapters": [{"title": c.title, "summary": c.summary} for c in novel.outline],
    }
    header = "# The outline the language model wrote this novel from (for reference; editing it changes nothing).\n"
    atomic_write_text(path, header + dump_yaml(data))
