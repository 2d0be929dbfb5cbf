"""The prompt safety filter: categories in Chinese and English, user terms, no false positives."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from novelcomic.errors import BackendError, NovelcomicError
from novelcomic.models import SafetyConfig
from novelcomic.render.safety import (
    TERMS_FILE,
    BlockedShotError,
    check_image,
    check_prompt,
    check_texts,
    load_terms,
    raise_if_blocked,
)


@pytest.mark.parametrize("text, category, term", [
    ("a nude woman by the river", "sexual", "nude"),
    ("NSFW poster", "sexual", "NSFW"),
    ("两个人裸体站在河边", "sexual", "裸体"),
    ("gruesome scene, dismembered soldiers", "violence_gore", "gruesome"),
    ("地上血肉模糊", "violence_gore", "血肉模糊"),
    ("she thinks about suicide", "self_harm", "suicide"),
    ("scars from self-harm", "self_harm", "self-harm"),
    ("他想割腕", "self_harm", "割腕"),
    ("a crowd doing a nazi salute", "hate", "nazi salute"),
    ("墙上画着纳粹标志", "hate", "纳粹标志"),
    ("loli art", "minors_sexual", "loli"),
    ("儿童色情", "minors_sexual", "儿童色情"),
])
def test_terms_are_blocked_by_category(text: str, category: str, term: str) -> None:
    verdict = check_prompt(text)
    assert verdict.blocked and verdict.category == category and verdict.term == term


def test_a_child_in_a_sexual_prompt_is_the_graver_category() -> None:
    assert check_prompt("a little girl, naked").category == "minors_sexual"
    assert check_prompt("小女孩，裸体").category == "minors_sexual"
    assert check_prompt("小女孩，裸体").term == "小女孩 + 裸体"
    assert not check_prompt("a little girl flying a kite").blocked  # a child alone is fine
    assert not check_prompt("小女孩在河边放风筝").blocked


@pytest.mark.parametrize("text", [
    "an assassin in a classic black robe", "Scunthorpe United", "denuded hills at dawn",
    "the swordsman is wounded and bleeding", "两军交战，刀光剑影", "他拔剑杀向敌阵", "少女在河边洗衣",
    "a gorey old house on Gorey street", "Essex by night", "cocktail party", "a naked blade",
])
def test_ordinary_novel_prompts_pass(text: str) -> None:
    verdict = check_prompt(text, SafetyConfig(extra_terms={"rude": ["ass", "cock", "sex"]}))
    if text == "a naked blade":  # a known limitation: the word itself is listed
        assert verdict.category == "sexual"
        return
    assert not verdict.blocked, verdict


def test_plural_and_case_and_mixed_scripts() -> None:
    assert check_prompt("Nudes on the wall").term == "Nudes"
    assert check_prompt("画一张nude风格的图").category == "sexual"  # CJK neighbours are word boundaries
    assert check_prompt("porn-style").blocked


def test_user_extra_terms_extend_the_lists() -> None:
    cfg = SafetyConfig(extra_terms={"spoilers": ["dragon egg", "龙蛋"], "rude": ["ass"]})
    assert check_prompt("the Dragon  Egg hatches", cfg).category == "spoilers"
    assert check_prompt("桌上放着一颗龙蛋", cfg).term == "龙蛋"
    assert check_prompt("what an ass", cfg).category == "rude"
    assert not check_prompt("the assassin passes", cfg).blocked
    assert not check_prompt("the dragon eggplant", cfg).blocked
    with pytest.raises(NovelcomicError, match="non-empty"):
        check_prompt("x", SafetyConfig(extra_terms={"rude": ["  "]}))


def test_disabled_filter_and_empty_prompts_pass() -> None:
    assert not check_prompt("nude", SafetyConfig(enabled=False)).blocked
    assert not check_prompt("   ").blocked
    assert check_texts(["a quiet river", "", "nude figure"]).category == "sexual"
    assert not check_texts(["a quiet river", "山间小路"]).blocked


def test_blocked_shot_error_names_shot_category_and_term() -> None:
    verdict = check_prompt("两个人裸体")
    with pytest.raises(BlockedShotError) as info:
        raise_if_blocked(verdict, "s01-02", chapter="01")
    message = str(info.value)
    assert "s01-02" in message and "'01'" in message and "sexual" in message and "裸体" in message
    assert "storyboards/01.yaml" in message and "safety.extra_terms" in message
    assert isinstance(info.value, NovelcomicError)
    assert (info.value.shot_id, info.value.category, info.value.term) == ("s01-02", "sexual", "裸体")
    raise_if_blocked(check_prompt("a river"), "s01-03")  # allowed: no error


def test_image_classifier_hook() -> None:
    image = Image.new("RGB", (8, 8))
    verdict = check_image(image, lambda im: (True, "nsfw", 0.93))
    assert verdict.blocked and verdict.category == "image:nsfw" and verdict.score == pytest.approx(0.93)
    assert not check_image(image, lambda im: (False, "safe", 0.01)).blocked
    with pytest.raises(BackendError, match="blocked, label, score"):
        check_image(image, lambda im: "nope")  # type: ignore[arg-type,return-value]
    with pytest.raises(BackendError, match="blocked="):
        check_image(image, lambda im: ("yes", "x", 1.0))  # type: ignore[arg-type,return-value]


def test_term_file_is_valid_and_custom_files_load(tmp_path: Path) -> None:
    lists = load_terms()
    assert {"sexual", "minors_sexual", "violence_gore", "self_harm", "hate"} <= set(lists.categories)
    assert TERMS_FILE.is_file()
    custom = tmp_path / "terms.yaml"
    custom.write_text("categories:\n  weapons: {en: [bazooka], zh: [火箭筒]}\n", encoding="utf-8")
    mine = load_terms(str(custom))
    assert check_prompt("a man with a bazooka", terms=mine).category == "weapons"
    assert not check_prompt("nude", terms=mine).blocked
    with pytest.raises(NovelcomicError, match="not found"):
        load_terms(str(tmp_path / "missing.yaml"))
