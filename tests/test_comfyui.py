"""The ``comfyui`` image backend against a ComfyUI server on 127.0.0.1 that follows the published
protocol (:mod:`tests.comfy_server`): bindings by id and by title, uploads deduplicated, the
/object_info check at validate, node and execution errors, websocket and /history, Ctrl-C,
the auth header, edit-shot through an edit workflow, and a server killed in the middle of a run."""

from __future__ import annotations

import copy
import io
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from PIL import Image

from novelcomic import procs, remote
from novelcomic.errors import BackendError, NovelcomicError
from novelcomic.models import Character, Scene, Shot
from novelcomic.registry import image_backends
from novelcomic.render import comfyui
from novelcomic.render.base import CharacterRef, ShotRequest
from tests.comfy_server import TILE, ComfyStub, colour, free_port

REPO = Path(__file__).resolve().parents[1]

# A text-to-image workflow as ComfyUI exports it (API format), with two reference LoadImage nodes.
GRAPH = {
    "3": {"class_type": "KSampler", "inputs": {"seed": 1, "steps": 20, "cfg": 7.0, "sampler_name": "euler",
                                               "scheduler": "normal", "denoise": 1.0, "model": ["4", 0],
                                               "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]},
          "_meta": {"title": "KSampler"}},
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "toy.safetensors"}},
    "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 512, "batch_size": 1}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "old", "clip": ["4", 1]}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["4", 1]}},
    "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
    "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "nc", "images": ["8", 0]}},
    "12": {"class_type": "LoadImage", "inputs": {"image": "example.png"}},
    "13": {"class_type": "LoadImage", "inputs": {"image": "example.png"}},
}
BIND = {"prompt": "6.text", "negative": "7.text", "seed": "3.seed", "width": ["5.width"], "height": ["5.height"],
        "references": ["12.image", "13.image"], "output": "9"}
TITLES = {"6": "nc:prompt", "7": "nc:negative", "3": "nc:seed", "5": "nc:size", "12": "nc:ref1", "13": "nc:ref2",
          "9": "nc:output"}
# inpaint: the shot as image, the mask (white: repaint) through LoadImageMask
EDIT = {
    "3": GRAPH["3"], "4": GRAPH["4"], "6": GRAPH["6"], "7": GRAPH["7"], "8": GRAPH["8"], "9": GRAPH["9"],
    "5": {"class_type": "VAEEncode", "inputs": {"pixels": ["20", 0], "vae": ["4", 2]}},
    "20": {"class_type": "LoadImage", "inputs": {"image": "example.png"}, "_meta": {"title": "nc:image"}},
    "21": {"class_type": "LoadImageMask", "inputs": {"image": "example.png", "channel": "red"}, "_meta": {"title": "nc:mask"}},
}
EDIT = {k: {**v, "_meta": {"title": {"6": "nc:prompt", "3": "nc:seed", "9": "nc:output"}.get(k, (v.get("_meta") or {}).get("title", ""))}}
        for k, v in EDIT.items()}
NO_REFS = {k: v for k, v in GRAPH.items() if k not in ("12", "13")}


def titled(graph: dict) -> dict:
    g = copy.deepcopy(graph)
    for k, t in TITLES.items():
        if k in g:
            g[k]["_meta"] = {"title": t}
    return g


@pytest.fixture(autouse=True)
def _fresh() -> None:  # type: ignore[misc]
    comfyui.forget_servers()
    remote.reset_breaker()
    yield
    comfyui.forget_servers()
    procs.reset()


@pytest.fixture
def server():  # type: ignore[no-untyped-def]
    stub = ComfyStub().start()
    yield stub
    stub.stop()


def write(tmp_path: Path, name: str, graph: dict) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(graph), encoding="utf-8")
    return str(path)


def backend(url: str, workflow: str, **options: object) -> comfyui.ComfyUIBackend:
    return image_backends.create("comfyui", {"url": url, "workflow": workflow, "retries": 1, "backoff": 0.01,
                                             "poll_interval": 0.05, **options})


def png(path: Path, rgb: tuple[int, int, int]) -> Path:
    Image.new("RGB", (24, 24), rgb).save(path)
    return path


def request(refs: list[list[Path]], prompt: str = "a fox by the river", seed: int = 7, w: int = 320, h: int = 180) -> ShotRequest:
    chars = [Character(id=f"c{i}", name=f"C{i}") for i in range(len(refs))]
    shot = Shot(id="s01-01", characters=[c.id for c in chars])
    return ShotRequest(chapter="01", scene=Scene(id="s01", shots=[shot]), shot=shot,
                       characters=[CharacterRef(c, r) for c, r in zip(chars, refs)], location=None, props=[],
                       style=[], width=w, height=h, seed=seed, prompt=prompt, negative_prompt="blurry")


def tiles(image: Image.Image, n: int) -> list[tuple[int, int, int]]:
    return [image.getpixel((i * TILE + TILE // 2, TILE // 2)) for i in range(n)]


# --------------------------------------------------------------------------- drawing


def test_bindings_by_id_write_prompt_seed_size_and_references_in_order(server: ComfyStub, tmp_path: Path) -> None:
    a, b = png(tmp_path / "a.png", (250, 10, 10)), png(tmp_path / "b.png", (10, 250, 10))
    be = backend(server.url, write(tmp_path, "wf.json", GRAPH), bind=BIND)
    steps: list[comfyui.Progress] = []
    be.on_progress = steps.append
    result = be.render_shot(request([[a], [b]]))
    sent = server.prompts[0]
    graph = sent["prompt"]
    assert sent["client_id"] and graph["6"]["inputs"]["text"] == "a fox by the river"
    assert graph["7"]["inputs"]["text"] == "blurry" and graph["3"]["inputs"]["seed"] == 7
    assert (graph["5"]["inputs"]["width"], graph["5"]["inputs"]["height"]) == (320, 180)
    assert graph["6"]["inputs"]["clip"] == ["4", 1]  # links untouched
    # the image the server drew: its colour from seed and prompt, the references in slot order
    assert result.image.size == (320, 180)
    assert result.image.getpixel((200, 100)) == colour(7, "a fox by the river")
    assert tiles(result.image, 2) == [(250, 10, 10), (10, 250, 10)]
    assert [p.value for p in steps] == [1, 2, 3, 4] and be.calls[0].via == "ws"
    assert result.meta["prompt_id"] == be.calls[0].prompt_id and result.meta["backend"] == "comfyui"


def test_bindings_by_title_fill_free_slots_with_the_first_reference_or_a_neutral_image(server: ComfyStub, tmp_path: Path) -> None:
    a = png(tmp_path / "a.png", (250, 10, 10))
    be = backend(server.url, write(tmp_path, "wf.json", titled(GRAPH)))
    one = be.render_shot(request([[a]], prompt="one", seed=3))
    assert tiles(one.image, 2) == [(250, 10, 10), (250, 10, 10)]  # the second slot takes the first reference
    assert one.image.getpixel((200, 100)) == colour(3, "one")
    none = be.render_shot(request([], prompt="empty"))
    assert tiles(none.image, 2) == [(128, 128, 128), (128, 128, 128)]  # neutral
    # a workflow for shots without characters: no LoadImage, nothing uploaded
    be2 = backend(server.url, write(tmp_path, "wf.json", titled(GRAPH)), workflow_no_refs=write(tmp_path, "nr.json", titled(NO_REFS)))
    before = len(server.uploads)
    be2.render_shot(request([], prompt="scenery"))
    assert "12" not in server.prompts[-1]["prompt"] and len(server.uploads) == before


def test_uploads_are_deduplicated_across_shots_and_runs(server: ComfyStub, tmp_path: Path) -> None:
    a = png(tmp_path / "a.png", (250, 10, 10))
    b = png(tmp_path / "b.png", (10, 10, 250))
    wf = write(tmp_path, "wf.json", GRAPH)
    be = backend(server.url, wf, bind=BIND)
    be.render_shot(request([[a]]))
    be.render_shot(request([[a], [b]], seed=9))
    assert len(server.uploads) == 2 and be.uploads == 2  # a once, b once
    assert all(n.startswith("nc-") and n.endswith(".png") for n in server.uploads)
    # a second run (a new process knows nothing): the names listed by /object_info are reused
    comfyui.forget_servers()
    be2 = backend(server.url, wf, bind=BIND)
    result = be2.render_shot(request([[b], [a]], seed=11))
    assert len(server.uploads) == 2 and be2.uploads == 0
    assert tiles(result.image, 2) == [(10, 10, 250), (250, 10, 10)]


def test_websocket_gone_falls_back_to_polling_history(tmp_path: Path) -> None:
    stub = ComfyStub(ws=False).start()
    try:
        result = backend(stub.url, write(tmp_path, "wf.json", NO_REFS), bind={k: v for k, v in BIND.items() if k != "references"})
        image = result.render_shot(request([], prompt="poll", seed=5)).image
        assert result.calls[0].via == "poll" and image.getpixel((100, 100)) == colour(5, "poll")
    finally:
        stub.stop()


# --------------------------------------------------------------------------- errors


def test_node_error_is_one_line_naming_node_class_and_input(server: ComfyStub, tmp_path: Path) -> None:
    bad = copy.deepcopy(GRAPH)
    bad["3"]["inputs"]["sampler_name"] = "bogus"
    wf = write(tmp_path, "wf.json", bad)
    with pytest.raises(NovelcomicError, match=r"node 3 \(KSampler\) input sampler_name: the value 'bogus' is not on the ComfyUI server"):
        backend(server.url, wf, bind=BIND)  # caught on creation, by /object_info
    be = backend(server.url, wf, bind=BIND, check_server=False)
    with pytest.raises(BackendError) as info:
        be.render_shot(request([]))
    message = str(info.value)
    assert "\n" not in message and server.url in message
    assert "node 3 (KSampler) input sampler_name: Value not in list" in message and "bogus" in message


def test_unknown_node_class_names_the_custom_node_pack(server: ComfyStub, tmp_path: Path) -> None:
    graph = copy.deepcopy(GRAPH)
    graph["14"] = {"class_type": "IPAdapterAdvanced", "inputs": {"model": ["4", 0], "image": ["12", 0], "weight": 0.7}}
    wf = write(tmp_path, "wf.json", graph)
    with pytest.raises(NovelcomicError) as checked:  # caught on creation, by /object_info
        backend(server.url, wf, bind=BIND)
    assert checked.value.field == "stages.render.options.workflow"
    assert "node 14 uses IPAdapterAdvanced" in str(checked.value) and "ComfyUI_IPAdapter_plus" in str(checked.value)
    # unchecked, the server's own refusal says the same
    be = backend(server.url, wf, bind=BIND, check_server=False)
    with pytest.raises(BackendError, match=r"node 14 uses IPAdapterAdvanced, which the server does not have: .*ComfyUI_IPAdapter_plus"):
        be.render_shot(request([]))


def test_execution_error_on_the_websocket_names_the_node(tmp_path: Path) -> None:
    stub = ComfyStub(fail_execution=True).start()
    try:
        be = backend(stub.url, write(tmp_path, "wf.json", GRAPH), bind=BIND)
        with pytest.raises(BackendError, match=r"node 3 \(KSampler\) failed: torch.OutOfMemoryError: CUDA out of memory"):
            be.render_shot(request([]))
    finally:
        stub.stop()


def test_object_info_checks_bound_inputs_and_their_types(server: ComfyStub, tmp_path: Path) -> None:
    wf = write(tmp_path, "wf.json", GRAPH)
    cases = [
        ({**BIND, "seed": "3.sed"}, "stages.render.options.bind.seed", "KSampler has no input 'sed'"),
        ({**BIND, "seed": "6.text"}, "stages.render.options.bind.seed", "is a STRING input of CLIPTextEncode; the seed is INT"),
        ({**BIND, "references": ["12.image", "3.seed"]}, "stages.render.options.bind.references.1", "not a file input of a LoadImage"),
        ({**BIND, "output": "8"}, "stages.render.options.bind.output", "saves no image"),
        ({**BIND, "prompt": "66.text"}, "stages.render.options.bind.prompt", "has no node 66"),
        ({**BIND, "prompt": "6.clip"}, "stages.render.options.bind.prompt", "is connected to node 4"),
    ]
    for bind, field, words in cases:
        with pytest.raises(NovelcomicError) as info:
            backend(server.url, wf, bind=bind)
        assert info.value.field == field and words in info.value.message, (bind, str(info.value))


def test_validate_refuses_a_bad_binding_with_file_and_line(server: ComfyStub, root: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from novelcomic.cli import cli
    from tests.prefect_fixtures import tiny_project

    d = tiny_project(root)
    (d / "workflows").mkdir()
    (d / "workflows" / "shot.json").write_text(json.dumps(GRAPH), encoding="utf-8")
    data = yaml.safe_load((d / "project.yaml").read_text(encoding="utf-8"))
    data["stages"]["render"] = {"backend": "comfyui", "options": {"url": server.url, "workflow": "workflows/shot.json",
                                                                  "bind": {**BIND, "seed": "3.sed"}}}
    (d / "project.yaml").write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    line = next(i for i, t in enumerate((d / "project.yaml").read_text(encoding="utf-8").splitlines(), 1) if "3.sed" in t)
    result = CliRunner().invoke(cli, ["--projects-dir", str(root), "validate", "tiny"])
    assert result.exit_code != 0
    message = str(result.exception)
    assert message.startswith(f"{d / 'project.yaml'}:{line}: stages.render.options.bind.seed: 3.sed (seed): KSampler has no input 'sed'"), message
    # fixed: validate passes, the relative workflow path read from the project folder
    data["stages"]["render"]["options"]["bind"]["seed"] = "3.seed"
    (d / "project.yaml").write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    result = CliRunner().invoke(cli, ["--projects-dir", str(root), "validate", "tiny"])
    assert result.exit_code == 0, result.output + str(result.exception)
    assert "render=comfyui" in result.output


def test_auth_token_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stub = ComfyStub(token="s3cret").start()
    try:
        wf = write(tmp_path, "wf.json", GRAPH)
        with pytest.raises(NovelcomicError, match="the environment variable COMFY_TOKEN is not set") as info:
            backend(stub.url, wf, bind=BIND, auth_env="COMFY_TOKEN")
        assert info.value.field == "stages.render.options.auth_env"
        with pytest.raises(NovelcomicError, match="key does not belong in project.yaml"):
            backend(stub.url, wf, bind=BIND, token="s3cret")
        monkeypatch.setenv("COMFY_TOKEN", "s3cret")
        a = png(tmp_path / "a.png", (250, 10, 10))
        result = backend(stub.url, wf, bind=BIND, auth_env="COMFY_TOKEN").render_shot(request([[a]]))
        assert tiles(result.image, 1) == [(250, 10, 10)]
        assert set(stub.auth_seen) == {"Bearer s3cret"} and "GET /ws" in stub.requests
        monkeypatch.setenv("COMFY_TOKEN", "wrong")
        comfyui.forget_servers()
        with pytest.raises(BackendError, match="refused the request \\(HTTP 401\\): check the key in COMFY_TOKEN"):
            backend(stub.url, wf, bind=BIND, auth_env="COMFY_TOKEN")
    finally:
        stub.stop()


# --------------------------------------------------------------------------- stopping


def test_stop_signal_interrupts_the_running_prompt_and_deletes_the_waiting_one(tmp_path: Path) -> None:
    stub = ComfyStub(delay=0.3, pause_between=1.0).start()
    try:
        wf = write(tmp_path, "wf.json", NO_REFS)
        bind = {k: v for k, v in BIND.items() if k != "references"}
        first, second = backend(stub.url, wf, bind=bind, concurrency=2), backend(stub.url, wf, bind=bind, concurrency=2)
        errors: list[BaseException] = []

        def draw(be: comfyui.ComfyUIBackend, seed: int) -> None:
            try:
                be.render_shot(request([], seed=seed))
            except BaseException as exc:  # noqa: BLE001 - the test looks at it
                errors.append(exc)

        threads = [threading.Thread(target=draw, args=(be, s)) for be, s in ((first, 1), (second, 2))]
        for t in threads:
            t.start()
            time.sleep(0.1)
        deadline = time.monotonic() + 5
        while len(stub.prompts) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)
        procs.STOP.set()  # what SIGINT/SIGTERM does (procs.on_signal)
        for t in threads:
            t.join(10)
        assert len(errors) == 2 and all(isinstance(e, procs.Interrupted) for e in errors)
        ids = [be.cancelled[0] for be in (first, second)]
        assert {"prompt_id": ids[0]} in stub.interrupts  # the running one, by its id
        assert ids[1] in stub.deleted  # the waiting one, off the queue
        deadline = time.monotonic() + 3
        while ids[0] not in stub.history and time.monotonic() < deadline:
            time.sleep(0.02)
        assert stub.history[ids[0]]["status"]["status_str"] == "error"  # it stopped on the server
    finally:
        procs.reset()
        stub.stop()


# --------------------------------------------------------------------------- editing


def test_edit_shot_inpaints_through_the_edit_workflow(server: ComfyStub, root: Path) -> None:
    from novelcomic import pipeline
    from novelcomic.project import Project
    from novelcomic.render.edit import edit_shot
    from tests.prefect_fixtures import tiny_project

    d = tiny_project(root, shots=2)
    (d / "workflows").mkdir()
    (d / "workflows" / "shot.json").write_text(json.dumps(titled(GRAPH)), encoding="utf-8")
    (d / "workflows" / "edit.json").write_text(json.dumps(EDIT), encoding="utf-8")
    p = Project(d)
    cfg = p.config()
    cfg.lettering = False
    cfg.stages.render.backend = "comfyui"
    cfg.stages.render.options = {"url": server.url, "workflow": "workflows/shot.json", "edit_workflow": "workflows/edit.json",
                                 "retries": 1, "backoff": 0.01}
    p.save_config(cfg)
    pipeline.produce(p, stages=["design", "render"])
    before = Image.open(d / "render" / "01" / "s01-01.png").convert("RGB")
    assert before.size == (96, 160)
    mask = Image.new("L", before.size, 0)
    mask.paste(255, (48, 80, 96, 160))  # repaint the lower right quarter
    mask_path = d / "mask.png"
    mask.save(mask_path)
    result = edit_shot(p, "01", "s01-01", prompt="a red lantern", mask=str(mask_path))
    after = Image.open(result.path).convert("RGB")
    sent = server.prompts[-1]["prompt"]
    assert sent["6"]["inputs"]["text"] == "a red lantern" and sent["20"]["inputs"]["image"].startswith("nc-")
    assert after.getpixel((80, 140)) == colour(sent["3"]["inputs"]["seed"], "a red lantern")  # painted
    assert after.getpixel((10, 40)) == before.getpixel((10, 40))  # kept
    assert result.kind == "inpaint"
    p.close()


# --------------------------------------------------------------------------- a whole run, server killed


def _cli(root: Path, *args: str) -> subprocess.CompletedProcess:  # noqa: D103
    env = {**os.environ, "NOVELCOMIC_PROJECTS_DIR": str(root), "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "novelcomic", *args], capture_output=True, text=True, env=env,
                          timeout=120, cwd=str(root.parent))


def _server(port: int, *args: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "tests.comfy_server", "--port", str(port), *args], cwd=str(REPO),
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None and proc.stdout.readline().startswith("ready")
    return proc


def _stats(port: int) -> dict:
    import httpx

    return httpx.get(f"http://127.0.0.1:{port}/_test/stats").json()


def test_server_killed_mid_render_fails_in_one_line_and_the_next_run_redoes_only_the_missing_shots(root: Path) -> None:
    from tests.prefect_fixtures import tiny_project

    port = free_port()
    d = tiny_project(root)
    (d / "workflows").mkdir()
    (d / "workflows" / "shot.json").write_text(json.dumps(titled(GRAPH)), encoding="utf-8")
    data = yaml.safe_load((d / "project.yaml").read_text(encoding="utf-8"))
    data["stages"]["render"] = {"backend": "comfyui", "options": {
        "url": f"http://127.0.0.1:{port}", "workflow": "workflows/shot.json", "retries": 1, "backoff": 0.05}}
    (d / "project.yaml").write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    server = _server(port, "--die-after", "2", "--delay", "0.05")  # exits while drawing the third shot
    try:
        first = _cli(root, "run", "tiny", "--stage", "design", "--stage", "render", "--no-prefect")
    finally:
        server.wait(10)
    errors = [ln for ln in first.stderr.splitlines() if ln.startswith("error:")]
    assert first.returncode != 0 and len(errors) == 1, first.stderr
    assert f"http://127.0.0.1:{port}" in errors[0] and "ComfyUI server" in errors[0]
    rendered = sorted(p.name for p in (d / "render" / "01").glob("s01-*.png"))
    assert rendered == ["s01-01.png", "s01-02.png"]
    server = _server(port)
    try:
        second = _cli(root, "run", "tiny", "--stage", "design", "--stage", "render", "--no-prefect")
        assert second.returncode == 0, second.stderr
        stats = _stats(port)
    finally:
        server.kill()
        server.wait(10)
    assert stats["prompts"] == 2  # only the two shots that were missing
    assert sorted(p.name for p in (d / "render" / "01").glob("s01-*.png")) == [f"s01-0{i}.png" for i in range(1, 5)]
    shot3 = Image.open(d / "render" / "01" / "s01-03.png").convert("RGB")
    # the restarted server's input folder is empty: 阿青's sheet (shot 3) and the neutral image (shot 4), once each
    assert shot3.size == (96, 160) and len(stats["uploads"]) == 2


def test_editing_the_workflow_file_redraws_its_shots_and_only_a_project_file_is_read(tmp_path: Path) -> None:
    """The shot hash covers the workflow's contents (not just its name); a workflow outside the
    project is refused before anything is read."""
    from novelcomic import pipeline
    from novelcomic.errors import NovelcomicError
    from novelcomic.project import Project
    from tests.prefect_fixtures import tiny_project

    p = Project(tiny_project(tmp_path / "projects", shots=1))
    (p.dir / "workflows").mkdir()
    wf = p.dir / "workflows" / "shot.json"
    wf.write_text('{"1": {"class_type": "SaveImage", "inputs": {}}}')
    cfg = p.config()
    cfg.stages.render.backend = "comfyui"
    cfg.stages.render.options = {"url": "http://127.0.0.1:9", "workflow": "workflows/shot.json"}
    p.save_config(cfg)
    before = pipeline.shot_inputs_hash(p, "01", "s01-01")
    wf.write_text('{"1": {"class_type": "SaveImage", "inputs": {"filename_prefix": "x"}}}')
    assert pipeline.shot_inputs_hash(p, "01", "s01-01") != before
    assert pipeline.stage_options(p, cfg.stages.render.options)["workflow"] == str(wf.resolve())
    with pytest.raises(NovelcomicError, match="path outside the project"):
        pipeline.stage_options(p, {"workflow": "../elsewhere.json"})
    p.close()
