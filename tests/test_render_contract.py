"""The contract every image backend keeps, run against each backend (animatic, diffusers on a tiny
random SD 1.5). A new backend joins by adding a factory to BACKENDS."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from novelcomic.errors import NovelcomicError
from novelcomic.models import Character, Line, Location, Scene, Shot
from novelcomic.render.base import CharacterRef, ImageResult, SheetRequest, ShotRequest
from tests import tiny_models


def _animatic(base: Path) -> Any:
    from novelcomic.render.animatic import AnimaticBackend

    return AnimaticBackend(supersample=1)


def _diffusers(base: Path) -> Any:
    from novelcomic.render.diffusers_backend import DiffusersBackend

    model = tiny_models.ensure(tiny_models.build_sd15, base / "tiny-sd15")
    return DiffusersBackend(str(model), steps=2)


BACKENDS: dict[str, Callable[[Path], Any]] = {"animatic": _animatic, "diffusers": _diffusers}


@pytest.fixture(scope="module", params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    return BACKENDS[request.param](tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("contract") / "ref.png"
    Image.new("RGB", (64, 64), (200, 120, 40)).save(path)
    return path


def shot_request(reference: Path, width: int = 64, height: int = 96, seed: int = 3) -> ShotRequest:
    chars = [Character(id="a", name="阿青", appearance="blue robe"), Character(id="b", name="老陈", appearance="white hair")]
    shot = Shot(id="s01-02", characters=["a", "b"], lines=[Line(speaker="a", text="你好。")])
    return ShotRequest(
        chapter="01", scene=Scene(id="s01", location="l1"), shot=shot,
        characters=[CharacterRef(c, [reference]) for c in chars], location=Location(id="l1", name="河边"),
        props=[], style=["国漫"], width=width, height=height, seed=seed,
    )


def sheet_request(width: int = 96, height: int = 64) -> SheetRequest:
    return SheetRequest(Character(id="a", name="阿青", appearance="blue robe"), ["国漫"], width, height, seed=9)


def test_shot_has_the_requested_size_rgb_and_seed(backend: Any, reference: Path) -> None:
    result = backend.render_shot(shot_request(reference))
    assert isinstance(result, ImageResult)
    assert result.image.size == (64, 96) and result.image.mode == "RGB"
    assert result.seed == 3


def test_regions_name_only_shot_characters_and_lie_in_the_frame(backend: Any, reference: Path) -> None:
    result = backend.render_shot(shot_request(reference))
    assert set(result.regions) <= {"a", "b"}
    for left, top, right, bottom in result.regions.values():
        assert 0 <= left < right <= 64 and 0 <= top < bottom <= 96


def test_same_request_same_pixels(backend: Any, reference: Path) -> None:
    one = backend.render_shot(shot_request(reference, seed=4))
    two = backend.render_shot(shot_request(reference, seed=4))
    assert np.array_equal(np.asarray(one.image), np.asarray(two.image))


def test_a_bad_size_is_a_user_error(backend: Any, reference: Path) -> None:
    with pytest.raises(NovelcomicError, match="63x96"):
        backend.render_shot(shot_request(reference, width=63))
    with pytest.raises(NovelcomicError, match="-64x64"):
        backend.design_character(sheet_request(-64, 64))


def test_sheet_has_the_requested_size(backend: Any) -> None:
    result = backend.design_character(sheet_request())
    assert result.image.size == (96, 64) and result.image.mode == "RGB"
    assert result.seed == 9
