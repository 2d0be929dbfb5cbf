"""The CLI as a user meets it: one-line errors, non-zero exits, nothing created or changed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

NOVEL = "第一章 开始\n\n阿青说：“你好。”河水静静地流。\n\n第二章 结束\n\n老陈笑道：“再见。”\n"


def cli(*args: str, root: Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NOVELCOMIC_PROJECTS_DIR": str(root)}
    return subprocess.run([sys.executable, "-m", "novelcomic", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


def snapshot(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()} if d.exists() else {}


def assert_one_line_error(r: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    for n in needles:
        assert n in lines[0], lines[0]


@pytest.fixture
def novel(tmp_path: Path) -> Path:
    p = tmp_path / "novel.txt"
    p.write_text(NOVEL, encoding="utf-8")
    return p


def test_new_project_then_errors_change_nothing(root: Path, novel: Path, tmp_path: Path) -> None:
    r = cli("new-project", "story", "--novel", str(novel), root=root)
    assert r.returncode == 0, r.stderr
    assert "2 chapters" in r.stdout
    before = snapshot(root)

    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    binary = tmp_path / "image.txt"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4)
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe\xfd\x80\x81" * 50)
    cases = [
        (("new-project", "story", "--novel", str(novel)), "already exists"),
        (("new-project", "a/b", "--novel", str(novel)), "invalid project name"),
        (("new-project", "..", "--novel", str(novel)), "invalid project name"),
        (("new-project", "x1", "--novel", str(tmp_path / "missing.txt")), "missing.txt"),
        (("new-project", "x2", "--novel", str(empty)), "empty"),
        (("new-project", "x3", "--novel", str(binary)), "binary"),
        (("new-project", "x4", "--novel", str(bad)), "decode"),
    ]
    for args, needle in cases:
        assert_one_line_error(cli(*args, root=root), needle)
        assert snapshot(root) == before, args


def test_storyboard_errors_give_file_and_line(root: Path, novel: Path) -> None:
    assert cli("new-project", "story", "--novel", str(novel), root=root).returncode == 0
    r = cli("run", "story", "--stage", "plan", "--no-prefect", root=root)
    assert r.returncode == 0, r.stderr
    sb = root / "story" / "storyboards" / "01.yaml"
    good = sb.read_text(encoding="utf-8")

    sb.write_text(good + "scenes: [oops\n", encoding="utf-8")
    r = cli("validate", "story", root=root)
    assert_one_line_error(r, f"{sb}:", "YAML syntax error")

    lines = good.splitlines()
    idx = next(i for i, line in enumerate(lines) if line.strip().lstrip("- ").startswith("speaker:") and "narrator" not in line)
    lines[idx] = lines[idx].split(":")[0] + ": nobody"
    sb.write_text("\n".join(lines) + "\n", encoding="utf-8")
    before = snapshot(root / "story")
    r = cli("run", "story", "--no-prefect", root=root)
    assert_one_line_error(r, f"{sb}:{idx + 1}:", "nobody")
    after = snapshot(root / "story")
    # only the run bookkeeping may change; no media was made
    assert not any(k.startswith(("render/", "audio/", "out/")) for k in after if k not in before)


def test_status_and_schema(root: Path, novel: Path) -> None:
    assert cli("new-project", "story", "--novel", str(novel), root=root).returncode == 0
    r = cli("status", "story", root=root)
    assert r.returncode == 0 and "01" in r.stdout and "02" in r.stdout
    r = cli("schema", "storyboard", root=root)
    assert r.returncode == 0 and '"title": "Storyboard"' in r.stdout
    assert_one_line_error(cli("status", "nope", root=root), "no project 'nope'")


def test_validate_checks_backends_and_their_options_with_the_line(root: Path, novel: Path) -> None:
    """A misspelt backend or option (or a bad option value) fails `validate` — and `run`, before any
    work — with project.yaml:line: the setting, not halfway through a run."""
    assert cli("new-project", "story", "--novel", str(novel), root=root).returncode == 0
    cfg = root / "story" / "project.yaml"
    good = cfg.read_text(encoding="utf-8")
    r = cli("validate", "story", root=root)
    assert r.returncode == 0 and "backends plan=heuristic, design=animatic" in r.stdout, r.stderr
    assert "not planned yet: chapters 01, 02" in r.stdout and "characters.yaml" not in r.stdout

    def line_of(text: str, needle: str) -> int:
        return next(i for i, ln in enumerate(text.splitlines(), 1) if needle in ln)

    cases = [
        ("stages:\n  compose: {backend: ffmepg}\n", "stages.compose.backend: unknown compose backend 'ffmepg'", "ffmepg"),
        ("stages:\n  compose: {backend: ffmpeg, options: {subtitle_mode: soft}}\n", "stages.compose.options.subtitle_mode", "soft"),
        ("stages:\n  design:\n    backend: animatic\n    options: {stpes: 3}\n", "stages.design.options: bad options", "stpes"),
        ("llm: {backend: ollama}\n", "llm.backend: unknown llm backend 'ollama'", "ollama"),
    ]
    before = snapshot(root / "story")
    for extra, needle, marker in cases:
        text = good + extra
        cfg.write_text(text, encoding="utf-8")
        for args in (("validate", "story"), ("run", "story", "--no-prefect")):
            r = cli(*args, root=root)
            assert_one_line_error(r, f"{cfg}:{line_of(text, marker)}: {needle}")
        snap = snapshot(root / "story")
        assert {k: v for k, v in snap.items() if k != "project.yaml" and not k.startswith(".novelcomic")} == \
            {k: v for k, v in before.items() if k != "project.yaml" and not k.startswith(".novelcomic")}, extra


def test_plan_says_which_storyboards_it_keeps_because_you_wrote_them(root: Path, novel: Path) -> None:
    assert cli("new-project", "story", "--novel", str(novel), root=root).returncode == 0
    assert cli("plan", "story", "--chapters", "1", root=root).returncode == 0  # novelcomic writes 01
    mine = root / "story" / "storyboards" / "02.yaml"
    mine.write_text("chapter: '02'\nscenes:\n- id: s01\n  shots:\n  - id: s01-01\n    lines:\n    - text: 天亮了。\n",
                    encoding="utf-8")
    r = cli("plan", "story", root=root)
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stdout.splitlines() if "storyboards" in ln]
    assert lines[0].endswith("01.yaml") and lines[1].startswith(str(mine)) and "delete it to have the chapter planned" in lines[1]


def test_new_project_warns_about_the_split_and_keeps_the_volumes(root: Path, tmp_path: Path) -> None:
    """What the split could not do well is a warning (one line each, the project is still made);
    the volume (卷) each chapter belongs to is kept in project.yaml and shown."""
    import yaml

    flat = tmp_path / "flat.txt"
    flat.write_text("河水静静地流。阿青说：“你好。”\n\n" * 5, encoding="utf-8")
    r = cli("new-project", "flat", "--novel", str(flat), root=root)
    assert r.returncode == 0, r.stderr
    warnings = r.stderr.strip().splitlines()
    assert len(warnings) == 1 and warnings[0].startswith("warning: no chapter headings found: the text was cut into 1 part(s)")
    assert "error" not in r.stderr and "1 chapter)" in r.stdout

    books = tmp_path / "books.txt"
    books.write_text("第一卷 风起\n\n第一章 开始\n\n阿青说：“你好。”河水静静地流。\n\n第二章 相逢\n\n老陈笑道：“再见。”\n\n"
                     "第二卷 云涌\n\n第三章 离别\n\n风吹过山岗，阿青走了。\n", encoding="utf-8")
    r = cli("new-project", "books", "--novel", str(books), root=root)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert "  第一卷 风起\n    01  第一章 开始\n    02  第二章 相逢\n  第二卷 云涌\n    03  第三章 离别\n" in r.stdout
    data = yaml.safe_load((root / "books" / "project.yaml").read_text(encoding="utf-8"))
    assert [(c["id"], c.get("volume", "")) for c in data["chapters"]] == [
        ("01", "第一卷 风起"), ("02", "第一卷 风起"), ("03", "第二卷 云涌")]
