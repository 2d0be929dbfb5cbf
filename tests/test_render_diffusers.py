"""The diffusers backend on tiny random models (tests/tiny_models.py) loaded from saved directories.

Every test goes through the backend's real loading code (model_index.json → family → pipeline
class → ``from_pretrained`` / ``from_pipe`` / ``load_ip_adapter``). What reaches the pipeline is
checked by wrapping the pipeline classes' ``__call__`` (the call still runs). 2 steps, 64-px images.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from novelcomic.errors import BackendError, NovelcomicError
from novelcomic.models import Character, Location, Scene, Shot, StageSpec
from novelcomic.render import loading
from novelcomic.render.base import CharacterRef, SheetRequest, ShotRequest
from novelcomic.render.diffusers_backend import DiffusersBackend
from tests import tiny_models

W, H = 64, 96


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny models, built once per session (shared with the contract suite through the same dirs)."""
    base = tmp_path_factory.getbasetemp()
    sd15 = tiny_models.ensure(tiny_models.build_sd15, base / "tiny-sd15")
    refs = base / "refs"
    refs.mkdir(exist_ok=True)
    for name, colour in (("red", (220, 40, 40)), ("blue", (40, 60, 220)), ("green", (40, 200, 80))):
        Image.new("RGB", (96, 96), colour).save(refs / f"{name}.png")
    return {
        "sd15": sd15,
        "sdxl": tiny_models.ensure(tiny_models.build_sdxl, base / "tiny-sdxl"),
        "kolors": tiny_models.ensure(tiny_models.build_kolors, base / "tiny-kolors"),
        "ipa": tiny_models.ensure_ip_adapter(base / "tiny-ipa-sd15", sd15),
        "refs": refs,
    }


def ipa_options(tiny: dict[str, Path]) -> dict[str, Any]:
    return {"path": str(tiny["ipa"]), "weight_name": "ip-adapter.safetensors"}


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    """(pipeline class name, keyword arguments) of every pipeline call made during the test."""
    import diffusers

    record: list[tuple[str, dict[str, Any]]] = []
    for cls in (diffusers.StableDiffusionPipeline, diffusers.StableDiffusionImg2ImgPipeline,
                diffusers.StableDiffusionInpaintPipeline):
        original = cls.__call__

        def spy(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            record.append((type(self).__name__, kwargs))
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(cls, "__call__", spy)
    return record


def char(cid: str, **kw: Any) -> Character:
    return Character(id=cid, name=cid.upper(), appearance=f"{cid} wears a robe", **kw)


def shot_request(refs: list[tuple[Character, list[Path]]], seed: int = 7, w: int = W, h: int = H, **shot: Any) -> ShotRequest:
    s = Shot(id="s1", characters=[c.id for c, _ in refs], **shot)
    return ShotRequest(
        chapter="01", scene=Scene(id="sc", location="l1", mood="tense"), shot=s,
        characters=[CharacterRef(c, list(paths)) for c, paths in refs],
        location=Location(id="l1", name="river bank", time_of_day="dusk"), props=[], style=["国漫"],
        width=w, height=h, seed=seed,
    )


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


# --------------------------------------------------------------------------- sheets


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_sheet_has_the_size_and_records_candidates(tiny: dict[str, Path], family: str) -> None:
    backend = DiffusersBackend(str(tiny[family]), steps=2, sheet_candidates=2, batch_size=2)
    result = backend.design_character(SheetRequest(char("a"), ["国漫"], 96, 64, seed=11))
    assert result.image.size == (96, 64) and result.image.mode == "RGB"
    assert result.meta["family"] == family and result.meta["mode"] == "text2img"
    assert result.meta["batch"] == 2  # both candidates in one call
    assert "turnaround" in result.meta["prompt"] and "a wears a robe" in result.meta["prompt"]
    assert [c["seed"] for c in result.meta["candidates"]] == [11, 12]
    assert result.seed == 11 and result.meta["candidates"][0]["chosen"]


def test_a_scorer_picks_the_sheet(tiny: dict[str, Path]) -> None:
    def brightest(image: Image.Image, request: SheetRequest) -> float:
        return float(np.asarray(image).mean())

    backend = DiffusersBackend(str(tiny["sd15"]), steps=2, sheet_candidates=3, scorer=brightest)
    result = backend.design_character(SheetRequest(char("a"), [], 64, 64, seed=0))
    scores = [c["score"] for c in result.meta["candidates"]]
    best = int(np.argmax(scores))
    assert result.seed == best and result.meta["candidates"][best]["chosen"]
    assert abs(brightest(result.image, None) - scores[best]) < 1e-6  # type: ignore[arg-type]


# --------------------------------------------------------------------------- shots


def test_one_character_shot_is_conditioned_on_its_reference(tiny: dict[str, Path], calls: list) -> None:
    backend = DiffusersBackend(str(tiny["sd15"]), steps=2, ip_adapter=ipa_options(tiny))
    red = tiny["refs"] / "red.png"
    result = backend.render_shot(shot_request([(char("a"), [red])], adapter_scale=0.9))
    assert result.image.size == (W, H)
    assert result.meta["mode"] == "ip_adapter" and result.meta["adapter_scale"] == 0.9
    assert result.meta["references"] == [str(red)]
    (name, kwargs), = calls
    assert name == "StableDiffusionPipeline"
    assert np.asarray(kwargs["ip_adapter_image"]).mean(axis=(0, 1)).round().tolist() == [220, 40, 40]
    assert "cross_attention_kwargs" not in kwargs
    assert result.regions == {"a": (0, 0, W, H)}


def test_ip_adapter_paths_may_start_with_home_and_a_missing_one_is_named(
    tiny: dict[str, Path], calls: list, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's `ip_adapter: {path: ~/models/IP-Adapter}` works (it was sent to the hub as is)."""
    home = tmp_path / "home"
    (home / "models").mkdir(parents=True)
    (home / "models" / "IP-Adapter").symlink_to(tiny["ipa"], target_is_directory=True)
    monkeypatch.setenv("HOME", str(home))
    options = {"path": "~/models/IP-Adapter", "weight_name": "ip-adapter.safetensors"}
    backend = DiffusersBackend(str(tiny["sd15"]), steps=2, ip_adapter=options)
    result = backend.render_shot(shot_request([(char("a"), [tiny["refs"] / "red.png"])]))
    assert result.meta["mode"] == "ip_adapter"
    with pytest.raises(NovelcomicError, match=r"stages\.render\.options\.ip_adapter\.path: ip_adapter path '~/models/nope'"):
        DiffusersBackend(str(tiny["sd15"]), steps=2, ip_adapter={**options, "path": "~/models/nope"})


def test_two_characters_each_get_their_reference_in_their_region(tiny: dict[str, Path], calls: list) -> None:
    backend = DiffusersBackend(str(tiny["sd15"]), steps=2, ip_adapter=ipa_options(tiny))
    red, blue = tiny["refs"] / "red.png", tiny["refs"] / "blue.png"
    result = backend.render_shot(shot_request([(char("a"), [red]), (char("b"), [blue])]))
    assert result.regions == {"a": (0, 0, W // 2, H), "b": (W // 2, 0, W, H)}
    assert result.meta["mode"] == "ip_adapter" and result.meta["ip_masks"] == 2
    (_, kwargs), = calls
    (images,) = kwargs["ip_adapter_image"]  # one adapter, two images
    assert [np.asarray(im).mean(axis=(0, 1)).round().tolist() for im in images] == [[220, 40, 40], [40, 60, 220]]
    (masks,) = kwargs["cross_attention_kwargs"]["ip_adapter_masks"]
    assert tuple(masks.shape) == (1, 2, H, W)
    left, right = masks[0, 0].numpy(), masks[0, 1].numpy()
    assert left[:, : W // 2].min() > 0.5 and left[:, W // 2 :].max() < 0.5
    assert right[:, W // 2 :].min() > 0.5 and right[:, : W // 2].max() < 0.5
    assert "on the left: a wears a robe" in result.meta["prompt"]


def test_style_reference_joins_as_a_full_frame_image(tiny: dict[str, Path], calls: list) -> None:
    green = tiny["refs"] / "green.png"
    backend = DiffusersBackend(str(tiny["sd15"]), steps=2, ip_adapter=ipa_options(tiny), style_reference=str(green))
    backend.render_shot(shot_request([(char("a"), [tiny["refs"] / "red.png"])]))
    (_, kwargs), = calls
    assert len(kwargs["ip_adapter_image"][0]) == 2
    (masks,) = kwargs["cross_attention_kwargs"]["ip_adapter_masks"]
    assert masks[0, 1].numpy().min() > 0.5  # the style image covers the whole frame


def test_without_an_adapter_a_reference_means_img2img(tiny: dict[str, Path], calls: list) -> None:
    backend = DiffusersBackend(str(tiny["sd15"]), steps=2, img2img_strength=0.5)
    result = backend.render_shot(shot_request([(char("a"), [tiny["refs"] / "blue.png"])]))
    assert result.meta["mode"] == "img2img" and result.meta["strength"] == 0.5
    (name, kwargs), = calls
    assert name == "StableDiffusionImg2ImgPipeline"
    (init,) = kwargs["image"]
    assert init.size == (W, H) and np.asarray(init).mean(axis=(0, 1)).round().tolist() == [40, 60, 220]
    assert result.image.size == (W, H)


def test_a_shot_without_characters_is_text2img_even_with_an_adapter(tiny: dict[str, Path], calls: list) -> None:
    backend = DiffusersBackend(str(tiny["sd15"]), steps=2, ip_adapter=ipa_options(tiny))
    result = backend.render_shot(shot_request([]))
    assert result.meta["mode"] == "text2img" and result.regions == {}
    assert "river bank" in result.meta["prompt"] and "no humans" in result.meta["prompt"]
    (_, kwargs), = calls
    assert np.asarray(kwargs["ip_adapter_image"]).std() == 0  # the neutral image (at scale 0)


def test_same_seed_same_pixels_other_seed_other_pixels(tiny: dict[str, Path]) -> None:
    backend = DiffusersBackend(str(tiny["sd15"]), steps=2)
    a1 = backend.render_shot(shot_request([], seed=5))
    a2 = DiffusersBackend(str(tiny["sd15"]), steps=2).render_shot(shot_request([], seed=5))
    b = backend.render_shot(shot_request([], seed=6))
    assert a1.seed == 5 and a1.meta["seed"] == 5 and a1.meta["steps"] == 2
    assert np.array_equal(pixels(a1.image), pixels(a2.image))
    assert np.abs(pixels(a1.image) - pixels(b.image)).mean() > 1


def test_render_shots_batches_compatible_shots(tiny: dict[str, Path], calls: list) -> None:
    backend = DiffusersBackend(str(tiny["sd15"]), steps=2, batch_size=2)
    requests = [shot_request([], seed=s) for s in (1, 2, 3)]
    results = backend.render_shots(requests)
    assert [len(kw["prompt"]) for _, kw in calls] == [2, 1]
    assert [r.seed for r in results] == [1, 2, 3] and [r.meta["batch"] for r in results] == [2, 2, 1]
    alone = backend.render_shot(requests[1])
    assert np.abs(pixels(alone.image) - pixels(results[1].image)).mean() < 1.0  # a shot's noise is its own seed's


def test_the_model_is_loaded_once_across_shots_and_backends(tiny: dict[str, Path]) -> None:
    loading.load_pipelines.cache_clear()
    first = DiffusersBackend(str(tiny["sd15"]), steps=2)
    for seed in (1, 2):
        first.render_shot(shot_request([], seed=seed))
    second = DiffusersBackend(str(tiny["sd15"]), steps=2, img2img_strength=0.6)  # options outside the weights
    second.render_shot(shot_request([(char("a"), [tiny["refs"] / "red.png"])]))
    second.design_character(SheetRequest(char("a"), [], 64, 64, seed=0))
    info = loading.load_pipelines.cache_info()
    assert info.misses == 1 and info.hits >= 1
    assert first.pipelines() is second.pipelines()
    assert first.pipelines().img2img.unet is first.pipelines().main.unet  # derived, weights shared
    DiffusersBackend(str(tiny["sd15"]), steps=2, scheduler="euler_a").render_shot(shot_request([]))
    assert loading.load_pipelines.cache_info().misses == 2  # another scheduler is another pipeline


def test_scheduler_by_name(tiny: dict[str, Path]) -> None:
    result = DiffusersBackend(str(tiny["sd15"]), steps=2, scheduler="dpmpp_2m").render_shot(shot_request([]))
    assert result.meta["scheduler"] == "dpmpp_2m"
    assert type(loading.load_pipelines(DiffusersBackend(str(tiny["sd15"]), scheduler="dpmpp_2m")._spec(
        str(tiny["sd15"]), "text2img")).main.scheduler).__name__ == "DPMSolverMultistepScheduler"
    with pytest.raises(NovelcomicError, match="'dpm9'"):
        DiffusersBackend(str(tiny["sd15"]), scheduler="dpm9")


# --------------------------------------------------------------------------- editing


def test_inpaint_redraws_only_the_mask(tiny: dict[str, Path]) -> None:
    backend = DiffusersBackend(str(tiny["sd15"]), steps=2)
    source = Image.open(tiny["refs"] / "red.png").convert("RGB").resize((64, 64))
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    result = backend.inpaint(source, mask, "a lantern", seed=3)
    got, before = pixels(result.image), pixels(source)
    inside = (slice(16, 48), slice(16, 48))
    assert result.image.size == (64, 64) and result.meta["mode"] == "inpaint"
    assert np.array_equal(got[:16], before[:16]) and np.array_equal(got[:, :16], before[:, :16])
    assert np.abs(got[inside] - before[inside]).mean() > 10


def test_outpaint_to_16_9_keeps_the_picture_in_the_centre(tiny: dict[str, Path]) -> None:
    backend = DiffusersBackend(str(tiny["sd15"]), steps=2)
    rng = np.random.default_rng(0)
    source = Image.fromarray(rng.integers(0, 255, (128, 72, 3), dtype=np.uint8))  # 72x128 = 9:16
    result = backend.outpaint(source, "16:9", "a river at dusk", seed=1)
    assert result.image.size == (232, 128)  # 128 * 16/9 = 227.6, rounded up to a multiple of 8
    l, t, r, b = result.meta["source_box"]
    assert (r - l, b - t) == (72, 128) and abs((l + r) / 2 - 116) <= 1
    assert np.abs(pixels(result.image.crop((l, t, r, b))) - pixels(source)).mean() < 1
    assert result.meta["mode"] == "outpaint"
    with pytest.raises(NovelcomicError, match="already has the aspect 9:16"):
        backend.outpaint(source, "9:16", "x")


# --------------------------------------------------------------------------- Kolors


def test_kolors_text2img_and_img2img(tiny: dict[str, Path]) -> None:
    backend = DiffusersBackend(str(tiny["kolors"]), steps=2)
    plain = backend.render_shot(shot_request([]))
    assert plain.meta["family"] == "kolors" and plain.meta["mode"] == "text2img" and plain.image.size == (W, H)
    redrawn = backend.render_shot(shot_request([(char("a"), [tiny["refs"] / "red.png"])]))
    assert redrawn.meta["mode"] == "img2img" and redrawn.image.size == (W, H)
    assert type(backend.pipelines().img2img).__name__ == "KolorsImg2ImgPipeline"
    with pytest.raises(BackendError, match="inpaint_model"):
        backend.inpaint(plain.image, Image.new("L", (W, H), 255), "x")


# --------------------------------------------------------------------------- errors


def test_a_missing_model_is_a_backend_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    with pytest.raises(BackendError, match="no-such-model"):
        DiffusersBackend(str(missing))
    with pytest.raises(BackendError, match="no model_index.json"):
        DiffusersBackend(str(tmp_path))


def test_an_unreachable_hub_model_says_where_to_put_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    backend = DiffusersBackend("nobody-here/not-a-model", steps=2)
    with pytest.raises(BackendError, match=r"nobody-here/not-a-model.*stages\.render\.options\.model"):
        backend.render_shot(shot_request([]))


def test_bad_sizes_and_options_are_user_errors(tiny: dict[str, Path]) -> None:
    backend = DiffusersBackend(str(tiny["sd15"]), steps=2)
    with pytest.raises(NovelcomicError, match="100x60"):
        backend.render_shot(shot_request([], w=100, h=60))
    with pytest.raises(NovelcomicError, match="steps 0"):
        DiffusersBackend(str(tiny["sd15"]), steps=0)
    with pytest.raises(NovelcomicError, match="style_reference needs an ip_adapter"):
        DiffusersBackend(str(tiny["sd15"]), style_reference=str(tiny["refs"] / "red.png"))
    with pytest.raises(NovelcomicError, match="missing.png"):
        backend.render_shot(shot_request([(char("a"), [tiny["refs"] / "missing.png"])]))


def test_a_character_lora_that_cannot_load_is_a_backend_error(tiny: dict[str, Path], tmp_path: Path) -> None:
    backend = DiffusersBackend(str(tiny["sd15"]), steps=2)
    hero = char("a", lora=str(tmp_path / "hero.safetensors"))
    with pytest.raises(BackendError, match="peft|hero.safetensors"):
        backend.render_shot(shot_request([(hero, [])]))
    backend.render_shot(shot_request([]))  # the pipeline is left usable


# --------------------------------------------------------------------------- through the pipeline


def test_design_and_render_stages_with_the_diffusers_backend(tiny: dict[str, Path], root: Path, fake_backends) -> None:
    from novelcomic import pipeline
    from novelcomic.project import Project
    from tests.fakes import make_project

    project = Project(make_project(root))
    cfg = project.config()
    options = {"model": str(tiny["sd15"]), "steps": 2, "guidance_scale": 1.0, "ip_adapter": ipa_options(tiny)}
    cfg.stages.design = StageSpec(backend="diffusers", options=options)
    cfg.stages.render = StageSpec(backend="diffusers", options=options)
    project.save_config(cfg)
    pipeline.plan(project)
    # "b" brings the user's own reference image: only "a" gets a (1216x832) sheet designed.
    (project.dir / "refs").mkdir()
    Image.new("RGB", (64, 64), (40, 60, 220)).save(project.dir / "refs" / "b.png")
    cast = project.characters()
    cast.characters[1].reference_images = ["refs/b.png"]
    project.write_generated(project.characters_yaml, cast, "characters")

    design = pipeline.design(project)
    assert design.made == 1
    sheet = project.store.asset("sheet", "a")
    assert Image.open(project.dir / sheet.path).size == pipeline.SHEET_SIZE
    assert sheet.meta_dict()["backend"] == "diffusers"

    render = pipeline.render(project, "01")
    assert render.made == 2
    alone = project.store.asset("shot", "01/s01-01").meta_dict()
    pair = project.store.asset("shot", "01/s01-02").meta_dict()
    assert alone["mode"] == "text2img"
    assert pair["mode"] == "ip_adapter" and pair["ip_masks"] == 2
    assert pair["references"] == [str(project.sheet_path("a")), str(project.dir / "refs" / "b.png")]
    assert set(pair["regions"]) == {"a", "b"}
    assert Image.open(project.shot_image_path("01", "s01-02")).size == project.config().size
    assert pipeline.render(project, "01").made == 0  # nothing changed: nothing redrawn


def test_prompts_use_the_shot_prompt_and_unknown_style_names_as_words() -> None:
    from novelcomic.render.prompts import shot_prompt

    req = shot_request([(char("a"), [])], image_prompt="a lone boat", negative_prompt="rain")
    req.style = ["my-own-look"]
    prompt = shot_prompt(req)
    assert prompt.positive.startswith("a lone boat") and "my-own-look" in prompt.positive
    assert prompt.negative.startswith("rain") and "watermark" in prompt.negative
    built = shot_prompt(shot_request([(char("a"), []), (char("b"), [])]))
    assert "medium shot" in built.positive and "on the right: b wears a robe" in built.positive
    assert "dusk" in built.positive and "tense" in built.positive


def test_a_sheet_is_dressed_for_the_books_period(tiny: dict[str, Path]) -> None:
    backend = DiffusersBackend(str(tiny["sd15"]), steps=2, sheet_candidates=1)
    result = backend.design_character(SheetRequest(char("a"), ["国漫"], 96, 64, seed=3, language="en", period="victorian_england"))
    assert "Victorian England" in result.meta["prompt"]
    monkey = char("m", species="monkey")
    plain = backend.design_character(SheetRequest(monkey, ["国漫"], 96, 64, seed=3, language="en"))
    assert "anthropomorphic monkey" in plain.meta["prompt"] and "Victorian" not in plain.meta["prompt"]


def test_the_pipelines_prompt_names_the_period_species_kind_and_weather(root: Path, fake_backends) -> None:
    """Diffusion backends get the prompt the pipeline writes (polish.heuristic_prompt offline):
    it names the book's period, a character's species and the place's kind and weather when set."""
    from novelcomic import pipeline
    from novelcomic.models import CharactersFile, Line, LocationsFile, Storyboard
    from novelcomic.project import Project
    from tests.fakes import make_project

    project = Project(make_project(root))
    project.write_generated(project.characters_yaml, CharactersFile(characters=[
        Character(id="wukong", name="悟空", species="monkey", appearance="golden headband")]), "characters")
    locations = LocationsFile(period="ancient_china", locations=[
        Location(id="peak", name="花果山", kind="mountain", weather="snow")])
    project.write_generated(project.locations_yaml, locations, "locations")
    sb = Storyboard(chapter="01", scenes=[Scene(id="s1", location="peak", shots=[
        Shot(id="s1-1", characters=["wukong"], lines=[Line(text="悟空站在山顶。")])])])
    project.write_generated(project.storyboard_path("01"), sb, "storyboard")
    ctx = pipeline._render_context(project, "01")
    scene, shot = sb.shots()[0]
    prompt, _ = pipeline.shot_prompt(project, "01", scene, shot, ctx["characters"], ctx["locations"]["peak"], "sdxl", ctx)
    for words in ("anthropomorphic monkey", "mountains", "snow", "ancient China"):
        assert words in prompt, (words, prompt)
    # project.yaml's period wins over the planner's, and is in the prompt's hash
    cfg = project.config()
    cfg.period = "fantasy"
    project.save_config(cfg)
    ctx = pipeline._render_context(project, "01")
    again, _ = pipeline.shot_prompt(project, "01", scene, shot, ctx["characters"], ctx["locations"]["peak"], "sdxl", ctx)
    assert "xianxia" in again and "Han dynasty" not in again
