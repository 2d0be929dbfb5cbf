"""The planner interface. A planner reads chapters and returns the cast and the storyboards;
the pipeline decides what gets written (it never overwrites a file the user edited)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from novelcomic.models import CharactersFile, LocationsFile, ProjectConfig, PropsFile, Storyboard


@dataclass
class ChapterText:
    id: str
    title: str
    text: str


@dataclass
class PlanRequest:
    config: ProjectConfig
    chapters: list[ChapterText]
    # What the project already knows (the user's files when they exist): planners keep these
    # ids, names and aliases and add to them rather than inventing a new cast.
    characters: CharactersFile = field(default_factory=CharactersFile)
    props: PropsFile = field(default_factory=PropsFile)
    locations: LocationsFile = field(default_factory=LocationsFile)
    # Every chapter of the book, when ``chapters`` are only some of them: who is in the book, and
    # by which names, is read from all of it, so planning chapter 1 alone finds the cast that
    # planning the whole book finds (a storyboard is still made for ``chapters`` only).
    book: list[ChapterText] = field(default_factory=list)


@dataclass
class PlanResult:
    characters: CharactersFile
    props: PropsFile
    locations: LocationsFile
    storyboards: dict[str, Storyboard]  # chapter id → storyboard
    warnings: list[str] = field(default_factory=list)


class Planner(Protocol):
    name: str

    def plan(self, request: PlanRequest) -> PlanResult: ...
