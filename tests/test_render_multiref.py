"""Multi-reference families, single-file checkpoints, kohya LoRAs and memory options of the
diffusers backend, on tiny random models built offline (tests/tiny_multiref.py, tests/tiny_models.py).

- a two-character shot through FLUX.2 [klein] and Qwen-Image-Edit-Plus via the project's own
  render (project.yaml → backend → model_index.json family → pipeline): the characters' sheets
  reach the pipeline speakers first, and the prompt names each by its image number;
  references beyond the family's limit are dropped (speakers kept); shots without characters
  and sheets are text-to-image; an instruction edit goes to the edit model;
- SD 1.5 and SDXL single-file checkpoints written by the test in the original layout load
  offline through ``from_single_file`` and draw the same image as the diffusers directory;
  the shipped configs and CLIP tokenizer are the real ones; an unknown checkpoint is refused
  naming its keys;
- a kohya-format LoRA (``lora_unet_*`` / ``lora_te_*``) loads, changes the image, and its
  trigger words lead the prompt;
- memory options are refused up front in one line where the machine cannot do them, and
  ``vae_tiling`` / ``layerwise_fp8`` are applied.

Qwen-Image-Edit-Plus resizes every reference to ~1 Mpx for its VAE and 384² for its vision
encoder, Kontext to one of its ~1 Mpx training sizes; the tests shrink those module constants
(speed only). 64 px, 2 steps.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from PIL import Image

from novelcomic.errors import BackendError, NovelcomicError
from novelcomic.models import Character, Line, Location, Scene, Shot
from novelcomic.render import loading
from novelcomic.render.base import CharacterRef, SheetRequest, ShotRequest
from novelcomic.render.diffusers_backend import DiffusersBackend
from tests import tiny_models, tiny_multiref

SIDE = 64
COLOURS = {"c1": (220, 40, 40), "c2": (40, 60, 220), "c3": (40, 200, 80), "c4": (230, 230, 40)}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.getbasetemp()
    return {
        "flux2-klein": tiny_models.ensure(tiny_multiref.build_flux2_klein, base / "tiny-flux2-klein"),
        "qwen-image-edit-plus": tiny_models.ensure(tiny_multiref.build_qwen_edit_plus, base / "tiny-qwen-edit-plus"),
        "flux-kontext": tiny_models.ensure(tiny_multiref.build_flux_kontext, base / "tiny-flux-kontext"),
        "sd15": tiny_models.ensure(tiny_models.build_sd15, base / "tiny-sd15"),
        "sdxl": tiny_models.ensure(tiny_multiref.build_sdxl_two_widths, base / "tiny-sdxl-two-widths"),
    }


@pytest.fixture(autouse=True)
def small_qwen_inputs(monkeypatch: pytest.MonkeyPatch) -> None:
    from diffusers.pipelines.qwenimage import pipeline_qwenimage_edit_plus as qwen

    monkeypatch.setattr(qwen, "VAE_IMAGE_SIZE", SIDE * SIDE)
    monkeypatch.setattr(qwen, "CONDITION_IMAGE_SIZE", 56 * 56)
    from diffusers.pipelines.flux import pipeline_flux_kontext as kontext  # it resizes its input to ~1 Mpx

    monkeypatch.setattr(kontext, "PREFERRED_KONTEXT_RESOLUTIONS", [(SIDE, SIDE), (SIDE, SIDE * 3 // 2), (SIDE * 3 // 2, SIDE)])


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    """(pipeline class name, keyword arguments) of every pipeline call made during the test."""
    import diffusers

    record: list[tuple[str, dict[str, Any]]] = []
    for cls in (diffusers.Flux2KleinPipeline, diffusers.QwenImageEditPlusPipeline, diffusers.QwenImagePipeline,
                diffusers.FluxKontextPipeline,
                diffusers.StableDiffusionPipeline, diffusers.StableDiffusionXLPipeline):
        original = cls.__call__

        def spy(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            record.append((type(self).__name__, kwargs))
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(cls, "__call__", spy)
    return record


def colour_of(image: Image.Image) -> tuple[int, int, int]:
    return tuple(int(v) for v in np.asarray(image.convert("RGB")).reshape(-1, 3).mean(axis=0).round())  # type: ignore[return-value]


def owner(image: Image.Image) -> str:
    """Which character's (single-colour) sheet an image passed to the pipeline is."""
    got = colour_of(image)
    return min(COLOURS, key=lambda cid: sum(abs(a - b) for a, b in zip(COLOURS[cid], got)))


# --------------------------------------------------------------------------- through the project


def make_project(root: Path, model: Path, language: str, chars: list[str], speakers: list[str],
                 **options: Any) -> Path:
    """A one-shot project drawing with the diffusers backend and ``model``; every character has a
    single-colour sheet of its own (its ``reference_images``)."""
    root.mkdir(parents=True)
    (root / "refs").mkdir()
    names = {"c1": ("Lin", "a girl in a blue robe"), "c2": ("Wang", "an old fisherman with white hair"),
             "c3": ("Mei", "a young woman with a red umbrella"), "c4": ("Bo", "a boy with a kite")}
    for cid in chars:
        Image.new("RGB", (96, 48), COLOURS[cid]).save(root / "refs" / f"{cid}.png")  # a wide "turnaround"
    project = {
        "title": "multiref", "language": language, "resolution": [SIDE, SIDE], "lettering": False,
        "chapters": [{"id": "01", "title": "one"}],
        "stages": {"render": {"backend": "diffusers", "options": {
            "model": str(model), "steps": 2, "device": "cpu", "dtype": "float32", "max_sequence_length": 64, **options}}},
    }
    (root / "project.yaml").write_text(yaml.safe_dump(project, allow_unicode=True), encoding="utf-8")
    characters = [{"id": cid, "name": names[cid][0], "appearance": names[cid][1], "reference_images": [f"refs/{cid}.png"]}
                  for cid in chars]
    (root / "characters.yaml").write_text(yaml.safe_dump({"characters": characters}), encoding="utf-8")
    (root / "locations.yaml").write_text(yaml.safe_dump({"locations": [
        {"id": "l1", "name": "river bank", "time_of_day": "dusk"}]}), encoding="utf-8")
    (root / "props.yaml").write_text("props: []\n", encoding="utf-8")
    (root / "chapters").mkdir()
    (root / "chapters" / "01.txt").write_text("They sat by the river.\n", encoding="utf-8")
    lines = [{"speaker": s, "text": f"{s} speaks."} for s in speakers] or [{"text": "They sat by the river."}]
    board = {"chapter": "01", "title": "one", "scenes": [{"id": "s01", "location": "l1", "shots": [
        {"id": "s01-01", "characters": chars, "lines": lines},
        {"id": "s01-02", "lines": [{"text": "The river ran on."}]},
    ]}]}
    (root / "storyboards").mkdir()
    (root / "storyboards" / "01.yaml").write_text(yaml.safe_dump(board, allow_unicode=True), encoding="utf-8")
    return root


def render(root: Path, shot_id: str) -> dict[str, Any]:
    from novelcomic import pipeline
    from novelcomic.project import Project

    project = Project(root)
    path, made = pipeline.render_shot(project, "01", shot_id)
    assert made and path.is_file()
    assert Image.open(path).size == (SIDE, SIDE)
    return project.store.asset("shot", f"01/{shot_id}").meta_dict()


@pytest.mark.parametrize("family", ["flux2-klein", "qwen-image-edit-plus"])
def test_a_two_character_shot_gets_both_sheets_speaker_first_through_the_project(
    tiny: dict[str, Path], tmp_path: Path, calls: list, family: str
) -> None:
    # c1 stands on the left but only c2 speaks: c2's sheet is image 1
    root = make_project(tmp_path / "p", tiny[family], "en", ["c1", "c2"], speakers=["c2"])
    meta = render(root, "s01-01")
    name, kwargs = calls[-1]
    assert name == {"flux2-klein": "Flux2KleinPipeline", "qwen-image-edit-plus": "QwenImageEditPlusPipeline"}[family]
    assert [owner(im) for im in kwargs["image"]] == ["c2", "c1"]
    assert all(im.size[0] == im.size[1] for im in kwargs["image"])  # the front view of each wide sheet
    prompt = kwargs["prompt"][0]
    label = "image" if family == "flux2-klein" else "Picture"
    assert f"Wang from {label} 1" in prompt and f"Lin from {label} 2" in prompt
    assert prompt.index("Lin from") < prompt.index("Wang from")  # described left to right, as laid out
    assert meta["mode"] == "multiref" and meta["family"] == family
    assert meta["reference_characters"] == ["c2", "c1"] and "dropped_references" not in meta
    assert set(meta["regions"]) == {"c1", "c2"} and meta["regions"]["c1"][0] == 0  # c1 on the left for lettering


def test_a_shot_without_characters_and_a_sheet_are_text_to_image(tiny: dict[str, Path], tmp_path: Path, calls: list) -> None:
    root = make_project(tmp_path / "p", tiny["qwen-image-edit-plus"], "zh", ["c1"], speakers=[])
    meta = render(root, "s01-02")
    assert calls[-1][0] == "QwenImagePipeline" and "image" not in calls[-1][1]
    assert meta["mode"] == "text2img"
    backend = DiffusersBackend(str(tiny["flux2-klein"]), steps=2, max_sequence_length=64)
    sheet = backend.design_character(SheetRequest(Character(id="c1", name="Lin", appearance="a girl in a blue robe"),
                                                  style=[], width=SIDE * 2, height=SIDE, seed=1, language="en"))
    name, kwargs = calls[-1]
    assert name == "Flux2KleinPipeline" and kwargs.get("image") is None and sheet.image.size == (SIDE * 2, SIDE)
    assert kwargs["prompt"][0].startswith("A character reference sheet of Lin: a girl in a blue robe.")
    assert kwargs["text_encoder_out_layers"] == (1, 2)  # the tiny encoder's layers, as its transformer expects


def test_qwen_in_a_chinese_project_is_prompted_in_chinese_and_keeps_three_references_speakers_first(
    tiny: dict[str, Path], tmp_path: Path, calls: list
) -> None:
    # four characters, the model takes three: the non-speaker listed first (c1) is the one dropped
    root = make_project(tmp_path / "p", tiny["qwen-image-edit-plus"], "zh", ["c1", "c2", "c3", "c4"],
                        speakers=["c4", "c2", "c3"])
    meta = render(root, "s01-01")
    kwargs = calls[-1][1]
    assert [owner(im) for im in kwargs["image"]] == ["c4", "c2", "c3"]
    assert meta["dropped_references"] == ["c1"]
    prompt = kwargs["prompt"][0]
    assert "图1中的Bo" in prompt and "图2中的Wang" in prompt and "图3中的Mei" in prompt
    assert "Lin（a girl in a blue robe）" in prompt and "图4" not in prompt  # still described, without an image
    assert "保持每个角色的脸" in prompt


def test_the_english_project_on_qwen_and_the_prompt_styles_of_the_families(tiny: dict[str, Path]) -> None:
    c1, c2 = (Character(id=c, name=n, appearance=a) for c, n, a in (("c1", "Lin", "blue robe"), ("c2", "Wang", "white hair")))
    request = ShotRequest(chapter="01", scene=Scene(id="s", location="l1"),
                          shot=Shot(id="x", characters=["c1", "c2"]), characters=[CharacterRef(c1), CharacterRef(c2)],
                          location=Location(id="l1", name="river bank"), props=[], style=[], width=SIDE, height=SIDE,
                          seed=0, language="zh")
    klein = DiffusersBackend(str(tiny["flux2-klein"]))
    assert klein.prompt_family is None and klein.instruction_edits  # it writes its own sentences
    assert DiffusersBackend(str(tiny["sd15"])).prompt_family == "sd15"
    from novelcomic.render.prompts import multiref_prompt, shot_prompt

    # FLUX reads English whatever the project's language; SD 1.5 gets tags
    flux = multiref_prompt(request, klein.family_spec, [])
    assert "Lin (blue robe) on the left; Wang (white hair) on the right." in flux.positive and flux.negative == ""
    assert "2 people, on the left: blue robe, on the right: white hair" in shot_prompt(request, "sd15").positive
    assert klein.steps == 4 and klein.guidance_scale == 1.0  # the distilled klein's model-card settings


def test_an_instruction_edit_goes_to_the_edit_model_with_the_current_image(tiny: dict[str, Path], calls: list) -> None:
    backend = DiffusersBackend(str(tiny["flux2-klein"]), steps=2, max_sequence_length=64)
    current = Image.new("RGB", (SIDE, SIDE), COLOURS["c3"])
    result = backend.edit_instruction(current, "make it night", seed=3)
    name, kwargs = calls[-1]
    assert name == "Flux2KleinPipeline" and kwargs["prompt"] == ["make it night"]
    assert [owner(im) for im in kwargs["image"]] == ["c3"] and result.meta["mode"] == "edit"
    assert result.image.size == (SIDE, SIDE)
    with pytest.raises(NovelcomicError, match="cannot edit from an instruction"):
        DiffusersBackend(str(tiny["sd15"])).edit_instruction(current, "make it night")


def test_multiref_options_are_checked_up_front(tiny: dict[str, Path]) -> None:
    with pytest.raises(NovelcomicError, match="max_references 5 must be at most 4 for the flux2-klein family"):
        DiffusersBackend(str(tiny["flux2-klein"]), max_references=5)
    with pytest.raises(NovelcomicError, match="keeps its flow-matching scheduler"):
        DiffusersBackend(str(tiny["qwen-image-edit-plus"]), scheduler="dpmpp_2m")
    one = DiffusersBackend(str(tiny["flux2-klein"]), max_references=1)
    refs, dropped = one.references(ShotRequest(
        chapter="01", scene=Scene(id="s"), shot=Shot(id="x", characters=["a", "b"], lines=[Line(speaker="b", text="hi")]),
        characters=[CharacterRef(Character(id=c, name=c), [Path(f"/{c}.png")]) for c in ("a", "b")],
        location=None, props=[], style=[], width=SIDE, height=SIDE, seed=0))
    assert [r.character.id for r in refs] == ["b"] and dropped == ["a"] and refs[0].role == "speaker"


# --------------------------------------------------------------------------- single-file checkpoints


def plain_request(seed: int = 5) -> ShotRequest:
    return ShotRequest(chapter="01", scene=Scene(id="s", location="l1"), shot=Shot(id="x"), characters=[],
                       location=Location(id="l1", name="river bank"), props=[], style=[], width=SIDE, height=SIDE, seed=seed)


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_a_single_file_checkpoint_loads_offline_and_draws_what_the_directory_draws(
    tiny: dict[str, Path], tmp_path: Path, family: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    ckpt = tiny_multiref.write_single_file(tiny[family], tmp_path / f"{family}-model.safetensors")
    configs = tiny_multiref.config_dir(tiny[family], tmp_path / "configs")
    assert loading.detect_family(str(ckpt)) == family
    single = DiffusersBackend(str(ckpt), single_file_config=str(configs), steps=2, device="cpu", dtype="float32")
    directory = DiffusersBackend(str(tiny[family]), steps=2, device="cpu", dtype="float32")
    a, b = single.render_shot(plain_request()), directory.render_shot(plain_request())
    assert single.pipelines().spec.single_file and a.meta["family"] == family
    assert np.abs(np.asarray(a.image, dtype=np.int16) - np.asarray(b.image, dtype=np.int16)).max() <= 1


def test_the_shipped_configs_and_clip_tokenizer_are_the_real_ones() -> None:
    from accelerate import init_empty_weights
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig

    tok = loading.clip_tokenizer()
    assert len(tok) == 49408 and tok("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]
    assert loading.clip_tokenizer(pad_token="!").pad_token_id == 0  # SDXL's second tokenizer pads with "!"
    for family, cross, scaling in (("sd15", 768, 0.18215), ("sdxl", 2048, 0.13025)):
        root = loading.CONFIGS_DIR / family
        with init_empty_weights():
            unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(root / "unet"))
            vae = AutoencoderKL.from_config(AutoencoderKL.load_config(root / "vae"))
        assert unet.config.cross_attention_dim == cross and vae.config.scaling_factor == scaling
        assert CLIPTextConfig.from_pretrained(root / "text_encoder").hidden_size == 768
        index = json.loads((root / "model_index.json").read_text())
        assert loading.family_for_class(index["_class_name"]) == family
    assert CLIPTextConfig.from_pretrained(loading.CONFIGS_DIR / "sdxl" / "text_encoder_2").hidden_size == 1280


def test_an_unknown_checkpoint_is_refused_naming_its_keys(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    odd = tmp_path / "odd.safetensors"
    save_file({"backbone.layer0.weight": torch.zeros(2), "head.fc.bias": torch.zeros(2)}, str(odd))
    with pytest.raises(BackendError, match=r"matches no known family \(sdxl: .*; sd15: .*\); its 2 keys start with: "
                                           r"backbone.layer0, head.fc"):
        DiffusersBackend(str(odd))
    flux = tmp_path / "flux.safetensors"
    save_file({"double_blocks.0.img_attn.qkv.weight": torch.zeros(2)}, str(flux))
    with pytest.raises(BackendError, match="looks like a FLUX transformer"):
        DiffusersBackend(str(flux))
    pickle = tmp_path / "model.ckpt"
    pickle.write_bytes(b"not read")
    with pytest.raises(BackendError, match="pickle checkpoint"):
        DiffusersBackend(str(pickle))


# --------------------------------------------------------------------------- kohya LoRA


def test_a_kohya_lora_loads_changes_the_image_and_its_trigger_leads_the_prompt(
    tiny: dict[str, Path], tmp_path: Path, calls: list
) -> None:
    lora = tiny_multiref.write_kohya_lora(tiny["sd15"], tmp_path / "kohya" / "lin_style.safetensors")
    plain = DiffusersBackend(str(tiny["sd15"]), steps=2, device="cpu", dtype="float32")
    styled = DiffusersBackend(str(tiny["sd15"]), steps=2, device="cpu", dtype="float32",
                              lora=[{"path": str(lora), "scale": 1.0, "trigger": "lin_style"}])
    a, b = plain.render_shot(plain_request()), styled.render_shot(plain_request())
    assert calls[-1][1]["prompt"][0].startswith("lin_style, ")
    adapters = styled.pipelines().main.get_list_adapters()
    assert adapters.get("unet") == ["lora0"] and adapters.get("text_encoder") == ["lora0"]
    assert np.abs(np.asarray(a.image, dtype=np.int16) - np.asarray(b.image, dtype=np.int16)).mean() > 2


def test_a_character_lora_trigger_leads_that_characters_shots(tiny: dict[str, Path], tmp_path: Path, calls: list) -> None:
    lora = tiny_multiref.write_kohya_lora(tiny["sd15"], tmp_path / "lin.safetensors")
    lin = Character(id="c1", name="Lin", appearance="blue robe", lora=str(lora), lora_trigger="nc_c1")
    backend = DiffusersBackend(str(tiny["sd15"]), steps=2, device="cpu", dtype="float32")
    request = plain_request()
    request.shot = Shot(id="x", characters=["c1"])
    request.characters = [CharacterRef(lin)]
    backend.render_shot(request)
    assert calls[-1][1]["prompt"][0].startswith("nc_c1, ")
    assert backend.pipelines().main.get_list_adapters() == {}  # gone after the shot


# --------------------------------------------------------------------------- memory options


def test_memory_options_are_refused_up_front_in_one_line(tiny: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    model = str(tiny["sd15"])
    cases = [
        ({"offload": "disk"}, "offload 'disk' must be one of model, sequential, group"),
        ({"offload": "group", "device": "cpu"}, "offload 'group' moves weights between CPU and a GPU, but the device is 'cpu'"),
        ({"vae_tiling": "yes"}, "vae_tiling 'yes' must be true or false"),
        ({"quantize": "int8"}, "quantize 'int8' must be one of bnb-nf4"),
        ({"quantize": "bnb-nf4", "layerwise_fp8": True}, "choose one"),
    ]
    for options, message in cases:
        with pytest.raises(NovelcomicError, match=message.replace("(", r"\(")) as info:
            DiffusersBackend(model, **options)
        assert "\n" not in str(info.value)
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "bitsandbytes" else real(name, *a))
    with pytest.raises(NovelcomicError, match=r"needs the bitsandbytes package \(pip install bitsandbytes\)"):
        DiffusersBackend(model, quantize="bnb-nf4", device="cuda")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name == "bitsandbytes" else real(name, *a))
    with pytest.raises(NovelcomicError, match="runs on CUDA GPUs only, but the device is 'cpu'"):
        DiffusersBackend(model, quantize="bnb-nf4", device="cpu")


def test_vae_tiling_and_layerwise_fp8_are_applied(tiny: dict[str, Path]) -> None:
    import torch

    backend = DiffusersBackend(str(tiny["sd15"]), steps=2, device="cpu", dtype="float32", vae_tiling=True,
                               layerwise_fp8=True)
    result = backend.render_shot(plain_request())
    pipe = backend.pipelines().main
    assert pipe.vae.use_tiling and result.image.size == (SIDE, SIDE)
    assert pipe.unet.conv_in.weight.dtype == torch.float8_e4m3fn  # stored in fp8, computed in float32


def test_edit_shot_instruction_goes_to_the_edit_model_without_a_language_model(
    tiny: dict[str, Path], tmp_path: Path, calls: list
) -> None:
    from novelcomic.project import Project
    from novelcomic.render.edit import edit_shot

    root = make_project(tmp_path / "p", tiny["flux2-klein"], "en", ["c1", "c2"], speakers=["c1"])
    render(root, "s01-01")
    drawn = Image.open(root / "render" / "01" / "s01-01.png").convert("RGB")
    result = edit_shot(Project(root), "01", "s01-01", instruction="make it night")  # no llm in project.yaml
    name, kwargs = calls[-1]
    assert name == "Flux2KleinPipeline" and kwargs["prompt"] == ["make it night"] and len(kwargs["image"]) == 1
    assert np.array_equal(np.asarray(kwargs["image"][0]), np.asarray(drawn))  # the shot as it was
    assert result.kind == "instruction" and result.version == 2 and result.previous_version_path.is_file()


def test_kontext_takes_the_first_speakers_sheet_only(tiny: dict[str, Path], tmp_path: Path, calls: list) -> None:
    root = make_project(tmp_path / "p", tiny["flux-kontext"], "en", ["c1", "c2"], speakers=["c2"])
    meta = render(root, "s01-01")
    name, kwargs = calls[-1]
    assert name == "FluxKontextPipeline" and owner(kwargs["image"]) == "c2"  # one image, not a list
    assert kwargs["max_area"] == SIDE * SIDE and "Wang from image 1" in kwargs["prompt"][0]
    assert meta["dropped_references"] == ["c1"] and "Lin (a girl in a blue robe)" in kwargs["prompt"][0]


def test_a_places_picture_joins_after_the_characters_and_the_prompt_says_so(tiny: dict[str, Path], tmp_path: Path, calls: list) -> None:
    """A location with ``reference_images`` gives a multi-reference shot its background, after
    every character (a full shot leaves it out); the shot's hash follows the picture's content."""
    from novelcomic import pipeline
    from novelcomic.project import Project

    root = make_project(tmp_path / "p", tiny["flux2-klein"], "en", ["c1", "c2"], speakers=["c2"])
    Image.new("RGB", (64, 64), COLOURS["c4"]).save(root / "refs" / "bank.png")  # the place, in c4's colour
    (root / "locations.yaml").write_text(yaml.safe_dump({"locations": [
        {"id": "l1", "name": "river bank", "reference_images": ["refs/bank.png"]}]}), encoding="utf-8")
    project = Project(root)
    before = pipeline.shot_inputs_hash(project, "01", "s01-01")
    render(root, "s01-01")
    _, kwargs = calls[-1]
    assert [owner(im) for im in kwargs["image"]] == ["c2", "c1", "c4"]
    assert "The background follows image 3" in kwargs["prompt"][0]
    Image.new("RGB", (64, 64), (10, 10, 10)).save(root / "refs" / "bank.png")
    assert pipeline.shot_inputs_hash(project, "01", "s01-01") != before
    project.close()
