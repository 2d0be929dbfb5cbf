"""Ingest: decoding every encoding a downloaded novel comes in, boilerplate removal, chapter
splitting, and create_project's all-or-nothing behaviour — on real files in tmp_path."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

import novelcomic.ingest.create as create_mod
from novelcomic.errors import NovelcomicError
from novelcomic.ingest import clean_text, create_project, decode_novel, detect_language, split_chapters
from novelcomic.ingest.clean import is_boilerplate
from novelcomic.ingest.decode import chinese_plausibility
from novelcomic.ingest.split import parse_heading, split_by_size
from novelcomic.project import Project

ZH = (
    "第一回 灵根孕育源流出\n"
    "　　诗曰：混沌未分天地乱，茫茫渺渺无人见。自从盘古破鸿蒙，开辟从兹清浊辨。\n"
    "　　那猴在山中，却会行走跳跃，食草木，饮涧泉，采山花，觅树果；与狼虫为伴，虎豹为群。\n"
    "　　他说：“我们明天再来吧，这里的风景真好。”\n"
)
ZH_TRADITIONAL = (
    "第一回 靈根孕育源流出\n"
    "　　詩曰：混沌未分天地亂，茫茫渺渺無人見。自從盤古破鴻蒙，開闢從茲清濁辨。\n"
    "　　那猴在山中，卻會行走跳躍，食草木，飲澗泉，採山花，覓樹果；與狼蟲為伴，虎豹為群。\n"
    "　　他說：「我們明天再來吧，這裡的風景真好。」\n"
)
EN = "Chapter 1\n\nAlice was beginning to get very tired of sitting by her sister on the bank.\n"
PNG_HEADER = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00\x00\x00\x01\x00\x08\x06\x00\x00\x00"


def snapshot(path: Path) -> dict[str, bytes | None]:
    """Every file (with its bytes) and directory under ``path``: to prove nothing changed."""
    if not path.exists():
        return {}
    return {str(p.relative_to(path)): (p.read_bytes() if p.is_file() else None) for p in sorted(path.rglob("*"))}


# --------------------------------------------------------------------------- decode


@pytest.mark.parametrize(
    ("encoding", "text", "expected"),
    [
        ("utf-8", ZH, "utf-8"),
        ("utf-8-sig", ZH, "utf-8-sig"),
        ("gbk", ZH, "gbk"),
        ("gb18030", ZH + "𠀀𪚥 — 这两个字 GBK 里没有。\n", "gb18030"),
        ("big5", ZH_TRADITIONAL, "big5"),
        ("utf-16-le-bom", ZH, "utf-16-le"),
        ("utf-16-be-bom", ZH, "utf-16-be"),
        ("utf-16-le", EN * 3, "utf-16-le"),  # no BOM: the NUL pattern gives it away
        ("utf-16-be", ZH, "utf-16-be"),  # no BOM, Chinese: only the byte order that reads as Chinese wins
    ],
)
def test_decode_detects_encoding(tmp_path: Path, encoding: str, text: str, expected: str) -> None:
    if encoding.endswith("-bom"):
        codec = encoding.removesuffix("-bom")
        bom = codecs.BOM_UTF16_LE if codec.endswith("le") else codecs.BOM_UTF16_BE
        data = bom + text.encode(codec)
    else:
        data = text.encode(encoding)
    f = tmp_path / "novel.txt"
    f.write_bytes(data)
    decoded, used = decode_novel(f.read_bytes())
    assert decoded == text
    assert used == expected


def test_gbk_and_big5_are_told_apart_by_common_characters() -> None:
    gbk, big5 = ZH.encode("gbk"), ZH_TRADITIONAL.encode("big5")
    assert chinese_plausibility(big5.decode("big5")) > 0.6
    assert chinese_plausibility(big5.decode("gb18030")) < 0.3  # Big5 bytes are (mostly) valid GB18030 too
    assert decode_novel(gbk)[1] == "gbk"
    assert decode_novel(big5)[1] == "big5"


def test_decode_cp1252_english_falls_back_to_charset_normalizer() -> None:
    text = "Café au lait, naïve résumé — “quoted” words.\n" * 5
    decoded, used = decode_novel(text.encode("cp1252"))
    assert decoded == text and used == "cp1252"


@pytest.mark.parametrize(("encoding", "expected"), [("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"), ("gbk", "gbk")])
def test_decode_tolerates_a_truncated_last_character(encoding: str, expected: str) -> None:
    data = (ZH * 3).encode(encoding) + "好".encode(encoding)[:-1]
    decoded, used = decode_novel(data)
    assert used == expected and decoded.startswith(ZH * 3)


def test_encoding_override() -> None:
    data = ZH.encode("gbk")
    assert decode_novel(data, "GBK") == (ZH, "gbk")
    assert decode_novel(ZH.encode("utf-8-sig"), "utf-8")[0] == ZH  # the BOM is not text
    offset = next(i for i, b in enumerate(data) if b >= 0x80)  # the first GBK lead byte
    with pytest.raises(NovelcomicError, match=rf"not valid utf-8: cannot decode byte\(s\) .* at offset {offset}\b"):
        decode_novel(data, "utf-8")
    with pytest.raises(NovelcomicError, match="unknown encoding 'klingon'"):
        decode_novel(data, "klingon")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"  \r\n\n\t ", "no text"),
        (PNG_HEADER + bytes(range(256)) * 4, r"binary data\): it looks like a PNG image"),
        (b"PK\x03\x04" + b"\x14\x00" * 40, "binary data.*zip archive"),
        (b"\x00\x01\x02\x03\xfe\xed" * 200, "binary"),
        (b"abc\x01\x02\x03\x04\x05\x06def" * 50, "binary"),
        (bytes(range(0x80, 0x100)) * 20, "cannot decode"),
        (b"\xff\xfe\xfd\x80\x81" * 50, "cannot decode.*UTF-16-LE byte-order mark"),
    ],
    ids=["empty", "whitespace", "png", "zip", "nul-bytes", "control-bytes", "undecodable", "garbage-after-bom"],
)
def test_decode_errors(data: bytes, message: str) -> None:
    with pytest.raises(NovelcomicError, match=message) as e:
        decode_novel(data)
    assert "\n" not in str(e.value)


# --------------------------------------------------------------------------- clean

MESSY = (
    "《西游记》txt全集下载\r\n"
    "【本书由 书香门第 整理】\r\n"
    "更多精彩小说请访问 www.xxx.com\r\n"
    "\r\n"
    "第一回\t灵根孕育源流出\r\n"
    "　　诗曰：混沌未分天地乱，茫茫渺渺无人见。   \r\n"
    "   手机用户请访问 m.xxx.cc\r\n"
    "　　他说：“这本书可以下载，你看看。”\r\n"
    "　　他在网上下载了一本小说。\r\n"
    "https://www.biquge.net/book/123.html\r\n"
    "\r\n\r\n\r\n\r\n"
    "* * *\r\n"
    "\r\n"
    "　　那猴在山中。\r\n"
    "===好看的小说请到：ｗｗｗ．ｘｘｘ．ｃｏｍ===\r\n"
    "本章未完，请点击下一页继续阅读\r\n"
    "PS：求月票！求推荐票！\r\n"
    "书友QQ群：12345678\r\n"
    "（本章完）\r\n"
    "——\r\n"
    "Downloaded from www.novels.example.com\r\n"
    "Visit www.freebooks.net for more free ebooks\r\n"
)


def test_clean_removes_boilerplate_and_normalises_whitespace() -> None:
    out = clean_text(MESSY)
    assert out == (
        "第一回 灵根孕育源流出\n"
        "诗曰：混沌未分天地乱，茫茫渺渺无人见。\n"
        "他说：“这本书可以下载，你看看。”\n"
        "他在网上下载了一本小说。\n"
        "\n"
        "* * *\n"
        "\n"
        "那猴在山中。\n"
        "——\n"
    )
    assert clean_text(out) == out  # idempotent


def test_clean_keeps_story_lines_that_mention_books_or_downloads() -> None:
    story = [
        "他翻开那本书，书页已经发黄。",
        "他把小说下载到手机上，一直看到天亮。",
        "最新的消息传来了。",
        "求你了，别走。",
        "他打开了www.google.com",
        "I met him at www.example.com yesterday.",
        "Visit the old man tomorrow.",
        "***",
    ]
    for line in story:
        assert not is_boilerplate(line), line
    assert clean_text("\n".join(story)) == "\n".join(story) + "\n"


def test_clean_strips_gutenberg_header_and_footer() -> None:
    text = (
        "The Project Gutenberg EBook of Alice's Adventures in Wonderland, by Lewis Carroll\n"
        "This eBook is for the use of anyone anywhere at no cost.\n"
        "Title: Alice's Adventures in Wonderland\n"
        "*** START OF THIS PROJECT GUTENBERG EBOOK ALICE'S ADVENTURES IN WONDERLAND ***\n"
        "\n"
        "Produced by Arthur DiBianca and David Widger\n"
        "\n"
        "CHAPTER I.\n"
        "Down the Rabbit-Hole\n"
        "\n"
        "Alice was beginning to get very tired.\n"
        "\n"
        "End of the Project Gutenberg EBook of Alice's Adventures in Wonderland\n"
        "*** END OF THIS PROJECT GUTENBERG EBOOK ALICE'S ADVENTURES IN WONDERLAND ***\n"
        "Section 1. General Terms of Use and Redistributing Project Gutenberg-tm electronic works\n"
    )
    assert clean_text(text) == "CHAPTER I.\nDown the Rabbit-Hole\n\nAlice was beginning to get very tired.\n"


def test_clean_of_only_boilerplate_is_empty() -> None:
    assert clean_text("www.xxx.com\n（本章完）\n\n\n") == ""


def test_detect_language() -> None:
    assert detect_language(ZH) == "zh"
    assert detect_language(EN * 5) == "en"
    assert detect_language("Harry Potter和Hermione走进了霍格沃茨的大厅，他们都很兴奋。") == "zh"
    assert detect_language("The monk Xuanzang (玄奘) travelled west to India for many years.") == "en"


# --------------------------------------------------------------------------- split

BODY = "　　这是正文，讲述了一段很长的故事。\n"


@pytest.mark.parametrize(
    ("line", "title"),
    [
        ("第一章 石猴出世", "第一章 石猴出世"),
        ("第1回：灵根孕育", "第1回：灵根孕育"),
        ("第十二章　风起云涌", "第十二章 风起云涌"),
        ("第二十一章", "第二十一章"),
        ("第一百零三章 大结局", "第一百零三章 大结局"),
        ("第１２章 全角数字", "第１２章 全角数字"),
        ("第三节", "第三节"),
        ("第二卷 风雪", "第二卷 风雪"),
        ("第五集", "第五集"),
        ("楔子", "楔子"),
        ("序章 开端", "序章 开端"),
        ("番外一 小师妹", "番外一 小师妹"),
        ("尾声", "尾声"),
        ("后记", "后记"),
        ("《西游记》目录 第一回 灵根孕育源流出", "第一回 灵根孕育源流出"),
        ("正文 第一章 开始", "第一章 开始"),
        ("【第五章 杀！】", "第五章 杀！"),
        ("Chapter 12", "Chapter 12"),
        ("CHAPTER XII.", "CHAPTER XII"),
        ("Chapter Twelve: The Storm", "Chapter Twelve: The Storm"),
        ("Chapter Twenty-One", "Chapter Twenty-One"),
        ("Part One", "Part One"),
        ("PROLOGUE", "PROLOGUE"),
        ("Epilogue", "Epilogue"),
    ],
)
def test_heading_variants(line: str, title: str) -> None:
    parsed = parse_heading(line)
    assert parsed is not None and parsed[1] == title
    chapters = split_chapters(f"{line}\n{BODY}{line}\n{BODY}")
    assert [c.title for c in chapters] == [title, title]
    assert chapters[0].text == BODY.strip()


@pytest.mark.parametrize(
    "line",
    [
        "他翻到第三章继续读。",
        "他翻到第三章继续读",
        "第三章的内容很精彩，他读了很久。",
        "第三章，他读了很久",
        "第二节课上，老师讲了三角函数。",
        "第三回合",
        "第一次见面的时候，她笑了。",
        "序幕拉开了",
        "Chapter 5 and he went on reading",
        "Part of the problem was money.",
        "Introduction to the problem",
        "Book one of the series was good.",
    ],
)
def test_sentences_are_not_headings(line: str) -> None:
    assert parse_heading(line) is None


def test_split_chinese_numerals_and_false_positive_inside_paragraph() -> None:
    text = (
        "第十二章 甲\n他翻到第三章继续读，读得入了迷。\n第三章的内容很精彩，他读了很久。\n"
        "第二十一章 乙\n乙的正文。\n第一百零三章 丙\n丙的正文。\n"
    )
    chapters = split_chapters(text)
    assert [(c.id, c.title) for c in chapters] == [("01", "第十二章 甲"), ("02", "第二十一章 乙"), ("03", "第一百零三章 丙")]
    assert chapters[0].text == "他翻到第三章继续读，读得入了迷。\n第三章的内容很精彩，他读了很久。"


def test_split_skips_table_of_contents_and_short_title_preamble() -> None:
    text = (
        "西游记\n吴承恩 著\n"
        "《西游记》目录\n第一回 灵根孕育源流出\n第二回 悟彻菩提真妙理\n第三回 四海千山皆拱伏\n"
        "正文\n"
        "第一回 灵根孕育源流出\n诗曰：混沌未分天地乱。\n"
        "第二回 悟彻菩提真妙理\n话表美猴王得了姓名。\n\n"
        "第三回 四海千山皆拱伏\n却说美猴王荣归故里。\n"
    )
    chapters = split_chapters(text)
    assert [(c.id, c.title, c.text) for c in chapters] == [
        ("01", "第一回 灵根孕育源流出", "诗曰：混沌未分天地乱。"),
        ("02", "第二回 悟彻菩提真妙理", "话表美猴王得了姓名。"),
        ("03", "第三回 四海千山皆拱伏", "却说美猴王荣归故里。"),
    ]


def test_split_keeps_substantial_preamble_as_prologue() -> None:
    preamble = "很久很久以前，东胜神洲有一座花果山。" * 15  # > 200 characters of prose
    chapters = split_chapters(f"{preamble}\n第一章 石猴\n正文。\n", "zh")
    assert [(c.id, c.title) for c in chapters] == [("01", "序章"), ("02", "第一章 石猴")]
    assert chapters[0].text == preamble


def test_split_english_headings_with_title_on_next_line() -> None:
    text = (
        "Alice's Adventures in Wonderland\n\n"
        "CHAPTER I.\nDown the Rabbit-Hole\n\nAlice was beginning to get very tired.\n\nSo she was considering.\n\n"
        "CHAPTER II.\nThe Pool of Tears\n\n'Curiouser and curiouser!' cried Alice.\n\n"
        "Chapter 12\n\nThe last chapter.\n"
    )
    chapters = split_chapters(text)
    assert [c.title for c in chapters] == [
        "CHAPTER I: Down the Rabbit-Hole",
        "CHAPTER II: The Pool of Tears",
        "Chapter 12",
    ]
    assert chapters[0].text == "Alice was beginning to get very tired.\n\nSo she was considering."
    assert chapters[2].text == "The last chapter."


def test_split_by_size_without_headings() -> None:
    paragraphs = [f"第{i}段。" + "这是一个用来测试按大小切分的段落，" * 9 + "完。" for i in range(40)]
    text = "\n".join(paragraphs)
    chapters = split_chapters(text, max_chars=1000)
    assert len(chapters) > 3
    assert [c.id for c in chapters] == [f"{i:02d}" for i in range(1, len(chapters) + 1)]
    assert [c.title for c in chapters] == [f"第{i}部分" for i in range(1, len(chapters) + 1)]
    assert all(len(c.text) <= 1000 for c in chapters)
    # never mid-paragraph: every paragraph lies whole in exactly one chapter, in order
    assert [p for c in chapters for p in c.text.split("\n")] == paragraphs
    en = split_chapters("\n\n".join(["A short English paragraph that goes on for a while."] * 100), "en", 1000)
    assert en[0].title == "Part 1" and all(len(c.text) <= 1000 for c in en)


def test_split_huge_paragraph_at_sentence_ends() -> None:
    sentence = "他走了很远的路才到山顶。"
    pieces = split_by_size(sentence * 500, 1000)
    assert len(pieces) >= 5
    assert all(p.endswith("。") for p in pieces)
    assert "".join(pieces) == sentence * 500


def test_ids_are_zero_padded_to_a_common_width() -> None:
    text = "".join(f"第{i}章\n正文{i}。\n" for i in range(1, 121))
    ids = [c.id for c in split_chapters(text)]
    assert ids[0] == "001" and ids[-1] == "120" and ids == sorted(ids)


def test_split_empty_text() -> None:
    assert split_chapters("", "zh") == []


# --------------------------------------------------------------------------- create_project


def write_novel(tmp_path: Path, text: str, encoding: str = "gbk", name: str = "下载的小说.txt") -> Path:
    f = tmp_path / name
    f.write_bytes(text.encode(encoding))
    return f


NOVEL = (
    "《西游记》txt全集下载\n本书由书香门第整理\n\n"
    "第一回 灵根孕育源流出\n　　诗曰：混沌未分天地乱，茫茫渺渺无人见。\n更多精彩小说请访问 www.xxx.com\n"
    "第二回 悟彻菩提真妙理\n　　话表美猴王得了姓名，怡然踊跃。\n（本章完）\n"
)


def test_create_project_end_to_end(tmp_path: Path, root: Path) -> None:
    novel = write_novel(tmp_path, NOVEL, "gbk")
    project = create_project("西游", novel, root)
    assert project.dir == (root / "西游").resolve()

    cfg = Project(root / "西游").config()
    assert cfg.title == "西游记" and cfg.language == "zh" and cfg.aspect == "9:16" and cfg.novel == "novel.txt"
    assert [(c.id, c.title) for c in cfg.chapters] == [("01", "第一回 灵根孕育源流出"), ("02", "第二回 悟彻菩提真妙理")]

    first = project.project_yaml.read_text(encoding="utf-8").splitlines()[0]
    assert first == "# yaml-language-server: $schema=.novelcomic/schema/project.schema.json"
    assert (project.dir / ".novelcomic" / "schema" / "project.schema.json").is_file()

    assert project.chapter_text(cfg.chapters[0].id) == "诗曰：混沌未分天地乱，茫茫渺渺无人见。\n"
    assert project.chapter_text(cfg.chapters[1].id) == "话表美猴王得了姓名，怡然踊跃。\n"
    assert sorted(p.name for p in (project.dir / "chapters").iterdir()) == ["01.txt", "02.txt"]
    novel_txt = (project.dir / "novel.txt").read_text(encoding="utf-8")
    assert novel_txt == clean_text(NOVEL) and "www." not in novel_txt and "本书由" not in novel_txt

    # The hash was recorded under the final name: re-saving the same config is "unchanged",
    # not a proposal (which is what a hash recorded under the staging name would give).
    assert project.save_config(cfg).status == "unchanged"
    project.close()
    assert sorted(p.name for p in root.iterdir()) == ["西游"]  # no staging directory left


def test_create_project_options_and_title_from_file_name(tmp_path: Path, root: Path) -> None:
    novel = write_novel(tmp_path, "Chapter 1\n\nOnce upon a time.\n\nChapter 2\n\nThe end.\n", "utf-8", "my-book.txt")
    project = create_project("book", novel, root, aspect="16:9", resolution=(640, 360), fps=24)
    cfg = project.config()
    assert (cfg.title, cfg.language, cfg.aspect, cfg.size, cfg.fps) == ("my-book", "en", "16:9", (640, 360), 24)
    assert [c.title for c in cfg.chapters] == ["Chapter 1", "Chapter 2"]
    project.close()

    other = create_project("zh", write_novel(tmp_path, NOVEL, "utf-16"), root, title="自定", language="en")
    cfg = other.config()
    assert cfg.title == "自定" and cfg.language == "en"
    other.close()


def test_guess_title_only_from_front_matter(tmp_path: Path) -> None:
    from novelcomic.ingest.create import guess_title

    book = tmp_path / "《斗破苍穹》全集.txt"
    assert guess_title("书名：《西游记》\n作者：吴承恩\n第一回\n正文", book) == "西游记"
    assert guess_title("Title: Alice's Adventures in Wonderland\nAuthor: Lewis Carroll\n", book) == (
        "Alice's Adventures in Wonderland"
    )
    assert guess_title("第一章 开始\n他读着《论语》。\n", book) == "斗破苍穹"
    assert guess_title("\ufeffThe Lighthouse Keeper's Daughter\nby Anonymous\n\nCHAPTER I\nThe storm came.", book) == (
        "The Lighthouse Keeper's Daughter")
    assert guess_title("西游记\n\n作者：吴承恩\n第一回\n正文", book) == "西游记"
    assert guess_title("It was late.\nby the river she waited.\n", tmp_path / "river.txt") == "river"  # a sentence, not a title
    assert guess_title("第一章 开始\n他读着《论语》。\n", tmp_path / "my book.txt") == "my book"


def test_create_project_with_encoding_override(tmp_path: Path, root: Path) -> None:
    novel = write_novel(tmp_path, NOVEL, "gb18030")
    project = create_project("x", novel, root, encoding="gb18030")
    assert len(project.config().chapters) == 2
    project.close()
    before = snapshot(tmp_path)
    with pytest.raises(NovelcomicError, match=r"not valid utf-8: .* at offset \d+"):
        create_project("y", novel, root, encoding="utf-8")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda d: d / "missing.txt", "not found"),
        (lambda d: d, "directory"),
        (lambda d: _file(d, b""), "empty"),
        (lambda d: _file(d, PNG_HEADER + bytes(range(256))), "PNG"),
        (lambda d: _file(d, bytes(range(0x80, 0x100)) * 20), "cannot decode"),
        (lambda d: _file(d, "www.xxx.com\n（本章完）\n".encode()), "no story text"),
    ],
    ids=["missing", "directory", "empty", "binary", "undecodable", "only-boilerplate"],
)
def test_create_project_refuses_bad_novels_and_creates_nothing(tmp_path: Path, setup, message: str) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "src"
    src.mkdir()
    novel = setup(src)
    root = tmp_path / "projects"  # does not exist yet: must not be created either
    before = snapshot(tmp_path)
    with pytest.raises(NovelcomicError, match=message) as e:
        create_project("p", novel, root)
    assert str(novel) in str(e.value) and "\n" not in str(e.value)
    assert snapshot(tmp_path) == before
    assert not root.exists()


def _file(d: Path, data: bytes) -> Path:
    f = d / "novel.txt"
    f.write_bytes(data)
    return f


@pytest.mark.parametrize("name", ["a/b", "..", "../x", "", ".hidden", "a\\b"])
def test_create_project_rejects_bad_names(tmp_path: Path, root: Path, name: str) -> None:
    novel = write_novel(tmp_path, NOVEL)
    before = snapshot(tmp_path)
    with pytest.raises(NovelcomicError, match="project name"):
        create_project(name, novel, root)
    assert snapshot(tmp_path) == before


def test_create_project_rejects_invalid_settings(tmp_path: Path, root: Path) -> None:
    novel = write_novel(tmp_path, NOVEL)
    before = snapshot(tmp_path)
    with pytest.raises(NovelcomicError, match="resolution"):
        create_project("p", novel, root, resolution=(641, 360))
    with pytest.raises(NovelcomicError, match="aspect"):
        create_project("p", novel, root, aspect="4:3")
    assert snapshot(tmp_path) == before


def test_create_project_never_overwrites(tmp_path: Path, root: Path) -> None:
    novel = write_novel(tmp_path, NOVEL)
    existing = root / "p"
    existing.mkdir()
    (existing / "notes.txt").write_text("mine", encoding="utf-8")
    (root / "empty").mkdir()
    before = snapshot(tmp_path)
    for name in ("p", "empty"):
        with pytest.raises(NovelcomicError, match=rf"project '{name}' already exists at .*{name}"):
            create_project(name, novel, root)
    assert snapshot(tmp_path) == before

    project = create_project("q", novel, root)
    project.close()
    before = snapshot(tmp_path)
    with pytest.raises(NovelcomicError, match="already exists"):
        create_project("q", novel, root)
    assert snapshot(tmp_path) == before


def test_create_project_loses_a_race_cleanly(tmp_path: Path, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process creates the project while ours is being built: theirs stays, ours goes."""
    novel = write_novel(tmp_path, NOVEL)
    real_write = create_mod._write_project

    def write_then_race(staging: Path, *args: object) -> None:
        real_write(staging, *args)  # type: ignore[arg-type]
        (root / "p").mkdir()
        (root / "p" / "theirs.txt").write_text("theirs", encoding="utf-8")

    monkeypatch.setattr(create_mod, "_write_project", write_then_race)
    with pytest.raises(NovelcomicError, match="already exists"):
        create_project("p", novel, root)
    assert snapshot(root) == {"p": None, "p/theirs.txt": b"theirs"}


def test_create_project_cleans_up_after_a_write_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    novel = write_novel(tmp_path, NOVEL)
    root = tmp_path / "projects"

    def fail(self: Project, cfg: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Project, "save_config", fail)
    before = snapshot(tmp_path)
    with pytest.raises(NovelcomicError, match="No space left on device"):
        create_project("p", novel, root)
    assert snapshot(tmp_path) == before
    assert not root.exists()
