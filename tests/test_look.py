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
