"""Writing a novel from a theme with a (scripted) LLM and making a project of it: the outline,
the chapters under headings the splitter finds, project.yaml's llm block, outline.yaml, and
nothing created when no LLM is configured or the model fails part-way."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from novelcomic.errors import BackendError, NovelcomicError
from novelcomic.ingest.split import split_chapters
from novelcomic.ingest.write import (
    chapter_heading,
    clean_chapter_text,
    create_project_from_theme,
    write_novel,
    zh_numeral,
)
from novelcomic.models import LLMConfig
from novelcomic.registry import llms

ZH_OUTLINE = {
    "title": "《荷塘夜话》",
    "logline": "山村少女追寻消失的青蛙，揭开荷塘的秘密。",
    "characters": [
        {"name": "林小雨", "appearance": "黑色长发，青色布衣", "description": "好奇的少女", "gender": "female"},
        {"name": "陈伯", "appearance": "白胡子，斗笠", "description": "老渔夫"},
    ],
    "chapters": [
        {"title": "第一章 荷塘", "summary": "小雨发现荷塘里的青蛙都不见了。"},
        {"title": "夜访", "summary": "小雨夜里去找陈伯。"},
        {"title": "真相", "summary": "陈伯讲出荷塘的往事。"},
    ],
}


def _chapter(n: int) -> str:
    return (
        f"这是第{n}段故事的开头。清晨的荷塘上飘着薄雾，林小雨蹲在岸边，久久地望着水面。\n\n"
        f"“陈伯，青蛙都去哪儿了？”林小雨问。\n\n"
        f"陈伯笑道：“别急，孩子。”他把斗笠往下压了压，慢慢走进了芦苇丛。风吹过荷叶，沙沙作响。\n\n"
        f"这一天，小雨记了很久很久。"
    )


class FakeLLM:
    """Answers from a class-level script: the outline JSON first, then one text per chapter.

    A script item that is an exception instance is raised instead of answered.
    """

    name = "fake"
    context_tokens = 8192
    script: list[object] = []
    calls: list[tuple[list, dict | None]] = []

    def __init__(self, **options: object) -> None:
        self.options = options

    def complete(self, messages, *, json_schema=None, temperature=0.2, max_tokens=None):  # type: ignore[no-untyped-def]
        FakeLLM.calls.append((list(messages), json_schema))
        item = FakeLLM.script[len(FakeLLM.calls) - 1]
        if isinstance(item, BaseException):
            raise item
        return str(item)


@pytest.fixture
def fake_llm(monkeypatch: pytest.MonkeyPatch):
    for var in ("NOVELCOMIC_LLM_BACKEND", "NOVELCOMIC_LLM_BASE_URL", "NOVELCOMIC_LLM_MODEL", "NOVELCOMIC_LLM_API_KEY_ENV"):
        monkeypatch.delenv(var, raising=False)
    FakeLLM.calls = []
    FakeLLM.script = []
    with llms.override("fake", FakeLLM):
        yield FakeLLM


def _zh_script() -> list[object]:
    # The model puts a heading and Markdown before chapter 2 anyway: it must not split the chapter.
    return [json.dumps(ZH_OUTLINE, ensure_ascii=False), _chapter(1), "## 第二章 夜访\n\n" + _chapter(2), "```\n" + _chapter(3) + "\n```"]


def test_zh_numerals_and_headings() -> None:
    assert [zh_numeral(n) for n in (1, 10, 11, 20, 21, 100, 105, 110, 1234)] == [
        "一", "十", "十一", "二十", "二十一", "一百", "一百零五", "一百一十", "一千二百三十四"]
    assert chapter_heading(12, "风起", "zh") == "第十二章 风起"
    assert chapter_heading(3, "The Wind", "en") == "Chapter 3: The Wind"


def test_clean_chapter_text_drops_headings_and_markdown() -> None:
    text = "# Chapter 2: Night\n\n**She ran.**\n\nChapter 7\n\nThen she stopped."
    assert clean_chapter_text(text) == "She ran.\n\nThen she stopped."


def test_write_novel_text_splits_into_the_outlined_chapters(fake_llm) -> None:
    fake_llm.script = _zh_script()
    llm = FakeLLM()
    novel = write_novel(llm, "荷塘里的青蛙消失了", 3, "zh", words_per_chapter=300)
    assert novel.title == "荷塘夜话"
    assert [c.title for c in novel.outline] == ["荷塘", "夜访", "真相"]
    chapters = split_chapters(novel.text, "zh")
    assert [c.title for c in chapters] == ["第一章 荷塘", "第二章 夜访", "第三章 真相"]
    assert all("“陈伯，青蛙都去哪儿了？”" in c.text for c in chapters)
    assert "##" not in novel.text and "```" not in novel.text
    # The outline was a structured request; each chapter saw the plan and the previous chapter's end.
    assert fake_llm.calls[0][1] is not None and fake_llm.calls[1][1] is None
    third = "\n".join(m.content for m in fake_llm.calls[3][0])
    assert "陈伯讲出荷塘的往事" in third and "这一天，小雨记了很久很久" in third and "黑色长发" in third


def test_outline_with_wrong_chapter_count_is_repaired(fake_llm) -> None:
    two = dict(ZH_OUTLINE, chapters=ZH_OUTLINE["chapters"][:2])
    fake_llm.script = [json.dumps(two, ensure_ascii=False), json.dumps(ZH_OUTLINE, ensure_ascii=False), "一", "二", "三"]
    novel = write_novel(FakeLLM(), "荷塘", 3, "zh", words_per_chapter=200)
    assert len(novel.outline) == 3
    assert "chapters" in fake_llm.calls[1][0][-1].content  # the repair round named the field


def test_create_project_from_theme_zh(fake_llm, root: Path) -> None:
    from novelcomic.project import Project

    fake_llm.script = _zh_script()
    config = LLMConfig(backend="fake", options={"model": "tiny"})
    project = create_project_from_theme("lotus", "荷塘里的青蛙消失了", 3, root, llm_config=config, words_per_chapter=300)
    assert project.dir == (root / "lotus").resolve()
    reopened = Project.open("lotus", root)
    cfg = reopened.config()
    assert cfg.title == "荷塘夜话" and cfg.language == "zh"
    assert [(c.id, c.title) for c in cfg.chapters] == [("01", "第一章 荷塘"), ("02", "第二章 夜访"), ("03", "第三章 真相")]
    assert cfg.llm == config
    assert not (project.dir / "project.proposed.yaml").exists()  # save_config rewrote its own file
    assert "backend: fake" in (project.dir / "project.yaml").read_text(encoding="utf-8")
    for cid in ("01", "02", "03"):
        assert "林小雨" in reopened.chapter_text(cid)
    outline = yaml.safe_load((project.dir / "outline.yaml").read_text(encoding="utf-8"))
    assert outline["title"] == "荷塘夜话" and outline["theme"] == "荷塘里的青蛙消失了"
    assert [c["title"] for c in outline["chapters"]] == ["荷塘", "夜访", "真相"]
    assert outline["characters"][0]["appearance"] == "黑色长发，青色布衣"
    reopened.close()


def test_create_project_from_theme_en_with_env_config(fake_llm, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOVELCOMIC_LLM_BACKEND", "fake")
    outline = {"title": "The Silent Pond", "logline": "x", "characters": [],
               "chapters": [{"title": "Chapter 1: Mist", "summary": "a"}, {"title": "Night", "summary": "b"}]}
    body = 'Mist lay on the pond. "Where are the frogs?" asked Mia.\n\nNobody answered. The reeds moved in the wind.'
    fake_llm.script = [json.dumps(outline), body, body]
    project = create_project_from_theme("pond", "a pond loses its frogs", 2, root, language="en", aspect="16:9")
    cfg = project.config()
    assert [c.title for c in cfg.chapters] == ["Chapter 1: Mist", "Chapter 2: Night"]
    assert cfg.aspect == "16:9" and cfg.language == "en"
    assert cfg.llm is not None and cfg.llm.backend == "fake"
    project.close()


def test_no_llm_configured_creates_nothing(fake_llm, root: Path) -> None:
    with pytest.raises(NovelcomicError) as err:
        create_project_from_theme("lotus", "荷塘", 3, root)
    assert "NOVELCOMIC_LLM_BACKEND" in str(err.value) and "llm:" in str(err.value)
    assert list(root.iterdir()) == []
    assert fake_llm.calls == []


def test_llm_failure_midway_creates_nothing(fake_llm, root: Path) -> None:
    fake_llm.script = [json.dumps(ZH_OUTLINE, ensure_ascii=False), _chapter(1), BackendError("server went away")]
    with pytest.raises(BackendError, match="server went away"):
        create_project_from_theme("lotus", "荷塘", 3, root, llm_config=LLMConfig(backend="fake"))
    assert list(root.iterdir()) == []
    # An empty chapter, twice, is a failure too.
    fake_llm.calls = []
    fake_llm.script = [json.dumps(ZH_OUTLINE, ensure_ascii=False), _chapter(1), "  ", "```\n```"]
    with pytest.raises(BackendError, match="chapter 2"):
        create_project_from_theme("lotus", "荷塘", 3, root, llm_config=LLMConfig(backend="fake"))
    assert list(root.iterdir()) == []


def test_invalid_outline_and_bad_arguments_create_nothing(fake_llm, root: Path) -> None:
    from novelcomic.llm.structured import LLMOutputError

    fake_llm.script = ["no json here"] * 3
    with pytest.raises(LLMOutputError):
        create_project_from_theme("lotus", "荷塘", 3, root, llm_config=LLMConfig(backend="fake"))
    assert list(root.iterdir()) == []
    fake_llm.calls = []
    (root / "taken").mkdir()
    with pytest.raises(NovelcomicError, match="already exists"):
        create_project_from_theme("taken", "荷塘", 3, root, llm_config=LLMConfig(backend="fake"))
    with pytest.raises(NovelcomicError, match="chapters must be between"):
        create_project_from_theme("new", "荷塘", 0, root, llm_config=LLMConfig(backend="fake"))
    with pytest.raises(NovelcomicError, match="theme is empty"):
        create_project_from_theme("new", "  ", 2, root, llm_config=LLMConfig(backend="fake"))
    assert fake_llm.calls == [] and sorted(p.name for p in root.iterdir()) == ["taken"]
