"""Regression cases for reading looks from appearance text."""

from novelcomic.models import Character
from novelcomic.render.look import COLOURS, colour_distance, look_for


def test_braids_take_the_hair_colour_and_the_coat_the_clothing_colour() -> None:
    look = look_for(Character(id="c01", name="林小雨", appearance="扎着两条乌黑的辫子，穿着一件红色的棉袄"))
    assert colour_distance(look.clothing, COLOURS["red"][0]) < 60
    assert colour_distance(look.hair, COLOURS["black"][1]) < 60


def test_a_fox_named_in_an_alias_gets_fox_ears() -> None:
    fox = Character(id="c04", name="阿银", aliases=["白狐"], appearance="雪白的毛像月光一样发亮")
    assert look_for(fox).ears == "fox"
    assert look_for(Character(id="c01", name="林小雨", aliases=["小雨"])).ears is None


# --------------------------------------------------------------------------- species and period clothes

from novelcomic.models import VoiceSpec  # noqa: E402
from novelcomic.render.look import HANFU  # noqa: E402


def test_a_victorian_girl_wears_a_dress_not_a_hanfu() -> None:
    alice = Character(id="alice", name="Alice", appearance="a little girl with long fair hair",
                      voice=VoiceSpec(gender="female", age="child"))
    look = look_for(alice, "victorian_england", "en")
    assert look.garment == "dress" and not look.hanfu and look.garment not in HANFU
    gentleman = look_for(Character(id="darcy", name="Mr. Darcy", voice=VoiceSpec(gender="male")), "victorian_england", "en")
    assert gentleman.garment == "tailcoat" and not gentleman.hanfu and gentleman.waistcoat is not None
    # the same girl in a Chinese book of unknown period keeps the old hanfu look
    assert look_for(alice.model_copy(update={"name": "小红"}), None, "zh").hanfu


def test_modern_and_named_clothes() -> None:
    assert look_for(Character(id="m", name="Tom", appearance="jeans and a t-shirt"), "modern_city", "en").garment == "shirt"
    waistcoat = look_for(Character(id="r", name="x", appearance="a red waistcoat"), None, "en")
    assert waistcoat.garment == "tailcoat" and _red(waistcoat.waistcoat)
    general = look_for(Character(id="g", name="关羽", appearance="绿袍金甲，长须"), "ancient_china", "zh")
    assert general.armour and general.hanfu and general.beard


def test_species_are_drawn_as_animals_with_their_looks() -> None:
    rabbit = look_for(Character(id="wr", name="the White Rabbit", appearance="white fur, pink eyes, a waistcoat"),
                      "victorian_england", "en")
    assert rabbit.species == "rabbit" and rabbit.animal and rabbit.garment == "tailcoat"
    assert rabbit.eye_colour is not None and colour_distance(rabbit.eye_colour, COLOURS["pink"][0]) < 40
    assert colour_distance(rabbit.fur, COLOURS["white"][0]) < 40  # type: ignore[arg-type]
    king = look_for(Character(id="wk", name="美猴王"), "fantasy", "zh")
    assert king.species == "monkey" and king.hat == "crown"
    fox = look_for(Character(id="c04", name="阿银", aliases=["白狐"], appearance="雪白的毛像月光一样发亮"))
    assert fox.species == "fox" and fox.garment == "fur" and colour_distance(fox.fur, COLOURS["white"][0]) < 40  # type: ignore[arg-type]
    assert look_for(Character(id="h", name="赤兔马")).species == "horse"
    assert look_for(Character(id="k", name="k", species="cat")).species == "cat"  # the planner's field wins


def _red(c: tuple[int, int, int] | None) -> bool:
    return c is not None and c[0] > c[1] + 60 and c[0] > c[2] + 60
