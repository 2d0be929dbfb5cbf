"""A character's fixed look, and a stylised figure drawn from it.

:func:`look_for` turns a :class:`~novelcomic.models.Character` into a :class:`CharacterLook`:
colours (skin, hair, clothing, accent, trousers), hair style, build and accessories. Words in
``appearance`` (Chinese or English) decide what they name — ``红衣`` gives red clothing, ``白发``
white hair, ``斗笠`` a conical hat — and everything they leave open comes from a SHA-256 hash of
the character id, so the same character always gets the same look (in every shot, on every
machine) and two characters get different palettes.

:func:`draw_character` draws that look as a clean comic silhouette (head, hair, clothes, arms,
legs, accessories) into a box, in four poses and three framings (full body, waist up, head and
shoulders). Figures are drawn at a multiple of the target size on a transparent layer and
reduced, which anti-aliases every edge; the layer's alpha gives the exact region drawn.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from PIL import Image, ImageDraw

from novelcomic.errors import NovelcomicError
from novelcomic.models import Character

RGB = tuple[int, int, int]
Box = tuple[int, int, int, int]
Pose = Literal["front", "three_quarter", "side", "back"]
Framing = Literal["full", "medium", "bust", "face"]
HairStyle = Literal["long", "short", "bun", "bald", "ponytail", "braid"]
Hat = Literal["conical", "cap", "crown", "bonnet", "top_hat", "helmet", "band"]
Garment = Literal["robe", "tunic", "dress", "tailcoat", "suit", "shirt", "fur"]
#: Garments of Chinese cut (交领, hanfu); the others are western or modern.
HANFU: tuple[str, ...] = ("robe", "tunic")
Held = Literal["sword", "staff", "fan", "lantern", "book"]

POSES: tuple[Pose, ...] = ("front", "three_quarter", "side", "back")
FRAMINGS: tuple[Framing, ...] = ("full", "medium", "bust", "face")
EXPRESSIONS = ("neutral", "happy", "sad", "angry", "afraid", "surprised", "whisper", "excited")

#: The tallest build; a figure of this height fills its box, shorter ones stand shorter in it.
MAX_HEIGHT = 1.12
INK: RGB = (34, 28, 36)

# --------------------------------------------------------------------------- colour words

#: Named colours: (as cloth, as hair).
COLOURS: dict[str, tuple[RGB, RGB]] = {
    "red": ((188, 44, 52), (150, 48, 38)),
    "white": ((238, 236, 228), (236, 234, 230)),
    "green": ((58, 140, 82), (52, 96, 64)),
    "qing": ((46, 128, 112), (40, 70, 72)),
    "blue": ((46, 86, 170), (48, 66, 124)),
    "black": ((42, 40, 48), (30, 27, 30)),
    "gold": ((214, 166, 40), (226, 190, 104)),
    "purple": ((118, 62, 150), (96, 58, 118)),
    "grey": ((126, 126, 134), (164, 164, 170)),
    "silver": ((186, 190, 198), (210, 212, 218)),
    "pink": ((234, 138, 170), (228, 150, 180)),
    "orange": ((232, 126, 40), (204, 104, 46)),
    "brown": ((124, 80, 46), (92, 58, 34)),
}

_ZH_COLOUR_WORDS: dict[str, str] = {
    "红": "red", "赤": "red", "朱": "red", "绯": "red", "丹": "red",
    "白": "white", "素": "white", "雪": "white",
    "青": "qing", "碧": "qing", "翠": "green", "绿": "green",
    "蓝": "blue", "靛": "blue",
    "黑": "black", "玄": "black", "墨": "black", "乌": "black",
    "金": "gold", "黄": "gold",
    "紫": "purple", "灰": "grey", "银": "silver", "粉": "pink",
    "橙": "orange", "橘": "orange", "棕": "brown", "褐": "brown",
}
_EN_COLOUR_WORDS: dict[str, str] = {
    "red": "red", "crimson": "red", "scarlet": "red", "vermilion": "red",
    "white": "white", "ivory": "white", "snow": "white",
    "green": "green", "jade": "qing", "emerald": "green", "teal": "qing", "cyan": "qing",
    "blue": "blue", "azure": "blue", "navy": "blue", "indigo": "blue",
    "black": "black", "ebony": "black", "raven": "black",
    "gold": "gold", "golden": "gold", "yellow": "gold", "blond": "gold", "blonde": "gold",
    "purple": "purple", "violet": "purple", "lilac": "purple",
    "grey": "grey", "gray": "grey", "silver": "silver", "pink": "pink", "rose": "pink",
    "orange": "orange", "brown": "brown", "chestnut": "brown", "tan": "brown", "auburn": "brown",
}

# Words that hold a colour character without naming a colour.
_NOT_COLOURS = ("朴素", "青年", "青春", "明白", "黑暗", "金属", "红润", "丹凤", "白天", "黑夜", "青楼")

# What a colour word can describe, and the words for it.
Target = Literal["hair", "beard", "clothing", "lower", "accent", "hat", "skin", "eyes", "fur", "waistcoat", "other"]
_ZH_NOUNS: dict[str, Target] = {
    "头发": "hair", "发": "hair", "髮": "hair", "鬓": "hair", "辫": "hair", "马尾": "hair", "髻": "hair",
    "胡": "beard", "须": "beard", "髯": "beard",
    "衣": "clothing", "袍": "clothing", "衫": "clothing", "裙": "clothing", "服": "clothing",
    "装": "clothing", "褂": "clothing", "袄": "clothing", "甲": "clothing", "裳": "clothing",
    "披风": "clothing", "斗篷": "clothing",
    "裤": "lower", "靴": "lower",
    "腰带": "accent", "带": "accent", "绦": "accent", "巾": "accent", "披帛": "accent", "领": "accent",
    "帽": "hat", "笠": "hat", "冠": "hat",
    "毛": "fur", "皮毛": "fur", "毛发": "fur", "羽": "fur", "羽毛": "fur", "鳞": "fur", "鬃": "fur",
    "皮肤": "skin", "肤": "skin", "脸": "skin", "面": "skin",
    "眼": "eyes", "瞳": "eyes", "眸": "eyes", "目": "eyes", "眉": "eyes",
    "剑": "other", "刀": "other", "灯": "other", "扇": "other", "伞": "other", "花": "other",
}
_EN_NOUNS: dict[str, Target] = {
    "hair": "hair", "locks": "hair", "braid": "hair", "ponytail": "hair",
    "beard": "beard", "moustache": "beard", "mustache": "beard",
    "robe": "clothing", "robes": "clothing", "dress": "clothing", "gown": "clothing", "coat": "clothing",
    "shirt": "clothing", "jacket": "clothing", "cloak": "clothing", "cape": "clothing",
    "armor": "clothing", "armour": "clothing", "tunic": "clothing", "uniform": "clothing",
    "suit": "clothing", "clothes": "clothing", "clothing": "clothing", "skirt": "clothing",
    "kimono": "clothing", "frock": "clothing", "tailcoat": "clothing", "hanfu": "clothing", "overalls": "clothing",
    "trousers": "lower", "pants": "lower", "boots": "lower",
    "sash": "accent", "belt": "accent", "scarf": "accent", "ribbon": "accent", "trim": "accent",
    "collar": "accent",
    "hat": "hat", "cap": "hat", "hood": "hat", "crown": "hat", "bonnet": "hat",
    "waistcoat": "waistcoat", "vest": "waistcoat",
    "fur": "fur", "feathers": "fur", "plumage": "fur", "scales": "fur", "mane": "fur", "pelt": "fur",
    "skin": "skin", "complexion": "skin", "face": "skin",
    "eye": "eyes", "eyes": "eyes", "eyebrows": "eyes",
    "sword": "other", "blade": "other", "lantern": "other", "fan": "other", "umbrella": "other",
    "flower": "other",
}

# --------------------------------------------------------------------------- feature words

_FEATURES: dict[str, tuple[str, ...]] = {
    # hair styles (checked first so that "short hair" is not read as a short body)
    "hair:bald": ("光头", "秃", "和尚", "僧", r"\bbald\b", r"\bmonk\b", r"shaved head"),
    "hair:bun": ("发髻", "髻", "盘发", r"\bbun\b", r"topknot"),
    "hair:ponytail": ("马尾", r"pony ?tail"),
    "hair:braid": ("辫", r"\bbraids?\b", r"\bplait"),
    "hair:long": ("长发", "披发", "长头发", "秀发", r"long\s+(?:\w+\s+){0,2}hair", r"hair\s+(?:is\s+)?long"),
    "hair:short": ("短发", "寸头", r"short\s+(?:\w+\s+){0,2}hair", r"cropped hair"),
    # age
    "age:old": ("老者", "老人", "老头", "老妇", "老翁", "老叟", "老太", "老婆婆", "老爷爷", "年老", "苍老", "年迈",
                "花甲", "古稀", "白发苍苍", r"老(?![板师鼠虎实练家乡大总])", r"\bold\b", r"\belderly\b",
                r"\baged\b", r"\bgrey-haired\b", r"\bgray-haired\b"),
    "age:child": ("孩", "童", "幼", "稚", r"\bchild\b", r"\bkid\b", r"\blittle (?:boy|girl)\b", r"\btoddler\b"),
    "age:young": ("少年", "少女", "年轻", "青年", r"\byoung\b", r"\byouth\b", r"\bteen"),
    # build
    "build:tall": ("高大", "高挑", "修长", "颀长", "魁梧", "身材高", "个子高", "身形高", r"\btall\b", r"\blanky\b",
                   r"\btowering\b"),
    "build:short": ("矮", "娇小", "短小", r"\bpetite\b",
                    r"\bshort\b(?!\s+(?:\w+\s+)?(?:jacket|coat|skirt|dress|robe|tunic|sleeves?|cape|cloak|"
                    r"sword|blade))"),
    "build:stout": ("胖", "壮", "魁梧", "肥", "圆滚", "健硕", "虎背熊腰", r"\bstout\b", r"\bfat\b", r"\bplump\b",
                    r"\bburly\b", r"\bheavy\b", r"\bmuscular\b", r"\bbroad\b", r"\bbig\b"),
    "build:slim": ("瘦", "纤细", "苗条", "单薄", "清癯", r"\bslim\b", r"\bslender\b", r"\bthin\b", r"\bskinny\b",
                   r"\bwiry\b"),
    # gender
    "gender:female": ("女", "姑娘", "妇", "姐", "妹", "娘", "婆", "姬", "妃", r"\bshe\b", r"\bher\b", r"\bwoman\b",
                      r"\bgirl\b", r"\blady\b", r"\bfemale\b", r"\bprincess\b", r"\bqueen\b", r"\bmother\b"),
    "gender:male": ("男", "汉子", "公子", "郎", "爷", "爹", "哥", "弟", "叔", "伯", "僧", "翁", r"\bhe\b", r"\bhis\b",
                    r"\bman\b", r"\bboy\b", r"\bmale\b", r"\bking\b", r"\bprince\b", r"\bmonk\b", r"\bfather\b"),
    # face and head
    "beard": ("胡", "须", "髯", r"\bbeard", r"\bmoustache", r"\bmustache"),
    "glasses": ("眼镜", "镜片", r"\bglasses\b", r"\bspectacles\b", r"\bmonocle\b"),
    "hat:helmet": ("头盔", "盔", "兜鍪", r"\bhelmet\b", r"\bhelm\b"),
    "hat:top_hat": ("礼帽", "高帽", r"top[- ]hat", r"\bstovepipe\b"),
    "hat:bonnet": (r"\bbonnet\b",),
    "hat:band": ("头巾", "巾帻", "黄巾", "抹额", "额带", r"\bheadband\b", r"\bbandana\b", r"\bturban\b"),
    "hat:conical": ("斗笠", "竹笠", "笠", r"straw hat", r"conical hat", r"rice hat"),
    "hat:crown": ("发冠", "金冠", "冠", r"\bcrown\b", r"\bcoronet\b", r"\btiara\b"),
    "hat:cap": ("帽", r"\bhat\b", r"\bcap\b", r"\bhood\b", r"\bbonnet\b"),
    "ears:fox": ("狐", r"\bfox"),
    "ears:cat": ("猫", r"\bcat\b", r"\bfeline\b"),
    # held things
    "held:sword": ("剑", "刀", r"\bsword", r"\bblade\b", r"\bsaber\b", r"\bsabre\b", r"\bkatana\b"),
    "held:staff": ("杖", "棍", "棒", r"\bstaff\b", r"\bcane\b", r"\bwalking stick\b", r"\brod\b"),
    "held:lantern": ("灯笼", "提灯", r"\blantern\b", r"\blamp\b"),
    "held:fan": ("扇", r"\bfan\b"),
    "held:book": ("书卷", "书", "卷轴", r"\bbook\b", r"\bscroll\b"),
    # garment cut: western and modern clothes first (they name the cut most precisely)
    "garment:tailcoat": ("燕尾服", "马甲", r"\bwaistcoats?\b", r"tail[- ]?coat", r"frock[- ]coat", r"\bcravat\b",
                         r"\bbreeches\b", r"\bcoat[- ]tails\b"),
    "garment:suit": ("西装", "西服", "领带", r"\bsuit\b", r"\bnecktie\b", r"\btie\b", r"\bblazer\b"),
    "garment:shirt": ("T恤", "t恤", "牛仔", "卫衣", "夹克", r"t-shirt", r"\bjeans\b", r"\bhoodie\b", r"\bsweater\b",
                      r"\bjumper\b", r"\bsneakers\b", r"\braincoat\b", r"\bovercoat\b"),
    "garment:dress": ("连衣裙", "洋装", "蓬蓬裙", r"\bpinafore\b", r"\bfrock\b", r"\bpetticoat", r"\bcrinoline\b"),
    "armour": ("铠甲", "盔甲", "甲胄", "金甲", "铁甲", "银甲", "战甲", "披挂", r"\barmou?r", r"\bmail\b", r"\bbreastplate\b"),
    "apron": ("围裙", r"\bapron\b", r"\bpinafore\b"),
    "garment:robe": ("袍", "长衫", "道袍", "袈裟", "汉服", "裙", r"\brobes?\b", r"\bkimono\b", r"\bhanfu\b",
                     r"\bcassock\b", r"\bdress\b", r"\bgown\b"),
    "garment:tunic": ("短打", "短褐", "劲装", "短衫", "裤", "铠甲", r"\btunic\b", r"\bjacket\b", r"\btrousers\b",
                      r"\bpants\b", r"\barmou?r\b", r"\bshirt\b"),
    # skin
    "skin:fair": ("白皙", "肤白", "皮肤白", "雪白的肌肤", r"\bfair[- ]skinned\b", r"\bpale\b", r"\bfair skin\b"),
    "skin:tan": ("黝黑", "古铜", "黑黝黝", "晒黑", r"\btanned\b", r"\bdark[- ]skinned\b", r"\bbronzed?\b",
                 r"\bweathered\b"),
}

# --------------------------------------------------------------------------- defaults by hash

SKIN_TONES: tuple[RGB, ...] = ((248, 222, 198), (242, 208, 178), (228, 188, 152), (204, 158, 120))
SKIN_FAIR: RGB = (250, 228, 210)
SKIN_TAN: RGB = (186, 134, 96)
SKIN_RED: RGB = (184, 84, 62)
DEFAULT_HAIR: tuple[RGB, ...] = ((32, 28, 32), (58, 40, 32), (30, 32, 46), (44, 36, 34))
OLD_HAIR: RGB = (214, 212, 208)
CLOTHING_PALETTE: tuple[RGB, ...] = (
    (176, 46, 58),   # crimson
    (46, 96, 170),   # blue
    (50, 134, 96),   # jade
    (122, 70, 152),  # purple
    (222, 150, 40),  # amber
    (36, 128, 142),  # teal
    (202, 88, 124),  # rose
    (84, 90, 108),   # slate
    (150, 94, 50),   # tan brown
    (108, 138, 56),  # olive
    (58, 66, 126),   # indigo
    (212, 104, 56),  # rust orange
)
GENTLEMEN_PALETTE: tuple[RGB, ...] = (
    (38, 40, 52),    # black
    (40, 56, 96),    # navy
    (46, 78, 60),    # bottle green
    (96, 62, 44),    # brown
    (86, 88, 96),    # grey
    (110, 36, 48),   # claret
)
ACCENT_PALETTE: tuple[RGB, ...] = (
    (236, 204, 108), (242, 238, 226), (52, 44, 50), (196, 60, 60), (116, 178, 200),
    (232, 156, 176), (140, 196, 128), (178, 140, 210),
)
HAT_STRAW: RGB = (206, 176, 114)
CROWN_GOLD: RGB = (228, 186, 62)


@dataclass(frozen=True)
class CharacterLook:
    """Everything needed to draw one character the same way every time.

    Colours are RGB tuples; ``clothing`` is the dominant colour of the figure (the robe or
    tunic), which consistency checks look for in every shot the character appears in.
    """

    character_id: str
    skin: RGB
    hair: RGB
    hair_style: HairStyle
    clothing: RGB
    accent: RGB
    lower: RGB
    beard_colour: RGB
    hat_colour: RGB
    height: float = 1.0  # 0.72 (child) … 1.12 (tall); relative to an adult of average height
    width: float = 1.0  # 0.85 (slim) … 1.3 (stout)
    age: Literal["child", "young", "adult", "old"] = "adult"
    gender: Literal["male", "female", "unknown"] = "unknown"
    garment: Garment = "robe"
    hat: Hat | None = None
    glasses: bool = False
    beard: bool = False
    held: Held | None = None
    ears: Literal["fox", "cat"] | None = None
    species: str = "human"  # a models.Species: animals are drawn with their head, fur, tail (and wings)
    region: str = "china"  # where the clothes come from (world.period_region): china, england, modern…
    eye_colour: RGB | None = None  # None: ink-dark eyes
    armour: bool = False
    apron: bool = False
    waistcoat: RGB | None = None  # under a tailcoat or suit
    fur: RGB | None = None  # animals: the coat of fur / feathers / scales (also their face and hands)

    @property
    def hanfu(self) -> bool:
        """Whether the figure wears Chinese dress (crossed collar, hanfu cut)."""
        return self.garment in HANFU and self.region in ("china", "fantasy_east")

    @property
    def animal(self) -> bool:
        return self.species != "human"

    @property
    def palette(self) -> list[tuple[str, RGB]]:
        """The look's colours with their roles, for swatches: skin, hair, clothing, accent, lower."""
        return [
            ("skin", self.skin), ("hair", self.hair), ("clothing", self.clothing),
            ("accent", self.accent), ("lower", self.lower),
        ]


# --------------------------------------------------------------------------- look_for


def look_for(character: Character, period: str | None = None, lang: str | None = None) -> CharacterLook:
    """The deterministic look of ``character``: appearance words first, the id's hash for the rest.

    ``period`` (a models.Period: the book's, see :func:`novelcomic.plan.world.effective_period`)
    chooses the cut of the clothes where the appearance does not (a Victorian girl wears a dress,
    a Han general a robe); ``lang`` picks the region of an unknown or fantasy period (zh: China).
    The species is the character's, else read from its name, aliases and appearance."""
    from novelcomic.plan.world import period_region, species_of

    text = character.appearance or ""
    if character.group or character.role == "extra":  # a generic figure's name describes it: 黄巾, 红衣卫士, the redcoats
        text = " ".join(t for t in (character.name, text) if t)
    lang = lang or ("zh" if re.search(r"[\u4e00-\u9fff]", character.name + text) else "en")
    region = period_region(period or "unknown", lang)
    species = character.species
    if species == "human":
        species = species_of(character.name, "", lang, aliases=character.aliases, appearance=text)
    digest = hashlib.sha256(f"novelcomic-look:{character.id}".encode()).digest()
    features = _features(text)
    # a species in the name or an alias (白狐, "the Fox") shows even when the appearance omits it
    features |= {f for f in _features(" ".join([character.name, *character.aliases])) if f.startswith("ears:")}
    if species in ("fox", "cat"):
        features.add("ears:" + species)
    elif species != "human":
        features -= {"ears:fox", "ears:cat"}
    colours = _colour_assignments(text)
    clothed = species == "human" or _clothed(features, text)
    if species != "human" and re.search(r"王|king|queen|prince|princess", character.name + " ".join(character.aliases),
                                         re.IGNORECASE):
        features.add("hat:crown")  # 美猴王, the Monkey King: a crowned (and robed) animal
        clothed = True

    age = _age(features, character)
    gender = _gender(features, character)
    palette = CLOTHING_PALETTE
    if region == "england" and gender != "female" and age != "child":
        palette = GENTLEMEN_PALETTE  # a Regency / Victorian gentleman's coat is dark, never rose or amber
    clothing = colours.get("clothing", [palette[digest[0] % len(palette)]])
    primary = clothing[0]
    accent = next((c for c in colours.get("accent", []) + clothing[1:] if c != primary), None)
    if accent is None:
        accent = _pick_distinct(ACCENT_PALETTE, digest[1], primary)
    lower = colours.get("lower", [None])[0] or _lower_default(primary, digest[2])

    hair = _hair_colour(colours, text, age, digest[3])
    skin = _skin(features, colours, digest[4])
    fur = None
    if species != "human":
        fur = _fur_colour(species, colours, clothed, digest[10], " ".join([character.name, *character.aliases]))
        skin = hair = fur
        if not clothed:
            primary, lower = fur, shade(fur, 0.9)
            accent = mix(fur, (255, 255, 255), 0.55)
    garment = _garment(features, gender, digest[9], region, age) if clothed else "fur"
    if "hat:bonnet" not in features and region == "england" and gender == "female" and garment == "dress" \
            and age != "child" and digest[11] % 3 == 0:
        features.add("hat:bonnet")
    if garment == "shirt" and not colours.get("lower") and region == "modern":
        lower = (62, 84, 128)  # jeans
    beard = "beard" in features or (age == "old" and gender == "male" and digest[5] % 2 == 0)
    if region in ("china", "fantasy_east") and gender == "male" and age == "adult" and species == "human" \
            and not _BEARDLESS.search(text):
        beard = beard or digest[5] % 3 != 0  # most grown men of old China wear a beard (关羽's long one, 张飞's whiskers)
    beard_colour = colours.get("beard", [None])[0] or (OLD_HAIR if age == "old" else hair)
    hat = _first_feature(features, "hat:")
    hat_colour = colours.get("hat", [None])[0] or (
        (colours.get("accent") or [shade(accent, 0.8)])[0] if hat == "band" else
        HAT_STRAW if hat in ("conical", "bonnet") else CROWN_GOLD if hat == "crown" else (44, 40, 46)
        if hat == "top_hat" else (170, 174, 184) if hat == "helmet" else shade(accent, 0.8)
    )
    return CharacterLook(
        character_id=character.id,
        skin=skin,
        hair=hair,
        hair_style=_hair_style(features, gender, age, digest[6], region),  # type: ignore[arg-type]
        clothing=primary,
        accent=accent,
        lower=lower,
        beard_colour=beard_colour,
        hat_colour=hat_colour,
        height=_height(features, age, digest[7]),
        width=_width(features, digest[8]),
        age=age,
        gender=gender,
        garment=garment,  # type: ignore[arg-type]
        hat=hat,  # type: ignore[arg-type]
        glasses="glasses" in features,
        beard=beard and age != "child" and gender != "female" and species in ("human", "monkey", "dragon", "demon"),
        held=_first_feature(features, "held:"),  # type: ignore[arg-type]
        ears=_first_feature(features, "ears:"),  # type: ignore[arg-type]
        species=species,
        region=region,
        eye_colour=colours.get("eyes", [None])[0],
        armour="armour" in features,
        apron="apron" in features and garment in ("dress", "robe", "tunic", "shirt"),
        waistcoat=(colours.get("waistcoat", [None])[0] or _pick_distinct(ACCENT_PALETTE, digest[12], primary))
        if garment in ("tailcoat", "suit") else None,
        fur=fur,
    )


def _features(text: str) -> set[str]:
    """Feature keys (``"hair:long"``, ``"beard"`` …) named in ``text``; hair styles are consumed first."""
    rest = text.lower()
    found: set[str] = set()
    for key, patterns in _FEATURES.items():
        for pattern in patterns:
            if re.search(pattern, rest):
                found.add(key)
                if key.startswith("hair:"):
                    rest = re.sub(pattern, " ", rest)  # "short hair" must not also mean a short body
    return found


def _first_feature(features: set[str], prefix: str) -> str | None:
    """The first value of a ``prefix:value`` feature in table order (tables list the specific first)."""
    for key in _FEATURES:
        if key.startswith(prefix) and key in features:
            return key[len(prefix):]
    return None


def _colour_assignments(text: str) -> dict[str, list[RGB]]:
    """Colours named in ``text`` by what they describe: ``{"clothing": [red, gold], "hair": [white]}``.

    Each colour word goes to the nearest noun after it in the same clause (``红衣``, ``black
    hair``), else the nearest before it (``头发乌黑``, ``a robe of red``).
    """
    special = {"青丝": ("hair", COLOURS["black"][1]), "白皙": ("skin", SKIN_FAIR), "黝黑": ("skin", SKIN_TAN),
               # classical portraits: 面如重枣 (关羽's red face), 面如冠玉 / 面如傅粉 (a pale one)
               "重枣": ("skin", SKIN_RED), "面如枣": ("skin", SKIN_RED), "冠玉": ("skin", SKIN_FAIR), "傅粉": ("skin", SKIN_FAIR)}
    out: dict[str, list[RGB]] = {}
    text = re.sub("|".join(_NOT_COLOURS), lambda m: "　" * len(m.group()), text.lower())
    for clause in re.split(r"[，,。.;；、!！?？\n]|\band\b|\bwith\b", text):
        for word, (target, rgb) in special.items():
            if word in clause:
                out.setdefault(target, []).append(rgb)
                clause = clause.replace(word, "　" * len(word))
        colours = _spans(clause, _ZH_COLOUR_WORDS, _EN_COLOUR_WORDS)
        nouns = _spans(clause, _ZH_NOUNS, _EN_NOUNS)
        for start, end, name in colours:
            target = _target_for(start, end, nouns) or "clothing"  # a bare colour most often means the clothes
            if target == "other" or (target == "eyes" and name in ("white", "black")):
                continue  # 白眉, black eyes: the usual
            rgb = COLOURS[name][1 if target in ("hair", "beard") else 0]
            if target == "skin":
                rgb = SKIN_FAIR if name == "white" else SKIN_TAN if name in ("black", "brown") else None
                if rgb is None:
                    continue
            bucket = out.setdefault(target, [])  # type: ignore[arg-type]
            if rgb not in bucket:
                bucket.append(rgb)
    return out


def named_colours(text: str) -> list[RGB]:
    """The colours named in ``text`` in order of appearance, as cloth colours (for props and the like)."""
    text = re.sub("|".join(_NOT_COLOURS), lambda m: "　" * len(m.group()), text.lower())
    return [COLOURS[name][0] for _, _, name in _spans(text, _ZH_COLOUR_WORDS, _EN_COLOUR_WORDS)]


def _spans(text: str, zh: dict[str, str], en: dict[str, str]) -> list[tuple[int, int, str]]:
    """(start, end, value) of every word of ``zh`` (substrings, longest first) and ``en`` (whole words)."""
    spans: list[tuple[int, int, str]] = []
    taken = [False] * len(text)
    for word in sorted(zh, key=len, reverse=True):
        for m in re.finditer(re.escape(word), text):
            if not any(taken[m.start():m.end()]):
                spans.append((m.start(), m.end(), zh[word]))
                taken[m.start():m.end()] = [True] * (m.end() - m.start())
    for m in re.finditer(r"[a-z]+", text):
        if m.group() in en:
            spans.append((m.start(), m.end(), en[m.group()]))
    return sorted(spans)


def _target_for(start: int, end: int, nouns: list[tuple[int, int, str]]) -> str | None:
    after = [n for n in nouns if n[0] >= end]
    if after:
        return after[0][2]
    before = [n for n in nouns if n[1] <= start]
    return before[-1][2] if before else None


def _age(features: set[str], character: Character) -> Literal["child", "young", "adult", "old"]:
    voice_age = character.voice.age
    if "age:child" in features or voice_age == "child":
        return "child"
    if "age:old" in features or voice_age == "old":
        return "old"
    if "age:young" in features or voice_age == "young":
        return "young"
    return "adult"


_BEARDLESS = re.compile(r"无须|无胡|面白无须|少年|beardless|clean[- ]shaven", re.IGNORECASE)
#: Titles that say who someone is when the planner did not (Mrs. Bennet, Mr. Darcy, 刘夫人, 貂蝉 is not caught).
_FEMALE_TITLE = re.compile(r"^(?:mrs|miss|lady|madam|madame|mistress|aunt|queen|princess|duchess)\b\.?|"
                           r"(?:夫人|娘娘|小姐|姑娘|氏|娘|姬|妃|后|女|妹|姐|嫂|婆)$", re.IGNORECASE)
_HONORIFIC = re.compile(r"(mr|mrs|miss|sir|lady|lord)\b\.?\s+\w", re.IGNORECASE)
_MALE_TITLE = re.compile(r"^(?:mr|sir|lord|colonel|captain|uncle|king|prince|duke|reverend|rev|dr|master)\b\.?|"
                         r"(?:公子|先生|将军|太守|丞相|皇帝|天子|王|侯|公|帝|君|兄|弟|叔|伯|父|爷|郎|和尚)$", re.IGNORECASE)


def _gender(features: set[str], character: Character) -> Literal["male", "female", "unknown"]:
    """The voice's gender, else the appearance's words, else a title in the name or an alias
    (Mrs. Bennet, Sir William, 刘夫人, 天公将军). An English honorific that opens the name itself
    (Mr., Mrs., Miss, Sir, Lady) says it even over the voice: Mr. Darcy is drawn as a man
    whatever voice a planner guessed for him."""
    honorific = _HONORIFIC.match(character.name.strip())
    if honorific:
        return "male" if honorific.group(1).lower() in ("mr", "sir", "lord") else "female"
    if character.voice.gender != "unknown":
        return character.voice.gender
    female, male = "gender:female" in features, "gender:male" in features
    if female != male:
        return "female" if female else "male"
    for name in (character.name, *character.aliases):
        name = name.strip()
        f, m = bool(_FEMALE_TITLE.search(name)), bool(_MALE_TITLE.search(name))
        if f != m:
            return "female" if f else "male"
    return "unknown"


def _hair_colour(colours: dict[str, list[RGB]], text: str, age: str, byte: int) -> RGB:
    if colours.get("hair"):
        return colours["hair"][0]
    if age == "old" or re.search(r"白发|银发|white hair|grey hair|gray hair", text.lower()):
        return OLD_HAIR
    return DEFAULT_HAIR[byte % len(DEFAULT_HAIR)]


def _skin(features: set[str], colours: dict[str, list[RGB]], byte: int) -> RGB:
    if colours.get("skin"):
        return colours["skin"][0]
    if "skin:fair" in features:
        return SKIN_FAIR
    if "skin:tan" in features:
        return SKIN_TAN
    return SKIN_TONES[byte % 3]  # the darkest tone only when asked for, via words


def _hair_style(features: set[str], gender: str, age: str, byte: int, region: str = "neutral") -> str:
    """Named in the appearance, else by gender, age and the book's region: in old China grown men
    (and people of unknown gender) tie their hair in a topknot, never cut it short or wear it
    loose (which reads as a woman); Victorian women put theirs up."""
    style = _first_feature(features, "hair:")
    if style:
        return style
    if region in ("china", "fantasy_east") and age != "child":
        if gender == "female":
            return ("long", "bun", "braid", "long", "bun")[byte % 5]
        return ("bun", "bun", "ponytail")[byte % 3] if age == "young" else "bun"
    if region == "england" and age != "child":
        if gender == "female":
            return ("bun", "bun", "long", "braid")[byte % 4]
        return "short" if gender == "male" or age == "old" else ("short", "short", "bun")[byte % 3]
    if gender == "female":
        options: tuple[str, ...] = ("long", "bun", "ponytail", "braid", "long")
    elif gender == "male":
        options = ("short", "bun", "ponytail", "short") if age != "old" else ("bun", "short", "bald")
    else:
        options = ("short", "long", "bun", "ponytail")
    return options[byte % len(options)]


def _height(features: set[str], age: str, byte: int) -> float:
    if age == "child":
        return 0.72
    base = 0.97 + (byte % 7) * 0.01
    if "build:tall" in features:
        return 1.1
    if "build:short" in features:
        return 0.88
    return base - (0.03 if age == "old" else 0.0)


def _width(features: set[str], byte: int) -> float:
    if "build:stout" in features:
        return 1.3
    if "build:slim" in features:
        return 0.86
    return 0.95 + (byte % 5) * 0.025


def _garment(features: set[str], gender: str, byte: int, region: str = "china", age: str = "adult") -> str:
    """The cut of the clothes: named western or modern clothes first, then the book's region
    (hanfu robes and tunics in China, dresses and tailcoats in Victorian England …)."""
    for cut in ("tailcoat", "suit", "shirt", "dress"):
        if "garment:" + cut in features:
            return cut
    western = region in ("england", "modern", "fantasy_west", "neutral")
    if "garment:robe" in features:
        return "dress" if western and gender != "male" else "robe"
    if "garment:tunic" in features:
        return "tunic" if region != "modern" else "shirt"
    if region == "england":
        return "dress" if gender == "female" else "tailcoat"
    if region == "modern":
        if gender == "female":
            return ("dress", "shirt")[byte % 2]
        return ("suit", "shirt", "shirt")[byte % 3] if age != "child" else "shirt"
    if region in ("fantasy_west", "neutral"):
        if gender == "female":
            return "dress"
        return "robe" if age == "old" and byte % 2 else "tunic"
    return "robe" if gender == "female" or byte % 3 else "tunic"


_CLOTHES = re.compile(
    r"衣|袍|衫|裙|褂|袄|甲|服|裳|披风|斗篷|围裙|马甲|\b(?:robes?|dress|gown|coat|jacket|shirt|waistcoat|vest|tunic|armou?r|"
    r"cloak|cape|apron|suit|trousers|breeches|uniform|hat|bonnet|kimono|hanfu|frock)\b", re.IGNORECASE)


def _clothed(features: set[str], text: str) -> bool:
    """An animal wears clothes only when its appearance names some."""
    return bool(_CLOTHES.search(text)) or "armour" in features


# default coats: (one of these by the id's hash)
_FUR: dict[str, tuple[RGB, ...]] = {
    "monkey": ((176, 122, 64), (150, 104, 58), (196, 150, 82)),
    "fox": ((222, 118, 46), (204, 100, 40)),
    "rabbit": ((246, 244, 240), (196, 180, 160), (170, 160, 156)),
    "dragon": ((58, 146, 96), (200, 160, 50), (64, 110, 170)),
    "demon": ((176, 58, 56), (70, 96, 160), (92, 140, 84)),
    "bird": ((150, 160, 176), (240, 240, 236), (86, 120, 170)),
    "cat": ((150, 150, 156), (226, 150, 72), (52, 50, 56), (240, 236, 230)),
    "dog": ((170, 120, 72), (224, 206, 170), (90, 70, 56)),
    "horse": ((140, 90, 56), (236, 232, 226), (60, 46, 40)),
    "tiger": ((232, 142, 50),),
    "other": ((150, 130, 110), (120, 120, 126)),
}


def _fur_colour(species: str, colours: dict[str, list[RGB]], clothed: bool, byte: int, name: str = "") -> RGB:
    named = colours.get("fur") or colours.get("skin") or colours.get("hair")
    if not named and not clothed:
        named = colours.get("clothing")  # "雪白的…", "a grey heron": a bare colour is the coat
    if not named:
        named = named_colours(name)[:1]  # 白狐, 赤兔马, the White Rabbit
    if named:
        return named[0]
    options = _FUR.get(species, _FUR["other"])
    return options[byte % len(options)]


def _lower_default(primary: RGB, byte: int) -> RGB:
    neutrals: tuple[RGB, ...] = ((58, 54, 62), (86, 74, 64), (64, 70, 84))
    return shade(primary, 0.55) if byte % 2 else neutrals[byte % 3]


def _pick_distinct(palette: Sequence[RGB], byte: int, avoid: RGB) -> RGB:
    """A palette colour chosen by ``byte``, skipping ones too close to ``avoid``."""
    for i in range(len(palette)):
        c = palette[(byte + i) % len(palette)]
        if colour_distance(c, avoid) > 90:
            return c
    return palette[byte % len(palette)]


# --------------------------------------------------------------------------- colour helpers


def colour_distance(a: Sequence[int], b: Sequence[int]) -> float:
    """Euclidean distance in RGB."""
    return math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b)))


def shade(c: Sequence[int], f: float) -> RGB:
    """``c`` with every channel multiplied by ``f`` (darker below 1, lighter above, clamped)."""
    return (min(255, round(c[0] * f)), min(255, round(c[1] * f)), min(255, round(c[2] * f)))


def mix(a: Sequence[int], b: Sequence[int], t: float) -> RGB:
    """``a`` blended ``t`` of the way toward ``b``."""
    return (round(a[0] + (b[0] - a[0]) * t), round(a[1] + (b[1] - a[1]) * t), round(a[2] + (b[2] - a[2]) * t))


# --------------------------------------------------------------------------- drawing


@dataclass(frozen=True)
class DrawnFigure:
    """Where a figure landed, in pixels of the target image: its whole extent and its head."""

    box: Box
    head: Box


# Vertical unit range (0 = top of the head, 1 = soles) and horizontal half extent of each framing.
_FRAMES: dict[str, tuple[float, float, float]] = {
    "full": (-0.07, 1.015, 0.21),
    "medium": (-0.07, 0.56, 0.22),
    "bust": (-0.06, 0.34, 0.19),
    "face": (-0.05, 0.24, 0.15),
}
_POSE_WIDTH = {"front": 1.0, "three_quarter": 0.86, "side": 0.62, "back": 1.0}


def figure_aspect(framing: Framing = "full") -> float:
    """Width / height of the box a figure of ``framing`` fills best."""
    y0, y1, hx = _FRAMES[framing]
    return 2 * hx / (y1 - y0)


def draw_character(
    target: Image.Image | ImageDraw.ImageDraw,
    look: CharacterLook,
    box: Sequence[float],
    pose: Pose = "front",
    expression: str = "neutral",
    *,
    facing: int = 1,
    framing: Framing = "full",
    gesture: bool = False,
    supersample: int = 2,
) -> DrawnFigure:
    """Draw ``look`` into ``box`` (left, top, right, bottom) of ``target`` and say where it landed.

    ``framing`` picks the part shown: ``full`` body standing on the box bottom (shorter builds
    stand shorter, see :data:`MAX_HEIGHT`), ``medium`` (waist up), ``bust`` (head and shoulders)
    or ``face``; the figure is cut at the box edges. ``facing`` is +1 (toward the viewer's right)
    or -1 and mirrors the figure. ``gesture`` raises the near arm, for a speaker. The figure is
    drawn ``supersample`` times larger on a transparent layer and reduced, for clean edges.
    """
    image = _image_of(target)
    _check_draw_args(pose, expression, facing, framing, supersample, box)
    left, top, right, bottom = (int(round(v)) for v in box)
    bw, bh = right - left, bottom - top
    ss = supersample
    layer = Image.new("RGBA", (bw * ss, bh * ss), (0, 0, 0, 0))
    pen = _pen_for(layer, look, pose, framing, facing, ss)
    _FigurePainter(pen, look, pose, expression, gesture).paint()
    if ss > 1:
        layer = layer.convert("RGBa").resize((bw, bh), Image.Resampling.LANCZOS).convert("RGBA")
    image.paste(layer, (left, top), layer)
    return DrawnFigure(_drawn_box(layer, left, top, image.size), _head_box(pen, ss, left, top, image.size))


def draw_head_and_shoulders(
    target: Image.Image | ImageDraw.ImageDraw,
    look: CharacterLook,
    box: Sequence[float],
    pose: Pose = "front",
    expression: str = "neutral",
    *,
    facing: int = 1,
    supersample: int = 2,
) -> DrawnFigure:
    """The close-up variant of :func:`draw_character`: head and shoulders filling ``box``."""
    return draw_character(
        target, look, box, pose, expression, facing=facing, framing="bust", supersample=supersample
    )


def _image_of(target: Image.Image | ImageDraw.ImageDraw) -> Image.Image:
    if isinstance(target, Image.Image):
        return target
    image = getattr(target, "_image", None)  # ImageDraw keeps the image it draws on
    if isinstance(image, Image.Image):
        return image
    raise NovelcomicError(f"draw_character needs a PIL image or ImageDraw, got {type(target).__name__}")


def _check_draw_args(pose: str, expression: str, facing: int, framing: str, ss: int, box: Sequence[float]) -> None:
    if pose not in POSES:
        raise NovelcomicError(f"unknown pose {pose!r} (poses: {', '.join(POSES)})")
    if expression not in EXPRESSIONS:
        raise NovelcomicError(f"unknown expression {expression!r} (expressions: {', '.join(EXPRESSIONS)})")
    if facing not in (1, -1):
        raise NovelcomicError(f"facing {facing!r} must be 1 or -1")
    if framing not in _FRAMES:
        raise NovelcomicError(f"unknown framing {framing!r} (framings: {', '.join(FRAMINGS)})")
    if not 1 <= ss <= 4:
        raise NovelcomicError(f"supersample {ss!r} must be 1 to 4")
    if len(box) != 4 or box[2] - box[0] < 4 or box[3] - box[1] < 4:
        raise NovelcomicError(f"figure box {tuple(box)!r} must be (left, top, right, bottom), at least 4x4 pixels")


def _drawn_box(layer: Image.Image, left: int, top: int, size: tuple[int, int]) -> Box:
    """The layer's opaque extent moved to image coordinates and clipped to the image."""
    bbox = layer.getchannel("A").point(lambda a: 255 if a > 24 else 0).getbbox()
    if bbox is None:
        return (left, top, left, top)
    l, t, r, b = bbox
    return (
        max(0, min(size[0], left + l)), max(0, min(size[1], top + t)),
        max(0, min(size[0], left + r)), max(0, min(size[1], top + b)),
    )


def _head_box(pen: "_Pen", ss: int, left: int, top: int, size: tuple[int, int]) -> Box:
    geo = pen.geo
    (x0, y0), (x1, y1) = pen.p(-geo.head_rx, geo.head_cy - geo.head_ry), pen.p(geo.head_rx, geo.head_cy + geo.head_ry)
    xs, ys = sorted((x0 / ss + left, x1 / ss + left)), (y0 / ss + top, y1 / ss + top)
    return (
        max(0, round(xs[0])), max(0, round(ys[0])), min(size[0], round(xs[1])), min(size[1], round(ys[1])),
    )


# garment → (hem height, hem half width) in figure units
_HEM: dict[str, tuple[float, float]] = {
    "robe": (0.88, 0.135), "dress": (0.9, 0.165), "tunic": (0.6, 0.1), "tailcoat": (0.55, 0.092),
    "suit": (0.56, 0.094), "shirt": (0.52, 0.088), "fur": (0.54, 0.09),
}


@dataclass(frozen=True)
class _Geometry:
    """Body landmarks in figure units (0 = top of the head, 1 = soles, x = 0 the body's axis)."""

    head_rx: float
    head_ry: float
    head_cy: float
    neck_y: float
    shoulder_y: float
    shoulder_w: float
    waist_y: float
    waist_w: float
    hem_y: float
    hem_w: float
    leg_x: float
    leg_w: float
    hand_y: float
    arm_w: float


def _geometry(look: CharacterLook, pose: Pose) -> _Geometry:
    w = look.width * _POSE_WIDTH[pose]
    child = look.age == "child"
    head_ry = 0.095 if child else 0.072
    head_cy = head_ry + 0.003
    chin = head_cy + head_ry
    female = look.gender == "female"
    hem = _HEM[look.garment]
    return _Geometry(
        head_rx=head_ry * 0.84,
        head_ry=head_ry,
        head_cy=head_cy,
        neck_y=chin + 0.03,
        shoulder_y=chin + 0.035,
        shoulder_w=(0.092 if female else 0.104) * w * (1.05 if child else 1.0),
        waist_y=0.45 if child else 0.43,
        waist_w=(0.07 if female else 0.078) * w,
        hem_y=hem[0] if not child else hem[0] + (0.04 if hem[0] < 0.8 else -0.04),
        hem_w=hem[1] * w * (1.08 if female else 1.0),
        leg_x=0.036 * w,
        leg_w=0.048 * max(0.9, w),
        hand_y=0.53 if child else 0.5,
        arm_w=0.05 * max(0.9, w),
    )


@dataclass
class _Pen:
    """Maps figure units to layer pixels (mirrored by ``facing``) and draws outlined shapes."""

    draw: ImageDraw.ImageDraw
    ox: float
    oy: float
    s: float
    facing: int
    lw: int
    geo: _Geometry

    def p(self, x: float, y: float) -> tuple[float, float]:
        return (self.ox + self.facing * x * self.s, self.oy + y * self.s)

    def pts(self, points: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
        return [self.p(x, y) for x, y in points]

    def poly(self, points: Iterable[tuple[float, float]], fill: RGB, outline: bool = True) -> None:
        self.draw.polygon(
            self.pts(points), fill=fill, outline=INK if outline else None, width=self.lw if outline else 1
        )

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, fill: RGB | None, outline: bool = True,
                width: int | None = None) -> None:
        (x0, y0), (x1, y1) = self.p(cx - rx, cy - ry), self.p(cx + rx, cy + ry)
        self.draw.ellipse(
            (min(x0, x1), y0, max(x0, x1), y1), fill=fill,
            outline=INK if outline else None, width=(width or self.lw) if outline else 1,
        )

    def line(self, points: Iterable[tuple[float, float]], fill: RGB, width: float) -> None:
        self.draw.line(self.pts(points), fill=fill, width=max(1, round(width * self.s)), joint="curve")

    def limb(self, points: Sequence[tuple[float, float]], fill: RGB, width: float) -> None:
        """A thick stroke with an ink edge: drawn wide in ink, then narrower in colour."""
        self.line(points, INK, width + 2 * self.lw / self.s)
        self.line(points, fill, width)
        for x, y in (points[0], points[-1]):
            self.ellipse(x, y, width / 2, width / 2, fill, outline=False)


def _curve(p0: tuple[float, float], p1: tuple[float, float], p2: tuple[float, float], steps: int = 12
           ) -> list[tuple[float, float]]:
    """Points along the quadratic curve p0→p2 pulled toward p1."""
    out = []
    for i in range(steps + 1):
        t = i / steps
        a, b, c = (1 - t) ** 2, 2 * (1 - t) * t, t * t
        out.append((a * p0[0] + b * p1[0] + c * p2[0], a * p0[1] + b * p1[1] + c * p2[1]))
    return out


def _plume(p0: tuple[float, float], p1: tuple[float, float], p2: tuple[float, float], t0: float, t1: float,
           width: float = 0.055) -> list[tuple[float, float]]:
    """The outline of a tail along the quadratic curve p0→p2 (pulled toward p1), fattest in the
    middle, between curve parameters ``t0`` and ``t1``."""
    def at(t: float) -> tuple[float, float]:
        a, b, c = (1 - t) ** 2, 2 * (1 - t) * t, t * t
        return (a * p0[0] + b * p1[0] + c * p2[0], a * p0[1] + b * p1[1] + c * p2[1])

    steps = 14
    left, right = [], []
    for i in range(steps + 1):
        t = t0 + (t1 - t0) * i / steps
        (x, y), (x2, y2) = at(t), at(min(1.0, t + 0.01))
        if t >= 1.0:
            (x, y), (x2, y2) = at(0.99), at(1.0)
        dx, dy = x2 - x, y2 - y
        norm = math.hypot(dx, dy) or 1.0
        nx, ny = -dy / norm, dx / norm
        half = width * (0.25 + math.sin(math.pi * min(t, 0.98)) * 0.75) * (1 - t ** 3 * 0.6)
        cx, cy = at(t)
        left.append((cx + nx * half, cy + ny * half))
        right.append((cx - nx * half, cy - ny * half))
    return left + right[::-1]


def _frame_extent(look: CharacterLook, framing: Framing) -> tuple[float, float, float]:
    """(half width, height, cut line) of ``framing``'s part of ``look`` in figure units, the height
    counted as the box must have it (shorter builds stand shorter in the same box)."""
    y0, y1, hx = _FRAMES[framing]
    hx *= max(1.0, look.width * 0.88)
    if (look.ears == "fox" or look.species in ("fox", "monkey", "dragon", "tiger", "cat", "dog", "horse", "demon")) \
            and framing == "full":
        hx = max(hx, 0.28)  # room for the tail
    height = look.height / MAX_HEIGHT if framing in ("full", "medium") else 1.0
    return hx, (y1 - y0) / height, y1


def _fit_figure(look: CharacterLook, framing: Framing, w: float, h: float) -> tuple[float, float]:
    """The scale (pixels per figure unit) and the y of the head's top that make ``framing``'s
    part of the figure fill a ``w``×``h`` box, bottom-centred."""
    hx, tall, y1 = _frame_extent(look, framing)
    s = min(h / tall, w / (2 * hx))
    return s, h - y1 * s


def figure_scale(look: CharacterLook, box: Sequence[float], framing: Framing = "full") -> float:
    """Pixels per figure unit (0 = top of the head, 1 = soles) of ``look`` drawn into ``box``."""
    left, top, right, bottom = (int(round(v)) for v in box)
    return _fit_figure(look, framing, right - left, bottom - top)[0]


def figure_box(
    look: CharacterLook, framing: Framing, scale: float, cx: float, bottom: float
) -> tuple[float, float, float, float]:
    """The box in which :func:`draw_character` draws ``framing``'s part of ``look`` at ``scale``
    pixels per figure unit, centred on ``cx`` and cut at ``bottom``."""
    hx, tall, _ = _frame_extent(look, framing)
    w, h = 2 * hx * scale + 2, tall * scale  # +2: the box is rounded to whole pixels; width never limits
    return (cx - w / 2, bottom - h, cx + w / 2, bottom)


def chin_to_cut(look: CharacterLook, framing: Framing, pose: Pose = "front") -> float:
    """From the chin down to where ``framing`` cuts the figure, in figure units."""
    geo = _geometry(look, pose)
    return _FRAMES[framing][1] - (geo.head_cy + geo.head_ry)


def head_box(
    look: CharacterLook, box: Sequence[float], framing: Framing = "full", pose: Pose = "front"
) -> tuple[float, float, float, float]:
    """Where :func:`draw_character` puts the head of ``look`` drawn into ``box`` (not clipped to the
    image): lets a layout keep faces clear of subtitles before anything is drawn."""
    left, top, right, bottom = (int(round(v)) for v in box)
    s, oy = _fit_figure(look, framing, right - left, bottom - top)
    geo = _geometry(look, pose)
    cx = (left + right) / 2
    return (cx - geo.head_rx * s, top + oy + (geo.head_cy - geo.head_ry) * s,
            cx + geo.head_rx * s, top + oy + (geo.head_cy + geo.head_ry) * s)


def _pen_for(layer: Image.Image, look: CharacterLook, pose: Pose, framing: Framing, facing: int, ss: int) -> _Pen:
    """Scale and place the figure so ``framing``'s part of it fills the layer, bottom-centred."""
    w, h = layer.size
    s, oy = _fit_figure(look, framing, w, h)
    lw = max(ss, min(round(s * 0.0045), round(min(w, h) * 0.0055)))
    return _Pen(ImageDraw.Draw(layer), w / 2, oy, s, facing, lw, _geometry(look, pose))


class _FigurePainter:
    """Draws one figure back to front: things behind the body, legs, clothes, arms, head."""

    def __init__(self, pen: _Pen, look: CharacterLook, pose: Pose, expression: str, gesture: bool) -> None:
        self.pen, self.look, self.pose, self.expression, self.gesture = pen, look, pose, expression, gesture
        self.g = pen.geo

    def paint(self) -> None:
        self._behind()
        self._legs()
        self._far_arm()
        self._torso()
        if self.look.armour:
            self._armour()
        self._near_arms()
        if self.look.animal:
            _AnimalHead(self).draw()
        else:
            self._head()

    # -- behind the body: long hair, tails, a sword on the back

    def _behind(self) -> None:
        pen, lk = self.pen, self.look
        if lk.animal:
            self._tail()
        elif lk.ears == "fox":
            fur = mix(lk.hair, (220, 120, 50), 0.6)
            pen.poly(_plume((0.02, 0.66), (0.16, 0.72), (0.25, 0.5), 0.0, 1.0), fur)
            pen.poly(_plume((0.02, 0.66), (0.16, 0.72), (0.25, 0.5), 0.78, 1.0), (246, 242, 236), outline=False)
        if lk.garment == "tailcoat" and self.pose != "front":
            g = self.g
            x = -0.02 if self.pose == "side" else 0.0
            pen.poly([(x - g.waist_w, g.waist_y), (x + g.waist_w, g.waist_y), (x + g.waist_w * 0.7, 0.76),
                      (x, 0.72), (x - g.waist_w * 0.7, 0.76)], shade(lk.clothing, 0.85))
        if lk.held == "sword" and self.pose != "back":
            pen.line([(-0.13, 0.5), (0.11, 0.12)], INK, 0.03)
            pen.line([(-0.13, 0.5), (0.11, 0.12)], shade(lk.accent, 0.7), 0.022)
            pen.line([(0.1, 0.13), (0.15, 0.06)], (90, 70, 50), 0.02)
        if lk.hair_style in ("long", "braid", "ponytail") and self.pose != "back" and not lk.animal:
            self._back_hair()

    def _tail(self) -> None:
        """Each species' tail, behind the body (toward the viewer's left of a figure facing right)."""
        pen, lk, sp = self.pen, self.look, self.look.species
        fur = lk.fur or lk.hair
        flip = 1 if self.pose != "side" else -1
        if sp == "fox":
            p = ((0.02 * flip, 0.62), (0.2 * flip, 0.74), (0.27 * flip, 0.46))
            pen.poly(_plume(*p, 0.0, 1.0, width=0.06), fur)
            pen.poly(_plume(*p, 0.75, 1.0, width=0.06), (246, 242, 236), outline=False)
        elif sp == "monkey":  # a long tail ending in a curl
            pts = _curve((0.02 * flip, 0.6), (0.26 * flip, 0.78), (0.22 * flip, 0.46)) + \
                _curve((0.22 * flip, 0.46), (0.2 * flip, 0.38), (0.15 * flip, 0.44))[1:]
            pen.limb(pts, fur, 0.02)
        elif sp in ("cat", "tiger"):
            pts = _curve((0.02 * flip, 0.62), (0.22 * flip, 0.7), (0.18 * flip, 0.42))
            pen.limb(pts, fur, 0.026 if sp == "tiger" else 0.022)
            if sp == "tiger":
                for x, y in pts[3::3]:
                    pen.line([(x - 0.014, y), (x + 0.014, y)], INK, 0.007)
        elif sp == "dog":
            pen.limb(_curve((0.02 * flip, 0.58), (0.14 * flip, 0.56), (0.16 * flip, 0.44)), fur, 0.028)
        elif sp == "rabbit":
            pen.ellipse(0.06 * flip, 0.6, 0.04, 0.036, mix(fur, (255, 255, 255), 0.6))
        elif sp == "horse":
            mane = shade(fur, 0.6)
            pen.poly(_plume((0.02 * flip, 0.55), (0.14 * flip, 0.6), (0.14 * flip, 0.82), 0.0, 1.0, width=0.045), mane)
        elif sp in ("dragon", "other"):
            p = ((0.0, 0.62), (0.26 * flip, 0.8), (0.32 * flip, 0.98))
            pen.poly(_plume(*p, 0.0, 1.0, width=0.05 if sp == "dragon" else 0.03), fur)
            if sp == "dragon":  # a ridge of spines along it
                for t in (0.3, 0.5, 0.7):
                    a, b, c = (1 - t) ** 2, 2 * (1 - t) * t, t * t
                    x, y = a * p[0][0] + b * p[1][0] + c * p[2][0], a * p[0][1] + b * p[1][1] + c * p[2][1]
                    pen.poly([(x - 0.018, y - 0.01), (x + 0.01 * flip, y - 0.05), (x + 0.02, y - 0.004)],
                             mix(fur, (240, 200, 80), 0.5))
        elif sp == "demon":
            pts = [(0.02 * flip, 0.6), (0.16 * flip, 0.74), (0.24 * flip, 0.62)]
            pen.limb(pts, fur, 0.014)
            x, y = pts[-1]
            pen.poly([(x, y - 0.04), (x + 0.03 * flip, y + 0.01), (x - 0.025 * flip, y + 0.015)], shade(fur, 0.8))
        elif sp == "bird":
            for dx in (-0.05, 0.0, 0.05):
                pen.poly([(dx * 0.4, 0.52), (dx * 1.6 - 0.02, 0.72), (dx * 1.6 + 0.02, 0.72)], shade(fur, 0.85))

    def _back_hair(self) -> None:
        pen, g, lk = self.pen, self.g, self.look
        rx, cy = g.head_rx, g.head_cy
        side = self.pose == "side"
        if lk.hair_style == "long":
            bottom = g.shoulder_y + (0.2 if lk.gender == "female" else 0.12)
            front, back = (rx * 0.2, -rx * 1.45) if side else (rx * 1.08, -rx * 1.08)
            pen.poly([(back, cy - 0.01), (back - rx * 0.15, bottom), (front + rx * 0.15, bottom), (front, cy - 0.01)],
                     lk.hair)
        elif lk.hair_style == "ponytail":
            top = (-rx * 0.55, cy - g.head_ry * 0.75)
            pen.poly([top, (-rx * 1.12, cy - 0.01), (-rx * 1.2, g.shoulder_y + 0.06), (-rx * 1.02, g.shoulder_y + 0.08),
                      (-rx * 0.9, cy + 0.03)], lk.hair)
            pen.ellipse(top[0] - 0.006, top[1] + 0.012, 0.012, 0.01, lk.accent)
        else:  # braid: a rope of small lobes down one shoulder
            x, y = -rx * 0.95, cy + 0.02
            for i in range(6):
                pen.ellipse(x - 0.004 * i, y + i * 0.035, 0.017, 0.022, lk.hair)
            pen.ellipse(x - 0.024, y + 6 * 0.035, 0.008, 0.01, lk.accent)

    # -- legs and shoes

    def _legs(self) -> None:
        pen, g, lk = self.pen, self.g, self.look
        top = g.hem_y - 0.05
        shoe: RGB = (52, 44, 46)
        spread = g.leg_x if self.pose != "side" else 0.012
        toe = 0.03 if self.pose == "side" else 0.0
        if lk.species == "bird":  # thin legs, three toes
            leg: RGB = (226, 150, 60)
            for side in (-1, 1):
                x = side * spread
                pen.line([(x, top), (x, 0.97)], INK, 0.02)
                pen.line([(x, top), (x, 0.97)], leg, 0.012)
                for dx in (-0.03, 0.0, 0.03):
                    pen.line([(x, 0.97), (x + dx + toe, 0.985)], leg, 0.008)
            return
        for side in (-1, 1):
            x = side * spread
            pen.poly([(x - g.leg_w / 2, top), (x + g.leg_w / 2, top), (x + g.leg_w / 2 * 0.9, 0.965),
                      (x - g.leg_w / 2 * 0.9, 0.965)], lk.lower)
            if lk.animal and lk.garment == "fur":  # paws
                pen.ellipse(x + toe, 0.972, g.leg_w * 0.6 + toe, 0.024, shade(lk.lower, 0.8))
            else:
                boot = lk.garment == "tailcoat" or lk.armour
                if boot:
                    pen.poly([(x - g.leg_w / 2 * 0.95, 0.82), (x + g.leg_w / 2 * 0.95, 0.82), (x + g.leg_w / 2 * 0.9, 0.965),
                              (x - g.leg_w / 2 * 0.9, 0.965)], shoe)
                pen.ellipse(x + toe, 0.975, g.leg_w * 0.62 + toe, 0.022, shoe)

    # -- torso and garment

    def _torso(self) -> None:
        pen, g, lk = self.pen, self.g, self.look
        sw, ww, hw = g.shoulder_w, g.waist_w, g.hem_w
        back = self.pose == "back"
        body = [
            (-sw * 0.55, g.neck_y - 0.004), (-sw, g.shoulder_y + 0.012), (-sw * 0.98, g.shoulder_y + 0.05),
            (-ww, g.waist_y), (-hw, g.hem_y), (hw, g.hem_y), (ww, g.waist_y), (sw * 0.98, g.shoulder_y + 0.05),
            (sw, g.shoulder_y + 0.012), (sw * 0.55, g.neck_y - 0.004),
        ]
        if lk.garment == "dress":
            waist = g.waist_y - 0.06 if lk.region == "england" else g.waist_y  # the high Regency waist
            body = [
                (-sw * 0.55, g.neck_y - 0.004), (-sw, g.shoulder_y + 0.012), (-sw * 0.9, g.shoulder_y + 0.05),
                (-ww * 0.95, waist), (-hw * 0.55, waist + 0.1), (-hw, g.hem_y), (hw, g.hem_y), (hw * 0.55, waist + 0.1),
                (ww * 0.95, waist), (sw * 0.9, g.shoulder_y + 0.05), (sw, g.shoulder_y + 0.012),
                (sw * 0.55, g.neck_y - 0.004),
            ]
        pen.poly(body, lk.clothing)
        # a fold shadow down the far side gives the robe some volume
        pen.poly([(-ww * 0.55, g.waist_y + 0.02), (-hw * 0.7, g.hem_y - 0.004), (-hw * 0.35, g.hem_y - 0.004),
                  (-ww * 0.2, g.waist_y + 0.04)], shade(lk.clothing, 0.82), outline=False)
        if lk.garment == "fur":
            self._belly()
            return
        if lk.apron and not back:
            top = g.waist_y - (0.06 if lk.garment == "dress" else 0.0)
            pen.poly([(-ww * 0.8, top), (ww * 0.8, top), (hw * 0.55, g.hem_y - 0.04), (-hw * 0.55, g.hem_y - 0.04)],
                     (246, 244, 238))
        if self.pose == "side":
            pen.line([(0.01, g.neck_y - 0.004), (sw * 0.7, g.shoulder_y + 0.08)], lk.accent, 0.012)
        elif not back:
            if lk.hanfu:
                self._collar()
            else:
                self._western_front()
        if lk.garment in ("robe", "tunic") or (lk.garment == "dress" and lk.region != "modern"):
            if lk.garment == "dress":
                y = g.waist_y - (0.06 if lk.region == "england" else 0.0)
                w = g.waist_w * 0.98
                pen.poly([(-w, y - 0.012), (w, y - 0.012), (w, y + 0.012), (-w, y + 0.012)], lk.accent)
            else:
                self._belt()
        elif lk.garment == "shirt" and self.pose != "back":
            pen.line([(-ww, g.hem_y - 0.004), (ww, g.hem_y - 0.004)], shade(lk.clothing, 0.7), 0.008)

    def _belly(self) -> None:
        """An animal's lighter belly (a bird's breast)."""
        pen, g, lk = self.pen, self.g, self.look
        if self.pose == "back":
            return
        light = mix(lk.clothing, (255, 255, 255), 0.45)
        dx = 0.02 if self.pose == "side" else 0.0
        pen.ellipse(dx, (g.shoulder_y + g.hem_y) / 2 + 0.02, g.waist_w * 0.75, (g.hem_y - g.shoulder_y) * 0.4, light,
                    outline=False)

    def _western_front(self) -> None:
        """The front of western clothes: a round neckline, a shirt and cravat under a coat's
        lapels, a suit's tie, a modern shirt's collar."""
        pen, g, lk = self.pen, self.g, self.look
        n, sy = g.neck_y, g.shoulder_y
        dx = 0.008 if self.pose == "three_quarter" else 0.0
        shirt: RGB = (246, 244, 238)
        if lk.garment in ("tailcoat", "suit"):
            vest = lk.waistcoat or lk.accent
            bottom = g.waist_y + (0.03 if lk.garment == "tailcoat" else 0.1)
            pen.poly([(-0.045 + dx, n), (0.045 + dx, n), (0.05 + dx, bottom), (dx, bottom + 0.02), (-0.05 + dx, bottom)],
                     vest if lk.garment == "tailcoat" else shirt)
            pen.poly([(-0.03 + dx, n - 0.006), (0.03 + dx, n - 0.006), (dx, n + 0.06)], shirt)
            if lk.garment == "tailcoat":  # a white cravat, waistcoat buttons
                pen.ellipse(dx, n + 0.012, 0.022, 0.016, shirt)
                for i in range(3):
                    pen.ellipse(dx, n + 0.09 + i * 0.045, 0.006, 0.006, shade(vest, 0.6), outline=False)
            else:  # a tie
                pen.poly([(-0.01 + dx, n + 0.004), (0.01 + dx, n + 0.004), (0.016 + dx, n + 0.13), (dx, n + 0.15),
                          (-0.016 + dx, n + 0.13)], vest)
            lapel = shade(lk.clothing, 0.78)
            for side in (-1, 1):
                pen.poly([(side * 0.045 + dx, n - 0.004), (side * 0.058 + dx, sy + 0.07), (side * 0.03 + dx, sy + 0.12)],
                         lapel)
        elif lk.garment == "shirt":
            for side in (-1, 1):
                pen.poly([(dx, n + 0.01), (side * 0.045 + dx, n - 0.008), (side * 0.04 + dx, n + 0.03)], shirt)
        else:  # a round neckline (dress, tunic, robe of western cut)
            pen.ellipse(dx, n - 0.004, 0.04, 0.018, lk.skin, outline=False)
            if lk.garment == "dress":
                pen.line([(-0.045 + dx, n + 0.006), (0.045 + dx, n + 0.006)], lk.accent, 0.008)

    def _armour(self) -> None:
        """Scale armour over the chest and belly, with shoulder guards."""
        pen, g, lk = self.pen, self.g, self.look
        if self.pose == "back":
            return
        metal = mix((178, 182, 192), lk.accent, 0.25)
        sw, ww = g.shoulder_w, g.waist_w
        top, bottom = g.shoulder_y + 0.03, g.waist_y + 0.1
        pen.poly([(-sw * 0.8, top), (sw * 0.8, top), (ww * 1.1, bottom), (-ww * 1.1, bottom)], metal)
        rows = 6
        for i in range(1, rows):
            y = top + (bottom - top) * i / rows
            half = sw * 0.8 + (ww * 1.1 - sw * 0.8) * i / rows
            pen.line([(-half, y), (half, y)], shade(metal, 0.7), 0.004)
        pen.ellipse(0.0, top + 0.05, 0.03, 0.03, shade(metal, 1.1))
        for side in (-1, 1):
            pen.ellipse(side * sw * 0.95, g.shoulder_y + 0.035, 0.04, 0.03, shade(metal, 0.9))

    def _collar(self) -> None:
        """A crossed collar (交领) in the accent colour, skin showing in the V."""
        pen, g, lk = self.pen, self.g, self.look
        n = g.neck_y
        pen.poly([(-0.03, n - 0.006), (0.03, n - 0.006), (0.0, n + 0.05)], lk.skin, outline=False)
        pen.line([(-0.034, n - 0.006), (0.018, n + 0.075)], lk.accent, 0.014)
        pen.line([(0.034, n - 0.006), (0.0, n + 0.045)], lk.accent, 0.012)

    def _belt(self) -> None:
        pen, g, lk = self.pen, self.g, self.look
        y, w = g.waist_y, g.waist_w * 1.06
        pen.poly([(-w, y - 0.014), (w, y - 0.014), (w * 1.02, y + 0.014), (-w * 1.02, y + 0.014)], lk.accent)
        if self.pose != "back":
            pen.poly([(0.012, y + 0.01), (0.03, y + 0.1), (0.012, y + 0.1), (0.002, y + 0.012)], lk.accent)

    # -- arms

    def _arm_points(self, side: int, raised: bool) -> list[tuple[float, float]]:
        g = self.g
        sx = side * (g.shoulder_w - 0.012)
        if raised:
            return [(sx, g.shoulder_y + 0.02), (side * (g.shoulder_w + 0.06), g.shoulder_y + 0.14),
                    (side * (g.shoulder_w + 0.1), g.shoulder_y + 0.06)]
        if self.pose == "side":
            return [(0.005, g.shoulder_y + 0.02), (0.02, g.shoulder_y + 0.16), (0.045, g.hand_y)]
        return [(sx, g.shoulder_y + 0.02), (side * (g.shoulder_w + 0.018), g.shoulder_y + 0.16),
                (side * (g.shoulder_w + 0.008), g.hand_y)]

    def _far_arm(self) -> None:
        if self.pose in ("three_quarter", "side"):
            self._arm(-1 if self.pose == "three_quarter" else 1, light=0.78, near=False)

    def _near_arms(self) -> None:
        if self.pose in ("front", "back"):
            self._arm(-1, light=1.0, near=True)
            self._arm(1, light=1.0, near=True, raised=self.gesture and self.pose == "front")
        elif self.pose == "three_quarter":
            self._arm(1, light=1.0, near=True, raised=self.gesture)
        else:
            self._arm(1, light=1.0, near=True, raised=self.gesture, behind=True)

    def _arm(self, side: int, light: float, near: bool, raised: bool = False, behind: bool = False) -> None:
        pen, g, lk = self.pen, self.g, self.look
        pts = self._arm_points(side, raised)
        if behind:  # the side view's near arm swings a little back
            pts = [(x - 0.015, y) for x, y in pts]
        colour = shade(lk.clothing, light)
        if lk.species == "bird" and lk.garment == "fur":  # wings, not arms
            x0, y0 = pts[0]
            tip = (pts[-1][0] + side * 0.03, pts[-1][1] + 0.1) if not raised else (pts[-1][0] + side * 0.08, pts[-1][1] - 0.04)
            pen.poly([(x0 - side * 0.01, y0 - 0.01), (x0 + side * 0.06, y0 + 0.04), tip, (x0 - side * 0.02, y0 + 0.2)],
                     colour)
            for k in (0.35, 0.6, 0.85):
                pen.line([(x0 + side * 0.01, y0 + 0.05 + 0.1 * k), (x0 + (tip[0] - x0) * k, y0 + (tip[1] - y0) * k)],
                         shade(colour, 0.78), 0.004)
            return
        width = g.arm_w * (1.25 if lk.garment == "robe" else 1.0)
        if lk.garment == "dress" and lk.region != "china":  # short puffed sleeves, bare forearms
            pen.limb(pts, lk.skin, g.arm_w * 0.82)
            pen.ellipse(pts[0][0] + side * 0.008, pts[0][1] + 0.03, width * 0.7, 0.045, colour)
        else:
            pen.limb(pts, colour, width)
        if lk.armour:
            pen.limb(pts[1:], mix(colour, (178, 182, 192), 0.6), width * 0.9)
        hx, hy = pts[-1]
        hand_y = hy + (0.028 if not raised else -0.01)
        pen.ellipse(hx, hand_y, 0.021, 0.022, lk.skin)
        if near and side == 1 and self.pose != "back":
            self._held(hx, hand_y, raised)

    def _held(self, x: float, y: float, raised: bool) -> None:
        pen, lk = self.pen, self.look
        if lk.held == "staff":
            pen.line([(x, y - 0.5), (x, min(1.0, y + 0.48))], INK, 0.024)
            pen.line([(x, y - 0.5), (x, min(1.0, y + 0.48))], (134, 96, 58), 0.016)
            pen.ellipse(x, y - 0.5, 0.02, 0.02, lk.accent)
        elif lk.held == "lantern":
            pen.line([(x, y), (x, y + 0.06)], INK, 0.006)
            pen.ellipse(x, y + 0.1, 0.035, 0.045, (236, 92, 52))
            pen.line([(x - 0.03, y + 0.1), (x + 0.03, y + 0.1)], (250, 206, 96), 0.008)
        elif lk.held == "fan":
            pen.draw.pieslice(self._bbox(x, y - 0.02, 0.07), 200, 340, fill=(240, 232, 214), outline=INK, width=pen.lw)
        elif lk.held == "book":
            pen.poly([(x - 0.035, y - 0.03), (x + 0.035, y - 0.03), (x + 0.035, y + 0.05), (x - 0.035, y + 0.05)],
                     lk.accent)

    def _bbox(self, cx: float, cy: float, r: float) -> tuple[float, float, float, float]:
        (x0, y0), (x1, y1) = self.pen.p(cx - r, cy - r), self.pen.p(cx + r, cy + r)
        return (min(x0, x1), y0, max(x0, x1), y1)

    # -- head

    def _head(self) -> None:
        pen, g, lk = self.pen, self.g, self.look
        pen.poly([(-0.02, g.head_cy + g.head_ry - 0.01), (0.02, g.head_cy + g.head_ry - 0.01),
                  (0.022, g.neck_y + 0.004), (-0.022, g.neck_y + 0.004)], lk.skin)
        if lk.ears:
            self._animal_ears()
        back = self.pose == "back"
        pen.ellipse(0.0, g.head_cy, g.head_rx, g.head_ry, lk.hair if back and lk.hair_style != "bald" else lk.skin)
        if back:
            self._back_of_head()
            return
        if self.pose == "side":
            self._profile()
        else:
            dx = 0.016 if self.pose == "three_quarter" else 0.0
            _Face(pen, lk, g, dx, self.pose).draw(self.expression)
        self._hair_front()
        if lk.beard:
            self._beard()
        if lk.glasses:
            self._glasses()
        self._hat()

    def _back_of_head(self) -> None:
        lk, g = self.look, self.g
        if lk.hair_style == "long":
            bottom = g.shoulder_y + (0.2 if lk.gender == "female" else 0.12)
            self.pen.poly([(-g.head_rx * 1.05, g.head_cy), (-g.head_rx * 1.2, bottom), (g.head_rx * 1.2, bottom),
                           (g.head_rx * 1.05, g.head_cy)], lk.hair)
        elif lk.hair_style == "ponytail":
            tail_y = g.shoulder_y + 0.1
            self.pen.poly([(-0.02, g.head_cy), (0.02, g.head_cy), (0.015, tail_y), (-0.015, tail_y)], lk.hair)
        elif lk.hair_style == "braid":
            for i in range(6):
                self.pen.ellipse(0.0, g.head_cy + 0.06 + i * 0.035, 0.016, 0.021, lk.hair)
        self._bun()
        self._hat()

    def _profile(self) -> None:
        pen, g, lk = self.pen, self.g, self.look
        rx, cy = g.head_rx, g.head_cy
        pen.poly([(rx * 0.9, cy + 0.005), (rx + 0.014, cy + 0.028), (rx * 0.92, cy + 0.034)], lk.skin)
        pen.ellipse(-0.004, cy + 0.01, 0.011, 0.016, lk.skin)
        _Face(pen, lk, g, 0.0, "side").draw(self.expression)

    def _hair_front(self) -> None:
        pen, g, lk = self.pen, self.g, self.look
        if lk.hair_style == "bald":
            shine = mix(lk.skin, (255, 255, 255), 0.5)
            pen.ellipse(-0.015, g.head_cy - g.head_ry * 0.6, 0.012, 0.006, shine, outline=False)
            return
        rx, ry, cy = g.head_rx * 1.1, g.head_ry * 1.08, g.head_cy - 0.003
        side = self.pose == "side"
        start, end = (100, 260) if side else (198, -18)
        steps = 16
        arc = [(rx * math.cos(math.radians(a)), cy - ry * math.sin(math.radians(a)))
               for a in (start + (end - start) * i / steps for i in range(steps + 1))]
        if side:
            fringe = [(-rx * 0.2, cy + 0.02), (rx * 0.55, cy - 0.03), (rx * 0.8, cy - 0.04)]
            pen.poly(arc + fringe, lk.hair)
        else:
            shift = 0.01 if self.pose == "three_quarter" else 0.0
            fy = cy - 0.022
            fringe = [(rx * 0.98, cy + 0.035), (rx * 0.72, fy), (rx * 0.4, fy + 0.012), (0.12 * rx + shift, fy - 0.004),
                      (-0.2 * rx + shift, fy + 0.014), (-rx * 0.55, fy), (-rx * 0.98, cy + 0.035)]
            pen.poly(arc + fringe, lk.hair)
        self._bun()

    def _bun(self) -> None:
        pen, g, lk = self.pen, self.g, self.look
        if lk.hair_style != "bun" or lk.hat in ("conical", "cap"):
            return
        top = g.head_cy - g.head_ry
        x = -0.01 if self.pose == "side" else 0.0
        pen.ellipse(x, top - 0.012, 0.03, 0.026, lk.hair)
        pen.line([(x - 0.045, top - 0.006), (x + 0.045, top - 0.02)], lk.accent, 0.008)

    def _beard(self) -> None:
        pen, g, lk = self.pen, self.g, self.look
        cy, ry, rx = g.head_cy, g.head_ry, g.head_rx
        if self.pose == "side":
            pts = [(rx * 0.2, cy + 0.035), (rx * 0.95, cy + 0.038), (rx * 0.6, cy + ry + 0.07), (rx * 0.1, cy + ry)]
        else:
            dx = 0.016 if self.pose == "three_quarter" else 0.0
            pts = [(-rx * 0.72 + dx, cy + 0.03), (-rx * 0.3 + dx, cy + 0.05), (rx * 0.3 + dx, cy + 0.05),
                   (rx * 0.72 + dx, cy + 0.03), (rx * 0.35 + dx, cy + ry + 0.05), (dx, cy + ry + 0.085),
                   (-rx * 0.35 + dx, cy + ry + 0.05)]
        pen.poly(pts, lk.beard_colour)
        mouth_y = cy + 0.05
        mx = rx * 0.55 if self.pose == "side" else (0.016 if self.pose == "three_quarter" else 0.0)
        pen.line([(mx - 0.012, mouth_y), (mx + 0.012, mouth_y)], INK, 0.005)

    def _glasses(self) -> None:
        pen, g = self.pen, self.g
        y = g.head_cy + 0.01
        if self.pose == "side":
            pen.ellipse(g.head_rx * 0.62, y, 0.014, 0.012, None, width=max(1, pen.lw // 2 + 1))
            return
        dx = 0.016 if self.pose == "three_quarter" else 0.0
        for x in (-0.025 + dx, 0.025 + dx):
            pen.ellipse(x, y, 0.016, 0.013, None, width=max(1, pen.lw // 2 + 1))
        pen.line([(-0.009 + dx, y), (0.009 + dx, y)], INK, 0.004)

    def _hat(self) -> None:
        pen, g, lk = self.pen, self.g, self.look
        top, rx, cy = g.head_cy - g.head_ry, g.head_rx, g.head_cy
        if lk.hat == "conical":
            brim, tip = cy - 0.015, top - 0.05
            pen.poly([(-rx * 2.3, brim), (0.0, tip), (rx * 2.3, brim), (0.0, cy - 0.03)], lk.hat_colour)
            pen.line([(-rx * 1.1, cy - 0.03), (0.0, top - 0.045)], shade(lk.hat_colour, 0.75), 0.004)
            pen.line([(rx * 1.1, cy - 0.03), (0.0, top - 0.045)], shade(lk.hat_colour, 0.75), 0.004)
        elif lk.hat == "cap":
            low, high = cy - 0.02, top - 0.012
            pen.poly([(-rx * 1.12, low), (-rx * 0.95, high), (rx * 0.95, high), (rx * 1.12, low)], lk.hat_colour)
            b0, b1 = cy - 0.03, cy - 0.015
            pen.poly([(-rx * 1.45, b0), (rx * 1.45, b0), (rx * 1.45, b1), (-rx * 1.45, b1)], shade(lk.hat_colour, 0.8))
        elif lk.hat == "top_hat":
            b0 = top + 0.012
            pen.poly([(-rx * 0.78, b0), (-rx * 0.72, top - 0.085), (rx * 0.72, top - 0.085), (rx * 0.78, b0)], lk.hat_colour)
            pen.poly([(-rx * 0.78, b0 - 0.018), (rx * 0.78, b0 - 0.018), (rx * 0.78, b0 - 0.006), (-rx * 0.78, b0 - 0.006)],
                     lk.accent, outline=False)
            pen.poly([(-rx * 1.35, b0), (rx * 1.35, b0), (rx * 1.3, b0 + 0.012), (-rx * 1.3, b0 + 0.012)], lk.hat_colour)
        elif lk.hat == "bonnet":
            pts = [(rx * 1.25 * math.cos(math.radians(a)), cy - 0.004 - g.head_ry * 1.22 * math.sin(math.radians(a)))
                   for a in range(-10, 191, 10)]
            inner = [(rx * 0.98 * math.cos(math.radians(a)), cy + 0.004 - g.head_ry * 0.95 * math.sin(math.radians(a)))
                     for a in range(190, -11, -10)]
            pen.poly(pts + inner, lk.hat_colour)
            for side in (-1, 1):
                pen.line([(side * rx * 1.0, cy + 0.01), (side * 0.012, cy + g.head_ry + 0.012)], lk.accent, 0.008)
        elif lk.hat == "helmet":
            pts = [(rx * 1.12 * math.cos(math.radians(a)), cy - 0.01 - g.head_ry * 1.15 * math.sin(math.radians(a)))
                   for a in range(0, 181, 12)]
            pen.poly(pts + [(-rx * 1.12, cy - 0.005), (rx * 1.12, cy - 0.005)], lk.hat_colour)
            pen.poly([(-0.006, top - 0.01), (0.006, top - 0.01), (0.0, top - 0.07)], (196, 48, 48))
        elif lk.hat == "band":  # a headband or turban cloth tied round the brow, its ends flying
            y0, y1 = cy - 0.05, cy - 0.026  # across the brow, over the fringe
            pen.poly([(-rx * 1.02, y1), (-rx * 0.92, y0), (rx * 0.92, y0), (rx * 1.02, y1)], lk.hat_colour)
            if self.pose != "front":
                ex = -rx * 1.0 if self.pose != "side" else -rx * 0.95
                pen.poly([(ex, y0 + 0.004), (ex - 0.04, y1 + 0.02), (ex - 0.03, y1 + 0.03), (ex + 0.004, y1)], lk.hat_colour)
        elif lk.hat == "crown":
            y = top - 0.012 if lk.hair_style != "bun" else top - 0.03
            pen.poly([(-0.025, y + 0.012), (-0.028, y - 0.02), (-0.012, y - 0.004), (0.0, y - 0.03), (0.012, y - 0.004),
                      (0.028, y - 0.02), (0.025, y + 0.012)], lk.hat_colour)

    def _animal_ears(self) -> None:
        pen, g, lk = self.pen, self.g, self.look
        top, rx = g.head_cy - g.head_ry, g.head_rx
        colour = mix(lk.hair, (220, 120, 50), 0.6) if lk.ears == "fox" else lk.hair
        tall = 0.065 if lk.ears == "fox" else 0.045
        for side in (-1, 1):
            base = side * rx * 0.55
            pen.poly([(base - 0.028, top + 0.02), (base + side * 0.02, top - tall), (base + 0.028, top + 0.02)], colour)
            inner = [(base - 0.013, top + 0.012), (base + side * 0.016, top - tall * 0.6), (base + 0.013, top + 0.012)]
            pen.poly(inner, (238, 186, 176), outline=False)


class _AnimalHead:
    """The head of a non-human character: ears, a furred head, the species' muzzle, snout or beak,
    horns, whiskers, stripes; eyes and mouth follow the expression like a person's."""

    def __init__(self, painter: "_FigurePainter") -> None:
        self.p, self.pen, self.g, self.look = painter, painter.pen, painter.g, painter.look
        self.pose, self.expression = painter.pose, painter.expression
        self.fur = self.look.fur or self.look.skin
        self.light = mix(self.fur, (255, 255, 255), 0.6)
        self.dx = {"front": 0.0, "three_quarter": 0.016, "side": self.g.head_rx * 0.55, "back": 0.0}[self.pose]

    def draw(self) -> None:
        pen, g, lk, sp = self.pen, self.g, self.look, self.look.species
        rx, ry, cy = g.head_rx, g.head_ry, g.head_cy
        pen.poly([(-0.02, cy + ry - 0.01), (0.02, cy + ry - 0.01), (0.022, g.neck_y + 0.004), (-0.022, g.neck_y + 0.004)],
                 self.fur)
        self._ears()
        if sp == "horse" and self.pose != "back":  # the mane down the neck
            pen.poly([(-rx * 0.9, cy - ry * 0.6), (-rx * 0.2, cy - ry * 1.05), (-rx * 0.6, g.shoulder_y + 0.04),
                      (-rx * 1.2, g.shoulder_y + 0.02)], shade(self.fur, 0.6))
        pen.ellipse(0.0, cy, rx, ry * (0.95 if sp == "bird" else 1.0), self.fur)
        if self.pose == "back":
            self.p._hat()
            return
        face = getattr(self, "_" + sp, None)
        (face or self._other)()
        f = _Face(pen, lk, g, self.dx if self.pose != "side" else 0.0, self.pose)
        f.eye_y = cy - ry * 0.12
        for x, w in f.eyes:
            f._eye(x, w, self.expression)
            if sp in ("monkey", "demon", "dragon", "tiger"):
                f._brow(x, w, self.expression)
        if lk.beard:
            pen.poly([(self.dx - rx * 0.35, cy + ry * 0.75), (self.dx + rx * 0.35, cy + ry * 0.75),
                      (self.dx, cy + ry + 0.06)], lk.beard_colour)
        self.p._hat()

    # -- ears

    def _ears(self) -> None:
        pen, g, sp = self.pen, self.g, self.look.species
        rx, ry, cy = g.head_rx, g.head_ry, g.head_cy
        top = cy - ry
        inner: RGB = (238, 176, 170)
        sides = (-1, 1) if self.pose != "side" else (-1,)
        for side in sides:
            base = side * rx * 0.55 + (self.dx * 0.3 if self.pose == "three_quarter" else 0.0)
            if self.pose == "side":
                base = -rx * 0.25
            if sp in ("fox", "cat", "demon", "other", "horse"):
                tall = {"fox": 0.07, "cat": 0.05, "demon": 0.04, "other": 0.035, "horse": 0.05}[sp]
                wide = 0.03 if sp != "horse" else 0.018
                pen.poly([(base - wide, top + 0.022), (base + side * 0.022, top - tall), (base + wide, top + 0.022)],
                         self.fur)
                pen.poly([(base - wide * 0.45, top + 0.014), (base + side * 0.017, top - tall * 0.6),
                          (base + wide * 0.45, top + 0.014)], inner, outline=False)
            elif sp == "rabbit":
                lean = side * 0.012
                pen.ellipse(base * 0.7 + lean, top - 0.045, 0.02, 0.06, self.fur)
                pen.ellipse(base * 0.7 + lean, top - 0.042, 0.009, 0.045, inner, outline=False)
            elif sp == "monkey":
                ex = side * rx * 1.02 if self.pose != "side" else -rx * 0.1
                pen.ellipse(ex, cy + 0.004, 0.022, 0.026, self.fur)
                pen.ellipse(ex, cy + 0.004, 0.012, 0.015, self.light, outline=False)
            elif sp == "tiger":
                pen.ellipse(base, top + 0.01, 0.022, 0.02, self.fur)
                pen.ellipse(base, top + 0.012, 0.011, 0.01, INK, outline=False)
            elif sp == "dog":
                ex = side * rx * 0.95 if self.pose != "side" else -rx * 0.3
                pen.poly([(ex - 0.02, top + 0.02), (ex + 0.02, top + 0.02), (ex + side * 0.03, cy + 0.04),
                          (ex + side * 0.005, cy + 0.05)], shade(self.fur, 0.7))
            elif sp == "dragon":
                horn: RGB = (236, 214, 150)
                pen.line([(base, top + 0.02), (base + side * 0.03, top - 0.05), (base + side * 0.05, top - 0.07)], INK, 0.016)
                pen.line([(base, top + 0.02), (base + side * 0.03, top - 0.05), (base + side * 0.05, top - 0.07)], horn, 0.01)
                pen.line([(base + side * 0.02, top - 0.03), (base + side * 0.05, top - 0.035)], horn, 0.008)
        if sp == "demon":
            horn = (236, 226, 200)
            for side in sides:
                bx = side * rx * 0.4 if self.pose != "side" else 0.0
                pen.poly([(bx - 0.014, top + 0.012), (bx + side * 0.03, top - 0.055), (bx + 0.014, top + 0.016)], horn)

    # -- faces

    def _muzzle(self, rx: float, ry: float, colour: RGB | None = None, down: float = 0.45) -> tuple[float, float]:
        cy = self.g.head_cy + self.g.head_ry * down
        x = self.dx * (1.6 if self.pose == "side" else 1.3)
        self.pen.ellipse(x, cy, rx, ry, colour or self.light, outline=False)
        return x, cy

    def _nose(self, x: float, y: float, r: float = 0.01, colour: RGB = INK) -> None:
        self.pen.poly([(x - r, y - r * 0.5), (x + r, y - r * 0.5), (x, y + r * 0.7)], colour, outline=False)

    def _mouth(self, x: float, y: float) -> None:
        pen = self.pen
        if self.expression in ("happy", "excited"):
            pen.draw.chord(_box(pen, x, y - 0.004, 0.012, 0.01), 0, 180, fill=(178, 70, 72), outline=INK,
                           width=max(1, pen.lw // 2))
        elif self.expression in ("surprised", "afraid"):
            pen.ellipse(x, y + 0.002, 0.006, 0.008, (120, 40, 50), width=max(1, pen.lw // 2))
        else:
            pen.line([(x - 0.01, y - 0.003), (x, y), (x + 0.01, y - 0.003)], INK, 0.004)

    def _whiskers(self, x: float, y: float, length: float = 0.05) -> None:
        for side in (-1, 1) if self.pose != "side" else (1,):
            for dy in (-0.006, 0.004):
                self.pen.line([(x + side * 0.016, y + dy), (x + side * length, y + dy * 2.2)], INK, 0.0025)

    def _monkey(self) -> None:
        g = self.g
        skin = mix(self.fur, (250, 214, 180), 0.7)
        x = self.dx
        for ex in ((-0.02, 0.02) if self.pose != "side" else (0.0,)):
            self.pen.ellipse(x + ex + (0.012 if self.pose == "side" else 0.0), g.head_cy - g.head_ry * 0.1, 0.03, 0.03,
                             skin, outline=False)
        mx, my = self._muzzle(0.038, 0.03, skin, 0.42)
        self.pen.ellipse(mx - 0.006, my - 0.01, 0.003, 0.003, INK, outline=False)
        self.pen.ellipse(mx + 0.006, my - 0.01, 0.003, 0.003, INK, outline=False)
        self._mouth(mx, my + 0.012)

    def _fox(self) -> None:
        g = self.g
        x = self.dx * 1.4
        cy = g.head_cy + g.head_ry * 0.35
        reach = 0.06 if self.pose == "side" else 0.0
        self.pen.poly([(x - 0.05, cy - 0.01), (x + 0.05 + reach, cy - 0.01), (x + reach + 0.008, cy + 0.05),
                       (x - 0.008 + reach * 0.5, cy + 0.05)], self.light, outline=False)
        self._nose(x + reach, cy + 0.045, 0.009)
        self._whiskers(x + reach * 0.6, cy + 0.03, 0.045)

    def _cat(self) -> None:
        mx, my = self._muzzle(0.03, 0.02, None, 0.45)
        self._nose(mx, my - 0.008, 0.007, (226, 120, 130))
        self._mouth(mx, my + 0.008)
        self._whiskers(mx, my - 0.002, 0.06)

    def _tiger(self) -> None:
        g = self.g
        for i, ox in enumerate((-0.02, 0.0, 0.02)):
            y = g.head_cy - g.head_ry * 0.85
            self.pen.line([(self.dx + ox, y), (self.dx + ox * 1.2, y + 0.025 - 0.006 * (i == 1))], INK, 0.006)
        for side in (-1, 1):
            self.pen.line([(side * g.head_rx * 0.98, g.head_cy), (side * g.head_rx * 0.7, g.head_cy + 0.01)], INK, 0.006)
        mx, my = self._muzzle(0.038, 0.026, (250, 246, 236), 0.48)
        self._nose(mx, my - 0.01, 0.009, (60, 40, 40))
        self._mouth(mx, my + 0.008)
        self._whiskers(mx, my, 0.06)

    def _dog(self) -> None:
        mx, my = self._muzzle(0.036, 0.028, None, 0.45)
        self.pen.ellipse(mx, my - 0.012, 0.012, 0.009, INK, outline=False)
        self._mouth(mx, my + 0.01)

    def _rabbit(self) -> None:
        mx, my = self._muzzle(0.03, 0.022, (252, 250, 248), 0.5)
        self._nose(mx, my - 0.012, 0.007, (236, 130, 150))
        self.pen.poly([(mx - 0.007, my + 0.002), (mx + 0.007, my + 0.002), (mx + 0.007, my + 0.018),
                       (mx - 0.007, my + 0.018)], (252, 252, 248))
        self._whiskers(mx, my - 0.006, 0.05)

    def _horse(self) -> None:
        g = self.g
        x = self.dx * 1.6 + (0.03 if self.pose == "side" else 0.0)
        cy = g.head_cy + g.head_ry * 0.6
        self.pen.ellipse(x, cy, 0.04, 0.045, mix(self.fur, (255, 255, 255), 0.3))
        for side in (-1, 1):
            self.pen.ellipse(x + side * 0.015, cy + 0.018, 0.006, 0.005, INK, outline=False)
        self.pen.poly([(self.dx - 0.008, g.head_cy - g.head_ry * 0.9), (self.dx + 0.008, g.head_cy - g.head_ry * 0.9),
                       (self.dx, g.head_cy - g.head_ry * 0.4)], (250, 250, 246), outline=False)

    def _dragon(self) -> None:
        g = self.g
        x = self.dx * 1.5 + (0.035 if self.pose == "side" else 0.0)
        cy = g.head_cy + g.head_ry * 0.5
        self.pen.ellipse(x, cy, 0.05, 0.034, mix(self.fur, (250, 230, 160), 0.45))
        for side in (-1, 1):
            self.pen.ellipse(x + side * 0.016, cy - 0.012, 0.005, 0.004, INK, outline=False)
            self.pen.line([(x + side * 0.03, cy - 0.004), (x + side * 0.09, cy + 0.03), (x + side * 0.11, cy + 0.01)],
                          (236, 214, 150), 0.005)
        self._mouth(x, cy + 0.016)

    def _demon(self) -> None:
        mx, my = self.dx, self.g.head_cy + self.g.head_ry * 0.5
        self.pen.line([(mx - 0.02, my), (mx + 0.02, my)], INK, 0.005)
        for side in (-1, 1):
            self.pen.poly([(mx + side * 0.014, my), (mx + side * 0.006, my), (mx + side * 0.01, my + 0.016)],
                          (250, 250, 244))

    def _bird(self) -> None:
        g = self.g
        x, cy = self.dx * 1.3, g.head_cy + g.head_ry * 0.2
        beak: RGB = (232, 170, 60)
        long = 0.085 if self.pose == "side" else 0.0
        if self.pose == "side":
            self.pen.poly([(x, cy - 0.012), (x + 0.03 + long, cy + 0.006), (x, cy + 0.016)], beak)
        else:
            self.pen.poly([(x - 0.016, cy), (x + 0.016, cy), (x, cy + 0.045)], beak)
        crest = shade(self.fur, 0.75)
        top = g.head_cy - g.head_ry
        self.pen.poly([(-0.006, top + 0.01), (-0.03, top - 0.04), (0.004, top + 0.002)], crest)

    def _other(self) -> None:
        mx, my = self._muzzle(0.032, 0.024, None, 0.45)
        self._nose(mx, my - 0.008, 0.008)
        self._mouth(mx, my + 0.01)


def _box(pen: "_Pen", cx: float, cy: float, rx: float, ry: float) -> tuple[float, float, float, float]:
    (x0, y0), (x1, y1) = pen.p(cx - rx, cy - ry), pen.p(cx + rx, cy + ry)
    return (min(x0, x1), y0, max(x0, x1), y1)


class _Face:
    """Eyes, brows, nose and mouth for one expression, placed for the pose."""

    def __init__(self, pen: _Pen, look: CharacterLook, g: _Geometry, dx: float, pose: str) -> None:
        self.pen, self.look, self.g, self.dx, self.pose = pen, look, g, dx, pose
        self.eye_y = g.head_cy + 0.01 + (0.012 if look.age == "child" else 0.0)
        if pose == "side":
            self.eyes = [(g.head_rx * 0.6, 1.0)]
        elif pose == "three_quarter":
            self.eyes = [(-0.021 + dx, 0.75), (0.025 + dx, 1.0)]
        else:
            self.eyes = [(-0.024, 1.0), (0.024, 1.0)]
        self.mouth_x = g.head_rx * 0.62 if pose == "side" else dx
        self.mouth_y = g.head_cy + 0.046

    def draw(self, expression: str) -> None:
        scale = 1.3 if self.look.age == "child" else 1.0
        for x, w in self.eyes:
            self._eye(x, w * scale, expression)
            self._brow(x, w, expression)
        if self.look.gender == "female" or self.look.age == "child":
            blush = mix(self.look.skin, (236, 130, 140), 0.35)
            for x, _ in self.eyes:
                bx = x + (0.004 if x > self.dx else -0.004)
                self.pen.ellipse(bx, self.eye_y + 0.022, 0.011, 0.005, blush, outline=False)
        if self.pose != "side":
            self.pen.line([(self.dx + 0.003, self.eye_y + 0.016), (self.dx, self.eye_y + 0.024)],
                          shade(self.look.skin, 0.7), 0.003)
        if not self.look.beard:
            self._mouth(expression)

    def _eye(self, x: float, w: float, expression: str) -> None:
        pen, y = self.pen, self.eye_y
        if expression in ("happy", "excited"):
            box = self._box(x, y + 0.004, 0.009 * w, 0.008)
            pen.draw.arc(box, 200, 340, fill=INK, width=max(1, round(0.004 * pen.s)))
            return
        if expression == "whisper":
            pen.line([(x - 0.009 * w, y), (x + 0.009 * w, y + 0.001)], INK, 0.004)
            return
        big = 1.35 if expression in ("surprised", "afraid") else 1.0
        rx, ry = 0.0075 * w * big, 0.0105 * big
        if big > 1:
            pen.ellipse(x, y, rx * 1.4, ry * 1.25, (250, 250, 250), outline=True, width=max(1, pen.lw // 2))
        if self.look.eye_colour is not None:  # a coloured iris (pink eyes, blue eyes), ringed in ink
            pen.ellipse(x, y, rx * 1.15, ry * 1.1, self.look.eye_colour, outline=True, width=max(1, pen.lw // 2))
            pen.ellipse(x, y + 0.001, rx * 0.5, ry * 0.5, INK, outline=False)
            pen.ellipse(x + 0.003, y - 0.004, rx * 0.35, ry * 0.3, (255, 255, 255), outline=False)
            return
        pen.ellipse(x, y, rx, ry, INK, outline=False)
        pen.ellipse(x + 0.003, y - 0.004, rx * 0.35, ry * 0.3, (255, 255, 255), outline=False)

    def _brow(self, x: float, w: float, expression: str) -> None:
        inner = 1 if x > self.dx else -1  # +1: the inner end is on the left of this eye
        y = self.eye_y - 0.02
        tilt = {"angry": 0.008, "sad": -0.008, "afraid": -0.009, "surprised": 0.0}.get(expression, 0.0)
        lift = -0.006 if expression in ("surprised", "afraid") else 0.0
        if self.pose == "side":
            inner = -1
        ix, ox = x - inner * 0.012 * w, x + inner * 0.012 * w
        colour = (150, 150, 150) if self.look.hair == OLD_HAIR else shade(self.look.hair, 0.8)
        self.pen.line([(ix, y + lift + tilt), (ox, y + lift - tilt * 0.3)], colour, 0.005)

    def _mouth(self, expression: str) -> None:
        pen, x, y = self.pen, self.mouth_x, self.mouth_y
        lip: RGB = (178, 70, 72)
        if expression in ("happy", "excited"):
            r = 0.016 if expression == "excited" else 0.012
            box = self._box(x, y - 0.004, r, r * 0.9)
            pen.draw.chord(box, 0, 180, fill=lip, outline=INK, width=max(1, pen.lw // 2))
        elif expression in ("surprised", "afraid"):
            ry = 0.01 if expression == "surprised" else 0.006
            pen.ellipse(x, y + 0.002, 0.007, ry, lip, width=max(1, pen.lw // 2))
        elif expression == "sad":
            pen.draw.arc(self._box(x, y + 0.01, 0.012, 0.009), 200, 340, fill=INK, width=max(1, round(0.004 * pen.s)))
        elif expression == "angry":
            pen.line([(x - 0.013, y + 0.002), (x + 0.013, y + 0.002)], INK, 0.005)
            pen.line([(x - 0.013, y + 0.002), (x - 0.016, y + 0.006)], INK, 0.004)
        elif expression == "whisper":
            pen.ellipse(x + 0.004, y, 0.004, 0.003, lip, outline=False)
        else:
            pen.draw.arc(self._box(x, y - 0.006, 0.01, 0.007), 30, 150, fill=INK, width=max(1, round(0.0035 * pen.s)))

    def _box(self, cx: float, cy: float, rx: float, ry: float) -> tuple[float, float, float, float]:
        (x0, y0), (x1, y1) = self.pen.p(cx - rx, cy - ry), self.pen.p(cx + rx, cy + ry)
        return (min(x0, x1), y0, max(x0, x1), y1)
