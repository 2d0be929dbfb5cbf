"""Image prompts for a shot: polished by a language model, or built by rules when there is none.

A storyboard shot holds story material (its lines, the source passage, camera, mood, who is in
it, where it happens). An image model wants something else: concrete visual words, in English for
SD 1.5 / SDXL (Chinese is fine for Kolors), without idioms or literary images it cannot draw, and
with anything the text *negates* moved to the negative prompt — "没有青蛙的荷叶" must draw a lotus
leaf and keep frogs out, where a naive prompt would draw the frog.

- :func:`polish_prompt` asks the LLM (through ``generate_structured``) for the visual
  description and the things to keep out, then adds the characters' fixed appearance tokens, the
  lens words of the shot's camera and the style fragments, within the token budget.
- :func:`heuristic_prompt` does the same offline: the shot's narration, a rule-based negation
  pass (没有X的Y / 没有X / 不见X / without X / with no X / no X) and, for Chinese text going to an
  English-only model, a small glossary of common visual words and idioms.

Both return a :class:`PolishedPrompt`; neither touches the storyboard (the caller decides where
the prompt goes).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from novelcomic.errors import NovelcomicError
from novelcomic.llm.base import LLMBackend, Message
from novelcomic.models import NARRATOR, Character, Location, Scene, Shot
from novelcomic.styles import FAMILIES, ResolvedStyle, compose_prompt, default_budget, join_fragments

_CJK_RE = re.compile(r"[\u3400-\u9fff]")


@dataclass(frozen=True)
class PolishedPrompt:
    prompt: str
    negative: str
    notes: str = ""


class PromptAnswer(BaseModel):
    """What the model answers: the picture, and what must not be in it."""

    model_config = ConfigDict(extra="ignore")

    prompt: str = Field(min_length=1, description="Comma-separated visual description of the picture, most important first")
    negative: list[str] = Field(default_factory=list, description="Things that must NOT appear (the text negates them)")
    notes: str = Field("", description="Optional: how idioms or literary images were turned into visuals")


# --------------------------------------------------------------------------- the LLM path


def polish_prompt(
    llm: LLMBackend,
    shot: Shot,
    scene: Scene,
    characters: Mapping[str, Character],
    location: Location | None,
    style: ResolvedStyle,
    family: str,
    language: str,
    period: str = "unknown",
) -> PolishedPrompt:
    """The image prompt for ``shot``, written by ``llm`` and finished with looks, lens and style.

    ``period`` is the book's (models.Period; the pipeline passes project.yaml's, else the
    planner's): it sets clothes and buildings. A character's species and a place's kind and
    weather, when set, are named too.

    ``language`` is the story's ("zh"/"en"). The model writes English for ``sd15``/``sdxl``;
    for ``kolors`` it may write Chinese when the story is Chinese. Negated things it lists go to
    the negative prompt, and a rule-based pass catches any "without X" left in its description.
    Raises LLMOutputError (a BackendError) when the model gives no valid answer after repairs.
    """
    _check(family, language)
    from novelcomic.llm.structured import generate_structured

    zh_out = family == "kolors" and language == "zh"
    words = 40 if family != "kolors" else 60
    system = (
        "You turn one shot of a comic storyboard into a prompt for a text-to-image model "
        f"({'Stable Diffusion 1.5' if family == 'sd15' else 'SDXL' if family == 'sdxl' else 'Kolors'}).\n"
        f"- Write the prompt in {'Chinese' if zh_out else 'English'}, as comma-separated visual phrases, "
        f"most important first, at most {words} words.\n"
        "- Describe only what can be seen: people by look (not by name), their pose, action and expression, "
        "objects, place, time of day, light.\n"
        "- Turn idioms and literary images into the concrete scene they mean (e.g. 月黑风高 → dark moonless "
        "night, strong wind) — never draw a metaphor literally.\n"
        "- Anything the text says is absent or negated goes into `negative`, never into `prompt`: "
        "'没有青蛙的荷叶' → prompt 'lotus leaf', negative ['frog'].\n"
        "- `image_prompt`, when given, is the picture wanted: keep what it shows; the other facts only fill in "
        "what it leaves open.\n"
        "- Do not add art-style, camera or quality words; they are added afterwards."
    )
    user = json.dumps(_shot_facts(shot, scene, characters, location, period), ensure_ascii=False, indent=1)
    messages = [Message("system", system), Message("user", f"The shot:\n{user}")]
    answer = generate_structured(llm, messages, PromptAnswer, what=f"image prompt for shot {shot.id}")
    subject, negated = split_negations(answer.prompt)
    negatives = [n.strip() for n in answer.negative if n.strip()] + negated
    if family != "kolors":
        english = [n for n in negatives if not _CJK_RE.search(n)]
        english += [t for n in negatives if _CJK_RE.search(n) for t in gloss(n)]
        negatives = english
    return _finish(style, family, language, subject, shot, scene, characters, location, negatives,
                   [answer.notes] if answer.notes else [], period)


def _shot_facts(
    shot: Shot, scene: Scene, characters: Mapping[str, Character], location: Location | None, period: str = "unknown"
) -> dict:
    names = {cid: c.name for cid, c in characters.items()}
    facts = {
        "lines": [
            {"speaker": "narration" if ln.speaker == NARRATOR else names.get(ln.speaker, ln.speaker), "text": ln.text}
            for ln in shot.lines
        ],
        "image_prompt": shot.image_prompt,
        "source_passage": shot.source,
        "scene_summary": scene.summary,
        "camera": {"size": shot.camera.size, "angle": shot.camera.angle},
        "mood": shot.mood or scene.mood,
        "characters_in_shot": [
            {"name": c.name, "looks": c.appearance, "gender": c.voice.gender, "age": c.voice.age,
             **({"species": c.species} if c.species != "human" else {}),
             **({"a group of": "generic figures"} if c.group else {})}
            for c in (characters.get(cid) for cid in shot.characters)
            if c is not None
        ],
        "location": (
            {"name": location.name, "description": location.description, "time_of_day": location.time_of_day,
             "interior": location.interior,
             **({"kind": location.kind} if location.kind != "unknown" else {}),
             **({"weather": location.weather} if location.weather != "unknown" else {})}
            if location
            else None
        ),
    }
    if period not in ("unknown", "auto", ""):
        facts["period"] = _PERIOD_FACT.get(period, period)
    return facts


_PERIOD_FACT = {
    "ancient_china": "ancient China", "victorian_england": "Victorian England (19th century)",
    "modern_city": "the present day", "fantasy": "a fantasy world",
}


# --------------------------------------------------------------------------- the offline path


def heuristic_prompt(
    shot: Shot,
    scene: Scene,
    characters: Mapping[str, Character],
    location: Location | None,
    style: ResolvedStyle,
    family: str,
    language: str,
    period: str = "unknown",
) -> PolishedPrompt:
    """The image prompt for ``shot`` by rules alone (deterministic, no model, no network).
    ``period``, species, kind and weather as in :func:`polish_prompt`.

    The subject is the shot's narration (else its source passage, else who is talking);
    negations in it are moved to the negative prompt. Chinese text going to ``sd15``/``sdxl``
    is reduced to the English of the visual words and idioms the glossary knows; what it does
    not know is left out and named in ``notes``.
    """
    _check(family, language)
    text = _subject_text(shot, characters, language, location)
    cleaned, negated = split_negations(text)
    notes: list[str] = []
    if family != "kolors" and _CJK_RE.search(cleaned):
        subject = ", ".join(gloss(cleaned))
        if not subject:
            notes.append("no visual word of the text is in the glossary; configure an LLM to translate it")
    else:
        subject = _trim_chars(cleaned, 80) if family == "kolors" else cleaned
    negatives: list[str] = []
    for term in negated:
        if family == "kolors" or not _CJK_RE.search(term):
            negatives.append(term)
        if _CJK_RE.search(term):
            english = gloss(term)
            negatives += english
            if not english and family != "kolors":
                notes.append(f"negated {term!r} is not in the glossary and was left out of the negative prompt")
    return _finish(style, family, language, subject, shot, scene, characters, location, negatives, notes, period)


def visual_text(shot: Shot, characters: Mapping[str, Character], location: Location | None) -> str:
    """What the shot's ``image_prompt`` asks to see, without the names (a diffusion model draws
    people by look, and the looks and the place are added by :func:`_finish`): the planners write
    "地点（夜晚），名字（外貌），动作", which leaves the action; a prompt the user wrote is kept whole."""
    text = shot.image_prompt.strip()
    if not text:
        return ""
    names = [n for c in characters.values() for n in (c.name, *c.aliases) if n.strip()]
    if location is not None:
        names += [n for n in (location.name, *location.aliases) if n.strip()]
    for name in sorted(set(names), key=len, reverse=True):
        edge = r"\b" if name[:1].isascii() and name[:1].isalnum() else ""  # "Ann" never cuts "Annual"
        text = re.sub(edge + re.escape(name) + edge + r"\s*(?:（[^）]*）|\([^)]*\))?", "", text)
    parts = [p.strip() for p in re.split(r"[，,、]", text)]
    sep = "，" if _CJK_RE.search(text) else ", "
    return sep.join(p for p in parts if p and not re.fullmatch(r"[\s（）()。.!！?？]*", p))


def _subject_text(shot: Shot, characters: Mapping[str, Character], language: str, location: Location | None = None) -> str:
    visual = visual_text(shot, characters, location)
    if visual:
        return visual
    narration = [ln.text for ln in shot.lines if ln.is_narration]
    if narration:
        return " ".join(narration[:2])
    if shot.source.strip():
        first = re.split(r"(?<=[。！？!?.])\s*", shot.source.strip())[0]
        return first
    speakers = [characters[ln.speaker].name for ln in shot.lines if ln.speaker in characters]
    if speakers:
        return f"{speakers[0]}在说话" if language == "zh" else f"{speakers[0]} talking"
    return ""


# --------------------------------------------------------------------------- shared finishing


_MOOD_EN = {
    "calm": "calm, serene", "tense": "tense atmosphere", "sad": "melancholy, somber", "joyful": "cheerful, bright",
    "mysterious": "mysterious atmosphere", "action": "dynamic action",
}
_MOOD_ZH = {"calm": "宁静", "tense": "紧张氛围", "sad": "忧伤", "joyful": "欢快明亮", "mysterious": "神秘氛围", "action": "动感"}
_TIME_EN = {"day": "daytime", "night": "night", "dusk": "dusk", "dawn": "dawn"}
_TIME_ZH = {"day": "白天", "night": "夜晚", "dusk": "黄昏", "dawn": "清晨"}


def _finish(
    style: ResolvedStyle,
    family: str,
    language: str,
    subject: str,
    shot: Shot,
    scene: Scene,
    characters: Mapping[str, Character],
    location: Location | None,
    negatives: list[str],
    notes: list[str],
    period: str = "unknown",
) -> PolishedPrompt:
    zh = family == "kolors" and language == "zh"
    subject = re.sub(r"[。！？!?.…]+(?=[，,]|$)", "", subject.strip())
    cast = [characters[cid] for cid in shot.characters if cid in characters]
    who = [_figure(c, zh) for c in cast]
    subject = join_fragments([", ".join(w for w in who if w), subject], sep="，" if zh else ", ")
    appearance = [c.appearance for c in cast if c.appearance.strip()]
    mood = shot.mood or scene.mood
    composed = compose_prompt(
        style,
        subject,
        family,
        size=shot.camera.size,
        angle=shot.camera.angle,
        appearance=appearance,
        setting=_setting_with_period(location, family, language, period),
        mood=(_MOOD_ZH if zh else _MOOD_EN).get(mood, "") if mood else "",
        extra_negative=negatives,
        max_tokens=default_budget(family),
    )
    if composed.dropped:
        notes.append("left out to fit the token budget: " + "; ".join(composed.dropped))
    return PolishedPrompt(composed.prompt, composed.negative, " ".join(n for n in notes if n))


_SPECIES_ZH = {
    "monkey": "猴子", "fox": "狐狸", "rabbit": "兔子", "dragon": "中国龙", "demon": "妖怪", "bird": "鸟", "cat": "猫",
    "dog": "狗", "horse": "马", "tiger": "老虎", "other": "动物",
}


def _figure(c: Character, zh: bool) -> str:
    """"young woman" / "少女" from the voice's gender and age, so the model draws the right person;
    a non-human character by its species ("anthropomorphic monkey …"); a group as a crowd."""
    species = getattr(c, "species", "human")
    if species != "human":
        from novelcomic.render.prompts import SPECIES_WORDS

        return _SPECIES_ZH.get(species, "动物") if zh else SPECIES_WORDS.get(species, "animal character")
    if getattr(c, "group", False):
        return "一群人" if zh else "a group of people"
    return _person(c, zh)


def _person(c: Character, zh: bool) -> str:
    g, a = c.voice.gender, c.voice.age
    if zh:
        table = {("female", "child"): "小女孩", ("male", "child"): "小男孩", ("female", "young"): "少女",
                 ("male", "young"): "少年", ("female", "adult"): "女子", ("male", "adult"): "男子",
                 ("female", "old"): "老妇人", ("male", "old"): "老人"}
    else:
        table = {("female", "child"): "little girl", ("male", "child"): "little boy", ("female", "young"): "young woman",
                 ("male", "young"): "young man", ("female", "adult"): "woman", ("male", "adult"): "man",
                 ("female", "old"): "old woman", ("male", "old"): "old man"}
    if (g, a) in table:
        return table[(g, a)]
    if g != "unknown":
        return ("女子" if g == "female" else "男子") if zh else ("woman" if g == "female" else "man")
    return ""


_KIND_ZH = {
    "sea": "大海", "mountain": "山峰", "cave": "山洞", "forest": "森林", "river": "河边", "palace": "宫殿", "temple": "寺庙",
    "city_street": "街道", "village": "村庄", "interior": "室内", "battlefield": "战场", "sky": "云端天空", "field": "田野",
}
_WEATHER_ZH = {"clear": "晴朗", "rain": "下雨", "snow": "下雪", "fog": "雾气", "storm": "暴风雨", "wind": "大风"}
_PERIOD_ZH = {
    "ancient_china": "中国古代，汉服，古典建筑", "victorian_england": "维多利亚时代英国，十九世纪服饰",
    "modern_city": "现代都市，现代服装", "fantasy": "仙侠世界，古风",
}


def _setting(location: Location | None, family: str, language: str) -> str:
    if location is None:
        return ""
    from novelcomic.render.prompts import KIND_WORDS, WEATHER_WORDS

    time = location.time_of_day if location.time_of_day != "unknown" else ""
    kind = getattr(location, "kind", "unknown")
    weather = getattr(location, "weather", "unknown")
    if family == "kolors" and language == "zh":
        parts = (location.name, _KIND_ZH.get(kind, ""), _TIME_ZH.get(time, ""), _WEATHER_ZH.get(weather, ""),
                 "室内" if location.interior and kind != "interior" else "")
        return "，".join(p for p in parts if p)
    words = [location.name, location.description]
    if any(_CJK_RE.search(w) for w in words):
        place = gloss(" ".join(words))[:3]
    else:
        place = [location.name] if location.name else []
    extra = [KIND_WORDS.get(kind, "") if kind != "unknown" else "", _TIME_EN.get(time, ""),
             WEATHER_WORDS.get(weather, "") if weather != "unknown" else "",
             "indoors" if location.interior and kind != "interior" else ""]
    return ", ".join(p for p in [*place, *extra] if p)


def _setting_with_period(location: Location | None, family: str, language: str, period: str) -> str:
    setting, era = _setting(location, family, language), _period(period, family, language)
    if not era:
        return setting
    return ("，" if family == "kolors" and language == "zh" else ", ").join(p for p in (setting, era) if p)


def _period(period: str, family: str, language: str) -> str:
    """Words for the book's period (clothes, buildings); nothing while it is unknown."""
    if period in ("unknown", "auto", ""):
        return ""
    if family == "kolors" and language == "zh":
        return _PERIOD_ZH.get(period, "")
    from novelcomic.render.prompts import period_words

    return period_words(period, language)


def _check(family: str, language: str) -> None:
    if family not in FAMILIES:
        raise NovelcomicError(f"unknown render family {family!r} (expected one of {', '.join(FAMILIES)})")
    if language not in ("zh", "en"):
        raise NovelcomicError(f"unknown language {language!r} (expected zh or en)")


def _trim_chars(text: str, n: int) -> str:
    text = text.strip()
    if len(text) <= n:
        return text
    cut = max(text.rfind(p, 0, n) for p in "，。；！？,")
    return text[: cut if cut > n // 2 else n]


# --------------------------------------------------------------------------- negations


_ZH_QUANT = r"(?:任何|一[个只片丝点条朵位棵匹头株颗滴]|半[点个丝])?"
_ZH_TERM = r"[\u4e00-\u9fff]{1,6}"
_ZH_END = r"(?=[，。！？；、,.!?;\s]|$)"
_ZH_OF_RE = re.compile(rf"没有(?P<q>{_ZH_QUANT})(?P<x>[\u4e00-\u9fff]{{1,6}}?)的(?P<y>[\u4e00-\u9fff]{{1,8}})")
_ZH_PLAIN_RE = re.compile(rf"(?:没有|看不见|看不到|不见|毫无|没了){_ZH_QUANT}(?P<x>{_ZH_TERM}){_ZH_END}")
_ZH_EMPTY_RE = re.compile(r"空无一人|空无人烟|杳无人烟|渺无人烟")
_EN_TERM = r"(?P<x>[a-z][a-z\- ]{0,40}?)(?=\s*(?:[,.;:!?]|$|\band\b|\bor\b|\bbut\b|\bin\b|\bon\b|\bat\b))"
_EN_RE = re.compile(rf"\b(?:without|with no|not a single|devoid of)\s+(?:any\s+|a\s+|an\s+|the\s+)?{_EN_TERM}", re.IGNORECASE)
_EN_NO_RE = re.compile(rf"(?:^|(?<=[,;.:]))\s*no\s+{_EN_TERM}", re.IGNORECASE)
_EN_NOT_THINGS = frozenset({"one", "longer", "more", "matter", "doubt", "way", "less", "sooner", "time"})


def split_negations(text: str) -> tuple[str, list[str]]:
    """``text`` with negated things removed, and those things.

    ``没有青蛙的荷叶`` → (``荷叶``, [``青蛙``]); ``天空中没有一片云。`` → (``天空中。``, [``云``]);
    ``a pond without frogs`` → (``a pond``, [``frogs``]). Only patterns that reliably mean
    "absent from the picture" are taken: a clause must end after a bare 没有X, so
    ``没有人知道…`` (nobody knows) is left alone.
    """
    negated: list[str] = []

    def take(term: str) -> None:
        term = term.strip(" -")
        if term and term.casefold() not in (t.casefold() for t in negated):
            negated.append(term)

    def of(m: re.Match[str]) -> str:
        take(m["x"])
        return m["y"]

    def plain(m: re.Match[str]) -> str:
        take(m["x"])
        return ""

    def empty(m: re.Match[str]) -> str:
        take("人")
        take("people")
        return "空荡荡"

    def english(m: re.Match[str]) -> str:
        if m["x"].strip().casefold() in _EN_NOT_THINGS:
            return m.group(0)
        take(m["x"])
        return ""

    out = _ZH_OF_RE.sub(of, text)
    out = _ZH_PLAIN_RE.sub(plain, out)
    out = _ZH_EMPTY_RE.sub(empty, out)
    out = _EN_RE.sub(english, out)
    out = _EN_NO_RE.sub(english, out)
    out = re.sub(r"\s{2,}", " ", out)
    out = re.sub(r"\s+([,.;:!?])", r"\1", out)
    out = re.sub(r"([，,])\s*(?=[，,。.]|$)", "", out).strip(" ,，")
    return out, negated


# --------------------------------------------------------------------------- glossary


# Common visual words and idioms of Chinese fiction → English image-prompt words. Idioms become the
# scene they mean. Longest match wins, so 荷叶 is not read as 荷 + 叶.
_GLOSSARY = """
月黑风高=dark moonless night, strong wind|风和日丽=sunny calm day, gentle breeze|大雨倾盆=torrential rain
倾盆大雨=torrential rain|电闪雷鸣=lightning, thunderstorm|鸟语花香=blooming flowers, singing birds
春暖花开=spring blossoms|秋高气爽=clear autumn sky|白雪皑皑=thick white snow|冰天雪地=snowy frozen land
万籁俱寂=silent still night|灯火通明=brightly lit|人山人海=huge crowd|车水马龙=busy street traffic
夕阳西下=setting sun|旭日东升=rising sun|繁星点点=starry sky|烟雨蒙蒙=misty drizzle|云雾缭绕=swirling mist
怒发冲冠=furious, hair bristling|泪流满面=face streaming with tears|喜出望外=overjoyed|目瞪口呆=stunned, mouth open
惊慌失措=panicked|咬牙切齿=gritting teeth|眉开眼笑=beaming smile|愁眉苦脸=worried frown|垂头丧气=dejected, head down
剑拔弩张=tense standoff, weapons drawn|刀光剑影=clashing swords|荷叶=lotus leaf|荷花=lotus flower|莲花=lotus flower
青蛙=frog|蝴蝶=butterfly|蜻蜓=dragonfly|萤火虫=fireflies|燕子=swallow|乌鸦=crow|老鹰=eagle|仙鹤=crane
白鹤=white crane|鸟=bird|鱼=fish|锦鲤=koi|猫=cat|狗=dog|马=horse|牛=ox|羊=sheep|狼=wolf|老虎=tiger|狐狸=fox
兔子=rabbit|蛇=snake|龙=dragon|凤凰=phoenix|鹿=deer|猴子=monkey|熊=bear
月亮=moon|明月=bright moon|月光=moonlight|太阳=sun|阳光=sunlight|夕阳=sunset|朝阳=morning sun|星星=stars
星空=starry sky|银河=milky way|天空=sky|云=clouds|乌云=dark clouds|彩虹=rainbow|雨=rain|雪=snow|雾=fog
风=wind|雷=thunder|闪电=lightning|冰=ice|火=fire|烟=smoke|灯笼=lantern|蜡烛=candle|灯=lamp|篝火=campfire
山=mountain|高山=tall mountains|群山=mountain range|山峰=mountain peak|悬崖=cliff|山谷=valley|山洞=cave
森林=forest|树林=woods|竹林=bamboo forest|竹子=bamboo|松树=pine tree|柳树=willow tree|梅花=plum blossoms
桃花=peach blossoms|樱花=cherry blossoms|花=flowers|草地=meadow|草=grass|树=tree|落叶=falling leaves|枫叶=maple leaves
河=river|小河=stream|江=wide river|湖=lake|海=sea|大海=ocean|海边=seaside|沙滩=beach|池塘=pond|瀑布=waterfall
小溪=creek|岸边=shore|河边=riverbank|岛=island|沙漠=desert|田野=fields|稻田=rice paddies|荒野=wilderness
村庄=village|村子=village|小镇=small town|城市=city|街道=street|小巷=alley|集市=market|市场=market
宫殿=palace|皇宫=imperial palace|寺庙=temple|庙=temple|塔=pagoda|城墙=city wall|城门=city gate|客栈=inn
酒馆=tavern|茶馆=teahouse|学校=school|教室=classroom|医院=hospital|办公室=office|房间=room|卧室=bedroom
厨房=kitchen|院子=courtyard|庭院=courtyard|花园=garden|屋顶=rooftop|窗户=window|窗=window|门=door|楼梯=stairs
桥=bridge|船=boat|小船=small boat|渔船=fishing boat|马车=carriage|汽车=car|火车=train|飞机=airplane
剑=sword|刀=blade|弓=bow|箭=arrows|书=book|信=letter|伞=umbrella|扇子=folding fan|镜子=mirror|桌子=table
椅子=chair|床=bed|茶=tea|酒=wine|碗=bowl|篮子=basket|鱼竿=fishing rod|渔网=fishing net|钥匙=key|宝石=gem
黑夜=night|夜晚=night|夜=night|深夜=late night|黄昏=dusk|傍晚=evening|清晨=early morning|早晨=morning
白天=daytime|中午=noon|春天=spring|夏天=summer|秋天=autumn|冬天=winter
少女=young woman|少年=young man|女孩=girl|男孩=boy|孩子=child|老人=old man|老妇人=old woman|姑娘=young woman
人群=crowd|士兵=soldiers|人=person|男人=man|女人=woman|母亲=mother|父亲=father
哭=crying|流泪=tears|笑=smiling|微笑=smiling|大笑=laughing|奔跑=running|跑=running|走=walking|坐=sitting
站=standing|躺=lying down|跳=jumping|飞=flying|打斗=fighting|拥抱=hugging|回头=looking back|低头=head bowed
抬头=looking up|跪=kneeling|握手=shaking hands|挥手=waving|读书=reading|写字=writing|喝茶=drinking tea
钓鱼=fishing|划船=rowing a boat|骑马=riding a horse|睡觉=sleeping|吃饭=eating|唱歌=singing|跳舞=dancing
安静=quiet|寂静=silent|黑暗=darkness|明亮=bright|金色=golden|红色=red|白色=white|黑色=black|蓝色=blue
绿色=green|破旧=shabby|古老=ancient|巨大=huge|小小=tiny|空荡荡=empty
"""


@functools.lru_cache(maxsize=1)
def _glossary() -> tuple[dict[str, str], int]:
    table: dict[str, str] = {}
    for entry in re.split(r"[|\n]", _GLOSSARY):
        if "=" in entry:
            zh, en = entry.split("=", 1)
            table[zh.strip()] = en.strip()
    return table, max(len(k) for k in table)


def gloss(text: str) -> list[str]:
    """English for the glossary's words found in Chinese ``text``, in order, without repeats."""
    table, longest = _glossary()
    out: list[str] = []
    i = 0
    while i < len(text):
        for n in range(min(longest, len(text) - i), 0, -1):
            en = table.get(text[i : i + n])
            if en:
                if en not in out:
                    out.append(en)
                i += n
                break
        else:
            i += 1
    return out
