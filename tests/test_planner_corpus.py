"""The heuristic planner measured on real novels (issue 13, part 6).

The texts are in the shared corpus beside the repository (``../shared/corpus``), the hand-written
labels in ``tests/data/gold/`` (sanguo_ch1-4.yaml, pride_ch1-5.yaml); the figures are computed by
``benchmarks/planner_eval.py``, which prints them all (``.venv/bin/python benchmarks/planner_eval.py``).

- The gold files are checked for consistency (always).
- Thresholds on the two excerpts: cast precision, main characters found with all their names on
  one id, quotes given to a character and to the right one.
- Small targeted cases on real passages: British single quotes, 刘备/玄德 merged, 卓大怒 is not a
  character, a group like 众人 gets no reference sheet.

Where the planner does not reach a target yet, the test says so as an xfail with the figure.
Only the excerpts are planned here, never a whole novel.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

from novelcomic.models import NARRATOR, Character, Line, ProjectConfig
from novelcomic.plan.base import ChapterText, PlanRequest, PlanResult
from novelcomic.plan.heuristic import HeuristicPlanner

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(__file__).resolve().parents[2] / "shared/corpus"
EXCERPTS = ("sanguo_ch1-4", "pride_ch1-5")


def _load_eval():
    spec = importlib.util.spec_from_file_location("planner_eval", REPO / "benchmarks/planner_eval.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("planner_eval", module)
    spec.loader.exec_module(module)
    return module


pe = _load_eval()


def _corpus_file(key: str) -> Path:
    path = CORPUS / Path(pe.load_gold(key).source).name
    if not path.is_file():
        pytest.skip(f"shared corpus not found: {path}")
    return path


@pytest.fixture(scope="module")
def scores() -> dict:
    """The planner's figures on each excerpt, computed once (a few seconds)."""
    out = {}
    for key in EXCERPTS:
        path = CORPUS / Path(pe.load_gold(key).source).name
        out[key] = pe.score_corpus(key, path=path) if path.is_file() else None
    return out


def _score(scores: dict, key: str):
    s = scores[key]
    if s is None:
        pytest.skip(f"shared corpus not found under {CORPUS}")
    assert not s.error, s.error
    return s


# ----------------------------------------------------------------------------- the gold files


@pytest.mark.parametrize("key", EXCERPTS)
def test_gold_file_is_consistent(key: str) -> None:
    gold = pe.load_gold(key)
    assert gold.language in ("zh", "en") and gold.chapters and gold.source.startswith("corpus/")
    people = {p.name for p in gold.people}
    assert len(people) == len(gold.people), "a canonical name is used twice"
    assert gold.mains, "no main character"
    # A name belongs to one person: shared ones go under `ambiguous`.
    owner: dict[str, str] = {}
    for p in gold.people:
        for n in p.names:
            assert n not in gold.ambiguous, f"{n} is both ambiguous and a name of {p.name}"
            assert owner.setdefault(n, p.name) == p.name, f"{n} names both {owner[n]} and {p.name}"
    assert not (set(owner) & gold.not_characters), "a not_characters entry is a real name"
    assert len(gold.quotes) >= 60
    for q in gold.quotes:
        assert q["speaker"] in people | {"narrator", "unknown"}, q
        assert 1 <= q["chapter"] <= gold.chapters, q
    per_chapter = [sum(q["chapter"] == c for q in gold.quotes) for c in range(1, gold.chapters + 1)]
    assert min(per_chapter) >= 5, per_chapter
    assert [q["chapter"] for q in gold.quotes] == sorted(q["chapter"] for q in gold.quotes)


@pytest.mark.parametrize("key", EXCERPTS)
def test_gold_names_and_quotes_are_in_the_text(key: str) -> None:
    gold = pe.load_gold(key)
    text = _corpus_file(key).read_text(encoding="utf-8")
    flat = pe.name_key(text)
    for p in gold.people:
        if not p.extra:
            missing = sorted(n for n in p.names if n not in flat)
            assert not missing, f"{p.name}: {missing} not in the text"
    offsets = pe.locate_quotes(text, gold.quotes)
    assert None not in offsets, [q["text"] for q, o in zip(gold.quotes, offsets) if o is None]
    assert offsets == sorted(offsets), "quotes out of reading order"


# ----------------------------------------------------------------------------- thresholds on the excerpts


@pytest.mark.parametrize("key", EXCERPTS)
def test_cast_precision(scores: dict, key: str) -> None:
    s = _score(scores, key)
    assert s.cast_precision >= 0.9, f"{s.cast_matched}/{s.cast}; false positives: {s.false_positives}"


@pytest.mark.parametrize("key", EXCERPTS)
def test_main_characters_found_with_all_their_names_on_one_id(scores: dict, key: str) -> None:
    s = _score(scores, key)
    assert len(s.mains_merged) == s.mains, s.merge_problems


@pytest.mark.parametrize("key", EXCERPTS)
def test_quotes_go_to_a_character(scores: dict, key: str) -> None:
    s = _score(scores, key)
    assert s.to_character_share >= 0.9, f"{s.speech_to_character}/{s.speech_quotes}: {s.wrong_quotes[:20]}"


@pytest.mark.parametrize("key", EXCERPTS)
def test_quotes_go_to_the_right_character(scores: dict, key: str) -> None:
    s = _score(scores, key)
    assert s.right_share >= 0.85, f"{s.speech_right}/{s.speech_quotes}: {s.wrong_quotes[:20]}"


def test_excerpts_are_planned_without_error(scores: dict) -> None:
    for key in EXCERPTS:
        s = _score(scores, key)
        assert s.chapters_found == s.chapters_expected
        assert s.cast > 0 and s.lines > 0
        assert s.quotes_located == s.quotes


# ----------------------------------------------------------------------------- targeted real passages


def _plan(text: str, lang: str) -> PlanResult:
    """Plan ``text`` as one chapter, after ingest's cleaning (which re-flows hard-wrapped lines)."""
    from novelcomic.ingest.clean import clean_text

    request = PlanRequest(config=ProjectConfig(title="t", language=lang), chapters=[ChapterText("01", "", clean_text(text))])
    return HeuristicPlanner().plan(request)


def _lines(result: PlanResult) -> list[Line]:
    return [ln for board in result.storyboards.values() for _, shot in board.shots() for ln in shot.lines]


def _names(c: Character) -> set[str]:
    return {pe.name_key(n) for n in (c.name, *c.aliases)}


def _speaker_of(result: PlanResult, quote: str) -> Character | None:
    """The character given the first storyboard line that contains ``quote`` (None: narration)."""
    key = pe.norm(quote)
    line = next((ln for ln in _lines(result) if key in pe.norm(ln.text)), None)
    assert line is not None, f"no line contains {quote!r}"
    if line.speaker == NARRATOR:
        return None
    return next((c for c in result.characters.characters if c.id == line.speaker), None)


# Pride and Prejudice, chapter 2, with the double quotes turned into British single quotes.
_PRIDE_CH2 = """\
{o}I do not believe Mrs. Long will do any such thing. She has two nieces of her own. She is a
selfish, hypocritical woman, and I have no opinion of her.{c}

{o}No more have I,{c} said Mr. Bennet; {o}and I am glad to find that you do not depend on her
serving you.{c}

Mrs. Bennet deigned not to make any reply, but, unable to contain herself, began scolding one
of her daughters.

{o}Don{a}t keep coughing so, Kitty, for Heaven{a}s sake! Have a little compassion on my nerves. You
tear them to pieces.{c}

{o}Kitty has no discretion in her coughs,{c} said her father; {o}she times them ill.{c}

{o}I do not cough for my own amusement,{c} replied Kitty fretfully. {o}When is your next ball to
be, Lizzy?{c}

{o}To-morrow fortnight.{c}

{o}Now, Kitty, you may cough as much as you choose,{c} said Mr. Bennet; and, as he spoke, he left
the room, fatigued with the raptures of his wife.

{o}What an excellent father you have, girls!{c} said she, when the door was shut.
"""


@pytest.mark.parametrize("marks", [("‘", "’", "’"), ("'", "'", "'")], ids=["curly", "straight"])
def test_british_single_quotes(marks: tuple[str, str, str]) -> None:
    o, c, a = marks
    result = _plan(_PRIDE_CH2.format(o=o, c=c, a=a), "en")
    expected = {
        "No more have I": "mr bennet",
        "and I am glad to find": "mr bennet",
        "Don't keep coughing so": "mrs bennet",
        "Kitty has no discretion": "mr bennet",  # said her father
        "she times them ill": "mr bennet",
        "I do not cough for my own": "kitty",  # replied Kitty
        "When is your next ball": "kitty",
        "Now, Kitty, you may cough": "mr bennet",
        "What an excellent father": "mrs bennet",  # said she: his wife, not Mr. Bennet
    }
    got = {}
    for quote, want in expected.items():
        speaker = _speaker_of(result, quote.replace("'", a))
        got[quote] = None if speaker is None else speaker.name
        assert speaker is not None and want in _names(speaker), got
    ids = {name: {c.id for c in result.characters.characters if name in _names(c)} for name in ("mr bennet", "mrs bennet")}
    assert all(len(v) == 1 for v in ids.values()) and ids["mr bennet"] != ids["mrs bennet"], ids


# 三国演义 第一回: 刘备 is introduced as 姓刘名备，字玄德 and called 玄德 from then on; 张飞 likewise.
_SANGUO_XUANDE = (
    "榜文行到涿县，引出涿县中一个英雄。那人不甚好读书；性宽和，寡言语，喜怒不形于色；素有大志，专好结交天下豪杰；"
    "生得身长七尺五寸，两耳垂肩，双手过膝，目能自顾其耳，面如冠玉，唇若涂脂；中山靖王刘胜之后，汉景帝阁下玄孙，"
    "姓刘名备，字玄德。昔刘胜之子刘贞，汉武时封涿鹿亭侯，后坐酎金失侯，因此遗这一枝在涿县。玄德祖刘雄，父刘弘。"
    "弘曾举孝廉，亦尝作吏，早丧。玄德幼孤，事母至孝；家贫，贩屦织席为业。家住本县楼桑村。其家之东南，有一大桑树，"
    "高五丈余，遥望之，童童如车盖。相者云：“此家必出贵人。”玄德幼时，与乡中小儿戏于树下，曰：“我为天子，当乘此车盖。”"
    "叔父刘元起奇其言，曰：“此儿非常人也！”因见玄德家贫，常资给之。年十五岁，母使游学，尝师事郑玄、卢植，与公孙瓒等为友。\n"
    "及刘焉发榜招军时，玄德年已二十八岁矣。当日见了榜文，慨然长叹。随后一人厉声言曰：“大丈夫不与国家出力，何故长叹？”"
    "玄德回视其人，身长八尺，豹头环眼，燕颔虎须，声若巨雷，势如奔马。玄德见他形貌异常，问其姓名。其人曰：“某姓张名飞，"
    "字翼德。世居涿郡，颇有庄田，卖酒屠猪，专好结交天下豪杰。恰才见公看榜而叹，故此相问。”玄德曰：“我本汉室宗亲，"
    "姓刘，名备。今闻黄巾倡乱，有志欲破贼安民，恨力不能，故长叹耳。”飞曰：“吾颇有资财，当招募乡勇，与公同举大事，如何。”"
    "玄德甚喜，遂与同入村店中饮酒。\n"
)


def test_xuande_is_liu_bei() -> None:
    result = _plan(_SANGUO_XUANDE, "zh")
    chars = result.characters.characters
    holders = [c for c in chars if _names(c) & {"刘备", "玄德"}]
    assert len(holders) == 1 and {"刘备", "玄德"} <= _names(holders[0]), [(c.id, c.name, c.aliases) for c in holders]
    liu_bei = holders[0]
    speaker = _speaker_of(result, "我本汉室宗亲")
    assert speaker is not None and speaker.id == liu_bei.id
    zhang_fei = _speaker_of(result, "吾颇有资财")  # 飞曰
    assert zhang_fei is not None and "张飞" in _names(zhang_fei)
    seer = _speaker_of(result, "此家必出贵人")  # 相者云
    assert seer is None or seer.id != liu_bei.id


# 三国演义 第三回: 卓大怒 / 卓大喜 are 董卓 being angry / glad, not people.
_SANGUO_ZHUO = (
    "卓问百官曰：“吾所言，合公道否？”卢植曰：“明公差矣。昔太甲不明，伊尹放之于桐宫；昌邑王登位方二十七日，造恶三千余条，"
    "故霍光告太庙而废之。今上虽幼，聪明仁智，并无分毫过失。公乃外郡刺史，素未参与国政，又无伊、霍之大才，何可强主废立之事？"
    "圣人云：有伊尹之志则可，无伊尹之志则篡也。”卓大怒，拔剑向前欲杀植。侍中蔡邕、议郎彭伯谏曰：“卢尚书海内人望，"
    "今先害之，恐天下震怖。”卓乃止。\n"
    "卓兵大败，退三十余里下寨，聚众商议。卓曰：“吾观吕布非常人也。吾若得此人，何虑天下哉！”帐前一人出曰：“主公勿忧。"
    "某与吕布同乡，知其勇而无谋，见利忘义。某凭三寸不烂之舌，说吕布拱手来降，可乎？”卓大喜，观其人，乃虎贲中郎将李肃也。"
    "卓曰：“汝将何以说之？”肃曰：“某闻主公有名马一匹，号曰赤兔，日行千里。须得此马，再用金珠，以利结其心。"
    "某更进说词，吕布必反丁原，来投主公矣。”\n"
)


def test_zhuo_da_nu_is_not_a_character() -> None:
    result = _plan(_SANGUO_ZHUO, "zh")
    junk = {"卓大怒", "大怒", "卓大喜", "大喜", "卓乃止", "卓问百官", "赤兔"}
    bad = [(c.id, c.name, c.aliases) for c in result.characters.characters if _names(c) & junk]
    assert not bad, bad
    speakers = [_speaker_of(result, q) for q in ("吾所言，合公道否", "吾观吕布非常人也", "汝将何以说之")]
    assert None not in speakers, speakers
    assert len({c.id for c in speakers if c}) == 1, speakers  # all three are 卓曰
    assert speakers[0] and _names(speakers[0]) & {"卓", "董卓"}


# 三国演义 第三回 and 第四回: 众人 and 众官 speak, as groups.
_SANGUO_CROWD = (
    "吴匡杀入内庭，见何苗亦提剑出。匡大呼曰：“何苗同谋害兄，当共杀之！”众人俱曰：“愿斩谋兄之贼！”苗欲走，四围砍倒。\n"
    "一日，于侍班阁子内见旧臣俱在，允曰：“今日老夫贱降，晚间敢屈众位到舍小酌。”众官皆曰：“必来祝寿。”当晚王允设宴后堂，"
    "公卿皆至。酒行数巡，王允忽然掩面大哭。众官惊问曰：“司徒贵诞，何故发悲？”允曰：“今日并非贱降，因欲与众位一叙，"
    "恐董卓见疑，故托言耳。”\n"
)

_CROWDS = {"众人", "众官", "众", "公卿", "百官", "众位"}


def test_crowds_get_no_reference_sheet() -> None:
    result = _plan(_SANGUO_CROWD, "zh")
    crowd = [c for c in result.characters.characters if _names(c) & _CROWDS]
    sheeted = [(c.id, c.name, c.role, c.group) for c in crowd if not (c.group or c.role == "extra")]
    assert not sheeted, sheeted
    for quote in ("愿斩谋兄之贼", "必来祝寿", "司徒贵诞"):
        speaker = _speaker_of(result, quote)
        assert speaker is None or speaker.group or speaker.role == "extra", (quote, speaker)
    wang_yun = _speaker_of(result, "今日老夫贱降")
    assert wang_yun is not None and _names(wang_yun) & {"王允", "允"}


def test_local_mid_clause_rule() -> None:
    assert not pe.local_ends_mid_clause("玄德曰：")
    assert not pe.local_ends_mid_clause("“此儿非常人也！”")
    assert not pe.local_ends_mid_clause("I have no objection to _that_.")
    assert not pe.local_ends_mid_clause("the lace upon Mrs. Hurst's gown--")
    assert pe.local_ends_mid_clause("玄德幼时，与乡中小儿戏于树下")
    assert pe.local_ends_mid_clause("said Mr. Bennet; and, as he spoke, he left the")


def test_quote_alignment_covers_split_and_joined_lines() -> None:
    """The alignment the figures rest on: a quote belongs to the line that covers its start,
    even when a line drops an attribution or the planner reworded the punctuation."""
    source = '"But it is," returned she; "for Mrs. Long has just been here."\n\n"What is his name?"\n\n"Bingley."'
    lines = [
        Line(speaker="mrs", text="But it is. For Mrs. Long has just been here."),  # attribution dropped
        Line(text="What is his name?"),
        Line(speaker="mrs", text="Bingley!"),
    ]
    normed, _ = pe.norm_with_map(source)
    spans = pe.locate_lines(normed, lines)
    assert None not in spans
    offsets = pe.locate_quotes(source, [{"text": "But it is,"}, {"text": "for Mrs. Long"}, {"text": "What is"}, {"text": "Bingley."}])
    covering = [next(i for i, (a, b) in enumerate(spans) if a <= o < b) for o in offsets]  # type: ignore[misc]
    assert covering == [0, 0, 1, 2]
    assert re.fullmatch(r"[a-z]+", pe.norm("Bingley!"))


def test_no_line_of_the_whole_pride_is_cut_mid_clause() -> None:
    """Issue 13: pride_full.txt — 61 chapters, and no storyboard line ends where the source has no
    clause boundary (hard wraps re-flowed, long sentences and speeches cut between clauses)."""
    from novelcomic.ingest.clean import clean_text
    from novelcomic.ingest.split import split_chapters
    from novelcomic.plan.text import lines_cut_mid_clause

    text = clean_text((CORPUS / "pride_full.txt").read_text(encoding="utf-8"))
    chapters = [ChapterText(c.id, c.title, c.text) for c in split_chapters(text, "en")]
    assert len(chapters) == 61
    result = HeuristicPlanner().plan(PlanRequest(config=ProjectConfig(title="p", language="en"), chapters=chapters))
    cut = {}
    for ch in chapters:
        lines = [ln.text for _, shot in result.storyboards[ch.id].shots() for ln in shot.lines]
        bad = lines_cut_mid_clause(lines, ch.text, "en")
        if bad:
            cut[ch.id] = [lines[i][-40:] for i in bad]
    assert not cut, cut


@pytest.mark.parametrize("key", ["pride_ch1-5", "sanguo_ch1-4"])
def test_planning_one_chapter_alone_finds_the_books_cast(key: str, tmp_path: Path) -> None:
    """`run NAME --chapters 1` on a new project plans chapter 1 alone: its cast and speakers must
    be those of planning the whole book (who is in the book is read from all of it), not the few
    names chapter 1 happens to spell out."""
    from novelcomic import pipeline
    from novelcomic.ingest.create import create_project
    from novelcomic.project import Project

    path = _corpus_file(key)
    boards = {}
    for name, chapters in (("alone", ["01"]), ("whole", None)):
        create_project(name, path, tmp_path)
        p = Project(tmp_path / name)
        pipeline.plan(p, chapters)
        boards[name] = p.storyboard("01").model_dump()
        p.close()
    assert boards["alone"] == boards["whole"]
    spoken = [ln for sc in boards["alone"]["scenes"] for sh in sc["shots"] for ln in sh["lines"] if ln["speaker"] != "narrator"]
    assert len(spoken) >= 10
