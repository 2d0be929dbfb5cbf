"""A plain-text report of what has been made for each chapter, from the store."""

from __future__ import annotations

from novelcomic.errors import NovelcomicError
from novelcomic.project import Project


def project_status(project: Project) -> str:
    cfg = project.config()
    store = project.store
    rows = [f"{cfg.title} ({project.dir})", ""]
    sheets = store.assets("sheet")
    chars = project.characters().characters
    rows.append(f"characters: {len(chars)}, reference sheets: {len(sheets)}")
    rows.append(f"{'chapter':8} {'plan':6} {'shots':>9} {'lines':>9} {'video'}")
    for ch in cfg.chapters:
        planned = project.storyboard_path(ch.id).exists()
        shots_total = lines_total = 0
        if planned:
            try:
                sb = project.storyboard(ch.id)
                shots = sb.shots()
                shots_total = len(shots)
                lines_total = sum(len(s.lines) for _, s in shots)
            except NovelcomicError as exc:
                rows.append(f"{ch.id:8} invalid: {exc}")
                continue
        rendered = len(store.assets("shot", ch.id))
        voiced = len(store.assets("audio", ch.id))
        video = store.asset("video", ch.id)
        vtext = "-"
        if video and (project.dir / video.path).exists():
            vtext = f"{video.path} ({video.meta_dict().get('duration', 0):.1f} s)"
        rows.append(
            f"{ch.id:8} {'yes' if planned else 'no':6} {rendered:>4}/{shots_total:<4} {voiced:>4}/{lines_total:<4} {vtext}"
        )
    if cfg.book:
        book = store.asset("book", "book")
        if book and (project.dir / book.path).exists():
            meta = book.meta_dict()
            rows.append(f"book: {book.path} ({meta.get('duration', 0):.1f} s, {len(meta.get('chapters', []))} chapters)")
        else:
            rows.append("book: not made yet (made once every chapter has a video)")
    warned = [a for a in store.assets() if a.warnings.strip()]
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
    last = store.runs()[-1:] if store.runs() else []
    for r in last:
        status = r.status
        if status == "running" and not _locked(project):
            status = "interrupted (killed before it finished; run it again to resume)"
        rows.append("")
        rows.append(f"last run #{r.id}: {status} ({r.stages}; chapters {r.chapters}) {r.error}".rstrip())
    return "\n".join(rows)


MAX_WARNINGS = 8


def _locked(project: Project) -> bool:
    """Whether a run holds the project now (a run marked running without it was killed)."""
    from novelcomic.errors import ProjectLockedError

    try:
        with project.lock():
            return False
    except ProjectLockedError:
        return True
