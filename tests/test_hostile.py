"""Hostile input (issue 14): every case ends with exit != 0, one message line and no traceback,
within a bounded time, creating nothing outside what the command owns.

Covered here: strict YAML (duplicate keys), project names, novel files that are not regular
files or are too big, stale staging directories of a killed ``new-project``, numeric ranges.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

NOVEL = "第一章 开始\n\n阿青说：“你好。”河水静静地流。\n\n第二章 结束\n\n老陈笑道：“再见。”\n"
TIMEOUT = 60  # seconds any one refused command may take (most take about one)


def cli(*args: str, root: Path, env: dict[str, str] | None = None, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k != "NOVELCOMIC_MAX_NOVEL_MB"}
    full.update({"NOVELCOMIC_PROJECTS_DIR": str(root), **(env or {})})
    start = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "novelcomic", *args], capture_output=True, text=True, env=full,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    r.elapsed = time.monotonic() - start  # type: ignore[attr-defined]
    return r


def snapshot(d: Path) -> dict[str, tuple[int, int]]:
    """Every entry under ``d`` (hidden ones too) with its size and mtime."""
    if not d.exists():
        return {}
    return {str(p.relative_to(d)): (p.lstat().st_size, p.lstat().st_mtime_ns) for p in sorted(d.rglob("*"))}


def assert_one_line_error(r: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert r.returncode not in (0, None), (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def novel(tmp_path: Path) -> Path:
    p = tmp_path / "novel.txt"
    p.write_text(NOVEL, encoding="utf-8")
    return p


@pytest.fixture
def made(root: Path, novel: Path) -> Path:
    """A project 'p' made by the CLI."""
    r = cli("new-project", "p", "--novel", str(novel), root=root)
    assert r.returncode == 0, r.stderr
    return root / "p"


# --------------------------------------------------------------------------- strict YAML

STORYBOARD = """\
chapter: '01'
scenes:
- id: s01
  shots:
  - id: s01-01
    lines:
    - speaker: narrator
      text: 河水静静地流。
"""


def _append(path: Path, text: str) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(text)


def _dup_project_fps(p: Path) -> tuple[Path, str, str]:
    _append(p / "project.yaml", "fps: 24\nseed: 3\nfps: 25\n")
    n = len((p / "project.yaml").read_text(encoding="utf-8").splitlines())
    return p / "project.yaml", f"project.yaml:{n}: fps: duplicate key 'fps'", f"lines {n - 2} and {n}"


def _dup_nested_chapter_key(p: Path) -> tuple[Path, str, str]:
    text = (p / "project.yaml").read_text(encoding="utf-8")
    lines = text.splitlines()
    i = next(k for k, line in enumerate(lines) if line.startswith("  title: 第一章"))
    lines.insert(i + 1, "  title: again")
    (p / "project.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p / "project.yaml", f"project.yaml:{i + 2}: chapters[0].title: duplicate key 'title'", f"lines {i + 1} and {i + 2}"


def _dup_characters(p: Path) -> tuple[Path, str, str]:
    (p / "characters.yaml").write_text(
        "characters:\n- id: qing\n  name: 阿青\n  name: 青\n", encoding="utf-8"
    )
    return p / "characters.yaml", "characters.yaml:4: characters[0].name: duplicate key 'name'", "lines 3 and 4"


def _dup_storyboard(p: Path) -> tuple[Path, str, str]:
    (p / "storyboards").mkdir(exist_ok=True)
    (p / "storyboards" / "01.yaml").write_text(STORYBOARD + "      text: 又一句。\n", encoding="utf-8")
    return p / "storyboards" / "01.yaml", "01.yaml:9: scenes[0].shots[0].lines[0].text: duplicate key 'text'", "lines 8 and 9"


def _dup_top_level_map(p: Path) -> tuple[Path, str, str]:
    _append(p / "project.yaml", "music:\n  enabled: false\nmusic:\n  enabled: true\n")
    n = len((p / "project.yaml").read_text(encoding="utf-8").splitlines())
    return p / "project.yaml", f"project.yaml:{n - 1}: music: duplicate key 'music'", f"lines {n - 3} and {n - 1}"


DUPLICATES = {
    "project-fps": _dup_project_fps,
    "chapter-title": _dup_nested_chapter_key,
    "characters-name": _dup_characters,
    "storyboard-text": _dup_storyboard,
    "project-music-block": _dup_top_level_map,
}


@pytest.mark.parametrize("case", sorted(DUPLICATES))
@pytest.mark.parametrize("command", ["validate", "run", "status"])
def test_duplicate_yaml_key_is_an_error_naming_file_lines_and_key(made: Path, root: Path, case: str, command: str) -> None:
    path, where, lines = DUPLICATES[case](made)
    if command == "status" and path.name != "project.yaml":
        pytest.skip("status reads project.yaml only; the others are checked by validate and run")
    before = snapshot(root)
    args = {"validate": ("validate", "p"), "run": ("run", "p", "--no-prefect"), "status": ("status", "p")}[command]
    r = cli(*args, root=root)
    line = assert_one_line_error(r, where, lines)
    assert str(path) in line
    after = snapshot(root)
    assert {k for k in after if k not in before} <= {"p/.novelcomic/lock", "p/.novelcomic/state.db"}, set(after) - set(before)
    assert not (made / "out").exists() and not (made / "render").exists()


def test_duplicate_key_library_message() -> None:
    from novelcomic.errors import NovelcomicError
    from novelcomic.yamlio import read_yaml

    import tempfile

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "x.yaml"
        p.write_text("a: 1\nb:\n  c: 1\n  d: 2\n  c: 3\na: 2\n", encoding="utf-8")
        with pytest.raises(NovelcomicError) as exc:
            read_yaml(p)
        assert (exc.value.line, exc.value.field) == (5, "b.c")  # the first duplicate in the file
        assert "lines 3 and 5" in exc.value.message and "1 more duplicate key" in exc.value.message
        # the same key in two different mappings, a merge key, and 1 vs '1' are no duplicates
        p.write_text("base: &b {x: 1}\none: {x: 2, <<: *b}\ntwo: {x: 3}\nk: {1: a, '1': b}\n", encoding="utf-8")
        data, _ = read_yaml(p)
        assert data["one"] == {"x": 2} and data["k"] == {1: "a", "1": "b"}


def test_billion_laughs_and_deep_nesting_are_quick_and_clean(made: Path, root: Path) -> None:
    original = (made / "project.yaml").read_text(encoding="utf-8")
    levels = ["laughs:", "- &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):  # 10**9 strings once the aliases are expanded
        prev = chr(ord("a") + i - 1)
        levels.append(f"- &{chr(ord('a') + i)} [{', '.join(['*' + prev] * 10)}]")
    _append(made / "project.yaml", "\n".join(levels) + "\n")
    r = cli("validate", "p", root=root)
    assert_one_line_error(r, "project.yaml", "laughs")
    assert r.elapsed < 30  # type: ignore[attr-defined]

    text = original
    (made / "project.yaml").write_text(text + "\ndeep: " + "[" * 5000 + "]" * 5000 + "\n", encoding="utf-8")
    r = cli("validate", "p", root=root)
    assert_one_line_error(r, "project.yaml")


# --------------------------------------------------------------------------- project names

BAD_NAMES = {
    "newline": ("a\nb", "control characters"),
    "tab": ("a\tb", "control characters"),
    "cr": ("a\rb", "control characters"),
    "escape": ("a\x1b[31mred", "control characters"),
    "nul-ish-0x01": ("a\x01", "control characters"),
    "del": ("a\x7f", "control characters"),
    "c1": ("a\x85b", "control characters"),
    "line-separator": ("a\u2028b", "control characters"),
    "300-chars": ("x" * 300, "too long"),
    "101-chars": ("y" * 101, "too long"),
    "too-many-bytes": ("长" * 70, "too long"),  # 70 characters, 210 bytes
    "slash": ("a/b", "invalid project name"),
    "dotdot": ("..", "invalid project name"),
    "hidden": (".x", "invalid project name"),
    "staging-like": (".novelcomic-new-abc", "invalid project name"),
    "blank": ("   ", "empty"),
}


@pytest.mark.parametrize("case", sorted(BAD_NAMES))
def test_bad_project_names_refused_with_one_line(root: Path, novel: Path, case: str) -> None:
    name, needle = BAD_NAMES[case]
    r = cli("new-project", name, "--novel", str(novel), root=root)
    line = assert_one_line_error(r, needle)
    assert len(line) < 300
    assert list(root.iterdir()) == []


@pytest.mark.parametrize("case", ["300-chars", "newline", "too-many-bytes"])
@pytest.mark.parametrize("command", ["run", "status", "validate"])
def test_bad_names_in_other_commands(root: Path, case: str, command: str) -> None:
    name, needle = BAD_NAMES[case]
    args = ("run", name, "--no-prefect") if command == "run" else (command, name)
    r = cli(*args, root=root)
    assert_one_line_error(r, needle)
    assert list(root.iterdir()) == []


def test_longest_allowed_name_works(root: Path, novel: Path) -> None:
    name = "名" * 66  # 198 bytes
    r = cli("new-project", name, "--novel", str(novel), root=root)
    assert r.returncode == 0, r.stderr
    assert (root / name / "project.yaml").is_file()
    assert cli("validate", name, root=root).returncode == 0


# --------------------------------------------------------------------------- novel files


def _fifo(tmp: Path) -> Path:
    p = tmp / "fifo.txt"
    os.mkfifo(p)
    return p


def _directory(tmp: Path) -> Path:
    p = tmp / "dir.txt"
    p.mkdir()
    return p


def _socket(tmp: Path) -> Path:
    p = tmp / "sock.txt"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(p))  # left bound: the test's process keeps it until exit
    _SOCKETS.append(s)
    return p


_SOCKETS: list[socket.socket] = []


def _link_to_fifo(tmp: Path) -> Path:
    p = tmp / "link.txt"
    p.symlink_to(_fifo(tmp))
    return p


def _dangling(tmp: Path) -> Path:
    p = tmp / "dangling.txt"
    p.symlink_to(tmp / "nowhere")
    return p


def _loop(tmp: Path) -> Path:
    p = tmp / "loop.txt"
    p.symlink_to(p)
    return p


def _unreadable(tmp: Path) -> Path:
    p = tmp / "secret.txt"
    p.write_text(NOVEL, encoding="utf-8")
    p.chmod(0)
    return p


NOT_FILES = {
    "fifo": (_fifo, "named pipe"),
    "directory": (_directory, "a directory"),
    "socket": (_socket, "socket"),
    "dev-zero": (lambda tmp: Path("/dev/zero"), "character device"),
    "dev-urandom": (lambda tmp: Path("/dev/urandom"), "character device"),
    "dev-stdin": (lambda tmp: Path("/dev/stdin"), "not a novel file"),
    "link-to-fifo": (_link_to_fifo, "named pipe"),
    "dangling-link": (_dangling, "not found"),
    "symlink-loop": (_loop, "cannot read"),
    "missing": (lambda tmp: tmp / "missing.txt", "not found"),
}


@pytest.mark.parametrize("case", sorted(NOT_FILES))
def test_only_regular_files_are_read_as_novels(root: Path, tmp_path: Path, case: str) -> None:
    make, needle = NOT_FILES[case]
    src = tmp_path / "src"
    src.mkdir()
    path = make(src)
    if case == "dev-zero" and not Path("/dev/zero").exists():  # pragma: no cover
        pytest.skip("no /dev/zero")
    before = snapshot(src)
    r = cli("new-project", "x", "--novel", str(path), root=root, timeout=30)
    assert_one_line_error(r, needle)
    assert r.elapsed < 20  # type: ignore[attr-defined]  # never blocks on a FIFO or reads a device
    assert list(root.iterdir()) == []
    assert snapshot(src) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_novel(root: Path, tmp_path: Path) -> None:
    r = cli("new-project", "x", "--novel", str(_unreadable(tmp_path)), root=root)
    assert_one_line_error(r, "permission denied")
    assert list(root.iterdir()) == []


def test_symlink_to_a_regular_file_is_read(root: Path, novel: Path, tmp_path: Path) -> None:
    link = tmp_path / "link.txt"
    link.symlink_to(novel)
    r = cli("new-project", "x", "--novel", str(link), root=root)
    assert r.returncode == 0, r.stderr
    assert "阿青" in (root / "x" / "novel.txt").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("size_mb", "env", "needle"),
    [
        (2, "1", "larger than 1 MB"),
        (1, "0.5", "larger than 0.5 MB"),
        (0, "abc", "NOVELCOMIC_MAX_NOVEL_MB='abc'"),
        (0, "-3", "positive number"),
        (0, "nan", "positive number"),
    ],
    ids=["over-1mb", "over-half-mb", "env-not-a-number", "env-negative", "env-nan"],
)
def test_novel_size_limit(root: Path, tmp_path: Path, size_mb: int, env: str, needle: str) -> None:
    big = tmp_path / "big.txt"
    line = ("河水静静地流。" * 20 + "\n").encode("utf-8")
    with open(big, "wb") as fh:
        fh.write("第一章 开始\n\n".encode())
        for _ in range(max(1, size_mb * 1024 * 1024 // len(line) + 1)):
            fh.write(line)
    r = cli("new-project", "x", "--novel", str(big), root=root, env={"NOVELCOMIC_MAX_NOVEL_MB": env})
    assert_one_line_error(r, needle)
    assert "NOVELCOMIC_MAX_NOVEL_MB" in r.stderr
    assert list(root.iterdir()) == []


def test_size_limit_raised_by_env_and_documented(root: Path, tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_text("第一章 开始\n\n" + "河水静静地流。\n" * 60_000, encoding="utf-8")  # ~1.3 MB
    r = cli("new-project", "x", "--novel", str(big), root=root, env={"NOVELCOMIC_MAX_NOVEL_MB": "1"})
    assert_one_line_error(r, "larger than 1 MB")
    r = cli("new-project", "x", "--novel", str(big), root=root, env={"NOVELCOMIC_MAX_NOVEL_MB": "2"})
    assert r.returncode == 0, r.stderr
    r = cli("new-project", "--help", root=root)
    assert "NOVELCOMIC_MAX_NOVEL_MB" in r.stdout and "64" in r.stdout


def test_read_is_bounded_even_when_the_size_lies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file that reports a small size but has more (it grows; /proc files say 0) is still cut
    off at the limit, without reading the rest."""
    from novelcomic.errors import NovelcomicError
    from novelcomic.ingest import create

    p = tmp_path / "grows.txt"
    p.write_bytes(b"a" * (3 * 1024 * 1024))
    real_stat = os.stat

    class Small:
        def __init__(self, st: os.stat_result) -> None:
            self.st_mode, self.st_size = st.st_mode, 10

    monkeypatch.setattr(create.os, "stat", lambda path, *a, **k: Small(real_stat(path, *a, **k)))
    monkeypatch.setenv("NOVELCOMIC_MAX_NOVEL_MB", "1")
    reads: list[int] = []
    real_read = os.read
    monkeypatch.setattr(create.os, "read", lambda fd, n: reads.append(n) or real_read(fd, n))
    with pytest.raises(NovelcomicError, match="larger than 1 MB"):
        create._read_novel(p)
    assert sum(reads) <= 1024 * 1024 + 1


def test_proc_file_is_bounded(root: Path) -> None:
    """/proc/self/... files are regular with st_size 0: read, bounded, and refused as no novel."""
    proc = Path("/proc/self/status")
    if not proc.is_file():  # pragma: no cover
        pytest.skip("no /proc")
    r = cli("new-project", "x", "--novel", str(proc), root=root)
    assert r.returncode != 0 or (root / "x").is_dir()
    assert "Traceback" not in r.stderr


# --------------------------------------------------------------------------- stale staging dirs

_STAGER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from novelcomic.ingest.create import _staging_dir

    with _staging_dir(Path(sys.argv[1])) as (staging, _):
        (staging / "novel.txt").write_bytes(b"x" * 100000)
        print(staging, flush=True)
        time.sleep(600)
    """
)


def _start_stager(root: Path) -> tuple[subprocess.Popen[str], Path]:
    proc = subprocess.Popen([sys.executable, "-c", _STAGER, str(root)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    staging = Path(proc.stdout.readline().strip())
    assert staging.name.startswith(".novelcomic-new-") and staging.is_dir()
    return proc, staging


def test_kill_9_during_new_project_leaves_nothing_for_long(root: Path, novel: Path) -> None:
    """A staging dir whose creator was killed (kill -9) is removed by the next new-project; one
    whose creator still runs is left alone."""
    dead, dead_dir = _start_stager(root)
    alive, alive_dir = _start_stager(root)
    try:
        dead.send_signal(signal.SIGKILL)
        dead.wait(10)
        r = cli("new-project", "p", "--novel", str(novel), root=root)
        assert r.returncode == 0, r.stderr
        assert not dead_dir.exists()
        assert alive_dir.is_dir() and (alive_dir / "novel.txt").is_file()
        assert sorted(p.name for p in root.iterdir()) == sorted(["p", alive_dir.name])
        assert not (root / "p" / ".novelcomic-creating").exists()
    finally:
        alive.kill()
        alive.wait(10)
    r = cli("new-project", "q", "--novel", str(novel), root=root)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in root.iterdir()) == ["p", "q"]


def test_real_new_project_killed_midway(root: Path, tmp_path: Path) -> None:
    """kill -9 of a real new-project at some point of its work: the next one cleans up."""
    big = tmp_path / "big.txt"
    big.write_text("".join(f"第{i}章 标题\n\n" + "河水静静地流。他说：“好。”\n" * 400 for i in range(1, 200)), encoding="utf-8")
    env = {**os.environ, "NOVELCOMIC_PROJECTS_DIR": str(root)}
    proc = subprocess.Popen([sys.executable, "-m", "novelcomic", "new-project", "big", "--novel", str(big)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    seen: list[Path] = []
    while time.monotonic() < deadline and proc.poll() is None and not seen:
        seen = [p for p in root.glob(".novelcomic-new-*/chapters")]  # in the middle of writing it
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert seen, "new-project finished before it could be killed"
    assert seen[0].parent.is_dir() and not (root / "big").exists()
    novel = tmp_path / "small.txt"
    novel.write_text(NOVEL, encoding="utf-8")
    r = cli("new-project", "p", "--novel", str(novel), root=root)
    assert r.returncode == 0, r.stderr
    assert not [p for p in root.iterdir() if p.name.startswith(".novelcomic-new-")]


def test_old_staging_dirs_without_lock_expire(tmp_path: Path) -> None:
    from novelcomic.ingest.create import STALE_SECONDS, sweep_stale_staging

    old = tmp_path / ".novelcomic-new-old"
    (old / "chapters").mkdir(parents=True)
    young = tmp_path / ".novelcomic-new-young"
    young.mkdir()
    other = tmp_path / ".novelcomic-newish"
    other.mkdir()
    keep = tmp_path / "project"
    keep.mkdir()
    link = tmp_path / ".novelcomic-new-link"
    link.symlink_to(keep)
    past = time.time() - STALE_SECONDS - 10
    os.utime(old, (past, past))
    assert sweep_stale_staging(tmp_path) == [old]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([young.name, other.name, keep.name, link.name])


# --------------------------------------------------------------------------- numeric ranges

RANGES = {
    "project-seed-2**70": ("project.yaml", f"seed: {2**70}\n", "seed", "less than or equal to 4294967295"),
    "project-seed-negative": ("project.yaml", "seed: -1\n", "seed", "greater than or equal to 0"),
    "project-seed-2**32": ("project.yaml", f"seed: {2**32}\n", "seed", "4294967295"),
    "shot-seed-2**70": ("storyboard", f"    seed: {2**70}\n", "scenes[0].shots[0].seed", "4294967295"),
    "pitch-1000": ("characters.yaml", "    pitch: 1000\n", "characters[0].voice.pitch", "less than or equal to 99"),
    "pitch-too-low": ("characters.yaml", "    pitch: -1000\n", "characters[0].voice.pitch", "greater than or equal to -50"),
    "rate-huge": ("characters.yaml", "    rate: 100000\n", "characters[0].voice.rate", "less than or equal to 500"),
    "rate-too-low": ("characters.yaml", "    rate: -101\n", "characters[0].voice.rate", "greater than or equal to -100"),
    "narrator-pitch": ("narrator", "  pitch: 1000\n", "narrator.pitch", "99"),
}


@pytest.mark.parametrize("case", sorted(RANGES))
@pytest.mark.parametrize("command", ["validate", "run"])
def test_numbers_out_of_range_are_validation_errors(made: Path, root: Path, case: str, command: str) -> None:
    where, text, field, needle = RANGES[case]
    if where == "project.yaml":
        path = made / "project.yaml"
        _append(path, text)
    elif where == "storyboard":
        path = made / "storyboards" / "01.yaml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(STORYBOARD.replace("    lines:\n", text + "    lines:\n"), encoding="utf-8")
    elif where == "narrator":
        path = made / "characters.yaml"
        path.write_text("characters:\n- id: qing\n  name: 阿青\nnarrator:\n" + text, encoding="utf-8")
    else:
        path = made / "characters.yaml"
        path.write_text("characters:\n- id: qing\n  name: 阿青\n  voice:\n" + text, encoding="utf-8")
    n = next(i for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if line.strip() == text.strip())
    before = snapshot(root)
    args = ("validate", "p") if command == "validate" else ("run", "p", "--no-prefect")
    r = cli(*args, root=root)
    assert_one_line_error(r, f"{path}:{n}: {field}: ", needle)
    assert "OverflowError" not in r.stderr
    after = snapshot(root)
    assert {k for k in after if k not in before} <= {"p/.novelcomic/lock", "p/.novelcomic/state.db"}, set(after) - set(before)
    assert not (made / "render").exists()


@pytest.mark.parametrize(("pitch", "rate"), [(0, 80), (99, 450), (-50, -50), (50, 100), (None, 500)])
def test_numbers_in_range_are_accepted(pitch: int | None, rate: int) -> None:
    from novelcomic.models import MAX_SEED, ProjectConfig, Shot, VoiceSpec

    VoiceSpec(pitch=pitch, rate=rate)
    assert ProjectConfig(title="t", seed=MAX_SEED).seed == 2**32 - 1
    assert Shot(id="s01-01", seed=0).seed == 0
    schema = ProjectConfig.model_json_schema()["properties"]["seed"]
    assert schema["maximum"] == 2**32 - 1 and "2**32-1" in schema["description"]
    assert "0-99" in VoiceSpec.model_json_schema()["properties"]["pitch"]["description"]



# --------------------------------------------------------------------------- validate checks what a run checks

_COMPOSE = "stages:\n  compose:\n    backend: ffmpeg\n    options:\n      {}\n"
CHECKED_BY_VALIDATE = {
    "resolution-huge": ("project.yaml", "resolution: [100000, 100000]\n", "resolution", "larger than 8K"),
    "preset-with-spaces": ("project.yaml", _COMPOSE.format("preset: ultra fast"), "stages.compose.options.preset", "preset must be one of"),
    "crf-not-a-number": ("project.yaml", _COMPOSE.format("crf: '23; x'"), "stages.compose.options.crf", "'23; x'"),
    "threads-not-a-number": ("project.yaml", _COMPOSE.format("threads: many"), "stages.compose.options.threads", "'many'"),
    "audio-bitrate": ("project.yaml", _COMPOSE.format("audio_bitrate: 192kbps; rm"), "stages.compose.options.audio_bitrate", "192k"),
    "font-missing": ("project.yaml", "subtitles:\n  font: fonts/missing.ttf\n", "subtitles.font", "not found"),
    "font-not-a-font": ("project.yaml", "subtitles:\n  font: chapters/01.txt\n", "subtitles.font", "is not a font file"),
    "font-family-missing": ("project.yaml", "subtitles:\n  font: No Such Family Sans\n", "subtitles.font", "is not installed"),
    "music-missing": ("project.yaml", "music:\n  tracks:\n    calm: music/none.mp3\n", "music.tracks.calm", "not found"),
    "music-not-audio": ("project.yaml", "music:\n  tracks:\n    calm: chapters/01.txt\n", "music.tracks.calm", "not an audio file"),
    "effect-unknown": ("storyboard", "    effect: wobble\n", "scenes[0].shots[0].effect", "unknown effect 'wobble'"),
    "line-20000-chars": ("storyboard-line", "字" * 20000, "scenes[0].shots[0].lines[0].text", "at most 1000 characters"),
}


@pytest.mark.parametrize("case", sorted(CHECKED_BY_VALIDATE))
def test_validate_refuses_what_a_run_would_fail_on(made: Path, root: Path, case: str) -> None:
    where, text, field, needle = CHECKED_BY_VALIDATE[case]
    if where == "project.yaml":
        path = made / "project.yaml"
        _append(path, text)
    else:
        path = made / "storyboards" / "01.yaml"
        path.parent.mkdir(exist_ok=True)
        body = STORYBOARD.replace("    lines:\n", text + "    lines:\n") if where == "storyboard" else STORYBOARD.replace("河水静静地流。", text)
        path.write_text(body, encoding="utf-8")
    before = snapshot(root)
    r = cli("validate", "p", root=root)
    assert_one_line_error(r, f"{path}:", f": {field}: ", needle)
    assert r.elapsed < 20  # type: ignore[attr-defined]
    if case in ("crf-not-a-number", "font-not-a-font", "effect-unknown"):  # and the run refuses the same way, before any work
        r = cli("run", "p", "--no-prefect", root=root)
        assert_one_line_error(r, f": {field}: ", needle)
        from novelcomic.project import Project

        project = Project(made)
        runs = project.store.runs()
        project.close()
        assert runs == [], "a refused run is not recorded"
    after = snapshot(root)
    assert {k for k in after if k not in before} <= {"p/.novelcomic/lock", "p/.novelcomic/state.db"}, set(after) - set(before)


def test_a_copied_project_redoes_nothing(root: Path) -> None:
    """``cp -a`` (or ``mv``) of a finished project: the copy's database rows are adopted under the
    new name, its paths are relative, so every stage is up to date."""
    import shutil

    from tests.prefect_fixtures import tiny_project

    tiny_project(root, shots=2)
    r = cli("run", "tiny", "--no-prefect", root=root)
    assert r.returncode == 0, r.stderr
    shutil.copytree(root / "tiny", root / "copy", symlinks=True)
    before = snapshot(root / "copy")
    r = cli("run", "copy", "--no-prefect", root=root)
    assert r.returncode == 0, r.stderr
    for stage in ("render 01", "voice 01", "compose 01"):
        assert f"{stage}: 0 made" in r.stdout, r.stdout
    after = snapshot(root / "copy")
    changed = {k for k in before if k in after and after[k] != before[k] and not k.startswith(".novelcomic")}
    assert changed == set(), changed


def test_an_identical_re_render_adds_no_version(root: Path) -> None:
    from sqlmodel import Session, select

    from novelcomic import pipeline
    from novelcomic.project import Project
    from novelcomic.store import Asset
    from tests.prefect_fixtures import tiny_project

    p = Project(tiny_project(root, shots=1))
    path, made = pipeline.render_shot(p, "01", "s01-01")
    assert made
    v1 = p.store.asset("shot", "01/s01-01").version
    with Session(p.store.engine) as s:  # the recorded inputs differ: the shot is drawn again
        a = s.exec(select(Asset).where(Asset.key == "01/s01-01", Asset.kind == "shot")).one()
        a.inputs_hash = "stale"
        s.add(a)
        s.commit()
    mtime = path.stat().st_mtime_ns
    _, made = pipeline.render_shot(p, "01", "s01-01")
    assert made  # drawn, and it came out the same
    rec = p.store.asset("shot", "01/s01-01")
    assert rec.version == v1 and rec.inputs_hash != "stale"
    assert path.stat().st_mtime_ns == mtime
    assert not (p.dir / "render" / "01" / "versions").exists() or not any((p.dir / "render" / "01" / "versions").iterdir())
    p.close()


def test_validate_warns_when_the_voice_backend_cannot_do_what_is_asked(made: Path, root: Path) -> None:
    """Backends declare what they can do (word timings, cloning); validate says when a setting
    asks for what the chosen one does not declare."""
    _append(made / "project.yaml", _COMPOSE.format("karaoke: true"))
    r = cli("validate", "p", root=root)
    assert r.returncode == 0, r.stderr
    assert "karaoke" in r.stderr and "no word timings" in r.stderr
