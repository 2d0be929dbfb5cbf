"""``novelcomic train-character`` on a tiny random-weight SD1.5 saved inside the project.

- the LoRA is written to loras/<id>.safetensors in diffusers' layout (``load_lora_weights`` loads
  it), characters.yaml points the character at it (only two keys added: the user's comment and
  the other characters stay), and a second call trains nothing;
- the next render re-draws that character's shot, with the trigger word and the LoRA, into other
  pixels; the shots without the character keep their hash and are not drawn again; the shot hash
  follows the LoRA's content, not its path;
- a stop signal saves a checkpoint at the step reached, a real process SIGKILLed after a checkpoint
  loses only the steps since; the next call resumes there (the step counter goes on) and ends with
  the very weights an uninterrupted run makes (one CPU thread everywhere: the same sums);
- a LoRA the user set is left alone; otherwise only ``lora``/``lora_trigger`` are written;
- SDXL trains with the pooled text embeds and ``add_time_ids``;
- bad settings and characters are one-line errors naming the value.

64×64 images, rank 4, 2 inference steps. ~60 s on 2 idle cores (one CLI subprocess: ~8 s to
import torch and diffusers).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from safetensors.torch import load_file

from novelcomic import pipeline
from novelcomic.cli import cli
from novelcomic.models import (
    Character, CharactersFile, Line, Location, LocationsFile, Scene, Shot, StageSpec, StagesConfig, Storyboard,
)
from novelcomic.project import Project
from novelcomic.train import lora as train_lora
from novelcomic.train.character import lora_path, work_dir
from novelcomic.train.dataset import trigger_token
from tests import tiny_models
from tests.prefect_fixtures import REPO, subprocess_env

TRAIN = ["--steps", "8", "--rank", "4", "--resolution", "64", "--lr", "0.01", "--checkpoint-every", "4"]


@pytest.fixture(scope="module")
def sd15(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_models.ensure(tiny_models.build_sd15, tmp_path_factory.getbasetemp() / "tiny-sd15")


def make_project(root: Path, sd15: Path, name: str = "p") -> Project:
    """Three shots (a alone, nobody, b alone), characters with reference images, the model inside
    the project; characters.yaml then edited by hand (a comment), as users do."""
    from tests.fakes import make_project as base

    d = base(root, name)
    shutil.copytree(sd15, d / "models" / "sd15")
    project = Project(d)
    cfg = project.config()
    options = {"model": str(d / "models" / "sd15"), "steps": 2, "guidance_scale": 1.0}
    cfg.stages = StagesConfig(plan=StageSpec(backend="fake"), design=StageSpec(backend="fake"),
                              render=StageSpec(backend="diffusers", options=options),
                              voice=StageSpec(backend="silent"), compose=StageSpec(backend="fake"))
    cfg.resolution = (64, 64)
    cfg.lettering = False
    project.save_config(cfg)
    (d / "refs").mkdir()
    for cid, colour in (("a", (200, 40, 40)), ("b", (40, 60, 200))):
        im = Image.new("RGB", (96, 64), (220, 220, 220))
        im.paste(colour, (30, 8, 66, 60))
        im.save(d / "refs" / f"{cid}.png")
    cast = CharactersFile(characters=[
        Character(id="a", name="Ah Qing", appearance="red robe, black hair", reference_images=["refs/a.png"]),
        Character(id="b", name="Old Chen", appearance="white hair, blue coat", reference_images=["refs/b.png"]),
    ])
    project.write_generated(project.characters_yaml, cast, "characters")
    project.write_generated(project.locations_yaml, LocationsFile(locations=[Location(id="l1", name="river bank")]),
                            "locations")
    board = Storyboard(chapter="01", scenes=[Scene(id="s01", location="l1", shots=[
        Shot(id="s1", characters=["a"], lines=[Line(speaker="a", text="Hello.")]),
        Shot(id="s2", lines=[Line(text="The river flows.")]),
        Shot(id="s3", characters=["b"], lines=[Line(speaker="b", text="Long time.")]),
    ])])
    project.write_generated(project.storyboard_path("01"), board, "storyboard")
    text = project.characters_yaml.read_text(encoding="utf-8")
    project.characters_yaml.write_text(text + "# my notes: a is the heroine\n", encoding="utf-8")
    return project


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)


def hashes(project: Project) -> dict[str, str]:
    return {s: pipeline.shot_inputs_hash(project, "01", s) for s in ("s1", "s2", "s3")}


def invoke(root: Path, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, ["--projects-dir", str(root), *args])


# --------------------------------------------------------------------------- train, then render


def test_a_trained_lora_redraws_only_that_characters_shots(root: Path, sd15: Path) -> None:
    project = make_project(root, sd15)
    first = pipeline.render(project, "01")
    assert first.made == 3
    before_hash = hashes(project)
    before = {s: pixels(project.shot_image_path("01", s)) for s in ("s1", "s2", "s3")}
    versions = {s: project.store.asset("shot", f"01/{s}").version for s in ("s1", "s2", "s3")}

    r = invoke(root, "train-character", "p", "a", *TRAIN)
    assert r.exit_code == 0, r.output
    assert "a: LoRA written to loras/a.safetensors (8 steps" in r.output and "trigger nc_a" in r.output
    assert "training: step 8/8" in r.output
    out = lora_path(project, "a")
    assert out.is_file() and not work_dir(project, "a").exists()  # checkpoints go once the LoRA is written

    # diffusers' layout: load_lora_weights takes it
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(project.dir / "models" / "sd15")
    pipe.load_lora_weights(str(out), adapter_name="a")
    assert pipe.get_list_adapters() == {"unet": ["a"]}
    keys = load_file(str(out))
    assert keys and all(k.startswith("unet.") and "lora" in k for k in keys)
    assert any(v.abs().max() > 0 for k, v in keys.items() if "lora.up" in k or "lora_B" in k)  # it learnt something

    # characters.yaml: two keys added to a, the user's comment and b untouched
    text = project.characters_yaml.read_text(encoding="utf-8")
    assert "# my notes: a is the heroine" in text
    cast = project.characters().by_id()
    assert (cast["a"].lora, cast["a"].lora_trigger) == ("loras/a.safetensors", "nc_a")
    assert cast["b"].lora is None and cast["b"].lora_trigger is None

    after_hash = hashes(project)
    assert after_hash["s1"] != before_hash["s1"]
    assert {s: after_hash[s] for s in ("s2", "s3")} == {s: before_hash[s] for s in ("s2", "s3")}

    second = pipeline.render(project, "01")
    assert second.made == 1
    rec = project.store.asset("shot", "01/s1")
    meta = rec.meta_dict()
    assert meta["loras"] == [{"path": str(out), "scale": 1.0}]
    assert meta["prompt"].startswith("nc_a, ")
    assert rec.version == versions["s1"] + 1
    for s in ("s2", "s3"):
        assert project.store.asset("shot", f"01/{s}").version == versions[s]  # not drawn again
        assert np.array_equal(pixels(project.shot_image_path("01", s)), before[s])
    changed = np.abs(pixels(project.shot_image_path("01", "s1")) - before["s1"]).mean()
    assert changed > 0.5, changed

    # nothing changed: nothing trained, the file untouched
    stamp = out.stat().st_mtime_ns
    r = invoke(root, "train-character", "p", "a", *TRAIN)
    assert r.exit_code == 0, r.output
    assert "is up to date" in r.output and "already uses loras/a.safetensors" in r.output
    assert out.stat().st_mtime_ns == stamp

    # a retrained LoRA at the same path re-draws a's shot: the hash follows the content
    data = load_file(str(out))
    from safetensors.torch import save_file

    save_file({k: v * 2 for k, v in data.items()}, str(out))
    assert hashes(project)["s1"] != after_hash["s1"]
    assert {s: hashes(project)[s] for s in ("s2", "s3")} == {s: before_hash[s] for s in ("s2", "s3")}


def test_a_lora_the_user_set_is_left_alone(root: Path, sd15: Path) -> None:
    from novelcomic.train.characters_yaml import point_at_lora

    project = make_project(root, sd15)
    text = project.characters_yaml.read_text(encoding="utf-8")
    text = text.replace("  reference_images:\n  - refs/a.png\n", "  reference_images:\n  - refs/a.png\n  lora: mine.safetensors\n", 1)
    project.characters_yaml.write_text(text, encoding="utf-8")
    assert project.characters().by_id()["a"].lora == "mine.safetensors"
    change = point_at_lora(project, "a", "loras/a.safetensors", "nc_a")
    assert change.status == "kept"
    assert "characters[0].lora is 'mine.safetensors' (yours) and was left alone" in change.message
    assert project.characters_yaml.read_text(encoding="utf-8") == text
    # b has no LoRA: only its two keys are written, in place, after its last key
    change = point_at_lora(project, "b", "loras/b.safetensors", "nc_b")
    assert change.status == "written"
    new = project.characters_yaml.read_text(encoding="utf-8")
    assert new.replace("  lora: loras/b.safetensors\n  lora_trigger: nc_b\n", "", 1) == text
    assert point_at_lora(project, "b", "loras/b.safetensors", "nc_b").status == "unchanged"


def test_bad_input_messages(root: Path, sd15: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = make_project(root, sd15)
    from novelcomic.cli import main

    for args, message in [
        (["p", "zz"], "CHARACTER: no character 'zz' in characters.yaml (characters: a, b)"),
        (["p", "a", "--rank", "0"], "--rank: rank 0 must be a whole number from 1 to 256"),
        (["p", "a", "--resolution", "100"], "--resolution: resolution 100 must be a multiple of 8 (the VAE's scale)"),
        (["p", "a", "--lr", "-1"], "--lr: learning rate -1.0 must be a number above 0 and at most 1"),
    ]:
        with pytest.raises(SystemExit):
            main(["--projects-dir", str(root), "train-character", *args])
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [f"error: {message}"], err
    cfg = project.config()
    cfg.stages.render = StageSpec(backend="animatic")
    project.save_config(cfg)
    with pytest.raises(SystemExit):
        main(["--projects-dir", str(root), "train-character", "p", "a"])
    assert "stages.render.backend is 'animatic'" in capsys.readouterr().err
    assert trigger_token("孙悟空").startswith("nc_") and trigger_token("孙悟空").isascii()


# --------------------------------------------------------------------------- stopped and killed


def _cli(root: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "novelcomic", "--projects-dir", str(root), "train-character", *args]


def _checkpoint_step(path: Path) -> int:
    return int(torch.load(path, map_location="cpu", weights_only=True)["step"])


def _wait_for(path: Path, proc: subprocess.Popen, min_step: int = 1, timeout: float = 90) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file():
            try:
                step = _checkpoint_step(path)
            except Exception:  # noqa: BLE001 - renamed into place: never half-written, but be patient
                step = 0
            if step >= min_step:
                return step
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.01)
    raise AssertionError(f"no checkpoint at {path}")


def test_stopped_and_killed_runs_resume_from_their_checkpoint(root: Path, sd15: Path) -> None:
    from novelcomic import procs
    from novelcomic.train.character import train_character

    project = make_project(root, sd15)
    steps, every, stop_at = 40, 10, 12
    args = ["p", "a", "--steps", str(steps), "--rank", "4", "--resolution", "64", "--lr", "0.01",
            "--checkpoint-every", str(every)]
    ckpt = work_dir(project, "a") / train_lora.CHECKPOINT
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the subprocess's count too: the same sums, so the same weights below
    try:
        # a stop signal (procs.STOP, set by SIGTERM/Ctrl-C) between steps: a checkpoint at the step reached
        def stop(p: train_lora.Progress) -> None:
            if p.step == stop_at:
                procs.STOP.set()

        with pytest.raises(procs.Interrupted) as exc:
            train_character(project, "a", steps=steps, rank=4, resolution=64, lr=0.01, checkpoint_every=every,
                            progress=stop)
        procs.reset()
        assert exc.value.summary == f"training checkpoint at step {stop_at} of {steps} kept"
        assert _checkpoint_step(ckpt) == stop_at and not lora_path(project, "a").exists()

        # a real process killed (SIGKILL) after its next checkpoint: only the steps since are lost
        env = subprocess_env({"OMP_NUM_THREADS": "1"})
        proc = subprocess.Popen(_cli(root, *args), env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        killed_at = _wait_for(ckpt, proc, stop_at + 1)
        proc.kill()
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL
        assert f"resuming from the checkpoint at step {stop_at} of {steps}" in err
        resume_at = _checkpoint_step(ckpt)
        assert stop_at < killed_at <= resume_at < steps and not lora_path(project, "a").exists()

        r = invoke(root, "train-character", *args)
        assert r.exit_code == 0, r.output
        assert f"resuming from the checkpoint at step {resume_at} of {steps}" in r.output
        assert f"({steps} steps, resumed from step {resume_at}" in r.output
        meta = project.store.asset("lora", "a").meta_dict()
        assert (meta["steps"], meta["resumed_from"]) == (steps, resume_at)
        assert not ckpt.exists()

        # the same weights as a run never interrupted
        from novelcomic.train import dataset

        ch = project.characters().by_id()["a"]
        s = train_lora.settings_for("sd15", steps=steps, rank=4, resolution=64, lr=0.01, checkpoint_every=1000)
        job = train_lora.TrainJob(str(project.dir / "models" / "sd15"), "sd15", "cpu",
                                  tuple(dataset.make_views(dataset.source_images(project, ch), 64)),
                                  dataset.caption(ch, "nc_a"), s, root / "w", root / "whole.safetensors", "x")
        whole = load_file(str(train_lora.train(job).path))
    finally:
        torch.set_num_threads(threads)
        procs.reset()
    resumed = load_file(str(lora_path(project, "a")))
    assert whole.keys() == resumed.keys()
    for k in whole:
        assert torch.allclose(whole[k], resumed[k], atol=1e-6), k


# --------------------------------------------------------------------------- SDXL


def test_sdxl_trains_with_pooled_text_and_time_ids_and_its_lora_loads(tmp_path_factory: pytest.TempPathFactory,
                                                                    tmp_path: Path) -> None:
    from diffusers import StableDiffusionXLPipeline

    from novelcomic.train import dataset

    model = tiny_models.ensure(tiny_models.build_sdxl, tmp_path_factory.getbasetemp() / "tiny-sdxl")
    sheet = Image.new("RGB", (64, 96), (220, 220, 220))
    sheet.paste((40, 160, 40), (8, 20, 56, 90))
    sheet.save(tmp_path / "sheet.png")
    views = dataset.make_views([tmp_path / "sheet.png"], 64)
    assert len(views) == 4 and all(v.image.size == (64, 64) for v in views)  # padded, 2 windows, centre
    settings = train_lora.settings_for("sdxl", steps=3, rank=4, resolution=64)
    assert (settings.lr, train_lora.DEFAULTS["sdxl"].resolution) == (1e-4, 1024)
    job = train_lora.TrainJob(str(model), "sdxl", "cpu", tuple(views), "nc_g, green cloak", settings, tmp_path / "w",
                              tmp_path / "g.safetensors", "x")
    seen: list[dict] = []
    from diffusers import UNet2DConditionModel

    original = UNet2DConditionModel.forward

    def spy(self, sample, timestep, encoder_hidden_states, *a, added_cond_kwargs=None, **kw):  # type: ignore[no-untyped-def]
        seen.append({k: tuple(v.shape) for k, v in (added_cond_kwargs or {}).items()})
        return original(self, sample, timestep, encoder_hidden_states, *a, added_cond_kwargs=added_cond_kwargs, **kw)

    UNet2DConditionModel.forward = spy  # type: ignore[method-assign]
    try:
        result = train_lora.train(job)
    finally:
        UNet2DConditionModel.forward = original  # type: ignore[method-assign]
    assert seen == [{"text_embeds": (1, 32), "time_ids": (1, 6)}] * 3
    pipe = StableDiffusionXLPipeline.from_pretrained(model)
    pipe.load_lora_weights(str(result.path), adapter_name="g")
    assert pipe.get_list_adapters() == {"unet": ["g"]}


# --------------------------------------------------------------------------- the sheet it was trained on


def test_pointing_a_character_at_its_lora_does_not_redraw_its_sheet(root: Path, fake_backends) -> None:  # type: ignore[no-untyped-def]
    from novelcomic.train.characters_yaml import point_at_lora
    from tests.fakes import make_project as base

    project = Project(base(root, "sheets"))
    pipeline.plan(project)
    assert pipeline.design(project).made == 2
    (project.dir / "loras").mkdir()
    (project.dir / "loras" / "a.safetensors").write_bytes(b"weights")
    assert point_at_lora(project, "a", "loras/a.safetensors", "nc_a").status == "written"
    assert project.characters().by_id()["a"].lora_trigger == "nc_a"
    assert pipeline.design(project).made == 0  # the sheet is drawn without the LoRA: still up to date
