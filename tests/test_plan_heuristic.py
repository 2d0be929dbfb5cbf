"""The heuristic planner on the bundled example stories and small inline texts."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from novelcomic.ingest.split import split_chapters
from novelcomic.models import NARRATOR, Character, CharactersFile, ProjectConfig, Storyboard
from novelcomic.plan.base import ChapterText, PlanRequest, PlanResult
from novelcomic.plan.heuristic import HeuristicPlanner
from novelcomic.registry import planners

REPO = Path(__file__).resolve().parents[1]
QUOTE_MARKS = "“”\"「」"


def _plan(text: str, lang: str, characters: CharactersFile | None = None, **options: object) -> PlanResult:
    chapters = [ChapterText(c.id, c.title, c.text) for c in split_chapters(text, lang)]
    request = PlanRequest(config=ProjectConfig(title="t", language=lang), chapters=chapters)  # type: ignore[arg-type]
    if characters is not None:
        request.characters = characters
    return HeuristicPlanner(**options).plan(request)  # type: ignore[arg-type]


def _example(story: str) -> tuple[dict, PlanResult]:
    gold = yaml.safe_load((REPO / "tests/data/gold" / f"{story}.yaml").read_text(encoding="utf-8"))
    text = (REPO / gold["source"]).read_text(encoding="utf-8")
    return gold, _plan(text, gold["language"])


@pytest.fixture(scope="module")
def fox() -> tuple[dict, PlanResult]:
    return _example("lantern-fox")


@pytest.fixture(scope="module")
def heron() -> tuple[dict, PlanResult]:
    return _example("clockwork-heron")


def _by_name(result: PlanResult) -> dict[str, Character]:
    return {c.name: c for c in result.characters.characters}


def _lines(board: Storyboard) -> list[tuple[str, str]]:
    return [(ln.speaker, ln.text) for _, shot in board.shots() for ln in shot.lines]


def _speaker_of(result: PlanResult, chapter: str, text: str) -> str:
    text = text[:-1] + "." if text.endswith(",") else text  # "Good heavens," said Tobias → line "Good heavens."
    for speaker, line in _lines(result.storyboards[chapter]):
        if line == text:
            return speaker
    raise AssertionError(f"no line {text!r} in chapter {chapter}")


def _gold_speakers(gold: dict, result: PlanResult) -> list[tuple[str, str, str]]:
    """(chapter id, gold line text, expected character id) for every gold line."""
    ids = {n: c.id for c in result.characters.characters for n in [c.name, *c.aliases]}
    out = []
    for chapter_id, chapter in zip(result.storyboards, gold["chapters"]):
        for g in chapter["dialogue"]:
            out.append((chapter_id, str(g["text"]), ids[g["speaker"]]))
    return out


# --------------------------------------------------------------------------- cast


def test_chinese_cast_with_aliases(fox: tuple[dict, PlanResult]) -> None:
    _, result = fox
    chars = _by_name(result)
    assert set(chars) == {"林小雨", "阿青", "陈伯", "阿银"}
    assert [c.id for c in result.characters.characters] == ["c01", "c02", "c03", "c04"]
    assert "小雨" in chars["林小雨"].aliases  # suffix alias
    assert "老渔夫" in chars["陈伯"].aliases  # "…老渔夫…村里人都叫他陈伯"
    assert "白狐" in chars["阿银"].aliases  # "我叫阿银"
    assert chars["林小雨"].voice.gender == "female" and chars["林小雨"].voice.age == "child"
    assert chars["阿青"].voice.gender == "male"
    assert chars["陈伯"].voice.gender == "male" and chars["陈伯"].voice.age == "old"
    assert "辫子" in chars["林小雨"].appearance and "棉袄" in chars["林小雨"].appearance
    assert "短褂" in chars["阿青"].appearance


def test_english_cast(heron: tuple[dict, PlanResult]) -> None:
    _, result = heron
    chars = _by_name(result)
    assert set(chars) == {"Pip", "Tobias", "Quill"}
    assert {c.id for c in chars.values()} == {"pip", "tobias", "quill"}
    assert {"Grandpa Tobias", "Grandpa"} <= set(chars["Tobias"].aliases)
    assert "heron" in chars["Quill"].aliases
    assert chars["Pip"].voice.gender == "female" and chars["Pip"].voice.age == "child"
    assert chars["Tobias"].voice.gender == "male" and chars["Tobias"].voice.age == "old"
    assert "copper-red hair" in chars["Pip"].appearance
    assert "silver beard" in chars["Tobias"].appearance


# --------------------------------------------------------------------------- speakers


@pytest.mark.parametrize(
    ("chapter", "index"),
    [
        ("01", 0),  # 林小雨说：“…”
        ("01", 1),  # 阿青问道：“…”
        ("01", 2),  # unattributed, alternating exchange
        ("01", 4),  # “我的灯笼！”小雨喊道。
        ("01", 5),  # “…”老渔夫笑道 → 陈伯
        ("01", 7),  # “真的吗？”她低声说。 → pronoun
        ("02", 1),  # 白狐开口说道 → 阿银
        ("02", 4),  # continuation after a beat
        ("02", 5),  # 小雨想了想，问道：
        ("02", 10),  # action beat before the quote
        ("03", 5),  # vocative / alternation
        ("03", 9),  # 他…轻声说 → 陈伯
    ],
)
def test_chinese_speakers(fox: tuple[dict, PlanResult], chapter: str, index: int) -> None:
    gold, result = fox
    expected = [x for x in _gold_speakers(gold, result) if x[0] == chapter][index]
    assert _speaker_of(result, chapter, expected[1]) == expected[2]


def test_english_speakers(heron: tuple[dict, PlanResult]) -> None:
    gold, result = heron
    for chapter, text, expected in _gold_speakers(gold, result):
        assert _speaker_of(result, chapter, text.strip()) == expected, text


def test_all_gold_lines_attributed(fox: tuple[dict, PlanResult]) -> None:
    gold, result = fox
    wrong = [t for ch, t, sid in _gold_speakers(gold, result) if _speaker_of(result, ch, t) != sid]
    assert not wrong


# --------------------------------------------------------------------------- lines


def test_narration_and_dialogue_split(fox: tuple[dict, PlanResult]) -> None:
    _, result = fox
    lines = _lines(result.storyboards["01"])
    texts = [t for _, t in lines]
    assert ("c01", "阿青，今晚我们一起去看灯会吧！") in lines
    assert (NARRATOR, "话音刚落，一阵大风吹过河面。") in lines
    for _, text in lines:
        assert not any(q in text for q in QUOTE_MARKS), text
        assert "林小雨说" not in text and "老渔夫笑道" not in text and "小雨喊道" not in text
    # the narration after an attribution stays narration
    assert any(t.startswith("两个孩子沿着河岸追了很远") for t in texts)
    emotions = {ln.text: ln.emotion for _, shot in result.storyboards["01"].shots() for ln in shot.lines}
    assert emotions["我的灯笼！"] == "excited"
    assert emotions["真的吗？"] == "whisper"
    assert emotions["别哭，孩子。"] == "happy"


def test_english_attribution_removed(heron: tuple[dict, PlanResult]) -> None:
    _, result = heron
    texts = [t for _, t in _lines(result.storyboards["01"])]
    assert "Good heavens." in texts and "Where did you find this?" in texts
    assert "The heron did not move." in texts
    assert not any("said Tobias" in t or "Pip asked" in t or '"' in t for t in texts)


# --------------------------------------------------------------------------- structure


@pytest.mark.parametrize("story", ["fox", "heron"])
def test_storyboards_validate_and_ids_exist(story: str, request: pytest.FixtureRequest) -> None:
    _, result = request.getfixturevalue(story)
    char_ids = {c.id for c in result.characters.characters}
    prop_ids = {p.id for p in result.props.props}
    loc_ids = {loc.id for loc in result.locations.locations}
    assert len(result.storyboards) == (3 if story == "fox" else 2)
    with_chars = without_chars = 0
    for board in result.storyboards.values():
        Storyboard.model_validate(board.model_dump())
        for scene, shot in board.shots():
            assert scene.location is None or scene.location in loc_ids
            assert shot.location is None or shot.location in loc_ids
            assert set(shot.characters) <= char_ids
            assert set(shot.props) <= prop_ids
            assert {ln.speaker for ln in shot.lines} <= char_ids | {NARRATOR}
            assert shot.lines and shot.image_prompt and shot.source
            assert shot.id.startswith(f"{scene.id}-")
            with_chars += bool(shot.characters)
            without_chars += not shot.characters
        last_shots = [scene.shots[-1] for scene in board.scenes]
        assert all(s.transition == "fadeblack" for s in last_shots)
        assert board.scenes[0].shots[0].camera.size in ("wide", "extreme_wide")
    assert with_chars and without_chars


def test_scene_break_makes_a_new_scene(fox: tuple[dict, PlanResult]) -> None:
    _, result = fox
    board = result.storyboards["02"]
    assert len(board.scenes) >= 2
    first_of_scenes = [scene.shots[0].lines[0].text for scene in board.scenes]
    assert "山路又陡又黑，风吹得树叶沙沙作响。" in first_of_scenes


def test_locations_and_props(fox: tuple[dict, PlanResult]) -> None:
    _, result = fox
    names = {loc.name for loc in result.locations.locations}
    assert "桃溪村" in names
    assert "灯笼" in {p.name for p in result.props.props}
    assert result.storyboards["01"].scenes[0].location is not None


def test_inline_scene_break_and_limits() -> None:
    text = (
        "第一章 雨夜\n\n"
        "大雨下了一整夜，街上空无一人。\n"
        "王小明撑着一把黑伞，穿着灰色的风衣，走进了茶馆。\n"
        "王小明说：“老板，来一壶茶。”\n"
        "掌柜笑道：“好嘞！”\n\n"
        "* * *\n\n"
        "第二天清晨，小明离开了镇子。\n"
        "“再见了。”他低声说。\n"
    )
    result = _plan(text, "zh", max_lines_per_shot=2)
    board = result.storyboards["01"]
    assert len(board.scenes) == 2
    assert all(len(shot.lines) <= 2 for _, shot in board.shots())
    ming = _by_name(result)["王小明"]
    assert "小明" in ming.aliases
    assert _speaker_of(result, "01", "老板，来一壶茶。") == ming.id
    assert _speaker_of(result, "01", "再见了。") == ming.id
    assert not board.scenes[0].shots[0].characters  # establishing shot


def test_existing_cast_is_kept() -> None:
    text = "第一章\n\n林小雨说：“你好。”\n阿青答道：“你好呀。”\n"
    cast = CharactersFile(characters=[Character(id="rain", name="林小雨", aliases=["小雨"], appearance="红棉袄")])
    result = _plan(text, "zh", characters=cast)
    chars = result.characters.characters
    assert chars[0].id == "rain" and chars[0].appearance == "红棉袄"
    assert [c.name for c in chars] == ["林小雨", "阿青"]
    assert chars[1].id != "rain"
    assert _speaker_of(result, "01", "你好。") == "rain"


def test_english_inline_and_unattributed_quote() -> None:
    text = (
        "Chapter 1\n\n"
        "The harbor was quiet at night.\n\n"
        '"Is anyone there?" asked Mara.\n\n'
        '"Only me," said Jonah.\n\n'
        '"Good."\n\n'
        '"Why?"\n'
    )
    result = _plan(text, "en")
    ids = {c.name: c.id for c in result.characters.characters}
    assert ids == {"Mara": "mara", "Jonah": "jonah"}
    assert _speaker_of(result, "01", "Good.") == "mara"
    assert _speaker_of(result, "01", "Why?") == "jonah"


# --------------------------------------------------------------------------- review fixes

ZH_NICKNAMES = (
    "第一章 药铺\n\n"
    "苏婉儿是药铺掌柜的女儿，镇上的人都叫她婉丫头。\n"
    "那天傍晚，小川背着竹篓来到药铺门口。\n"
    "“婉丫头，你爹在吗？”小川问。\n"
    "“不在，他上山采药去了。”婉丫头说。\n"
    "那老道自称青松道人，孩子们都叫他疯道士。\n"
    "疯道士笑道：“两个娃娃，跟我来。”\n\n"
    "第二章 龙潭\n\n"
    "三人来到山顶的龙潭边。\n"
    "苏婉儿说：“这里好冷。”\n"
    "一条白龙盘旋在半空，声音如雷：“三百年了，终于有人来了。”\n"
    "“你也来了？”小川惊讶地问。\n"
    "“我一直跟着你们。”婉丫头低声道。\n"
    "青松道人冷冷地说：“别怕，它不会伤人。”\n"
)


@pytest.fixture(scope="module")
def nicknames() -> PlanResult:
    return _plan(ZH_NICKNAMES, "zh")


def test_chinese_nickname_is_an_alias_of_the_named_character(nicknames: PlanResult) -> None:
    chars = _by_name(nicknames)
    assert "婉丫头" not in chars and "婉丫头" in chars["苏婉儿"].aliases  # 苏婉儿…都叫她婉丫头
    wan = chars["苏婉儿"].id
    assert _speaker_of(nicknames, "01", "不在，他上山采药去了。") == wan
    assert _speaker_of(nicknames, "02", "我一直跟着你们。") == wan


def test_chinese_self_named_descriptor_with_nickname(nicknames: PlanResult) -> None:
    chars = _by_name(nicknames)
    assert set(chars) == {"苏婉儿", "小川", "青松道人", "白龙"}
    taoist = chars["青松道人"]
    assert {"老道", "疯道士"} <= set(taoist.aliases) and "青松" not in taoist.aliases  # 老道自称…都叫他疯道士
    assert taoist.voice.age == "old"
    assert _speaker_of(nicknames, "01", "两个娃娃，跟我来。") == taoist.id
    assert _speaker_of(nicknames, "02", "别怕，它不会伤人。") == taoist.id


def test_chinese_colon_hands_the_quote_to_the_narrated_speaker(nicknames: PlanResult) -> None:
    chars = _by_name(nicknames)
    assert _speaker_of(nicknames, "02", "三百年了，终于有人来了。") == chars["白龙"].id
    texts = [t for _, t in _lines(nicknames.storyboards["02"])]
    assert "一条白龙盘旋在半空，声音如雷。" in texts  # the introducing clause stays narration


def test_chinese_adverb_between_name_and_speech_verb(nicknames: PlanResult) -> None:
    assert _speaker_of(nicknames, "02", "你也来了？") == _by_name(nicknames)["小川"].id  # 小川惊讶地问
    assert "小川惊讶地问。" not in [t for _, t in _lines(nicknames.storyboards["02"])]


def test_chinese_quoted_nickname_stays_in_narration() -> None:
    text = "第一章\n\n那老道自称青松道人，孩子们都叫他“疯道士”。\n“走吧。”青松道人说。\n“等等我！”疯道士又喊。\n"
    result = _plan(text, "zh")
    assert [c.name for c in result.characters.characters] == ["青松道人"]
    lines = _lines(result.storyboards["01"])
    assert (NARRATOR, "那老道自称青松道人，孩子们都叫他“疯道士”。") in lines
    assert [s for s, _ in lines].count(result.characters.characters[0].id) == 2


EN_FAMILY = (
    "Chapter 1\n\n"
    "Mara Quinn was seventeen the winter the boats stopped coming. Her father, old Tobias Quinn, called her "
    '"Little Gull" when she was small, and the name had stuck.\n\n'
    "Elias Brandt came down to the pier at dawn. Elias shivered. Brandt looked at the grey water for a long time.\n\n"
    '"Storm\'s coming," Mara said.\n\n'
    '"I know," Elias replied. "The gulls went inland."\n\n'
    'Tobias laughed from the doorway. "Little Gull, bring the nets in."\n\n'
    "Elias watched her go. Brandt was a patient man.\n"
)


@pytest.fixture(scope="module")
def family() -> PlanResult:
    return _plan(EN_FAMILY, "en")


def test_english_names_at_sentence_start_and_full_names(family: PlanResult) -> None:
    chars = _by_name(family)
    assert set(chars) == {"Mara Quinn", "Tobias Quinn", "Elias Brandt"}  # no "Quinn": a family name
    assert {"Elias", "Brandt"} <= set(chars["Elias Brandt"].aliases)
    assert "Tobias" in chars["Tobias Quinn"].aliases and "Mara" in chars["Mara Quinn"].aliases
    assert chars["Tobias Quinn"].voice.age == "old"  # old Tobias Quinn
    assert chars["Tobias Quinn"].voice.gender != "female"  # "called her" is about Mara
    assert _speaker_of(family, "01", "The gulls went inland.") == chars["Elias Brandt"].id


def test_english_quoted_nickname_stays_in_narration(family: PlanResult) -> None:
    chars = _by_name(family)
    lines = _lines(family.storyboards["01"])
    sentence = 'Her father, old Tobias Quinn, called her "Little Gull" when she was small, and the name had stuck.'
    assert (NARRATOR, sentence) in lines
    assert not any(t in ("Little Gull", "when she was small, and the name had stuck.") for _, t in lines)
    assert "Little Gull" in chars["Mara Quinn"].aliases
    assert _speaker_of(family, "01", "Little Gull, bring the nets in.") == chars["Tobias Quinn"].id


def test_dialogue_line_ends_with_a_full_stop_not_the_attribution_comma(family: PlanResult) -> None:
    texts = [t for _, t in _lines(family.storyboards["01"])]
    assert "Storm's coming." in texts and "I know." in texts
    assert not any(t.endswith(",") for t in texts)
    zh = _plan("第一章\n\n“好，”林小雨说，“我们走。”\n", "zh")
    assert [t for _, t in _lines(zh.storyboards["01"])] == ["好。", "我们走。"]


def test_text_without_dialogue_and_empty_chapter() -> None:
    request = PlanRequest(
        config=ProjectConfig(title="t", language="zh"),
        chapters=[ChapterText("01", "一", "山很高。水很长。"), ChapterText("02", "二", "")],
    )
    result = HeuristicPlanner().plan(request)
    assert result.characters.characters == []
    assert [ln.text for _, s in result.storyboards["01"].shots() for ln in s.lines] == ["山很高。", "水很长。"]
    assert result.storyboards["02"].scenes == []
    assert result.warnings


def test_deterministic_and_registered(heron: tuple[dict, PlanResult]) -> None:
    gold, result = heron
    again = _example("clockwork-heron")[1]
    assert {k: v.model_dump() for k, v in again.storyboards.items()} == {k: v.model_dump() for k, v in result.storyboards.items()}
    planner = planners.create("heuristic", {"max_chars_per_shot": 30})
    assert planner.name == "heuristic" and planner.max_chars_per_shot == 30
