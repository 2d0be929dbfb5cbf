"""A plain-text report of what has been made for each chapter, from the store."""

from __future__ import annotations

from novelcomic.errors import NovelcomicError
from novelcomic.project import Project


def project_status(project: Project) -> str:
    cfg = project.config()
    store = project.store
    rows = [f"{cfg.title} ({project.dir})", ""]
    rows.extend(sheet_rows(project))
    rows.append(f"{'chapter':8} {'plan':6} {'shots':>9} {'lines':>9} {'video':40} title")
    current_keys: dict[str, set[str]] = {}
    for ch in cfg.chapters:
        planned = project.storyboard_path(ch.id).exists()
        shot_keys: set[str] = set()
        line_keys: set[str] = set()
        if planned:
            try:
                sb = project.storyboard(ch.id)
            except NovelcomicError as exc:
                rows.append(f"{ch.id:8} invalid: {exc}")
                continue
            for _, shot in sb.shots():
                shot_keys.add(f"{ch.id}/{shot.id}")
                line_keys.update(f"{ch.id}/{shot.id}/{i:02d}" for i in range(len(shot.lines)))
        shots_total, lines_total = len(shot_keys), len(line_keys)
        current_keys[ch.id] = shot_keys | line_keys
        # made for the storyboard as it is now (a deleted shot's old image does not count)
        rendered = sum(1 for a in store.assets("shot", ch.id) if a.key in shot_keys)
        voiced = sum(1 for a in store.assets("audio", ch.id) if a.key in line_keys)
        video = store.asset("video", ch.id)
        vtext = "-"
        if video and (project.dir / video.path).exists():
            vtext = f"{video.path} ({video.meta_dict().get('duration', 0):.1f} s)"
            if cfg.review.publish:
                vtext += " " + _publish_state(project, ch.id)
        rows.append(
            f"{ch.id:8} {'yes' if planned else 'no':6} {rendered:>4}/{shots_total:<4} {voiced:>4}/{lines_total:<4} "
            f"{vtext:40} {ch.title}".rstrip()
        )
        if cfg.animate.backend and planned:  # the animate stage: clips made for shots as they are now
            rows[-1] += f"  (clips: {sum(1 for a in store.assets('clip', ch.id) if a.key in shot_keys)})"
    if cfg.book:
        book = store.asset("book", "book")
        if book and (project.dir / book.path).exists():
            meta = book.meta_dict()
            rows.append(f"book: {book.path} ({meta.get('duration', 0):.1f} s, {len(meta.get('chapters', []))} chapters)")
        else:
            without = [c.id for c in cfg.chapters if not store.asset("video", c.id)]
            if without:
                rows.append(f"book: not made yet (chapters without a video: {', '.join(without)})")
            elif cfg.review.publish:
                rows.append("book: waits for the publish review of every chapter")
            else:
                rows.append("book: not made yet (the next run makes it)")
    current = set().union(*(keys for keys in current_keys.values())) if current_keys else set()
    warned = [a for a in store.assets() if a.warnings.strip() and (a.kind not in ("shot", "audio") or a.key in current)]
    if warned:
        rows.append("")
        rows.append(f"warnings ({len(warned)} outputs):")
        seen: dict[str, list[str]] = {}
        for a in warned:
            for w in a.warnings.splitlines():
                seen.setdefault(w, []).append(a.key)
        for w, keys in list(seen.items())[:MAX_WARNINGS]:
            more = f" (+{len(keys) - 1} more)" if len(keys) > 1 else ""
            rows.append(f"  {keys[0]}{more}: {w}")
        if len(seen) > MAX_WARNINGS:
            rows.append(f"  … and {len(seen) - MAX_WARNINGS} more different warnings")
    from novelcomic.cli.estimate_cmds import spent_line  # what the images with a price_per_image cost

    rows.extend(["", spent] if (spent := spent_line(project)) else [])
    last = store.runs()[-1:] if store.runs() else []
    for r in last:
        status = r.status
        if status == "running" and not project.is_locked():
            status = "interrupted (killed before it finished; run it again to resume)"
        rows.append("")
        rows.append(f"last run #{r.id}: {status} ({r.stages}; chapters {r.chapters}) {r.error}".rstrip())
    return "\n".join(rows)


MAX_WARNINGS = 8
MAX_MISSING = 8


def sheet_scope(project: Project) -> list[str]:
    """The chapters whose cast needs sheets: the produced ones (a video or a rendered shot),
    else the planned ones; empty when nothing is planned."""
    store = project.store
    chapters = [c.id for c in project.config().chapters]
    produced = [c for c in chapters if store.asset("video", c) or store.assets("shot", c)]
    return produced or [c for c in chapters if project.storyboard_path(c).exists()]


def sheet_rows(project: Project) -> list[str]:
    """``characters: …`` and ``sheets: made/needed``: a sheet is needed for each character who
    is neither an extra nor a group, has no reference images of its own and appears in the
    chapters of :func:`sheet_scope` (every such character while nothing is planned) — the same
    rule as the design stage, so extras and people of other chapters are not reported missing."""
    from novelcomic.pipeline import cast_in, generic_figure, needs_sheet

    chars = project.characters().characters
    scope = sheet_scope(project)
    try:
        present = cast_in(project, scope) if scope else None
    except NovelcomicError:  # a storyboard being edited: count the whole cast
        present = None
    generic = sum(1 for c in chars if generic_figure(c))
    own = sum(1 for c in chars if c.reference_images and not generic_figure(c))
    needed = [c for c in chars if needs_sheet(c) and (present is None or c.id in present)]
    made, missing = [], []
    for c in needed:
        rec = project.store.asset("sheet", c.id)
        (made if rec is not None and (project.dir / rec.path).is_file() else missing).append(c)
    extra = []
    if generic:
        extra.append(f"{generic} extras/groups drawn without a sheet")
    if own:
        extra.append(f"{own} with reference images of their own")
    head = f"characters: {len(chars)}" + (f" ({', '.join(extra)})" if extra else "")
    where = f" (the cast of chapters {', '.join(scope)})" if scope and present is not None else ""
    line = f"sheets: {len(made)}/{len(needed)}{where}"
    if missing:
        names = ", ".join(f"{c.name} ({c.id})" for c in missing[:MAX_MISSING])
        more = f" and {len(missing) - MAX_MISSING} more" if len(missing) > MAX_MISSING else ""
        line += f"; missing: {names}{more}"
    return [head, line]


def _publish_state(project: Project, chapter: str) -> str:
    """The publish review of the chapter's current video: ``[approved]``, ``[rejected: note]`` or
    ``[awaiting review]``."""
    from novelcomic import review

    subject = review.video_subject(project, chapter) or ""
    rows = [r for r in review.approvals(project, subject) if r.subject == subject]
    if not rows:
        return "[awaiting review]"
    last = rows[-1]
    return f"[{last.decision}{': ' + last.note if last.note and last.decision == 'rejected' else ''}]"

