"""``novelcomic estimate NAME [--chapters …]``: what a run still has to make — shots to draw,
character sheets to draw, lines to speak — decided by the same input hashes the run uses, and
with a paid image backend (``price_per_image``, e.g. the ``openai`` backend) what drawing them
will cost. :func:`spent_line` gives ``status`` the money already spent (each image records its
``meta.cost``; replaced versions kept in a shot's history count too)."""

from __future__ import annotations

from dataclasses import dataclass, field

import click

from novelcomic.errors import NovelcomicError
from novelcomic.project import Project


@dataclass
class ChapterWork:
    chapter: str
    planned: bool
    shots: int = 0
    shots_todo: int = 0
    lines: int = 0
    lines_todo: int = 0


@dataclass
class Estimate:
    chapters: list[ChapterWork] = field(default_factory=list)
    sheets: int = 0
    sheets_todo: int = 0
    render_price: float | None = None  # per image, from stages.render.options.price_per_image
    design_price: float | None = None
    rerolls: int = 0  # QA re-rolls per shot at most (QA on)

    @property
    def shots_todo(self) -> int:
        return sum(c.shots_todo for c in self.chapters)

    @property
    def lines_todo(self) -> int:
        return sum(c.lines_todo for c in self.chapters)

    @property
    def cost(self) -> float | None:
        """What the images still to draw cost (None when no stage that draws them has a price)."""
        parts = [(self.shots_todo, self.render_price), (self.sheets_todo, self.design_price)]
        if all(price is None for n, price in parts if n) or not any(n for n, _ in parts):
            return None if any(n for n, _ in parts) else 0.0
        return sum(n * (price or 0.0) for n, price in parts)


def _price(spec: object) -> float | None:
    value = (getattr(spec, "options", None) or {}).get("price_per_image")
    if value is None:
        return None
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
        raise NovelcomicError(f"price_per_image {value!r} must be a number ≥ 0", file="project.yaml",
                              field=f"stages.{getattr(spec, 'backend', '')}.options.price_per_image")
    return float(value)


def estimate(project: Project, chapters: list[str]) -> Estimate:
    """Count what a run of ``chapters`` (every stage) would still make."""
    from novelcomic import pipeline
    from novelcomic.fsutil import hash_inputs

    cfg = project.config()
    est = Estimate(render_price=_price(cfg.stages.render), design_price=_price(cfg.stages.design),
                   rerolls=cfg.qa.rerolls if cfg.qa.enabled else 0)
    for ch in chapters:
        work = ChapterWork(ch, project.storyboard_path(ch).exists())
        est.chapters.append(work)
        if not work.planned:
            continue
        rctx = pipeline._render_context(project, ch)
        vctx = pipeline._voice_context(project, ch)
        for _, shot in rctx["storyboard"].shots():
            work.shots += 1
            key = f"{ch}/{shot.id}"
            if not project.store.fresh("shot", key, pipeline.shot_inputs_hash(project, ch, shot.id, rctx)):
                work.shots_todo += 1
            for line_key, inputs in pipeline.line_inputs_hashes(project, ch, shot.id, vctx):
                work.lines += 1
                if not project.store.fresh("audio", line_key, inputs):
                    work.lines_todo += 1
    # sheets: the design stage's rule and recipe (pipeline.design)
    spec = cfg.stages.design
    present = pipeline.cast_in(project, chapters)
    period = pipeline.book_period(project, cfg)
    w, h = pipeline.SHEET_SIZE
    for c in project.characters().characters:
        if not pipeline.needs_sheet(c) or (present is not None and c.id not in present):
            continue
        est.sheets += 1
        seed = pipeline.shot_seed(cfg, "design", c.id, None)
        inputs = hash_inputs(pipeline.character_look(c), cfg.style, spec, w, h, seed, cfg.language,
                             *pipeline._period_part(period))
        if not project.store.fresh("sheet", c.id, inputs):
            est.sheets_todo += 1
    return est


def spent(project: Project) -> tuple[float, int]:
    """(money spent, images it paid for): ``meta.cost`` of every image the store holds, with the
    earlier versions a shot's history keeps."""
    total, n = 0.0, 0
    for asset in project.store.assets():
        meta = asset.meta_dict()
        costs = [meta.get("cost")] + [(v.get("meta") or {}).get("cost") for v in (meta.get("history") or {}).values()
                                      if isinstance(v, dict)]
        for cost in costs:
            if isinstance(cost, (int, float)) and not isinstance(cost, bool):
                total += float(cost)
                n += 1
    return total, n


def spent_line(project: Project) -> str | None:
    """``spent: 0.17 on 4 images (price_per_image)`` for ``status``; None when nothing had a price."""
    total, n = spent(project)
    if not n:
        return None
    return f"spent: {_money(total)} on {n} image{'s' if n != 1 else ''} (price_per_image)"


def _money(value: float) -> str:
    return f"{value:.2f}" if value >= 0.01 or value == 0 else f"{value:.4f}"


def render_estimate(project: Project, est: Estimate) -> str:
    cfg = project.config()
    rows = [f"estimate for {project.name} (chapters {', '.join(c.chapter for c in est.chapters)}):"]
    for c in est.chapters:
        if not c.planned:
            rows.append(f"  {c.chapter}: not planned yet (shots and lines are known once it is planned)")
        else:
            rows.append(f"  {c.chapter}: {c.shots_todo} of {c.shots} shots to draw, {c.lines_todo} of {c.lines} lines to speak")
    rows.append(f"  sheets: {est.sheets_todo} of {est.sheets} to draw")
    images = est.shots_todo + est.sheets_todo
    rows.append(f"images to draw: {images} (render: {cfg.stages.render.backend}, design: {cfg.stages.design.backend}); "
                f"lines to speak: {est.lines_todo} ({cfg.stages.voice.backend})")
    cost = est.cost
    if cost is None:
        rows.append("cost: not known: no price_per_image in stages.render.options / stages.design.options")
    elif images:
        parts = []
        if est.shots_todo and est.render_price is not None:
            parts.append(f"{est.shots_todo} shots × {est.render_price:g}")
        if est.sheets_todo and est.design_price is not None:
            parts.append(f"{est.sheets_todo} sheets × {est.design_price:g}")
        unpriced = [s for s, n, p in (("render", est.shots_todo, est.render_price), ("design", est.sheets_todo, est.design_price))
                    if n and p is None]
        line = f"cost: {_money(cost)} ({' + '.join(parts)}, price_per_image)"
        if unpriced:
            line += f"; {' and '.join(unpriced)} not counted (no price_per_image)"
        if est.rerolls and est.render_price:
            line += f"; QA re-rolls can add up to {_money(est.shots_todo * est.rerolls * est.render_price)}"
        rows.append(line)
    else:
        rows.append("cost: 0 (nothing left to draw)")
    done = spent_line(project)
    if done:
        rows.append(done)
    return "\n".join(rows)


@click.command("estimate")
@click.argument("name")
@click.option("--chapters", default=None, help="Chapters to count: ids or numbers, e.g. 1-3,5 (default: all).")
@click.pass_obj
def estimate_cmd(obj: dict, name: str, chapters: str | None) -> None:
    """What a run of project NAME still has to make (shots, sheets, lines) and, with a
    price_per_image, what drawing it will cost. Nothing is made or sent anywhere."""
    from novelcomic.pipeline import select_chapters

    project = Project.open(name, (obj or {}).get("root"))
    try:
        chosen = select_chapters(project.config(), chapters)
        click.echo(render_estimate(project, estimate(project, chosen)))
    finally:
        project.close()


COMMANDS = [estimate_cmd]
