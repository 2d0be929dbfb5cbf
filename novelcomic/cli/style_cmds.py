"""``novelcomic styles``: the style library and the lens modifiers, or one entry in full."""

from __future__ import annotations

from pathlib import Path

import click

from novelcomic.errors import NovelcomicError


@click.command("styles")
@click.argument("name", required=False)
@click.option("--project", "project", default=None, help="Include the styles.yaml of this project (name or path).")
@click.pass_obj
def styles(obj: dict | None, name: str | None, project: str | None) -> None:
    """List the named styles and lens modifiers, or show style NAME's prompt fragments and settings.

    Use the names (or aliases) in project.yaml, e.g. style: [水墨, 逆光].
    """
    from novelcomic.styles import LensModifier, load_styles

    project_dir: Path | None = None
    if project:
        from novelcomic.project import Project

        project_dir = Project.open(project, (obj or {}).get("root")).dir
    library = load_styles(project_dir)
    if name:
        item = library.find(name)
        if isinstance(item, LensModifier):
            _show_modifier(item)
        else:
            _show_style(item)
        return
    click.echo(f"Styles ({len(library.styles)}):")
    width = max(_width(n) for n in library.styles) + 2
    for style_name, style in library.styles.items():
        aliases = ", ".join(style.aliases)
        click.echo(f"  {_pad(style_name, width)}{_pad(aliases, 44)}{style.description}".rstrip())
    click.echo("")
    click.echo(f"Lens and view modifiers ({len(library.modifiers)}; those with a camera value apply to matching shots):")
    for mod_name, mod in library.modifiers.items():
        camera = f" [{mod.camera}]" if mod.camera else ""
        click.echo(f"  {_pad(mod_name, 10)}{mod.kind:<7}{_pad(', '.join(mod.aliases), 38)}{mod.positive}{camera}".rstrip())
    click.echo("")
    click.echo("In project.yaml: style: [国漫]  ·  several combine: style: [水墨, 逆光]  ·  details: novelcomic styles NAME")


def _width(text: str) -> int:
    """Terminal columns: CJK characters take two."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(1, width - _width(text))


def _show_style(style) -> None:  # type: ignore[no-untyped-def]
    s = style.settings
    click.echo(f"{style.name}  ({', '.join(style.aliases)})")
    if style.description:
        click.echo(f"  {style.description}")
    click.echo(f"  positive:     {style.positive}")
    click.echo(f"  positive_zh:  {style.positive_zh or '(the English one)'}")
    click.echo(f"  negative:     {style.negative}")
    click.echo(
        f"  settings:     steps {s.steps}, guidance {s.guidance_scale}, {s.scheduler}"
        f"{' (Karras sigmas)' if s.karras_sigmas else ''}, sampler {s.sampler}"
    )
    sizes = ", ".join(f"{fam} {w}x{h}" for fam, (w, h) in s.sizes.items())
    click.echo(f"  sizes (9:16): {sizes}")
    a = style.animatic
    palette = f", palette {' '.join(a.palette)}" if a.palette else ""
    click.echo(
        f"  animatic:     saturation {a.saturation}, contrast {a.contrast}, line weight {a.line_weight}, "
        f"texture {a.texture}{', monochrome' if a.monochrome else ''}{palette}"
    )


def _show_modifier(mod) -> None:  # type: ignore[no-untyped-def]
    click.echo(f"{mod.name}  ({', '.join(mod.aliases)})  lens modifier, {mod.kind}")
    if mod.camera:
        click.echo(f"  applied to shots with camera {mod.camera}")
    click.echo(f"  positive:     {mod.positive}")
    click.echo(f"  positive_zh:  {mod.positive_zh or '(the English one)'}")
    if mod.negative:
        click.echo(f"  negative:     {mod.negative}")


COMMANDS = [styles]

__all__ = ["COMMANDS", "NovelcomicError", "styles"]
