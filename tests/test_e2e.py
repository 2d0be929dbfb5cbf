"""End to end on the committed examples: real MP4s, probed and decoded.

The examples are copied to a temporary directory and shrunk to 270×480 at 12 fps so the whole
path (ingest → plan → design → render → voice → compose, through Prefect) runs in CI time.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from novelcomic.project import Project
from tests.helpers import copy_example, ffprobe, grab_frame, parse_srt

EXAMPLES = {"zh": "lantern-fox", "en": "clockwork-heron"}
SIZE = (270, 480)


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Project]:
    """Both examples made at once: the Chinese one through Prefect (what `novelcomic run` does by
    default), the English one with --no-prefect (the other mode; Prefect itself is covered by
    tests/test_flows.py and tests/test_signals.py)."""
    root = tmp_path_factory.mktemp("e2e")
    env = {**os.environ, "NOVELCOMIC_PROJECTS_DIR": str(root), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    runs = {}
    for lang, name in EXAMPLES.items():
        copy_example(name, root, resolution=SIZE, fps=12)
        args = [sys.executable, "-m", "novelcomic", "run", name] + (["--no-prefect"] if lang == "en" else [])
        runs[lang] = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out = {}
    for lang, proc in runs.items():
        stdout, stderr = proc.communicate(timeout=900)
        assert proc.returncode == 0, stdout[-3000:] + stderr[-3000:]
        out[lang] = Project(root / EXAMPLES[lang])
    return out


def _norm(text: str) -> str:
    return re.sub(r"[\s\u3000]+", "", text)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_one_mp4_per_chapter_with_the_right_streams_and_duration(made: dict[str, Project], lang: str) -> None:
    from novelcomic.compose.base import LineAudio
    from novelcomic.compose.timeline import build_timeline

    project = made[lang]
    cfg = project.config()
    assert len(cfg.chapters) >= 2
    for ch in cfg.chapters:
        video = project.video_path(ch.id)
        info = ffprobe(video)
        streams = {s["codec_type"]: s for s in info["streams"]}
        assert streams["video"]["codec_name"] == "h264"
        assert (streams["video"]["width"], streams["video"]["height"]) == SIZE
        assert streams["audio"]["codec_name"] == "aac"
        sb = project.storyboard(ch.id)
        audio, images = {}, {}
        for _, shot in sb.shots():
            images[shot.id] = project.shot_image_path(ch.id, shot.id)
            audio[shot.id] = []
            for i, line in enumerate(shot.lines):
                a = project.store.asset("audio", f"{ch.id}/{shot.id}/{i:02d}")
                audio[shot.id].append(LineAudio(line.text, line.speaker, "", project.dir / a.path, a.meta_dict()["duration"]))
                assert a.meta_dict()["duration"] > 0.2
        tl = build_timeline(sb, audio, images, width=SIZE[0], height=SIZE[1], fps=12)
        for clip in tl.clips:  # every shot lasts at least as long as its lines
            assert clip.duration >= sum(x.duration for x in audio[clip.shot_id])
        assert float(info["format"]["duration"]) == pytest.approx(sum(c.duration for c in tl.clips), abs=0.2)


def test_the_book_joins_every_chapter_with_a_marker_each(made: dict[str, Project]) -> None:
    """The Chinese example has ``book: true``: the Prefect run also made out/book.mp4 from the
    chapter videos, stream-copied (same frames), one titled chapter marker at each chapter's start."""
    import json
    import shutil

    project = made["zh"]
    cfg = project.config()
    assert cfg.book and project.book_path.is_file()
    exe = shutil.which("ffprobe")
    marks = json.loads(subprocess.run([exe, "-v", "error", "-show_chapters", "-of", "json", str(project.book_path)],
                                      capture_output=True, check=True, text=True).stdout)["chapters"]
    assert [m["tags"]["title"] for m in marks] == [c.title for c in cfg.chapters]
    start = 0.0
    for mark, ch in zip(marks, cfg.chapters):
        assert float(mark["start_time"]) == pytest.approx(start, abs=0.05)
        start += float(ffprobe(project.video_path(ch.id))["format"]["duration"])
    info = ffprobe(project.book_path)
    assert float(info["format"]["duration"]) == pytest.approx(start, abs=0.15)
    kinds = [s["codec_type"] for s in info["streams"]]
    assert kinds.count("video") == 1 and kinds.count("audio") == 1  # (+ the MP4 chapter track, a data stream)
    assert project.store.asset("book", "book").meta_dict()["reencoded"] == []
    assert made["en"].config().book is False and not made["en"].book_path.exists()  # off by default


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_srt_has_every_line_in_order_inside_the_video(made: dict[str, Project], lang: str) -> None:
    project = made[lang]
    for ch in project.config().chapters:
        cues = parse_srt(project.srt_path(ch.id))
        duration = float(ffprobe(project.video_path(ch.id))["format"]["duration"])
        joined = _norm("".join(c.text for c in cues))
        pos = 0
        for _, shot in project.storyboard(ch.id).shots():
            for line in shot.lines:
                found = joined.find(_norm(line.text)[:12], pos)
                assert found >= pos, f"line {line.text!r} missing or out of order in {project.srt_path(ch.id)}"
                pos = found + 1
        starts = [c.start for c in cues]
        assert starts == sorted(starts)
        assert all(0 <= c.start < c.end <= duration + 0.05 for c in cues)


def test_burned_in_subtitles_are_drawn_in_the_subtitle_band(made: dict[str, Project], tmp_path: Path) -> None:
    project = made["zh"]
    ch = project.config().chapters[0].id
    video = project.video_path(ch)
    cues = parse_srt(project.srt_path(ch))
    # a cue followed by a pause: compare the band while the cue shows and during the pause
    pairs = [(a, b) for a, b in zip(cues, cues[1:]) if b.start - a.end >= 0.2][:3]
    assert pairs, "expected pauses between some lines"
    h0 = int(SIZE[1] * 0.72)
    for a, b in pairs:
        on = np.asarray(grab_frame(video, (a.start + a.end) / 2, tmp_path / "on.png"))[h0:].astype(int)
        off = np.asarray(grab_frame(video, (a.end + b.start) / 2, tmp_path / "off.png"))[h0:].astype(int)
        changed = (np.abs(on - off).sum(axis=2) > 120).mean()
        assert changed > 0.01, f"no subtitle pixels at {a.start:.2f}-{a.end:.2f} ({changed:.4f})"


def test_a_character_looks_the_same_in_every_shot(made: dict[str, Project]) -> None:
    from PIL import Image

    from novelcomic.render.look import look_for

    project = made["zh"]
    chars = project.characters().by_id()
    seen: dict[str, list[np.ndarray]] = {}
    for ch in project.config().chapters:
        for _, shot in project.storyboard(ch.id).shots():
            rec = project.store.asset("shot", f"{ch.id}/{shot.id}")
            img = np.asarray(Image.open(project.dir / rec.path).convert("RGB")).astype(int)
            for cid, box in rec.meta_dict().get("regions", {}).items():
                l, t, r, b = box
                seen.setdefault(cid, []).append(img[t:b, l:r].reshape(-1, 3))
    multi = {cid: crops for cid, crops in seen.items() if len(crops) >= 2}
    assert multi, "some character should appear in several shots"
    for cid, crops in multi.items():
        colour = np.array(look_for(chars[cid]).clothing, dtype=int)
        for crop in crops:
            near = (np.abs(crop - colour).sum(axis=1) < 40).mean()
            assert near > 0.02, f"{cid}'s clothing colour missing from one of its shots ({near:.3f})"
