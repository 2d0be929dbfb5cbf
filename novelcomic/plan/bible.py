"""The story bible: one cast, one prop list and one location list for the whole novel.

A language model reads a novel a chunk at a time and names the same character differently in
different places (孙悟空 / 美猴王 / 猴王 / 悟空 / 石猴; "the White Rabbit" / "the Rabbit").
:class:`Bible` collects every mention and resolves them to one entry each:

- names and aliases that overlap (after normalising case, articles and punctuation) are one
  entity — including when one mention's *name* is another's *alias*; a mention that links two
  entries merges them;
- for Latin-script names, a name whose words are a subset of exactly one entry's name
  ("rabbit" ⊂ "white rabbit") is that entry;
- appearance and descriptions accumulate fragment by fragment without repeating themselves;
  gender, age and the like keep the first known value;
- the user's existing entries (``PlanRequest.characters`` / ``props`` / ``locations``) keep their
  ids and everything they say; mentions only add aliases and fill blanks. Two existing entries are
  never merged;
- new entries get ids ``c01``… / ``p01``… / ``l01``…, continuing after the existing ones, in order
  of first mention.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

from novelcomic.models import (
    NARRATOR, Character, CharactersFile, Location, LocationsFile, Prop, PropsFile, VoiceSpec,
)

Kind = Literal["character", "prop", "location"]
PREFIX: dict[str, str] = {"character": "c", "prop": "p", "location": "l"}
CJK_RE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
PUNCT_RE = re.compile(r"[\s\"'“”‘’「」『』《》()（）\[\]【】.,，。!！?？:：;；·・\-—_~]+")
ARTICLE_RE = re.compile(r"^(?:the|a|an)\s+", re.IGNORECASE)
FRAGMENT_SPLIT_RE = re.compile(r"[，,；;。\n]+|(?<=[a-z])\.\s+")
MAX_TEXT = 240
NARRATOR_NAMES = frozenset({"narrator", "旁白", "叙述者", "narration", "画外音", ""})


def normalise(name: str) -> str:
    """Comparison key for a name: lower case, no leading article, no punctuation or spaces
    (word boundaries kept as single spaces for Latin names)."""
    n = ARTICLE_RE.sub("", name.strip())
    if CJK_RE.search(n):
        return PUNCT_RE.sub("", n)
    return " ".join(w for w in PUNCT_RE.split(n.lower()) if w)


def is_narrator(name: str | None) -> bool:
    return name is None or normalise(name) in NARRATOR_NAMES or name.strip().lower() == NARRATOR


@dataclass
class _Entry:
    kind: Kind
    order: int
    names: list[str] = field(default_factory=list)  # surface forms, first seen first
    votes: Counter[str] = field(default_factory=Counter)  # times each surface form was the primary name
    links: dict[str, int] = field(default_factory=dict)  # most aliases a mention with this primary name gave
    texts: dict[str, list[str]] = field(default_factory=dict)  # field → fragments
    attrs: dict[str, Any] = field(default_factory=dict)  # first known value wins
    existing: Any = None  # the user's Character / Prop / Location
    id: str | None = None

    def keys(self) -> set[str]:
        return {k for k in (normalise(n) for n in self.names) if k}

    def add_name(self, name: str) -> None:
        name = name.strip()
        if name and normalise(name) and normalise(name) not in self.keys():
            self.names.append(name)

    def primary(self) -> str:
        if self.existing is not None:
            return self.existing.name
        best = self.names[0]
        if self.votes:
            # Most used as the name; on a tie, the name given with the most aliases (the mention
            # that knew the character best: 孙悟空 with 悟空/美猴王/石猴 over a lone 石猴).
            best = max(self.names, key=lambda n: (self.votes.get(n, 0), self.links.get(n, 0)))
        # A short form yields to the full name it is part of (小雨 → 林小雨, 悟空 → 孙悟空).
        key = normalise(best)
        fuller = [n for n in self.names if key and key != normalise(n) and key in normalise(n)]
        return max(fuller, key=lambda n: (self.votes.get(n, 0), -len(n))) if fuller else best

    def aliases(self) -> list[str]:
        main = normalise(self.primary())
        out: list[str] = []
        seen = {main}
        for n in self.names:
            k = normalise(n)
            if k and k not in seen and not is_narrator(n):
                out.append(n)
                seen.add(k)
        return out

    def add_text(self, key: str, text: str | None) -> None:
        if text:
            self.texts[key] = accumulate(self.texts.get(key, []), text)

    def set_attr(self, key: str, value: Any, unknown: Any = "unknown") -> None:
        if value is None or value == unknown:
            return
        if self.attrs.get(key) in (None, unknown):
            self.attrs[key] = value

    def absorb(self, other: "_Entry") -> None:
        for n in other.names:
            self.add_name(n)
        self.votes.update(other.votes)
        for n, k in other.links.items():
            self.links[n] = max(self.links.get(n, 0), k)
        for k, frags in other.texts.items():
            for f in frags:
                self.add_text(k, f)
        for k, v in other.attrs.items():
            self.set_attr(k, v)
        self.order = min(self.order, other.order)


def accumulate(fragments: list[str], text: str) -> list[str]:
    """Add the pieces of ``text`` that ``fragments`` do not already say; a piece that contains
    an earlier, shorter one replaces it (more detail, no repetition)."""
    out = list(fragments)
    for piece in FRAGMENT_SPLIT_RE.split(text):
        piece = piece.strip(" 　.。,，")
        key = normalise(piece)
        if not key:
            continue
        if any(key in normalise(f) for f in out):
            continue
        out = [f for f in out if normalise(f) not in key]
        out.append(piece)
    return out


def _join(fragments: list[str]) -> str:
    if not fragments:
        return ""
    sep = "，" if any(CJK_RE.search(f) for f in fragments) else ", "
    text = sep.join(fragments)
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT].rstrip(sep)


def contains_name(a: str, b: str) -> bool:
    """Whether normalised Latin names ``a`` and ``b`` name the same one: equal, or the shorter is
    the longer's last words ("rabbit" / "white rabbit", "tobias" / "grandpa tobias") or its first
    words not followed by a possessive or "of" ("alice" / "alice liddell", not "alice s sister")."""
    aw, bw = a.split(), b.split()
    if not aw or not bw:
        return False
    short, long = (aw, bw) if len(aw) <= len(bw) else (bw, aw)
    k = len(short)
    if long[-k:] == short:
        return True
    return long[:k] == short and (len(long) == k or long[k] not in ("s", "of", "and"))


class Bible:
    """Accumulates mentions; :meth:`build` assigns ids and returns the three files; after that
    :meth:`resolve` maps any mentioned name to its id."""

    def __init__(self, characters: CharactersFile | None = None, props: PropsFile | None = None,
                 locations: LocationsFile | None = None) -> None:
        self._entries: dict[str, list[_Entry]] = {"character": [], "prop": [], "location": []}
        self._counter = 0
        self._narrator = characters.narrator if characters else VoiceSpec()
        self._built = False
        for kind, items in (
            ("character", characters.characters if characters else []),
            ("prop", props.props if props else []),
            ("location", locations.locations if locations else []),
        ):
            for item in items:
                e = self._new(kind)
                e.existing, e.id = item, item.id
                for n in [item.name, *item.aliases]:
                    e.add_name(n)

    # ------------------------------------------------------------------ adding mentions

    def add_character(self, name: str, aliases: list[str] | None = None, *, appearance: str = "", description: str = "",
                      gender: str = "unknown", age: str = "unknown", temperament: str = "", voice: str = "") -> None:
        e = self._add("character", name, aliases or [])
        if e is None:
            return
        e.add_text("appearance", appearance)
        e.add_text("description", description)
        e.add_text("temperament", temperament)
        e.add_text("temperament", voice)
        e.set_attr("gender", gender)
        e.set_attr("age", age)

    def add_prop(self, name: str, aliases: list[str] | None = None, *, appearance: str = "") -> None:
        e = self._add("prop", name, aliases or [])
        if e is not None:
            e.add_text("appearance", appearance)

    def add_location(self, name: str, aliases: list[str] | None = None, *, description: str = "",
                     time_of_day: str = "unknown", interior: bool | None = None) -> None:
        e = self._add("location", name, aliases or [])
        if e is not None:
            e.add_text("description", description)
            e.set_attr("time_of_day", time_of_day)
            e.set_attr("interior", interior, unknown=None)

    def _new(self, kind: Kind) -> _Entry:
        self._counter += 1
        e = _Entry(kind, self._counter)
        self._entries[kind].append(e)
        return e

    def _add(self, kind: Kind, name: str, aliases: list[str]) -> _Entry | None:
        if self._built:
            raise RuntimeError("the bible was already built")
        name = (name or "").strip()
        if kind == "character" and is_narrator(name):
            return None
        names = [n for n in [name, *aliases] if n and n.strip() and not (kind == "character" and is_narrator(n))]
        if not names:
            return None
        keys = {normalise(n) for n in names} - {""}
        entries = self._entries[kind]
        matches = [e for e in entries if keys & e.keys()]
        if not matches:
            matches = self._contained(kind, keys)
        if not matches:
            target = self._new(kind)
        else:
            existing = [e for e in matches if e.existing is not None]
            target = next((e for e in existing if normalise(name) in e.keys()), existing[0] if existing else matches[0])
            for other in matches:
                if other is not target and other.existing is None:
                    target.absorb(other)
                    entries.remove(other)
        taken = set().union(*(e.keys() for e in entries if e is not target)) if len(entries) > 1 else set()
        for n in names:
            if normalise(n) not in taken:
                target.add_name(n)
        if normalise(name) in target.keys():
            surface = next(n for n in target.names if normalise(n) == normalise(name))
            target.votes[surface] += 1
            target.links[surface] = max(target.links.get(surface, 0), len(names) - 1)
        return target

    def _contained(self, kind: Kind, keys: set[str]) -> list[_Entry]:
        """Latin names only: the one entry whose name words contain (or are contained in) a key's."""
        latin = [k for k in keys if not CJK_RE.search(k)]
        if not latin:
            return []
        hits = []
        for e in self._entries[kind]:
            for k in latin:
                if any(contains_name(k, x) for x in e.keys() if not CJK_RE.search(x)):
                    hits.append(e)
                    break
        return hits if len(hits) == 1 else []

    # ------------------------------------------------------------------ results

    def build(self) -> tuple[CharactersFile, PropsFile, LocationsFile]:
        """Assign ids to new entries and return the cast, props and locations."""
        for kind, entries in self._entries.items():
            prefix = PREFIX[kind]
            used = {e.id for e in entries if e.id}
            n = max((int(m.group(1)) for i in used if (m := re.fullmatch(rf"{prefix}(\d+)", i or ""))), default=0)
            for e in sorted((e for e in entries if e.id is None), key=lambda e: e.order):
                n += 1
                while f"{prefix}{n:02d}" in used or f"{prefix}{n:02d}" == NARRATOR:
                    n += 1
                e.id = f"{prefix}{n:02d}"
                used.add(e.id)
        self._built = True
        chars = [self._character(e) for e in self._entries["character"]]
        props = [self._prop(e) for e in self._entries["prop"]]
        locs = [self._location(e) for e in self._entries["location"]]
        return (CharactersFile(narrator=self._narrator, characters=chars), PropsFile(props=props),
                LocationsFile(locations=locs))

    def names(self, kind: Kind) -> list[tuple[str, list[str]]]:
        """(name, aliases) of every entry of ``kind`` so far, for prompts."""
        return [(e.primary(), e.aliases()) for e in sorted(self._entries[kind], key=lambda e: e.order)]

    def resolve(self, kind: Kind, name: str | None) -> str | None:
        """The id of the entry ``name`` refers to, or None (call after :meth:`build`)."""
        if not name or not self._built:
            return None
        key = normalise(name)
        if not key:
            return None
        for e in self._entries[kind]:
            if e.id == name or key in e.keys():
                return e.id
        hits = self._contained(kind, {key})
        return hits[0].id if hits else None

    def _character(self, e: _Entry) -> Character:
        temperament = _join(e.texts.get("temperament", []))
        if e.existing is not None:
            c: Character = e.existing
            v = c.voice
            voice = v.model_copy(update={
                "gender": v.gender if v.gender != "unknown" else e.attrs.get("gender", "unknown"),
                "age": v.age if v.age != "unknown" else e.attrs.get("age", "unknown"),
                "temperament": v.temperament or temperament,
            })
            return c.model_copy(update={
                "aliases": [*c.aliases, *(a for a in e.aliases() if a not in c.aliases and a != c.name)],
                "appearance": c.appearance or _join(e.texts.get("appearance", [])),
                "description": c.description or _join(e.texts.get("description", [])),
                "voice": voice,
            })
        return Character(
            id=e.id or "", name=e.primary(), aliases=e.aliases(),
            appearance=_join(e.texts.get("appearance", [])), description=_join(e.texts.get("description", [])),
            voice=VoiceSpec(gender=e.attrs.get("gender", "unknown"), age=e.attrs.get("age", "unknown"), temperament=temperament),
        )

    def _prop(self, e: _Entry) -> Prop:
        if e.existing is not None:
            p: Prop = e.existing
            return p.model_copy(update={
                "aliases": [*p.aliases, *(a for a in e.aliases() if a not in p.aliases and a != p.name)],
                "appearance": p.appearance or _join(e.texts.get("appearance", [])),
            })
        return Prop(id=e.id or "", name=e.primary(), aliases=e.aliases(), appearance=_join(e.texts.get("appearance", [])))

    def _location(self, e: _Entry) -> Location:
        if e.existing is not None:
            loc: Location = e.existing
            return loc.model_copy(update={
                "aliases": [*loc.aliases, *(a for a in e.aliases() if a not in loc.aliases and a != loc.name)],
                "description": loc.description or _join(e.texts.get("description", [])),
                "time_of_day": loc.time_of_day if loc.time_of_day != "unknown" else e.attrs.get("time_of_day", "unknown"),
            })
        return Location(
            id=e.id or "", name=e.primary(), aliases=e.aliases(), description=_join(e.texts.get("description", [])),
            time_of_day=e.attrs.get("time_of_day", "unknown"), interior=bool(e.attrs.get("interior") or False),
        )
