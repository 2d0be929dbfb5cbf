"""The world classifiers (plan/world.py): place kinds, time and weather, the book's period,
species and extras — on phrases of real novels (the shared corpus, when present) and on
invented ones for books nobody tuned the rules on."""

from __future__ import annotations

from pathlib import Path

import pytest

from novelcomic.models import Location
from novelcomic.plan.world import (
    describe_location,
    detect_period,
    effective_period,
    is_group_figure,
    is_interior,
    location_kind,
    period_region,
    species_of,
    time_and_weather,
)

CORPUS = Path("/work/shared/corpus")


def _corpus(name: str) -> str:
    path = CORPUS / name
    if not path.exists():
        pytest.skip(f"{path} is not here")
    return path.read_text(encoding="utf-8")


# --------------------------------------------------------------------------- place kinds


@pytest.mark.parametrize("name, kind", [
    # Journey to the West style, a book the rules never saw
    ("花果山", "mountain"), ("水帘洞", "cave"), ("东海龙宫", "palace"), ("东海", "sea"), ("南海", "sea"),
    ("灵霄宝殿", "palace"), ("云端", "sky"), ("五行山下", "mountain"), ("流沙河", "river"),
    # 三国演义
    ("涿郡", "city_street"), ("桃园", "forest"), ("温德殿", "palace"), ("虎牢关", "battlefield"), ("汜水关", "battlefield"),
    ("黄巾营", "battlefield"), ("青州", "city_street"), ("广宗", "unknown"),
    ("馆驿", "interior"), ("北门", "city_street"), ("宫门", "palace"), ("辕门", "battlefield"), ("山门", "temple"),
    # the bundled stories and everyday places
    ("桃溪村", "village"), ("河边", "river"), ("山顶", "mountain"), ("山路", "mountain"), ("客栈", "interior"),
    ("长安街", "city_street"), ("寒山寺", "temple"), ("竹林", "forest"), ("草原", "field"), ("战场", "battlefield"),
    ("公司办公室", "interior"),
])
def test_chinese_place_kinds_come_from_the_head_noun(name: str, kind: str) -> None:
    assert location_kind(name, "", "zh") == kind


@pytest.mark.parametrize("name, kind", [
    ("the sea", "sea"), ("Baker Street", "city_street"), ("the church", "temple"), ("Hyde Park", "forest"),
    ("Lucas Lodge", "interior"), ("Hall of Mirrors", "interior"), ("Isle of Skye", "sea"),
    ("Grandpa's workshop", "interior"), ("the marsh", "river"), ("Misty Mountains", "mountain"),
    ("the Dragon's Cave", "cave"), ("Camelot Castle", "palace"), ("the battlefield", "battlefield"),
])
def test_english_place_kinds_come_from_the_head_noun(name: str, kind: str) -> None:
    assert location_kind(name, "", "en") == kind


def test_a_name_without_a_head_noun_is_read_from_how_the_text_names_it() -> None:
    pride = _corpus("pride_ch1-5.txt")
    assert location_kind("Longbourn", pride, "en") == "village"  # "…spirits to Longbourn, the village…"
    assert location_kind("Millbrook", "Millbrook was a small village at the edge of a wide grey marsh.", "en") == "village"
    assert location_kind("桃花坞", "桃花坞是一个小村子，村口有棵老槐树。", "zh") == "village"
    assert location_kind("洛阳", "洛阳城中一片混乱，洛阳城里人人自危。", "zh") == "city_street"
    # and else from the words around it, when they clearly agree
    sea = "大海茫茫，海浪拍打着船舷，海风吹得船帆猎猎作响。"
    assert location_kind("那里", sea, "zh") == "sea"
    assert location_kind("Pemberley", "", "en") == "unknown"


def test_describe_location_fills_a_location() -> None:
    fields = describe_location("水帘洞", "是夜，洞外下起了大雨。", "zh")
    loc = Location(id="l01", name="水帘洞", **fields)
    assert loc.kind == "cave" and loc.time_of_day == "night" and loc.weather == "rain"
    inside = describe_location("客栈", "那夜大雨。", "zh")
    assert inside["interior"] and inside["weather"] == "unknown"  # no rain drawn indoors
    assert is_interior("金銮殿", "palace", "zh") and not is_interior("东海龙宫", "palace", "zh")


# --------------------------------------------------------------------------- time and weather


def test_time_and_weather_only_when_the_text_says_so() -> None:
    sanguo = _corpus("sanguo_ch1-4.txt")
    storm = sanguo[sanguo.index("建宁二年"): sanguo.index("建宁二年") + 200]  # 忽然大雷大雨，加以冰雹
    assert time_and_weather(storm, "zh")[1] == "storm"
    assert time_and_weather("林小雨跑到河边，阿青在桥上等她。", "zh") == ("unknown", "unknown")  # 雨 in a name
    assert time_and_weather("雪白的狐狸在月光下奔跑。", "zh") == ("night", "unknown")  # 雪白 is a colour
    assert time_and_weather("黄昏时分，下起了小雨。", "zh") == ("dusk", "rain")
    assert time_and_weather("One foggy morning she was hunting for frogs.", "en") == ("day", "fog")
    assert time_and_weather("The storm broke at midnight with thunder and rain.", "en") == ("night", "storm")
    assert time_and_weather("She walked into the drawing-room.", "en") == ("unknown", "unknown")
    assert time_and_weather("", "en") == ("unknown", "unknown")


# --------------------------------------------------------------------------- period


JOURNEY = (
    "却说那花果山水帘洞中，美猴王与众猴饮酒作乐。忽一日，美猴王道：“我等虽不伏人王法律，将来年老血衰，暗中有阎王老子管着。”"
    "那猴王要去寻仙访道，学个长生不老之法。菩萨道：“这妖猴神通广大，会七十二般变化。”玉帝遣天兵天将捉拿妖猴，那猴使出法术，"
    "驾起筋斗云，直奔东海龙宫，向龙王讨兵器。龙王无奈，只得献出定海神针。妖怪们见了，纷纷逃散。"
)
MODERN_ZH = (
    "林晓下班后挤上地铁，手机响了，是公司的经理打来的电话。她回到公寓，打开电脑，给同学发微信。楼下的咖啡店还亮着灯，"
    "出租车在马路上排成长队。第二天上班，老板在办公室里等她。"
)
FANTASY_EN = (
    "The wizard raised his wand and spoke a spell. Far away in the realm of the elves, a dragon stirred. The goblins "
    "fled from the enchanted forest, and the witch brewed a potion of magic. The dwarves marched to the kingdom."
)
MODERN_EN = (
    "Sarah checked her phone as the taxi crawled through downtown traffic. Her office was on the twelfth floor; she "
    "took the elevator, opened her laptop and answered email until her boss called. After work she grabbed coffee "
    "and took the subway home to her apartment."
)


def test_period_from_the_books_own_text() -> None:
    assert detect_period(_corpus("sanguo_ch1-4.txt")[:20000], "zh") == "ancient_china"
    assert detect_period(_corpus("pride_ch1-5.txt")[:30000], "en") == "victorian_england"
    assert detect_period(JOURNEY, "zh") == "fantasy"
    assert detect_period(MODERN_ZH, "zh") == "modern_city"
    assert detect_period(FANTASY_EN, "en") == "fantasy"
    assert detect_period(MODERN_EN, "en") == "modern_city"


def test_a_single_hit_is_not_a_period() -> None:
    assert detect_period("He picked up the phone and looked out at the hills, the river and the old trees "
                         "for a long while, thinking of nothing at all. " * 3, "en") == "unknown"
    assert detect_period("", "zh") == "unknown"
    story = Path(__file__).resolve().parents[1] / "projects" / "lantern-fox" / "novel.txt"
    if story.exists():
        assert detect_period(story.read_text(encoding="utf-8"), "zh") in ("unknown", "ancient_china", "fantasy")


def test_the_project_period_overrides_unless_auto() -> None:
    assert effective_period("auto", "victorian_england") == "victorian_england"
    assert effective_period("modern_city", "ancient_china") == "modern_city"
    assert effective_period("auto", None) == "unknown"
    assert period_region("fantasy", "zh") == "fantasy_east" and period_region("fantasy", "en") == "fantasy_west"
    assert period_region("unknown", "zh") == "china" and period_region("unknown", "en") == "neutral"


# --------------------------------------------------------------------------- species and extras


@pytest.mark.parametrize("name, species", [
    ("美猴王", "monkey"), ("猴王", "monkey"), ("赤兔马", "horse"), ("东海龙王", "dragon"), ("白狐", "fox"), ("玉兔", "rabbit"),
    ("白骨精", "demon"), ("牛魔王", "demon"), ("黄鹤", "bird"), ("白龙马", "horse"),
    ("赵子龙", "human"), ("马超", "human"), ("曹操", "human"), ("诸葛亮", "human"), ("林小雨", "human"), ("关羽", "human"),
])
def test_chinese_species_from_the_name(name: str, species: str) -> None:
    assert species_of(name, "", "zh") == species


@pytest.mark.parametrize("name, species", [
    ("the White Rabbit", "rabbit"), ("Heron", "bird"), ("the Cheshire Cat", "cat"), ("Monkey King", "monkey"),
    ("Mr. Fox", "human"), ("Elizabeth", "human"), ("Mr. Bingley", "human"),
])
def test_english_species_from_the_name(name: str, species: str) -> None:
    assert species_of(name, "", "en") == species


def test_species_from_appearance_and_appositions() -> None:
    assert species_of("孙悟空", "那石猴孙悟空是一只猴，生在花果山上。", "zh") == "monkey"
    assert species_of("阿银", "", "zh", appearance="雪白的狐狸，尾巴尖上有一点红") == "fox"
    assert species_of("阿银", "", "zh", aliases=["白狐"]) == "fox"
    assert species_of("Reynard", "Then Reynard the Fox ran off into the wood.", "en") == "fox"
    assert species_of("Dinah", "Dinah was a cat, and Dinah is a cat still.", "en") == "cat"
    assert species_of("Smaug", "", "en", appearance="a great red dragon with golden eyes") == "dragon"
    assert species_of("Tobias", "Grandpa Tobias was a tall man with a silver beard.", "en") == "human"
    assert species_of("张飞", "张飞骑着一匹黑马，挺着丈八蛇矛。", "zh") == "human"  # rides a horse, is no horse


@pytest.mark.parametrize("name, group", [
    ("众猴", True), ("士兵", True), ("军士", True), ("众人", True), ("家人", True), ("侍卫", True), ("黄巾军", True),
    ("百姓", True), ("小妖", True), ("左右", True), ("诸葛亮", False), ("张飞", False), ("孙将军", False), ("刘备", False),
])
def test_chinese_group_figures(name: str, group: bool) -> None:
    assert is_group_figure(name, "zh") is group


@pytest.mark.parametrize("name, group", [
    ("guards", True), ("the guards", True), ("Servants", True), ("the crowd", True), ("the Bennets", True),
    ("the servant", True), ("Elizabeth", False), ("Mr. Darcy", False), ("Lady Lucas", False), ("Page", False),
    ("The Queen", False),
])
def test_english_group_figures(name: str, group: bool) -> None:
    assert is_group_figure(name, "en") is group
