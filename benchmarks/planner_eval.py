"""Accuracy of the heuristic planner on the bundled example stories and on real novels.

**Bundled stories.** Runs :class:`novelcomic.plan.heuristic.HeuristicPlanner` on
``assets/examples/<story>.txt`` and compares with the hand-written labels in
``tests/data/gold/<story>.yaml``:

- character precision/recall: a predicted character matches a gold one when its name or any
  alias equals the gold name or one of its aliases;
- speaker accuracy over the gold dialogue lines: gold lines are aligned, in order, to the
  predicted lines (narration included) by text overlap; a gold line that finds no predicted
  line, or whose line went to the narrator or to the wrong character, counts as wrong.

**Real novels** (issue 13): the excerpts ``sanguo_ch1-4`` and ``pride_ch1-5`` from the shared
corpus (``<repo>/../shared/corpus`` or ``/work/shared/corpus``), ingested the way
:func:`novelcomic.ingest.create.create_project` does (decode → clean → detect language → split),
planned with the heuristic planner and compared with ``tests/data/gold/<text>.yaml``:

- cast size, and cast precision: the share of predicted characters that name a gold character,
  a gold extra (众官, the girls) or a gold ambiguous name (帝, Bennet); the rest are false
  positives (those the gold lists under ``not_characters`` are flagged as known junk);
- main recall: gold main characters that some predicted character names;
- aliases merged: a gold main character is merged when every one of its names that the planner
  uses at all is on one predicted character, and no other gold character's name is on that one;
- quotes to a character / to the right one: each gold quote is located in the chapter text
  (after its opening quote mark), the storyboard lines are located in the same text in order,
  and the quote goes to the line that covers its first character; "to a character" means that
  line has a speaker other than the narrator, "right" that the speaker's names meet the gold
  speaker's (for gold ``narrator``/``unknown`` quotes: right when the line is narration);
- lines cut mid-clause: storyboard lines whose text does not end with clause punctuation
  (``novelcomic.plan.text.ends_mid_clause`` when it exists).

It also checks the chapter split of the whole novels (``sanguo_full`` → 120, ``pride_full`` → 61,
and no chapter text containing download-site lines such as 更新时间/本章字数), and with
``--full`` plans each whole novel in a child process: plan time, peak RSS, cast size and whether
the first ten characters include the gold main characters of ``<novel>_full.yaml``.

Prints markdown tables; ``--json`` prints one JSON object instead.

    .venv/bin/python benchmarks/planner_eval.py [--full] [--json]
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import re
import resource
import subprocess
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from novelcomic.ingest.clean import clean_text, detect_language  # noqa: E402
from novelcomic.ingest.decode import decode_novel  # noqa: E402
from novelcomic.ingest.split import split_chapters  # noqa: E402
from novelcomic.models import NARRATOR, Character, Line, ProjectConfig  # noqa: E402
from novelcomic.plan.base import ChapterText, PlanRequest, PlanResult  # noqa: E402
from novelcomic.plan.heuristic import HeuristicPlanner  # noqa: E402

GOLD_DIR = REPO / "tests/data/gold"
STORIES = ("lantern-fox", "clockwork-heron")
CORPUS_TEXTS = ("sanguo_ch1-4", "pride_ch1-5")
FULL_TEXTS = ("sanguo_full", "pride_full")
MIN_RATIO = 0.6
# Text a chapter must not contain: download-site metadata lines the cleaner should drop.
BOILERPLATE = ("更新时间", "本章字数")


# =========================================================================== bundled stories


@dataclass
class StoryScore:
    """Counts for one story."""

    story: str
    predicted: int
    gold: int
    matched_pred: int
    matched_gold: int
    lines: int
    correct: int
    seconds: float


def normalise(text: str) -> str:
    """Letters and digits only, lowercased: quote marks and punctuation do not count."""
    return re.sub(r"[^\w\u4e00-\u9fff]+", "", text).lower()


def run_planner(story: str) -> tuple[dict, PlanResult, float]:
    gold = yaml.safe_load((GOLD_DIR / f"{story}.yaml").read_text(encoding="utf-8"))
    text = (REPO / gold["source"]).read_text(encoding="utf-8")
    lang = gold["language"]
    chapters = [ChapterText(c.id, c.title, c.text) for c in split_chapters(text, lang)]
    request = PlanRequest(config=ProjectConfig(title=story, language=lang), chapters=chapters)
    start = time.perf_counter()
    result = HeuristicPlanner().plan(request)
    return gold, result, time.perf_counter() - start


def names_of(c: Character) -> set[str]:
    return {c.name, *c.aliases}


def align(gold_lines: list[dict], predicted: list[Line]) -> list[Line | None]:
    """For each gold line, the predicted line it matches (monotonic, greedy by overlap)."""
    out: list[Line | None] = []
    pos = 0
    for g in gold_lines:
        target = normalise(str(g["text"]))
        best, best_i = 0.0, -1
        for i in range(pos, min(len(predicted), pos + 12)):
            cand = normalise(predicted[i].text)
            ratio = 1.0 if target and target == cand else SequenceMatcher(None, target, cand).ratio()
            if ratio > best:
                best, best_i = ratio, i
        if best >= MIN_RATIO:
            out.append(predicted[best_i])
            pos = best_i + 1
        else:
            out.append(None)
    return out


def score(story: str) -> StoryScore:
    gold, result, seconds = run_planner(story)
    chars = result.characters.characters
    gold_chars = [{g["name"], *(g.get("aliases") or [])} for g in gold["characters"]]
    matched_pred = sum(any(names_of(c) & g for g in gold_chars) for c in chars)
    matched_gold = sum(any(names_of(c) & g for c in chars) for g in gold_chars)
    by_id = {c.id: c for c in chars}
    gold_names = {g["name"]: {g["name"], *(g.get("aliases") or [])} for g in gold["characters"]}
    lines = correct = 0
    boards = list(result.storyboards.values())
    for board, chapter in zip(boards, gold["chapters"]):
        predicted = [ln for _, shot in board.shots() for ln in shot.lines]
        for g, line in zip(chapter["dialogue"], align(chapter["dialogue"], predicted)):
            lines += 1
            if line is None or line.speaker == NARRATOR or line.speaker not in by_id:
                continue
            correct += bool(names_of(by_id[line.speaker]) & gold_names[g["speaker"]])
    return StoryScore(story, len(chars), len(gold_chars), matched_pred, matched_gold, lines, correct, seconds)


def pct(a: int, b: int) -> str:
    return f"{100 * a / b:.0f}%" if b else "n/a"


def print_stories(scores: list[StoryScore]) -> None:
    print("| story | characters (pred/gold) | char precision | char recall | dialogue lines | speaker accuracy | plan time |")
    print("|---|---|---|---|---|---|---|")
    for s in scores:
        print(
            f"| {s.story} | {s.predicted}/{s.gold} | {pct(s.matched_pred, s.predicted)} | {pct(s.matched_gold, s.gold)} "
            f"| {s.lines} | {pct(s.correct, s.lines)} ({s.correct}/{s.lines}) | {s.seconds:.2f} s |"
        )
    t = StoryScore(
        "**total**", *(sum(getattr(s, f) for s in scores) for f in ("predicted", "gold", "matched_pred", "matched_gold", "lines", "correct", "seconds"))  # type: ignore[arg-type]
    )
    print(
        f"| {t.story} | {t.predicted}/{t.gold} | {pct(t.matched_pred, t.predicted)} | {pct(t.matched_gold, t.gold)} "
        f"| {t.lines} | {pct(t.correct, t.lines)} ({t.correct}/{t.lines}) | {t.seconds:.2f} s |"
    )


# =========================================================================== real novels: gold


def name_key(name: str) -> str:
    """How names are compared: case, full stops, underscores and spacing do not count
    ("Mr. Bennet" = "mr bennet")."""
    return " ".join(re.sub(r"[._]", " ", name).split()).casefold()


@dataclass
class GoldPerson:
    name: str
    names: set[str]  # name keys: the canonical name and its aliases
    refs: set[str]  # name keys of descriptive references ("his wife", 相国)
    main: bool = False
    extra: bool = False


@dataclass
class Gold:
    """A gold file for a real text (see tests/data/gold/sanguo_ch1-4.yaml for the format)."""

    key: str
    source: str
    language: str
    chapters: int | None
    people: list[GoldPerson]
    ambiguous: set[str]
    not_characters: set[str]
    quotes: list[dict]

    @property
    def characters(self) -> list[GoldPerson]:
        return [p for p in self.people if not p.extra]

    @property
    def mains(self) -> list[GoldPerson]:
        return [p for p in self.people if p.main]

    def person(self, name: str) -> GoldPerson | None:
        return next((p for p in self.people if p.name == name), None)

    def known_names(self) -> set[str]:
        """Every name key that refers to a real person or group of the text."""
        out = set(self.ambiguous)
        for p in self.people:
            out |= p.names | p.refs
        return out


def load_gold(key: str) -> Gold:
    raw = yaml.safe_load((GOLD_DIR / f"{key}.yaml").read_text(encoding="utf-8")) or {}

    def people(entries: list[dict] | None, extra: bool) -> list[GoldPerson]:
        return [
            GoldPerson(
                name=str(e["name"]),
                names={name_key(str(e["name"])), *(name_key(str(a)) for a in e.get("aliases") or [])},
                refs={name_key(str(a)) for a in e.get("refs") or []},
                main=bool(e.get("main")),
                extra=extra,
            )
            for e in entries or []
        ]

    return Gold(
        key=key,
        source=str(raw.get("source", "")),
        language=str(raw.get("language", "")),
        chapters=raw.get("chapters"),
        people=people(raw.get("characters"), False) + people(raw.get("extras"), True),
        ambiguous={name_key(str(a)) for a in raw.get("ambiguous") or []},
        not_characters={name_key(str(a)) for a in raw.get("not_characters") or []},
        quotes=list(raw.get("quotes") or []),
    )


def shared_roots() -> list[Path]:
    """Where the shared corpus may live: $NOVELCOMIC_SHARED, beside the repository (CI), /work/shared."""
    roots = [Path(p) for p in [os.environ.get("NOVELCOMIC_SHARED", "")] if p]
    return [*roots, REPO.parent / "shared", Path("/work/shared")]


def resolve_source(source: str) -> Path | None:
    """A gold ``source`` (``corpus/…``, relative to the shared directory, or a repository path)."""
    for root in [*shared_roots(), REPO]:
        path = root / source
        if path.is_file():
            return path
    return None


# =========================================================================== real novels: ingest + plan


@dataclass
class Ingested:
    language: str
    chapters: list[ChapterText]
    seconds: float


def ingest(path: Path, language: str | None = None) -> Ingested:
    """Read a novel the way ``create_project`` does: decode, clean, detect the language, split."""
    start = time.perf_counter()
    text, _ = decode_novel(path.read_bytes(), None)
    cleaned = clean_text(text)
    lang = language or detect_language(cleaned)
    chapters = [ChapterText(c.id, c.title, c.text) for c in split_chapters(cleaned, lang)]
    return Ingested(lang, chapters, time.perf_counter() - start)


def plan(doc: Ingested, title: str) -> tuple[PlanResult, float]:
    request = PlanRequest(config=ProjectConfig(title=title, language=doc.language), chapters=doc.chapters)  # type: ignore[arg-type]
    start = time.perf_counter()
    result = HeuristicPlanner().plan(request)
    return result, time.perf_counter() - start


def storyboard_lines(result: PlanResult, chapters: list[ChapterText]) -> list[Line]:
    """Every storyboard line, in chapter order (the order of ``chapters``, then any others)."""
    order = [c.id for c in chapters] + [k for k in result.storyboards if k not in {c.id for c in chapters}]
    out: list[Line] = []
    for cid in order:
        board = result.storyboards.get(cid)
        if board is not None:
            out.extend(ln for _, shot in board.shots() for ln in shot.lines)
    return out


# =========================================================================== real novels: metrics


def _keep(ch: str) -> bool:
    return ch.isalnum()


def norm_with_map(text: str) -> tuple[str, list[int]]:
    """``text`` with only letters and digits, lowercased, and for each position of ``text`` the
    number of kept characters before it (so a position maps to a normalised offset)."""
    kept: list[str] = []
    before: list[int] = []
    for ch in text:
        before.append(len(kept))
        if _keep(ch):
            kept.append(ch.lower()[:1] or ch)
    before.append(len(kept))
    return "".join(kept), before


def norm(text: str) -> str:
    return norm_with_map(text)[0]


_OPEN_QUOTES = "“\"‘'「『"
_CLOSE_PUNCT = "。！？；：，、…—.!?;:,'\"”’」』）)》〉】～~"


def local_ends_mid_clause(text: str) -> bool:
    """True when ``text`` does not end with clause punctuation (emphasis marks such as ``_…_``
    and trailing spaces do not count; ``--`` is a dash)."""
    t = text.rstrip().rstrip("_*").rstrip()
    return bool(t) and t[-1] not in _CLOSE_PUNCT and not t.endswith("--")


def ends_mid_clause_fn(language: str):
    """``novelcomic.plan.text.ends_mid_clause`` when it exists, else :func:`local_ends_mid_clause`."""
    try:
        from novelcomic.plan import text as plan_text

        fn = getattr(plan_text, "ends_mid_clause", None)
    except Exception:  # noqa: BLE001 - the module may be mid-edit
        fn = None
    if fn is None:
        return local_ends_mid_clause

    def call(text: str) -> bool:
        try:
            return bool(fn(text))
        except TypeError:
            return bool(fn(text, language))

    return call


def locate_quotes(source: str, quotes: list[dict]) -> list[int | None]:
    """For each gold quote (in reading order), the normalised offset of its first character in
    ``source``: found right after an opening quote mark (spacing free), else by its letters."""
    normed, before = norm_with_map(source)
    out: list[int | None] = []
    pos = 0  # raw position
    npos = 0  # normalised position
    for q in quotes:
        text = str(q.get("text", "")).strip()
        pattern = "".join(r"\s+" if ch.isspace() else re.escape(ch) for ch in re.sub(r"\s+", " ", text))
        m = re.compile(rf"[{re.escape(_OPEN_QUOTES)}]\s*({pattern})").search(source, pos) if text else None
        if m:
            out.append(before[m.start(1)])
            pos = m.end(1)
            npos = before[pos]
            continue
        key = norm(text)
        k = normed.find(key, npos) if key else -1
        if k < 0:
            out.append(None)
            continue
        out.append(k)
        npos = k + len(key)
        pos = bisect.bisect_left(before, npos)
    return out


def locate_lines(normed_source: str, lines: list[Line], window: int = 3000) -> list[tuple[int, int] | None]:
    """For each storyboard line, its span in the normalised source, found in order.

    A line is cut into pieces at punctuation and each piece is looked for after the previous
    one (short pieces only near it), so a line that drops or reorders a few words ("said she")
    still gets the span from its first to its last piece found."""
    spans: list[tuple[int, int] | None] = []
    ptr = 0
    for line in lines:
        pieces = [p for p in (norm(x) for x in re.split(r"[^\w\s]+", line.text)) if p]
        whole = norm(line.text)
        if not whole:
            spans.append(None)
            continue
        start = end = None
        cur = ptr
        for piece in pieces if len(pieces) > 1 else [whole]:
            if len(piece) < 2 and len(whole) >= 2:
                continue
            limit = len(normed_source) if len(piece) >= 8 else min(len(normed_source), cur + window + len(piece))
            k = normed_source.find(piece, cur, limit)
            if k < 0:
                continue
            if start is None:
                start = k
            end = k + len(piece)
            cur = end
        if start is None or end is None:
            spans.append(None)
            continue
        spans.append((start, end))
        ptr = end
    return spans


@dataclass
class CorpusScore:
    """Figures for one real text."""

    text: str
    language: str = ""
    chapters_expected: int | None = None
    chapters_found: int = 0
    ingest_seconds: float = 0.0
    plan_seconds: float = 0.0
    cast: int = 0
    cast_matched: int = 0
    false_positives: list[str] = field(default_factory=list)
    known_junk: list[str] = field(default_factory=list)
    mains: int = 0
    mains_found: list[str] = field(default_factory=list)
    mains_merged: list[str] = field(default_factory=list)
    merge_problems: dict[str, str] = field(default_factory=dict)
    quotes: int = 0
    quotes_located: int = 0
    quotes_in_lines: int = 0
    quotes_to_character: int = 0
    quotes_right: int = 0
    speech_quotes: int = 0  # gold quotes spoken by a character or extra
    speech_to_character: int = 0
    speech_right: int = 0
    wrong_quotes: list[str] = field(default_factory=list)
    lines: int = 0
    lines_mid_clause: int = 0
    mid_clause_examples: list[str] = field(default_factory=list)
    error: str = ""

    @property
    def cast_precision(self) -> float | None:
        return self.cast_matched / self.cast if self.cast else None

    @property
    def main_recall(self) -> float | None:
        return len(self.mains_found) / self.mains if self.mains else None

    @property
    def merged_share(self) -> float | None:
        return len(self.mains_merged) / self.mains if self.mains else None

    @property
    def to_character_share(self) -> float | None:
        return self.speech_to_character / self.speech_quotes if self.speech_quotes else None

    @property
    def right_share(self) -> float | None:
        return self.speech_right / self.speech_quotes if self.speech_quotes else None

    @property
    def mid_clause_share(self) -> float | None:
        return self.lines_mid_clause / self.lines if self.lines else None

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("cast_precision", "main_recall", "merged_share", "to_character_share", "right_share", "mid_clause_share"):
            d[k] = getattr(self, k)
        return d


def cast_figures(gold: Gold, chars: list[Character], out: CorpusScore) -> None:
    """Cast size, precision, main recall and merged mains (see the module docstring)."""
    known = gold.known_names()
    names_by_id = {c.id: {name_key(n) for n in names_of(c) if n} for c in chars}
    out.cast = len(chars)
    for c in chars:
        if names_by_id[c.id] & known:
            out.cast_matched += 1
        else:
            label = c.name if not c.aliases else f"{c.name} ({', '.join(c.aliases)})"
            out.false_positives.append(label)
            if names_by_id[c.id] & gold.not_characters:
                out.known_junk.append(label)
    ids_by_name: dict[str, set[str]] = {}
    for cid, names in names_by_id.items():
        for n in names:
            ids_by_name.setdefault(n, set()).add(cid)
    others = {p.name: p.names for p in gold.characters}
    out.mains = len(gold.mains)
    for p in gold.mains:
        used = sorted(n for n in p.names if n in ids_by_name)
        if not used:
            out.merge_problems[p.name] = "not found"
            continue
        out.mains_found.append(p.name)
        ids = set().union(*(ids_by_name[n] for n in used))
        if len(ids) > 1:
            spread = "; ".join(f"{cid}: {'/'.join(sorted(names_by_id[cid] & p.names))}" for cid in sorted(ids))
            out.merge_problems[p.name] = f"split over {len(ids)} ids ({spread})"
            continue
        (cid,) = ids
        clash = [name for name, names in others.items() if name != p.name and names & names_by_id[cid]]
        if clash:
            out.merge_problems[p.name] = f"{cid} also names {', '.join(clash)}"
            continue
        out.mains_merged.append(p.name)


def quote_figures(gold: Gold, doc: Ingested, result: PlanResult, out: CorpusScore) -> None:
    """Quotes to a character and to the right one, over the gold quotes of real speakers."""
    source = "\n\n".join(c.text for c in doc.chapters)
    normed, _ = norm_with_map(source)
    lines = storyboard_lines(result, doc.chapters)
    spans = locate_lines(normed, lines)
    located = [(s, i) for i, s in enumerate(spans) if s is not None]
    starts = [s[0] for s, _ in located]
    by_id = {c.id: c for c in result.characters.characters}
    offsets = locate_quotes(source, gold.quotes)
    out.quotes = len(gold.quotes)
    for q, off in zip(gold.quotes, offsets):
        speaker = str(q.get("speaker", ""))
        person = gold.person(speaker)
        speech = person is not None
        out.speech_quotes += speech
        if off is None:
            out.wrong_quotes.append(f"[not in text] {q.get('text')}")
            continue
        out.quotes_located += 1
        line = None
        j = bisect.bisect_right(starts, off) - 1
        if j >= 0 and off < located[j][0][1]:
            line = lines[located[j][1]]
        elif j + 1 < len(located) and located[j + 1][0][0] <= off + 2:
            line = lines[located[j + 1][1]]  # the line dropped the quote's first letter or two
        if line is None:
            if speech:
                out.wrong_quotes.append(f"[no line] {q.get('text')} — {speaker}")
            continue
        out.quotes_in_lines += 1
        given = line.speaker != NARRATOR
        predicted = by_id.get(line.speaker)
        right = (
            (not given)
            if not speech
            else bool(predicted and person and {name_key(n) for n in names_of(predicted)} & (person.names | person.refs))
        )
        out.quotes_to_character += given
        out.quotes_right += right
        if speech:
            out.speech_to_character += given
            out.speech_right += right
        if not right and len(out.wrong_quotes) < 400:
            got = "narrator" if not given else (predicted.name if predicted else line.speaker)
            out.wrong_quotes.append(f"{q.get('text')} — gold {speaker}, got {got}")


def line_figures(doc: Ingested, result: PlanResult, out: CorpusScore) -> None:
    mid = ends_mid_clause_fn(doc.language)
    for line in storyboard_lines(result, doc.chapters):
        out.lines += 1
        if mid(line.text):
            out.lines_mid_clause += 1
            if len(out.mid_clause_examples) < 8:
                out.mid_clause_examples.append(line.text[-40:])


def score_corpus(key: str, path: Path | None = None) -> CorpusScore:
    """All the figures for the real text ``key`` (read from ``path``, default: the gold file's
    ``source`` in the shared corpus); never raises (errors land in ``.error``)."""
    out = CorpusScore(key)
    try:
        gold = load_gold(key)
        out.chapters_expected = gold.chapters
        path = path or resolve_source(gold.source)
        if path is None:
            out.error = f"{gold.source} not found under {', '.join(str(r) for r in shared_roots())}"
            return out
        doc = ingest(path)
        out.language, out.chapters_found, out.ingest_seconds = doc.language, len(doc.chapters), doc.seconds
        result, out.plan_seconds = plan(doc, key)
    except Exception as exc:  # noqa: BLE001 - a broken planner is a result, not a crash
        out.error = f"{type(exc).__name__}: {exc}"
        return out
    for step in (
        lambda: cast_figures(gold, result.characters.characters, out),
        lambda: quote_figures(gold, doc, result, out),
        lambda: line_figures(doc, result, out),
    ):
        try:
            step()
        except Exception as exc:  # noqa: BLE001
            out.error += f"{type(exc).__name__}: {exc}; "
    return out


# =========================================================================== whole novels


@dataclass
class SplitCheck:
    text: str
    expected: int | None
    found: int = 0
    boilerplate_chapters: list[str] = field(default_factory=list)
    seconds: float = 0.0
    error: str = ""

    @property
    def exact(self) -> bool:
        return not self.error and self.found == self.expected and not self.boilerplate_chapters


def check_split(key: str) -> SplitCheck:
    out = SplitCheck(key, None)
    try:
        gold = load_gold(key)
        out.expected = gold.chapters
        path = resolve_source(gold.source)
        if path is None:
            out.error = f"{gold.source} not found"
            return out
        doc = ingest(path)
        out.found, out.seconds = len(doc.chapters), doc.seconds
        out.boilerplate_chapters = [c.id for c in doc.chapters if any(b in c.text or b in c.title for b in BOILERPLATE)]
    except Exception as exc:  # noqa: BLE001
        out.error = f"{type(exc).__name__}: {exc}"
    return out


@dataclass
class FullPlan:
    text: str
    chapters: int = 0
    cast: int = 0
    ingest_seconds: float = 0.0
    plan_seconds: float = 0.0
    wall_seconds: float = 0.0
    peak_rss_mb: float = 0.0
    first_ten: list[str] = field(default_factory=list)
    mains: list[str] = field(default_factory=list)
    mains_in_first_ten: list[str] = field(default_factory=list)
    error: str = ""


def _child_plan(key: str) -> None:
    """Child-process side of ``--full``: plan the whole novel, print one JSON line."""
    out: dict[str, Any] = {"text": key}
    try:
        gold = load_gold(key)
        path = resolve_source(gold.source)
        if path is None:
            raise FileNotFoundError(gold.source)
        doc = ingest(path)
        result, seconds = plan(doc, key)
        chars = result.characters.characters
        out.update(
            chapters=len(doc.chapters),
            cast=len(chars),
            ingest_seconds=doc.seconds,
            plan_seconds=seconds,
            first_ten=[f"{c.id}:{'/'.join([c.name, *c.aliases])}" for c in chars[:10]],
        )
        first = [{name_key(n) for n in names_of(c)} for c in chars[:10]]
        out["mains"] = [p.name for p in gold.mains]
        out["mains_in_first_ten"] = [p.name for p in gold.mains if any(p.names & f for f in first)]
    except Exception as exc:  # noqa: BLE001
        out["error"] = f"{type(exc).__name__}: {exc}"
        traceback.print_exc(file=sys.stderr)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out, ensure_ascii=False))


def plan_full(key: str, timeout: float) -> FullPlan:
    """Plan a whole novel in a child process and measure its wall time and peak RSS."""
    out = FullPlan(key)
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--child", key],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=REPO,
        )
    except subprocess.TimeoutExpired:
        out.error = f"timed out after {timeout:.0f} s"
        out.wall_seconds = time.perf_counter() - start
        return out
    out.wall_seconds = time.perf_counter() - start
    # RUSAGE_CHILDREN is the largest child so far: a fallback when the child could not report.
    children_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    last = proc.stdout.strip().splitlines()[-1:] if proc.stdout.strip() else []
    try:
        data = json.loads(last[0]) if last else {}
    except json.JSONDecodeError:
        data = {}
    for k, v in data.items():
        if hasattr(out, k):
            setattr(out, k, v)
    if not data:
        out.peak_rss_mb = children_rss
        out.error = f"child exited {proc.returncode}: {proc.stderr.strip()[-300:]}"
    elif proc.returncode and not out.error:
        out.error = f"child exited {proc.returncode}"
    return out


# =========================================================================== report


def _p(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.0f}%"


def print_corpus(scores: list[CorpusScore], verbose: bool) -> None:
    print("\n### Real excerpts (issue 13)\n")
    print(
        "| text | chapters | cast | cast precision | main recall | mains merged | quotes to a character "
        "| quotes to the right one | lines cut mid-clause | plan time |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for s in scores:
        if s.error and not s.cast:
            print(f"| {s.text} | error: {s.error} | | | | | | | | |")
            continue
        print(
            f"| {s.text} | {s.chapters_found}/{s.chapters_expected} | {s.cast} "
            f"| {_p(s.cast_precision)} ({s.cast_matched}/{s.cast}) "
            f"| {_p(s.main_recall)} ({len(s.mains_found)}/{s.mains}) "
            f"| {_p(s.merged_share)} ({len(s.mains_merged)}/{s.mains}) "
            f"| {_p(s.to_character_share)} ({s.speech_to_character}/{s.speech_quotes}) "
            f"| {_p(s.right_share)} ({s.speech_right}/{s.speech_quotes}) "
            f"| {_p(s.mid_clause_share)} ({s.lines_mid_clause}/{s.lines}) | {s.plan_seconds:.2f} s |"
        )
    for s in scores:
        if s.error:
            print(f"\n{s.text}: error: {s.error}")
        print(f"\n**{s.text}**: main characters not merged: " + (", ".join(f"{k}: {v}" for k, v in s.merge_problems.items()) or "none"))
        fp = s.false_positives if verbose else s.false_positives[:25]
        more = "" if verbose or len(s.false_positives) <= 25 else f" … (+{len(s.false_positives) - 25})"
        print(f"- false positives ({len(s.false_positives)}, {len(s.known_junk)} listed as not_characters): {', '.join(fp)}{more}")
        print(f"- gold quotes located in the text: {s.quotes_located}/{s.quotes}; covered by a storyboard line: {s.quotes_in_lines}")
        wrong = s.wrong_quotes if verbose else s.wrong_quotes[:10]
        if wrong:
            print(f"- wrong quotes ({len(s.wrong_quotes)}), e.g.: " + "; ".join(wrong))
        if s.mid_clause_examples:
            print("- lines cut mid-clause, e.g.: " + " | ".join(f"…{t}" for t in s.mid_clause_examples[:4]))


def print_splits(checks: list[SplitCheck]) -> None:
    print("\n### Chapter split of the whole novels\n")
    print("| text | chapters expected | found | chapters with 更新时间/本章字数 | exact | ingest time |")
    print("|---|---|---|---|---|---|")
    for c in checks:
        if c.error:
            print(f"| {c.text} | {c.expected} | error: {c.error} | | no | |")
            continue
        bad = ", ".join(c.boilerplate_chapters[:8]) + (" …" if len(c.boilerplate_chapters) > 8 else "") or "none"
        print(f"| {c.text} | {c.expected} | {c.found} | {len(c.boilerplate_chapters)} ({bad}) | {'yes' if c.exact else 'no'} | {c.seconds:.2f} s |")


def print_full(plans: list[FullPlan]) -> None:
    print("\n### Whole-novel plan (--full)\n")
    print("| text | chapters | cast | plan time | wall time | peak RSS | mains in the first 10 ids | first 10 ids |")
    print("|---|---|---|---|---|---|---|---|")
    for f in plans:
        missing = [m for m in f.mains if m not in f.mains_in_first_ten]
        mains = f"{len(f.mains_in_first_ten)}/{len(f.mains)}" + (f" (missing {', '.join(missing)})" if missing else "")
        err = f" error: {f.error}" if f.error else ""
        print(
            f"| {f.text} | {f.chapters} | {f.cast} | {f.plan_seconds:.1f} s | {f.wall_seconds:.1f} s | {f.peak_rss_mb:.0f} MB "
            f"| {mains}{err} | {', '.join(f.first_ten)} |"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="also plan the whole novels (slow) in a child process")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of markdown tables")
    parser.add_argument("--verbose", "-v", action="store_true", help="list every false positive and wrong quote")
    parser.add_argument("--only", choices=("stories", "corpus"), help="run only the bundled stories or only the real texts")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds allowed for each whole-novel plan (default 1800)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child_plan(args.child)
        return

    stories: list[StoryScore] = []
    story_errors: dict[str, str] = {}
    if args.only != "corpus":
        for s in STORIES:
            try:
                stories.append(score(s))
            except Exception as exc:  # noqa: BLE001
                story_errors[s] = f"{type(exc).__name__}: {exc}"
    corpus = [score_corpus(k) for k in CORPUS_TEXTS] if args.only != "stories" else []
    splits = [check_split(k) for k in FULL_TEXTS] if args.only != "stories" else []
    full = [plan_full(k, args.timeout) for k in FULL_TEXTS] if args.full and args.only != "stories" else []

    if args.json:
        print(
            json.dumps(
                {
                    "stories": [asdict(s) for s in stories],
                    "story_errors": story_errors,
                    "corpus": [s.as_dict() for s in corpus],
                    "splits": [{**asdict(c), "exact": c.exact} for c in splits],
                    "full": [asdict(f) for f in full],
                },
                ensure_ascii=False,
                indent=2,
            )
        )
        return
    if stories:
        print_stories(stories)
    for s, err in story_errors.items():
        print(f"\n{s}: error: {err}")
    if corpus:
        print_corpus(corpus, args.verbose)
    if splits:
        print_splits(splits)
    if full:
        print_full(full)


if __name__ == "__main__":
    main()
