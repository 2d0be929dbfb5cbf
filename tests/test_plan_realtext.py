"""The heuristic planner on the shapes real novels have (issue 13): honorific names, pet names,
speakers named by relation, classical Chinese 曰 with one-character given names, courtesy names,
glued verbs, unnamed speakers named afterwards, verse, crowds, places by kind, the book's period,
a cast that stays in the hundreds. Passages are short real excerpts (Pride and Prejudice,
三国演义) or invented ones of the same shape; the whole-corpus figures are in
test_planner_corpus.py and benchmarks/planner_eval.py."""

from __future__ import annotations

import pytest

from novelcomic.ingest.clean import clean_text
from novelcomic.models import NARRATOR, Character, ProjectConfig
from novelcomic.plan import heuristic, zh_cast
from novelcomic.plan.base import ChapterText, PlanRequest, PlanResult
from novelcomic.plan.heuristic import HeuristicPlanner


def plan(text: str, lang: str, chapters: int = 1) -> PlanResult:
    parts = [clean_text(text)] if chapters == 1 else [clean_text(t) for t in text.split("\f")]
    request = PlanRequest(
        config=ProjectConfig(title="t", language=lang),
        chapters=[ChapterText(f"{i + 1:02d}", "", t) for i, t in enumerate(parts)],
    )
    return HeuristicPlanner().plan(request)


def by_name(result: PlanResult) -> dict[str, Character]:
    return {n: c for c in result.characters.characters for n in (c.name, *c.aliases)}


def speaker(result: PlanResult, quote: str) -> str | None:
    """Name of who says the first line containing ``quote`` (None: the narrator)."""
    for board in result.storyboards.values():
        for _, shot in board.shots():
            for line in shot.lines:
                if quote in line.text:
                    if line.speaker == NARRATOR:
                        return None
                    return next(c.name for c in result.characters.characters if c.id == line.speaker)
    raise AssertionError(f"no line contains {quote!r}")


# ----------------------------------------------------------------------------- English

PRIDE = """\
It is a truth universally acknowledged, that a single man in possession
of a good fortune, must be in want of a wife.

"My dear Mr. Bennet," said his lady to him one day, "have you heard that
Netherfield Park is let at last?"

Mr. Bennet replied that he had not.

"But it is," returned she; "for Mrs. Long has just been here, and she
told me all about it. Mrs. Long says so."

Mr. Bennet made no answer.

"Do you not want to know who has taken it?" cried his wife impatiently.

"_You_ want to tell me, and I have no objection to hearing it."

This was invitation enough. Long before the evening, she had decided.

"I hope Mr. Bingley will like it, Lizzy," said Mr. Bennet to Elizabeth.

"We are not in a way to know what Mr. Bingley likes," said her mother
resentfully. Mrs. Bennet was among the earliest of those who waited on
him. Mr. Bingley sat about ten minutes with him in his library.

"Another time, Lizzy," said her mother, "I would not dance with him."

"You began the evening well, Charlotte," said Mrs. Bennet with civil
self-command to Miss Lucas. "You were Mr. Bingley's first choice."

"Yes; but he seemed to like his second better," said Charlotte. The
Miss Lucases and the Miss Bennets met to talk over a ball. Sir William
Lucas had been formerly in trade in Meryton; Sir William was all
attention to everybody. They drove to Lucas Lodge. At Lucas Lodge
Mr. Darcy stood near them. Mr. Darcy danced only once. Mr. Bingley
danced every dance. Eliza was not there. Elizabeth Bennet laughed.
Elizabeth sat down. Lady Lucas smiled; Lady Lucas was kind.
"""


@pytest.fixture(scope="module")
def pride() -> PlanResult:
    return plan(PRIDE, "en")


def test_honorifics_keep_mr_and_mrs_bennet_apart(pride: PlanResult) -> None:
    names = by_name(pride)
    assert names["Mr. Bennet"].id != names["Mrs. Bennet"].id
    assert "Bennet" not in names  # the family name alone is nobody in particular
    assert "Mr" not in names and "Mrs" not in names


def test_pet_names_join_the_given_name(pride: PlanResult) -> None:
    names = by_name(pride)
    assert names["Lizzy"].id == names["Eliza"].id == names["Elizabeth"].id == names["Elizabeth Bennet"].id


def test_places_plurals_and_ordinary_words_are_not_people(pride: PlanResult) -> None:
    names = by_name(pride)
    for junk in ("Long", "Lucas Lodge", "Netherfield Park", "Which", "However"):
        assert junk not in names, junk
    assert names["Mrs. Long"].name == "Mrs. Long"  # with an honorific, Long is someone


def test_speakers_named_by_relation_and_pronoun(pride: PlanResult) -> None:
    assert speaker(pride, "My dear Mr. Bennet") == "Mrs. Bennet"  # said his lady
    assert speaker(pride, "But it is") == "Mrs. Bennet"  # returned she
    assert speaker(pride, "Do you not want to know") == "Mrs. Bennet"  # cried his wife
    assert speaker(pride, "We are not in a way to know") == "Mrs. Bennet"  # said her mother
    assert speaker(pride, "want to tell me") == "Mr. Bennet"  # untagged: the other one in the exchange


def test_a_line_called_to_someone_titled_makes_one_person(pride: PlanResult) -> None:
    names = by_name(pride)
    assert names["Miss Lucas"].id == names["Charlotte"].id


def test_genders_from_titles_and_families_as_groups(pride: PlanResult) -> None:
    names = by_name(pride)
    assert names["Mr. Darcy"].voice.gender == "male"
    assert names["Lady Lucas"].voice.gender == "female"
    assert names["Sir William Lucas"].id == names["Sir William"].id
    plural = [c for c in pride.characters.characters if c.name in ("Miss Lucases", "Miss Bennets")]
    assert all(c.group and c.role == "extra" for c in plural), [(c.name, c.group) for c in plural]


def test_plain_text_italics_are_dropped(pride: PlanResult) -> None:
    assert speaker(pride, "You want to tell me") == "Mr. Bennet"
    texts = [ln.text for b in pride.storyboards.values() for _, s in b.shots() for ln in s.lines]
    assert not any("_" in t for t in texts)


def test_a_long_speech_is_several_lines_of_one_speaker() -> None:
    speech = " ".join(f"Sentence number {i} of a speech that goes on and on about the ball." for i in range(12))
    result = plan(f'Mrs. Bennet came in. Mrs. Bennet sat.\n\n"{speech}" said Mrs. Bennet.\n', "en")
    lines = [ln for b in result.storyboards.values() for _, s in b.shots() for ln in s.lines if ln.speaker != NARRATOR]
    assert len(lines) >= 4
    assert len({ln.speaker for ln in lines}) == 1
    assert all(len(ln.text.split()) <= 70 for ln in lines)


# ----------------------------------------------------------------------------- Chinese

SANGUO = """\
时巨鹿郡有兄弟三人，一名张角，一名张宝，一名张梁。张角聚众数十万，自称天公将军。
榜文行到涿县，引出涿县中一个英雄，姓刘名备，字玄德。玄德见了榜文，慨然长叹。随后一人厉声言曰：“大丈夫不与国家出力，何故长叹？”玄德回视其人，问其姓名。其人曰：“某姓张名飞，字翼德。”玄德曰：“我本汉室宗亲，姓刘，名备。”飞曰：“吾颇有资财，当招募乡勇。”玄德甚喜。
为首闪出一将，姓曹名操字孟德。操曰：“吾乃曹操也。”玄德大喜。操引军去了。
董卓，字仲颖，陇西临洮人也。卓大怒，拔剑欲杀植。卓大喜曰：“吾得此人，何虑天下哉！”卓曰：“汝等勿言。”帐前一人出曰：“主公勿忧。”卓视之，乃虎贲中郎将李肃也。李肃引军去了。李肃大笑。卓曰：“汝将何以说之？”肃曰：“某闻主公有名马一匹，号曰赤兔。”卓怒曰：“何不早言！”
原来此事，人皆不知。后人有诗叹曰：“滚滚长江东逝水，浪花淘尽英雄。”
董太后与何太后不和。太后宣何进入宫，何太后曰：“汝勿多言。”董太后大怒。太后曰：“我自有主张。”众官皆曰：“愿听明公之令。”卓曰：“吾意已决。”
"""


@pytest.fixture(scope="module")
def sanguo() -> PlanResult:
    return plan(SANGUO, "zh")


def test_courtesy_names_are_one_person(sanguo: PlanResult) -> None:
    names = by_name(sanguo)
    assert names["玄德"].id == names["刘备"].id
    assert names["孟德"].id == names["曹操"].id
    assert names["仲颖"].id == names["董卓"].id


def test_glued_verbs_titles_and_horses_are_not_people(sanguo: PlanResult) -> None:
    names = by_name(sanguo)
    for junk in ("卓大怒", "卓大喜", "大怒", "马一匹", "赤兔", "原来", "后人"):
        assert junk not in names, junk


def test_one_character_given_names_speak(sanguo: PlanResult) -> None:
    assert speaker(sanguo, "吾颇有资财") == "张飞"  # 飞曰
    assert speaker(sanguo, "吾乃曹操也") == "曹操"  # 操曰
    assert speaker(sanguo, "汝等勿言") == "董卓"  # 卓曰
    assert speaker(sanguo, "何不早言") == "董卓"  # 卓怒曰


def test_who_names_themselves_and_who_is_named_afterwards(sanguo: PlanResult) -> None:
    assert speaker(sanguo, "某姓张名飞") == "张飞"  # 其人曰：“某姓张名飞…”
    assert speaker(sanguo, "我本汉室宗亲") == "刘备"  # 玄德曰：
    assert speaker(sanguo, "主公勿忧") == "李肃"  # 一人出曰…卓视之，乃…李肃也


def test_verse_is_narrated_and_titles_go_to_the_one_just_named(sanguo: PlanResult) -> None:
    assert speaker(sanguo, "滚滚长江东逝水") is None  # 后人有诗叹曰
    assert speaker(sanguo, "汝勿多言") == "何太后"
    assert speaker(sanguo, "我自有主张") == "董太后"  # 太后曰 after 董太后大怒


def test_crowds_are_extras_without_sheets(sanguo: PlanResult) -> None:
    crowd = by_name(sanguo)["众官"]
    assert crowd.group and crowd.role == "extra"
    assert speaker(sanguo, "愿听明公之令") == "众官"


def test_main_characters_come_first(sanguo: PlanResult) -> None:
    chars = sanguo.characters.characters
    assert chars[0].role == "main"
    assert {"董卓", "刘备"} <= {c.name for c in chars[:3]}
    assert [c.role for c in chars] == sorted((c.role for c in chars), key=["main", "supporting", "minor", "extra"].index)


def test_chinese_name_evidence_functions() -> None:
    assert zh_cast.glued_head("邹靖引", ["邹靖", "刘焉"]) == "邹靖"
    assert zh_cast.glued_head("卓大怒", ["董卓", "刘备"]) == "董卓"
    assert zh_cast.glued_head("王允", ["陈留王"]) is None  # 陈留王 has no given name 王
    assert zh_cast.title_split("司徒王允", ["王允"]) == ("司徒", "王允")
    assert zh_cast.abbreviates("何后", "何太后") and not zh_cast.abbreviates("何进", "何太后")
    links = zh_cast.courtesy_links("姓关名羽，字长生，后改云长。越骑校尉伍孚，字德瑜。", heuristic.ZH_SURNAMES)
    assert links["云长"] == links["长生"] == links["关长生"] == "关羽"
    assert links["德瑜"] == "伍孚"
    ev = zh_cast.person_evidence("帝御温德殿。玄德曰：“好。”玄德引兵至温德殿。", ["玄德", "温德殿"])
    assert ev["玄德"].person and not ev["温德殿"].person


# ----------------------------------------------------------------------------- the world, and scale

def test_places_have_kinds_and_the_book_its_period(sanguo: PlanResult, pride: PlanResult) -> None:
    assert sanguo.locations.period == "ancient_china"
    assert pride.locations.period == "victorian_england"
    kinds = {loc.name: loc.kind for loc in plan("张飞引兵至长江边。\n大军回到涿县城中。\n众人进入山洞。\n", "zh").locations.locations}
    assert "river" in kinds.values(), kinds


def test_the_cast_stays_in_the_hundreds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heuristic, "MAX_CAST", 5)
    text = "".join(f"张{chr(0x4e00 + 300 + i)}曰：“来。”张{chr(0x4e00 + 300 + i)}大笑。\n" for i in range(12))
    chars = plan(text, "zh").characters.characters
    assert len(chars) <= 5


def test_a_book_with_no_dialogue_or_names_says_so() -> None:
    result = plan("The rain fell on the hills all day.\n\nThe river rose and the fields were grey.\n", "en")
    assert any("no dialogue" in w for w in result.warnings)
    assert any("no character names" in w for w in result.warnings)
    assert result.storyboards["01"].scenes


def test_the_eldest_miss_is_the_eldest_daughter() -> None:
    text = (
        "Mrs. Bennet had seen her eldest daughter much admired. Mr. Bingley had danced with her twice. "
        "Jane was as much gratified by this as her mother. Elizabeth felt Jane's pleasure. Jane smiled.\n\n"
        "Mr. Darcy looked at the eldest Miss Bennet. Miss Bennet smiled at him. Elizabeth laughed.\n"
    )
    names = by_name(plan(text, "en"))
    assert names["Miss Bennet"].id == names["Jane"].id
    assert names["Elizabeth"].id != names["Jane"].id


def test_thoughts_are_spoken_by_the_thinker_in_both_languages() -> None:
    zh = plan("林小雨走进庙里。林小雨心想：“这里好冷。”阿青说：“快走吧。”林小雨点点头。阿青笑了。\n", "zh")
    assert speaker(zh, "这里好冷") == "林小雨"
    en = plan('Mara Quinn walked in. Mara Quinn sat down.\n\n"It is cold here," thought Mara. Mara sighed.\n', "en")
    assert speaker(en, "It is cold here") in ("Mara Quinn", "Mara")


# ----------------------------------------------------------------------------- other books' shapes (review)

WEB_NOVEL = """\
林小雨推开咖啡馆的门。服务员笑道：“欢迎光临，几位？”林小雨说：“两位。”
王诗涵耸耸肩，道：“你也没问啊。”林小雨无奈道：“好吧。”王诗涵不禁笑道：“你真好玩。”
李建军走了进来。李建军说：“我来晚了。”林先生是林小雨的父亲。林先生说：“回家吃饭。”服务员问道：“要点什么？”
"""


def test_a_modern_web_novel_keeps_its_waiters_fathers_and_sighs() -> None:
    result = plan(WEB_NOVEL, "zh")
    names = by_name(result)
    assert speaker(result, "欢迎光临") == "服务员"
    assert speaker(result, "你也没问啊") == "王诗涵"  # 诗 in a name is no verse
    assert speaker(result, "好吧") == "林小雨"  # 无奈道 is speech
    assert speaker(result, "你真好玩") == "王诗涵"  # 不禁笑道 too
    assert not names["李建军"].group  # a name ending in 军 is one man
    assert names["林先生"].id != names["林小雨"].id  # the father is not his daughter


XIYOU = """\
却说三藏师徒行至一座高山。八戒道：“师父，这山好高。”行者笑道：“呆子，怕甚么？”八戒道：“我饿了。”
悟空道：“你只知道吃。”沙僧道：“大师兄说得是。”八戒笑道：“猴哥莫恼。”行者道：“快走。”
萧何曰：“此事可行。”王羲之曰：“善。”
"""


def test_a_journey_to_the_west_passage_keeps_its_pilgrims() -> None:
    result = plan(XIYOU, "zh")
    assert speaker(result, "这山好高") == "八戒"
    assert speaker(result, "怕甚么") == "行者"
    assert speaker(result, "大师兄说得是") == "沙僧"
    assert speaker(result, "此事可行") == "萧何"  # 何 can end a given name
    assert speaker(result, "善。") == "王羲之"


def test_courtesy_names_with_compound_surnames() -> None:
    links = zh_cast.courtesy_links("覆姓诸葛，名亮，字孔明。诸葛亮，字孔明，琅琊人也。", heuristic.ZH_SURNAMES)
    assert links["孔明"] == "诸葛亮" and links.get("诸葛孔明") == "诸葛亮"
    assert "葛孔明" not in links and "葛亮" not in links.values()


def test_text_without_punctuation_is_still_cut_into_lines() -> None:
    result = plan("天" * 600 + "\n", "zh")
    lines = [ln.text for b in result.storyboards.values() for _, s in b.shots() for ln in s.lines]
    assert len(lines) > 3 and max(len(t) for t in lines) <= 3 * 80 + 2


def test_a_person_with_a_birds_name_is_a_person() -> None:
    result = plan("Grace Crane walked in. Grace Crane sat down. Robin Drake laughed. Robin Drake left.\n", "en")
    assert {c.species for c in result.characters.characters} == {"human"}
