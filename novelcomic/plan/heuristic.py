"""The offline, rule-based planner: a novel's chapters → cast, props, locations and storyboards.

No model, no network. Chinese text is segmented with jieba (imported lazily, on first use);
English with regular expressions. The planner works in three passes over all chapters:

1. **Cast discovery** — speakers of attributed dialogue (``林小雨说：“…”``, ``“…”老渔夫笑道``,
   ``"…," said Tobias``, ``Pip asked, "…"``), names that recur (jieba ``nr`` for Chinese,
   capitalised words for English), descriptive speakers (老渔夫, the heron) linked to a name
   when the text does (``村里人都叫他陈伯``, ``我叫阿银``, ``My name is Quill``), and
   aliases (林小雨 / 小雨, Grandpa Tobias / Tobias). The user's existing cast keeps its ids.
2. **World** — locations (place words, ``in/at/to the X``) and recurring props.
3. **Storyboards** — per chapter: scenes (scene-break lines, strong time/place changes),
   lines (narration sentences and attributed quotes, attribution clauses removed), shots of a
   few lines with camera, mood, transition and an image prompt.

Everything is deterministic: the same request gives the same result.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Callable, Iterable, Sequence

from novelcomic.models import (
    NARRATOR,
    Camera,
    Character,
    CharactersFile,
    Emotion,
    Location,
    LocationsFile,
    Line,
    Mood,
    Prop,
    PropsFile,
    Scene,
    Shot,
    ShotSize,
    Storyboard,
    VoiceSpec,
)
from novelcomic.plan import world, zh_cast
from novelcomic.plan.base import ChapterText, PlanRequest, PlanResult
from novelcomic.plan.text import LINE_MAX, Lang, Paragraph, Segment, sentence_spans, split_paragraphs, split_quotes, text_size

Tagger = Callable[[str], list[tuple[str, str]]]

# --------------------------------------------------------------------------- constants: Chinese

ZH_SPEECH_VERBS: tuple[str, ...] = tuple(
    sorted(
        {
            "回答道", "回答", "答道", "说道", "问道", "笑道", "喊道", "叫道", "嚷道", "吼道", "骂道", "叹道",
            "应道", "低语", "嘟囔", "嘀咕", "大喊", "大叫", "说", "问", "道", "喊", "叫", "嚷", "答", "吼",
            "曰", "喝道", "骂道", "云", "骂", "大骂", "呼", "大呼", "喝", "大喝", "叱", "言", "告", "叹", "泣", "奏", "谏",
            # thoughts are spoken as the one who thinks them, like "thought she" in English
            "想", "心想", "暗想", "寻思", "暗道", "心道", "思忖", "自忖",
        },
        key=len,
        reverse=True,
    )
)
# A clause ending in one of these is no attribution even though it ends like one.
ZH_NOT_SPEECH_RE = re.compile(
    r"(?:知道|味道|街道|轨道|渠道|难道|通道|报道|频道|隧道|赤道|听说|据说|小说|虽说|尖叫|鸟叫|蛙叫|[其之此所彼前][说言云道]"
    r"|(?:未及|不及|未曾|不曾|不敢|未|不|没|莫|勿)[回答]?[说言语答应])$"
)  # 然其说 / 从其言: the word said, not saying it; 未及回言: said nothing  # 然其说 / 从其言: the word said, not saying it
ZH_CLAUSE_SPLIT_RE = re.compile(r"[，,；;：:、]")
ZH_SENTENCE_END = "。！？!?…"
ZH_LEAD_RE = re.compile(
    r"^(?:这时候?|此时|于是|然后|忽然|突然|接着|只见|随后|说完|听了|见状|最后|这才|终于|却说|且说|话说|再说|当时|是时|时|遂|乃|因)[，,]?"
)
ZH_MODIFIER_RE = re.compile(
    r"(?:低声|小声|轻声|大声|高声|柔声|冷冷地?|淡淡地?|悄悄地?|轻轻地?|慢慢地?|笑着|笑眯眯地|哭着|喘着气|"
    r"壮着胆子|开口|连忙|赶紧|急忙|忍不住|突然|忽然|回头|抬头|低头|也|又|便|就|才|还|却|正|"
    r"(?:不耐烦|慢吞吞|气呼呼|笑嘻嘻|恶狠狠|急匆匆|怯生生|傻乎乎|乐呵呵|懒洋洋|凶巴巴|直勾勾)地|"
    r"[猛忽蓦霍倏]地|[\u4e00-\u9fff](?![猛忽蓦霍倏]地$)[\u4e00-\u9fff]地)$"
)
# Any-length ``…地`` would match leftmost and eat into the name (小川惊讶地 → 小): adverbs before 地
# are two characters (惊讶地, 冷冷地), a known ABB (慢吞吞地) or one of a few single ones (猛地).
ZH_PRONOUN_RE = re.compile(r"^(他|她)(?!们)")
# A clause that opens on one of these has no subject of its own (乃持刀跪下曰, 随入朝见帝曰, 谓陈宫曰).
# Classical and modern function words (a closed class): never a one-character name.
ZH_FUNCTION_CHARS = frozenset("有且望而其之乃又也以于为所者则若虽然即便遂因故但方正此彼何安焉哉矣耳是在将把被让给从向对")
# Function words no given name ends in (张让, 刘焉, 朱然 do end in function-like characters).
ZH_NOT_GIVEN = frozenset("不各而则其乃也以于为所者若虽即便遂因故但此彼哉矣耳皆俱亦已尚犹却都就见欲闻说急自谓出内")  # (之 何 回: 王羲之, 萧何, 颜回)
ZH_PREDICATE_OPENERS = frozenset("乃遂便即又私因复亦急忙再随入出进来往回起径直却方正忽乘先共同齐皆俱并谓问告拜叫唤谢请劝奏报")
# Verbs whose object is the one spoken to: the name after them does not speak (植谓玄德曰, 苗入奏何后云).
ZH_ADDRESS_VERBS = "谓问告对向与令命见叱责指骂奏白报劝谏请拜叫唤呼答应语嘱戒谢"
ZH_SUBJECT_STOP = frozenset(
    {"孩子", "声音", "开口", "低声", "轻声", "小声", "大声", "胆子", "心里", "口气",
     "时候", "东西", "自己", "对方", "有人", "别人", "大伙", "两个孩子", "一个"}
)
ZH_NAME_STOP = frozenset(
    {"胡子", "天亮", "松树", "小河", "宝贝", "石阶", "天明", "天黑", "小兔子", "谢谢你们", "白云", "青山", "金色", "林子",
     "高兴", "文章", "黄昏", "方向", "石头", "江湖", "万一", "于是", "常常", "明白", "司机", "马上", "马车"}
)
ZH_SURNAMES = frozenset(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭"
    "陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛邢安齐易"
    "乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴"
    "蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边"
    "卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝萧"
)
SURNAME_FLAGS = frozenset({"nr", "ng", "nrfg", "nrt", "n"})
# The heads of Chinese nouns for people (探子, 县令, 众官, 叔父, 老人, 庄主, 军士): a descriptor that
# speaks ends in one of these; 共议 (a verb) and 书略 (a letter) do not.
ZH_PERSON_SUFFIXES = frozenset(
    "人子官令主父母兄弟妹姐嫂叔伯姑姨师生客者士卒兵将王帝后妃公侯相臣吏使童翁婆娘女儿夫妇汉僧道尼仆婢奴民贼众郎君爷奶叟"
    "龙狐猴猿兔猫狗犬鸟鹤鹰雀燕虎狼熊蛇鱼妖怪魔鬼精仙神"  # creatures speak in fables and fantasy
)
# Titles that follow a surname to name someone (曹丞相, 刘皇叔, 关将军).
ZH_TITLES = frozenset(
    {"丞相", "将军", "皇叔", "太守", "刺史", "都督", "太尉", "司徒", "司空", "军师", "元帅", "大王", "国舅"}
)  # offices held by one person at a time; not 先生/老爷/夫人/小姐 (林先生 is 林小雨's father, 刘夫人 刘备's wife)
ZH_GENERIC_TITLES = frozenset(
    {"先生", "将军", "丞相", "大人", "老爷", "夫人", "小姐", "公子", "主公", "陛下", "娘娘", "太后", "皇帝", "天子", "太守"}
)
ZH_NUMERAL_MEASURE_RE = re.compile(r"[一二三四五六七八九十百千两几数][个匹只头条口把张位名员]")
ZH_SELF_INTRO_RE = re.compile(r"(?:我叫|我是|我的名字叫|我的名字是|叫我|我名叫)([\u4e00-\u9fff]{2,3}?)(?=[，。！？,.!?、]|$)")
# A speaker who gives their own name: 某姓张名飞 / 吾姓关名羽 / 我本汉室宗亲，姓刘，名备.
ZH_OWN_NAME_RE = re.compile(
    r"^[^。！？]{0,12}?(?:[某吾我余妾臣小人在下本]+)[^。！？]{0,10}?姓(?P<sur>[\u4e00-\u9fff]{1,2})[，,]?(?:名|单名|双名)(?P<given>[\u4e00-\u9fff]{1,2})"
)
ZH_CALLED_RE = re.compile(
    r"(?P<verb>自称|号称|名叫|叫做|人称|唤作|称呼他|称呼她|叫他|叫她|称他|称她|喊他|喊她)(?:为|作)?[“「]?"
    r"(?P<name>[\u4e00-\u9fff]{2,4}?)(?=[”」]?(?:[，。！？,.!?、；;]|$))"
)
ZH_SELF_NAMING = frozenset({"自称", "号称", "名叫", "叫做"})  # the name a character goes by, not a nickname
# A determiner before a noun subject: 一条白龙, 那老道, 这个孩子.
ZH_DETERMINER_RE = re.compile(r"^(?:[一两几这那][条只个位头匹群名]|那|这)$")
# A narration clause before ``：`` that introduces a voice: 声音如雷, 开口, 大喊.
ZH_VOICE_RE = re.compile(r"声|开口|喊|嚷|吼|问|答|说")
ZH_PLACE_SUFFIXES = "村镇城山河江湖寺庙殿院林街桥屋店洞岸溪谷峰顶台阁楼宫府园亭巷坊港湾岛崖坡路边房厅堂"
ZH_PLACE_STOP = frozenset(
    {"身边", "旁边", "这边", "那边", "外边", "里边", "天边", "东西", "天黑", "天亮", "乌黑", "河水", "眼前", "心里", "一边",
     "两边", "周边", "手边", "嘴边", "耳边", "路边", "一路", "道路", "山林", "树林", "森林", "江湖", "青山", "桃溪", "小河",
     "尾巴", "山脚", "山风", "船头", "石台"}
)
ZH_PLACE_TRAILING = "里上中下内外前后边"
ZH_PROPS: tuple[str, ...] = (
    "灯笼", "长明灯", "剑", "刀", "信", "伞", "钥匙", "书", "船桨", "玉佩", "扇子", "镜子", "戒指", "项链", "笛子", "琴", "弓",
    "箭", "包袱", "地图", "钱袋", "令牌", "手机", "篮子", "铃铛", "渔网", "斗笠", "蓑衣", "火种", "宝剑", "葫芦", "簪子",
    "手帕", "纸条", "信封", "盒子", "箱子", "风筝", "拐杖", "鱼竿", "花灯",
)
ZH_TIME_MARKERS_RE = re.compile(
    r"^[^，。！？]{0,6}(?:第二天|次日|翌日|清晨|早晨|早上|黄昏|傍晚|天黑以后|天黑后|天亮|深夜|半夜|夜里|当晚|那天晚上|"
    r"那天夜里|晚上|几天后|不久|后来|与此同时|一年后|多年后|第二年)"
)
ZH_TRAVEL_RE = re.compile(
    r"(?:回到|来到|走进|走到|跑到|赶到|进了|到了|抵达|进入|行至|行到|径到|径往|直到|杀到|奔到|来至|回至|引兵至|引军至|"
    r"入|投|往|奔|至)(?=[\u4e00-\u9fff])"
)
ZH_APPEARANCE_MARKERS = ("穿着", "扎着", "留着", "戴着", "披着", "梳着", "背着", "系着", "长着", "蓄着", "身穿", "头戴", "裹着")
ZH_FEATURE_RE = re.compile(r"毛|头发|胡子|辫子|眼睛|尾巴|衣|袄|裙|帽|褂|鞋|脸|胡须|白发|皮肤|个子")

# --------------------------------------------------------------------------- constants: English

EN_SPEECH_VERBS = (
    "said|says|asked|asks|whispered|shouted|replied|cried|called|answered|muttered|murmured|added|exclaimed|yelled|"
    "continued|began|sighed|snapped|growled|laughed|breathed|insisted|agreed|admitted|begged|explained|warned|"
    "announced|demanded|screamed|sobbed|giggled|chuckled|hissed|gasped|grumbled|mumbled|pleaded|promised|repeated|"
    "suggested|wondered|roared|squeaked|chirped|stammered|declared|urged|returned|observed|rejoined|resumed|"
    "interrupted|persisted|retorted|remarked|enquired|inquired|thought|protested|exclaimed|faltered|pursued|"
    "concluded|reasoned|ventured|conceded|objected|argued|assented|interposed|responded|uttered"
)
# Honorifics that are part of who is meant: Mr. Bennet and Mrs. Bennet are two people.
EN_HONORIFICS = (
    "Mr", "Mrs", "Miss", "Ms", "Mx", "Dr", "Sir", "Lady", "Lord", "Colonel", "Captain", "Major", "General", "Madame",
    "Madam", "Mme", "Mlle", "Monsieur", "Count", "Countess", "Duke", "Duchess", "Professor", "Reverend", "Rev",
)
EN_HON = "|".join(EN_HONORIFICS)
EN_NAME = rf"(?:(?:{EN_HON})\.?\s+)?[A-Z][a-z]+(?:\s+[A-Z][a-z]+){{0,2}}"
EN_TITLED_RE = re.compile(rf"\b(?P<hon>{EN_HON})(?P<dot>\.?)\s+(?P<name>[A-Z][a-z]+(?:\s+[A-Z][a-z]+)?)\b")
# A speaker named by relation to someone: "replied her mother", "said his lady".
EN_RELATIONS = {
    "mother": "Mrs", "father": "Mr", "wife": "Mrs", "husband": "Mr", "lady": "Mrs",
    "sister": "", "sisters": "", "brother": "", "friend": "", "aunt": "", "uncle": "", "daughter": "", "son": "",
    "cousin": "", "companion": "",
}
EN_RELATION_RE = rf"(?:[Hh]er|[Hh]is|[Tt]heir)\s+(?:{'|'.join(EN_RELATIONS)})"
EN_REF = rf"(?:{EN_NAME}|{EN_RELATION_RE}|[Hh]e|[Ss]he|[Tt]he\s+(?:old\s+|young\s+|little\s+)?[a-z]+)"
EN_AFTER_RE = re.compile(
    rf"^\s*(?:(?P<v1>{EN_SPEECH_VERBS})\s+(?P<r1>{EN_REF})|(?P<r2>{EN_REF})\s+(?:[a-z]+ly\s+)?(?P<v2>{EN_SPEECH_VERBS}))"
    r"(?P<adv>\s+[a-z]+ly)?\b"
)
EN_BEFORE_RE = re.compile(
    rf"(?:^\s*|(?<=[.!?;]\s))(?P<r>{EN_REF})\s+(?:[a-z]+ly\s+)?(?P<v>{EN_SPEECH_VERBS})(?:\s+[a-z]+ly)?\s*[,:]?\s*$"
)
EN_CAP_WORD_RE = re.compile(r"\b[A-Z][a-z]+\b")
EN_FULL_NAME_RE = re.compile(r"\b(?=([A-Z][a-z]+) ([A-Z][a-z]+)\b)")  # lookahead: overlapping pairs
EN_SPEECH_AFTER_RE = re.compile(rf"\s+(?:[a-z]+ly\s+)?(?:{EN_SPEECH_VERBS})\b")
EN_CALLED_RE = re.compile(
    r"\b(?:called|call|calls|nicknamed|dubbed)\s+(?:him|her)\s+[\"“]?(?P<name>[A-Z][a-z]+(?:\s+[A-Z][a-z]+)?)\b[\"”]?"
)
EN_SELF_INTRO_RE = re.compile(r"(?:[Mm]y name is|I am|I'm|[Cc]all me)\s+([A-Z][a-z]+)\b")
EN_TITLES = frozenset(
    {"Grandpa", "Grandma", "Granny", "Grandfather", "Grandmother", "Uncle", "Aunt", "Auntie", "Mr", "Mrs", "Miss", "Ms",
     "Dr", "Doctor", "Captain", "Sir", "Lady", "Lord", "King", "Queen", "Prince", "Princess", "Professor", "Master",
     "Old", "Father", "Mother", "Brother", "Sister", "Papa", "Mama"}
)
# Common English hypocorisms (a general table of the language, not of any one book): a character
# called by one of these is the one whose given name it shortens, when exactly one has it.
EN_DIMINUTIVES: dict[str, tuple[str, ...]] = {
    "Elizabeth": ("Lizzy", "Lizzie", "Liz", "Eliza", "Beth", "Betsy", "Bess", "Bessie", "Betty", "Libby"),
    "Catherine": ("Kitty", "Kate", "Katie", "Cathy", "Kit"), "Katherine": ("Kitty", "Kate", "Katie", "Kathy"),
    "Margaret": ("Peggy", "Maggie", "Meg", "Madge", "Daisy"), "Mary": ("Polly", "Molly", "Mamie"),
    "Sarah": ("Sally", "Sadie"), "Martha": ("Patty", "Matty"), "Anne": ("Nancy", "Annie", "Nan"),
    "Ann": ("Nancy", "Annie", "Nan"), "Frances": ("Fanny", "Frankie"), "Eleanor": ("Nell", "Nelly", "Ellie"),
    "Helen": ("Nell", "Nelly"), "Dorothy": ("Dolly", "Dot", "Dora"), "Rebecca": ("Becky", "Becca"),
    "Jane": ("Jenny", "Janey"), "Susan": ("Sue", "Susie", "Sukey"), "Caroline": ("Carrie", "Caddy"),
    "Isabella": ("Bella", "Isa"), "Georgiana": ("Georgie",), "Louisa": ("Lou", "Louie"), "Henrietta": ("Hetty",),
    "Harriet": ("Hattie", "Hetty"), "Josephine": ("Josie", "Jo"), "Amelia": ("Emmy", "Milly"),
    "William": ("Bill", "Billy", "Will", "Willy", "Willie"), "Robert": ("Bob", "Bobby", "Rob", "Robin"),
    "Richard": ("Dick", "Dickie", "Rick"), "Thomas": ("Tom", "Tommy"), "Henry": ("Harry", "Hal", "Hank"),
    "Edward": ("Ned", "Ted", "Teddy", "Eddie"), "John": ("Jack", "Johnny", "Jackie"), "James": ("Jim", "Jimmy", "Jem", "Jamie"),
    "Charles": ("Charley", "Charlie", "Chuck"), "Joseph": ("Joe", "Joey"), "Samuel": ("Sam", "Sammy"),
    "Benjamin": ("Ben", "Benny"), "Frederick": ("Fred", "Freddy"), "Nicholas": ("Nick", "Nicky"),
    "Michael": ("Mike", "Mick", "Mickey"), "Alexander": ("Alex", "Sandy"), "Daniel": ("Dan", "Danny"),
    "Christopher": ("Kit", "Chris"), "Anthony": ("Tony",), "Lawrence": ("Larry",), "Theodore": ("Theo", "Ted"),
    "Philip": ("Phil",), "Matthew": ("Matt",), "Peter": ("Pete",), "Timothy": ("Tim", "Timmy"),
}
EN_VOCATIVE_TITLES = frozenset({"Grandpa", "Grandma", "Granny", "Uncle", "Aunt", "Auntie", "Papa", "Mama"})
EN_STOPWORDS = frozenset(
    {"I", "I'm", "I'll", "I've", "I'd", "The", "A", "An", "He", "She", "It", "They", "We", "You", "His", "Her", "Its",
     "Their", "Our", "My", "Your", "This", "That", "These", "Those", "There", "Then", "And", "But", "Or", "So", "If",
     "When", "While", "After", "Before", "Oh", "Yes", "No", "Not", "Well", "Now", "Here", "What", "Why", "How", "Who",
     "Where", "God", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday", "January",
     "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December",
     "Christmas", "English", "Chinese", "OK", "Okay", "Hello", "Thank", "Thanks", "Please", "Look", "Good", "Very",
     "Click", "Together", "Nobody", "Everyone", "Someone", "Inside", "Below", "Above", "Near", "Through", "At", "In",
     "On", "To", "Of", "For", "With", "As", "By", "From", "One", "Two", "Three", "Every", "Just", "Let", "Come",
     "Everybody", "Somebody", "Anybody", "Anyone", "Everything", "Something", "Nothing", "Perhaps", "Maybe", "Still",
     "Even", "Once", "Soon", "Later", "Today", "Tonight", "Outside", "Beside", "Poor", "Dear", "All",
     "Both", "Only", "Never", "Always", "Again", "Yet", "Across", "Along", "Among", "Around", "Beyond", "Under",
     "Beneath", "Between", "Without", "Within", "Against", "During", "Since", "Until", "Past", "Despite", "Like",
     "Upon", "Behind", "Others", "People", "Each", "Neither", "Either"}
)
EN_PLACE_NOUNS = (
    "river|forest|woods|temple|workshop|market|street|tower|house|harbor|harbour|village|town|city|marsh|swamp|lake|"
    "sea|shore|beach|bridge|castle|palace|cave|mountain|hill|valley|field|garden|kitchen|room|hall|library|school|"
    "church|inn|tavern|shop|station|road|lane|square|port|island|camp|farm|barn|cottage|attic|cellar|office|"
    "courtyard|bedroom|classroom|meadow|desert|jungle|cliff|pier|dock|shrine|monastery|mill|forge|ship|boat|lodge|park|"
    "manor|abbey|court|grange|heath|terrace|crescent|parsonage|rectory|cathedral|chapel|palace|fort|wood|moor|bay"
)
EN_PLACE_WORDS = frozenset(EN_PLACE_NOUNS.split("|"))
EN_PLACE_RE = re.compile(
    r"\b(?:in|at|to|into|across|over|onto|toward|towards|from|near|beside|through|inside|reached|entered|of)\s+"
    r"(?:the\s+|a\s+|an\s+|her\s+|his\s+|their\s+|our\s+|my\s+|its\s+|[A-Za-z]+'s\s+)?(?:[a-z-]+\s+){0,2}?"
    rf"({EN_PLACE_NOUNS})\b"
)
EN_PROPER_PLACE_RE = re.compile(r"\b(?:in|at|to|into|from|near|of)\s+([A-Z][a-z]+)\b|\b([A-Z][a-z]+) was an? (?:\w+ )?(?:village|town|city)\b")
EN_PROPS: tuple[str, ...] = (
    "lantern", "letter", "key", "sword", "box", "book", "map", "ring", "necklace", "lamp", "candle", "knife", "bag",
    "basket", "hat", "umbrella", "spectacles", "raincoat", "apron", "staff", "wand", "clock", "bell", "oar", "nest",
    "scroll", "coin", "mirror", "crown", "shield", "bow", "arrow", "flute", "cup", "bottle", "rope", "net", "kite",
    "screwdriver", "gear", "feather", "stone", "compass", "pendant", "locket",
)
EN_TIME_MARKERS_RE = re.compile(
    r"^(?:That night|That evening|That afternoon|At dawn|At dusk|At night|At sunrise|At sunset|The next morning|"
    r"The next day|Next morning|Later|Meanwhile|Hours later|Days later|Years later|In the morning|By evening|"
    r"When night fell|After dark|The following)\b"
)
EN_TRAVEL_RE = re.compile(r"\b(?:ran|walked|went|dragged|carried|came|returned|hurried|flew|climbed|rode|sailed|arrived|reached|entered|headed)\b")
EN_APPEARANCE_RE = re.compile(
    r"\b(?:with\s+(?:a|an|his|her|long|short|\w+-?\w*)\b[^.;!?]*|wore\s+[^.;!?,]*|wearing\s+[^.;!?,]*|dressed in\s+[^.;!?,]*"
    r"|(?:was|is)\s+an?\s+[^.;!?]*)"
)

# --------------------------------------------------------------------------- constants: both

MALE_CUES_ZH = ("男孩", "少年", "男人", "爷爷", "伯", "叔", "老翁", "渔夫", "樵夫", "老头", "哥哥", "弟弟", "父亲", "爸爸", "公子", "先生", "师父", "和尚", "大汉", "书生")
FEMALE_CUES_ZH = ("女孩", "少女", "姑娘", "女人", "奶奶", "婆婆", "姐姐", "妹妹", "母亲", "妈妈", "阿姨", "小姐", "夫人", "姨", "娘")
MALE_CUES_EN = ("man", "boy", "father", "grandfather", "grandpa", "king", "sir", "mr", "uncle", "brother", "son", "husband", "gentleman", "lord", "prince")
FEMALE_CUES_EN = ("woman", "girl", "mother", "grandmother", "grandma", "granny", "queen", "lady", "mrs", "miss", "aunt", "sister", "daughter", "wife", "princess")
CHILD_CUES = ("孩子", "男孩", "女孩", "小姑娘", "小孩", "孩童", "boy", "girl", "child", "kid")
OLD_CUES = ("老", "爷爷", "奶奶", "伯", "婆婆", "白胡子", "雪白的胡子", "白发", "old", "grandpa", "grandfather", "grandma", "grandmother", "granny", "silver beard", "white hair", "elderly")
YOUNG_CUES = ("少年", "少女", "姑娘", "年轻", "青年", "young", "youth", "teen")
ADULT_CUES = ("男人", "女人", "大叔", "阿姨", "先生", "man", "woman", "lady", "gentleman")
EN_NUMBER_WORDS = {"five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
                   "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
                   "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80}
ZH_DIGITS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}

EMOTION_CUES: tuple[tuple[Emotion, tuple[str, ...]], ...] = (
    ("whisper", ("低声", "小声", "轻声", "悄悄", "耳语", "whisper", "softly", "murmur", "breathed", "quietly")),
    ("angry", ("怒", "生气", "吼", "骂", "angry", "angrily", "snapped", "growled", "roared", "shouted angrily")),
    ("sad", ("哭", "眼圈红", "哽咽", "伤心", "难过", "叹", "sob", "sadly", "tears", "sighed", "wept")),
    ("afraid", ("害怕", "颤抖", "发抖", "喘着气", "afraid", "trembl", "nervously", "fear")),
    ("happy", ("笑", "高兴", "开心", "laugh", "smil", "grin", "giggl", "chuckl", "happily", "cheerfully")),
    ("excited", ("喊", "叫", "嚷", "拍着手", "shout", "yell", "exclaim", "cried", "called out", "scream")),
    ("surprised", ("惊讶", "吃惊", "惊", "gasp", "surprised", "astonish")),
)
MOOD_CUES: tuple[tuple[Mood, tuple[str, ...]], ...] = (
    ("tense", ("害怕", "紧张", "陡", "危险", "差点", "熄灭", "发抖", "喘", "afraid", "danger", "nervous", "storm", "tremble", "dark")),
    ("sad", ("哭", "眼圈红", "伤心", "泪", "难过", "消失", "cry", "tears", "sad", "lonely", "lost")),
    ("joyful", ("笑", "高兴", "开心", "漂亮", "谢谢", "朋友", "亮了", "laugh", "smile", "happy", "thank", "shone", "friend")),
    ("mysterious", ("月", "雾", "古庙", "神秘", "狐", "铃铛", "静悄悄", "银光", "fog", "mist", "moon", "strange", "glint", "glow", "secret", "blinked")),
    ("action", ("跑", "追", "冲", "飞", "跳", "扑", "run", "ran", "chase", "flew", "fly", "jump", "fight", "dragged", "spin")),
)
ACTION_WORDS = ("跑", "追", "冲", "飞", "跳", "扑", "爬", "抓", "递", "扫", "ran ", "run ", "jump", "flew", "fly ", "chase", "climb", "dragged", "turned", "spread", "lifted", "slipped")
LANDSCAPE_WORDS = ("山", "河", "村", "天空", "月亮", "雾", "树林", "sky", "marsh", "village", "river", "forest", "mountain", "moon", "fog", "reeds")
TEMPERAMENT = {
    "zh": {"happy": "开朗", "excited": "活泼", "whisper": "温柔", "sad": "忧伤", "angry": "暴躁", "afraid": "胆小", "surprised": "好奇", "old": "慈祥", "neutral": "平和"},
    "en": {"happy": "cheerful", "excited": "lively", "whisper": "gentle", "sad": "melancholy", "angry": "fiery", "afraid": "timid", "surprised": "curious", "old": "kindly", "neutral": "calm"},
}
EN_NOT_OWNED = (
    "to|that|the|a|an|and|or|but|so|if|when|as|for|with|from|into|onto|at|on|by|about|over|in|out|up|down|back|"
    "off|away|again|too|now|then|go|come|see|know|be|feel|was|is"
)
PRONOUN_RES: dict[str, tuple[re.Pattern[str], re.Pattern[str]]] = {
    "zh": (re.compile(r"(他|她|它)(?!们)"), re.compile(r"(他|她|它)(?!们)")),
    "en": (
        # ``him`` and an object ``her`` (``called her "Little Gull"``, ``watched her go``) are someone
        # else: only a possessive ``her`` (followed by the thing owned) speaks for the subject
        re.compile(
            rf"\b(he|she|his|her(?=\s+(?!(?:{EN_NOT_OWNED})\b)[a-z])|herself|himself|its|itself)\b", re.IGNORECASE
        ),
        re.compile(r"(He|She|It)\b"),
    ),
}
PRONOUN_GENDER = {
    "他": "male", "她": "female", "它": "neuter", "he": "male", "his": "male", "him": "male", "himself": "male",
    "she": "female", "her": "female", "herself": "female", "it": "neuter", "its": "neuter", "itself": "neuter",
}
DEFAULT_MAX_CHARS = {"zh": 60, "en": 40}
MAX_APPEARANCE = 100

# --------------------------------------------------------------------------- data


@dataclass
class _Para:
    """One paragraph of one chapter with its quote/narration segments."""

    chapter: int
    index: int
    para: Paragraph
    segments: list[Segment]


@dataclass
class _Attr:
    """Who a quote's neighbouring narration says is speaking.

    ``ref`` is the raw reference (a name, descriptor or pronoun) found at ``pos``;
    ``speech`` is true for a speech-verb attribution (stripped from narration), false for an
    action beat (kept); ``cue`` is the text emotions are read from.
    """

    ref: str
    pos: int
    speech: bool
    cue: str
    cut: int = 0  # after-quote: characters consumed; before-quote: index where the clause starts


@dataclass
class _Entry:
    """A character while the cast is built."""

    name: str
    aliases: list[str] = field(default_factory=list)
    fixed_id: str | None = None
    existing: Character | None = None
    descriptor: bool = False

    def names(self) -> list[str]:
        return [self.name, *self.aliases]


@dataclass
class _Unit:
    """One line of a storyboard before shots exist: a narration sentence or one quote."""

    kind: str  # "narration" | "quote"
    text: str
    start: int
    end: int
    para: int
    speaker: str = NARRATOR
    emotion: Emotion = "neutral"
    mentions: list[str] = field(default_factory=list)
    cue: str = ""


@dataclass
class _Cast:
    """The resolved cast: characters, name lookup and genders."""

    characters: list[Character]
    lookup: dict[str, str]  # name or alias → id
    genders: dict[str, str]
    pattern: re.Pattern[str] | None
    words: dict[str, str] | None = None  # a dictionary, where one-character aliases exist
    given: set[str] | None = None  # cache of _given_chars (the lookup never changes after construction)

    def _is_word(self, m: re.Match[str]) -> bool:
        """A one-character alias that starts a word of the language (原 of 原来) names nobody."""
        if self.words is None or len(m.group(0)) != 1:
            return False
        text, i = m.string, m.start()
        return any(
            i + k <= len(text) and text[i : i + k] in self.words and not self.words[text[i : i + k]].startswith("nr")
            for k in (2, 3)
        )

    def mentions(self, text: str, offset: int = 0) -> list[tuple[int, str]]:
        """``(position, id)`` of every name or alias in ``text``."""
        if self.pattern is None:
            return []
        return [(offset + m.start(), self.lookup[m.group(0)]) for m in self.pattern.finditer(text) if not self._is_word(m)]

    def at_start(self, text: str) -> str | None:
        """The name or alias that ``text`` starts with (longest first), if any."""
        if self.pattern is None:
            return None
        m = self.pattern.match(text)
        return m.group(0) if m and not self._is_word(m) else None


# --------------------------------------------------------------------------- planner


class HeuristicPlanner:
    """Rule-based planner (see the module docstring).

    ``max_chars_per_shot``: spoken size of a shot, Chinese characters or English words
    (default 60 / 40); ``max_lines_per_shot``: lines per shot (default 3);
    ``min_name_count``: how often an unattributed name must occur to join the cast.
    """

    name = "heuristic"

    def __init__(self, max_chars_per_shot: int | None = None, max_lines_per_shot: int = 3, min_name_count: int = 2) -> None:
        if max_chars_per_shot is not None and max_chars_per_shot < 1:
            raise ValueError("max_chars_per_shot must be positive")
        if max_lines_per_shot < 1:
            raise ValueError("max_lines_per_shot must be positive")
        self.max_chars_per_shot = max_chars_per_shot
        self.max_lines_per_shot = max_lines_per_shot
        self.min_name_count = max(1, min_name_count)

    def plan(self, request: PlanRequest) -> PlanResult:
        """Plan every chapter of ``request``; see :class:`~novelcomic.plan.base.PlanResult`."""
        lang: Lang = "zh" if request.config.language == "zh" else "en"
        tagger = _zh_tagger() if lang == "zh" else _no_tagger
        wanted = [ch.id for ch in request.chapters]
        if request.book and {ch.id for ch in request.book} > set(wanted):
            # the cast, places and props from the whole book; storyboards for the wanted chapters
            texts = {ch.id: ch for ch in request.chapters}
            request = replace(request, chapters=[texts.get(ch.id, ch) for ch in request.book])
        chapters = [_paragraphs(lang, i, ch) for i, ch in enumerate(request.chapters)]
        warnings: list[str] = []
        cast = _build_cast(lang, request, chapters, tagger, self.min_name_count)
        cast = _resolve_genders(lang, cast, chapters)
        units_by_chapter = [_chapter_units(lang, cast, paras, tagger) for paras in chapters]
        cast = _finish_cast(lang, cast, request, chapters, units_by_chapter)
        locations, scene_locs = _build_locations(lang, request, chapters, tagger, cast)
        props = _build_props(lang, request, chapters, cast, tagger)
        max_chars = self.max_chars_per_shot or DEFAULT_MAX_CHARS[lang]
        boards: dict[str, Storyboard] = {}
        for ci, ch in enumerate(request.chapters):
            if ch.id not in wanted:
                continue
            boards[ch.id] = _storyboard(
                lang, ch, chapters[ci], units_by_chapter[ci], cast, props, locations, scene_locs.get(ci, {}),
                max_chars, self.max_lines_per_shot,
            )
            if not boards[ch.id].scenes:
                warnings.append(f"chapter {ch.id!r} has no text to plan")
        warnings.extend(_findings(lang, boards, cast, locations))
        return PlanResult(
            characters=CharactersFile(narrator=request.characters.narrator, characters=cast.characters),
            props=PropsFile(props=props),
            locations=LocationsFile(period=_period(lang, request), locations=locations),
            storyboards=boards,
            warnings=warnings,
        )


def _period(lang: Lang, request: PlanRequest) -> str:
    """The book's period and region, from its words (:func:`novelcomic.plan.world.detect_period`),
    read over a sample spread through the book."""
    texts = [c.text for c in request.chapters]
    if not texts:
        return request.locations.period
    step = max(1, len(texts) // 8)
    sample = "\n".join(t[:6000] for t in texts[::step])
    found = world.detect_period(sample, lang)
    return found if found != "unknown" else request.locations.period


def _findings(lang: Lang, boards: dict[str, Storyboard], cast: _Cast, locations: list[Location]) -> list[str]:
    """What the planner could not find in the book, said once (a book with no dialogue, no names
    or no places still plans: all narration, no cast, default backdrops)."""
    lines = [ln for board in boards.values() for _, shot in board.shots() for ln in shot.lines]
    out: list[str] = []
    if lines and not any(ln.speaker != NARRATOR for ln in lines):
        out.append("no dialogue attributed to anyone: every line is narrated")
    if lines and not cast.characters:
        out.append("no character names found: the shots are drawn without characters")
    if lines and not locations:
        out.append("no places found: the backdrops are drawn from each shot's words")
    return out


# --------------------------------------------------------------------------- jieba


def _zh_tagger() -> Tagger:
    """jieba's part-of-speech tagger (imported here so that importing novelcomic stays cheap)."""
    import jieba
    import jieba.posseg as pseg

    jieba.setLogLevel(logging.WARNING)

    memo: dict[str, list[tuple[str, str]]] = {}

    def tag(text: str) -> list[tuple[str, str]]:
        # the passes ask for the same sentences again (cast, genders, looks, props, places); jieba's
        # tagger is the planner's main cost, so each text is tagged once per plan
        found = memo.get(text)
        if found is None:
            found = memo[text] = [(w, f) for w, f in pseg.cut(text)]
        return found

    return tag


def _zh_words(text: str) -> list[str]:
    """jieba's words without tags or the unknown-word model: ten times faster than tagging."""
    import jieba

    return jieba.lcut(text, HMM=False)


def _zh_dictionary() -> dict[str, str]:
    """jieba's dictionary: word → part of speech."""
    import jieba.posseg as pseg

    return pseg.dt.word_tag_tab


def _no_tagger(text: str) -> list[tuple[str, str]]:
    return []


# --------------------------------------------------------------------------- paragraphs


def _paragraphs(lang: Lang, chapter_index: int, chapter: ChapterText) -> list[_Para]:
    return [
        _Para(chapter_index, i, p, _merge_inline_quotes(lang, p, split_quotes(p.text, p.start)))
        for i, p in enumerate(split_paragraphs(chapter.text))
    ]


def _merge_inline_quotes(lang: Lang, para: Paragraph, segs: list[Segment]) -> list[Segment]:
    """A short quoted phrase inside a narration sentence is narration, not a line of dialogue:
    ``called her "Little Gull" when she was small`` / ``孩子们都叫他“疯道士”，`` stay one sentence."""
    inline = {
        i for i, seg in enumerate(segs)
        if seg.is_quote and 0 < i and not segs[i - 1].is_quote
        and _inline_quote(lang, segs[i - 1].raw, seg, segs[i + 1] if i + 1 < len(segs) else None)
    }
    if not inline:
        return segs
    out: list[Segment] = []
    for i, seg in enumerate(segs):
        if out and not out[-1].is_quote and (i in inline or (not seg.is_quote and i - 1 in inline)):
            a, b = out[-1].start - para.start, seg.end - para.start
            text = para.text[a:b]
            out[-1] = Segment("narration", text, text, out[-1].start, seg.end)
        else:
            out.append(seg)
    return out


def _inline_quote(lang: Lang, before: str, quote: Segment, after: Segment | None) -> bool:
    """The narration before runs on into the quote (no sentence end, colon, comma or speech verb),
    the quote is a few words with no punctuation of its own, and no attribution follows."""
    inner = quote.text
    if after is not None and after.is_quote:
        return False
    if lang == "zh":
        return (
            len(inner) <= 6 and not re.search(r"[，,。！？!?；;：:…、]", inner)
            and not before.endswith(tuple("：:，,。！？!?；;…—句声")) and _zh_speech_verb(before) is None
        )
    if len(inner.split()) > 5 or re.search(r"[.!?,;:…—-]$", inner) or re.search(r"[.!?:;,…—-]$", before):
        return False
    if re.search(rf"\b(?:{EN_SPEECH_VERBS})(?:\s+[a-z]+ly)?$", before):
        return False
    return after is None or not EN_AFTER_RE.match(after.raw)


def _seg_text(para: _Para, seg: Segment) -> str:
    """A segment's raw text (offsets are chapter offsets; the paragraph holds the text)."""
    a = seg.start - para.para.start
    return para.para.text[a : a + (seg.end - seg.start)]


# --------------------------------------------------------------------------- attribution (Chinese)


def _zh_speech_verb(clause: str) -> str | None:
    """The speech verb ``clause`` ends with, if any."""
    clause = clause.rstrip()
    if ZH_NOT_SPEECH_RE.search(clause):
        return None
    for verb in ZH_SPEECH_VERBS:
        if clause.endswith(verb):
            return verb
    return None


def _strip_modifiers(text: str) -> str:
    prev = None
    while prev != text:
        prev, text = text, ZH_MODIFIER_RE.sub("", text)
    return text


def _zh_subject(clause: str, cast: _Cast | None, tagger: Tagger) -> str | None:
    """The subject at the start of a clause: a known name (after a title: 司马潘隐; in 时人有桥玄者),
    a pronoun, or a jieba noun."""
    s = ZH_LEAD_RE.sub("", clause.strip())
    if not s:
        return None
    m = ZH_PRONOUN_RE.match(s)
    if m:
        return m.group(1)
    if cast is not None:
        known = cast.at_start(s)
        if known:
            return known
        m = re.search(r"有([\u4e00-\u9fff]{2,4}?)者", s)
        if m and m.group(1) in cast.lookup:
            return m.group(1)
        first = cast.mentions(s[:8])
        if first and not re.search(r"[谓问告与对向见令命使叫请奏曰言道说之其]", s[: first[0][0]]):
            return cast.at_start(s[first[0][0]:])
        if len(s) > 1 and s[0] in _given_chars(cast) and s[1] in zh_cast.SUBJECT_NEXT:
            return s[0]  # 原正秉烛观书: 丁原, by his given name
    else:
        m = re.search(r"有([\u4e00-\u9fff]{2,3}?)者", s)  # 时人有桥玄者: a name to learn
        if m and m.group(1)[0] in ZH_SURNAMES:
            return m.group(1)
    return _zh_noun_subject(s, tagger, cast.lookup if cast is not None else None)


def _zh_name_at_end(head: str, cast: _Cast) -> str | None:
    """The cast name (two characters or more) that ``head`` ends with, if any."""
    found = [m for m in cast.mentions(head) if len(m[1]) and head.endswith(_name_at(cast, head, m[0]))]
    if not found:
        return None
    name = _name_at(cast, head, found[-1][0])
    return name if len(name) >= 2 else None


def _given_chars(cast: _Cast) -> set[str]:
    """Last characters of the cast's surname-and-given names (操 of 曹操, 嵩 of 皇甫嵩); computed
    once per cast (it is asked for every attribution of a whole novel)."""
    if cast.given is None:
        cast.given = {
            n[-1] for n in cast.lookup
            if len(n) in (2, 3) and (n[0] in ZH_SURNAMES or n[:2] in zh_cast.COMPOUND_SURNAMES)
        }
    return cast.given


def _zh_noun_subject(s: str, tagger: Tagger, known: dict[str, str] | None = None) -> str | None:
    toks = tagger(s[:12])
    if not toks:
        return None
    if len(toks) > 1 and ZH_DETERMINER_RE.match(toks[0][0]) and toks[1][1].startswith("n"):
        toks = toks[1:]
    w, f = toks[0]
    nxt = toks[1] if len(toks) > 1 else ("", "")
    if _surname_merge(w, f, nxt):
        w, f = w + nxt[0], "nr"
    elif w in ("老", "小", "大") and nxt[1].startswith("n"):
        w, f = w + nxt[0], "n"
    if not (2 <= len(w) <= 4) or w in ZH_SUBJECT_STOP or w.endswith("们"):
        return None
    if f.startswith("nr") or (w.startswith("阿") and len(w) <= 3):
        return w
    if f in ("n", "nz", "nt") and (known is None or w in known or w[-1] in ZH_PERSON_SUFFIXES):
        return w  # discovery takes any noun (八戒, 服务员); once the cast is known, a noun it does not hold
    return None  # must still be a noun for people (县令, 老渔夫) — not 共议 or 书略


def _surname_merge(word: str, flag: str, nxt: tuple[str, str]) -> bool:
    """``林`` + ``小雨`` → one name (jieba splits some full names)."""
    return len(word) == 1 and word in ZH_SURNAMES and flag in SURNAME_FLAGS and nxt[1].startswith("nr")


def _zh_clause_subject_back(clauses: list[str], cast: _Cast | None, tagger: Tagger) -> str | None:
    """Subject of the last clause, else of the clauses before it (same sentence); a clause that is a
    title chain ending in a name (当前河南中部掾吏闵贡) gives that name."""
    for clause in reversed(clauses[-3:]):
        subj = _zh_subject(clause, cast, tagger)
        if subj:
            return subj
        end = _zh_name_at_end(clause.strip(), cast) if cast is not None else None
        if end and not re.search(f"[{ZH_ADDRESS_VERBS}]", clause.strip()[: -len(end)]):
            return end
    return None


def _zh_after(text: str, cast: _Cast | None, tagger: Tagger, pos: int) -> _Attr | None:
    """Attribution in the narration right after a quote: ``老渔夫笑道，`` / beat ``阿银叹了口气，``."""
    m = re.match(r"\s*([^，,。！？!?；;：:“”]*)([，,。！？!?；;：:]?)", text)
    if not m or not m.group(1):
        return None
    clause = m.group(1)
    verb = _zh_speech_verb(clause)
    if verb and m.group(2) in ("：", ":") and not text[m.end():].strip():
        return None  # “…”玄德曰：“…” — this introduces the next line, not the one before it
    if verb:
        subj = _zh_subject(_strip_modifiers(clause[: -len(verb)]), cast, tagger)
        if subj:
            return _Attr(subj, pos, True, clause, cut=m.end())
        return None
    subj = _zh_subject(clause, cast, tagger) if cast is not None else None
    if subj and (ZH_PRONOUN_RE.match(subj) or subj in cast.lookup):  # type: ignore[union-attr]
        return _Attr(subj, pos, False, clause)
    return None


def _zh_before(text: str, cast: _Cast | None, tagger: Tagger, pos: int) -> _Attr | None:
    """Attribution in the narration right before a quote: ``林小雨说：`` / beat ``小雨赶紧护住灯笼。``."""
    body = text.rstrip().rstrip("：:，,")
    sentence_start = max(body.rfind(c, 0, len(body) - 1) for c in ZH_SENTENCE_END) + 1
    sentence = body[sentence_start:]
    clauses = [c for c in re.split(r"[，,；;：:]", sentence) if c.strip()]  # 玄德谓关、张曰 is one clause
    if not clauses:
        return None
    last = clauses[-1].rstrip(ZH_SENTENCE_END)
    verb = _zh_speech_verb(last) if not sentence.endswith(tuple(ZH_SENTENCE_END)) else None
    if verb:
        head = _strip_modifiers(last[: -len(verb)])
        if head and head[0] in ZH_PREDICATE_OPENERS and (cast is None or cast.at_start(head) is None):
            head = ""  # 操惶遽，乃持刀跪下曰: the clause has no subject of its own
        subj = _zh_subject(head, cast, tagger) if head else None
        last_name = _zh_name_at_end(head, cast) if head and cast is not None else None
        if last_name and last_name != subj and not re.search(f"[{ZH_ADDRESS_VERBS}]", head[: -len(last_name)]):
            subj = last_name  # 卓婿谋士李儒曰: titles and kin before the name that speaks
        if subj is None and head and re.match(r"[\u4e00-\u9fff]", head) and head[0] not in zh_cast.SUBJECT_NEXT and (
            (cast is not None and head[0] in _given_chars(cast)) or len(head) == 1 or head[1] in zh_cast.SUBJECT_NEXT
        ) and (cast is None or head[0] in _given_chars(cast) or head[0] in cast.lookup):
            subj = head[0]  # 嵩曰 / 嵩与儁计曰: a one-character given name, resolved by who was just mentioned
        if subj is None:
            subj = _zh_clause_subject_back(clauses[:-1], cast, tagger)
        if subj is None and cast is not None and sentence_start > 0 and not head:
            # 私谓李儒曰 (no subject of its own): the topic of the sentence before
            before_text = body[:sentence_start].rstrip()
            prev_start = max(before_text.rfind(c, 0, len(before_text) - 1) for c in ZH_SENTENCE_END) + 1
            prev_clauses = [c for c in re.split(r"[，,；;：:]", before_text[prev_start:]) if c.strip()]
            subj = _zh_subject(prev_clauses[0], cast, tagger) if prev_clauses else None
            if subj is not None and subj not in cast.lookup and not ZH_PRONOUN_RE.match(subj) and len(subj) > 1:
                subj = None
        cut = body.rfind(last)
        # no subject anywhere (良久乃出，谓陈宫曰): still an attribution — the one who spoke last goes on
        return _Attr(subj or "", pos + sentence_start, True, sentence, cut=cut)
    subj = _zh_subject(clauses[0], cast, tagger)
    if subj and text.rstrip().endswith(("：", ":")) and ZH_VOICE_RE.search(sentence):
        # 一条白龙盘旋在半空，声音如雷：“…” — the colon hands the quote to the sentence's subject;
        # the clause is description, not an attribution, so all of it stays narration
        return _Attr(subj, pos + sentence_start, True, sentence, cut=len(text))
    if cast is not None and subj and (ZH_PRONOUN_RE.match(subj) or subj in cast.lookup):
        return _Attr(subj, pos + sentence_start, False, sentence)
    return None


# --------------------------------------------------------------------------- attribution (English)


def _en_ref(ref: str) -> str:
    """Normalise an English reference: ``The heron`` → ``heron``, ``Then Pip`` → ``Pip``."""
    ref = " ".join(ref.split())
    low = ref.lower()
    if low in ("he", "she") or re.fullmatch(EN_RELATION_RE, ref):
        return low
    if low.startswith("the "):
        return low[4:]
    words = ref.split()
    while len(words) > 1 and words[0] in EN_STOPWORDS:
        words = words[1:]
    return " ".join(words)


def _en_after(text: str, cast: _Cast | None, pos: int) -> _Attr | None:
    """``said Tobias`` / ``Pip asked`` / ``she whispered`` right after a quote, or a name beat."""
    m = EN_AFTER_RE.match(text)
    if m:
        ref = _en_ref(m.group("r1") or m.group("r2"))
        if ref and ref.split()[0] not in EN_STOPWORDS - {"He", "She"}:
            return _Attr(ref, pos, True, m.group(0), cut=m.end())
    if cast is not None:
        stripped = text.lstrip()
        known = cast.at_start(stripped)
        if known:
            return _Attr(known, pos, False, _first_sentence(stripped, "en"))
        pm = re.match(r"(?:(?:as|while|when|and|but|then)\s+)?(he|she)\b", stripped, re.IGNORECASE)
        if pm:  # "Oh! my dear Mr. Bennet," as she entered the room, "…"
            return _Attr(pm.group(1).lower(), pos, False, _first_sentence(stripped, "en"))
    return None


def _en_before(text: str, cast: _Cast | None, pos: int) -> _Attr | None:
    """``Pip asked,`` before a quote, or an action beat ``Tobias wiped his spectacles.``."""
    m = EN_BEFORE_RE.search(text)
    if m:
        ref = _en_ref(m.group("r"))
        if ref and ref.split()[0] not in EN_STOPWORDS - {"He", "She"}:
            return _Attr(ref, pos + m.start(), True, m.group(0), cut=m.start())
    if cast is None:
        return None
    spans = sentence_spans(text, "en")
    if not spans:
        return None
    a, b = spans[-1]
    sentence = text[a:b]
    known = cast.at_start(sentence)
    if known:
        return _Attr(known, pos + a, False, sentence)
    pm = re.match(r"(He|She)\b", sentence)
    if pm:
        return _Attr(pm.group(1).lower(), pos + a, False, sentence)
    return None


def _first_sentence(text: str, lang: Lang) -> str:
    spans = sentence_spans(text, lang)
    return text[spans[0][0] : spans[0][1]] if spans else text


def _attributions(lang: Lang, para: _Para, qi: int, cast: _Cast | None, tagger: Tagger) -> tuple[_Attr | None, _Attr | None]:
    """(after, before) attributions of quote segment ``qi`` from its neighbouring narration."""
    segs = para.segments
    after = before = None
    if qi + 1 < len(segs) and not segs[qi + 1].is_quote:
        nxt = segs[qi + 1]
        text = _seg_text(para, nxt)
        after = _zh_after(text, cast, tagger, nxt.start) if lang == "zh" else _en_after(text, cast, nxt.start)
    if qi > 0 and not segs[qi - 1].is_quote:
        prv = segs[qi - 1]
        text = _seg_text(para, prv)
        before = _zh_before(text, cast, tagger, prv.start) if lang == "zh" else _en_before(text, cast, prv.start)
    return after, before


# --------------------------------------------------------------------------- cast discovery


def _build_cast(lang: Lang, request: PlanRequest, chapters: list[list[_Para]], tagger: Tagger, min_count: int) -> _Cast:
    """Discover names, descriptors and aliases; merge them with the user's cast; assign ids."""
    names: dict[str, int] = {}  # name → first position key (for ordering)
    descriptors: set[str] = set()
    links: dict[str, str] = {}  # descriptor or nickname → the name it stands for
    speech_refs = _speech_refs(lang, chapters, tagger)
    for ref, kind, quote in speech_refs:
        if not ref:
            continue  # 良久乃出，谓陈宫曰: an attribution with no subject names nobody
        if lang == "zh" and len(ref) == 1:
            continue  # 陶曰: a one-character given name: an alias, found once the cast is known (_zh_single_speakers)
        if lang == "zh" and kind == "descriptor" and len(ref) in (2, 3) and ref[0] in ZH_SURNAMES and ref[-1] not in ZH_PERSON_SUFFIXES:
            kind = "name"  # 桥玄谓操曰: a surname and a given name the segmenter does not know
        if kind == "name":
            names.setdefault(ref, 0)
        elif kind == "descriptor":
            descriptors.add(ref)
            intro = (ZH_SELF_INTRO_RE if lang == "zh" else EN_SELF_INTRO_RE).search(quote)
            if intro and intro.group(1) not in EN_STOPWORDS:
                links.setdefault(ref, intro.group(1))
                names.setdefault(intro.group(1), 0)
    for name in _frequent_names(lang, chapters, tagger, min_count):
        names.setdefault(name, 0)
    full = "\n".join(p.para.text for paras in chapters for p in paras)
    if lang == "zh":
        _zh_called_links(chapters, tagger, descriptors, names, links)
        _zh_refine(names, descriptors, links, full, tagger, Counter(r for r, kind, _ in speech_refs if kind != "pronoun"))
    else:
        _en_called_links(chapters, names, links)
    groups = _group_names(lang, list(names), descriptors, links, full)
    if lang == "zh":
        _given_name_aliases(groups, full)
        groups = _zh_merge(groups, full)
        groups += _zh_single_speakers(groups, speech_refs)
    entries = _merge_existing(request.characters.characters, groups)
    return _assign_ids(lang, entries, full)


def _zh_refine(
    names: dict[str, int], descriptors: set[str], links: dict[str, str], full: str, tagger: Tagger, speaks: Counter[str]
) -> None:
    """Keep the candidates that are people (see :mod:`novelcomic.plan.zh_cast`): courtesy names
    linked, glued verbs and titles cut off, places and words that never act dropped; a descriptor
    (探子, 县令) is one noun."""
    linked: set[str] = set()  # names the book itself introduces (姓诸葛，名亮，字孔明)
    for alias, name in zh_cast.courtesy_links(full, ZH_SURNAMES).items():
        if (name not in names and name[0] not in ZH_SURNAMES and name[:2] not in zh_cast.COMPOUND_SURNAMES) or (
            ZH_NUMERAL_MEASURE_RE.search(name) or name[-1] in ZH_NOT_GIVEN  # 何其号令不明: no name, no 号
        ):
            continue  # 马一匹，号曰赤兔 is a horse
        names.setdefault(name, 0)
        names.pop(alias, None)
        links.setdefault(alias, name)
        linked.add(name)
    counts = {n: full.count(n) for n in [*names, *descriptors]}
    singles = {r for r, n in speaks.items() if len(r) == 1 and n >= 2}
    words = _zh_dictionary()
    for w in _twice(names):
        if w not in names or w in linked:
            continue
        if len(w) in (2, 3) and w[-1] in ZH_NOT_GIVEN:
            del names[w]  # 王自 (引兵), 连日不, 甘宁见, 何其: a name-like start and a function word
            links.pop(w, None)
            continue
        if w in links:
            continue
        if (len(w) == 3 and w[1] in ZH_SURNAMES and (w[1:] in names or w[1:] in links)
                and counts.get(w[1:], full.count(w[1:])) >= 2 * counts.get(w, 0)):
            del names[w]  # 时曹操, 闻姜维: a word glued before a full name (林小雨 is not 林 + 小雨)
            continue
        if w in words and not words[w].startswith("nr") and (speaks[w] < 2 or words[w][:1] in "vadcpu"):
            del names[w]  # 文武, 牛马, 商议: words the dictionary knows, and not as names
            continue
        if _zh_bound_share(w, full, words) >= 0.5:
            del names[w]  # 马向前 in 纵马向前 / 勒马向前: its first character is the object of the word before
            continue
        if len(w) > 1 and w[0] in singles and w[1] in zh_cast.SUBJECT_NEXT:
            del names[w]  # 匡大呼 where 匡 speaks on its own
            continue
        if len(w) == 2 and w[0] in zh_cast.SUBJECT_NEXT and any(
            n != w and len(n) in (2, 3) and n.endswith(w[1]) and counts.get(n, 0) >= 3 * counts.get(w, 0) for n in names
        ):
            del names[w]  # 谢肃曰 (thanked 李肃 and said): a verb and someone's given name
            continue
        heads = [n for n in names if n not in links] + list(links)
        head = zh_cast.glued_head(w, heads, counts)
        if head is not None and counts.get(w, 0) * 2 <= counts.get(head, full.count(head)):
            del names[w]
            continue
        split = zh_cast.title_split(w, names)
        if split is not None:
            del names[w]
            names.setdefault(split[1], 0)
            links.setdefault(w, split[1])
    evidence = zh_cast.person_evidence(full, [*names, *descriptors])
    for w in list(names):
        if w in links.values():
            continue
        ev = evidence.get(w)
        acts = speaks[w] > 0 or (ev is not None and ev.person)
        if (not acts or (ev is not None and zh_cast.is_place_like(w) and ev.place * 2 >= ev.agent)  # 丁原 acts; 温德殿 is gone to
                or ZH_NUMERAL_MEASURE_RE.search(w)
                or w in zh_cast.COMPOUND_SURNAMES):  # 司马 alone is a family, not someone
            del names[w]
    people = [n for n in names if n not in links]
    for d in list(descriptors):
        ev = evidence.get(d)
        toks = tagger(d)
        if d not in links and (
            (not speaks[d] and (ev is None or not ev.person)) or zh_cast.is_place_like(d) or zh_cast.glued_head(d, people, counts)
            or len(toks) != 1 or not toks[0][1].startswith("n")
            or (d[-1] not in ZH_PERSON_SUFFIXES and speaks[d] < 2)  # 督邮 speaks often; 书略 once
        ):
            descriptors.discard(d)


def _zh_bound_share(w: str, full: str, words: dict[str, str]) -> float:
    """Share of ``w``'s uses (up to 200) whose first character ends a dictionary word with the
    character before it (纵马 of 纵马向前): a name is not glued to the word before it."""
    total = bound = 0
    start = full.find(w)
    while start >= 0 and total < 200:
        total += 1
        if start and full[start - 1 : start + 1] in words:
            bound += 1
        start = full.find(w, start + len(w))
    return bound / total if total else 0.0


def _twice(names: dict[str, int]) -> Iterable[str]:
    """The names, longest first, then once more with the ones added on the way (司徒王允 → 王允)."""
    for _ in range(2):
        yield from sorted(names, key=len, reverse=True)


def _zh_single_speakers(groups: list[_Entry], speech_refs: list[tuple[str, str, str]]) -> list[_Entry]:
    """A one-character name that speaks again and again (卓曰, 允曰) and is nobody's given name in
    the text at hand (a passage that never names 董卓 in full): a character of its own."""
    counts = Counter(r for r, _, _ in speech_refs if len(r) == 1 and r not in ("他", "她"))
    owned = {n for g in groups for n in g.names()} | {n[-1] for g in groups for n in g.names() if len(n) in (2, 3)}
    tags = _zh_dictionary()
    return [
        _Entry(ch) for ch, n in sorted(counts.items())
        if n >= 2 and ch not in owned and ch not in zh_cast.SUBJECT_NEXT and ch not in ZH_FUNCTION_CHARS
        and tags.get(ch, "n")[:1] not in ("r", "d", "c", "p", "u", "m", "q", "f")  # 再拜曰: 再 is no one
    ]


def _zh_merge(groups: list[_Entry], full: str) -> list[_Entry]:
    """Abbreviations (何后 of 何太后) join their full form; an alias two people share (太后) is
    nobody's; a one-character given name that opens clauses (操曰) joins its owner."""
    by_len = sorted(groups, key=lambda e: len(e.name))
    merged: list[_Entry] = []
    for e in by_len:
        target = next((g for g in groups if g is not e and g not in merged and not e.descriptor
                       and zh_cast.abbreviates(e.name, g.name)), None)
        if target is not None:
            target.aliases.extend(a for a in e.names() if a not in target.names())
            merged.append(e)
    groups = [g for g in groups if not any(g is m for m in merged)]
    owners = Counter(a for g in groups for a in set(g.names()))
    for g in groups:  # 太后 of 董太后 and 何太后; 先生 of anyone: nobody's alias
        g.aliases = [a for a in g.aliases if owners[a] == 1 and a not in ZH_GENERIC_TITLES and "一人" not in a]
    mentions = {g.name: full.count(g.name) for g in groups if not g.descriptor and g.name[0] in ZH_SURNAMES}
    total = {id(g): sum(full.count(n) for n in g.names()) for g in groups}
    for g in list(groups):  # 关公, 曹丞相: a surname and a title are the one of that surname the book is about
        if len(g.name) < 2 or g.name[0] not in ZH_SURNAMES or not (
            g.name[1:] in ZH_TITLES or (len(g.name) == 2 and g.name[1] in "公侯君爷")
        ):
            continue
        kin = sorted((k for k in groups if k is not g and not k.descriptor and k.name[0] == g.name[0]
                      and k.name[1:] not in ZH_TITLES), key=lambda k: -total[id(k)])
        if kin and (len(kin) == 1 or total[id(kin[0])] >= 3 * max(1, total[id(kin[1])])):
            kin[0].aliases.extend(a for a in g.names() if a not in kin[0].names())
            groups.remove(g)
    singles = zh_cast.single_char_aliases(
        full, {n: c for n, c in mentions.items() if len(n) in (2, 3) and n[-1] not in ZH_PERSON_SUFFIXES}
    )
    for ch, name in singles.items():
        owner = next((g for g in groups if name in g.names()), None)
        if owner is not None and ch not in owners:
            owner.aliases.append(ch)
    return groups


def _speech_refs(lang: Lang, chapters: list[list[_Para]], tagger: Tagger) -> list[tuple[str, str, str]]:
    """``(ref, kind, quote)`` for every speech-verb attribution; kind: name/descriptor/pronoun."""
    out: list[tuple[str, str, str]] = []
    for paras in chapters:
        for para in paras:
            for qi, seg in enumerate(para.segments):
                if not seg.is_quote:
                    continue
                spoken = " ".join(s.text for s in para.segments[qi:] if s.is_quote)
                for attr in _attributions(lang, para, qi, None, tagger):
                    if attr is not None and attr.speech and attr.ref and not (lang == "zh" and _zh_verse_intro(attr.cue)):
                        out.append((attr.ref, _ref_kind(lang, attr.ref, tagger), spoken))
    return out


def _ref_kind(lang: Lang, ref: str, tagger: Tagger) -> str:
    if lang == "zh":
        if ref in ("他", "她"):
            return "pronoun"
        toks = tagger(ref)
        is_name = (len(toks) == 1 and toks[0][1].startswith("nr")) or (
            len(toks) == 2 and _surname_merge(toks[0][0], toks[0][1], toks[1])
        ) or (ref.startswith("阿") and len(ref) <= 3)
        return "name" if is_name else "descriptor"
    if ref in ("he", "she"):
        return "pronoun"
    if re.fullmatch(EN_RELATION_RE, ref):
        return "relation"
    return "name" if ref[:1].isupper() else "descriptor"


def _frequent_names(lang: Lang, chapters: list[list[_Para]], tagger: Tagger, min_count: int) -> list[str]:
    """Names that recur in narration although no attribution names them."""
    narration = [_seg_text(p, s) for paras in chapters for p in paras for s in p.segments if not s.is_quote]
    if lang == "zh":
        counts: Counter[str] = Counter()
        tagged: set[str] = set()
        for text in narration:
            toks = tagger(text)
            for i, (w, f) in enumerate(toks):
                if i + 1 < len(toks) and _surname_merge(w, f, toks[i + 1]):
                    w, f = w + toks[i + 1][0], "nr"
                counts[w] += 1
                if f in ("nr", "nrfg", "nrt"):
                    tagged.add(w)
        found = [
            w for w in sorted(tagged, key=lambda x: (-counts[x], x))
            if counts[w] >= min_count and 2 <= len(w) <= 4 and w not in ZH_NAME_STOP
            and (w[0] in ZH_SURNAMES or w.startswith("阿") or w[:2] in zh_cast.COMPOUND_SURNAMES)
        ]
        missed = zh_cast.surname_ngrams("\n".join(narration), ZH_SURNAMES, _zh_dictionary(), max(3, min_count))
        return found + [w for w in missed if w not in found and w not in ZH_NAME_STOP]
    quotes = [s.text for paras in chapters for p in paras for s in p.segments if s.is_quote]
    return _en_frequent_names(narration, min_count, quotes)


def _en_frequent_names(narration: list[str], min_count: int, quotes: Sequence[str] = ()) -> list[str]:
    """Capitalised words, honorific names (``Mrs. Bennet``) and two-word full names (``Elias Brandt``)
    that recur in narration.

    A capitalised word at the start of a sentence (or after a quote) may be any word; it counts
    as a name when the same word is capitalised mid-sentence somewhere, is followed by a speech
    verb (``Mara replied``) or is part of a full name. A word the text also writes in lower case
    more often than capitalised mid-sentence is an ordinary word (``Long``, ``Which``, ``However``),
    unless an honorific names it (``Mrs. Long``). A full name counts with the mentions of its
    parts, so ``Mara Quinn`` once plus ``Mara`` often is a name. Names ending in a place noun
    (``Lucas Lodge``) and plural family names (``the Bennets``) are not people.
    """
    mid: Counter[str] = Counter()
    start: Counter[str] = Counter()
    places: Counter[str] = Counter()
    lower: Counter[str] = Counter()
    titled: Counter[str] = Counter()
    speaks: set[str] = set()
    plain: list[str] = []
    in_narration: set[str] = set()
    for text in quotes:  # Mrs. Long, only talked about, is someone all the same
        for m in EN_TITLED_RE.finditer(text):
            titled[_en_titled(m)] += 1
    for text in narration:
        for m in EN_TITLED_RE.finditer(text):
            name = _en_titled(m)
            if name.split()[-1].lower() not in EN_PLACE_WORDS and name.split()[1] not in EN_STOPWORDS:
                titled[name] += 1
                in_narration.add(name)
        text = EN_TITLED_RE.sub(lambda m: " " * len(m.group(0)), text)  # their words are not bare names
        plain.append(text)
        for w in re.findall(r"\b[a-z]+\b", text):
            lower[w] += 1
        for m in EN_CAP_WORD_RE.finditer(text):
            word = m.group(0)
            if word in EN_STOPWORDS or word in EN_TITLES:
                continue
            before = text[: m.start()].rstrip()
            (start if _en_sentence_start(before) else mid)[word] += 1
            if EN_SPEECH_AFTER_RE.match(text, m.end()):
                speaks.add(word)
            if re.search(r"\b(?:in|at|to|from|into|across|near|of|toward|towards)$", before):
                places[word] += 1

    def word_like(w: str) -> bool:
        return lower[w.lower()] > mid[w] or w.lower() in EN_PLACE_WORDS

    vouched = {w for w in {*mid, *start} if (mid[w] or w in speaks) and not word_like(w)}
    full = _en_full_names(plain, vouched)
    full = Counter({n: c for n, c in full.items() if not any(word_like(w) for w in n.split())})
    vouched.update(w for name in full for w in name.split())
    counts = Counter({w: mid[w] + (start[w] if w in vouched else 0) for w in {*mid, *start}})
    families = {n.split()[-1] for n in [*full, *titled]}
    found = [
        w for w, n in counts.items()
        if n >= min_count and places[w] * 2 < n and not word_like(w) and not (w.endswith("s") and w[:-1] in families)
    ]
    for name, n in full.items():
        given, family = name.split()  # their counts include the full name's own mentions
        if max(n, counts[given], counts[family]) >= min_count and places[given] * 2 < counts[given]:
            found.append(name)
    for name, n in titled.items():
        words = name.split()
        if n >= min_count or name in in_narration or any(name.endswith(" " + f) for f in full) or (
            len(words) > 2 and titled[" ".join(words[:2])] >= min_count  # Sir William Lucas, once, of Sir William
        ):
            found.append(name)
    size = {**counts, **full, **titled}
    return sorted(set(found), key=lambda w: (-size.get(w, 0), w))


def _en_titled(m: re.Match[str]) -> str:
    """``Mrs.  Bennet`` → ``Mrs. Bennet``; ``Sir William Lucas`` stays whole."""
    return f"{m.group('hon')}{m.group('dot')} {' '.join(m.group('name').split())}"


def _en_sentence_start(before: str) -> bool:
    return not before or before[-1] in ".!?\"“”‘’:"


def _en_full_names(narration: list[str], vouched: set[str]) -> Counter[str]:
    """Mentions of ``Given Family`` pairs. At a sentence start one of the two must be known to be a
    name (the stop words and ``-ly`` keep out ``Suddenly Pip``); mid-sentence the pair is enough."""
    full: Counter[str] = Counter()
    for text in narration:
        for m in EN_FULL_NAME_RE.finditer(text):
            given, family = m.group(1), m.group(2)
            if {given, family} & (EN_STOPWORDS | EN_TITLES) or family.lower() in EN_PLACE_WORDS or given.endswith("ly"):
                continue
            if given in vouched or family in vouched or not _en_sentence_start(text[: m.start()].rstrip()):
                full[f"{given} {family}"] += 1
    return full


def _zh_called_links(
    chapters: list[list[_Para]], tagger: Tagger, descriptors: set[str], names: dict[str, int], links: dict[str, str]
) -> None:
    """What a character is called, linked to who is called it.

    ``苏婉儿是…女儿，镇上的人都叫她婉丫头`` → 婉丫头 is an alias of the name 苏婉儿;
    ``那老道自称青松道人，孩子们都叫他疯道士`` → 青松道人 is the name, 老道 and 疯道士 aliases;
    ``一个…老渔夫…。他…，村里人都叫他陈伯`` (no subject of its own) → the latest descriptor is 陈伯.
    """
    for paras in chapters:
        for para in paras:
            text = para.para.text
            for a, b in sentence_spans(text, "zh"):
                sentence = text[a:b]
                found = sorted(
                    ZH_CALLED_RE.finditer(sentence), key=lambda m: (m.group("verb") not in ZH_SELF_NAMING, m.start())
                )
                if not found:
                    continue
                subject = _zh_called_subject(sentence[: min(m.start() for m in found)], tagger, names, descriptors)
                for m in found:
                    _zh_link_called(m, subject, text[: a + m.start()], tagger, descriptors, names, links)


def _zh_called_subject(head: str, tagger: Tagger, names: dict[str, int], descriptors: set[str]) -> str | None:
    """The one the sentence is about, when it names them before the calling verb: not a pronoun,
    not a possessor (苏婉儿的父亲名叫…), nobody else brought in (苏婉儿有个弟弟，…) or mentioned
    between them."""
    clause = ZH_CLAUSE_SPLIT_RE.split(ZH_LEAD_RE.sub("", head.strip()))[0]
    subject = _zh_subject(clause, None, tagger) if clause else None
    if subject is None or ZH_PRONOUN_RE.match(subject):
        return None
    rest = head[head.find(subject) + len(subject) :]
    if rest.startswith("的") or re.search(r"有(?:一)?[个位只条群]", rest):
        return None
    if any(n in rest for n in [*names, *descriptors] if n != subject and n not in subject):
        return None
    return subject


def _zh_link_called(
    m: re.Match[str],
    subject: str | None,
    before: str,
    tagger: Tagger,
    descriptors: set[str],
    names: dict[str, int],
    links: dict[str, str],
) -> None:
    """Link one ``叫她/自称/… Y`` to the sentence's subject (see :func:`_zh_called_links`)."""
    called = m.group("name")
    own_clause = ZH_CLAUSE_SPLIT_RE.search(m.string[: m.start()])
    if m.group("verb") in ("名叫", "叫做") and own_clause:
        subject = None  # …，名叫苏小宝: a new name in a clause of its own, not the subject's
    if subject is None:  # 他…，村里人都叫他陈伯: the latest descriptor not linked yet
        found = [(before.rfind(d), d) for d in descriptors if d in before and d not in links]
        names.setdefault(called, 0)
        if found:
            links[max(found)[1]] = called
        return
    if called == subject or links.get(called) == subject:
        return
    if subject in names or _ref_kind("zh", subject, tagger) == "name":
        names.setdefault(subject, 0)
        links.setdefault(called, subject)  # a nickname of a named character
    elif subject in links:
        links.setdefault(called, links[subject])  # 老道 is already 青松道人: 疯道士 is too
    else:
        descriptors.add(subject)
        links[subject] = called
        names.setdefault(called, 0)


def _en_called_links(chapters: list[list[_Para]], names: dict[str, int], links: dict[str, str]) -> None:
    """``Mara Quinn was seventeen. Her father … called her "Little Gull"`` → Little Gull is Mara.

    The one called is the latest name before the sentence (in the sentence is the one calling).
    """
    for paras in chapters:
        for para in paras:
            text = para.para.text
            for a, b in sentence_spans(text, "en"):
                for m in EN_CALLED_RE.finditer(text, a, b):
                    nick = m.group("name")
                    if nick in EN_STOPWORDS or nick in EN_TITLES or nick in links:
                        continue
                    found = [
                        (hit.end(), len(n), n) for n in names for hit in re.finditer(rf"\b{re.escape(n)}\b", text[:a])
                    ]
                    if found:
                        links[nick] = max(found)[2]
            _en_addressed_links(para, names, links)


EN_VOCATIVE_END_RE = re.compile(r"(?:^|,\s*)([A-Z][a-z]+)\s*[,.!?]*\s*$")
EN_SAID_TO_RE = re.compile(rf"^[^.!?\"“]{{0,60}}?\bto\s+((?:{EN_HON})\.?\s+[A-Z][a-z]+)\b")


def _en_addressed_links(para: _Para, names: dict[str, int], links: dict[str, str]) -> None:
    """``"…well, Charlotte," said Mrs. Bennet … to Miss Lucas.`` — the one a line calls by name and
    the one the attribution says it was said to are the same person: Miss Lucas is Charlotte."""
    segs = para.segments
    for i, seg in enumerate(segs[:-1]):
        if not seg.is_quote or segs[i + 1].is_quote:
            continue
        voc = EN_VOCATIVE_END_RE.search(seg.text.rstrip())
        to = EN_SAID_TO_RE.search(re.sub(rf"\b({EN_HON})\.", r"\1", segs[i + 1].text))
        if voc is None or to is None:
            continue
        given, titled = voc.group(1), " ".join(to.group(1).split())
        titled = next((n for n in names if n.replace(".", "") == titled), titled)
        if given in names and titled in names and given not in titled and titled not in links:
            links[titled] = given


def _group_names(lang: Lang, names: list[str], descriptors: set[str], links: dict[str, str], full: str = "") -> list[_Entry]:
    """Merge aliases into groups: suffix/word aliases, titles, linked descriptors."""
    entries: dict[str, _Entry] = {}
    for name in names:
        canon, aliases = _split_title(name) if lang == "en" else (name, [])
        entry = entries.setdefault(canon, _Entry(canon))
        for a in aliases:
            if a not in entry.aliases:
                entry.aliases.append(a)
    for short in sorted(entries, key=len):
        longs = [x for x in sorted(entries, key=lambda x: (-len(x), x)) if x != short and _is_short_form(lang, short, x)]
        if lang == "en" and len(longs) > 1 and all(_is_short_form(lang, x, longs[0]) for x in longs[1:]):
            longs = longs[:1]  # Elizabeth of Elizabeth Bennet / Miss Elizabeth / Miss Elizabeth Bennet: one person
        if lang == "en" and len(longs) > 1:
            misters = [x for x in longs if x.split()[0].rstrip(".") == "Mr"]
            if len(misters) == 1 and all(x.split()[0].rstrip(".") in EN_HONORIFICS for x in longs):
                longs = misters  # Bingley, in narration, is Mr. Bingley (not Miss Bingley)
            else:
                del entries[short]  # a family name (old Tobias Quinn, Mara Quinn): nobody in particular
                continue
        if longs:
            target = entries[longs[0]]
            for a in [short, *entries.pop(short).aliases]:
                if a not in target.aliases and a != target.name:
                    target.aliases.append(a)
    if lang == "en":
        _en_diminutives(entries, full)
        _en_eldest_miss(entries, full)
    for alias in sorted(a for a in links if a not in descriptors):
        _link_alias(lang, entries, alias, links[alias])
    for d in sorted(descriptors):
        if d in links and _link_alias(lang, entries, d, links[d]):
            continue
        if not any(d in e.names() or _truncated(lang, d, e) for e in entries.values()):
            entries[d] = _Entry(d, descriptor=True)
    for e in entries.values():  # Miss Elizabeth Bennet is Elizabeth Bennet by her own name
        bare = e.name.split(" ", 1)[1] if lang == "en" and e.name.startswith(("Miss ", "Ms ")) else None
        if bare and len(bare.split()) > 1:
            e.aliases = [e.name, *[a for a in e.aliases if a != bare]]
            e.name = bare
    return list(entries.values())


def _en_diminutives(entries: dict[str, _Entry], full: str) -> None:
    """``Lizzy`` and ``Eliza`` are ``Elizabeth Bennet`` when she is the only Elizabeth without an
    honorific (``Lady Catherine`` is nobody's ``Kitty``); a pet name used only in dialogue
    (``Another time, Lizzy, …``) becomes an alias too."""
    for given, shorts in EN_DIMINUTIVES.items():
        targets = [e for e in entries.values() if any(n.split()[0] == given for n in e.names())
                   and e.name.split()[0].rstrip(".") not in set(EN_HONORIFICS) - {"Miss", "Ms"}]
        if len(targets) != 1:
            continue
        dest = targets[0]
        for key in list(entries):  # Miss Lizzy, Miss Eliza Bennet: a pet name with an honorific
            words = key.split()
            if len(words) > 1 and words[0].rstrip(".") in ("Miss", "Ms", "Master") and words[1] in shorts and entries[key] is not dest:
                src = entries.pop(key)
                dest.aliases.extend(a for a in src.names() if a not in dest.names())
        for short in shorts:
            src = entries.get(short)
            if src is not None and src is not dest:
                del entries[short]
                dest.aliases.extend(a for a in src.names() if a not in dest.names())
            elif src is None and short not in dest.names() and not _entry_of(entries, short) and re.search(rf"\b{short}\b", full):
                dest.aliases.append(short)


def _en_eldest_miss(entries: dict[str, _Entry], full: str) -> None:
    """``Miss Bennet`` is the family's eldest daughter when the book says so (``the eldest Miss
    Bennet``); she is the one a mention of the eldest daughter or sister is followed by: ``her
    eldest daughter much admired … Jane was as much gratified`` → Miss Bennet is Jane."""
    for key in list(entries):
        m = re.fullmatch(r"Miss\.? ([A-Z][a-z]+)", key)
        if m is None or not re.search(rf"\beldest Miss\.? {m.group(1)}\b", full):
            continue
        given = {e.name: e for e in entries.values() if len(e.name.split()) == 1 and e is not entries[key]}
        votes: Counter[str] = Counter()
        for hit in re.finditer(r"\beldest (?:daughter|sister|girl)\b", full):
            after = full[hit.end() : hit.end() + 300]
            found = [(after.find(n), n) for n in given if re.search(rf"\b{n}\b", after)]
            if found:
                votes[min(found)[1]] += 1
        if votes:
            name, n = votes.most_common(1)[0]
            if n * 2 > sum(votes.values()):
                dest = given[name]
                dest.aliases.extend(a for a in entries.pop(key).names() if a not in dest.names())


def _entry_of(entries: dict[str, _Entry], name: str) -> _Entry | None:
    return entries.get(name) or next((e for e in entries.values() if name in e.names()), None)


def _link_alias(lang: Lang, entries: dict[str, _Entry], alias: str, target: str) -> bool:
    """Make ``alias`` a name of ``target``'s character, merging the entry ``alias`` had of its own
    (婉丫头 found as a speaker, then ``叫她婉丫头``). False when ``target`` is nobody."""
    dest = _entry_of(entries, target)
    if dest is None:
        return False
    src = _entry_of(entries, alias)
    if src is dest:
        return True
    if src is not None:
        extra = entries.pop(src.name).names()
    else:
        extra = [alias, f"the {alias}"] if lang == "en" and alias[:1].islower() else [alias]
    dest.aliases.extend(a for a in extra if a not in dest.names())
    return True


def _truncated(lang: Lang, descriptor: str, entry: _Entry) -> bool:
    """A Chinese descriptor that is the head of a longer name (青松 of 青松道人, jieba's cut)."""
    return lang == "zh" and any(n.startswith(descriptor) and 0 < len(n) - len(descriptor) <= 2 for n in entry.names())


def _given_name_aliases(groups: list[_Entry], full: str) -> None:
    """王小明 → alias 小明 when the text uses the given name on its own."""
    for e in groups:
        if len(e.name) == 3 and e.name[0] in ZH_SURNAMES and not e.descriptor:
            given = e.name[1:]
            if given not in e.aliases and given in full.replace(e.name, ""):
                e.aliases.append(given)


def _split_title(name: str) -> tuple[str, list[str]]:
    """``Grandpa Tobias`` → (``Tobias``, [``Grandpa Tobias``, ``Grandpa``]). An honorific stays:
    ``Mrs. Bennet`` is not ``Mr. Bennet``."""
    words = name.split()
    if len(words) > 1 and words[0] in EN_TITLES and words[0].rstrip(".") not in EN_HONORIFICS:
        aliases = [name] + ([words[0]] if words[0] in EN_VOCATIVE_TITLES else [])
        return " ".join(words[1:]), aliases
    return name, []


def _is_short_form(lang: Lang, short: str, long: str) -> bool:
    if lang == "zh":
        return len(short) >= 2 and long.endswith(short) and len(long) - len(short) <= 2
    sw, lw = short.split(), long.split()
    if len(sw) >= len(lw):
        return False
    if sw[0].rstrip(".") in EN_HONORIFICS:  # Sir William of Sir William Lucas, not of Lady Lucas
        return lw[0] == sw[0] and any(lw[i : i + len(sw) - 1] == sw[1:] for i in range(1, len(lw)))
    return any(lw[i : i + len(sw)] == sw for i in range(len(lw)))


def _merge_existing(existing: Sequence[Character], groups: list[_Entry]) -> list[_Entry]:
    """The user's characters first (ids kept), discovered groups merged into them by name."""
    entries = [_Entry(c.name, list(c.aliases), fixed_id=c.id, existing=c) for c in existing]
    for g in groups:
        match = next((e for e in entries if e.existing and set(e.names()) & set(g.names())), None)
        if match is None:
            entries.append(g)
    return entries


MAX_CAST = 300  # new characters kept from one book, most mentioned first
MAX_MAIN = 12


def _assign_ids(lang: Lang, entries: list[_Entry], full: str) -> _Cast:
    """Rank new characters (most mentioned first, then by first appearance), give them ids and
    roles (main / supporting / minor; descriptors are extras drawn without a sheet of their own),
    keep at most :data:`MAX_CAST`; build the lookup."""

    def first(e: _Entry) -> int:
        positions = [p for p in (full.find(n) for n in e.names()) if p >= 0]
        return min(positions) if positions else len(full)

    kept = [e for e in entries if e.existing is not None]
    mentions = _mention_counts(lang, entries, full)
    new = sorted(
        (e for e in entries if e.existing is None and first(e) < len(full)),
        key=lambda e: (e.descriptor, -mentions.get(e.name, 0), first(e), e.name),
    )
    people = [e for e in new if not e.descriptor][: MAX_CAST - len(kept)]
    new = people + [e for e in new if e.descriptor][: max(0, min(MAX_CAST // 10, MAX_CAST - len(kept) - len(people)))]
    top = max((mentions.get(e.name, 0) for e in new), default=0)
    used = {e.fixed_id for e in kept if e.fixed_id}
    n = 0
    for e in new:
        slug = re.sub(r"[^a-z0-9]+", "-", e.name.lower()).strip("-") if lang == "en" else ""
        if not slug or slug in used or slug == NARRATOR:
            n += 1
            while f"c{n:02d}" in used:
                n += 1
            slug = f"c{n:02d}"
        e.fixed_id = slug
        used.add(slug)
    ordered = kept + new
    chars = [
        e.existing or Character(
            id=e.fixed_id or "", name=e.name, aliases=e.aliases,
            role=_role(e, i, mentions.get(e.name, 0), top), group=e.descriptor and _is_group(lang, e.name),
        )
        for i, e in enumerate(ordered)
    ]
    return _make_cast(chars, {})


def _role(e: _Entry, rank: int, mentions: int, top: int) -> str:
    if e.descriptor and mentions < max(5, top // 10):
        return "extra"  # a guard who speaks twice; 行者, who is in every scene, is a character
    if rank < MAX_MAIN and mentions >= max(3, top // 4):
        return "main"
    return "minor" if mentions <= 3 else "supporting"


def _is_group(lang: Lang, name: str) -> bool:
    """众官, 二人, 军士, the soldiers: several people, or anyone of a kind."""
    if lang == "zh":
        return bool(re.match(r"^(?:众|诸|群|[二两三四五六七八九十百千数]+[人个位名])", name)) or name.endswith(("们", "众", "军", "兵", "士"))
    return world.is_group_figure(name, lang)


def _mention_counts(lang: Lang, entries: list[_Entry], full: str) -> dict[str, int]:
    """Entry name → how often any of its names occurs (one pass, longest names first)."""
    owner = {n: e.name for e in entries for n in e.names() if n}
    cast = _make_cast([Character(id=f"x{i}", name=n) for i, n in enumerate(owner)], {})
    counts: Counter[str] = Counter()
    if cast.pattern is not None:
        for m in cast.pattern.finditer(full):
            counts[owner[m.group(0)]] += 1
    return counts


def _make_cast(chars: list[Character], genders: dict[str, str]) -> _Cast:
    lookup: dict[str, str] = {}
    for c in chars:
        for n in [c.name, *c.aliases]:
            if n and n not in lookup:
                lookup[n] = c.id
    if not lookup:
        return _Cast(chars, lookup, genders, None)
    alts = "|".join(re.escape(n) for n in sorted(lookup, key=lambda x: (-len(x), x)) if len(n) > 1 or n.isascii())
    ascii_only = all(n.isascii() for n in lookup)
    singles = "".join(re.escape(n) for n in lookup if len(n) == 1 and not n.isascii())
    if singles:  # 操 is 曹操 where it opens a clause before more text (操曰), not inside 操练
        alts = "|".join(a for a in (alts, rf"(?<![\u4e00-\u9fff])[{singles}](?=[\u4e00-\u9fff]|$)") if a)
    pattern = re.compile(rf"\b(?:{alts})\b" if ascii_only else alts)
    return _Cast(chars, lookup, genders or _genders(chars), pattern, _zh_dictionary() if singles else None)


# --------------------------------------------------------------------------- gender, age, appearance


def _genders(chars: list[Character]) -> dict[str, str]:
    """Genders known from the user's cast (the discovered cast's come from :func:`_finish_cast`)."""
    return {c.id: c.voice.gender for c in chars}


def _cues_gender(lang: Lang, text: str) -> int:
    """+1 per male cue, -1 per female cue in ``text`` (a name, descriptor or appearance)."""
    low = text.lower()
    if lang == "zh":
        return sum(low.count(c) for c in MALE_CUES_ZH) - sum(low.count(c) for c in FEMALE_CUES_ZH)
    words = re.findall(r"[a-z]+", low)
    return sum(w in MALE_CUES_EN for w in words) - sum(w in FEMALE_CUES_EN for w in words)


def _age(lang: Lang, text: str) -> str:
    """child/young/adult/old/unknown from cue words and ``十岁`` / ``was eleven``."""
    years = _years(lang, text)
    if years is not None:
        return "child" if years < 13 else "young" if years < 25 else "adult" if years < 60 else "old"
    low = text.lower()

    def has(cues: tuple[str, ...]) -> bool:
        if lang == "zh":
            return any(c in low for c in cues if not c.isascii())
        return any(re.search(rf"\b{re.escape(c)}", low) for c in cues if c.isascii())

    for age, cues in (("child", CHILD_CUES), ("old", OLD_CUES), ("young", YOUNG_CUES), ("adult", ADULT_CUES)):
        if has(cues):
            return age
    return "unknown"


def _years(lang: Lang, text: str) -> int | None:
    if lang == "zh":
        m = re.search(r"([一二两三四五六七八九十]{1,3}|\d{1,3})岁", text)
        return _zh_number(m.group(1)) if m else None
    m = re.search(r"\b(?:was|is|aged)\s+(\d{1,3}|[a-z]+)\b(?!\s+(?:minutes|hours|days|feet|inches))", text)
    if not m:
        return None
    word = m.group(1)
    return int(word) if word.isdigit() else EN_NUMBER_WORDS.get(word)


def _zh_number(s: str) -> int | None:
    if s.isdigit():
        return int(s)
    if "十" in s:
        tens, _, ones = s.partition("十")
        return ZH_DIGITS.get(tens, 1) * 10 + ZH_DIGITS.get(ones, 0)
    return ZH_DIGITS.get(s)


def _narration_sentences(lang: Lang, chapters: list[list[_Para]]) -> list[str]:
    out: list[str] = []
    for paras in chapters:
        for para in paras:
            for seg in para.segments:
                if not seg.is_quote:
                    text = _seg_text(para, seg)
                    out.extend(text[a:b] for a, b in sentence_spans(text, lang))
    return out


class _Sentences:
    """Narration sentences with the cast's mentions found once (a whole novel has tens of
    thousands of sentences and hundreds of characters: no pass scans them per character)."""

    def __init__(self, cast: _Cast, sentences: list[str]) -> None:
        self.sentences = sentences
        self.mentions = [cast.mentions(s) for s in sentences]
        self.of: dict[str, list[int]] = {}
        for i, found in enumerate(self.mentions):
            for cid in dict.fromkeys(c for _, c in found):
                self.of.setdefault(cid, []).append(i)


def _appearance(lang: Lang, cast: _Cast, cid: str, index: _Sentences, gender: str = "unknown") -> tuple[str, str]:
    """(appearance, cue text) from the first sentences that describe ``cid``."""
    parts: list[str] = []
    cues: list[str] = []
    seen = 0
    sentences = index.sentences
    for i in index.of.get(cid, []):
        sentence = sentences[i]
        mentions = index.mentions[i]
        mine = [p for p, c in mentions if c == cid]
        if not mine:
            continue
        seen += 1
        others = {c for _, c in mentions if c != cid}
        if lang == "en" and mentions[0][1] != cid:
            continue
        tail = sentence[mine[0]:]
        found = _zh_appearance(tail, others, cast) if lang == "zh" else _en_appearance(tail)
        head = re.split(r"[，,；;：:]", sentence[: mine[0]])[-1] if lang == "zh" else ""
        if any(mk in head for mk in ZH_APPEARANCE_MARKERS):
            k = min(head.find(mk) for mk in ZH_APPEARANCE_MARKERS if mk in head)
            found.insert(0, head[k:] + _name_at(cast, sentence, mine[0]))
        cues.append(tail.split("，")[0] if lang == "zh" else tail)
        pm = re.match(r"(他|她)(?!们)|(He|She)\b", sentences[i + 1]) if i + 1 < len(sentences) and not others else None
        said = PRONOUN_GENDER.get(pm.group(0).lower(), "unknown") if pm else "unknown"
        if pm and (gender == "unknown" or said in ("unknown", gender)):  # "Her mind …" is not Mr. Bennet's
            nxt = sentences[i + 1]
            found.extend(_zh_appearance(nxt, set(), cast) if lang == "zh" else _en_appearance(nxt))
        for piece in found:
            if piece and piece not in parts:
                parts.append(piece)
        if seen >= 3:
            break
    sep = "，" if lang == "zh" else "; "
    text = sep.join(parts)
    return text[:MAX_APPEARANCE], " ".join(cues + parts)


def _name_at(cast: _Cast, text: str, pos: int) -> str:
    m = cast.pattern.match(text, pos) if cast.pattern else None
    return m.group(0) if m else ""


def _zh_appearance(tail: str, others: set[str], cast: _Cast) -> list[str]:
    out: list[str] = []
    for clause in ZH_CLAUSE_SPLIT_RE.split(tail.rstrip(ZH_SENTENCE_END)):
        clause = clause.strip()
        if not clause or any(c in others for _, c in cast.mentions(clause)):
            continue
        m = re.search(r"是(?:个|一个|一位|位)(.+)$", clause)
        if m:
            out.append(m.group(1))
            continue
        marks = [clause.find(mk) for mk in ZH_APPEARANCE_MARKERS if mk in clause]
        if marks:
            out.append(clause[min(marks) :])
        elif ZH_FEATURE_RE.search(clause) and not cast.mentions(clause) and not clause.startswith(("她的", "他的")):
            out.append(clause)
    return out


EN_LOOK_WORDS_RE = re.compile(
    r"\b(?:hair|eyes?|face|beard|moustache|mustache|whiskers|coat|waistcoat|dress|gown|hat|bonnet|cloak|cap|tall|short|"
    r"stout|thin|slender|handsome|pretty|beautiful|plain|figure|complexion|features|skin|wore|wearing|dressed|uniform|"
    r"boots|spectacles|gloves|ribbon|apron|shawl|lace|muslin|silk|fur|feathers?|tail|ears|grey|gray|white|black|"
    r"golden|red|blue|green|brown|old|young|lame|scar)\b", re.IGNORECASE
)


def _en_appearance(tail: str) -> list[str]:
    """Looks said after a name (with long grey hair, wore a blue coat, was a tall woman): only
    phrases that speak of hair, eyes, clothes or build — not "with Miss Bingley"."""
    found = [m.group(0).strip().rstrip(",") for m in EN_APPEARANCE_RE.finditer(tail)]
    return [re.sub(r"^(?:was|is)\s+", "", f)[:80] for f in found if EN_LOOK_WORDS_RE.search(f)][:2]


def _pronoun_votes(lang: Lang, cast: _Cast, index: _Sentences) -> Counter[tuple[str, str]]:
    """(id, gender) votes: a pronoun after a character's name in its sentence (2 points) or at the
    start of the next sentence when that one is about one character (1 point); gender ``neuter``
    for it/its/它."""
    votes: Counter[tuple[str, str]] = Counter()
    sentences = index.sentences
    for i, sentence in enumerate(sentences):
        mentions = index.mentions[i]
        if not mentions:
            continue
        first_pos, cid = mentions[0]
        nxt = sentences[i + 1] if i + 1 < len(sentences) else ""
        after = sentence[first_pos:]
        other_at = next((p - first_pos for p, c in mentions if c != cid), len(after))
        same_re, next_re = PRONOUN_RES[lang]
        m = same_re.search(after[:other_at])
        weight = 2
        if m is None and len({c for _, c in mentions}) == 1:
            m, weight = next_re.match(nxt), 1
        if m:
            votes[(cid, PRONOUN_GENDER[m.group(1).lower()])] += weight
    return votes


def _finish_cast(
    lang: Lang, cast: _Cast, request: PlanRequest, chapters: list[list[_Para]], units: list[list[_Unit]]
) -> _Cast:
    """Fill in appearance and voice of new characters (genders were needed earlier, see _chapter_units)."""
    index = _Sentences(cast, _narration_sentences(lang, chapters))
    emotions: dict[str, Counter[str]] = {}
    for chapter_units in units:
        for u in chapter_units:
            if u.kind == "quote" and u.speaker != NARRATOR:
                emotions.setdefault(u.speaker, Counter())[u.emotion] += 1
    existing = {c.id for c in request.characters.characters}
    out: list[Character] = []
    for c in cast.characters:
        if c.id in existing:
            out.append(c)
            continue
        appearance, cue_text = _appearance(lang, cast, c.id, index, cast.genders.get(c.id, "unknown"))
        epithet = _en_epithet_age(c, index.sentences) if lang == "en" else None
        age = epithet or _age(lang, " ".join([cue_text, *c.aliases, c.name]))
        temperament = _temperament(lang, emotions.get(c.id, Counter()), age)
        gender = cast.genders.get(c.id, "unknown")
        species = world.species_of(c.name, cue_text, lang, aliases=c.aliases, appearance=appearance)
        surnamed = lang == "zh" and len(c.name) in (2, 3) and c.name[0] in ZH_SURNAMES and not (
            len(c.name) == 2 and c.name[1] in "军兵卒"  # 魏兵, 曹军: a state's soldiers; 李建军 is a man
        )
        group = c.group or (not surnamed and world.is_group_figure(c.name, lang)) or (lang == "en" and _en_plural_family(c.name, cast))
        out.append(c.model_copy(update={
            "appearance": appearance,
            "voice": VoiceSpec(gender=gender, age=age, temperament=temperament),  # type: ignore[arg-type]
            "species": species,
            "group": group,
            "role": "extra" if group else c.role,
        }))
    return _Cast(out, cast.lookup, cast.genders, cast.pattern, cast.words)


def _en_plural_family(name: str, cast: _Cast) -> bool:
    """``the Miss Lucases``, ``the Miss Bennets``: several sisters by their family name."""
    last = name.split()[-1]
    if not last.endswith("s") or len(name.split()) < 2:
        return False
    stems = {last[:-1], last[:-2]} if last.endswith("es") else {last[:-1]}
    return any(n.split()[-1] in stems for n in cast.lookup if n != name and n.split())


def _en_epithet_age(c: Character, sentences: list[str]) -> str | None:
    """``old Tobias Quinn`` / ``young Elias``: an age said right before the name outweighs the cues
    of the sentences after it."""
    names = "|".join(re.escape(n) for n in sorted([c.name, *c.aliases], key=len, reverse=True) if n[:1].isupper())
    if not names:
        return None
    pattern = re.compile(rf"\b([Oo]ld|[Ee]lderly|[Yy]oung)\s+(?:{names})\b")
    m = next((m for m in map(pattern.search, sentences) if m), None)
    if m is None:
        return None
    return "young" if m.group(1).lower() == "young" else "old"


def _temperament(lang: Lang, emotions: Counter[str], age: str) -> str:
    words = TEMPERAMENT[lang]
    top = [e for e, _ in sorted(emotions.items(), key=lambda kv: (-kv[1], kv[0])) if e != "neutral"]
    if top:
        return words[top[0]]
    return words["old"] if age == "old" else words["neutral"]


EN_MALE_TITLES = frozenset({"Mr", "Sir", "Lord", "Colonel", "Captain", "Major", "General", "Monsieur", "Count", "Duke", "Reverend", "Rev", "Uncle", "Grandpa", "Grandfather", "Father", "Brother", "King", "Prince"})
EN_FEMALE_TITLES = frozenset({"Mrs", "Miss", "Ms", "Lady", "Madame", "Madam", "Mme", "Mlle", "Countess", "Duchess", "Aunt", "Auntie", "Grandma", "Granny", "Grandmother", "Mother", "Sister", "Queen", "Princess"})
ZH_FEMALE_HEADS = ("夫人", "太后", "后", "妃", "娘娘", "小姐", "姑娘", "娘", "婆", "姐", "妹", "嫂", "母", "女")
ZH_MALE_HEADS = ("将军", "丞相", "公", "王", "帝", "侯", "爷", "叔", "伯", "兄", "弟", "父", "郎", "君", "生", "翁")


def _title_gender(lang: Lang, c: Character) -> str | None:
    """A gender the way someone is named says outright: Mrs. Bennet, Sir William, 何太后, 关公."""
    for n in (c.name, *c.aliases):
        if lang == "en":
            first = n.split()[0].rstrip(".") if n.split() else ""
            if first in EN_MALE_TITLES:
                return "male"
            if first in EN_FEMALE_TITLES:
                return "female"
        elif len(n) >= 2:
            if n.endswith(ZH_FEMALE_HEADS):
                return "female"
            if n.endswith(ZH_MALE_HEADS) and not n.endswith(ZH_FEMALE_HEADS):
                return "male"
    return None


def _resolve_genders(lang: Lang, cast: _Cast, chapters: list[list[_Para]]) -> _Cast:
    """Genders for characters the user did not give one: cue words, then pronoun votes."""
    index = _Sentences(cast, _narration_sentences(lang, chapters))
    votes = _pronoun_votes(lang, cast, index)
    genders = dict(cast.genders)
    for c in cast.characters:
        if genders.get(c.id, "unknown") != "unknown":
            continue
        titled = _title_gender(lang, c)
        if titled:  # Mr. Darcy is a man whatever the pronouns near his name say
            genders[c.id] = titled
            continue
        _, cue_text = _appearance(lang, cast, c.id, index)
        score = 3 * _cues_gender(lang, " ".join([c.name, *c.aliases])) + 2 * _cues_gender(lang, cue_text)
        male, female, neuter = (votes[(c.id, g)] for g in ("male", "female", "neuter"))
        if neuter < max(male, female):
            score += male - female
        genders[c.id] = "male" if score > 0 else "female" if score < 0 else "unknown"
    return _Cast(cast.characters, cast.lookup, genders, cast.pattern, cast.words)


# --------------------------------------------------------------------------- lines


def _emotion(cue: str, quote: str) -> Emotion:
    """Emotion of a line from its attribution/beat text, else from its punctuation."""
    low = cue.lower()
    for emotion, words in EMOTION_CUES:
        if any(w in low for w in words):
            return emotion
    if quote.rstrip("”\"' ").endswith(("！", "!")):
        return "excited"
    return "neutral"


def _clean_narration(text: str, lang: Lang) -> str:
    """Trim leftover punctuation of a narration piece and end it like a sentence."""
    text = text.strip().lstrip("，,。.;；：:、 ").rstrip("，,；;：:、 —-")
    if not re.search(r"[\w\u4e00-\u9fff]", text):
        return ""
    if lang == "zh" and not text.endswith(tuple(ZH_SENTENCE_END) + ("”", "」")):
        text += "。"
    elif lang == "en" and not text.endswith((".", "!", "?", "…", "\"", "”")):
        text += "."
    return text


def _quote_text(text: str) -> str:
    """A quote's line: the comma that led into its attribution (``"Storm's coming," Mara said``)
    ends the line as a full stop once the attribution is gone."""
    if text.endswith(","):
        return text[:-1] + "."
    if text.endswith("，"):
        return text[:-1] + "。"
    return text


def _drop_en_fragment(text: str) -> str:
    """After ``said Tobias,`` the rest of that sentence (``lifting his spectacles.``) is dropped."""
    stripped = text.lstrip(" ,;:")
    if stripped[:1].islower():
        m = re.search(r"[.!?…]+[\"”’']?(?=\s|$)", stripped)
        return stripped[m.end() :] if m else ""
    return text


def _chapter_units(lang: Lang, cast: _Cast, paras: list[_Para], tagger: Tagger) -> list[_Unit]:
    """All lines of a chapter in reading order, dialogue attributed (see the module docstring)."""
    units: list[_Unit] = []
    history: list[tuple[int, str, str]] = []  # (paragraph, speaker, text) of dialogue lines
    spoke: list[tuple[int, str]] = []  # (position, speaker) for pronoun resolution
    narr_mentions = [
        m for p in paras for s in p.segments if not s.is_quote for m in cast.mentions(_seg_text(p, s), s.start)
    ]
    quote_mentions = [
        m for p in paras for s in p.segments if s.is_quote for m in cast.mentions(_seg_text(p, s), s.start)
    ] if lang == "en" else []
    prev_start = 0
    for para in paras:
        units.extend(_para_units(lang, cast, para, tagger, history, spoke, narr_mentions, quote_mentions, prev_start))
        prev_start = para.para.start
    return units


def _para_units(
    lang: Lang,
    cast: _Cast,
    para: _Para,
    tagger: Tagger,
    history: list[tuple[int, str, str]],
    spoke: list[tuple[int, str]],
    narr_mentions: list[tuple[int, str]],
    quote_mentions: list[tuple[int, str]] | None = None,
    prev_start: int = 0,
) -> list[_Unit]:
    segs = para.segments
    keep = {i: [0, len(_seg_text(para, s))] for i, s in enumerate(segs) if not s.is_quote}
    quotes: dict[int, _Unit] = {}
    last_speaker: str | None = None
    for qi, seg in enumerate(segs):
        if not seg.is_quote:
            continue
        after, before = _attributions(lang, para, qi, cast, tagger)
        if after and after.speech:
            keep[qi + 1][0] = max(keep[qi + 1][0], after.cut)
        if before and before.speech and qi - 1 in keep:
            keep[qi - 1][1] = min(keep[qi - 1][1], max(before.cut, keep[qi - 1][0]))
        chosen = _choose(after, before, last_speaker)
        if lang == "zh" and before and before.speech and _seg_text(para, segs[qi - 1]).rstrip().endswith(("：", ":")):
            chosen = before  # 靖曰：“…” — the colon hands the quote over, whatever follows it
        if lang == "zh" and before and before.speech and _zh_verse_intro(before.cue):
            chosen = _Attr(NARRATOR, 0, True, before.cue)  # 后人有诗叹曰：“…” — verse the book quotes: the narrator's
        # a paragraph that opens with the line: its subject was set by the paragraph before
        scope = para.para.start if qi > 0 else prev_start
        ctx = (cast, narr_mentions, spoke, quote_mentions or [], scope)
        speaker = _resolve_ref(chosen, ctx) if chosen and chosen.ref else None
        unnamed = before is None or not before.speech or _resolve_ref(before, ctx) is None
        if lang == "zh" and unnamed and qi + 1 < len(segs) and not segs[qi + 1].is_quote:
            speaker = _zh_revealed(cast, _seg_text(para, segs[qi + 1])) or speaker  # 一人出曰：“…”视之，乃曹操也
        own = _own_name(lang, cast, seg.text)
        if own and (speaker is None or not (chosen and chosen.speech and chosen.ref in cast.lookup)):
            speaker = own  # 其人曰：“某姓张名飞…” — who names themselves
        if speaker is None and chosen is not None and chosen.ref == "":
            speaker = last_speaker
        subjectless = bool(chosen and chosen.speech and not chosen.ref)
        if speaker is None and not (chosen and chosen.speech and chosen.ref) and not (
            subjectless and (not history or para.index - history[-1][0] > 1)
        ):
            # an attribution naming someone the cast does not know (一人, 帝) is nobody's to guess; a
            # subjectless 曰 goes on an exchange of this paragraph or the one before, no further
            speaker = _alternate(cast, para.index, history, [m for m in narr_mentions if m[0] < seg.start])
        cue = chosen.cue if chosen else ""
        emotion = _emotion(cue, seg.text)
        unit = _Unit("quote", _quote_text(seg.text), seg.start, seg.end, para.index, speaker or NARRATOR, emotion, cue=cue)
        if speaker:
            history.append((para.index, speaker, seg.text))
            spoke.append((seg.start, speaker))
            last_speaker = speaker
        quotes[qi] = unit
    return _assemble(lang, cast, para, keep, quotes)


def _zh_verse_intro(cue: str) -> bool:
    """后人有诗叹曰 / 有诗为证 / 词曰: what follows is verse the book quotes, not someone's line."""
    return bool(re.search(r"(?:有诗|诗曰|诗云|诗为证|诗叹|诗赞|诗单道|词曰|赞曰|歌曰|赋曰|偈曰)[^，。]{0,4}$", cue))


def _zh_revealed(cast: _Cast, after: str) -> str | None:
    """Who an unnamed speaker turns out to be, in the narration right after the line:
    ``进视之，乃典军校尉曹操也`` / ``观其人，乃虎贲中郎将李肃也``."""
    m = re.search(r"乃([^。！？；]{1,14}?)也", after[:50])
    if m is not None:
        found = cast.mentions(m.group(1))
        if found:
            return found[-1][1]
    m = re.search(r"(?:视之|观之|看时|其人)[^。！？]{0,30}?名([\u4e00-\u9fff])[，,]?字([\u4e00-\u9fff]{2})", after[:60])
    if m is not None:  # 进视之，乃司徒袁逢之子…：名绍，字本初
        by_zi = cast.lookup.get(m.group(2))
        owners = {cid for n, cid in cast.lookup.items() if len(n) in (2, 3) and n.endswith(m.group(1))}
        return by_zi or (next(iter(owners)) if len(owners) == 1 else None)
    return None


def _own_name(lang: Lang, cast: _Cast, quote: str) -> str | None:
    """The character a line names as its speaker: ``某姓张名飞``, ``我叫阿银``, ``My name is Quill``."""
    if lang == "zh":
        m = ZH_OWN_NAME_RE.match(quote)
        name = (m.group("sur") + m.group("given")) if m else None
        if name is None:
            intro = ZH_SELF_INTRO_RE.search(quote[:20])
            name = intro.group(1) if intro else None
    else:
        intro = EN_SELF_INTRO_RE.search(quote[:60])
        name = intro.group(1) if intro else None
    return cast.lookup.get(name) if name else None


def _choose(after: _Attr | None, before: _Attr | None, last_speaker: str | None) -> _Attr | None:
    """Priority: speech after > speech before > beat before > same speaker as the previous quote > beat after."""
    for attr in (after if after and after.speech else None, before if before and before.speech else None, before):
        if attr is not None:
            return attr
    if last_speaker:
        return _Attr("", 0, False, after.cue if after else "")
    return after


def _resolve_ref(
    attr: _Attr, ctx: tuple[_Cast, list[tuple[int, str]], list[tuple[int, str]], list[tuple[int, str]], int]
) -> str | None:
    """A reference → character id: by name/alias, or a pronoun → the latest character of that gender."""
    cast, narr_mentions, spoke, quoted, para_start = ctx
    if attr.ref in cast.lookup:
        return cast.lookup[attr.ref]
    if re.fullmatch(EN_RELATION_RE, attr.ref):  # "My dear Mr. Bennet," said his lady: the one addressed counts
        seen = [m for m in [*narr_mentions, *quoted] if m[0] < attr.pos] + [s for s in spoke if s[0] < attr.pos]
        return _en_relation(cast, attr, sorted(seen))
    if len(attr.ref) == 1 and not attr.ref.isascii() and attr.ref not in ("他", "她"):  # 嵩曰: the latest of 皇甫嵩 and 曹嵩 mentioned
        owners = {
            cid for n, cid in cast.lookup.items()
            if len(n) in (2, 3) and n.endswith(attr.ref) and (n[0] in ZH_SURNAMES or n[:2] in zh_cast.COMPOUND_SURNAMES)
        }
        if len(owners) == 1:
            return next(iter(owners))
        seen = sorted([m for m in narr_mentions if m[0] < attr.pos] + [s for s in spoke if s[0] < attr.pos])
        return next((cid for _, cid in reversed(seen) if cid in owners), None)
    if len(attr.ref) >= 2 and not attr.ref.isascii():  # 太后曰: the latest of 董太后 and 何太后 mentioned
        owners = {cid for n, cid in cast.lookup.items() if len(n) > len(attr.ref) and n.endswith(attr.ref)}
        seen = sorted([m for m in narr_mentions if m[0] < attr.pos] + [s for s in spoke if s[0] < attr.pos])
        found = next((cid for _, cid in reversed(seen) if cid in owners), None)
        if found is not None or len(owners) != 1:
            return found
        return next(iter(owners))
    gender = {"他": "male", "he": "male", "她": "female", "she": "female"}.get(attr.ref)
    if gender is None:
        return None
    candidates = sorted([m for m in narr_mentions if m[0] < attr.pos] + [s for s in spoke if s[0] < attr.pos])
    # the paragraph's narration is about its first-named person of that gender (When Jane and
    # Elizabeth were alone, … "He is just …," said she): the subject, not the latest name, is "she"
    for p, cid in candidates:
        if p >= para_start and cast.genders.get(cid) == gender and (p, cid) in narr_mentions:
            return cid
    for _, cid in reversed(candidates):
        if cast.genders.get(cid) == gender:
            return cid
    for _, cid in reversed(candidates):  # nobody of that gender: someone whose gender is unknown
        if cast.genders.get(cid, "unknown") == "unknown":
            return cid
    return None


def _en_relation(cast: _Cast, attr: _Attr, before: list[tuple[int, str]]) -> str | None:
    """``her mother`` / ``his wife`` / ``her father``: the latest character of the possessor's
    gender (anyone for ``their``) is the possessor; the speaker is ``Mrs. <their family name>``
    (mother, wife, lady) or ``Mr. <family>`` (father, husband) when the cast has exactly that."""
    owner, relation = attr.ref.split()
    title = EN_RELATIONS.get(relation, "")
    if not title:
        return None
    gender = {"her": "female", "his": "male"}.get(owner)
    for _, cid in reversed(before):
        if gender and cast.genders.get(cid, "unknown") not in (gender, "unknown"):
            continue
        char = next(c for c in cast.characters if c.id == cid)
        family = next((n.split()[-1] for n in [char.name, *char.aliases] if len(n.split()) > 1), None)
        if family is None:
            continue
        for form in (f"{title}. {family}", f"{title} {family}"):
            if form in cast.lookup and cast.lookup[form] != cid:
                return cast.lookup[form]
        return None
    return None


def _addressed(cast: _Cast, quote: str) -> str | None:
    """The one a line speaks to: a name set off as a vocative (``Come, Darcy, I must…``,
    ``小雨，快来！``, ``…, Lizzy?``); None when it addresses several or nobody."""
    if cast.pattern is None or cast.pattern.fullmatch(quote.strip(" \t.!?,;:。！？，")):
        return None  # "Bingley." answers a question; it addresses nobody
    found = {
        cast.lookup[m.group(0)] for m in cast.pattern.finditer(quote)
        if re.search(r"(?:^|[,，!！?？;；:：—]\s*|\b(?:[Dd]ear|[Mm]y)\s)$", quote[: m.start()])
        and re.match(r"\s*(?:[,，!！?？.。;；:：—]|$)", quote[m.end():])
    }
    return found.pop() if len(found) == 1 else None


def _alternate(
    cast: _Cast, para_index: int, history: list[tuple[int, str, str]], mentioned: Sequence[tuple[int, str]] = ()
) -> str | None:
    """An unattributed quote in a two-person exchange: the one addressed, else the other participant
    (someone who spoke lately, else the latest other character the narration named since the
    previous line or just before it: ``Mr. Bennet replied that he had not.`` / ``“But it is…”``)."""
    if not history or para_index - history[-1][0] > 3:
        return None
    prev_para, prev, prev_text = history[-1]
    addressed = _addressed(cast, prev_text)
    if addressed and addressed != prev:
        return addressed
    for p, speaker, _ in reversed(history[:-1]):
        if prev_para - p > 6:
            break
        if speaker != prev:
            return speaker
    for _, cid in list(reversed(mentioned))[:6]:
        if cid != prev:
            return cid
    return None


def _assemble(lang: Lang, cast: _Cast, para: _Para, keep: dict[int, list[int]], quotes: dict[int, _Unit]) -> list[_Unit]:
    """Narration sentences (attribution removed) and quotes of one paragraph, in order."""
    out: list[_Unit] = []
    for i, seg in enumerate(para.segments):
        if i in quotes:
            out.extend(_split_quote(lang, quotes[i]))
            continue
        a, b = keep[i]
        raw = _seg_text(para, seg)
        piece = raw[a:b] if a < b else ""
        base = seg.start + a
        if lang == "en" and a > 0:
            trimmed = _drop_en_fragment(piece)
            base += len(piece) - len(trimmed)
            piece = trimmed
        for s, e in sentence_spans(piece, lang):
            text = _clean_narration(piece[s:e], lang)
            if text:
                mentions = _unique(c for _, c in cast.mentions(piece[s:e]))
                out.append(_Unit("narration", text, base + s, base + e, para.index, mentions=mentions))
    return out


def _split_quote(lang: Lang, unit: _Unit) -> list[_Unit]:
    """A long speech becomes several lines of the same speaker, cut between sentences (or clauses
    of a very long one), each at most about :data:`~novelcomic.plan.text.LINE_MAX`: a bubble and a
    subtitle hold a line, not a page."""
    limit = LINE_MAX[lang]
    if text_size(unit.text, lang) <= limit * 3 // 2:
        return [unit]
    pieces: list[tuple[int, int]] = []
    for a, b in sentence_spans(unit.text, lang):
        if pieces and text_size(unit.text[pieces[-1][0] : b], lang) <= limit:
            pieces[-1] = (pieces[-1][0], b)
        else:
            pieces.append((a, b))
    if len(pieces) < 2:
        return [unit]
    out = []
    for a, b in pieces:
        text = unit.text[a:b].strip()
        if text:
            out.append(_Unit("quote", text, unit.start + a, unit.start + b, unit.para, unit.speaker, unit.emotion, cue=unit.cue))
    return out


def _unique(items: Iterable[str]) -> list[str]:
    seen: list[str] = []
    for x in items:
        if x not in seen:
            seen.append(x)
    return seen


# --------------------------------------------------------------------------- locations & props


def _zh_places(text: str, tagger: Tagger, strict: bool = False) -> list[str]:
    """Place words of a Chinese text in order (jieba ``ns`` and nouns with a place suffix); a place
    word before a title or a person (中山靖王, 涿郡人) names where someone is from, not a place the
    text is in. ``strict``: only places the text is at or goes to (a preposition of place before,
    a locative after: 至广宗, 桃园中), not 乃妇寺干政."""
    toks = tagger(text)
    out: list[str] = []
    i = 0
    while i < len(toks):
        w, f = toks[i]
        prev = toks[i - 1][0][-1:] if i else ""
        if i + 1 < len(toks) and len(toks[i + 1][0]) == 1 and toks[i + 1][0] in ZH_PLACE_SUFFIXES and f in ("ns", "n", "nr", "nz"):
            w, f = w + toks[i + 1][0], "ns"
            i += 1
        i += 1
        nxt = toks[i][0] if i < len(toks) else ""
        located = prev in zh_cast.PLACE_PREV or nxt[:1] in ZH_PLACE_TRAILING or w[-1] in ZH_PLACE_TRAILING
        if len(w) > 2 and w[-1] in ZH_PLACE_TRAILING and w[:-1][-1] in ZH_PLACE_SUFFIXES:
            w = w[:-1]
        if len(w) < 2 or w in ZH_PLACE_STOP or nxt[:1] in "王公侯人氏相" or nxt in ZH_TITLES or (strict and not located):
            continue
        # 至广宗 / 于洛阳: a place name with no place suffix, where a preposition of place says so
        if (f == "ns" and (w[-1] in ZH_PLACE_SUFFIXES or (len(w) in (2, 3) and prev in zh_cast.PLACE_PREV))) or (
            f[:1] in ("n", "s") and w[-1] in ZH_PLACE_SUFFIXES and f != "nr"
        ):
            out.append(w)
        elif f == "nr" and w[-1] in "庙寺殿村镇城":
            out.append(w)
    return out


def _en_places(text: str) -> list[str]:
    found: list[tuple[int, str]] = [(m.start(1), m.group(1).lower()) for m in EN_PLACE_RE.finditer(text)]
    for m in EN_PROPER_PLACE_RE.finditer(text):
        word = m.group(1) or m.group(2)
        if word and word not in EN_STOPWORDS and word not in EN_TITLES:
            found.append((m.start(), word))
    return [w for _, w in sorted(found)]


def _places(lang: Lang, text: str, tagger: Tagger) -> list[str]:
    return _zh_places(text, tagger) if lang == "zh" else _en_places(text)


def _scene_ranges(lang: Lang, paras: list[_Para], tagger: Tagger) -> list[list[int]]:
    """Paragraph indices of each scene: scene-break lines, time markers, travel to a new place."""
    scenes: list[list[int]] = []
    current_place: str | None = None
    for i, p in enumerate(paras):
        first = _first_sentence(p.para.text, lang)
        new = not scenes or p.para.scene_break_before
        if not new and len(scenes[-1]) >= 2:
            time_re = ZH_TIME_MARKERS_RE if lang == "zh" else EN_TIME_MARKERS_RE
            dest = _destination(lang, first, tagger)
            new = bool(time_re.search(first)) or bool(dest and current_place and dest != current_place)
        if new:
            scenes.append([i])
            current_place = None
        else:
            scenes[-1].append(i)
        if current_place is None:
            places = _places(lang, _narration_text(p), tagger)
            current_place = _destination(lang, first, tagger) or (places[0] if places else None)
    return scenes


def _destination(lang: Lang, sentence: str, tagger: Tagger) -> str | None:
    """The first place after a travel verb (``回到桃溪村``, ``ran back to the workshop``)."""
    m = (ZH_TRAVEL_RE if lang == "zh" else EN_TRAVEL_RE).search(sentence)
    if not m:
        return None
    tail = sentence[m.end() :]
    if lang == "en":
        goal = re.search(r"\b(?:to|into|toward|towards|reached|entered)\b.*", sentence[m.start() :])
        tail = goal.group(0) if goal else tail
    places = _places(lang, tail, tagger)
    return places[0] if places else None


def _narration_text(p: _Para) -> str:
    return "".join(_seg_text(p, s) + " " for s in p.segments if not s.is_quote)


def _build_locations(
    lang: Lang, request: PlanRequest, chapters: list[list[_Para]], tagger: Tagger, cast: _Cast
) -> tuple[list[Location], dict[int, dict[int, str]]]:
    """Locations used by scenes, and ``chapter → scene index → location id``."""
    locations: list[Location] = list(request.locations.locations)
    by_name = {n: loc.id for loc in locations for n in [loc.name, *loc.aliases]}
    used_ids = {loc.id for loc in locations}
    scene_locs: dict[int, dict[int, str]] = {}
    for ci, paras in enumerate(chapters):
        for si, idxs in enumerate(_scene_ranges(lang, paras, tagger)):
            text = " ".join(_narration_text(paras[i]) for i in idxs[:2])  # time and weather as the scene opens
            name = _scene_place(lang, [paras[i] for i in idxs], tagger)
            if name is None or not _is_place_name(lang, name, cast):
                continue
            if name not in by_name:
                loc = _new_location(lang, name, text, used_ids)
                locations.append(loc)
                used_ids.add(loc.id)
                by_name[name] = loc.id
            scene_locs.setdefault(ci, {})[si] = by_name[name]
    return locations, scene_locs


def _scene_place(lang: Lang, paras: list[_Para], tagger: Tagger) -> str | None:
    """The scene's main place: a destination in its first paragraph, else the most frequent."""
    if paras:
        dest = _destination(lang, _first_sentence(paras[0].para.text, lang), tagger)
        if dest:
            return dest
    counts: Counter[str] = Counter()
    order: dict[str, int] = {}
    for k, p in enumerate(paras[:4]):
        found = _places(lang, _narration_text(p), tagger)
        for w in found:
            counts[w] += 2 if k == 0 else 1
            order.setdefault(w, len(order))
    if not counts:
        return None
    return min(counts, key=lambda w: (-counts[w], order[w]))


def _new_location(lang: Lang, name: str, text: str, used: set[str]) -> Location:
    """A place the scenes go to: its kind (sea, cave, palace …), and time of day and weather only
    where the scene's text says so (:func:`novelcomic.plan.world.describe_location`)."""
    n = 1
    while f"l{n:02d}" in used:
        n += 1
    return Location(id=f"l{n:02d}", name=name, **world.describe_location(name, text, lang))


def _prop_counts(lang: Lang, chapters: list[list[_Para]], tagger: Tagger) -> Counter[str]:
    counts: Counter[str] = Counter()
    for paras in chapters:
        for p in paras:
            text = p.para.text
            if lang == "zh":  # word boundaries only (剑 but not 剑客): the plain segmenter is enough
                counts.update(w for w in _zh_words(text) if w in ZH_PROPS)
            else:
                for prop in EN_PROPS:
                    counts[prop] += len(re.findall(rf"\b{prop}s?\b", text, re.IGNORECASE))
    return counts


def _build_props(lang: Lang, request: PlanRequest, chapters: list[list[_Para]], cast: _Cast, tagger: Tagger) -> list[Prop]:
    """The user's props plus recurring prop nouns (not a character's name)."""
    props = list(request.props.props)
    known = {n for p in props for n in [p.name, *p.aliases]}
    used = {p.id for p in props}
    counts = _prop_counts(lang, chapters, tagger)
    full = "\n".join(p.para.text for paras in chapters for p in paras)
    names = sorted(
        (w for w, n in counts.items() if n >= 2 and w not in known and w not in cast.lookup),
        key=lambda w: (full.lower().find(w.lower()), w),
    )
    n = 0
    for w in names:
        n += 1
        while f"p{n:02d}" in used:
            n += 1
        props.append(Prop(id=f"p{n:02d}", name=w))
        used.add(f"p{n:02d}")
    return props


def _shot_props(lang: Lang, text: str, props: list[Prop]) -> list[str]:
    out: list[str] = []
    for p in props:
        for n in [p.name, *p.aliases]:
            hit = n in text if lang == "zh" else re.search(rf"\b{re.escape(n)}s?\b", text, re.IGNORECASE)
            if hit and p.id not in out:
                out.append(p.id)
    return out


# --------------------------------------------------------------------------- storyboard


def _storyboard(
    lang: Lang,
    chapter: ChapterText,
    paras: list[_Para],
    units: list[_Unit],
    cast: _Cast,
    props: list[Prop],
    locations: list[Location],
    scene_locs: dict[int, str],
    max_chars: int,
    max_lines: int,
) -> Storyboard:
    tagger = _zh_tagger() if lang == "zh" else _no_tagger
    ranges = _scene_ranges(lang, paras, tagger)
    loc_by_id = {loc.id: loc for loc in locations}
    scenes: list[Scene] = []
    for si, idxs in enumerate(ranges):
        members = set(idxs)
        scene_units = [u for u in units if u.para in members]
        if not scene_units:
            continue
        sid = f"s{len(scenes) + 1:02d}"
        loc = loc_by_id.get(scene_locs.get(si, ""))
        mood = _mood(" ".join(u.text for u in scene_units)) or "calm"
        groups = _group_shots(lang, scene_units, max_chars, max_lines)
        shots = []
        here = loc
        for k, g in enumerate(groups):
            here = _shot_place(lang, g, here, locations, tagger, cast)
            shot = _shot(lang, f"{sid}-{k + 1:02d}", k, g, chapter.text, cast, props, here, mood)
            if here is not None and here is not loc:
                shot.location = here.id
            shots.append(shot)
        summary = next((u.text for u in scene_units if u.kind == "narration"), scene_units[0].text)[:80]
        scenes.append(Scene(id=sid, location=loc.id if loc else None, mood=mood, summary=summary, shots=shots))
    for scene in scenes:
        if scene.shots:
            scene.shots[-1].transition = "fadeblack"
    return Storyboard(chapter=chapter.id, title=chapter.title, scenes=scenes)


def _is_place_name(lang: Lang, name: str, cast: _Cast) -> bool:
    """Not a verb and its object (入山, 围城, 投河), a way (去路), or a person's name with a place
    word after it (卓乃入园, 吕布顶)."""
    if lang != "zh":
        return not any(n.lower() == name.lower() for n in cast.lookup)  # "Rose came in" is no place
    if len(name) <= 2 and name[0] in "入伏围登上投随去出回进过往至到奔杀攻守离望下":
        return False
    if name.endswith(("路", "边", "顶")) and len(name) <= 3 or name in ZH_PLACE_STOP:
        return False
    return not any((len(n) > 1 and n in name) or (len(n) == 1 and name.startswith(n)) for n in cast.lookup)


def _shot_place(
    lang: Lang, group: list[_Unit], here: Location | None, locations: list[Location], tagger: Tagger, cast: _Cast
) -> Location | None:
    """Where a shot happens: the place its narration goes to or names (兵至广宗 / rode to
    Meryton); else where the scene last was. A place not seen before joins ``locations``."""
    text = " ".join(u.text for u in group if u.kind == "narration")
    if not text:
        return here
    found = [_destination(lang, text, tagger)] + (_zh_places(text, tagger, strict=True) if lang == "zh" else [])
    name = next((n for n in found if n and _is_place_name(lang, n, cast)), None)
    if name is None or (here is not None and name in (here.name, *here.aliases)):
        return here
    known = next((loc for loc in locations if name in (loc.name, *loc.aliases)), None)
    if known is None:
        known = _new_location(lang, name, text, {loc.id for loc in locations})
        locations.append(known)
    return known


def _group_shots(lang: Lang, units: list[_Unit], max_chars: int, max_lines: int) -> list[list[_Unit]]:
    """Cut a scene's lines into shots: an establishing shot first, then a few lines each."""
    groups: list[list[_Unit]] = []
    i = 0
    est: list[_Unit] = []
    while i < len(units) and units[i].kind == "narration" and not units[i].mentions and units[i].para == units[0].para:
        if est and (len(est) >= max_lines or _size(est + [units[i]], lang) > max_chars):
            break
        est.append(units[i])
        i += 1
    if est:
        groups.append(est)
    current: list[_Unit] = []
    for u in units[i:]:
        if current:
            too_big = len(current) >= max_lines or _size(current + [u], lang) > max_chars
            new_para = u.para != current[-1].para and _size(current, lang) >= max_chars * 0.4
            if too_big or new_para:
                groups.append(current)
                current = []
        current.append(u)
    if current:
        groups.append(current)
    return groups


def _size(units: list[_Unit], lang: Lang) -> int:
    return sum(text_size(u.text, lang) for u in units)


def _shot(
    lang: Lang, sid: str, k: int, group: list[_Unit], text: str, cast: _Cast, props: list[Prop], loc: Location | None, mood: Mood
) -> Shot:
    chars = _unique([c for u in group for c in ([u.speaker] if u.kind == "quote" and u.speaker != NARRATOR else u.mentions)])
    lines = [Line(speaker=u.speaker, text=u.text, emotion=u.emotion if u.kind == "quote" else "neutral") for u in group]
    joined = " ".join(u.text for u in group)
    shot_mood = _mood(joined, strong=True)
    return Shot(
        id=sid,
        characters=chars,
        props=_shot_props(lang, joined, props),
        camera=Camera(size=_camera(lang, k, group, chars)),
        lines=lines,
        mood=shot_mood if shot_mood and shot_mood != mood else None,
        transition="dissolve",
        image_prompt=_image_prompt(lang, group, chars, cast, loc),
        source=text[group[0].start : group[-1].end].strip(),
    )


def _camera(lang: Lang, k: int, group: list[_Unit], chars: list[str]) -> ShotSize:
    joined = " ".join(u.text for u in group)
    speakers = {u.speaker for u in group if u.kind == "quote" and u.speaker != NARRATOR}
    emotional = any(u.emotion != "neutral" for u in group if u.kind == "quote")
    if k == 0:
        return "extreme_wide" if not chars and any(w in joined for w in LANDSCAPE_WORDS) else "wide"
    if speakers:
        return "close_up" if len(speakers) == 1 and emotional else "medium"
    if any(w in joined for w in ACTION_WORDS):
        return "full"
    return "medium" if chars else "wide"


def _mood(text: str, strong: bool = False) -> Mood | None:
    """The mood with the most keyword hits (at least 2; 3 when ``strong``)."""
    low = text.lower()
    scores = [(sum(low.count(w) for w in words), -i, mood) for i, (mood, words) in enumerate(MOOD_CUES)]
    best = max(scores)
    return best[2] if best[0] >= (3 if strong else 2) else None


def _image_prompt(lang: Lang, group: list[_Unit], chars: list[str], cast: _Cast, loc: Location | None) -> str:
    """Location, characters with their look, and the shot's action sentence."""
    by_id = {c.id: c for c in cast.characters}
    parts: list[str] = []
    if loc:
        parts.append(loc.name + ("" if loc.time_of_day == "unknown" else (f"（{_zh_time(loc.time_of_day)}）" if lang == "zh" else f" ({loc.time_of_day})")))
    for cid in chars:
        c = by_id.get(cid)
        if c:
            parts.append(f"{c.name}（{c.appearance}）" if lang == "zh" and c.appearance else f"{c.name} ({c.appearance})" if c.appearance else c.name)
    action = next((u.text for u in group if u.kind == "narration"), "")
    if not action:
        speaker = next((by_id[u.speaker].name for u in group if u.speaker in by_id), "")
        action = (f"{speaker}在说话" if lang == "zh" else f"{speaker} speaking") if speaker else group[0].text
    parts.append(action)
    return ("，" if lang == "zh" else ", ").join(p for p in parts if p)[:300]


def _zh_time(time_of_day: str) -> str:
    return {"night": "夜晚", "dawn": "清晨", "dusk": "黄昏", "day": "白天"}.get(time_of_day, "")
