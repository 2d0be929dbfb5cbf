"""Evidence that a Chinese word names a person, and which names are one person.

Pure functions over the book's text, used by the heuristic planner. They rely on how Chinese
narration is written, not on lists of any one book's people:

- **Who acts.** A person's name is the subject of clauses: it is followed by a verb of speech,
  thought or action (``玄德曰``, ``卓大怒``, ``邹靖引军``). A place follows a preposition of place
  or motion (``至广宗``, ``于温德殿``) or takes a locative (``城中``); an object follows its verb.
  :func:`person_evidence` counts both kinds of context for every candidate.
- **Glued words.** A segmenter that does not know a name glues the next word on
  (``卓大怒``, ``邹靖引``, ``玄德正``): a candidate that is a known name (or the one-character given
  name of one) plus a short tail is that name (:func:`glued_head`).
- **Courtesy names and titles.** ``姓刘，名备，字玄德`` / ``董卓，字仲颖`` / ``号``/``人称``
  make one person of several names (:func:`courtesy_links`); ``司徒王允`` is 王允 with a title
  (:func:`title_split`); ``何后`` abbreviates ``何太后`` (:func:`abbreviates`).
- **One-character given names.** Classical narration calls 曹操 ``操`` and 董卓 ``卓`` once they are
  introduced (``操曰``): :func:`single_char_aliases` finds the characters that open clauses before a
  verb and belong to exactly one known name.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Iterable

HAN = r"\u4e00-\u9fff"
# Characters that follow a subject: speech, thought, feeling, decision and action verbs and the
# adverbs that open a predicate. A word followed by these acts: it is someone.
SUBJECT_NEXT = frozenset(
    "曰道说问答笑怒喜叹谓令命引领闻见听看谢拜告骂叱喝视乃遂便即欲自率提纵挺拔请奏跪哭泣惊亦也急忙皆已又复回"
    "大为与同曾方正独却竟想心暗知恐不此在出入至到来去往坐立起奔走退杀斩擒追救举持取献受辞别叩顿拱厉高低慨"
)
# A place follows these (``至广宗``, ``于温德殿``, ``往颍川``) …
PLACE_PREV = frozenset("于在至到入往进出离回过从赴投屯守攻围取驻抵达经")
# … and takes these after it (``广宗城``, ``洛阳城中``, ``颍川界``).
PLACE_NEXT = frozenset("城中内外界境地边郡县州府殿宫门关寨营山")
# Titles that end a way of naming someone (陈留王, 何太后, 关公): no given name.
TITLE_HEADS = frozenset("王帝后妃公侯君相官主师")
# A person's name never ends in these heads of place names (温德殿, 许昌城, 青州府).
PLACE_HEADS = frozenset("殿宫州郡县城寺庙观门楼阁营寨关桥府院庄村镇山岭峰洞江河湖海川溪谷坡岗原野街巷园亭台堂")
COURTESY_RES = (
    # 姓刘，名备，字玄德 / 姓曹名操字孟德 / 姓关名羽，字长生，后改云长
    re.compile(rf"姓(?P<sur>[{HAN}]{{1,2}})[，,\s]*(?:名|讳)(?P<given>[{HAN}]{{1,2}})[，,\s]*字(?P<zi>[{HAN}]{{2}})"
               rf"(?:[，,\s]*(?:后改|改字|更字)(?P<zi2>[{HAN}]{{2}}))?"),
    # 董卓，字仲颖 / 孙坚字文台
    re.compile(rf"(?P<name>(?![名讳姓])[{HAN}]{{2,3}})[，,]?字(?P<zi>[{HAN}]{{2}})(?=[，,。；;、\s])"),
)
ALIAS_VERB_RE = re.compile(
    rf"(?P<name>[{HAN}]{{2,3}})[，,]?(?:号|人称|人呼|绰号|别号|道号|法号|唤作|称作)(?:为|作|曰)?[“「]?(?P<alias>[{HAN}]{{2,4}}?)[”」]?(?=[，,。；;、！!？?\s])"
)


@dataclass
class Evidence:
    """How a candidate is used: as an acting subject, or in the contexts of a place."""

    agent: int = 0
    place: int = 0
    total: int = 0
    listed: int = 0  # in a list with 、 (张让、段珪、曹节): people are listed with people

    @property
    def person(self) -> bool:
        """Acts at least once, and more often than it is a place."""
        return self.agent > 0 and self.agent >= self.place


def person_evidence(text: str, candidates: Iterable[str]) -> dict[str, Evidence]:
    """Count the subject and place contexts of each candidate in ``text`` (longer names first,
    so 刘焉 inside 刘焉令 is not counted twice)."""
    out: dict[str, Evidence] = {}
    for name in sorted({c for c in candidates if c}, key=len, reverse=True):
        ev = Evidence()
        start = text.find(name)
        while start >= 0:
            end = start + len(name)
            prev = text[start - 1] if start else ""
            nxt = text[end] if end < len(text) else ""
            ev.total += 1
            if nxt in SUBJECT_NEXT:
                ev.agent += 1
            if prev in PLACE_PREV or nxt in PLACE_NEXT:
                ev.place += 1
            if prev == "、" or nxt == "、":
                ev.listed += 1
            start = text.find(name, end)
        out[name] = ev
    return out


def glued_head(word: str, names: Iterable[str], counts: dict[str, int] | None = None) -> str | None:
    """The known name ``word`` starts with when the rest is a short tail glued on by the segmenter
    (邹靖引 → 邹靖, 玄德正 → 玄德), or the full name whose one-character given name it starts with
    (卓大怒 → 董卓, when 董卓 is the only known name ending in 卓, or is mentioned at least three
    times as often as the next; ``counts``: mentions per name)."""
    names = list(names)
    known = [n for n in names if n != word and len(n) >= 2 and word.startswith(n) and len(word) - len(n) <= 2
             and n not in COMPOUND_SURNAMES]  # 诸葛亮 is no 诸葛 + 亮
    if known:
        return max(known, key=len)
    if len(word) >= 2:
        owners = [n for n in names if len(n) in (2, 3) and n != word and n.endswith(word[0]) and not n.startswith(word[0])
                  and n[-1] not in TITLE_HEADS]  # 陈留王 has no given name 王 (王允 is no 陈留王 + 允)
        owners.sort(key=lambda n: -(counts or {}).get(n, 0))
        if len(owners) == 1 or (counts and len(owners) > 1 and counts.get(owners[0], 0) >= 3 * max(1, counts.get(owners[1], 0))):
            return owners[0] if word[1:] not in owners[0] else None
    return None


def title_split(word: str, names: Iterable[str]) -> tuple[str, str] | None:
    """``司徒王允`` → (``司徒``, ``王允``): a known name with two or more characters of title
    before it."""
    for n in sorted(names, key=len, reverse=True):
        if n != word and len(n) >= 2 and word.endswith(n) and len(word) - len(n) >= 2:
            return word[: -len(n)], n
    return None


def abbreviates(short: str, long: str) -> bool:
    """``何后`` abbreviates ``何太后``: same first and last character, the rest in order, one or two
    characters fewer."""
    if not (2 <= len(short) < len(long) <= len(short) + 2) or short[0] != long[0] or short[-1] != long[-1]:
        return False
    it = iter(long)
    return all(ch in it for ch in short)


def courtesy_links(text: str, surnames: frozenset[str] = frozenset()) -> dict[str, str]:
    """alias → name from ``姓X名Y字Z`` (XY; XZ and Z are aliases), ``X，字Z`` and ``X号Y`` /
    ``人称Y``. With ``surnames``, a name after a title (越骑校尉伍孚，字德瑜) starts at its surname."""
    links: dict[str, str] = {}
    for rx in COURTESY_RES:
        for m in rx.finditer(text):
            groups = m.groupdict()
            name = groups.get("name") or (groups["sur"] + groups["given"])
            if groups.get("name") and surnames and name[:2] not in COMPOUND_SURNAMES:
                if len(name) == 3 and name[0] not in surnames and name[1] in surnames:
                    name = name[1:]
                elif name[0] not in surnames:
                    continue
            compound = name[:2] if name[:2] in COMPOUND_SURNAMES and len(name) > 2 else ""
            sur = groups.get("sur") or compound or (name[0] if len(name) <= 3 else "")
            for zi in (groups.get("zi"), groups.get("zi2")):
                if zi and zi != name:
                    links.setdefault(zi, name)
                    if sur:
                        links.setdefault(sur + zi, name)
    for m in ALIAS_VERB_RE.finditer(text):
        if m.group("alias") != m.group("name"):
            links.setdefault(m.group("alias"), m.group("name"))
    return links


def single_char_aliases(text: str, names: dict[str, int], min_count: int = 2) -> dict[str, str]:
    """char → name: a one-character given name that opens clauses before a verb (``操曰``,
    ``卓大怒``) at least ``min_count`` times and ends exactly one known name with a surname (of
    several, the one mentioned most, when it is mentioned at least three times as often as the
    next). ``names``: name → mentions."""
    owners: dict[str, list[str]] = {}
    for n in names:
        if len(n) in (2, 3):
            owners.setdefault(n[-1], []).append(n)
    counts: Counter[str] = Counter()
    for m in re.finditer(rf"(?<![{HAN}])([{HAN}])(?=[{HAN}])", text):
        ch = m.group(1)
        if ch in owners and text[m.end()] in SUBJECT_NEXT:
            counts[ch] += 1
    out: dict[str, str] = {}
    for ch, n in counts.items():
        if n < min_count:
            continue
        ranked = sorted(owners[ch], key=lambda x: -names[x])
        if len(ranked) == 1 or names[ranked[0]] >= 3 * max(1, names[ranked[1]]):
            out[ch] = ranked[0]
    return out


def is_place_like(word: str) -> bool:
    """Ends in the head of a place name (温德殿, 青州, 涿县)."""
    return word[-1] in PLACE_HEADS


COMPOUND_SURNAMES = frozenset(
    {"欧阳", "司马", "诸葛", "皇甫", "夏侯", "上官", "东方", "慕容", "公孙", "令狐", "长孙", "宇文", "尉迟", "太史", "司徒",
     "司空", "端木", "轩辕", "独孤", "南宫", "西门", "百里", "呼延", "澹台", "公冶", "申屠", "淳于", "单于", "闻人"}
)


def surname_ngrams(text: str, surnames: frozenset[str], known_words: dict[str, str], min_count: int = 3) -> list[str]:
    """Names the segmenter misses (何进 cut as 何/进, 朱儁, 皇甫嵩): a surname (or compound
    surname) and one or two characters that recur at least ``min_count`` times, act as subjects
    in at least a third of their uses, are no word the segmenter's dictionary knows as something
    other than a name (``known_words``: word → part of speech), and are not mostly the start of a
    longer such name."""
    grams: Counter[str] = Counter()
    before: dict[str, Counter[str]] = {}
    bound: Counter[str] = Counter()  # uses where the "surname" ends a word with the character before it
    for m in re.finditer(rf"[{HAN}]+", text):
        run = m.group(0)
        for i, ch in enumerate(run):
            for sur in (run[i : i + 2], ch):
                if sur not in surnames and sur not in COMPOUND_SURNAMES:
                    continue
                if len(sur) == 1 and run[i : i + 2] in COMPOUND_SURNAMES:
                    continue  # 夏侯惇 is counted once, by its compound surname
                for k in (1, 2):
                    g = run[i : i + len(sur) + k]
                    if len(g) == len(sur) + k:
                        grams[g] += 1
                        before.setdefault(g, Counter())[run[i - 1] if i else ""] += 1
                        if i and run[i - 1 : i + 1] in known_words:
                            bound[g] += 1
    found: list[str] = []
    for g, n in grams.items():
        if n < min_count or (g in known_words and not known_words[g].startswith("nr")):
            continue
        prev, times = before[g].most_common(1)[0]
        if prev and times * 2 >= n:
            continue  # 明乃 in 孔明乃: its "surname" ends another word, which nearly always comes first
        if bound[g] * 2 >= n:
            continue  # 马向前 in 纵马向前 / 勒马向前: the "surname" is the object of the word before
        if len(g) == 3 and grams.get(g[1:], 0) >= 2 * n:
            continue  # 时曹操 / 闻姜维: a word glued before a name
        found.append(g)
    evidence = person_evidence(text, found)
    kept = [
        g for g in found
        if (evidence[g].agent + evidence[g].listed / 2) * 3 >= evidence[g].total and evidence[g].agent >= max(1, 2 * evidence[g].place)
    ]
    return [g for g in kept if not any(o != g and o.startswith(g) and grams[o] * 5 >= grams[g] * 4 for o in kept)]
