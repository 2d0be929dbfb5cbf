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


class Broken:
    """An animate backend whose every clip fails (a model that ran out of memory, a server gone)."""

    name = "broken"

    def __init__(self, **options: object) -> None:
        pass

    def animate(self, request, out):  # type: ignore[no-untyped-def]
        raise RuntimeError("CUDA out of memory")


def test_a_failed_clip_keeps_the_stills_camera_move_with_a_warning(root: Path) -> None:
    from novelcomic.registry import animators

    project = make_project(root, Path("unused"), backend="broken", options={})
    with animators.override("broken", Broken):
        reports = {r.stage: r for r in pipeline.produce(project, stages=STAGES)}
    assert reports["animate"].made == 0
    assert any("failed (CUDA out of memory)" in w and "keeps its still" in w for w in reports["animate"].warnings)
    assert project.store.asset("clip", "01/s01-01") is None and project.video_path("01").is_file()


def test_bad_animate_settings_fail_up_front_naming_the_value(root: Path, models: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from novelcomic.errors import NovelcomicError

    monkeypatch.setenv("NOVELCOMIC_ALLOWED_DIRS", str(models))
    project = make_project(root, models)
    cfg = yaml.safe_load(project.project_yaml.read_text(encoding="utf-8"))
    cfg["animate"]["options"]["steps"] = 0
    project.project_yaml.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    with pytest.raises(NovelcomicError) as err:
        pipeline.check_backends(Project(project.dir))
    assert err.value.field == "animate.options.steps" and err.value.line and "0" in err.value.message
    cfg["animate"]["options"]["steps"] = 2
    cfg["animate"]["shots"] = ["s01-01", "s09-99"]
    project.project_yaml.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    with pytest.raises(NovelcomicError, match="s09-99") as err:
        pipeline.check_backends(Project(project.dir))
    assert err.value.field == "animate.shots"


def test_auto_picks_action_and_close_ups_first_within_the_budget() -> None:
    from novelcomic.animate.select import chosen_shots
    from novelcomic.models import AnimateConfig, Camera, Scene, Shot, Storyboard

    shots = [Shot(id="wide"), Shot(id="close", camera=Camera(size="close_up")), Shot(id="fight", mood="action"),
             Shot(id="both", mood="action", camera=Camera(size="close_up")), Shot(id="mine", motion="i2v"),
             Shot(id="never", mood="action", camera=Camera(size="close_up"), motion="still")]
    sb = Storyboard(chapter="01", scenes=[Scene(id="s", shots=shots)])
    # "both" first, then action or close-up in storyboard order; motion: i2v always, motion: still never
    assert chosen_shots(AnimateConfig(backend="x", max_per_chapter=3), sb) == ["close", "both", "mine"]
    assert chosen_shots(AnimateConfig(backend="x", max_per_chapter=4), sb) == ["close", "fight", "both", "mine"]
    assert chosen_shots(AnimateConfig(backend="x", shots="all"), sb) == ["wide", "close", "fight", "both", "mine"]
    assert chosen_shots(AnimateConfig(backend="x", shots="none"), sb) == ["mine"]
    assert chosen_shots(AnimateConfig(backend="x", shots=["wide"]), sb, blocked={"mine"}) == ["wide"]
    assert chosen_shots(AnimateConfig(), sb) == []  # no backend: the stage is off


def test_frame_rules_follow_each_model_family() -> None:
    from novelcomic.animate.base import FAMILIES

    assert [FAMILIES["wan22"][1].frames_for(n) for n in (1, 5, 6, 50, 500)] == [5, 5, 9, 53, 121]
    assert [FAMILIES["ltx"][1].frames_for(n) for n in (1, 10, 100, 500)] == [9, 17, 105, 161]
    assert FAMILIES["svd"][1].frames_for(3) == 25 and FAMILIES["wan"][1].frames_for(500) == 81
    assert FAMILIES["ltx"][1].frames_for(100, cap=40) == 33


def test_comfyui_backend_binds_the_still_prompt_seed_and_frames_and_reads_the_frames_back(tmp_path: Path) -> None:
    """Against a 127.0.0.1 server following ComfyUI's protocol (tests/comfy_server.py): the still is
    uploaded and reaches LoadImage, prompt/seed/frames reach their bound inputs (frames as 4k+1 at the
    workflow's fps), the SaveImage output becomes the clip; a refused workflow is one line."""
    from PIL import Image

    from novelcomic import remote
    from novelcomic.animate.backends.comfyui_i2v import ComfyUII2V
    from novelcomic.animate.base import ClipRequest
    from novelcomic.animate.video import clip_info
    from novelcomic.errors import BackendError
    from tests.comfy_server import ComfyStub, colour

    graph = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "toy.safetensors"}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["1", 1]}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["1", 1]}},
        "4": {"class_type": "LoadImage", "inputs": {"image": "x.png"}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 96, "batch_size": 1}},
        "6": {"class_type": "KSampler", "inputs": {"model": ["1", 0], "seed": 0, "steps": 4, "cfg": 5.0, "sampler_name": "euler",
                                                   "scheduler": "normal", "positive": ["2", 0], "negative": ["3", 0],
                                                   "latent_image": ["5", 0], "denoise": 1.0}},
        "7": {"class_type": "VAEDecode", "inputs": {"samples": ["6", 0], "vae": ["1", 2]}},
        "8": {"class_type": "SaveImage", "inputs": {"images": ["7", 0], "filename_prefix": "clip"}},
    }
    workflow = tmp_path / "i2v.json"
    workflow.write_text(json.dumps(graph), encoding="utf-8")
    still = tmp_path / "still.png"
    Image.new("RGB", (72, 128), (250, 10, 10)).save(still)
    remote.reset_breaker()
    stub = ComfyStub(ws=False).start()
    try:
        backend = ComfyUII2V(workflow=str(workflow), base_url=stub.url, bindings={"frames": "5.batch_size"}, fps=16)
        request = ClipRequest("01", "s01-01", still, "wind in the trees", "static", 1234, 2.0, 72, 128)
        result = backend.animate(request, tmp_path / "s01-01.clip.mp4")
        sent = stub.prompts[-1]["prompt"]
        assert sent["2"]["inputs"]["text"] == "wind in the trees" and sent["3"]["inputs"]["text"] == "static"
        assert sent["6"]["inputs"]["seed"] == 1234 and sent["5"]["inputs"]["batch_size"] == 33  # 2 s at 16 fps → 4k+1
        assert sent["4"]["inputs"]["image"] in stub.uploads
        info = clip_info(result.path)
        assert (info["width"], info["height"], info["frames"]) == (64, 96, 1) and result.fps == 16
        raw = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(result.path), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                             check=True, capture_output=True).stdout
        frame = np.frombuffer(raw, np.uint8).reshape(96, 64, 3).astype(int)
        assert np.abs(frame[40:90, 20:60].mean(axis=(0, 1)) - colour(1234, "wind in the trees")).max() < 12
        assert frame[2:14, 2:14, 0].mean() > 200  # the still, pasted by the server's LoadImage

        graph["1"]["inputs"]["ckpt_name"] = "missing.safetensors"
        workflow.write_text(json.dumps(graph), encoding="utf-8")
        with pytest.raises(BackendError, match=r"refused the workflow: prompt_outputs_failed_validation.*node 1 .*ckpt_name") as err:
            ComfyUII2V(workflow=str(workflow), base_url=stub.url).animate(request, tmp_path / "again.mp4")
        assert "\n" not in str(err.value)
    finally:
        stub.stop()
