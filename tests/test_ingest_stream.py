"""Ingest streams: memory stays flat in the size of the novel, and the results are those of the
in-memory functions (decode_novel → clean_text → split_chapters)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import novelcomic.ingest.decode as decode_mod
from novelcomic.ingest import clean_text, create_project, decode_novel, detect_language, split_chapters
from novelcomic.ingest.create import guess_title

_ZH = "天地玄黄宇宙洪荒日月盈昃辰宿列张寒来暑往秋收冬藏闰余成岁律吕调阳云腾致雨露结为霜金生丽水玉出昆冈剑号巨阙珠称夜光"
_NUMS = "零一二三四五六七八九"


def _zh_number(n: int) -> str:
    return "".join(_NUMS[int(d)] for d in str(n))


def _zh_paragraphs(rnd: random.Random, count: int) -> list[str]:
    out = []
    for _ in range(count):
        sentences = ["".join(rnd.choices(_ZH, k=rnd.randrange(6, 18))) for _ in range(rnd.randrange(3, 9))]
        said = "“" + "".join(rnd.choices(_ZH, k=8)) + "！”" if rnd.random() < 0.3 else ""
        out.append("　　" + "，".join(sentences) + "。" + said)
    return out


def _write_big_novel(path: Path, megabytes: int) -> None:
    """A Chinese novel of about ``megabytes`` MB: 回 headings, indented paragraphs, site lines."""
    rnd = random.Random(7)
    paragraphs = _zh_paragraphs(rnd, 400)
    with open(path, "w", encoding="utf-8", newline="\r\n") as fh:
        fh.write("《千字文演义》\n作者：佚名\n\n")
        n = written = 0
        while written < megabytes * 1024 * 1024:
            n += 1
            block = [f"第{_zh_number(n)}回 {''.join(rnd.choices(_ZH, k=7))}", "更新时间:2007-11-16 7:55:51 本章字数:4804", ""]
            block += rnd.sample(paragraphs, 300)
            text = "\n".join(block) + "\n\n"
            fh.write(text)
            written += len(text.encode("utf-8"))


def _peak_rss_mb(novel: Path, projects: Path) -> float:
    """Peak RSS of ``new-project`` on ``novel``, in a child process of its own (wait4)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "novelcomic", "--projects-dir", str(projects), "new-project", novel.stem, "--novel", str(novel)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    assert status == 0, proc.stderr.read().decode() if proc.stderr else status
    return usage.ru_maxrss / 1024


def test_memory_stays_flat_on_a_big_novel(tmp_path: Path) -> None:
    """14 MB of novel take about the memory 1 MB takes (the in-memory ingest needed ~60 MB more:
    the bytes, the decoded text, the cleaned text and every chapter at once)."""
    small, big = tmp_path / "small.txt", tmp_path / "big.txt"
    _write_big_novel(small, 1)
    _write_big_novel(big, 14)
    base = _peak_rss_mb(small, tmp_path / "projects")
    peak = _peak_rss_mb(big, tmp_path / "projects")
    assert peak - base < 35, (base, peak)
    chapters = yaml.safe_load((tmp_path / "projects" / "big" / "project.yaml").read_text(encoding="utf-8"))["chapters"]
    assert len(chapters) > 100 and chapters[0]["title"].startswith("第一回 ")


def _gutenberg_en(rnd: random.Random) -> str:
    words = "the of and a to in was he it that his her with as had for she you not but at on be".split()
    parts = ["The Project Gutenberg eBook of A Test", "", "*** START OF THE PROJECT GUTENBERG EBOOK A TEST ***",
             "", "Produced by Somebody", "", "A TEST", "", "by Anonymous", ""]
    for n in range(1, 13):
        parts += [f"CHAPTER {n}.", "", "The Title Of It", ""]
        for _ in range(rnd.randrange(3, 12)):
            text = " ".join(rnd.choices(words, k=rnd.randrange(20, 120))).capitalize() + "."
            line = ""
            for word in text.split():
                if len(line) + len(word) + 1 > 70:
                    parts.append(line)
                    line = word
                else:
                    line = f"{line} {word}".strip()
            parts += [line, ""]
    parts += ["*** END OF THE PROJECT GUTENBERG EBOOK A TEST ***", "", "Licence text."]
    return "\n".join(parts)


def _zh_volumes(rnd: random.Random) -> str:
    toc = ["目录"] + [f"第{_zh_number(n)}章 目录项" for n in range(1, 6)]
    parts = ["《卷书》", "本书由某某网整理", "", *toc, ""]
    for v in range(1, 3):
        parts += [f"第{_zh_number(v)}卷 风起", "这一卷讲的是风。", ""]
        for n in range(1, 6):
            parts += [f"第{_zh_number(n)}章", *_zh_paragraphs(rnd, rnd.randrange(2, 9)), "求月票！", ""]
            if n == 3:  # fixed-width lines of a passage, cut mid-phrase
                cut = "".join(rnd.choices(_ZH, k=60))
                parts += ["，".join([cut[:20], cut[20:38]]), cut[38:] + "，" + cut[:10] + "。", ""]
    return "\r\n".join(parts)


def _no_headings(rnd: random.Random) -> str:
    paras = _zh_paragraphs(rnd, 200)
    for i in range(0, 200, 37):
        paras[i] = "＊＊＊"
    return "\n\n".join(paras)


@pytest.mark.parametrize("chunk", [decode_mod.CHUNK, 4099, 7])
@pytest.mark.parametrize(
    ("kind", "encoding"),
    [("gutenberg", "cp1252"), ("volumes", "gb18030"), ("volumes", "utf-16"), ("no-headings", "utf-8-sig")],
)
def test_streaming_ingest_equals_the_in_memory_functions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str, encoding: str, chunk: int
) -> None:
    """create_project (file copy, passes over chunks, kept lines and novel.txt on disk, chapters
    written one by one) gives what the in-memory functions give, whatever the chunk size: chunk
    edges inside a multi-byte character, a \\r\\n, a line, a heading."""
    rnd = random.Random(f"{kind}{encoding}")
    text = {"gutenberg": _gutenberg_en, "volumes": _zh_volumes, "no-headings": _no_headings}[kind](rnd)
    data = text.encode(encoding)
    if chunk == 7:
        data = data[:30_000]  # small chunks are slow; the start has every kind of edge
    novel = tmp_path / "novel.txt"
    novel.write_bytes(data)

    decoded, _ = decode_novel(data)
    cleaned = clean_text(decoded)
    language = detect_language(cleaned)
    expected = split_chapters(cleaned, language)
    assert len(expected) > 1

    monkeypatch.setattr(decode_mod, "CHUNK", chunk)
    warnings: list[str] = []
    project = create_project("p", novel, tmp_path / "projects", warnings=warnings)
    try:
        config = project.config()
        assert (project.dir / "novel.txt").read_text(encoding="utf-8") == cleaned
        assert config.language == language and config.title == guess_title(decoded, novel)
        assert [(c.id, c.title, c.volume) for c in config.chapters] == [(c.id, c.title, c.volume) for c in expected]
        for ch in expected:
            assert project.chapter_text_path(ch.id).read_text(encoding="utf-8") == ch.text.rstrip("\n") + "\n"
        assert warnings == expected.warnings
        assert sorted(p.name for p in project.dir.iterdir() if p.name.startswith(".novel-")) == []
    finally:
        project.close()
