"""`novelcomic export --to jianying|otio` on the Chinese example after a real run: the 剪映 draft
loads back with one segment per shot, line and cue, ends where the MP4 ends, holds every file it
uses and stays valid when moved; the OTIO export has the music track and subtitle markers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import opentimelineio as otio
import pytest

from novelcomic.compose.base import Clip, Timeline
from novelcomic.compose.jianying_export import (
    DRAFT_PATH_TOKEN, camera_keys, chapter_cut, export_jianying, load_draft, resolve_material_path,
)
from novelcomic.compose.motion import motion_views
from novelcomic.compose.otio_export import export_chapter_otio
from novelcomic.compose.subtitles import display_text
from novelcomic.errors import NovelcomicError
from novelcomic.project import Project
from tests.helpers import copy_example, ffprobe

FPS = 8


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """lantern-fox, chapter 1, through every stage at 144×256 and 8 fps (about 10 s), then exported."""
    from novelcomic.cli.run_cmds import run_project

    root = tmp_path_factory.mktemp("jy") / "projects"
    root.mkdir()
    project = Project(copy_example("lantern-fox", root, resolution=(144, 256), fps=FPS))
    run_project(project, "1", (), use_prefect=False)
    out = root.parent / "drafts"
    [draft] = export_jianying(project, ["01"], out)
    return {"project": project, "draft": draft, "cut": chapter_cut(project, "01"), "out": out}


def _tracks(content: dict) -> dict[str, dict]:
    return {t["name"]: t for t in content["tracks"]}


def _end(track: dict) -> int:
    return max(int(s["target_timerange"]["start"]) + int(s["target_timerange"]["duration"]) for s in track["segments"])


def test_draft_loads_back_one_segment_per_shot_line_and_cue(run: dict) -> None:
    import pyJianYingDraft as jy

    project, draft, tl = run["project"], run["draft"], run["cut"].timeline
    shots = [shot for _, shot in project.storyboard("01").shots()]
    lines = sum(len(s.lines) for s in shots)
    assert (draft.shots, draft.lines, draft.cues) == (len(shots), lines, len(tl.cues)) and lines > 10
    content = load_draft(draft.folder)
    tracks = _tracks(content)
    assert [(t["type"], t["name"]) for t in content["tracks"]] == [
        ("video", "shots"), ("audio", "voice"), ("audio", "music"), ("text", "subtitles")]
    assert [len(tracks[n]["segments"]) for n in ("shots", "voice", "music", "subtitles")] == [len(shots), lines, 1, len(tl.cues)]
    # pyJianYingDraft itself reads it back (as 剪映 5.x plain JSON)
    loaded = jy.DraftFolder(str(run["out"])).load_template(draft.folder.name)
    assert [(t.name, len(t.segments)) for t in loaded.imported_tracks] == [
        ("shots", len(shots)), ("voice", lines), ("music", 1), ("subtitles", len(tl.cues))]
    assert (loaded.width, loaded.height, loaded.fps) == (144, 256, FPS)
    # shots butt together, in storyboard order, on the composer's frame boundaries
    video = tracks["shots"]["segments"]
    assert [s["target_timerange"]["start"] for s in video] == [round(c.start * 1e6) for c in tl.clips]
    for a, b in zip(video, video[1:]):
        assert a["target_timerange"]["start"] + a["target_timerange"]["duration"] == b["target_timerange"]["start"]
    # each subtitle spans its line's audio, and says what the composer's subtitle says
    voice, texts = tracks["voice"]["segments"], tracks["subtitles"]["segments"]
    assert [s["target_timerange"] for s in texts] == [s["target_timerange"] for s in voice]
    shown = [json.loads(m["content"])["text"] for m in content["materials"]["texts"]]
    assert shown == [display_text(c, "zh") for c in tl.cues]


def test_draft_ends_where_the_mp4_ends(run: dict) -> None:
    draft, project = run["draft"], run["project"]
    content = load_draft(draft.folder)
    info = ffprobe(project.video_path("01"))
    mp4_us = round(float(info["format"]["duration"]) * 1e6)
    ends = {name: _end(t) for name, t in _tracks(content).items()}
    assert abs(content["duration"] - mp4_us) <= 1000 and content["duration"] == draft.duration_us
    assert ends["shots"] == content["duration"]
    assert abs(ends["music"] - mp4_us) <= 1000
    assert ends["voice"] <= ends["shots"] and ends["subtitles"] <= ends["shots"]
    meta = json.loads((draft.folder / "draft_meta_info.json").read_text(encoding="utf-8"))
    assert meta["tm_duration"] == content["duration"] and meta["draft_name"] == draft.folder.name


def test_every_file_is_inside_the_folder_and_moving_it_keeps_it_valid(run: dict, tmp_path: Path) -> None:
    draft = run["draft"]
    content = load_draft(draft.folder)
    mats = content["materials"]["videos"] + content["materials"]["audios"]
    assert len(content["materials"]["videos"]) == draft.shots and len(content["materials"]["audios"]) == draft.lines + 1
    assert all(m["path"].startswith(DRAFT_PATH_TOKEN + "/materials/") for m in mats)
    assert (draft.folder / "materials" / "subtitles" / "01.srt").is_file()
    drafts_dir = tmp_path / "JianyingPro Drafts"  # 剪映's drafts directory on another machine
    drafts_dir.mkdir()
    moved = Path(shutil.move(str(draft.folder), str(drafts_dir / draft.folder.name)))
    text = (moved / "draft_content.json").read_text(encoding="utf-8") + (moved / "draft_meta_info.json").read_text(encoding="utf-8")
    assert str(run["out"]) not in text and str(run["project"].dir) not in text  # no absolute path left anywhere
    for m in load_draft(moved)["materials"]["videos"] + load_draft(moved)["materials"]["audios"]:
        path = resolve_material_path(m["path"], moved)
        assert path.is_file() and moved in path.parents, m["path"]
    shutil.move(str(moved), str(draft.folder))  # back, for the other tests


def test_camera_moves_become_scale_and_position_keyframes(run: dict) -> None:
    content = load_draft(run["draft"].folder)
    tl = run["cut"].timeline
    for clip, seg in zip(tl.clips, _tracks(content)["shots"]["segments"]):
        kinds = {k["property_type"]: [kf["values"][0] for kf in k["keyframe_list"]] for k in seg["common_keyframes"]}
        if clip.motion == "static":
            assert kinds == {}
            continue
        assert set(kinds) == {"KFTypeScaleX", "KFTypePositionX", "KFTypePositionY"}, clip.motion
        offsets = [kf["time_offset"] for kf in seg["common_keyframes"][0]["keyframe_list"]]
        assert offsets[0] == 0 and offsets[-1] == seg["target_timerange"]["duration"]
        scale = kinds["KFTypeScaleX"]
        if clip.motion == "push_in":
            assert scale[-1] > scale[0] >= 1.0
        if clip.motion == "pull_out":
            assert scale[0] > scale[-1] >= 1.0
    assert {c.motion for c in tl.clips} & {"push_in", "pull_out", "pan_left", "pan_right"}


def test_camera_keys_follow_the_composer_window(tmp_path: Path) -> None:
    img = tmp_path / "a.png"
    img.write_bytes(b"")
    clips = [Clip("a", img, 0.0, 4.0, "push_in", "cut", "calm"), Clip("b", img, 4.0, 4.0, "pan_right", "cut", "calm"),
             Clip("c", img, 8.0, 2.0, "static", "cut", "calm")]
    tl = Timeline(width=144, height=256, fps=10, clips=clips, cues=[])
    push = camera_keys(tl, 0, (144, 256))
    start, end = motion_views("push_in", 4.0)
    assert (push[0].offset, push[0].scale, push[0].x, push[0].y) == (0, 1.0, 0.0, 0.0)
    assert push[-1].offset == 4_000_000 and push[-1].scale == pytest.approx(end.zoom, abs=1e-4)
    assert push[-1].y == pytest.approx(2 * end.zoom * (end.cy - 0.5), abs=1e-4) and push[-1].y < 0  # looks up: image moves down
    pan = camera_keys(tl, 1, (144, 256))
    assert pan[0].x > 0 > pan[-1].x  # the window slides right: the picture slides left
    assert all(k.scale == pytest.approx(1.12) for k in pan)
    assert camera_keys(tl, 2, (144, 256)) == []
    # a still of another shape is scaled to fill the frame, as the composer does
    assert camera_keys(tl, 1, (256, 256))[0].scale == pytest.approx(1.12 * (256 / 144))


def test_otio_export_has_the_music_track_and_subtitle_markers(run: dict, tmp_path: Path) -> None:
    project, tl = run["project"], run["cut"].timeline
    path = export_chapter_otio(project, "01", tmp_path / "otio")
    loaded = otio.adapters.read_from_file(str(path))
    assert [t.name for t in loaded.tracks] == ["Video", "Voice", "Music"]
    music = list(loaded.tracks[2].find_clips())
    assert len(music) == 1
    assert music[0].metadata["novelcomic"]["volume_db"] == project.config().music.volume_db
    assert abs(loaded.tracks[2].duration().to_seconds() - loaded.tracks[0].duration().to_seconds()) < 1e-6
    wav = (path.parent / music[0].media_reference.target_url).resolve()  # relative to the .otio
    assert wav == (tmp_path / "otio" / "01.music.wav").resolve() and wav.stat().st_size > 1000
    markers = list(loaded.tracks.markers)
    assert [m.name for m in markers] == [display_text(c, "zh") for c in tl.cues]
    for m, cue in zip(markers, tl.cues):
        assert m.marked_range.start_time.to_seconds() == pytest.approx(cue.start, abs=1e-6)
        assert m.metadata["novelcomic"]["kind"] == "subtitle" and m.metadata["novelcomic"]["speaker"] == cue.speaker
    assert (path.parent / loaded.metadata["novelcomic"]["subtitles"]).resolve() == project.srt_path("01").resolve()
    assert [m.name for m in loaded.tracks[0].markers] == [c.text for c in tl.cues]  # the video track's markers stay


def test_export_command(run: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from novelcomic.cli import main

    project = run["project"]
    root = str(project.dir.parent)
    main(["--projects-dir", root, "export", project.name, "--to", "jianying", "--chapters", "1", "--out", str(tmp_path / "d")])
    out = capsys.readouterr().out
    assert f"{tmp_path / 'd' / 'lantern-fox-01'}  ({run['draft'].shots} shots, {run['draft'].lines} lines" in out
    assert (tmp_path / "d" / "lantern-fox-01" / "draft_content.json").is_file()
    assert not [p for p in (tmp_path / "d").iterdir() if p.name.startswith(".")]  # no staging left behind
    with pytest.raises(SystemExit) as exc:
        main(["--projects-dir", root, "export", project.name, "--to", "jianying", "--chapters", "2", "--out", str(tmp_path / "e")])
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "error: chapter 02 is not planned yet: run `novelcomic run lantern-fox` first"
    with pytest.raises(NovelcomicError, match="no chapter '9'"):
        from novelcomic.pipeline import select_chapters

        select_chapters(project.config(), "9")
