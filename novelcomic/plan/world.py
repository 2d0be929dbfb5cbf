"""What the book's world looks like: the kind of each place, its time and weather, the period
and region of the book, what species a character is, and which "characters" are only extras.

Pure, cheap functions (the standard library only) for the planners (heuristic and LLM) and the
renderers. They read general evidence, in Chinese and English, rather than words tuned to one
book:

- a place's kind comes first from the head noun of its name (the suffix in Chinese, ``…海``,
  ``…山``, ``…洞``, ``…宫``, ``…村``; the last noun in English, "Hall", "Street", "Cove"), then
  from how the text names it (``洛阳城``, "the village of Meryton"), then from the words around it;
- time of day and weather are only given when the text says so (else ``"unknown"``);
- the period is voted by how often each period's vocabulary occurs per thousand characters (or
  words) of a sample of the book, never by a single hit;
- a character's species comes from the head noun of the name (``美猴王``, ``赤兔马``, "the
  Heron"), from appositions in the text ("Pip, a little fox", ``那猴``…) and from its appearance.

Everything returns one of the literals of :mod:`novelcomic.models` (``LocationKind``,
``Weather``, ``Period``, ``Species``), so the result can go straight into a model field.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

from novelcomic.models import LocationKind, Period, Species, Weather

Lang = str  # "zh" | "en"
TimeOfDay = str  # "day" | "night" | "dusk" | "dawn" | "unknown"

__all__ = [
    "describe_location",
    "detect_period",
    "effective_period",
    "is_group_figure",
    "is_interior",
    "location_kind",
    "period_region",
    "species_of",
    "time_and_weather",
]


def _is_zh(lang: Lang, text: str = "") -> bool:
    if lang in ("zh", "en"):
        return lang == "zh"
    return bool(re.search(r"[\u4e00-\u9fff]", text))


# --------------------------------------------------------------------------- location kinds

# Chinese place suffixes (the head noun of a place name), longest first when matched.
_ZH_SUFFIX: dict[str, LocationKind] = {}
for _kind, _words in {
    "sea": "海 洋 海边 海上 海岸 海滩 海岛 海面 岛 屿 港 湾 沙滩",
    "river": "江 河 溪 湖 潭 泉 渡 渡口 涧 滩 池 塘 泊 瀑布 江边 河边 湖边 溪边 岸",  # (颍川, 四川: regions, not rivers)
    "mountain": "山 岭 峰 崖 坡 峡 谷 岳 峦 冈 岗 巅 山顶 山路 山脚 山腰 山坡 山谷 悬崖",
    "cave": "洞 窟 穴 洞府 洞口 洞中 山洞 地洞 洞穴 石洞",
    "forest": "林 森林 树林 竹林 丛林 密林 园 园林 花园 果园 桃园",
    "palace": "宫 殿 宫殿 阙 府 王府 相府 朝堂 金殿 宝殿 龙宫 天庭 宫中 皇宫 宫门 禁中",
    "temple": "寺 庙 观 庵 祠 塔 寺院 道观 佛堂 禅院 祠堂 神庙 古刹 刹 山门",
    "city_street": "街 市 城 巷 坊 京 都 州 郡 县 城门 街上 街头 城中 集市 闹市 长街 京城 都城 路口 广场 大街 马路 商场 车站 "
                   "门 东门 西门 南门 北门",
    "village": "村 庄 镇 乡 屯 寨子 村子 村口 山村 渔村 小镇 庄园",
    "interior": "屋 房 室 厅 堂 阁 楼 店 栈 客栈 酒店 酒馆 茶馆 书房 卧房 家 家中 屋里 房间 帐 帐中 舱 牢 狱 大牢 厨房 院 院子 办公室 公寓 教室 医院 "
                "馆 驿 馆驿 驿馆 驿站 驿亭",
    "battlefield": "营 寨 关 阵 战场 营寨 大营 军营 营中 关口 关隘 阵前 沙场 城下 辕门",
    "sky": "天 天上 空中 云端 云中 九霄 天空 云霄 半空",
    "field": "田 野 原 草原 平原 田野 旷野 荒野 郊 郊外 坪 沙漠 荒原 麦田 稻田 川",
}.items():
    for _w in _words.split():
        _ZH_SUFFIX[_w] = _kind  # type: ignore[assignment]

# English head nouns of place names.
_EN_NOUN: dict[str, LocationKind] = {}
for _kind, _words in {
    "sea": "sea seas ocean bay harbour harbor port coast beach shore seashore isle island cove gulf strait waves "
           "pier docks dock lighthouse",
    "river": "river lake stream brook pond ford falls waterfall creek canal loch mere marsh marshes fen spring "
             "riverbank well",
    "mountain": "mountain mountains mount peak hill hills cliff cliffs ridge valley crag tor heights summit glen "
                "pass moor moors fell",
    "cave": "cave caves cavern grotto mine tunnel lair burrow hole den catacombs",
    "forest": "forest wood woods grove garden gardens orchard shrubbery wilderness thicket copse jungle park",
    "palace": "palace castle citadel fortress keep",
    "temple": "church chapel cathedral abbey temple shrine monastery priory minster mosque pagoda",
    "city_street": "street road lane square market city town avenue row alley boulevard strand quay station "
                   "crescent terrace downtown highway",
    "village": "village hamlet farm parish farmyard",
    "interior": "room parlour parlor drawing-room library kitchen study bedroom chamber office inn tavern shop "
                "house hall lodge manor cottage apartment flat workshop cabin attic cellar dining-room ballroom "
                "court grange rectory parsonage vicarage school classroom hospital prison jail",
    "battlefield": "battlefield camp barracks front trenches battle fort",
    "sky": "sky skies clouds heavens",
    "field": "field fields meadow meadows plain plains common heath pasture desert prairie paddock",
}.items():
    for _w in _words.split():
        _EN_NOUN[_w] = _kind  # type: ignore[assignment]

# English estate names ("Netherfield Park", "Lucas Lodge"): a house, seen inside or outside.
_EN_ESTATE = {"hall", "house", "lodge", "manor", "court", "grange", "place", "park", "abbey"}

# Words around a place that say what it is (the context vote).
_ZH_CONTEXT: dict[LocationKind, tuple[str, ...]] = {
    "sea": ("大海", "海浪", "海水", "海风", "波涛", "浪花", "船帆", "出海", "海面", "海岛", "渔船", "海鸥"),
    "river": ("河水", "江水", "湖水", "溪水", "岸边", "渡船", "小船", "摆渡", "河岸", "江边", "湖面", "流水"),
    "mountain": ("山峰", "山顶", "山路", "悬崖", "峭壁", "山腰", "登山", "山谷", "高山", "山岭", "上山"),
    "cave": ("洞口", "洞中", "洞内", "石壁", "钟乳", "洞里", "山洞", "洞府"),
    "forest": ("树林", "树木", "林中", "密林", "竹林", "树下", "古树", "林间", "森林"),
    "palace": ("宫殿", "大殿", "朝堂", "龙椅", "宝座", "百官", "上殿", "宫门", "殿上", "宫中", "御座", "丹墀"),
    "temple": ("寺庙", "佛像", "香火", "和尚", "道士", "烧香", "佛殿", "钟声", "庙里", "僧人"),
    "city_street": ("街上", "街道", "集市", "行人", "店铺", "城门", "城中", "城里", "闹市", "车马", "街头", "马路"),
    "village": ("村子", "村口", "村里", "村民", "乡亲", "田埂", "农舍", "村中", "庄上"),
    "interior": ("屋里", "屋内", "房中", "房间", "桌上", "床上", "窗前", "门外", "厅上", "堂上", "进屋"),
    "battlefield": ("两军", "交锋", "厮杀", "列阵", "军马", "大战", "杀来", "阵前", "擂鼓", "旌旗", "迎战", "出战"),
    "sky": ("云端", "半空", "腾云", "驾云", "空中", "飞上天", "云头"),
    "field": ("田野", "田间", "草地", "旷野", "原野", "麦田", "庄稼", "草原"),
}
_EN_CONTEXT: dict[LocationKind, tuple[str, ...]] = {
    "sea": ("waves", "ship", "sail", "sailed", "deck", "tide", "ocean", "sea", "salt", "gulls", "shore"),
    "river": ("river", "boat", "bank", "current", "lake", "stream", "rowed", "ferry", "water"),
    "mountain": ("mountain", "peak", "climbed", "slope", "cliff", "summit", "rocks", "hills", "valley"),
    "cave": ("cave", "darkness", "stalactites", "tunnel", "cavern", "torch", "underground"),
    "forest": ("trees", "woods", "forest", "branches", "leaves", "grove", "path", "shrubbery"),
    "palace": ("throne", "king", "queen", "courtiers", "palace", "castle", "majesty"),
    "temple": ("church", "altar", "priest", "service", "sermon", "pews", "shrine", "prayers"),
    "city_street": ("street", "streets", "crowd", "shops", "traffic", "pavement", "market", "town", "cab"),
    "village": ("village", "cottages", "villagers", "farm", "green", "neighbours", "neighbors"),
    "interior": ("room", "drawing-room", "parlour", "table", "fire", "fireplace", "chair", "sofa", "window",
                 "door", "dinner", "breakfast", "tea", "library", "upstairs", "ball", "dancing"),
    "battlefield": ("battle", "soldiers", "army", "troops", "charge", "banners", "cannon", "enemy"),
    "sky": ("flew", "flying", "clouds", "sky", "wings", "soared"),
    "field": ("field", "fields", "meadow", "grass", "plough", "harvest", "pasture"),
}

_ZH_INTERIOR = ("屋", "房", "室", "厅", "堂", "阁", "楼", "店", "栈", "馆", "舱", "帐", "牢", "狱", "殿", "府", "家", "院",
                "公寓", "办公室", "教室", "医院")


def location_kind(name: str, context: str = "", lang: Lang = "zh") -> LocationKind:
    """What a place is, from its name's head noun, then how the text names it, then the words
    around it. ``context``: text where the place occurs (a scene, the chapter); may be empty."""
    name = (name or "").strip()
    zh = _is_zh(lang, name + context)
    kind = _zh_name_kind(name) if zh else _en_name_kind(name, context)
    if kind != "unknown":
        return kind
    if context and name:
        kind = _kind_as_named(name, context, zh)
        if kind != "unknown":
            return kind
    return _context_kind(context, zh)


def _zh_name_kind(name: str) -> LocationKind:
    for n in range(min(4, len(name)), 0, -1):  # the longest suffix that names a kind
        kind = _ZH_SUFFIX.get(name[-n:])
        if kind:
            return kind
    # a directional / positional tail (山下, 江边, 城外, 殿前, 洞中) leaves the head one character in
    m = re.match(r"(.+?)(?:之)?(?:上|下|中|里|内|外|前|后|边|旁|畔|口|脚|顶|头|间)$", name)
    if m and len(m.group(1)) >= 1:
        head = m.group(1)
        for n in range(min(4, len(head)), 0, -1):
            kind = _ZH_SUFFIX.get(head[-n:])
            if kind:
                return kind
    return "unknown"


def _en_words(text: str) -> list[str]:
    return re.findall(r"[a-z]+(?:-[a-z]+)?", text.lower())


def _en_name_kind(name: str, context: str = "") -> LocationKind:
    words = _en_words(name)
    if not words:
        return "unknown"
    if "of" in words:  # "Hall of Mirrors", "Isle of Skye", "the town of Meryton": the noun before "of"
        head = words[: words.index("of")]
        for w in reversed(head):
            if w in _EN_NOUN:
                return _estate(w, context) if w in _EN_ESTATE else _EN_NOUN[w]
    for w in reversed(words):
        if w in _EN_ESTATE:
            return _estate(w, context)
        if w in _EN_NOUN:
            return _EN_NOUN[w]
    return "unknown"


def _estate(noun: str, context: str) -> LocationKind:
    """A house by name ("Longbourn House", "Netherfield Park"): inside, unless the text around it
    is about its grounds."""
    if noun == "park" and not context:
        return "forest"
    if noun == "abbey" and not context:
        return "temple"
    outdoor = _count(context.lower(), _EN_CONTEXT["forest"] + _EN_CONTEXT["field"], zh=False)
    indoor = _count(context.lower(), _EN_CONTEXT["interior"], zh=False)
    if noun == "park" and outdoor > indoor:
        return "forest"
    return "interior"


def _kind_as_named(name: str, context: str, zh: bool) -> LocationKind:
    """How the text itself names the place: ``洛阳城``, ``涿郡``, "the village of Meryton",
    "Meryton church" — the most frequent such head noun."""
    votes: Counter[str] = Counter()
    if zh:
        for m in re.finditer(re.escape(name) + r"([\u4e00-\u9fff]{1,2})", context):
            for n in (2, 1):
                tail = m.group(1)[:n]
                if len(tail) == n and tail in _ZH_SUFFIX:
                    votes[_ZH_SUFFIX[tail]] += 1
                    break
        # 花果山是一座仙山 / 桃溪村是个小村子: what the text says the place is
        for m in re.finditer(re.escape(name) + r"(?:是|乃)(?:一)?(?:座|个|片|条|处)?[^，。；]{0,4}?([\u4e00-\u9fff]{2})(?=[，。；、！]|$)",
                             context):
            tail = m.group(1)
            kind = _ZH_SUFFIX.get(tail) or _ZH_SUFFIX.get(tail[1]) or _ZH_SUFFIX.get(tail[0])
            if kind:
                votes[kind] += 2
    else:
        low, target = context.lower(), re.escape(name.lower())
        for m in re.finditer(r"\b([a-z]+)\s+of\s+" + target + r"\b", low):
            if m.group(1) in _EN_NOUN:
                votes[_EN_NOUN[m.group(1)]] += 1
        for m in re.finditer(r"\b" + target + r"\s+([a-z]+)\b", low):
            w = m.group(1)
            if w in _EN_NOUN and w not in _EN_ESTATE:
                votes[_EN_NOUN[w]] += 1
        # "Longbourn, the village", "Millbrook was a small village", "Millbrook is an old town"
        apposition = target + r"(?:,\s+|\s+(?:was|is)\s+)(?:a|an|the)\s+([a-z -]+)"
        for m in re.finditer(apposition, low):
            kind = _head_of(m.group(1), _EN_NOUN)
            if kind:
                votes[kind] += 2
    return votes.most_common(1)[0][0] if votes else "unknown"  # type: ignore[return-value]


def _head_of(phrase: str, table: dict[str, Any], stop: int = 4) -> Any:
    """The value of the first word of ``phrase`` (its next ``stop`` words) found in ``table``."""
    for w in re.findall(r"[a-z]+(?:-[a-z]+)?", phrase)[:stop]:
        if w in table:
            return table[w]
    return None


def _count(text: str, cues: Iterable[str], zh: bool) -> int:
    if zh:
        return sum(text.count(c) for c in cues)
    return sum(len(re.findall(r"\b" + re.escape(c) + r"\b", text)) for c in cues)


def _context_kind(context: str, zh: bool) -> LocationKind:
    if not context:
        return "unknown"
    text = context if zh else context.lower()
    table = _ZH_CONTEXT if zh else _EN_CONTEXT
    scores = {kind: _count(text, cues, zh) for kind, cues in table.items()}
    best = max(scores, key=lambda k: scores[k])
    if scores[best] < 2:
        return "unknown"
    return best


def is_interior(name: str, kind: str, lang: Lang = "zh") -> bool:
    """Whether scenes at the place happen indoors (a room, a hall, a cave's inside)."""
    if kind == "interior":
        return True
    if kind in ("palace", "temple"):
        if _is_zh(lang, name):
            return bool(re.search(r"(殿|堂|阁|府)(中|内|里|上)?$", name or ""))
        return bool(re.search(r"\b(hall|room|chamber|throne)\b", (name or "").lower()))
    return False


# --------------------------------------------------------------------------- time and weather

_ZH_TIME: dict[str, tuple[str, ...]] = {
    "night": ("夜里", "夜晚", "深夜", "半夜", "夜深", "月光", "月色", "明月", "月下", "星光", "繁星", "夜色", "当夜", "是夜",
              "入夜", "夜间", "连夜", "三更", "二更", "四更", "黑夜", "今夜", "晚上"),
    "dusk": ("黄昏", "傍晚", "夕阳", "日暮", "暮色", "落日", "日落", "斜阳", "晚霞", "薄暮", "天色将晚", "天晚"),
    "dawn": ("清晨", "黎明", "拂晓", "破晓", "天明", "天亮", "晨光", "朝阳", "日出", "五更", "次早", "早晨", "一早", "平明"),
    "day": ("白天", "白日", "正午", "中午", "晌午", "午后", "日中", "艳阳", "烈日", "阳光", "上午", "下午"),
}
_EN_TIME: dict[str, tuple[str, ...]] = {
    "night": ("night", "midnight", "moonlight", "moonlit", "the moon", "stars", "tonight", "nightfall"),
    "dusk": ("dusk", "sunset", "twilight", "evening", "sundown", "nightfall"),
    "dawn": ("dawn", "daybreak", "sunrise", "first light", "early morning", "daylight came"),
    "day": ("noon", "midday", "afternoon", "morning", "sunshine", "daylight", "sunny"),
}
_ZH_WEATHER: dict[str, tuple[str, ...]] = {
    "storm": ("暴风雨", "雷雨", "电闪雷鸣", "雷电", "风暴", "狂风暴雨", "冰雹", "雷声", "大雷", "霹雳", "暴雨"),
    "rain": ("下雨", "大雨", "细雨", "雨水", "雨中", "冒雨", "雨点", "雨声", "淋雨", "阴雨", "雨丝", "秋雨", "春雨", "雨下",
             "雨停", "落雨", "烟雨", "风雨", "雨夜", "雨后", "下起小雨", "下起了小雨", "毛毛雨", "阵雨", "一场雨",
             "雨淅"),
    "snow": ("下雪", "大雪", "飞雪", "雪花", "积雪", "风雪", "白雪", "雪地", "暴雪", "雪中", "落雪", "冰雪", "雪夜"),
    "fog": ("大雾", "迷雾", "浓雾", "薄雾", "雾气", "雾中", "起雾", "云雾", "烟雾弥漫", "雾霭"),
    "wind": ("狂风", "大风", "风起", "寒风", "刮风", "北风", "朔风", "风声", "风沙", "大风起"),
    "clear": ("晴朗", "万里无云", "阳光明媚", "晴空", "天晴", "晴天", "风和日丽"),
}
_EN_WEATHER: dict[str, tuple[str, ...]] = {
    "storm": ("storm", "stormy", "thunder", "lightning", "tempest", "thunderstorm", "gale", "hail"),
    "rain": ("rain", "raining", "rained", "rainy", "downpour", "drizzle", "showers", "wet weather"),
    "snow": ("snow", "snowing", "snowed", "snowfall", "blizzard", "snowy", "sleet"),
    "fog": ("fog", "foggy", "mist", "misty", "haze"),
    "wind": ("wind", "windy", "gust", "gusts", "howling wind", "breeze"),
    "clear": ("clear sky", "cloudless", "sunny", "bright sunshine", "fine day", "fine weather"),
}


def time_and_weather(text: str, lang: Lang = "zh") -> tuple[TimeOfDay, Weather]:
    """(time of day, weather) that ``text`` (a scene) states; ``"unknown"`` for what it does not."""
    if not text:
        return "unknown", "unknown"
    zh = _is_zh(lang, text)
    low = text if zh else text.lower()
    if zh:  # words that hold a weather character without being weather
        low = re.sub(r"雪白|雪亮|风雨无阻|雨露|风雨同舟|雾水|风声鹤唳|风流|风采|风度", "", low)
    times = _ZH_TIME if zh else _EN_TIME
    weathers = _ZH_WEATHER if zh else _EN_WEATHER
    t_scores = {k: _count(low, v, zh) for k, v in times.items()}
    w_scores = {k: _count(low, v, zh) for k, v in weathers.items()}
    time = max(t_scores, key=lambda k: t_scores[k])
    weather = max(w_scores, key=lambda k: w_scores[k])
    if w_scores["storm"] and w_scores["storm"] * 2 >= w_scores[weather]:
        weather = "storm"  # thunder with rain is a storm
    return (time if t_scores[time] else "unknown"), (weather if w_scores[weather] else "unknown")  # type: ignore[return-value]


def describe_location(name: str, context: str = "", lang: Lang = "zh") -> dict[str, Any]:
    """Everything the planner fills in for a new :class:`~novelcomic.models.Location` at once:
    ``{"kind", "time_of_day", "weather", "interior"}`` — ``Location(id=…, name=name, **it)``."""
    kind = location_kind(name, context, lang)
    time, weather = time_and_weather(context, lang)
    interior = is_interior(name, kind, lang)
    if interior and weather != "unknown":
        weather = "unknown"  # indoors, the weather is not drawn
    return {"kind": kind, "time_of_day": time, "weather": weather, "interior": interior}


# --------------------------------------------------------------------------- period

_ZH_PERIOD: dict[str, tuple[str, ...]] = {
    "ancient_china": ("曰", "丞相", "将军", "陛下", "朕", "皇帝", "天子", "太守", "县令", "衙门", "官兵", "书生", "掌柜",
                      "银两", "寡人", "娘娘", "奴婢", "汝", "吾", "某家", "大人", "主公", "末将", "臣", "圣上", "朝廷",
                      "刺史", "先帝", "小人", "客官", "公子", "小姐", "丫鬟", "轿", "驿", "兵马", "州", "郡"),
    "modern_city": ("手机", "电话", "公司", "汽车", "电脑", "地铁", "微信", "老板", "经理", "医院", "大学", "电视", "网络",
                    "咖啡", "公寓", "出租车", "警察", "同学", "飞机", "酒吧", "办公室", "上班", "下班", "短信", "电梯",
                    "马路", "超市", "美元", "块钱", "高铁", "博士", "照片"),
    "fantasy": ("妖", "仙", "法术", "魔", "神仙", "修炼", "灵气", "法宝", "龙王", "菩萨", "天宫", "元神", "渡劫", "洞府",
                "神通", "精怪", "变化", "法力", "玉帝", "天兵", "咒", "魂魄", "精灵", "斗法", "腾云"),
    "victorian_england": ("伦敦", "英镑", "舞会", "绅士", "勋爵", "爵士", "庄园", "夫人", "太太", "先生", "马车", "牧师",
                          "教堂", "茶会", "女仆"),
}
_EN_PERIOD: dict[str, tuple[str, ...]] = {
    "victorian_england": ("mr", "mrs", "miss", "carriage", "ball", "estate", "pounds", "sir", "madam", "ladyship",
                          "drawing-room", "parlour", "gentleman", "shillings", "coach", "bonnet", "muslin", "parish",
                          "rector", "militia", "colonel", "curate", "footman", "housekeeper", "chaise", "assembly",
                          "countenance", "civility", "acquaintance", "esquire", "governess", "candle", "lordship"),
    "modern_city": ("phone", "car", "cars", "office", "computer", "email", "taxi", "subway", "apartment", "internet",
                    "tv", "television", "laptop", "smartphone", "elevator", "police", "downtown", "traffic", "job",
                    "text", "online", "radio", "airport", "bus", "jeans", "coffee", "photo", "okay", "ok"),
    "fantasy": ("wizard", "dragon", "magic", "spell", "spells", "sorcerer", "elf", "elves", "dwarf", "dwarves", "orc",
                "orcs", "enchanted", "witch", "goblin", "goblins", "troll", "potion", "wand", "realm", "sorcery",
                "enchantment", "fairy", "fairies", "kingdom", "quest", "mage", "demon", "demons", "immortal"),
    "ancient_china": ("emperor", "dynasty", "chancellor", "eunuch", "eunuchs", "warlord", "han", "wei", "shu", "wu",
                      "jade", "buddha", "taoist", "mandarin", "li", "prefect", "imperial", "sage"),
}


def _rates(text: str, zh: bool) -> dict[str, float]:
    """Occurrences of each period's words per thousand characters (zh) or words (en)."""
    table = _ZH_PERIOD if zh else _EN_PERIOD
    if zh:
        size = max(1, len(re.findall(r"[\u4e00-\u9fff]", text)))
        return {p: 1000 * sum(text.count(w) for w in words) / size for p, words in table.items()}
    tokens = Counter(re.findall(r"[a-z]+(?:-[a-z]+)?", text.lower()))
    size = max(1, sum(tokens.values()))
    return {p: 1000 * sum(tokens[w] for w in words) / size for p, words in table.items()}


def _distinct(text: str, zh: bool) -> dict[str, int]:
    table = _ZH_PERIOD if zh else _EN_PERIOD
    if zh:
        return {p: sum(1 for w in words if w in text) for p, words in table.items()}
    tokens = set(re.findall(r"[a-z]+(?:-[a-z]+)?", text.lower()))
    return {p: sum(1 for w in words if w in tokens) for p, words in table.items()}


def detect_period(text_sample: str, lang: Lang = "zh") -> Period:
    """The book's period and region, from how often each period's vocabulary occurs in a sample
    of its text (a few chapters is plenty); ``"unknown"`` when no period clearly dominates.

    Fantasy wins over a historical period when its words are about as frequent (a Chinese
    fantasy such as 西游记 uses classical words too; the renderer draws it in the style of its
    language's region, see :func:`period_region`)."""
    if not text_sample or not text_sample.strip():
        return "unknown"
    zh = _is_zh(lang, text_sample)
    rates = _rates(text_sample, zh)
    for period, distinct in _distinct(text_sample, zh).items():
        if distinct < 2:  # one word, however often, is no period ("phone" in a fairy tale)
            rates[period] = 0.0
    floor = 1.5 if zh else 2.0  # per thousand: below this, a period's words are incidental
    best = max(rates, key=lambda p: rates[p])
    if rates[best] < floor:
        return "unknown"
    fantasy = rates["fantasy"]
    if best != "fantasy" and fantasy >= floor and fantasy >= 0.5 * rates[best]:
        return "fantasy"
    others = sorted((r for p, r in rates.items() if p != best), reverse=True)
    if others and others[0] > 0.8 * rates[best]:  # two periods as frequent: no clear answer
        return "unknown"
    return best  # type: ignore[return-value]


def effective_period(project_period: str | None, found_period: str | None) -> Period:
    """The period images follow: project.yaml's unless ``auto``, else the planner's (locations.yaml)."""
    if project_period and project_period not in ("auto", "unknown"):
        return project_period  # type: ignore[return-value]
    if found_period and found_period not in ("auto",):
        return found_period  # type: ignore[return-value]
    return "unknown"


def period_region(period: str, lang: Lang = "zh") -> str:
    """Where the pictures' architecture and clothes come from: ``"china"``, ``"england"``,
    ``"modern"``, ``"fantasy_east"`` (xianxia: hanfu, palaces on clouds), ``"fantasy_west"``
    (castles, tunics) or ``"neutral"`` (an English book of unknown period)."""
    if period == "ancient_china":
        return "china"
    if period == "victorian_england":
        return "england"
    if period == "modern_city":
        return "modern"
    if period == "fantasy":
        return "fantasy_east" if lang == "zh" else "fantasy_west"
    return "china" if lang == "zh" else "neutral"


# --------------------------------------------------------------------------- species

# The head noun of a name or description that names a species (rightmost wins: 赤兔马 is a horse).
_ZH_SPECIES: dict[str, Species] = {
    "猴": "monkey", "猿": "monkey", "猕": "monkey", "狲": "monkey",
    "狐": "fox", "兔": "rabbit", "龙": "dragon", "蛟": "dragon",
    "妖": "demon", "魔": "demon", "鬼": "demon", "怪": "demon", "精": "demon", "魅": "demon", "魍": "demon",
    "鸟": "bird", "鹤": "bird", "鹰": "bird", "雀": "bird", "鸦": "bird", "凤": "bird", "凰": "bird", "鹊": "bird",
    "雁": "bird", "鸡": "bird", "鹦": "bird", "鹭": "bird", "鸭": "bird", "鹅": "bird", "鸽": "bird", "雕": "bird",
    "猫": "cat", "犬": "dog", "狗": "dog", "狼": "dog", "獒": "dog", "马": "horse", "驹": "horse", "驴": "horse",
    "虎": "tiger", "豹": "tiger", "狮": "tiger",
    "猪": "other", "牛": "other", "蛇": "other", "熊": "other", "鼠": "other", "龟": "other", "鱼": "other", "羊": "other",
}
# single characters that are animals only as whole words (精 in 精神, 怪 in 奇怪, 马 in 马上)
_ZH_SPECIES_NOT = ("精神", "精明", "精细", "精致", "精彩", "精通", "精心", "精兵", "妖娆", "奇怪", "怪不得", "难怪", "马上",
                   "人马", "兵马", "车马", "军马", "鬼神", "魔法", "龙颜", "龙袍", "龙椅", "凤冠", "雕刻", "雕花")
# common Chinese surnames: a 2-4 character name starting with one is a person (马超, 熊大 aside)
_SURNAMES = set(
    "赵钱孙李周吴郑王冯陈褚卫蒋沈韩杨朱秦尤许何吕施张孔曹严华金魏陶姜戚谢邹喻柏水窦章云苏潘葛奚范彭郎鲁韦昌马苗凤花方"
    "俞任袁柳酆鲍史唐费廉岑薛雷贺倪汤滕殷罗毕郝邬安常乐于时傅皮卞齐康伍余元卜顾孟平黄和穆萧尹姚邵湛汪祁毛禹狄米贝明"
    "臧计伏成戴谈宋茅庞熊纪舒屈项祝董梁杜阮蓝闵席季麻强贾路娄危江童颜郭梅盛林刁钟徐邱骆高夏蔡田樊胡凌霍虞万支柯昝管"
    "卢莫经房裘缪干解应宗丁宣邓郁单杭洪包诸左石崔吉钮龚程嵇邢滑裴陆荣翁荀羊惠甄曲家封芮羿储靳汲邴糜松井段富巫乌焦巴弓"
    "牧隗山谷车侯宓蓬全郗班仰秋仲伊宫宁仇栾暴甘厉戎祖武符刘景詹束龙叶幸司韶郜黎蓟薄印宿白怀蒲邰从鄂索咸籍赖卓蔺屠蒙池"
    "乔阴郁胥能苍双闻莘党翟谭贡劳逄姬申扶堵冉宰郦雍却璩桑桂濮牛寿通边扈燕冀郏浦尚农温别庄晏柴瞿阎充慕连茹习宦艾鱼容"
    "向古易慎戈廖庾终暨居衡步都耿满弘匡国文寇广禄阙东欧殳沃利蔚越夔隆师巩厍聂晁勾敖融冷訾辛阚那简饶空曾毋沙乜养鞠须丰"
    "巢关蒯相查后荆红游竺权逯盖益桓公诸葛欧阳司马上官夏侯"
)
_ZH_HUMAN_TITLES = ("先生", "将军", "丞相", "公子", "小姐", "夫人", "大人", "太守", "皇帝", "陛下", "主公", "老爷", "姑娘",
                    "师父", "师傅", "和尚", "道士", "书生", "少爷", "娘子", "相公", "兄长", "贤弟")

_EN_SPECIES: dict[str, Species] = {}
for _sp, _words in {
    "monkey": "monkey monkeys ape apes chimpanzee gorilla baboon macaque orangutan",
    "fox": "fox foxes vixen",
    "rabbit": "rabbit rabbits hare hares bunny",
    "dragon": "dragon dragons wyrm drake serpent-dragon",
    "demon": "demon demons devil devils ogre ogres imp imps fiend goblin goblins ghost ghosts troll trolls spirit",
    "bird": "bird birds heron herons crane cranes eagle hawk owl crow raven sparrow swan duck goose parrot dodo "
            "robin magpie falcon phoenix pigeon dove gull lory eaglet",
    "cat": "cat cats kitten kitty tomcat",
    "dog": "dog dogs puppy hound hounds wolf wolves terrier spaniel",
    "horse": "horse horses pony mare stallion donkey mule steed colt",
    "tiger": "tiger tigers lion lions leopard panther",
    "other": "pig bear mouse mice rat snake turtle tortoise frog toad caterpillar lizard bull ox sheep goat fish "
             "crab lobster hedgehog squirrel badger mole otter weasel beetle",
}.items():
    for _w in _words.split():
        _EN_SPECIES[_w] = _sp  # type: ignore[assignment]
_EN_PERSON = {"man", "woman", "boy", "girl", "lady", "gentleman", "king", "queen", "prince", "princess", "child",
              "mr", "mrs", "miss", "sir", "lord", "doctor", "captain", "grandpa", "grandma", "uncle", "aunt"}


def _zh_species_in(text: str) -> list[tuple[int, Species]]:
    for w in _ZH_SPECIES_NOT:
        text = text.replace(w, "　" * len(w))
    return [(i, _ZH_SPECIES[ch]) for i, ch in enumerate(text) if ch in _ZH_SPECIES]


def _zh_name_species(name: str) -> Species | None:
    """The species a Chinese name's head noun names: the rightmost species character (赤兔马 is a
    horse, 美猴王 a monkey); a surname with a given name (赵子龙, 马超) is a person."""
    if not name:
        return None
    titled = bool(re.search(r"[王精怪妖魔仙神君]$", name))
    surname = name[:2] in _SURNAMES or name[0] in _SURNAMES
    coloured = name[0] in "白黑青赤黄金银紫红绿蓝灰花玉" and name[-1] in _ZH_SPECIES  # 白龙马, 黄鹤: a colour, not a surname
    if len(name) >= 3 and surname and not titled and not coloured:
        return None
    found = _zh_species_in(name)
    if found and len(name) == 2 and surname and found[-1][0] == 0 and not titled:
        return None  # 马超, 熊大: the species character is the surname
    return found[-1][1] if found else None


_EN_RULER_WORDS = frozenset({"king", "queen", "prince", "princess", "lord", "lady", "emperor", "chief"})  # Monkey King
_EN_EPITHETS = frozenset({"white", "black", "red", "grey", "gray", "brown", "golden", "silver", "little", "big", "old",
                          "great", "mad", "cheshire", "mock", "wise", "young"})  # White Rabbit, Mock Turtle


def _en_name_species(name: str) -> Species | None:
    caps = re.findall(r"\b[A-Z][a-z]+", name)
    if (len(caps) >= 2 and not name.lower().startswith("the ") and caps[-1].lower() not in _EN_RULER_WORDS
            and caps[0].lower() not in _EN_EPITHETS):
        return None  # Grace Crane and Robin Drake are people (a given name and a family name)
    words = _en_words(name)
    hits = [_EN_SPECIES[w] for w in words if w in _EN_SPECIES]
    if not hits:
        return None
    if any(w in _EN_PERSON for w in words) and not re.search(r"\b(king|queen)\b", name.lower()):
        return None  # "Mr. Fox" is a man called Fox — unless the text says otherwise
    return hits[-1]


def species_of(
    name: str, context: str = "", lang: Lang = "zh", *, aliases: Iterable[str] = (), appearance: str = ""
) -> Species:
    """What a character is drawn as: from its name or an alias (``美猴王``, ``白狐``, "the White
    Rabbit"), its appearance text (``一只雪白的狐狸``, "a grey heron"), or appositions in
    ``context`` ("Pip, a young fox", ``石猴``…是一只猴); ``"human"`` without such evidence."""
    zh = _is_zh(lang, name + context + appearance)
    names = [n for n in (name, *aliases) if n]
    person_words = set(name.split()) if not zh and len(re.findall(r"\b[A-Z][a-z]+", name)) >= 2 else set()
    for n in names:
        if n in person_words:
            continue  # "Crane" is Grace Crane's family name, not a bird
        found = _zh_name_species(n) if zh else _en_name_species(n)
        if found:
            return found
    if appearance:
        found = _appearance_species(appearance, zh)
        if found:
            return found
    if context:
        found = _context_species(names, context, zh)
        if found:
            return found
    return "human"


def _appearance_species(text: str, zh: bool) -> Species | None:
    """A species named in an appearance as what the character *is* (not what it holds or rides)."""
    if zh:
        m = re.search(r"(?:是|像|乃|一只|一头|一条|一匹|只|头)[^，。；,;]{0,6}?([" + "".join(_ZH_SPECIES) + "])", text)
        if m and not any(m.group(1) in w for w in _ZH_SPECIES_NOT):
            return _ZH_SPECIES[m.group(1)]
        first = _zh_species_in(text[:8])  # "白狐，…" / "猴脸" at the start describes the character
        if first:
            return first[0][1]
        return None
    low = text.lower()
    m = re.match(r"^\W*(?:an?\s+|the\s+)?([a-z -]+)", low)  # "a grey heron with…", "white rabbit, pink eyes"
    found = _head_of(m.group(1), _EN_SPECIES) if m else None
    if found:
        return found
    for m in re.finditer(r"\b(?:is|was|as|like)\s+an?\s+([a-z -]+)", low):
        found = _head_of(m.group(1), _EN_SPECIES)
        if found:
            return found
    return None


def _context_species(names: list[str], context: str, zh: bool) -> Species | None:
    """Appositions and copulas linking a name to a species in the text; the most frequent wins,
    and needs two hits unless the context is a short description."""
    votes: Counter[str] = Counter()
    species_class = "[" + "".join(_ZH_SPECIES) + "]"
    for n in names:
        if zh:
            e = re.escape(n)
            patterns = (
                e + r"[^，。！？；]{0,3}?(?:是|乃|本是|原是|原来是|变作|化作)(?:一)?(?:只|头|条|匹|个)?[^，。！？；]{0,5}?(" + species_class + ")",
                r"(" + species_class + r")[^，。！？；]{0,2}?(?:名叫|叫做|唤作|名唤|名为|叫)" + e,
                r"(?:只|头|条|匹)[^，。！？；]{0,3}?(" + species_class + r")" + e,
            )
            for p in patterns:
                for m in re.finditer(p, context):
                    if not any(m.group(1) in w and w in context[m.start(): m.end() + 2] for w in _ZH_SPECIES_NOT):
                        votes[_ZH_SPECIES[m.group(1)]] += 1
            human = sum(context.count(n + t) for t in _ZH_HUMAN_TITLES)
            if human:
                votes["human"] += human
        else:
            e = re.escape(n.lower())
            low = context.lower()
            patterns = (
                e + r",?\s+(?:was|is)\s+an?\s+([a-z -]+)",
                e + r",\s+an?\s+([a-z -]+)",
                e + r"\s+the\s+([a-z]+)",
                r"\b([a-z]+)\s+(?:named|called)\s+" + e + r"\b",
            )
            both = {**{w: "human" for w in _EN_PERSON}, **_EN_SPECIES}
            for p in patterns:
                for m in re.finditer(p, low):
                    found = _head_of(m.group(1), both)
                    if found:
                        votes[found] += 1
    if not votes:
        return None
    best, count = votes.most_common(1)[0]
    if best == "human":
        return None
    short = len(context) < (120 if zh else 400)
    if count >= 2 or short or count > votes.get("human", 0):
        return best  # type: ignore[return-value]
    return None


# --------------------------------------------------------------------------- group figures

_ZH_GROUP_WORDS = (
    "士兵", "军士", "众人", "家人", "侍卫", "百姓", "村民", "官兵", "小兵", "喽啰", "喽罗", "随从", "仆人", "丫鬟", "宫女",
    "太监", "衙役", "护卫", "卫兵", "守卫", "将士", "路人", "行人", "客人", "群臣", "百官", "左右", "从人", "手下", "部下",
    "贼兵", "军马", "兵马", "兵士", "差役", "家丁", "庄客", "伙计", "小厮", "童子", "使者", "军校", "门吏", "卫士", "武士",
    "刀斧手", "群猴", "众猴", "猴子们", "妖兵", "小妖", "天兵", "天将", "众将", "诸将", "众官", "众臣", "乡民", "渔民",
    "客商", "商人", "农夫", "樵夫", "军队", "人马", "大军", "贼众", "黄巾", "观众", "同学们", "大家", "人们", "孩子们",
)
_EN_GROUP_HEADS = {
    "guard", "guards", "servant", "servants", "soldier", "soldiers", "crowd", "officer", "officers", "villager",
    "villagers", "people", "men", "women", "children", "footman", "footmen", "maid", "maids", "attendant",
    "attendants", "courtier", "courtiers", "army", "troops", "company", "party", "family", "everyone", "everybody",
    "all", "others", "ladies", "gentlemen", "girls", "boys", "sailors", "crew", "mob", "monkeys", "townspeople",
    "passers-by", "passersby", "knights", "warriors", "bandits", "pirates", "cooks", "gardeners", "musicians",
    "dancers", "guests", "visitors", "spectators", "audience", "neighbours", "neighbors", "militia", "regiment",
    "stranger", "messenger", "waiter", "waiters", "coachman", "porter", "clerk", "policeman", "police", "sentry",
    "sentries", "herald", "page", "pages", "creatures", "animals", "birds", "court", "jury",
}


_EN_SURNAME_ROLES = {"page", "porter", "clerk", "court", "party", "company", "family", "stranger", "messenger",
                     "herald", "waiter", "guard", "maid", "officer", "jury", "all"}


def is_group_figure(name: str, lang: Lang = "zh") -> bool:
    """Whether a "character" is a group or a generic figure (an extra drawn without its own
    reference sheet): ``众猴``, ``士兵``, ``众人``, ``侍卫``, "the guards", "servants", "the
    crowd", "the Bennets"."""
    name = (name or "").strip()
    if not name:
        return False
    if _is_zh(lang, name):
        if name in _ZH_GROUP_WORDS or any(name.endswith(w) for w in _ZH_GROUP_WORDS if len(w) >= 2):
            return True
        if re.match(r"^(?:众|诸(?!葛)|群|一众|一群|一伙|一班|几个|数名|两个|许多|众多|大批)", name):
            return True
        return bool(re.search(r"(?:们|等人|众|兵|卒|军|民)$", name)) and not name.endswith("将军")
    words = _en_words(re.sub(r"^(?:the|a|an|some|two|three|several|many|all the|a few)\s+", "", name.lower()))
    if not words:
        return False
    if words[-1] in _EN_GROUP_HEADS:
        # a single capitalised word may be a surname ("Page", "Porter") rather than a role
        return not (len(words) == 1 and name[:1].isupper() and words[0] in _EN_SURNAME_ROLES)
    # "the Bennets", "the Lucases": a family by its plural surname
    return bool(re.match(r"^the\s+[A-Z][a-z]+(?:e?s)$", name)) and words[-1] not in _EN_NOUN
