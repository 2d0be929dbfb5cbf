"""Ingest on real downloaded novels (shared/corpus beside the repository) and on synthetic texts
for the structures those novels do not show: a table of contents, volumes, 楔子/尾声, Roman
numerals, titles on the next line, site decoration, verse, no headings at all."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import pytest

from novelcomic.ingest.clean import clean_text, detect_language, reflow, wrap_width
from novelcomic.ingest.decode import decode_novel
from novelcomic.ingest.split import Chapter, split_chapters
from novelcomic.plan.text import ends_mid_clause, lines_cut_mid_clause, sentence_spans

CORPUS = Path(__file__).resolve().parents[2] / "shared/corpus"
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason="shared/corpus is not beside the repository")

_ZH_DIGITS = {c: i for i, c in enumerate("零一二三四五六七八九")}


def zh_value(numeral: str) -> int:
    """一 → 1, 十二 → 12, 一百零五 / 一百五 → 105 (the book writes both), 一百二十 → 120."""
    total, digit = 0, 0
    for c in numeral:
        if c == "百":
            total += (digit or 1) * 100
            digit = 0
        elif c == "十":
            total += (digit or 1) * 10
            digit = 0
        else:
            digit = _ZH_DIGITS[c]
    return total + digit


@lru_cache(maxsize=None)
def ingest(name: str) -> tuple[str, str, list[Chapter]]:
    """(encoding, cleaned text, chapters) of a corpus file, the way create_project gets them."""
    text, encoding = decode_novel((CORPUS / name).read_bytes(), None)
    cleaned = clean_text(text)
    return encoding, cleaned, split_chapters(cleaned, detect_language(cleaned))


# --------------------------------------------------------------------------- 三国演义


@needs_corpus
def test_sanguo_has_120_chapters_with_their_huimu() -> None:
    _, cleaned, chapters = ingest("sanguo_full.txt")
    assert len(chapters) == 120
    raw = (CORPUS / "sanguo_full.txt").read_text(encoding="utf-8")
    huimu = [(h, " ".join(t.split())) for h, t in re.findall(r"正文\s+(第\S+?回)\s+(.+?)\s*$", raw, re.MULTILINE)]
    assert len(huimu) == 120
    for n, (chapter, (head, title)) in enumerate(zip(chapters, huimu), start=1):
        assert zh_value(head[1:-1]) == n
        assert chapter.title == f"{head} {title}"
        assert chapter.id == f"{n:03d}"
        assert len(chapter.text) > 1000


@needs_corpus
def test_sanguo_site_lines_are_gone_and_the_books_own_lines_stay() -> None:
    _, cleaned, chapters = ingest("sanguo_full.txt")
    for chapter in chapters:
        assert "更新时间" not in chapter.text and "本章字数" not in chapter.text, chapter.title
        assert "作品仅供读者预览" not in chapter.text and "章节内容开始" not in chapter.text
        assert "请购买正版" not in chapter.text
    assert "更新时间" not in cleaned and "作品仅供读者预览" not in cleaned and "章节内容开始" not in cleaned
    text = "\n".join(c.text for c in chapters)
    raw = (CORPUS / "sanguo_full.txt").read_text(encoding="utf-8")
    assert text.count("诗曰") == raw.count("诗曰") > 10
    assert "——调寄《临江仙》" in chapters[0].text
    # The opening poem, cut at a fixed width in the file (惯|看秋月春风, 都付|笑谈中), is whole again.
    assert "白发渔樵江渚上，惯看秋月春风。一壶浊酒喜相逢。古今多少事，都付笑谈中。" in chapters[0].text
    assert chapters[0].text.startswith("滚滚长江东逝水，浪花淘尽英雄。是非成败转头空。\n")


@needs_corpus
def test_sanguo_gb18030_copy_decodes_and_splits_like_the_utf8_one() -> None:
    encoding, cleaned, chapters = ingest("sanguo_ch1-4.gbk.txt")
    assert encoding in {"gbk", "gb18030"}
    _, cleaned_utf8, chapters_utf8 = ingest("sanguo_ch1-4.txt")
    assert cleaned == cleaned_utf8
    assert [(c.id, c.title, c.text) for c in chapters] == [(c.id, c.title, c.text) for c in chapters_utf8]
    assert [c.title for c in chapters] == [c.title for c in ingest("sanguo_full.txt")[2][:4]]


# --------------------------------------------------------------------------- Pride and Prejudice


@needs_corpus
def test_pride_has_61_chapters() -> None:
    _, _, chapters = ingest("pride_full.txt")
    assert [c.title for c in chapters] == [f"Chapter {n}" for n in range(1, 62)]


@needs_corpus
def test_pride_is_reflowed_no_paragraph_breaks_mid_sentence() -> None:
    raw = (CORPUS / "pride_full.txt").read_text(encoding="utf-8")
    assert 65 <= (wrap_width(raw.split("\n")) or 0) <= 75
    _, cleaned, chapters = ingest("pride_full.txt")
    for chapter in chapters:
        lines = chapter.text.split("\n")
        for line, following in zip(lines, lines[1:]):
            if line and following:  # a hard newline inside a paragraph
                pytest.fail(f"{chapter.title}: {line[-40:]!r} / {following[:40]!r}")
        for paragraph in filter(None, lines):
            if any(c.isalnum() for c in paragraph):  # not "* * * * *"
                assert not ends_mid_clause(paragraph, "en"), paragraph[-60:]
    assert "It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife." in chapters[0].text
    assert clean_text(cleaned) == cleaned  # re-flow is idempotent


@needs_corpus
@pytest.mark.parametrize("name", ["pride_ch1-5.txt", "sanguo_ch1-4.txt"])
def test_storyboard_lines_never_end_mid_clause(name: str) -> None:
    from novelcomic.models import ProjectConfig
    from novelcomic.plan.base import ChapterText, PlanRequest
    from novelcomic.plan.heuristic import HeuristicPlanner

    _, cleaned, chapters = ingest(name)
    lang = detect_language(cleaned)
    request = PlanRequest(
        config=ProjectConfig(title=name, language=lang), chapters=[ChapterText(c.id, c.title, c.text) for c in chapters]
    )
    result = HeuristicPlanner().plan(request)
    total = cut = 0
    examples: list[str] = []
    for chapter, board in zip(chapters, result.storyboards.values()):
        texts = [line.text for _, shot in board.shots() for line in shot.lines]
        bad = lines_cut_mid_clause(texts, chapter.text, lang)
        total += len(texts)
        cut += len(bad)
        examples += [texts[i][-60:] for i in bad[:3]]
    assert total > 100
    assert cut == 0, examples


# --------------------------------------------------------------------------- the measure itself


def test_ends_mid_clause() -> None:
    for ok in ("He went home.", "Well,", "“走吧。”", '"Go!"', "and then--", "他说——", "如下：", "_Yes._", "(he said.)"):
        assert not ends_mid_clause(ok, "en"), ok
    for bad in ("have you heard that", "惯", "I certainly _have_", "(he said)"):
        assert ends_mid_clause(bad, "en"), bad


def test_lines_cut_mid_clause_looks_at_the_source() -> None:
    source = "It is a truth universally acknowledged, that a single man in possession of a good fortune."
    # A planner that added a full stop to a wrapped fragment is caught; the whole sentence is not.
    assert lines_cut_mid_clause(["It is a truth universally acknowledged, that a single man in possession."], source, "en") == [0]
    assert lines_cut_mid_clause(["It is a truth universally acknowledged,", "that a single man in possession of a good fortune."], source, "en") == []
    assert lines_cut_mid_clause(["大呼。", "逆贼休走！"], "闵贡大呼“逆贼休走！”张让见事急。", "zh") == []


def test_long_sentences_are_cut_at_clause_boundaries() -> None:
    sentence = (
        "Mr. Bingley intended it likewise, and sometimes made choice of his county; but as he was now provided "
        "with a good house and the liberty of a manor, it was doubtful to many of those who best knew the easiness "
        "of his temper, whether he might not spend the remainder of his days at Netherfield, and leave the next "
        "generation to purchase."
    )
    pieces = [sentence[a:b] for a, b in sentence_spans(sentence, "en")]
    assert len(pieces) > 1 and " ".join(pieces) == sentence
    assert pieces[0].endswith("county;")
    assert all(not ends_mid_clause(p, "en") and len(p.split()) <= 45 for p in pieces)
    zh = "却说张飞拍马赶到关下，关上矢石如雨，不得进而回，八路诸侯同请玄德、关、张贺功，使人去袁绍寨中报捷，绍遂移檄孙坚，令其进兵，坚引程普、黄盖至袁术寨中相见，坚以杖画地曰：董卓与我本无仇隙。"
    parts = [zh[a:b] for a, b in sentence_spans(zh, "zh", max_size=40)]
    assert "".join(parts) == zh and len(parts) > 1
    assert all(not ends_mid_clause(p, "zh") and len(p) <= 40 for p in parts)
    # no boundary: never cut
    assert sentence_spans("甲" * 200, "zh") == [(0, 200)]


# --------------------------------------------------------------------------- synthetic structures

ZH_BODY = "这是正文的第一段，讲述了一段很长很长的故事，人物在山间行走，风吹过树林。\n他停下来看了看天色，又继续往前走去。"


def test_table_of_contents_at_the_top_is_not_chapters() -> None:
    toc = "目录\n第一章 山雨欲来\n第二章 风满楼\n第三章 夜奔\n\n"
    body = "".join(f"第{n}章 {t}\n{ZH_BODY}\n" for n, t in (("一", "山雨欲来"), ("二", "风满楼"), ("三", "夜奔")))
    chapters = split_chapters(f"某某传\n作者：某人\n\n{toc}{body}", "zh")
    assert [c.title for c in chapters] == ["第一章 山雨欲来", "第二章 风满楼", "第三章 夜奔"]
    assert all(c.text == ZH_BODY for c in chapters)
    # Dot leaders and page numbers in the contents; English too.
    toc_en = "Contents\n\nChapter 1 . . . . . . 1\nChapter 2 . . . . . . 9\n\n"
    en_body = "The rain had not stopped for three days, and the river was rising.\n\n"
    chapters = split_chapters(f"{toc_en}Chapter 1\n\n{en_body}Chapter 2\n\n{en_body}", "en")
    assert [c.title for c in chapters] == ["Chapter 1", "Chapter 2"]


def test_volumes_group_chapters_and_make_no_empty_chapters() -> None:
    text = (
        "第一卷 少年游\n第一章 出山\n" + ZH_BODY + "\n第二章 入城\n" + ZH_BODY + "\n"
        "第二卷 江湖远\n本卷写他离开故乡以后的事。\n第一章 渡江\n" + ZH_BODY + "\n第二章 夜雨\n" + ZH_BODY + "\n"
    )
    chapters = split_chapters(text, "zh")
    assert [(c.title, c.volume) for c in chapters] == [
        ("第一卷 少年游 第一章 出山", "第一卷 少年游"),
        ("第一卷 少年游 第二章 入城", "第一卷 少年游"),
        ("第二卷 江湖远 第一章 渡江", "第二卷 江湖远"),
        ("第二卷 江湖远 第二章 夜雨", "第二卷 江湖远"),
    ]
    assert chapters[2].text == "本卷写他离开故乡以后的事。\n\n" + ZH_BODY  # the volume's introduction
    assert all(c.text.strip() for c in chapters)
    en = "Book One\n\nChapter 1\n\nIt began in spring.\n\nChapter 2\n\nIt went on.\n\nBook Two\n\nChapter 3\n\nIt ended.\n"
    chapters = split_chapters(en, "en")
    assert [(c.title, c.volume) for c in chapters] == [
        ("Chapter 1", "Book One"),
        ("Chapter 2", "Book One"),
        ("Chapter 3", "Book Two"),
    ]


def test_xiezi_and_weisheng() -> None:
    text = f"楔子\n{ZH_BODY}\n第一章 开端\n{ZH_BODY}\n第二章 结局\n{ZH_BODY}\n尾声\n{ZH_BODY}\n后记\n写完了。\n"
    chapters = split_chapters(text, "zh")
    assert [c.title for c in chapters] == ["楔子", "第一章 开端", "第二章 结局", "尾声", "后记"]


def test_roman_numerals_and_titles_on_the_next_line() -> None:
    text = (
        "CHAPTER XI.\n\nThe ship came in at dawn.\n\n"
        "Chapter XII\nThe Storm\nIt was a dark night, and the wind was rising.\n\n"
        "Chapter 3\nA Quiet Morning\n\nShe woke late.\n"
    )
    chapters = split_chapters(text, "en")
    assert [c.title for c in chapters] == ["CHAPTER XI", "Chapter XII: The Storm", "Chapter 3: A Quiet Morning"]
    assert chapters[1].text == "It was a dark night, and the wind was rising."
    # A 回目 on the line under 第一回, with prose straight after it.
    chapters = split_chapters(f"第一回\n宴桃园豪杰三结义 斩黄巾英雄首立功\n{ZH_BODY}\n第二回\n张翼德怒鞭督邮 何国舅谋诛宦竖\n{ZH_BODY}\n")
    assert [c.title for c in chapters] == ["第一回 宴桃园豪杰三结义 斩黄巾英雄首立功", "第二回 张翼德怒鞭督邮 何国舅谋诛宦竖"]
    assert chapters[0].text == ZH_BODY


def test_site_prefix_and_suffix_on_headings() -> None:
    text = (
        f"【某某网】第1章 重生 (求收藏)\n{ZH_BODY}\n"
        f"第2章 相遇（求月票！）\n{ZH_BODY}\n"
        f"www.example-novel.com 第3章 标题\n{ZH_BODY}\n"
        f"第4章 离别（上）\n{ZH_BODY}\n"
    )
    chapters = split_chapters(clean_text(text), "zh")
    assert [c.title for c in chapters] == ["第1章 重生", "第2章 相遇", "第3章 标题", "第4章 离别（上）"]


def test_site_lines_are_dropped_by_shape() -> None:
    text = (
        "第一章 开端\n"
        "更新时间：2012-03-04 12:30 本章字数：3456\n"
        "发布时间：2020年1月2日\n"
        "手机阅读请访问 m.example.com\n"
        "请支持正版！\n"
        "本书来自 www.example.com 免费下载\n"
        "诗曰：\n"
        "混沌未分天地乱，茫茫渺渺无人见。\n"
        "有诗为证：\n"
        "他在2012年更新了族谱，时间是三月。\n"
    )
    assert clean_text(text) == (
        "第一章 开端\n诗曰：\n混沌未分天地乱，茫茫渺渺无人见。\n有诗为证：\n他在2012年更新了族谱，时间是三月。\n"
    )


def test_verse_and_letters_keep_their_lines() -> None:
    prose = (
        "The evening was warm and the windows of the old house stood open to the garden, so\n"
        "that the voices of the party carried far across the lawn towards the river where\n"
        "the boats were tied, and nobody who walked there could fail to hear them laughing.\n"
    )
    verse = "    Tyger Tyger, burning bright,\n    In the forests of the night;\n    What immortal hand or eye,\n"
    letter = "My dear Sir,\nI am yours,\nW. Collins.\n"
    text = (prose + "\n") * 4 + verse + "\n" + letter + "\n" + prose
    out = clean_text(text)
    assert "Tyger Tyger, burning bright,\nIn the forests of the night;\nWhat immortal hand or eye," in out
    assert "My dear Sir,\nI am yours,\nW. Collins." in out
    assert "so that the voices of the party carried far across the lawn towards the river where the boats" in out
    # Chinese verse in parallel lines stays; a Chinese file cut every 20 characters is joined.
    poem = "床前明月光，疑是地上霜。\n举头望明月，低头思故乡。\n"
    assert clean_text(poem) == poem
    para = "他沿着河岸走了很久，看见远处的村庄升起了炊烟，心里忽然想起了小时候的事情，那时候母亲还在，每天傍晚都会站在门口喊他回家吃饭。"
    wrapped = "\n".join(para[i : i + 20] for i in range(0, len(para), 20))
    assert clean_text((wrapped + "\n\n") * 4) == ((para + "\n\n") * 4).rstrip("\n") + "\n"


def test_reflow_keeps_paragraph_breaks_and_indentation() -> None:
    lines = ["A line of a wrapped paragraph that is about as long as the others are", "and this one ends it.", "", "Next paragraph."]
    assert reflow(lines) == lines  # too few lines to know a wrap width
    wide = ["x" * 60 + " word", "next words here, and", "y" * 60 + " more", "end."]
    assert reflow(wide, [0, 0, 4, 0]) == [wide[0] + " " + wide[1], wide[2] + " " + wide[3]]


def test_no_headings_cuts_at_scene_breaks_and_says_so() -> None:
    scene = "他走进院子，看见老槐树下坐着一个人。那人抬起头来，冲他笑了笑。\n" * 8
    text = f"{scene}\n* * *\n\n{scene}\n～～～\n\n{scene}"
    chapters = split_chapters(text, "zh", max_chars=400)
    assert len(chapters) == 3
    assert all(c.text == scene.strip() for c in chapters)
    assert [c.title for c in chapters] == ["第1部分", "第2部分", "第3部分"]
    assert chapters.warnings and "no chapter headings" in chapters.warnings[0] and "scene breaks" in chapters.warnings[0]
    with_headings = split_chapters(f"第一章 甲\n{ZH_BODY}\n", "zh")
    assert with_headings.warnings == []
