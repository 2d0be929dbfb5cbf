"""Turn the bytes of a novel file into text, guessing the encoding the way a reader would.

Novels downloaded from Chinese sites come as UTF-8 (with or without a BOM), GBK/GB18030, Big5
or UTF-16, never labelled. Detection order:

1. a BOM (UTF-8, UTF-16 LE/BE, UTF-32) settles it;
2. NUL bytes mean UTF-16 without a BOM (when one byte order gives plausible text) or binary data;
3. known binary signatures (PNG, zip, PDF …) and control bytes mean "not a text file";
4. strict UTF-8;
5. GBK/GB18030 and Big5 (which overlap: almost any Big5 file is also valid GBK) — each one that
   decodes is scored by the share of its non-ASCII characters that are common Chinese characters
   or punctuation, and the most plausible wins;
6. the same with a handful of bad bytes tolerated (a truncated download);
7. charset-normalizer, for everything else (Latin-1/cp1252 English text, Shift-JIS …).

Every failure is a :class:`~novelcomic.errors.NovelcomicError` with a one-line message.
"""

from __future__ import annotations

import codecs
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from novelcomic.errors import NovelcomicError

# About 1,100 of the most frequent simplified characters, then traditional forms of common
# characters that differ. Real Chinese text draws ~85-90 % of its characters from this set;
# text decoded with the wrong codec draws ~5-20 %.
_COMMON_SIMPLIFIED = (
    "的一是不了人我在有他这个们中来上大为和国地到以说时要就出会可也你对生能而子那得于着下自之年过发后作里"
    "用道行所然家种事成方多经么去法学如都同现当没动面起看定天分还进好小部其些主样理心她本前开但因只从想实日"
    "军者意无力它与长把机十民第公此已工使情明性知全三又关点正业外将两高间由问很最重并物手应战向头文体政美相"
    "见被利什二等产或新己制身果加西斯月话合回特代内信表化老给世位次度门任常先海通教儿原东声提立及比员解水名"
    "真论处走义各入几口认条平系气题活尔更别打女变四神总何电数安少报才结反受目太量再感建务做接必场件计管期市"
    "直德资命山金指克许统区保至队形社便空决治展马科司五基眼书非则听白却界达光放强即像难且权思王象完设式色路"
    "记南品住告类求据程北边死张该交规万取拉格望觉术领共确传师观清今切院让识候带导争运笑飞风步改收根干造言联"
    "持组每济车亲极林服快办议往元英士证近失转夫令准布始怎呢存未远叫台单影具罗字爱击流备兵连调深商算质团集百"
    "需价花党华城石级整府离况亚请技际约示复病息究线似官火断精满支视消越器容照须九增研写称企八功吗包片史委乎"
    "查轻易早曾除农找装广显吧阿李标谈吃图念六引历首医局突专费号尽另周较注语仅考落青随选列武红响虽推势参希古"
    "众构房半节土投某案黑维革划敌致陈律足态护七兴派孩验责营星够章音跟志底站严巴例防族供效续施留讲型料终答紧"
    "黄绝奇察母京段依批群项故按河米围江织害斗双境客纪采举杀攻父苏密低朝友诉止细愿千值仍男钱破网热助倒育属坐"
    "帝限船脸职速刻乐否刚威毛状率甚独球般普怕弹校苦创假久错承印晚兰试股拿脑预谁益阳若哪微尼继送急血惊伤素药"
    "适波夜省初喜卫源食险待述陆习置居劳财环排福纳欢雷警获模充负云停木游龙树疑层冷洲冲射略范竟句室异激汉村哈"
    "策演简卡罪判担州静退既衣您宗积余痛检差富灵协角占配征修皮挥胜降阶审沉坚善妈刘读啊超免压银买皇养伊怀执副"
    "乱抗犯追帮宣佛岁航优怪香著田铁控税左右份穿艺背阵草脚概恶块顿敢守酒岛托央户烈洋哥索胡款靠评版宝座释景顾"
    "弟登货互付伯慢欧换闻危忙核暗姐介坏讨丽良序升监临亮露永呼味野架域沙掉括舰鱼杂误湾吉减编楚肯测败屋跑梦散"
    "温困剑渐封救贵枪缺楼县尚毫移娘朋画班智亦耳恩短掌恐遗固席松秘谢鲁遇康虑幸均销钟诗藏赶剧票损忽巨炮旧端探"
    "湖录叶春乡附吸予礼港雨呀板庭妇归睛饭额含顺输摇招婚脱补谓督毒油疗旅泽材灭逐莫笔亡鲜词圣择寻厂睡博勒烟授"
    "诺伦岸奥唐卖俄炸载洛健堂旁宫喝借君禁阴园谋宋避抓荣姑孙逃牙束跳顶玉镇雪午练迫爷篇肉嘴馆遍凡础洞卷坦牛宁"
    "纸诸训私庄祖丝翻暴森塔默握戏隐熟骨访弱蒙歌店鬼软典欲萨伙遭盘爸扩盖弄雄稳忘亿刺拥徒姆杨齐赛趣曲刀床迎冰"
    "虚玩析窗醒妻透购替塞努休虎扬途侵刑绿兄迅套贸毕唯谷轮库迹尤竞街促延震弃甲伟麻川申缓潜闪售灯针哲络抵朱埃"
    "抱鼓植纯夏忍页杰筑折郑贝尊吴秀混臣雅振染盛怒舞圆搞狂措姓残秋培迷诚宽宇猛摆梅毁伸摩盟末乃悲拍丁赵尺仙妖"
    "魔怎么啦哦嗯呵哼咱俺您姑娘公子少爷小姐师兄师姐师妹掌门弟子长老宗派剑气灵力修炼丹药山洞洞府猴悟空唐僧八"
    "戒沙僧菩萨如来玉帝天宫东海龙王石猴花果水帘洞桃李轻轻慢慢忽然突然终于已经正在一直仿佛好像似乎顿时连忙赶"
    "紧微笑点头摇头叹息回答问道喊叫哭泣眼泪月光阳光星空夜晚清晨黄昏春夏秋冬雨雪风云江河湖海街道房间院子大门"
    "窗户桌椅茶杯酒杯衣服头发脸色声音身体手指双眼心中脑海"
)
_COMMON_TRADITIONAL = (
    "們個來說時國過這還會對為後與麼學發開經見現樣關點問無將於長門動車從當種頭話兩實進機間體總聽嗎氣東邊錢讓"
    "請認識變歲師幾義聲處書隊記議員難電覺業結戰場決數張親係麗愛興買賣寫讀錯聞陽陰風雲語應該萬歡連運達遠適選"
    "鐘鐵銀雖雙雜離靈靜響頁順須題顏飛飯館髮鬧鬥劍術鳥魚龍爺媽孫層帶幫廣張彈強當從徑復懷態慣應戲戶擊擔據撲擺"
    "擁數斷時書會東條來楊樓樂標樹橋機權歡歲歷殺氣決沒漢濟為燈獨現環產畫異當發盡監盤確禮種稱穩窮競筆節簡紅紙"
    "組細終經結給絕統絲經綠網緊練總線續聖聽職腦臉與興舊艦藝藥蘇處號蟲衛補製複視親覺觀觸計訂認討訓記許話該詳"
    "語說誰請諸課調談論諾謝議護讓變貝負財貨貧責貴買費資賣質趕趙車軍輕載較輪辦農迴這進遊運過達違遠適遲選遺還"
    "邊鄉醫釋針鈴鋒錄鏡長門閃閉開閒間閣關陣陳陸隊隨險隱雖雙雞離難電霧靜面頂項順須預頓領頭題額顏願類顧風飄飛"
    "餘館馬駕騎驚體髮鬼魂魔鳳鳴鳥麗麼點黨齊齒龍嘆嚇喚囉嗚鬆樣裡夠誌產歸彎徹從與舉勢勞務勝區華卻參雙吳嗎園圖圍"
    "壓壞壯夢奪婦孩學寧實寶將專尋對導屆岡島嶺巖幣幹廳張彌徵徹恆恥悅惡惱愛態慶憑憶戀戰擁擇擴攜敗敵斃斬曉暫曆"
    "會朧殘氣滅滿滯漸潛澤濃濕灣烏無煙爐爭牆狀猶獄獲瑪產畢畫當瘋療發盃盜眾睜瞭矯礙祿禍離稅穀窩竊筆築篤簽籌糧"
    "緒緣縣縮繁繫繼纔罰羅翹聯聰聲肅脅膚膽臨臺舉艱莊蔥薩藏蘭號虛螢蠻衝裝襲見規視詩誇誠誤誘說誼諒調諮謀謂謎謹"
    "證譯譽讚豐貓賊賞賴贈贏趨躍軟輔輝輩轉轟辭遙遞還邏鄰醜釣鈔鋼錦鍊鍋鎖鎮閱闆闊阻陰隸雛雜雞韓頸頻顆顯飽餐飾"
    "駐駛騙驅驗髒鬱魯鮮鯨鴻鵝鶴鹽麥黃齡猴悟唐僧豬戒沙菩薩帝宮東海龍王石花果簾洞輕慢忽然終於已經正在一直彷彿"
    "好像似乎頓時連忙趕緊微笑點頭搖歎息回答問喊叫哭泣淚光陽星空夜晚清晨昏春夏秋冬雨雪"
)
_COMMON_PUNCTUATION = "，。、；：？！“”‘’（）《》〈〉【】…—·「」『』　～－"
COMMON_CHARS: frozenset[str] = frozenset(_COMMON_SIMPLIFIED + _COMMON_TRADITIONAL + _COMMON_PUNCTUATION)

# Accept a Chinese decoding when at least this share of its non-ASCII characters is common.
_MIN_PLAUSIBILITY = 0.4
# A decoding that needs replacement characters is acceptable up to this share of the text.
_MAX_BAD_SHARE = 1 / 2000

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE: it starts with the same two bytes
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"PK\x03\x04", "a zip archive (or .docx/.epub)"),
    (b"PK\x05\x06", "an empty zip archive"),
    (b"%PDF-", "a PDF document"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7z archive"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"BZh", "a bzip2 archive"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Microsoft Office document"),
    (b"\x7fELF", "an executable"),
    (b"ID3", "an MP3 file"),
    (b"RIFF", "a RIFF (WAV/AVI/WebP) file"),
    (b"OggS", "an Ogg file"),
    (b"\x00\x00\x00\x18ftyp", "an MP4 video"),
    (b"\x00\x00\x00\x20ftyp", "an MP4 video"),
    (b"SQLite format 3\x00", "an SQLite database"),
)

# C0 control bytes that never occur in text (tab, LF, VT, FF, CR, ESC and Ctrl-Z are tolerated).
_CONTROL_BYTES = bytes(b for b in range(0x20) if b not in (0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x1A, 0x1B)) + b"\x7f"
_CONTROL_CHARS = frozenset(chr(b) for b in _CONTROL_BYTES)
_MAX_CONTROL_SHARE = 0.01

_GB_CODECS = ("gbk", "gb18030")
_BIG5_CODECS = ("big5", "cp950", "big5hkscs")

_SAMPLE = 200_000

# Unicode categories that make up little of any real text (symbols, format, private use, unassigned).
_WEIRD_CATEGORIES = frozenset({"Cc", "Cf", "Cn", "Co", "Cs", "So", "Sk"})
_MAX_WEIRD_SHARE = 0.05


CHUNK = 1 << 20  # bytes decoded at a time


class ByteSource(Protocol):
    """Bytes that can be read from the start as often as needed, a chunk at a time."""

    def chunks(self) -> Iterator[bytes]: ...

    def head(self, n: int) -> bytes: ...


@dataclass(frozen=True)
class MemorySource:
    """Bytes already in memory."""

    data: bytes

    def chunks(self) -> Iterator[bytes]:
        view = memoryview(self.data)
        for i in range(0, len(view), CHUNK):
            yield bytes(view[i : i + CHUNK])

    def head(self, n: int) -> bytes:
        return self.data[:n]


@dataclass(frozen=True)
class FileSource:
    """A file read from the start on every pass (a private copy: it does not change meanwhile)."""

    path: Path

    def chunks(self) -> Iterator[bytes]:
        with open(self.path, "rb") as fh:
            while chunk := fh.read(CHUNK):
                yield chunk

    def head(self, n: int) -> bytes:
        with open(self.path, "rb") as fh:
            return fh.read(n)


@dataclass(frozen=True)
class Decoding:
    """How a novel's bytes decode: the codec's canonical name and ``"strict"`` or ``"replace"``
    (a handful of bad bytes in an otherwise plausible text)."""

    codec: str
    errors: str = "strict"


@dataclass
class _Scan:
    """One pass of a codec over the whole source: the start of the text and a few counts."""

    sample: str  # the first _SAMPLE + 1 characters
    length: int  # characters in all
    replaced: int  # U+FFFD characters in all
    has_text: bool  # anything but whitespace after a leading BOM


def decode_novel(data: bytes, encoding: str | None = None) -> tuple[str, str]:
    """Decode a novel file's bytes; return ``(text, encoding)``.

    ``encoding`` forces a codec (any name Python knows); otherwise it is detected (see the module
    docstring). The returned encoding is the codec's canonical name (``utf-8``, ``gbk``,
    ``gb18030``, ``big5``, ``utf-16-le`` …). A leading BOM is never part of the text.

    Raises NovelcomicError for an empty file, binary data, an unknown or wrong ``encoding``, and
    bytes that no supported encoding decodes. The same as :func:`detect_encoding` and
    :func:`iter_text`, which do it a chunk at a time.
    """
    source = MemorySource(data)
    decoding = detect_encoding(source, encoding)
    return "".join(iter_text(source, decoding)), decoding.codec


def detect_encoding(source: ByteSource, encoding: str | None = None) -> Decoding:
    """How ``source`` decodes (see :func:`decode_novel`), in passes over its chunks: memory stays
    a chunk and a sample, whatever the size. Every check :func:`decode_novel` makes is made here,
    so :func:`iter_text` cannot fail afterwards on the same bytes."""
    if not source.head(1):
        raise NovelcomicError("the novel file is empty (0 bytes)")
    if encoding:
        decoding, scan = _decode_forced(source, encoding)
    else:
        decoding, scan = _detect(source)
    sample = scan.sample.removeprefix("\ufeff")
    if _control_share(sample) > _MAX_CONTROL_SHARE:
        raise NovelcomicError(
            f"not a text file (binary data): decoded as {decoding.codec} it is full of control characters"
        )
    if not scan.has_text:
        raise NovelcomicError("the novel file contains no text (only whitespace)")
    return decoding


def iter_text(source: ByteSource, decoding: Decoding) -> Iterator[str]:
    """The text of ``source``, a chunk at a time, without a leading BOM."""
    decoder = codecs.getincrementaldecoder(decoding.codec)(decoding.errors)
    first = True
    for chunk in source.chunks():
        text = decoder.decode(chunk)
        if first and text:
            text, first = text.removeprefix("\ufeff"), False
        if text:
            yield text
    text = decoder.decode(b"", final=True)
    if first:
        text = text.removeprefix("\ufeff")
    if text:
        yield text


def _scan(source: ByteSource, codec: str, strict: bool) -> _Scan | None:
    """Decode all of ``source`` with ``codec``; None when strict decoding fails."""
    decoder = codecs.getincrementaldecoder(codec)("strict" if strict else "replace")
    parts: list[str] = []
    kept = length = replaced = 0
    has_text = False
    first = True

    def take(text: str) -> None:
        nonlocal kept, length, replaced, has_text, first
        if not text:
            return
        if kept <= _SAMPLE:
            parts.append(text[: _SAMPLE + 1 - kept])
            kept += len(parts[-1])
        length += len(text)
        replaced += text.count("\ufffd")
        if not has_text:
            has_text = bool((text[1:] if first and text[0] == "\ufeff" else text).strip())
        first = False

    try:
        for chunk in source.chunks():
            take(decoder.decode(chunk))
        take(decoder.decode(b"", final=True))
    except UnicodeDecodeError:
        return None
    return _Scan(sample="".join(parts), length=length, replaced=replaced, has_text=has_text)


# --------------------------------------------------------------------------- forced encoding


def _decode_forced(source: ByteSource, encoding: str) -> tuple[Decoding, _Scan]:
    """Decode strictly with the named codec; a failure names the codec and the byte offset."""
    try:
        info = codecs.lookup(encoding)
    except LookupError:
        raise NovelcomicError(f"unknown encoding {encoding!r}") from None
    if not getattr(info, "_is_text_encoding", True):
        raise NovelcomicError(f"unknown encoding {encoding!r}: {info.name} is not a text encoding")
    name = info.name
    if name == "utf-8" and source.head(len(codecs.BOM_UTF8)) == codecs.BOM_UTF8:
        name = "utf-8-sig"
    decoder = codecs.getincrementaldecoder(name)("strict")
    parts: list[str] = []
    kept = length = 0
    has_text = False
    first = True
    fed = 0
    try:
        chunks = source.chunks()
        while True:
            chunk = next(chunks, None)
            pending = decoder.getstate()[0]
            text = decoder.decode(chunk if chunk is not None else b"", final=chunk is None)
            if text:
                if kept <= _SAMPLE:
                    parts.append(text[: _SAMPLE + 1 - kept])
                    kept += len(parts[-1])
                length += len(text)
                if not has_text:
                    has_text = bool((text[1:] if first and text[0] == "\ufeff" else text).strip())
                first = False
            if chunk is None:
                break
            fed += len(chunk)
    except UnicodeDecodeError as exc:
        bad = exc.object[exc.start : min(exc.end, exc.start + 4)].hex(" ")
        offset = fed - (len(pending) if isinstance(pending, bytes) else 0) + exc.start
        raise NovelcomicError(
            f"the novel is not valid {encoding}: cannot decode byte(s) {bad} at offset {offset}"
            " (try another encoding, or leave it out to detect it)"
        ) from None
    except UnicodeError as exc:  # e.g. a codec that refuses the input as a whole
        raise NovelcomicError(f"the novel is not valid {encoding}: {exc}") from None
    return Decoding(name), _Scan(sample="".join(parts), length=length, replaced=0, has_text=has_text)


# --------------------------------------------------------------------------- detection


def _detect(source: ByteSource) -> tuple[Decoding, _Scan]:
    head = source.head(_SAMPLE)
    for bom, name in _BOMS:
        if head.startswith(bom):
            found = _decode_candidates(source, (name,), strict=True) or _decode_candidates(
                source, (name,), strict=False
            )
            if found is None or (name != "utf-8-sig" and not _reads_as_text(found[1].sample)):
                raise NovelcomicError(
                    f"cannot decode the novel: it starts with a {name.removesuffix('-sig').upper()} byte-order mark"
                    " but the rest does not read as text in that encoding"
                )
            return found
    kind = _binary_signature(head)
    if kind:
        raise NovelcomicError(f"not a text file (binary data): it looks like {kind}")
    if any(b"\x00" in chunk for chunk in source.chunks()):
        found = _detect_utf16(source)
        if found is None:
            raise NovelcomicError("not a text file (binary data): it contains NUL bytes")
        return found
    if _control_share_bytes(head) > _MAX_CONTROL_SHARE:
        raise NovelcomicError("not a text file (binary data): it is full of control bytes")
    scan = _scan(source, "utf-8", strict=True)
    if scan is not None:
        return Decoding("utf-8"), scan
    found = (
        _best_chinese(source, strict=True) or _best_chinese(source, strict=False) or _charset_normalizer(source)
    )
    if found is None:
        raise NovelcomicError(
            "cannot decode the novel: it is not valid UTF-8, UTF-16, GB18030/GBK or Big5 text"
            " and its encoding could not be detected (pass the encoding explicitly)"
        )
    return found


def _binary_signature(data: bytes) -> str | None:
    """What a file is if it starts with a well-known binary signature, else None."""
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return kind
    return None


def _control_share_bytes(data: bytes) -> float:
    sample = data[:_SAMPLE]
    return (len(sample) - len(sample.translate(None, _CONTROL_BYTES))) / len(sample)


def _control_share(text: str) -> float:
    sample = text[:_SAMPLE]
    if not sample:
        return 0.0
    return sum(1 for c in sample if c in _CONTROL_CHARS) / len(sample)


def _detect_utf16(source: ByteSource) -> tuple[Decoding, _Scan] | None:
    """BOM-less UTF-16: the byte order whose strict decoding reads as plausible text, if any."""
    best: tuple[float, Decoding, _Scan] | None = None
    for name in ("utf-16-le", "utf-16-be"):
        scan = _scan(source, name, strict=True)  # an odd number of bytes fails: truncated data
        if scan is None:
            continue
        score = _text_plausibility(scan.sample)
        if best is None or score > best[0]:
            best = (score, Decoding(name), scan)
    if best is None or best[0] < _MIN_PLAUSIBILITY:
        return None
    return best[1], best[2]


def _reads_as_text(text: str) -> bool:
    """Whether a UTF-16/32 decoding is text: plausible Chinese/English, or (any other script)
    almost free of symbols, format, private-use and unassigned characters — which is what
    arbitrary bytes behind a byte-order mark decode to."""
    if _text_plausibility(text) >= _MIN_PLAUSIBILITY:
        return True
    sample = text[:_SAMPLE]
    weird = sum(1 for c in sample if unicodedata.category(c) in _WEIRD_CATEGORIES and not c.isspace())
    return weird <= len(sample) * _MAX_WEIRD_SHARE


def _text_plausibility(text: str) -> float:
    """Share of a sample's characters that are printable ASCII, whitespace or common Chinese."""
    sample = text[:_SAMPLE]
    if not sample:
        return 0.0
    good = sum(1 for c in sample if (" " <= c <= "~") or c in "\n\r\t" or c in COMMON_CHARS)
    return good / len(sample)


def chinese_plausibility(text: str) -> float:
    """Share of the non-ASCII, non-space characters of ``text`` that are common Chinese.

    Text decoded with the right codec scores ~0.8-0.95; the same bytes read with the wrong
    Chinese codec (GBK bytes as Big5, Big5 as GBK, UTF-8 or Latin-1 as GBK) score ~0.05-0.25.
    Pure ASCII scores 1.0.
    """
    sample = text[:_SAMPLE]
    total = common = 0
    for c in sample:
        if c <= "\x7f" or c.isspace():
            continue
        total += 1
        if c in COMMON_CHARS or "\uff01" <= c <= "\uff5e":  # full-width ASCII forms are common too
            common += 1
    return common / total if total else 1.0


def _decode_candidates(
    source: ByteSource, codec_names: Iterable[str], strict: bool
) -> tuple[Decoding, _Scan] | None:
    """The first codec of the family that decodes ``source`` (tolerating a few bad bytes if not strict)."""
    for name in codec_names:
        scan = _scan(source, name, strict)
        if scan is None:
            continue
        if strict:
            return Decoding(name), scan
        if scan.replaced <= max(2, int(scan.length * _MAX_BAD_SHARE)):
            return Decoding(name, "replace"), scan
    return None


def _best_chinese(source: ByteSource, strict: bool) -> tuple[Decoding, _Scan] | None:
    """The most plausible of UTF-8 (lenient pass only), GBK/GB18030 and Big5 decodings, if any is plausible."""
    families: list[tuple[str, ...]] = [_GB_CODECS, _BIG5_CODECS]
    if not strict:
        families.insert(0, ("utf-8",))
    best: tuple[float, Decoding, _Scan] | None = None
    for family in families:
        found = _decode_candidates(source, family, strict)
        if found is None:
            continue
        score = chinese_plausibility(found[1].sample)
        if best is None or score > best[0]:
            best = (score, *found)
    if best is None or best[0] < _MIN_PLAUSIBILITY:
        return None
    return best[1], best[2]


def _charset_normalizer(source: ByteSource) -> tuple[Decoding, _Scan] | None:
    """Last resort: charset-normalizer's guess, if it has a confident one (imported lazily).

    Among single-byte Western codecs charset-normalizer cannot tell cp1252 from cp1250/cp775 on
    a short English text; novels here are Chinese or English, so cp1252 wins when it reads the
    bytes about as cleanly as the top guess.
    """
    from charset_normalizer import from_bytes

    matches = list(from_bytes(source.head(1_000_000)))
    if not matches:
        return None
    best = matches[0]
    for m in matches:
        if "cp1252" in m.could_be_from_charset and m.chaos <= best.chaos + 0.05:
            best = m
            break
    names = ["cp1252"] if "cp1252" in best.could_be_from_charset else []
    names.append(best.encoding)
    for name in names:
        try:
            canonical = codecs.lookup(name).name
        except LookupError:
            continue
        scan = _scan(source, canonical, strict=True)
        if scan is not None:
            return Decoding(canonical), scan
    return None
