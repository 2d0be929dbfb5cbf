"""Commands that edit what the pipeline made: edit-shot, export."""

from __future__ import annotations

import click

from novelcomic.errors import NovelcomicError
from novelcomic.project import Project


@click.command("edit-shot")
@click.argument("name")
@click.argument("chapter")
@click.argument("shot")
@click.option("--prompt", default=None, help="Re-render the shot with this image prompt (the storyboard is not changed).")
@click.option("--instruction", default=None,
              help="Have the project's language model rewrite the prompt from a plain request, e.g. \"吵得更激烈些\".")
@click.option("--mask", type=click.Path(dir_okay=False), default=None,
              help="A PNG as large as the shot: repaint its white part (backends with inpainting).")
@click.option("--outpaint", type=click.Choice(["16:9", "9:16"]), default=None,
              help="Extend the canvas to this aspect (backends with outpainting).")
@click.option("--restore", type=int, default=None, metavar="VERSION", help="Put an earlier version back.")
@click.option("--list", "list_versions", is_flag=True, help="List the shot's versions.")
@click.pass_obj
def edit_shot(
    obj: dict, name: str, chapter: str, shot: str, prompt: str | None, instruction: str | None, mask: str | None,
    outpaint: str | None, restore: int | None, list_versions: bool,
) -> None:
    """Edit shot SHOT of CHAPTER in project NAME; every replaced image is kept as a version.

    CHAPTER is a chapter id or its number. After an edit, `novelcomic run NAME --stage compose`
    re-renders only that shot's part of the chapter video.
    """
    from novelcomic.pipeline import select_chapters
    from novelcomic.render import edit as lib

    project = Project.open(name, obj.get("root"))
    chosen = select_chapters(project.config(), chapter)
    if len(chosen) != 1:
        raise NovelcomicError(f"give one chapter, not {chapter!r}", field="CHAPTER")
    ch = chosen[0]
    edits = [prompt, instruction, mask, outpaint]
    lib.find_shot(project.storyboard(ch).shots(), ch, shot)  # an unknown shot id is an error, listed or edited
    if list_versions:
        if restore is not None or any(e is not None for e in edits):
            raise NovelcomicError("--list shows the versions only; give it without other options", field="--list")
        versions = lib.shot_versions(project, ch, shot)
        if not versions:
            click.echo(f"shot {shot} of chapter {ch} has no image yet")
        for v in versions:
            mark = "*" if v.current else " "
            click.echo(f"{mark} v{v.version}  {project.rel(v.path)}  {v.note}".rstrip())
        return
    with project.lock():
        if restore is not None:
            if any(e is not None for e in edits):
                raise NovelcomicError("--restore puts an old version back; give it without edit options", field="--restore")
            result = lib.restore_shot(project, ch, shot, restore)
        else:
            result = lib.edit_shot(project, ch, shot, prompt=prompt, mask=mask, outpaint=outpaint, instruction=instruction)
    kept = f" (version {result.version - 1} kept at {project.rel(result.previous_version_path)})" \
        if result.previous_version_path else ""
    click.echo(f"shot {shot} of chapter {ch}: version {result.version} at {project.rel(result.path)}{kept}")
    if result.kind != "restore" and result.previous_version_path \
            and result.previous_version_path.read_bytes() == result.path.read_bytes():
        backend = project.config().stages.render.backend
        click.echo(f"warning: the new image is the same as the old one: render backend {backend!r} does not draw "
                   f"from free-text prompts (a diffusion backend such as 'diffusers' does)", err=True)
    if result.kind == "instruction" and result.prompt:
        click.echo(f"new prompt: {result.prompt}")
    click.echo(f"the chapter video is now out of date: novelcomic run {project.name} --chapters {ch} --stage compose")


@click.command("export")
@click.argument("name")
@click.option("--to", "target", type=click.Choice(["jianying", "otio"]), required=True,
              help="jianying: one self-contained 剪映 5.x draft folder per chapter; otio: OpenTimelineIO with music and subtitle markers.")
@click.option("--chapters", default=None, help="Chapters to export: ids or numbers, e.g. 1-3,5 (default: all).")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Where to write (default: out/jianying or out/otio in the project).")
@click.pass_obj
def export(obj: dict, name: str, target: str, chapters: str | None, out: str | None) -> None:
    """Export chapters of project NAME to finish the cut in an editor.

    The timeline is the one the compose stage makes (same times as the MP4): run the pipeline
    first. A 剪映 draft folder can be moved into 剪映's drafts directory as it is.
    """
    from pathlib import Path

    from novelcomic.pipeline import select_chapters

    project = Project.open(name, obj.get("root"))
    chosen = select_chapters(project.config(), chapters)
    out_dir = Path(out).expanduser() if out else project.out_dir / target
    for ch in chosen:
        if not project.video_path(ch).is_file():
            click.echo(f"warning: chapter {ch} has no video yet: the export follows the timeline its compose will make", err=True)
    if target == "jianying":
        from novelcomic.compose.jianying_export import export_jianying

        for d in export_jianying(project, chosen, out_dir):
            click.echo(f"{d.folder}  ({d.shots} shots, {d.lines} lines, {d.cues} subtitles, {d.duration_us / 1e6:.2f} s)")
    else:
        from novelcomic.compose.otio_export import export_chapter_otio

        for ch in chosen:
            click.echo(str(export_chapter_otio(project, ch, out_dir)))


COMMANDS = [edit_shot, export]
