"""LoRAs and Kolors' real tokenizer in the diffusers backend, on tiny random models.

- backend LoRAs (``lora: [{path, weight_name, scale}]``) are loaded with the pipeline and change
  its images; a character's own LoRA (``Character.lora``) changes only that character's shots and
  is gone afterwards (the next shot is pixel-identical to one drawn before it was ever loaded);
- LoRAs that cannot be loaded are BackendErrors naming them;
- Kolors built with the real ``ChatGLMTokenizer`` on a tiny trained SentencePiece model renders.

The LoRA is made with peft by ``tests.tiny_models.build_lora`` and saved by diffusers'
``save_lora_weights``, so the backend loads it through ``load_lora_weights`` as it would a
downloaded one. 64×64, 2 steps. ~15 s on 2 cores (models built once per session).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from novelcomic.errors import BackendError
from novelcomic.models import Character, Location, Scene, Shot
from novelcomic.render import loading
from novelcomic.render.base import CharacterRef, ShotRequest
from novelcomic.render.diffusers_backend import DiffusersBackend
from tests import tiny_models

SIDE = 64
LORA_FILE = "tiny_lora.safetensors"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny SD1.5 + a LoRA for it + Kolors, built once (the directories are shared with the other suites)."""
    base = tmp_path_factory.getbasetemp()
    sd15 = tiny_models.ensure(tiny_models.build_sd15, base / "tiny-sd15")
    return {
        "sd15": sd15,
        "lora": tiny_models.ensure_lora(base / "tiny-lora-sd15", sd15),
        "kolors": tiny_models.ensure(tiny_models.build_kolors, base / "tiny-kolors"),
    }


def lora_option(tiny: dict[str, Path], scale: float = 1.0) -> list[dict[str, Any]]:
    return [{"path": str(tiny["lora"]), "weight_name": LORA_FILE, "scale": scale}]


def char(cid: str, **kw: Any) -> Character:
    return Character(id=cid, name=cid.upper(), appearance=f"{cid} wears a robe", **kw)


def shot(characters: list[Character], seed: int = 7, prompt: str = "") -> ShotRequest:
    s = Shot(id="s1", characters=[c.id for c in characters], image_prompt=prompt)
    return ShotRequest(
        chapter="01", scene=Scene(id="sc", location="l1"), shot=s, characters=[CharacterRef(c, []) for c in characters],
        location=Location(id="l1", name="river bank"), props=[], style=[], width=SIDE, height=SIDE, seed=seed,
    )


def pixels(result: Any) -> np.ndarray:
    return np.asarray(result.image, dtype=np.int16)


def adapters(backend: DiffusersBackend) -> dict[str, list[str]]:
    return backend.pipelines().main.get_list_adapters()


# --------------------------------------------------------------------------- backend LoRAs


def test_a_backend_lora_is_loaded_with_the_pipeline_and_changes_the_image(tiny: dict[str, Path]) -> None:
    plain = DiffusersBackend(str(tiny["sd15"]), steps=2)
    with_lora = DiffusersBackend(str(tiny["sd15"]), steps=2, lora=lora_option(tiny))
    off = DiffusersBackend(str(tiny["sd15"]), steps=2, lora=lora_option(tiny, scale=0.0))
    base, changed, zero = (b.render_shot(shot([])) for b in (plain, with_lora, off))
    assert adapters(with_lora) == {"unet": ["lora0"]} and adapters(plain) == {}
    assert with_lora.pipelines() is not plain.pipelines()  # LoRAs are part of what is loaded
    assert changed.image.size == (SIDE, SIDE)
    assert np.abs(pixels(changed) - pixels(base)).mean() > 2
    assert np.array_equal(pixels(zero), pixels(base))  # the scale reaches the adapter
    again = DiffusersBackend(str(tiny["sd15"]), steps=2, lora=lora_option(tiny)).render_shot(shot([]))
    assert np.array_equal(pixels(again), pixels(changed))  # same seed, same LoRA: same pixels
    assert with_lora.pipelines().img2img.unet is with_lora.pipelines().main.unet  # img2img shots get it too


# --------------------------------------------------------------------------- character LoRAs


def test_a_character_lora_applies_to_its_shots_and_is_unloaded_after(tiny: dict[str, Path]) -> None:
    backend = DiffusersBackend(str(tiny["sd15"]), steps=2)
    bystander = char("c")
    before = backend.render_shot(shot([bystander]))  # drawn before any LoRA was loaded
    hero = char("a", lora=str(tiny["lora"] / LORA_FILE), lora_scale=1.0)
    with_lora = backend.render_shot(shot([hero]))
    without = backend.render_shot(shot([hero.model_copy(update={"lora": None})]))
    assert with_lora.meta["loras"] == [{"path": hero.lora, "scale": 1.0}] and "loras" not in without.meta
    assert np.abs(pixels(with_lora) - pixels(without)).mean() > 2
    assert adapters(backend) == {}  # unloaded after the shot
    after = backend.render_shot(shot([bystander]))
    assert np.array_equal(pixels(after), pixels(before))
    again = backend.render_shot(shot([hero]))  # loaded again for its next shot, same result
    assert np.array_equal(pixels(again), pixels(with_lora))


def test_a_character_lora_directory_joins_the_backend_lora_and_leaves_it_active(tiny: dict[str, Path]) -> None:
    backend = DiffusersBackend(str(tiny["sd15"]), steps=2, lora=lora_option(tiny, scale=0.5))
    before = backend.render_shot(shot([]))
    hero = char("a", lora=str(tiny["lora"]), lora_scale=0.8)  # a directory holding one LoRA file
    both = backend.render_shot(shot([hero]))
    only_backend = backend.render_shot(shot([hero.model_copy(update={"lora": None})]))
    assert np.abs(pixels(both) - pixels(only_backend)).mean() > 1
    assert adapters(backend) == {"unet": ["lora0"]}
    assert backend.pipelines().main.get_active_adapters() == ["lora0"]
    assert np.array_equal(pixels(backend.render_shot(shot([]))), pixels(before))  # still at scale 0.5


def test_a_character_lora_reaches_img2img_shots_through_the_derived_pipeline(tiny: dict[str, Path],
                                                                            tmp_path: Path) -> None:
    from PIL import Image

    ref = tmp_path / "ref.png"
    Image.new("RGB", (SIDE, SIDE), (200, 80, 40)).save(ref)
    backend = DiffusersBackend(str(tiny["sd15"]), steps=2, img2img_strength=0.9)
    hero = char("a", lora=str(tiny["lora"] / LORA_FILE))
    request = shot([hero])
    request.characters[0].reference_images = [ref]
    with_lora = backend.render_shot(request)
    request.characters[0].character = hero.model_copy(update={"lora": None})
    without = backend.render_shot(request)
    assert with_lora.meta["mode"] == "img2img" and "loras" in with_lora.meta
    assert np.abs(pixels(with_lora) - pixels(without)).mean() > 1
    assert adapters(backend) == {}


# --------------------------------------------------------------------------- errors


def test_a_backend_lora_that_cannot_load_is_a_backend_error_naming_it(tiny: dict[str, Path], tmp_path: Path) -> None:
    missing = tmp_path / "no-such-lora.safetensors"
    with pytest.raises(BackendError, match="no-such-lora.safetensors' not found") as info:
        DiffusersBackend(str(tiny["sd15"]), steps=2, lora=[{"path": str(missing)}]).render_shot(shot([]))
    assert info.value.field == "stages.render.options.lora"
    garbage = tmp_path / "broken.safetensors"
    garbage.write_bytes(b"not a safetensors file")
    with pytest.raises(BackendError, match="broken.safetensors"):
        DiffusersBackend(str(tiny["sd15"]), steps=2, lora=[{"path": str(garbage)}]).render_shot(shot([]))
    with pytest.raises(BackendError, match="wrong-name.safetensors"):
        DiffusersBackend(str(tiny["sd15"]), steps=2,
                         lora=[{"path": str(tiny["lora"]), "weight_name": "wrong-name.safetensors"}]).render_shot(shot([]))


def test_a_character_lora_that_cannot_load_names_it_and_leaves_the_pipeline_clean(tiny: dict[str, Path],
                                                                                  tmp_path: Path) -> None:
    backend = DiffusersBackend(str(tiny["sd15"]), steps=2)
    before = backend.render_shot(shot([char("c")]))
    good = char("a", lora=str(tiny["lora"] / LORA_FILE))
    bad = char("b", lora=str(tmp_path / "villain.safetensors"))
    with pytest.raises(BackendError, match="villain.safetensors' not found") as info:
        backend.render_shot(shot([good, bad]))  # the first loads, the second fails: both are removed
    assert info.value.field == "characters.b.lora"
    assert adapters(backend) == {}
    assert np.array_equal(pixels(backend.render_shot(shot([char("c")]))), pixels(before))


# --------------------------------------------------------------------------- Kolors


def test_kolors_with_the_real_sentencepiece_tokenizer(tiny: dict[str, Path]) -> None:
    from diffusers.pipelines.kolors.tokenizer import ChatGLMTokenizer

    assert (tiny["kolors"] / "tokenizer" / "tokenizer.model").stat().st_size > 1000  # a trained SentencePiece model
    loading.load_pipelines.cache_clear()
    backend = DiffusersBackend(str(tiny["kolors"]), steps=2)
    tokenizer = backend.pipelines().main.tokenizer
    assert type(tokenizer) is ChatGLMTokenizer
    tokens = tokenizer.convert_ids_to_tokens(tokenizer("青衣少女站在河边 by the river")["input_ids"])
    assert tokens[:2] == ["[gMASK]", "sop"] and "青" in tokens  # SentencePiece pieces: whole characters and
    assert "th" in tokens and not [t for t in tokens if t.startswith("<0x")]  # sub-words, no byte fallback
    river = backend.render_shot(shot([], prompt="青衣少女站在河边"))
    old_man = backend.render_shot(shot([], prompt="an old man with white hair"))
    assert river.meta["family"] == "kolors" and river.meta["mode"] == "text2img"
    assert river.image.size == (SIDE, SIDE) and pixels(river).std() > 1
    assert not np.array_equal(pixels(river), pixels(old_man))  # the prompt reaches the image (weakly: random weights)
