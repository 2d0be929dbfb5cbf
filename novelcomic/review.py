"""Review gates: a person approves the character sheets (and optionally each finished video)
before the run goes on. The decisions are applied here and recorded in the project's database.

The Prefect flows pause with :class:`SheetReview` / :class:`PublishReview` as the input a
reviewer fills in (in the Prefect UI or through ``resume_flow_run(run_input=...)``); this module
holds the models and the plain logic, so it works (and is tested) without a paused flow.

Decisions per character:

- ``approve``: the current sheet is accepted (recorded with its content hash, so an unchanged
  sheet is not asked about again on a later run).
- ``regenerate``: the note is appended to the character's appearance *for generation only* and
  kept in ``.novelcomic/review.json``; ``characters.yaml`` is never rewritten for it. An empty
  note re-runs the backend with the same inputs (useful for backends that are not deterministic).
- ``edit``: the new appearance (and/or description) is written to ``characters.yaml`` through
  :meth:`Project.write_generated`; if the user edited that file, the edit lands in
  ``characters.proposed.yaml`` and is applied as a generation override instead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from novelcomic.fsutil import atomic_write_text
from novelcomic.models import Character, CharactersFile
from novelcomic.project import Project

Decision = Literal["approve", "regenerate", "edit"]


class CharacterDecision(BaseModel):
    decision: Decision = "approve"
    note: str = Field("", description="regenerate: what to change, appended to the appearance for generation")
    appearance: str | None = Field(None, description="edit: the new fixed look")
    description: str | None = Field(None, description="edit: the new description")


def _run_input_base() -> type[BaseModel]:
    """Prefect's RunInput when Prefect is importable (the flows), plain BaseModel otherwise."""
    try:
        from prefect.input import RunInput
    except ImportError:  # pragma: no cover - prefect is a dependency
        return BaseModel
    return RunInput


def sheet_review_model() -> type[BaseModel]:
    """The ``SheetReview`` run input: one decision per character id."""

    class SheetReview(_run_input_base()):  # type: ignore[misc]
        decisions: dict[str, CharacterDecision] = Field(
            default_factory=dict, description="character id → decision; characters left out are approved"
        )

    return SheetReview


def publish_review_model() -> type[BaseModel]:
    """The ``PublishReview`` run input: publish a chapter's video or hold it back."""

    class PublishReview(_run_input_base()):  # type: ignore[misc]
        approve: bool = Field(True, description="Publish this chapter's video")
        note: str = ""

    return PublishReview


# --------------------------------------------------------------------------- overrides on disk


def overrides_path(project: Project) -> Path:
    return project.state_dir / "review.json"


def load_overrides(project: Project) -> dict[str, dict[str, Any]]:
    """character id → {"notes": [...], "appearance": str?, "description": str?}."""
    path = overrides_path(project)
    if not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8")).get("characters", {})


def _save_overrides(project: Project, data: dict[str, dict[str, Any]]) -> None:
    atomic_write_text(overrides_path(project), json.dumps({"characters": data}, ensure_ascii=False, indent=2))


def apply_overrides(characters: CharactersFile, overrides: dict[str, dict[str, Any]]) -> CharactersFile:
    """The characters as generation sees them: review notes appended, review edits applied."""
    if not overrides:
        return characters
    out = []
    for ch in characters.characters:
        o = overrides.get(ch.id)
        if o:
            appearance = o.get("appearance") or ch.appearance
            notes = [n for n in o.get("notes", []) if n]
            if notes:
                appearance = "; ".join([appearance, *notes]) if appearance else "; ".join(notes)
            ch = ch.model_copy(update={"appearance": appearance, "description": o.get("description") or ch.description})
        out.append(ch)
    return characters.model_copy(update={"characters": out})


class ReviewedProject(Project):
    """A project whose characters carry the review overrides and whose config carries per-run
    overrides (``style``, ``seed``) without rewriting any YAML file."""

    def __init__(self, path: str | Path, name: str | None = None, overrides: dict[str, Any] | None = None) -> None:
        super().__init__(path, name)
        self.overrides = {k: v for k, v in (overrides or {}).items() if v is not None}

    def config(self):  # type: ignore[no-untyped-def]
        cfg = super().config()
        if not self.overrides:
            return cfg
        from novelcomic.models import ProjectConfig

        return ProjectConfig.model_validate({**cfg.model_dump(), **self.overrides})

    def characters(self) -> CharactersFile:
        return apply_overrides(super().characters(), load_overrides(self))


# --------------------------------------------------------------------------- approvals


def sheet_subject(project: Project, character_id: str) -> str | None:
    """``sheet:<id>:<content hash>`` for the current sheet, None when there is none."""
    rec = project.store.asset("sheet", character_id)
    if rec is None or not (project.dir / rec.path).is_file():
        return None
    return f"sheet:{character_id}:{rec.content_hash[:16]}"


def video_subject(project: Project, chapter: str) -> str | None:
    rec = project.store.asset("video", chapter)
    if rec is None:
        return None
    return f"video:{chapter}:{rec.content_hash[:16]}"


def approvals(project: Project, subject_prefix: str = "") -> list[Any]:
    """The Approval rows of this project (oldest first), optionally those whose subject starts
    with ``subject_prefix``."""
    from sqlmodel import Session, select

    from novelcomic.store import Approval

    with Session(project.store.engine) as s:
        q = select(Approval).where(Approval.project == project.store.project)
        rows = list(s.exec(q.order_by(Approval.id)))
    return [r for r in rows if r.subject.startswith(subject_prefix)]


def is_approved(project: Project, subject: str) -> bool:
    decisions = [r.decision for r in approvals(project, subject) if r.subject == subject]
    return bool(decisions) and decisions[-1] in ("approved", "auto-approved")


def sheets_to_review(project: Project) -> list[Character]:
    """Characters who need a sheet (pipeline.needs_sheet) whose current generated sheet has no
    approval yet. An old sheet of someone now marked an extra or a group is not used by any
    shot, so it is not asked about."""
    from novelcomic.pipeline import needs_sheet

    out = []
    for ch in project.characters().characters:
        if not needs_sheet(ch):
            continue
        subject = sheet_subject(project, ch.id)
        if subject is not None and not is_approved(project, subject):
            out.append(ch)
    return out


@dataclass
class ReviewOutcome:
    approved: list[str]
    regenerate: list[str]
    edited: list[str]
    proposals: list[Path]

    @property
    def done(self) -> bool:
        return not self.regenerate and not self.edited


def apply_sheet_review(project: Project, pending: list[str], decisions: dict[str, CharacterDecision | dict]) -> ReviewOutcome:
    """Apply a reviewer's decisions for the ``pending`` character ids and record them.

    Characters without a decision are approved. Returns what has to be generated again.
    """
    unknown = sorted(set(decisions) - set(pending))
    if unknown:
        from novelcomic.errors import NovelcomicError

        raise NovelcomicError(f"review names characters that are not awaiting review: {', '.join(unknown)} (pending: {', '.join(pending)})")
    outcome = ReviewOutcome([], [], [], [])
    overrides = load_overrides(project)
    base = Project(project.dir, project.name)  # the user's characters.yaml, without overrides
    for cid in pending:
        d = decisions.get(cid) or CharacterDecision()
        d = d if isinstance(d, CharacterDecision) else CharacterDecision.model_validate(d)
        subject = sheet_subject(project, cid) or f"sheet:{cid}"
        if d.decision == "approve":
            project.store.approve(subject, "approved", d.note)
            outcome.approved.append(cid)
        elif d.decision == "regenerate":
            project.store.approve(subject, "regenerate", d.note)
            if d.note.strip():
                overrides.setdefault(cid, {}).setdefault("notes", []).append(d.note.strip())
            else:
                _invalidate_sheet(project, cid)
            outcome.regenerate.append(cid)
        else:
            if d.appearance is None and d.description is None:
                from novelcomic.errors import NovelcomicError

                raise NovelcomicError(f"edit of character {cid!r} gives neither appearance nor description")
            project.store.approve(subject, "edited", json.dumps(d.model_dump(exclude_none=True), ensure_ascii=False))
            chars = base.characters()
            update = {k: v for k, v in (("appearance", d.appearance), ("description", d.description)) if v is not None}
            new = chars.model_copy(update={"characters": [c.model_copy(update=update) if c.id == cid else c for c in chars.characters]})
            wr = base.write_generated(base.characters_yaml, new, "characters")
            if wr.proposal:
                outcome.proposals.append(wr.path)
                overrides.setdefault(cid, {}).update(update)
            else:
                # The YAML now says it; an older generation override must not mask it.
                for k in update:
                    overrides.get(cid, {}).pop(k, None)
            outcome.edited.append(cid)
    _save_overrides(project, overrides)
    return outcome


def _invalidate_sheet(project: Project, cid: str) -> None:
    rec = project.store.asset("sheet", cid)
    if rec is not None and (project.dir / rec.path).is_file():
        project.store.record("sheet", cid, project.dir / rec.path, inputs_hash="", backend=rec.backend, seed=rec.seed, meta=rec.meta_dict())


def auto_approve_sheets(project: Project) -> list[str]:
    """Gate off: record every current sheet as auto-approved; returns the character ids."""
    done = []
    for ch in sheets_to_review(project):
        subject = sheet_subject(project, ch.id)
        assert subject is not None
        project.store.approve(subject, "auto-approved", "review.characters is off")
        done.append(ch.id)
    return done


def record_publish(project: Project, chapter: str, approve: bool, note: str = "", auto: bool = False) -> None:
    subject = video_subject(project, chapter) or f"video:{chapter}"
    decision = "auto-approved" if auto else ("approved" if approve else "rejected")
    project.store.approve(subject, decision, note or ("review.publish is off" if auto else ""))
