"""The LLM planner with a scripted language model: cast merging across chapters and with the
user's cast, chunking, per-chapter fallback, and the pipeline's never-overwrite rule."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from novelcomic import pipeline
from novelcomic.errors import NovelcomicError
from novelcomic.llm.base import Message
from novelcomic.llm.config import SETUP_HINT, llm_from_env
from novelcomic.models import Character, CharactersFile, LLMConfig, Prop, ProjectConfig, PropsFile
from novelcomic.plan.base import ChapterText, PlanRequest
from novelcomic.plan.bible import Bible
from novelcomic.plan.llm_planner import LLMPlanner, estimate_tokens, split_chunks
from novelcomic.project import Project
from novelcomic.registry import llms
from tests.helpers import copy_example

Script = Callable[[str, str, str], Any]  # (chapter id, passage, context) → answer (dict or raw text)


class ScriptedLLM:
    """A fake LLM: finds the chapter id, passage and context in the prompt and asks ``script``."""

    name = "scripted"

    def __init__(self, script: Script, context_tokens: int = 8192) -> None:
        self.script = script
        self.context_tokens = context_tokens
        self.calls: list[list[Message]] = []

    def complete(self, messages: list[Message], *, json_schema: dict | None = None, temperature: float = 0.2,
                 max_tokens: int | None = None) -> str:
        assert json_schema is not None and json_schema["title"] == "ChunkAnalysis"
        self.calls.append(messages)
        user = messages[1].content
        chapter = re.search(r"^Chapter ([^\s:]+)", user, re.M).group(1)  # type: ignore[union-attr]
        passage = re.search(r"<<<\n(.*)\n>>>", user, re.S).group(1)  # type: ignore[union-attr]
        ctx = re.search(r"do not make shots from it\):\n(.*?)\n\nPassage:", user, re.S)
        answer = self.script(chapter, passage, ctx.group(1) if ctx else "")
        return answer if isinstance(answer, str) else json.dumps(answer, ensure_ascii=False)


def use(llm: ScriptedLLM):  # type: ignore[no-untyped-def]
    return llms.override("scripted", lambda **_: llm)


def config(lang: str = "zh", chapters: int = 1) -> ProjectConfig:
    return ProjectConfig(title="t", language=lang, llm=LLMConfig(backend="scripted"),
                         chapters=[{"id": f"{i:02d}"} for i in range(1, chapters + 1)])


def shot(speaker: str, text: str, chars: list[str] | None = None) -> dict:
    return {"characters": chars if chars is not None else ([] if speaker == "narrator" else [speaker]),
            "lines": [{"speaker": speaker, "text": text}]}


def answer(characters: list[dict], shots: list[dict], **extra: Any) -> dict:
    return {"characters": characters, "props": extra.get("props", []), "locations": extra.get("locations", []),
            "scenes": [{"location": extra.get("location"), "mood": "calm", "shots": shots}]}


def speakers(result, chapter: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [ln.speaker for _, s in result.storyboards[chapter].shots() for ln in s.lines]


# --------------------------------------------------------------------------- cast merging


def test_aliases_merge_across_chapters_zh() -> None:
    script = {
        "01": answer([{"name": "石猴", "appearance": "石头里蹦出的猴子"}], [shot("石猴", "我要出去看看！")]),
        "02": answer([{"name": "美猴王", "aliases": ["猴王"], "appearance": "石头里蹦出的猴子，金色的毛"}],
                     [shot("猴王", "都随我来！"), shot("美猴王", "这里就是水帘洞。")]),
        "03": answer([{"name": "孙悟空", "aliases": ["悟空", "美猴王", "石猴"], "gender": "male"},
                      {"name": "菩提祖师", "aliases": ["祖师"], "gender": "male", "age": "old"}],
                     [shot("悟空", "弟子拜见师父。"), shot("祖师", "你姓什么？")]),
    }
    llm = ScriptedLLM(lambda ch, passage, ctx: script[ch])
    request = PlanRequest(config(chapters=3), [ChapterText(f"0{i}", "", f"第{i}回的正文。") for i in (1, 2, 3)])
    with use(llm):
        result = LLMPlanner().plan(request)
    cast = result.characters.characters
    assert [c.id for c in cast] == ["c01", "c02"]
    monkey = cast[0]
    assert monkey.name == "孙悟空"
    assert set(monkey.aliases) == {"石猴", "美猴王", "猴王", "悟空"}
    assert monkey.appearance == "石头里蹦出的猴子，金色的毛"  # accumulated, not duplicated
    assert monkey.voice.gender == "male"
    assert speakers(result, "01") == ["c01"] and speakers(result, "02") == ["c01", "c01"]
    assert speakers(result, "03") == ["c01", "c02"]
    assert result.storyboards["02"].scenes[0].shots[1].characters == ["c01"]
    # Later chunks are told the cast so far, so the model can reuse the names.
    assert "石猴" in llm.calls[1][1].content and "美猴王 (also 猴王)" in llm.calls[2][1].content


def test_aliases_merge_en_by_containment() -> None:
    script = {
        "01": answer([{"name": "the White Rabbit", "appearance": "white fur, pink eyes"}, {"name": "Alice", "gender": "female"}],
                     [shot("the White Rabbit", "Oh dear! I shall be late!"), shot("Alice", "How curious.")]),
        "02": answer([{"name": "the Rabbit", "appearance": "a waistcoat and a pocket watch"}, {"name": "Alice's sister"}],
                     [shot("the Rabbit", "My ears and whiskers!"), shot("Alice's sister", "Wake up, Alice dear!")]),
    }
    llm = ScriptedLLM(lambda ch, passage, ctx: script[ch])
    request = PlanRequest(config("en", 2), [ChapterText("01", "", "One."), ChapterText("02", "", "Two.")])
    with use(llm):
        result = LLMPlanner().plan(request)
    by_name = {c.name: c for c in result.characters.characters}
    assert set(by_name) == {"the White Rabbit", "Alice", "Alice's sister"}
    rabbit = by_name["the White Rabbit"]
    assert rabbit.aliases == ["the Rabbit"]
    assert rabbit.appearance == "white fur, pink eyes, a waistcoat and a pocket watch"
    assert speakers(result, "02") == [rabbit.id, by_name["Alice's sister"].id]


def test_existing_user_cast_ids_kept_new_ids_continue() -> None:
    user = CharactersFile(characters=[
        Character(id="hero", name="孙悟空", aliases=["悟空"], appearance="头戴金箍"),
        Character(id="c07", name="唐僧"),
    ])
    props = PropsFile(props=[Prop(id="p03", name="金箍棒")])
    script = {"01": answer(
        [{"name": "美猴王", "aliases": ["孙悟空"], "appearance": "金色的毛"}, {"name": "唐三藏", "aliases": ["唐僧"], "gender": "male"},
         {"name": "猪八戒", "aliases": ["八戒"]}],
        [shot("美猴王", "师父，请上马。"), shot("唐三藏", "悟空，走吧。"), shot("八戒", "等等我！")],
        props=[{"name": "如意金箍棒", "aliases": ["金箍棒"]}, {"name": "紫金钵盂"}],
    )}
    request = PlanRequest(config(), [ChapterText("01", "", "正文。")], characters=user, props=props)
    with use(ScriptedLLM(lambda ch, p, c: script[ch])):
        result = LLMPlanner().plan(request)
    cast = result.characters.by_id()
    assert list(cast) == ["hero", "c07", "c08"]
    assert cast["hero"].name == "孙悟空" and cast["hero"].appearance == "头戴金箍"  # the user's words are kept
    assert "美猴王" in cast["hero"].aliases
    assert cast["c07"].name == "唐僧" and cast["c07"].voice.gender == "male"  # blanks filled
    assert cast["c08"].name == "猪八戒"
    assert [p.id for p in result.props.props] == ["p03", "p04"]
    assert speakers(result, "01") == ["hero", "c07", "c08"]


def test_unknown_speaker_becomes_narrator_with_warning() -> None:
    script = {"01": answer([{"name": "阿青"}], [shot("阿青", "你好。"), shot("路人甲", "让一让！", chars=["路人甲"])])}
    with use(ScriptedLLM(lambda ch, p, c: script[ch])):
        result = LLMPlanner().plan(PlanRequest(config(), [ChapterText("01", "", "正文。")]))
    assert speakers(result, "01") == ["c01", "narrator"]
    assert any("'路人甲'" in w and "narrator" in w for w in result.warnings)


def test_bible_keeps_two_user_characters_apart() -> None:
    bible = Bible(CharactersFile(characters=[Character(id="a", name="阿大"), Character(id="b", name="阿二")]))
    bible.add_character("阿大", ["阿二"])  # a confused mention must not merge the user's two characters
    chars, _, _ = bible.build()
    assert [c.id for c in chars.characters] == ["a", "b"]
    assert bible.resolve("character", "阿二") == "b" and bible.resolve("character", "阿大") == "a"


# --------------------------------------------------------------------------- chunking


def test_long_chapter_is_chunked_and_merged_without_duplicates() -> None:
    lines = [f"第{i}句，小河静静地流过村口的石桥，风吹过芦苇。" for i in range(1, 31)]
    text = "\n".join(lines)
    seen_context: list[str] = []

    def script(ch: str, passage: str, ctx: str) -> dict:
        # A model that also storyboards the context it was told to skip: the overlap must be dropped.
        seen_context.append(ctx)
        todo = [ln for ln in (ctx + "\n" + passage).splitlines() if ln.strip()]
        return answer([], [shot("narrator", ln) for ln in todo])

    llm = ScriptedLLM(script)
    with use(llm):
        result = LLMPlanner(chunk_tokens=80, overlap_chars=40).plan(PlanRequest(config(), [ChapterText("01", "", text)]))
    assert len(llm.calls) >= 4
    assert all(estimate_tokens(c.text) <= 80 for c in split_chunks(text, 80, 40))
    assert seen_context[0] == "" and all(c in lines for c in seen_context[1:])  # whole previous lines as context
    got = [ln.text for _, s in result.storyboards["01"].shots() for ln in s.lines]
    assert got == lines
    ids = [s.id for _, s in result.storyboards["01"].shots()]
    assert len(ids) == len(set(ids)) == 30


def test_split_chunks_cuts_long_paragraphs_at_sentences() -> None:
    para = "".join(f"这是第{i}个句子。" for i in range(60))
    chunks = split_chunks(para, 50, 0)
    assert len(chunks) > 3 and "".join(c.text for c in chunks) == para
    assert all(c.text.endswith("。") for c in chunks)
    en = " ".join(f"Sentence number {i} is here." for i in range(80))
    parts = split_chunks(en, 60, 30)
    assert " ".join(c.text for c in parts) == en and all(c.context for c in parts[1:])


# --------------------------------------------------------------------------- failure and configuration


def test_failed_chapter_falls_back_to_heuristic_others_go_on() -> None:
    def script(ch: str, passage: str, ctx: str) -> Any:
        if ch == "02":
            return "抱歉，我无法完成这个任务。"
        return answer([{"name": "林小雨", "aliases": ["小雨"]}], [shot("林小雨", "阿青，今晚我们一起去看灯会吧！")])

    llm = ScriptedLLM(script)
    chapters = [ChapterText("01", "", "林小雨说：“阿青，今晚我们一起去看灯会吧！”"),
                ChapterText("02", "", "阿青问道：“你的灯笼点亮了吗？”小雨说：“还没有。”\n阿青说：“那我帮你提着。”")]
    planner = LLMPlanner(attempts=2)
    with use(llm):
        result = planner.plan(PlanRequest(config(chapters=2), chapters))
    assert len(llm.calls) == 3  # 1 for chapter 01, 2 attempts for chapter 02
    assert [f.chapter for f in planner.failures] == ["02"] and planner.failures[0].attempts == 2
    warn = next(w for w in result.warnings if w.startswith("chapter 02"))
    assert "after 2 attempts" in warn and "heuristic planner" in warn and "no JSON object" in warn
    assert set(result.storyboards) == {"01", "02"}
    assert speakers(result, "01") == ["c01"]
    texts = [ln.text for _, s in result.storyboards["02"].shots() for ln in s.lines]
    assert "你的灯笼点亮了吗？" in texts  # the heuristic planned chapter 02 from its text
    cast = result.characters.by_id()
    assert cast["c01"].name == "林小雨"  # the LLM's cast survives the fallback, same id


def test_no_llm_configured_explains_how() -> None:
    cfg = ProjectConfig(title="t", chapters=[{"id": "01"}])
    with pytest.raises(NovelcomicError) as info:
        LLMPlanner().plan(PlanRequest(cfg, [ChapterText("01", "", "x")]))
    assert info.value.field == "llm" and "Ollama" in str(info.value) and "llm:" in SETUP_HINT


def test_llm_from_env() -> None:
    assert llm_from_env({}) is None
    cfg = llm_from_env({"NOVELCOMIC_LLM_BASE_URL": "http://localhost:8000/v1", "NOVELCOMIC_LLM_MODEL": "qwen",
                        "NOVELCOMIC_LLM_API_KEY_ENV": "MY_KEY"})
    assert cfg == LLMConfig(backend="openai", options={"model": "qwen", "base_url": "http://localhost:8000/v1", "api_key_env": "MY_KEY"})
    local = llm_from_env({"NOVELCOMIC_LLM_BACKEND": "transformers", "NOVELCOMIC_LLM_MODEL": "/models/qwen"})
    assert local == LLMConfig(backend="transformers", options={"model": "/models/qwen"})


# --------------------------------------------------------------------------- end to end through the pipeline


def _lantern_script(ch: str, passage: str, ctx: str) -> dict:
    lines = [ln for ln in passage.splitlines() if ln.strip() and ln.strip() != "***"]
    return answer(
        [{"name": "林小雨", "aliases": ["小雨"], "appearance": "红色的棉袄"}, {"name": "阿青", "appearance": "青色的短褂"}],
        [shot("narrator", ln, chars=["小雨"]) for ln in lines],
        locations=[{"name": "河边"}], location="河边",
    )


def _llm_planned_example(root: Path) -> Path:
    """The Chinese example, copied, set to be planned by the scripted language model."""
    pdir = copy_example("lantern-fox", root)
    data = yaml.safe_load((pdir / "project.yaml").read_text(encoding="utf-8"))
    data["stages"] = {"plan": {"backend": "llm"}}
    data["llm"] = {"backend": "scripted"}
    (pdir / "project.yaml").write_text(yaml.dump(data, allow_unicode=True), encoding="utf-8")
    return pdir


def test_pipeline_never_overwrites_user_edits(root: Path) -> None:
    pdir = _llm_planned_example(root)
    project = Project(pdir)
    llm = ScriptedLLM(_lantern_script)
    with use(llm):
        first = pipeline.plan(project)
        assert first.made >= 6 and len(llm.calls) == 3
        sb = project.storyboard("01")  # valid, and its ids resolve against characters.yaml
        assert sb.scenes[0].location == "l01" and sb.scenes[0].shots[0].characters == ["c01"]
        chars_yaml = pdir / "characters.yaml"
        edited = chars_yaml.read_text(encoding="utf-8").replace("红色的棉袄", "红色的棉袄，脖子上挂着银铃铛") + "# my notes\n"
        chars_yaml.write_text(edited, encoding="utf-8")
        before = chars_yaml.read_bytes()
        chapter = pdir / "chapters" / "02.txt"
        chapter.write_text(chapter.read_text(encoding="utf-8") + "\n小雨回头望了望山顶。\n", encoding="utf-8")
        same_cast = pipeline.plan(project)  # the new plan's cast is what the user's file already says
        assert not (pdir / "characters.proposed.yaml").exists() and not any("edited by you" in w for w in same_cast.warnings)
        assert len(llm.calls) == 4  # only the changed chapter was planned again
        llm.script = lambda ch, passage, ctx: {**_lantern_script(ch, passage, ctx), "characters": [
            {"name": "林小雨", "aliases": ["小雨"]}, {"name": "阿青"}, {"name": "白狐", "appearance": "雪白的狐狸"}]}
        chapter.write_text(chapter.read_text(encoding="utf-8") + "\n白狐在月下看着她。\n", encoding="utf-8")
        second = pipeline.plan(project)
    assert len(llm.calls) == 5
    assert chars_yaml.read_bytes() == before
    proposed = pdir / "characters.proposed.yaml"
    assert proposed.exists()
    assert any("characters.yaml was edited by you" in w for w in second.warnings)
    assert "白狐" in proposed.read_text(encoding="utf-8")
    sb2 = project.storyboard("02")
    assert sb2.shots()[-1][1].lines[-1].text == "白狐在月下看着她。"


def test_a_shots_source_passage_keeps_spaces_between_english_lines() -> None:
    from novelcomic.plan.llm_planner import _join_text

    assert _join_text(["He ran all day long.", "Pip was eleven."]) == "He ran all day long. Pip was eleven."
    assert _join_text(["河水静静地流。", "阿青笑了。"]) == "河水静静地流。阿青笑了。"


def test_a_server_that_stops_answering_keeps_the_chapters_already_planned(root: Path) -> None:
    """The model answered chapter 01, then the server went down: 01's storyboard is written and
    kept, the run stops with an error naming what is left, and the next run asks only for 02."""
    from novelcomic.errors import BackendError

    pdir = _llm_planned_example(root)
    project = Project(pdir)
    down = {"from": "02"}

    def script(ch: str, passage: str, ctx: str) -> Any:
        if down["from"] and ch >= down["from"]:
            raise BackendError("cannot reach LLM server http://localhost:11434/v1 after 4 attempts (connection refused)")
        return _lantern_script(ch, passage, ctx)

    llm = ScriptedLLM(script)
    with use(llm):
        with pytest.raises(NovelcomicError, match=r"stopped answering at chapter 02 .*connection refused.*chapter\(s\) 01 are "
                                                  r"planned and kept; run again to plan 02, 03"):
            pipeline.plan(project)
        assert project.storyboard("01").shots() and not project.storyboard_path("02").exists()
        asked = len(llm.calls)
        down["from"] = ""
        pipeline.plan(project)
        assert project.storyboard_path("02").exists() and project.storyboard_path("03").exists()
        assert len(llm.calls) == asked + 2  # 02 and 03 only; 01 was kept
    # nothing planned yet when it fails on the first chapter: the error as it is
    down["from"] = "01"
    with use(ScriptedLLM(script)), pytest.raises(BackendError, match="connection refused"):
        LLMPlanner().plan(PlanRequest(config(chapters=1), [ChapterText("01", "", "河水静静地流。")]))
