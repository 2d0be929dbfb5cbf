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


# --------------------------------------------------------------------------- the period's people


def test_men_of_old_china_tie_their_hair_up_and_most_wear_beards() -> None:
    """In 三国 nobody wears short hair, and a man of unknown gender does not wear it loose (he read
    as a woman); grown men mostly have beards; 关羽's 面如重枣 is a red face."""
    looks = [look_for(Character(id=f"c{i:02d}", name=f"某{i}"), "ancient_china", "zh") for i in range(40)]
    assert all(lk.hair_style in ("bun", "ponytail") for lk in looks)
    assert all(lk.hair_style == "bun" for lk in looks if lk.age == "adult")
    men = [look_for(Character(id=f"m{i:02d}", name=f"某{i}", voice=VoiceSpec(gender="male")), "ancient_china", "zh")
           for i in range(30)]
    assert all(lk.hair_style == "bun" for lk in men)
    assert 0.5 <= sum(lk.beard for lk in men) / len(men) < 1.0  # most, not all (刘备 is beardless in some looks)
    guan = look_for(Character(id="c06", name="关羽", appearance="身长九尺，髯长二尺，面如重枣"), "ancient_china", "zh")
    assert guan.beard and guan.skin[0] > guan.skin[1] + 60  # red
    young = look_for(Character(id="y", name="某", appearance="少年", voice=VoiceSpec(gender="male")), "ancient_china", "zh")
    assert not young.beard
    # women keep their hair styles and never get beards
    women = [look_for(Character(id=f"w{i}", name=f"某{i}", voice=VoiceSpec(gender="female")), "ancient_china", "zh")
             for i in range(20)]
    assert not any(lk.beard for lk in women) and {lk.hair_style for lk in women} >= {"long", "bun"}


def test_titles_tell_the_gender_when_nothing_else_does() -> None:
    period = "victorian_england"
    mrs = look_for(Character(id="mrs-bennet", name="Mrs. Bennet"), period, "en")
    miss = look_for(Character(id="jane", name="Jane", aliases=["Miss Bennet"]), period, "en")
    mr = look_for(Character(id="bingley", name="Mr. Bingley"), period, "en")
    sir = look_for(Character(id="lucas", name="Sir William Lucas"), period, "en")
    assert (mrs.gender, mrs.garment) == ("female", "dress") and (miss.gender, miss.garment) == ("female", "dress")
    assert (mr.gender, mr.garment) == ("male", "tailcoat") and (sir.gender, sir.garment) == ("male", "tailcoat")
    assert look_for(Character(id="h", name="何后"), "ancient_china", "zh").gender == "female"
    assert look_for(Character(id="z", name="张角", aliases=["天公将军"]), "ancient_china", "zh").gender == "male"
    assert look_for(Character(id="x", name="Elizabeth"), period, "en").gender == "unknown"  # no guessing from names
    # an honorific in the name wins over a wrong voice (the planner once gave Mr. Darcy a female voice)
    darcy = look_for(Character(id="mr-darcy", name="Mr. Darcy", voice=VoiceSpec(gender="female")), period, "en")
    assert (darcy.gender, darcy.garment) == ("male", "tailcoat")


def test_gentlemen_wear_dark_coats() -> None:
    from novelcomic.render.look import GENTLEMEN_PALETTE

    coats = {look_for(Character(id=f"g{i}", name=f"Mr. G{i}"), "victorian_england", "en").clothing for i in range(30)}
    assert coats <= set(GENTLEMEN_PALETTE) and all(sum(c) < 3 * 110 for c in coats)
    named = look_for(Character(id="g", name="Mr. G", appearance="a blue coat"), "victorian_england", "en")
    assert colour_distance(named.clothing, COLOURS["blue"][0]) < 60  # a colour the book names still wins
