"""Accuracy of the heuristic planner on the bundled example stories.

Runs :class:`novelcomic.plan.heuristic.HeuristicPlanner` on ``assets/examples/<story>.txt`` and
compares with the hand-written labels in ``tests/data/gold/<story>.yaml``:

- character precision/recall: a predicted character matches a gold one when its name or any
  alias equals the gold name or one of its aliases;
- speaker accuracy over the gold dialogue lines: gold lines are aligned, in order, to the
  predicted lines (narration included) by text overlap; a gold line that finds no predicted
  line, or whose line went to the narrator or to the wrong character, counts as wrong.

Prints a markdown table per story and a total.

    .venv/bin/python benchmarks/planner_eval.py
"""

from __future__ import annotations

import re
import sys
import time
from dataclasses import dataclass
from difflib import SequenceMatcher
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from novelcomic.ingest.split import split_chapters  # noqa: E402
from novelcomic.models import NARRATOR, Character, Line, ProjectConfig  # noqa: E402
from novelcomic.plan.base import ChapterText, PlanRequest, PlanResult  # noqa: E402
from novelcomic.plan.heuristic import HeuristicPlanner  # noqa: E402

STORIES = ("lantern-fox", "clockwork-heron")
MIN_RATIO = 0.6


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
    gold = yaml.safe_load((REPO / "tests/data/gold" / f"{story}.yaml").read_text(encoding="utf-8"))
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


def main() -> None:
    scores = [score(s) for s in STORIES]
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


if __name__ == "__main__":
    main()
