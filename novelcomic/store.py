"""Derived state in a SQLModel database: runs, stage status per chapter, generated assets.

SQLite at ``<project>/.novelcomic/state.db`` by default; ``NOVELCOMIC_DATABASE_URL`` points every
project at one database (Postgres, say), rows keyed by project name. The YAML files stay the
source of truth: this database only remembers what was made from them, from which inputs, so a
re-run can skip finished work and tell a user's edit from our own output.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, UniqueConstraint, event
from sqlmodel import Field, Session, SQLModel, create_engine, select

from novelcomic.fsutil import sha256_file


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class Run(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    project: str = Field(index=True)
    stages: str = ""
    chapters: str = ""
    status: str = "running"  # running | completed | failed | cancelled (SIGTERM/Ctrl-C) | interrupted (killed; marked by the next run)
    error: str = ""
    started_at: dt.datetime = Field(default_factory=_now)
    finished_at: dt.datetime | None = None


class StageStatus(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("project", "chapter", "stage"),)
    id: int | None = Field(default=None, primary_key=True)
    project: str = Field(index=True)
    chapter: str = ""  # "" for project-wide stages (design)
    stage: str
    status: str = "pending"  # pending | running | done | failed
    detail: str = ""
    updated_at: dt.datetime = Field(default_factory=_now)


class Asset(SQLModel, table=True):
    """One generated file: what it is, where it is, and what it was made from."""

    __table_args__ = (UniqueConstraint("project", "kind", "key"),)
    id: int | None = Field(default=None, primary_key=True)
    project: str = Field(index=True)
    kind: str  # yaml | sheet | shot | audio | segment | video | subtitles | ...
    key: str  # unique within (project, kind), e.g. "01/s01-02" or "characters.yaml"
    path: str  # relative to the project directory
    inputs_hash: str = ""
    content_hash: str = ""
    backend: str = ""
    seed: int | None = None
    chapter: str = ""
    meta: str = "{}"  # JSON: durations, warnings, ...
    warnings: str = ""
    version: int = 1
    created_at: dt.datetime = Field(default_factory=_now)

    def meta_dict(self) -> dict[str, Any]:
        return json.loads(self.meta or "{}")


class FlowRunLink(SQLModel, table=True):
    """The Prefect flow run that carried out one of our runs (so a run killed with ``kill -9``
    can be marked in Prefect too, by the next run)."""

    id: int | None = Field(default=None, primary_key=True)
    project: str = Field(index=True)
    run_id: int = Field(index=True)
    flow_run_id: str


class Approval(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    project: str = Field(index=True)
    subject: str  # e.g. "sheet:wukong"
    decision: str  # approved | regenerate | edited
    note: str = ""
    decided_at: dt.datetime = Field(default_factory=_now)


def database_url(project_dir: Path) -> str:
    return os.environ.get("NOVELCOMIC_DATABASE_URL") or f"sqlite:///{project_dir / '.novelcomic' / 'state.db'}"


def _adopt_copied(engine: Engine, project: str) -> None:
    """A project's own database holding the rows of one other name and none of its own was
    copied or renamed (``cp -a``, ``mv``): its rows are this project's (paths in them are
    relative to the project), so nothing is made again."""
    with Session(engine) as s:
        if s.exec(select(Asset.id).where(Asset.project == project).limit(1)).first() is not None:
            return
        names = set(s.exec(select(Asset.project).distinct()))
        if len(names) != 1:
            return
        old = names.pop()
        for table in (Run, StageStatus, Asset, Approval, FlowRunLink):
            for row in s.exec(select(table).where(table.project == old)):
                row.project = project
                s.add(row)
        s.commit()


class Store:
    """A handle on one project's rows. Cheap to create; the engine is created on first use."""

    def __init__(self, project: str, project_dir: Path, url: str | None = None) -> None:
        self.project = project
        self.project_dir = Path(project_dir)
        self.url = url or database_url(self.project_dir)
        self.interrupted: list[int] = []  # runs found killed by the last start_run
        self._engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            if self.url.startswith("sqlite:///"):
                Path(self.url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
                engine = create_engine(self.url, connect_args={"timeout": 30, "check_same_thread": False})

                @event.listens_for(engine, "connect")
                def _wal(dbapi_conn: Any, _: Any) -> None:  # pragma: no cover - sqlite pragma
                    dbapi_conn.execute("PRAGMA journal_mode=WAL")
                    dbapi_conn.execute("PRAGMA busy_timeout=30000")

            else:
                engine = create_engine(self.url)
            SQLModel.metadata.create_all(engine)
            if self.url == f"sqlite:///{self.project_dir / '.novelcomic' / 'state.db'}":
                _adopt_copied(engine, self.project)
            self._engine = engine
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    # ------------------------------------------------------------------ assets

    def asset(self, kind: str, key: str) -> Asset | None:
        with Session(self.engine) as s:
            return s.exec(
                select(Asset).where(Asset.project == self.project, Asset.kind == kind, Asset.key == key)
            ).first()

    def adopt(self, kind: str, key: str, old_inputs_hash: str, inputs_hash: str) -> Asset | None:
        """If the asset was made from ``old_inputs_hash`` (an earlier hash recipe of the same
        inputs) and its file is intact, record it as made from ``inputs_hash`` (same file, same
        version) and return it; else None."""
        if self.fresh(kind, key, old_inputs_hash) is None:
            return None
        with Session(self.engine) as s:
            a = s.exec(select(Asset).where(Asset.project == self.project, Asset.kind == kind, Asset.key == key)).first()
            assert a is not None
            a.inputs_hash = inputs_hash
            s.add(a)
            s.commit()
            s.refresh(a)
            return a

    def assets(self, kind: str | None = None, chapter: str | None = None) -> list[Asset]:
        with Session(self.engine) as s:
            q = select(Asset).where(Asset.project == self.project)
            if kind is not None:
                q = q.where(Asset.kind == kind)
            if chapter is not None:
                q = q.where(Asset.chapter == chapter)
            return list(s.exec(q.order_by(Asset.id)))

    def fresh(self, kind: str, key: str, inputs_hash: str) -> Asset | None:
        """The asset if it was made from exactly these inputs and its file is intact, else None."""
        a = self.asset(kind, key)
        if a is None or a.inputs_hash != inputs_hash:
            return None
        path = self.project_dir / a.path
        if not path.is_file():
            return None
        if a.content_hash and sha256_file(path) != a.content_hash:
            return None
        return a

    def record(
        self,
        kind: str,
        key: str,
        path: Path,
        *,
        inputs_hash: str = "",
        backend: str = "",
        seed: int | None = None,
        chapter: str = "",
        meta: dict[str, Any] | None = None,
        warnings: list[str] | None = None,
        new_version: bool = True,
    ) -> Asset:
        """Insert or update the record of a file that was just written (atomically);
        ``new_version=False``: the file is the same as before (made again, identical)."""
        path = Path(path)
        rel = str(path.relative_to(self.project_dir)) if path.is_absolute() else str(path)
        full = self.project_dir / rel
        with Session(self.engine) as s:
            a = s.exec(
                select(Asset).where(Asset.project == self.project, Asset.kind == kind, Asset.key == key)
            ).first()
            if a is None:
                a = Asset(project=self.project, kind=kind, key=key, path=rel)
            elif new_version:
                a.version += 1
            a.path = rel
            a.inputs_hash = inputs_hash
            a.content_hash = sha256_file(full)
            a.backend = backend
            a.seed = seed
            a.chapter = chapter
            a.meta = json.dumps(meta or {}, ensure_ascii=False)
            a.warnings = "\n".join(warnings or [])
            a.created_at = _now()
            s.add(a)
            s.commit()
            s.refresh(a)
            return a

    # ------------------------------------------------------------------ runs and stages

    def start_run(self, stages: list[str], chapters: list[str]) -> int:
        """Record a new run. Only the holder of the project lock starts runs, so a run still
        marked running (and a stage still marked running) was killed: it is marked interrupted."""
        self.interrupted = []
        with Session(self.engine) as s:
            for old in s.exec(select(Run).where(Run.project == self.project, Run.status == "running")):
                self.interrupted.append(old.id)
                old.status = "interrupted"
                old.error = old.error or "killed before it finished (its finished work is kept)"
                s.add(old)
            for row in s.exec(select(StageStatus).where(StageStatus.project == self.project, StageStatus.status == "running")):
                row.status = "interrupted"
                s.add(row)
            r = Run(project=self.project, stages=",".join(stages), chapters=",".join(chapters))
            s.add(r)
            s.commit()
            s.refresh(r)
            assert r.id is not None
            return r.id

    def finish_run(self, run_id: int, error: str = "", status: str | None = None) -> None:
        """Close a run: ``completed``, ``failed`` (with ``error``) or the ``status`` given
        (``cancelled``: stopped by a signal, its finished work kept)."""
        with Session(self.engine) as s:
            r = s.get(Run, run_id)
            if r is None:
                return
            r.status = status or ("failed" if error else "completed")
            r.error = error
            r.finished_at = _now()
            s.add(r)
            s.commit()

    def link_flow_run(self, flow_run_id: str) -> None:
        """Remember that the run in progress is carried out by Prefect flow run ``flow_run_id``."""
        with Session(self.engine) as s:
            run = s.exec(select(Run).where(Run.project == self.project, Run.status == "running").order_by(Run.id.desc())).first()
            if run is not None:
                s.add(FlowRunLink(project=self.project, run_id=run.id, flow_run_id=str(flow_run_id)))
                s.commit()

    def flow_runs_of(self, run_ids: list[int]) -> list[str]:
        if not run_ids:
            return []
        with Session(self.engine) as s:
            return [link.flow_run_id for link in s.exec(select(FlowRunLink).where(
                FlowRunLink.project == self.project, FlowRunLink.run_id.in_(run_ids)))]

    def made_since(self, run_id: int) -> dict[str, int]:
        """How many files of each kind were made (or made again) since run ``run_id`` started."""
        with Session(self.engine) as s:
            r = s.get(Run, run_id)
            if r is None:
                return {}
            counts: dict[str, int] = {}
            started = r.started_at if r.started_at.tzinfo else r.started_at.replace(tzinfo=dt.timezone.utc)
            for a in s.exec(select(Asset).where(Asset.project == self.project)):
                made = a.created_at if a.created_at.tzinfo else a.created_at.replace(tzinfo=dt.timezone.utc)
                if made >= started:
                    counts[a.kind] = counts.get(a.kind, 0) + 1
            return counts

    def runs(self) -> list[Run]:
        with Session(self.engine) as s:
            return list(s.exec(select(Run).where(Run.project == self.project).order_by(Run.id)))

    def set_stage(self, stage: str, status: str, chapter: str = "", detail: str = "") -> None:
        with Session(self.engine) as s:
            row = s.exec(
                select(StageStatus).where(
                    StageStatus.project == self.project, StageStatus.chapter == chapter, StageStatus.stage == stage
                )
            ).first()
            if row is None:
                row = StageStatus(project=self.project, chapter=chapter, stage=stage)
            row.status = status
            row.detail = detail
            row.updated_at = _now()
            s.add(row)
            s.commit()

    def stage_statuses(self) -> list[StageStatus]:
        with Session(self.engine) as s:
            return list(s.exec(select(StageStatus).where(StageStatus.project == self.project)))

    def approve(self, subject: str, decision: str, note: str = "") -> None:
        with Session(self.engine) as s:
            s.add(Approval(project=self.project, subject=subject, decision=decision, note=note))
            s.commit()
