"""The animate stage end to end with tiny random image-to-video models built here (Wan2.2 TI2V,
LTX-Video, SVD): a two-shot chapter where the auto pick animates the action close-up. The clip
fills its shot in the MP4, the still's lettering is laid over its moving frames, and editing the
other shot leaves the clip's segment file alone."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

pytest.importorskip("diffusers")

from novelcomic import pipeline  # noqa: E402
from novelcomic.ffmpeg import ffmpeg_exe  # noqa: E402
from novelcomic.project import Project  # noqa: E402

W, H, FPS = 144, 256, 12
STAGES = ["render", "voice", "animate", "compose"]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("i2v-models")


def make_project(root: Path, model: Path, **animate: object) -> Project:
    d = root / "p"
    (d / "chapters").mkdir(parents=True)
    (d / "storyboards").mkdir()
    (d / "chapters" / "01.txt").write_text("阿青拔剑。老陈看着河水。", encoding="utf-8")
    cfg = {
        "title": "t", "resolution": [W, H], "fps": FPS, "transition_seconds": 0.4,
        "stages": {"voice": {"backend": "silent"}},
        "music": {"enabled": False},
        "chapters": [{"id": "01"}],
        "animate": {"backend": "diffusers", "max_per_chapter": 1, "options": {
            "model": str(model), "steps": 2, "width": 32, "height": 32, "max_frames": 9, "max_sequence_length": 16,
            "device": "cpu"}, **animate},
    }
    (d / "project.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    (d / "characters.yaml").write_text(yaml.safe_dump({"characters": [
        {"id": "a", "name": "阿青", "appearance": "青衣"}, {"id": "b", "name": "老陈", "appearance": "白发"}]},
        allow_unicode=True), encoding="utf-8")
    (d / "locations.yaml").write_text(yaml.safe_dump({"locations": [{"id": "l1", "name": "河边", "kind": "river"}]},
                                                     allow_unicode=True), encoding="utf-8")
    sb = {"chapter": "01", "scenes": [{"id": "s01", "location": "l1", "mood": "calm", "shots": [
        {"id": "s01-01", "characters": ["a"], "mood": "action", "camera": {"size": "close_up", "motion": "static"},
         "lines": [{"speaker": "a", "text": "快走吧，天要黑了！"}], "transition": "dissolve"},
        {"id": "s01-02", "characters": ["b"], "camera": {"size": "medium", "motion": "static"},
         "lines": [{"text": "河水静静地流。"}]},
    ]}]}
    (d / "storyboards" / "01.yaml").write_text(yaml.safe_dump(sb, allow_unicode=True), encoding="utf-8")
    return Project(d)


def decode(video: Path) -> np.ndarray:
    raw = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(video), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         check=True, capture_output=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, H, W, 3).astype(np.int16)


def segments(project: Project) -> dict[int, Path]:
    """start frame → segment file, from the OTIO the composer writes beside the video."""
    data = json.loads(project.video_path("01").with_suffix(".otio").read_text(encoding="utf-8"))

    def find(obj: object) -> list:
        if isinstance(obj, dict):
            if "segments" in obj and isinstance(obj["segments"], list):
                return obj["segments"]
            for v in obj.values():
                if found := find(v):
                    return found
        if isinstance(obj, list):
            for v in obj:
                if found := find(v):
                    return found
        return []

    seg_dir = project.work_dir / "01" / "segments"
    return {s["start_frame"]: seg_dir / Path(s["file"].replace("file://", "")).name for s in find(data)}


@pytest.mark.parametrize("family", ["wan22", "ltx", "svd"])
def test_a_clip_fills_its_shot_under_its_lettering_and_an_edit_elsewhere_keeps_it(
        family: str, models: Path, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.tiny_video_models import ensure

    model = ensure(family, models)
    monkeypatch.setenv("NOVELCOMIC_ALLOWED_DIRS", str(models))
    project = make_project(root, model)
    reports = {r.stage: r for r in pipeline.produce(project, stages=STAGES)}
    assert reports["animate"].made == 1, reports["animate"].warnings
    clip = project.store.asset("clip", "01/s01-01")
    assert clip is not None and project.store.asset("clip", "01/s01-02") is None  # auto: the action close-up only
    meta = clip.meta_dict()
    assert meta["family"] == family and meta["frames"] == (3 if family == "svd" else 9)
    letters = project.dir / meta["letters"]
    assert letters.is_file()

    # the clip fills its shot: every frame of the shot's span comes from the clip, not the still
    video = decode(project.video_path("01"))
    shot_frames = round(json.loads(json.dumps(project.store.asset("video", "01").meta_dict()))["duration"] * FPS)
    assert len(video) == shot_frames
    still = np.asarray(__import__("PIL.Image").Image.open(project.shot_image_path("01", "s01-01")).convert("RGB")).astype(np.int16)
    seg = segments(project)
    first_body_end = sorted(seg)[1]  # the clip's body ends where the transition into shot 2 starts
    assert first_body_end >= 6
    body = video[:first_body_end]
    from PIL import Image

    alpha = np.asarray(Image.open(letters).convert("RGBA").resize((W, H)))[..., 3] == 255
    free = ~alpha
    free[int(H * 0.75):] = False  # the burned-in subtitles come and go there
    assert all(np.abs(f - still)[free].mean() > 25 for f in body)  # noise from the model, not the still's picture
    moving = [np.abs(body[i + 1] - body[i])[free].mean() for i in range(len(body) - 1)]
    # the clip is shorter than the shot: slowed (blended frames) by up to MAX_SLOW, then held on its last frame
    from novelcomic.compose.clips import MAX_SLOW

    slowed = int((meta["frames"] - 1) / meta["fps"] * MAX_SLOW * FPS) - 1
    assert 2 <= slowed < len(moving)
    assert min(moving[:slowed]) > 0.5 and max(moving[slowed + 2:]) < 0.5, (str([round(float(m), 2) for m in moving]), slowed)
    # the lettering layer is laid over the clip's frames: the bubble is there in every frame
    rgb = np.asarray(Image.open(letters).convert("RGBA").resize((W, H)))[..., :3].astype(np.int16)
    core = alpha & np.roll(alpha, 2, 0) & np.roll(alpha, -2, 0) & np.roll(alpha, 2, 1) & np.roll(alpha, -2, 1)
    assert core.sum() > 50
    for f in body[:: max(1, len(body) // 4)]:
        assert np.abs(f - rgb)[core].mean() < 16

    # editing the other shot re-renders, re-voices and re-composes it; the clip and its segment stay
    clip_segment = seg[0]
    before = clip_segment.stat().st_mtime_ns
    sb_path = project.storyboard_path("01")
    sb_path.write_text(sb_path.read_text(encoding="utf-8").replace("河水静静地流。", "河水静静地流向远方。"), encoding="utf-8")
    again = {r.stage: r for r in pipeline.produce(Project(project.dir), stages=STAGES)}
    assert again["render"].made == 1 and again["animate"].made == 0 and again["compose"].made == 1
    assert clip_segment.is_file() and clip_segment.stat().st_mtime_ns == before
    assert segments(project)[0] == clip_segment
